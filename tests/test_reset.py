"""Resetting a course's database: the course's start again, with nothing lost.

A trainee who broke their data asks for it back as the course made it. What
the database held is kept as a snapshot ("before reset to <course>"), the login
and its password stay as they were, and the content comes from the course's
warm pool when it has a ready copy, or as a copy of the course's master.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from dbwrapper.accounts import Actor
from dbwrapper.copies import CourseCopies
from dbwrapper.errors import Forbidden, InvalidInput
from tests.conftest import audit_of
from tests.test_api import Client, key, token_for
from tests.test_copies import owners, shape
from tests.test_courses import FRANCHISE
from tests.test_isolation import run_as
from tests.test_snapshots import course_database


def actor_of(runtime, browser) -> Actor:
    """The trainee of ``browser``, as the service layer knows them."""
    return Actor(runtime.accounts.get(browser.user_name), via="tests")


def tables(look_inside, db_type: str, name: str) -> set[str]:
    query = {
        "postgres": "SELECT tablename FROM pg_catalog.pg_tables WHERE schemaname = 'public'",
        "mysql": "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()",
    }[db_type]
    with look_inside(db_type, name) as connection:
        return set(connection.execute(text(query)).scalars())


def break_it(db_type: str, credentials: dict[str, str], name: str) -> None:
    """What a trainee does to their course's database: rows gone, a table of their own."""
    for sql in ("DELETE FROM orders", "CREATE TABLE notes (n INT)"):
        done = run_as(db_type, credentials, name, sql)
        assert done.returncode == 0, done.stderr


@pytest.fixture
def pool(runtime) -> Iterator[CourseCopies]:
    """The course's warm pool, filled by the test itself and emptied afterwards."""
    yield CourseCopies(runtime.servers, pool_size=1)
    registry = runtime.service.registry
    for spare in [*registry.copies(kind="spare"), *registry.copies(kind="spent")]:
        runtime.servers.backend(spare.db_type).drop_database(spare.name, spare.name, registered=True)
        registry.forget_copy(spare)


def test_a_trainee_resets_their_course_database_and_keeps_what_it_held(
    runtime, trainee, db_type, rows, look_inside, catalog,
):
    alice, credentials, name = course_database(trainee, db_type)
    break_it(db_type, credentials, name)
    home = alice.get("/")
    assert f"/dbi/reset_my_db?db_type={db_type}&amp;name={name}" in home.text

    asked = alice.get("/dbi/reset_my_db", params={"db_type": db_type, "name": name})
    assert asked.status_code == 200, asked.text
    assert "franchise" in asked.text and "before reset to franchise" in asked.text
    assert rows(db_type, name)["orders"] == 0  # asking changed nothing

    done = alice.post("/dbi/reset_my_db", data={"db_type": db_type, "name": name})
    assert done.status_code == 200 and done.url.endswith("/"), done.text  # back home, told once
    assert f"Reset {name} to the start of the course franchise" in done.text
    assert "to the start of the course" not in alice.get("/").text  # said once

    assert rows(db_type, name) == FRANCHISE
    assert "notes" not in tables(look_inside, db_type, name)
    # The same login and password open it, and it owns what came back.
    assert owners(look_inside, db_type, name) == {name}
    dropped = run_as(db_type, credentials, name, "DROP VIEW low_stock")
    assert dropped.returncode == 0, dropped.stderr

    record = runtime.service.registry.database(db_type, name)
    (before,) = runtime.service.registry.snapshots(record)
    assert before.label == "before reset to franchise" and before.state == "ready"
    assert before.name in catalog(db_type)
    assert rows(db_type, before.name)["orders"] == 0 and "notes" in tables(look_inside, db_type, before.name)
    (entry,) = [e for e in audit_of(runtime, f"{db_type}:{name}") if e.action == "reset"]
    assert entry.outcome == "ok" and entry.detail == "to franchise, copied from its master"


