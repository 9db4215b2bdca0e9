"""Snapshots: a trainee breaks their data, reverts to a snapshot and has it back.

A snapshot is named by its UTC time and an optional label, shows its size,
never appears as a working database, and counts against a quota. Reverting
ends the sessions open on the database, says so, and keeps what the database
held just before as a snapshot of its own.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from dbwrapper.accounts import Actor
from dbwrapper.errors import Forbidden, Refused
from dbwrapper.snapshots import Snapshots
from tests.conftest import INSTRUCTOR
from tests.test_courses import FRANCHISE
from tests.test_isolation import run_as, shown_credentials

SNAPSHOT_ROW = re.compile(
    r"<tr>\s*<td>(\d+)</td>\s*<td><time datetime=\"[^\"]+\">([\d\- :]+) UTC</time></td>\s*<td>(.*?)</td>", re.S
)


def course_database(trainee, db_type):
    """A trainee with the franchise course's database, and how they connect to it."""
    alice = trainee()
    page = alice.get("/dbi/create_my_db", params={"db_type": db_type, "course": "franchise"})
    assert page.status_code == 200, page.text
    credentials = shown_credentials(page.text)
    name = credentials["url"].rsplit("/", 1)[1].split("?")[0]
    return alice, credentials, name


def snapshot_rows(page: str) -> list[tuple[str, str, str]]:
    """(number, UTC time, label) of each snapshot the page lists, newest first."""
    return SNAPSHOT_ROW.findall(page)


def test_a_trainee_breaks_their_data_reverts_and_has_it_back(runtime, trainee, db_type, catalog, rows):
    alice, credentials, name = course_database(trainee, db_type)
    where = {"db_type": db_type, "name": name}
    taken = alice.post("/snapshots/take", data={**where, "label": "clean start"})
    assert taken.status_code == 200, taken.text
    assert "Took a snapshot of" in taken.text
    ((number, stamp, label),) = snapshot_rows(taken.text)
    assert label == "clean start" and re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", stamp)

    broken = run_as(db_type, credentials, name, "DELETE FROM orders")
    assert broken.returncode == 0, broken.stderr
    run_as(db_type, credentials, name, "DROP VIEW low_stock")

    reverted = alice.post("/snapshots/revert", data={**where, "snapshot": number})
    assert reverted.status_code == 200, reverted.text
    assert f"Reverted {name} to" in reverted.text

    assert rows(db_type, name) == FRANCHISE
    low = run_as(db_type, credentials, name, "SELECT count(*) FROM low_stock")
    assert low.stdout.strip() == "669"  # the view is back, and the trainee's login still works
    # What the database held before the revert is kept, newest first.
    listed = snapshot_rows(reverted.text)
    assert [row[2] for row in listed][1] == "clean start"
    assert listed[0][2].startswith("before reverting to ")
    before = runtime.service.registry.snapshots(runtime.service.registry.database(db_type, name))[0]
    assert rows(db_type, before.name)["orders"] == 0
    # Snapshots are on the server, but nobody's working database.
    assert before.name in catalog(db_type)
    assert "_dbw_" not in alice.get("/dbi/list", params={"db_type": db_type}).text
    assert "_dbw_" not in alice.get("/").text


def test_a_revert_ends_open_sessions_and_says_so(runtime, trainee, db_type):
    alice, credentials, name = course_database(trainee, db_type)
    where = {"db_type": db_type, "name": name}
    taken = alice.post("/snapshots/take", data=where)
    ((number, _, _),) = snapshot_rows(taken.text)
    engine = create_engine(credentials["url"], pool_pre_ping=False)
    try:
        with engine.connect() as session:
            session.execute(text("SELECT 1"))
            reverted = alice.post("/snapshots/revert", data={**where, "snapshot": number})
            # Ours at least: a session of the course copy's own, closing as the revert starts, may be counted too.
            ended = re.search(r"(\d+) open session\(s\) on it were ended; reconnect to go on\.", reverted.text)
            assert ended and int(ended.group(1)) >= 1, reverted.text
            with pytest.raises(DBAPIError):
                session.execute(text("SELECT count(*) FROM stores"))
        with engine.connect() as again:  # reconnecting works
            assert again.execute(text("SELECT count(*) FROM stores")).scalar_one() == FRANCHISE["stores"]
    finally:
        engine.dispose()


def test_snapshots_count_against_a_quota_but_a_revert_is_never_refused(runtime, db_type, trainee):
    _, _, name = course_database(trainee, db_type)
    owner = runtime.service.registry.database(db_type, name).owner
    alice = Actor(runtime.accounts.get(owner))
    snapshots = Snapshots(runtime.service, quota=1)
    first, _ = snapshots.take(alice, db_type, name, "one")
    with pytest.raises(Refused, match="quota of 1"):
        snapshots.take(alice, db_type, name, "two")
    snapshots.revert(alice, db_type, name, first.id)  # sets one more aside, past the quota
    _, _, kept = snapshots.list(alice, db_type, name)
    assert len(kept) == 2
    # Deleting makes room again, and drops the snapshot's database.
    said = snapshots.delete(alice, db_type, name, first.id)
    assert "Deleted the snapshot" in said
    assert not runtime.servers.backend(db_type).exists(first.name)


