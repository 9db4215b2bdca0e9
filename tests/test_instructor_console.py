"""The instructor's console over a class: every listed database acts, a course makes a database
for anyone, archives (and drops) from the pages, expiry both ways, and an audit log that pages
and filters, on the pages and on the command line."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from dbwrapper.formatting import human_expiry
from dbwrapper.registry import AuditEntry
from tests.conftest import INSTRUCTOR, audit_of, audit_rows, fresh_name, login_of
from tests.test_remote_cli import remote, token_for  # noqa: F401  (fixtures: the command line elsewhere, a token)


def row_of(page: str, name: str) -> str:
    """The table row of ``page`` that names the database ``name``."""
    found = [row for row in re.findall(r"<tr\b[^>]*>.*?</tr>", page, re.S) if f"<code>{name}</code>" in row]
    assert len(found) == 1, found
    return found[0]


def database_page(db_type: str, name: str) -> str:
    return f"/dbi/database?{urlencode({'db_type': db_type, 'name': name})}"


def drop_archives(runtime, instructor, db_type: str, name: str) -> None:
    """Delete the archives a test made of ``name``: the archive directory is the whole session's."""
    for manifest in runtime.archives.list(instructor):
        if (manifest.engine, manifest.database) == (db_type, name):
            runtime.archives.delete(instructor, manifest.id)


# -- every listing row acts ---------------------------------------------------------------------


def test_a_managed_databases_row_opens_its_page_and_destroys_it_each_naming_it(browser, db_type, managed_db):
    row = row_of(browser.get("/dbi/list", params={"db_type": db_type}).text, managed_db)
    opened = html.escape(database_page(db_type, managed_db))
    assert f'href="{opened}" aria-label="Open {managed_db}"' in row
    assert f'aria-label="Destroy {managed_db}…"' in row
    confirm = browser.get("/dbi/destroy_my_db", params={"db_type": db_type, "name": managed_db})
    assert f"Destroy {managed_db}?" in confirm.text


def test_a_database_dbwrapper_did_not_make_has_no_action_in_its_row(browser, db_type, unmanaged_name, admin):
    engine = admin[db_type]
    with engine.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {engine.dialect.identifier_preparer.quote(unmanaged_name)}")
    row = row_of(browser.get("/dbi/list", params={"db_type": db_type}).text, unmanaged_name)
    assert "aria-label" not in row and "the server's" in row
    assert browser.get(database_page(db_type, unmanaged_name)).status_code == 404


def test_a_databases_page_shows_how_to_connect_its_snapshots_archives_and_the_console(
    browser, runtime, instructor, db_type, managed_db,
):
    runtime.snapshots.take(instructor, db_type, managed_db, "before the joins")
    archive = runtime.archives.archive(instructor, db_type, managed_db)
    try:
        page = browser.get(database_page(db_type, managed_db))
        assert page.status_code == 200
        assert login_of(runtime, db_type, managed_db).password in page.text
        assert "before the joins" in page.text and archive.id in page.text
        assert html.escape(f"/console/?db_type={db_type}&name={managed_db}") in page.text
        assert 'value="extend"' in page.text and 'value="permanent"' in page.text
    finally:
        drop_archives(runtime, instructor, db_type, managed_db)


def test_a_databases_page_is_its_owners_and_the_instructors_only(browser, trainee, db_type, managed_db):
    alice = trainee()
    assert alice.get(database_page(db_type, managed_db)).status_code == 403
    own = f"{alice.user_name}_{fresh_name()}"
    assert alice.get(database_page(db_type, own)).status_code == 404
    alice.get("/dbi/create_my_db", params={"db_type": db_type, "name": own})
    mine = alice.get(database_page(db_type, own))
    assert mine.status_code == 200 and "Owner: " + alice.user_name in mine.text
    assert 'action="/dbi/expiry"' not in mine.text  # expiry is the instructors' to change
    assert browser.get(database_page(db_type, own)).status_code == 200


def test_archive_and_drop_from_a_databases_page(browser, runtime, instructor, db_type, managed_db, catalog):
    try:
        done = browser.post("/archives/create", data={"db_type": db_type, "name": managed_db, "drop": "yes"})
        assert done.status_code == 200 and done.url.endswith("/archives/")
        assert f"Archived {managed_db} as" in done.text and f"Dropped {managed_db}." in done.text
        assert managed_db not in catalog(db_type)
        assert runtime.service.registry.database(db_type, managed_db) is None
        assert [m.database for m in runtime.archives.list(instructor) if m.database == managed_db] == [managed_db]
    finally:
        drop_archives(runtime, instructor, db_type, managed_db)