def test_a_reset_swaps_in_a_ready_copy_from_the_pool(runtime, trainee, db_type, pool, rows, look_inside, catalog):
    alice, credentials, name = course_database(trainee, db_type)
    backend = runtime.servers.backend(db_type)
    pool.top_up(backend, "franchise", runtime.service.course_sql("franchise", backend))
    (spare,) = runtime.service.registry.copies(db_type, "franchise", "spare")
    master = runtime.service.copies.master(backend, "franchise", runtime.service.course_sql("franchise", backend))
    break_it(db_type, credentials, name)

    said = runtime.snapshots.reset(actor_of(runtime, alice), db_type, name)
    assert said.startswith(f"Reset {name} to the start of the course franchise.")

    (entry,) = [e for e in audit_of(runtime, f"{db_type}:{name}") if e.action == "reset"]
    assert entry.detail == "to franchise, from the pool"
    assert runtime.service.registry.copies(db_type, "franchise", "spare") == []
    pool.drop_spent(backend)  # what the swap left of the spare (its login; MySQL: an empty database)
    assert spare.name not in catalog(db_type)
    assert shape(look_inside, backend, name) == shape(look_inside, backend, master.name)
    assert owners(look_inside, db_type, name) == {name}
    low = run_as(db_type, credentials, name, "SELECT count(*) FROM low_stock")
    assert low.returncode == 0 and low.stdout.strip() == "669", low.stderr
    (before,) = runtime.service.registry.snapshots(runtime.service.registry.database(db_type, name))
    assert rows(db_type, before.name)["orders"] == 0


def test_a_database_made_for_no_course_has_nothing_to_reset_to(runtime, trainee, db_type):
    alice = trainee()
    made = alice.get("/dbi/create_my_db", params={"db_type": db_type})
    assert made.status_code == 200, made.text
    name = f"{alice.user_name}_{runtime.settings.port}"
    assert "/dbi/reset_my_db" not in alice.get("/").text  # no button that leads to a 400
    for answer in (alice.get("/dbi/reset_my_db", params={"db_type": db_type, "name": name}),
                   alice.post("/dbi/reset_my_db", data={"db_type": db_type, "name": name})):
        assert answer.status_code == 400, answer.text
        assert "was not made for a course" in answer.text
    with pytest.raises(InvalidInput, match="not made for a course"):
        runtime.snapshots.reset(actor_of(runtime, alice), db_type, name)


def test_a_trainee_cannot_reset_someone_elses_database(runtime, trainee, db_type, rows):
    alice, credentials, name = course_database(trainee, db_type)
    run_as(db_type, credentials, name, "DELETE FROM orders")
    bob = trainee()
    refused = bob.post("/dbi/reset_my_db", data={"db_type": db_type, "name": name})
    assert refused.status_code == 403, refused.text
    with pytest.raises(Forbidden):
        runtime.snapshots.reset(actor_of(runtime, bob), db_type, name)
    assert rows(db_type, name)["orders"] == 0


def test_the_api_resets_as_an_operation_and_refuses_a_database_without_course(
    runtime, base_url, trainee, db_type, rows,
):
    alice, credentials, name = course_database(lambda: trainee(quota=2), db_type)
    run_as(db_type, credentials, name, "DELETE FROM orders")
    with Client(base_url, token_for(runtime, alice.user_name)) as script:
        path = f"/databases/{db_type}/{name}"
        assert script.get(path).json()["links"]["reset"] == f"/api/v1{path}/reset"
        ended = script.follow(script.post(path + "/reset", json={}, headers=key()))
        assert ended["state"] == "succeeded", ended
        assert rows(db_type, name) == FRANCHISE
        snapshots = script.get(path + "/snapshots").json()["snapshots"]
        assert [s["label"] for s in snapshots] == ["before reset to franchise"]

        plain = script.post("/databases", json={"db_type": db_type, "name": f"{alice.user_name}_plain"},
                            headers=key()).json()
        assert "reset" not in plain["links"]
        refused = script.post(f"/databases/{db_type}/{plain['name']}/reset", json={}, headers=key())
        assert refused.status_code == 400 and "not made for a course" in refused.json()["detail"]