def test_snapshots_are_their_owners_alone(runtime, db_type, trainee):
    alice, _, name = course_database(trainee, db_type)
    taken = alice.post("/snapshots/take", data={"db_type": db_type, "name": name})
    ((number, _, _),) = snapshot_rows(taken.text)
    bob = trainee()
    for path, data in (("/snapshots/take", {}), ("/snapshots/revert", {"snapshot": number}),
                       ("/snapshots/delete", {"snapshot": number})):
        refused = bob.post(path, data={"db_type": db_type, "name": name, **data})
        assert refused.status_code == 403, path
    assert bob.get("/snapshots/", params={"db_type": db_type, "name": name}).status_code == 403
    with pytest.raises(Forbidden):
        runtime.snapshots.list(Actor(runtime.accounts.get(bob.user_name)), db_type, name)


def test_bad_snapshot_requests_are_400s(trainee, db_type):
    alice, _, name = course_database(trainee, db_type)
    where = {"db_type": db_type, "name": name}
    assert alice.post("/snapshots/revert", data={**where, "snapshot": "42; DROP"}).status_code == 400
    too_long = alice.post("/snapshots/take", data={**where, "label": "x" * 61})
    assert too_long.status_code == 400 and "at most 60 characters" in too_long.text
    escaped = alice.post("/snapshots/take", data={**where, "label": "<b>bold</b>"})
    assert "&lt;b&gt;bold&lt;/b&gt;" in escaped.text and "<b>bold</b>" not in escaped.text


def test_destroying_a_database_drops_its_snapshots(runtime, db_type, trainee, catalog):
    alice, _, name = course_database(trainee, db_type)
    alice.post("/snapshots/take", data={"db_type": db_type, "name": name})
    (snapshot,) = runtime.service.registry.snapshots(runtime.service.registry.database(db_type, name))
    gone = alice.post("/dbi/destroy_my_db", data={"db_type": db_type, "name": name})
    assert "Its 1 snapshot(s) were dropped with it." in gone.text
    assert snapshot.name not in catalog(db_type)


def test_snapshots_on_the_command_line(cli, runtime, db_type, db_name):
    instructor = Actor(runtime.accounts.get(INSTRUCTOR))
    runtime.service.create(instructor, db_type, db_name, course="franchise")
    taken = cli("snapshot", "take", "--db-type", db_type, "--name", db_name, "--label", "first")
    assert taken.returncode == 0, taken.stderr
    listed = cli("snapshot", "list", "--db-type", db_type, "--name", db_name)
    number = re.search(r"^\s+(\d+)\s+\d{4}-.*\"first\"", listed.stdout, re.M).group(1)
    reverted = cli("snapshot", "revert", "--db-type", db_type, "--name", db_name, number)
    assert reverted.returncode == 0, reverted.stderr
    assert f"Reverted {db_name} to" in reverted.stdout
    missing = cli("snapshot", "revert", "--db-type", db_type, "--name", db_name, "99999")
    assert missing.returncode == 2 and "has no snapshot 99999" in missing.stderr


def test_a_database_dropped_by_hand_takes_its_snapshots_along_when_reconciled(
    runtime, db_type, trainee, admin, catalog
):
    _, _, name = course_database(trainee, db_type)
    owner = Actor(runtime.accounts.get(runtime.service.registry.database(db_type, name).owner))
    snapshot, _ = runtime.snapshots.take(owner, db_type, name)
    with admin[db_type].connect() as connection:  # with the server's own tools
        force = " WITH (FORCE)" if db_type == "postgres" else ""
        connection.exec_driver_sql(f"DROP DATABASE {name}{force}")

    report = runtime.reconciler.run()
    assert f"{db_type}:{name}" in report.forgotten
    assert snapshot.name not in catalog(db_type)  # its content was the login's, which is gone too


@pytest.mark.backend("mysql")
def test_a_view_broken_by_the_trainee_is_a_clear_refusal_and_nothing_changes(runtime, trainee, rows):
    alice, credentials, name = course_database(trainee, "mysql")
    where = {"db_type": "mysql", "name": name}
    taken = alice.post("/snapshots/take", data=where)
    ((number, _, _),) = snapshot_rows(taken.text)
    run_as("mysql", credentials, name, "DELETE FROM orders")
    run_as("mysql", credentials, name, "DROP TABLE stock")  # low_stock reads it: the view is broken

    for path, data in (("/snapshots/revert", {"snapshot": number}), ("/snapshots/take", {})):
        refused = alice.post(path, data={**where, **data})
        assert refused.status_code == 409, path
        assert "The view(s) low_stock of" in refused.text and "Nothing was changed." in refused.text
    assert rows("mysql", name) == {"stores": 40, "items": 200, "orders": 0}  # as the trainee left it

    run_as("mysql", credentials, name, "DROP VIEW low_stock")  # as the message says
    reverted = alice.post("/snapshots/revert", data={**where, "snapshot": number})
    assert reverted.status_code == 200, reverted.text
    assert rows("mysql", name) == FRANCHISE


def test_reverting_over_and_over_keeps_a_trainees_snapshots_within_their_quota_and_one(trainee, runtime, db_type):
    """A revert keeps what the database held as a snapshot past the quota, once: every revert
    would otherwise leave one more whole copy of the database on the server."""
    alice = trainee()
    assert alice.get("/dbi/create_my_db", params={"db_type": db_type}).status_code == 200
    actor = Actor(runtime.accounts.get(alice.user_name))
    snapshots = Snapshots(runtime.service, quota=1)
    taken, _ = snapshots.take(actor, db_type, None)
    snapshots.revert(actor, db_type, None, taken.id)
    with pytest.raises(Refused, match="quota of 1 and the one a revert may keep past it; delete one first"):
        snapshots.revert(actor, db_type, None, taken.id)
    _, _, kept = snapshots.list(actor, db_type, None)
    assert len(kept) == snapshots.quota + 1
