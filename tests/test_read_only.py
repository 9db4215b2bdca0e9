"""Read-only mode: an instructor lets a trainee read their database, not change it, with a
login that can only read (never a filter on what they type).

While it is on, the trainee is shown the reader's credentials (for psql, mysql, SQLAlchemy
and the console alike), the password they had before stops working, and the reader can read
every table, including those made since, and change none. Switched off, the trainee is shown
their own login again, with its new password.
"""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from dbwrapper.accounts import Actor
from dbwrapper.backends.base import Login
from dbwrapper.errors import Forbidden, Refused
from tests.test_snapshots import course_database

LOGINS = {"postgres": "SELECT 1 FROM pg_roles WHERE rolname = :name",
          "mysql": "SELECT 1 FROM mysql.user WHERE user = :name"}


def connects(url: str, sql: str = "SELECT 1") -> str:
    """Run ``sql`` with the URL's login as a trainee's own program does; ``ok`` or the error."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(text(sql))
        return "ok"
    except DBAPIError as error:
        return str(error.orig)
    finally:
        engine.dispose()


def trainee_with_database(runtime, trainee, db_type):
    """A trainee, as the service knows them, with a database holding one row."""
    alice = Actor(runtime.accounts.get(trainee().user_name), via="tests")
    outcome = runtime.service.create(alice, db_type)
    runtime.console.run(alice, db_type, outcome.name, "CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (1)")
    return alice, outcome


def test_a_read_only_database_is_read_with_a_login_that_cannot_write(runtime, trainee, instructor, db_type):
    alice, outcome = trainee_with_database(runtime, trainee, db_type)
    before = outcome.credentials.url
    said = runtime.read_only.switch_database(instructor, db_type, outcome.name, True)
    assert "read-only now" in said

    (shown,) = runtime.service.my_databases(alice)
    assert shown.login.name != outcome.credentials.login.name
    assert connects(shown.url, "SELECT v FROM t") == "ok"
    assert connects(shown.url, "INSERT INTO t VALUES (2)") != "ok"
    assert connects(before) != "ok", "the owner's password the trainee saw no longer works"

    made_since = runtime.console.run(instructor, db_type, outcome.name, "SELECT COUNT(*) FROM t")
    assert made_since.results[0].rows == [["1"]]
    run = runtime.console.run(alice, db_type, outcome.name, "SELECT v FROM t; UPDATE t SET v = 5")
    read, write = run.results
    assert read.rows == [["1"]] and write.error, run

    runtime.read_only.switch_database(instructor, db_type, outcome.name, False)
    (own,) = runtime.service.my_databases(alice)
    assert own.login.name == outcome.credentials.login.name
    assert connects(own.url, "INSERT INTO t VALUES (2)") == "ok"


def test_tables_made_after_the_switch_can_be_read_too(runtime, trainee, instructor, db_type):
    alice, outcome = trainee_with_database(runtime, trainee, db_type)
    runtime.read_only.switch_database(instructor, db_type, outcome.name, True)
    runtime.console.run(instructor, db_type, outcome.name, "SELECT 1")  # the reader is given what there is
    owner = runtime.service.registry.database(db_type, outcome.name)
    backend = runtime.service.servers.backend(db_type)
    url = backend.client_database_url(outcome.name, Login(owner.login, owner.password))
    assert connects(url.render_as_string(hide_password=False), "CREATE TABLE later (v INTEGER)") == "ok"
    (result,) = runtime.console.run(alice, db_type, outcome.name, "SELECT COUNT(*) FROM later").results
    assert result.rows == [["0"]], result


def test_a_course_switches_every_database_made_from_it(runtime, trainee, instructor, db_type):
    alice_browser, credentials, name = course_database(trainee, db_type)
    alice = Actor(runtime.accounts.get(alice_browser.user_name), via="tests")
    try:
        assert "read-only" in runtime.read_only.switch_course(instructor, "franchise", True)
        (shown,) = runtime.service.my_databases(alice)
        assert shown.login.name != make_url(credentials["url"]).username
        assert connects(credentials["url"]) != "ok"
        text_run = "SELECT COUNT(*) FROM stores; CREATE TABLE x (v INTEGER)"
        read, write = runtime.console.run(alice, db_type, name, text_run).results
        assert read.rows and write.error, (read, write)
    finally:
        runtime.read_only.switch_course(instructor, "franchise", False)
    (own,) = runtime.service.my_databases(alice)
    assert connects(own.url) == "ok"


def test_destroying_the_database_removes_its_reader(runtime, trainee, instructor, db_type, admin):
    alice, outcome = trainee_with_database(runtime, trainee, db_type)
    runtime.read_only.switch_database(instructor, db_type, outcome.name, True)
    reader = runtime.service.my_databases(alice)[0].login.name
    runtime.service.destroy(instructor, db_type, outcome.name)
    with admin[db_type].connect() as connection:
        assert connection.execute(text(LOGINS[db_type]), {"name": reader}).first() is None


def test_only_instructors_switch_it(runtime, trainee, db_type):
    alice, outcome = trainee_with_database(runtime, trainee, db_type)
    with pytest.raises(Forbidden):
        runtime.read_only.switch_database(alice, db_type, outcome.name, True)
    with pytest.raises(Forbidden):
        runtime.read_only.switch_course(alice, "franchise", True)


def test_the_api_switches_it_and_says_so(runtime, trainee, instructor, db_type, base_url):
    import requests

    alice, outcome = trainee_with_database(runtime, trainee, db_type)
    made, token = runtime.accounts.create_token(instructor, instructor.name, f"read-only {outcome.name}")
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {token}"
    path = f"{base_url}/api/v1/databases/{db_type}/{outcome.name}"
    try:
        assert api.get(path, timeout=60).json()["read_only"] is False
        switched = api.patch(path, json={"read_only": True}, timeout=60)
        assert switched.status_code == 200 and switched.json()["read_only"] is True
        assert "read-only" in runtime.service.registry.audit_entries()[0].action
        assert api.patch(path, json={"read_only": "yes"}, timeout=60).status_code == 400
    finally:
        runtime.accounts.revoke_token(instructor, instructor.name, made.id)


def test_the_courses_page_switches_a_course(browser, trainee, runtime, db_type):
    course_database(trainee, db_type)
    switched = browser.post("/courses/read_only", data={"course": "franchise", "on": "yes"})
    try:
        assert "are read-only" in switched.text and "Let them be written again" in switched.text
        assert runtime.service.registry.course("franchise").read_only
    finally:
        back = browser.post("/courses/read_only", data={"course": "franchise", "on": "no"})
    assert "no longer read-only" in back.text and "Make them read-only" in back.text
    assert not runtime.service.registry.course("franchise").read_only


def test_a_class_of_a_read_only_course_gets_the_readers_credentials(runtime, instructor, db_type):
    from tests.conftest import remove_users

    name = f"ro_{db_type}_{runtime.settings.port % 1000}"
    runtime.read_only.switch_course(instructor, "franchise", True)
    try:
        (made,) = runtime.classes.provision(instructor, [name], "franchise", db_type).done
        record = runtime.service.registry.database(db_type, made.access.database)
        assert made.access.login != record.login, "the sheet names the reader, not the owner"
        assert connects(made.access.url, "CREATE TABLE x (v INTEGER)") != "ok"
    finally:
        runtime.read_only.switch_course(instructor, "franchise", False)
        remove_users(runtime, [name])


def test_a_trainee_cannot_change_a_read_only_database_by_revert_reset_or_restore(runtime, trainee, instructor, db_type):
    alice_browser, _, name = course_database(trainee, db_type)
    alice = Actor(runtime.accounts.get(alice_browser.user_name), via="tests")
    snapshot, _ = runtime.snapshots.take(alice, db_type, name, "mine")
    manifest = runtime.archives.archive(alice, db_type, name)
    runtime.read_only.switch_database(instructor, db_type, name, True)
    for change in (lambda: runtime.snapshots.revert(alice, db_type, name, snapshot.id),
                   lambda: runtime.snapshots.reset(alice, db_type, name),
                   lambda: runtime.archives.restore(alice, manifest.id)):
        with pytest.raises(Refused, match="read-only"):
            change()
    assert "Reverted" in runtime.snapshots.revert(instructor, db_type, name, snapshot.id), "instructors still may"