def test_expiry_changes_from_a_databases_page_come_back_to_it_and_say_what_they_did(
    browser, runtime, db_type, managed_db,
):
    form = {"db_type": db_type, "name": managed_db, "next": database_page(db_type, managed_db)}
    kept = browser.post("/dbi/expiry", data={**form, "change": "permanent"})
    assert kept.url.endswith(database_page(db_type, managed_db))
    assert f"{managed_db} is now permanent: it never expires." in kept.text
    assert 'value="mortal"' in kept.text and "Expire in 14 days" in kept.text
    mortal = browser.post("/dbi/expiry", data={**form, "change": "mortal"})
    record = runtime.service.registry.database(db_type, managed_db)
    assert record.expires_at is not None
    assert timedelta(days=13, hours=23) < record.expires_at - datetime.now(UTC) <= timedelta(days=14)
    assert f"{managed_db} now expires {human_expiry(record.expires_at)}." in mortal.text


def test_an_unknown_expiry_change_is_a_400_naming_the_valid_ones(browser, db_type, managed_db):
    refused = browser.post("/dbi/expiry", data={"db_type": db_type, "name": managed_db, "change": "immortal"})
    assert refused.status_code == 400 and "extend, permanent, mortal" in refused.text


# -- permanent databases are listed, and can expire again -----------------------------------------


def test_the_home_page_lists_what_is_kept_for_ever_and_makes_it_mortal_again(browser, runtime, db_type, managed_db):
    browser.post("/dbi/expiry", data={"db_type": db_type, "name": managed_db, "change": "permanent"})
    home = browser.get("/").text
    kept_for_ever = home.split("<h2>Kept for ever</h2>", 1)[1]
    row = row_of(kept_for_ever, managed_db)
    assert f'aria-label="Expire in 14 days: {managed_db}"' in row
    done = browser.post("/dbi/expiry", data={"db_type": db_type, "name": managed_db, "change": "mortal"})
    assert done.url.endswith("/") and f"{managed_db} now expires " in done.text and "(in 14 days)." in done.text
    assert f"<code>{managed_db}</code>" not in done.text.split("<h2>Kept for ever</h2>", 1)[1]
    assert runtime.service.registry.database(db_type, managed_db).expires_at is not None


# -- a database of a course, from the Courses page --------------------------------------------------


def test_the_courses_page_makes_a_course_database_for_a_trainee_and_shows_it(
    browser, runtime, trainee, db_type, settings, rows,
):
    alice = trainee()
    page = browser.get("/courses/")
    assert f'<option value="{alice.user_name}">' in page.text
    assert 'aria-label="Create a database of franchise"' in page.text
    made = browser.post("/courses/create", data={"course": "franchise", "db_type": db_type, "owner": alice.user_name})
    name = f"{alice.user_name}_{settings.port}"
    assert made.status_code == 200 and made.url.endswith(database_page(db_type, name))
    assert f"Created {name}" in made.text and "for the course franchise" in made.text
    assert login_of(runtime, db_type, name).password in made.text
    assert runtime.service.registry.database(db_type, name).owner == alice.user_name
    assert rows(db_type, name)["stores"] == 40


def test_the_courses_page_makes_one_for_the_instructor_by_default_under_the_name_given(
    browser, runtime, db_type, db_name,
):
    made = browser.post("/courses/create", data={"course": "franchise", "db_type": db_type, "name": db_name})
    assert made.url.endswith(database_page(db_type, db_name))
    assert runtime.service.registry.database(db_type, db_name).owner == INSTRUCTOR


def test_the_courses_page_refuses_an_unknown_owner_and_trainees(browser, trainee, db_type):
    unknown = browser.post("/courses/create", data={"course": "franchise", "db_type": db_type, "owner": "nobody_x"})
    assert unknown.status_code == 400 and "There is no user named &#39;nobody_x&#39;" in unknown.text
    alice = trainee()
    assert alice.post("/courses/create", data={"course": "franchise", "db_type": db_type}).status_code == 403


# -- the archives page archives (and drops) any database ------------------------------------------


def test_the_archives_page_archives_and_drops_a_database_it_offers(
    browser, runtime, instructor, db_type, managed_db, catalog,
):
    offered = f'<option value="{db_type}:{managed_db}">'
    assert offered in browser.get("/archives/").text
    try:
        kept = browser.post("/archives/create", data={"database": f"{db_type}:{managed_db}"})
        assert f"Archived {managed_db} as" in kept.text and "Dropped" not in kept.text
        assert managed_db in catalog(db_type)
        dropped = browser.post("/archives/create", data={"database": f"{db_type}:{managed_db}", "drop": "yes"})
        assert f"Dropped {managed_db}." in dropped.text and offered not in dropped.text
        assert managed_db not in catalog(db_type)
        assert len([m for m in runtime.archives.list(instructor) if m.database == managed_db]) == 2
    finally:
        drop_archives(runtime, instructor, db_type, managed_db)


def test_a_trainee_is_offered_only_their_own_databases_to_archive(trainee, db_type, managed_db):
    alice = trainee()
    own = f"{alice.user_name}_{fresh_name()}"
    alice.get("/dbi/create_my_db", params={"db_type": db_type, "name": own})
    page = alice.get("/archives/").text
    assert f'value="{db_type}:{own}"' in page and managed_db not in page
    refused = alice.post("/archives/create", data={"database": f"{db_type}:{managed_db}", "drop": "yes"})
    assert refused.status_code == 403


def test_drop_is_yes_or_nothing(browser, db_type, managed_db):
    refused = browser.post("/archives/create", data={"database": f"{db_type}:{managed_db}", "drop": "maybe"})
    assert refused.status_code == 400 and "drop is yes or nothing" in refused.text


# -- the audit log pages and filters ----------------------------------------------------------------


def logged(runtime, target: str, count: int, *, action: str = "create", at: datetime | None = None) -> None:
    """``count`` entries about ``target`` (a name nobody else's entries have), the newest last."""
    for _ in range(count):
        entry = AuditEntry.new("tester (tests)", action, target)
        if at is not None:
            entry.at = at
        runtime.accounts.registry.add_audit(entry)


def test_the_audit_page_pages_a_hundred_at_a_time_keeping_its_filters(browser, runtime):
    target = f"postgres:{fresh_name()}"
    logged(runtime, target, 103)
    first = browser.get("/audit", params={"target": target})
    assert len(audit_rows(first.text, target)) == 100
    older = re.search(r'<a href="(/audit\?[^"]+)" rel="next">Older entries</a>', first.text)
    assert older is not None
    second = browser.get(html.unescape(older.group(1)))
    assert len(audit_rows(second.text, target)) == 3
    assert 'rel="next"' not in second.text and 'rel="prev"' in second.text
    assert f'name="target" value="{target}"' in second.text


def test_the_audit_page_filters_by_user_action_and_time(browser, runtime):
    target = f"mysql:{fresh_name()}"
    long_ago = datetime(2020, 1, 1, 12, tzinfo=UTC)
    logged(runtime, target, 1, action="destroy", at=long_ago)
    logged(runtime, target, 2, action="create")
    form = browser.get("/audit").text
    for field in ("actor", "target", "action", "since", "until"):
        assert re.search(rf'<label>[^<]+<input name="{field}"', form), field
    by_action = browser.get("/audit", params={"target": target, "action": "destroy"}).text
    assert [row for row in audit_rows(by_action, target)] == [
        {"2020-01-01 12:00:00 UTC", "tester (tests)", "destroy", target, "ok", ""}
    ]
    in_2020 = browser.get("/audit", params={"target": target, "since": "2020-01-01", "until": "2020-01-02"})
    assert len(audit_rows(in_2020.text, target)) == 1
    assert len(audit_rows(browser.get("/audit", params={"target": target, "actor": "tester"}).text, target)) == 3
    assert audit_rows(browser.get("/audit", params={"target": target, "actor": "test"}).text, target) == []


def test_a_bad_audit_filter_is_a_400_that_names_it(browser):
    bad = browser.get("/audit", params={"since": "yesterday"})
    assert bad.status_code == 400 and "since is a time such as" in bad.text
    assert browser.get("/audit", params={"page": "0"}).status_code == 400


def test_the_audit_log_on_the_command_line_filters_and_pages_the_same(cli, runtime):
    target = f"postgres:{fresh_name()}"
    logged(runtime, target, 1, action="destroy", at=datetime(2020, 1, 1, 12, tzinfo=UTC))
    logged(runtime, target, 101)
    first = cli("audit", "--target", target, "--actor", "tester")
    assert first.returncode == 0, first.stderr
    assert first.stdout.count(target) == 100 and "Older entries: --page 2" in first.stdout
    second = cli("audit", "--target", target, "--page", "2")
    assert second.stdout.count(target) == 2
    old = cli("audit", "--target", target, "--action", "destroy", "--until", "2020-01-02 00:00")
    assert old.stdout.count(target) == 1 and "2020-01-01 12:00:00" in old.stdout
    bad = cli("audit", "--since", "soon")
    assert bad.returncode == 2 and "since is a time such as" in bad.stderr


def test_snapshot_entries_name_the_snapshot_as_its_users_see_it(runtime, instructor, db_type, managed_db):
    snapshot, _ = runtime.snapshots.take(instructor, db_type, managed_db, "before the joins")
    runtime.snapshots.delete(instructor, db_type, managed_db, str(snapshot.id))
    taken, deleted = (entry.detail for entry in reversed(audit_of(runtime, f"{db_type}:{managed_db}")[:2]))
    seen = f'#{snapshot.id} {snapshot.taken_at:%Y-%m-%d %H:%M:%S} UTC "before the joins"'
    assert taken.startswith(seen) and deleted.startswith(seen)


def test_the_audit_log_from_another_machine_filters_and_pages_through_the_api(remote, token_for, runtime):
    target = f"postgres:{fresh_name()}"
    logged(runtime, target, 1, action="destroy", at=datetime(2020, 1, 1, 12, tzinfo=UTC))
    logged(runtime, target, 100)
    token = token_for(INSTRUCTOR)
    first = remote(token, "audit", "--target", target)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count(target) == 100 and "Older entries: --page 2" in first.stdout
    assert remote(token, "audit", "--target", target, "--page", "2").stdout.count(target) == 1
    old = remote(token, "audit", "--target", target, "--until", "2020-01-02", "--action", "destroy")
    assert old.stdout.count(target) == 1 and "2020-01-01 12:00:00" in old.stdout
