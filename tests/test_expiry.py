"""Expiry: every database has one; the background job archives, then drops, what is due."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import cherrypy
from cherrypy.process.plugins import Monitor

from dbwrapper.accounts import Actor
from dbwrapper.expiry import Purger
from dbwrapper.web.pages import shown_expiry
from tests.conftest import INSTRUCTOR, audit_of, audit_rows
from tests.test_archives import _broken


def _make_due(runtime, db_type, name) -> None:
    instructor = Actor(runtime.accounts.get(INSTRUCTOR))
    runtime.expiry.set(instructor, db_type, name, datetime.now(UTC) - timedelta(minutes=1))


def test_a_new_database_expires_after_the_configured_lifetime(trainee, runtime, db_type):
    alice = trainee()
    page = alice.get("/dbi/create_my_db", params={"db_type": db_type})
    record = runtime.service.registry.database(db_type, f"{alice.user_name}_{runtime.settings.port}")
    expected = datetime.now(UTC) + timedelta(hours=runtime.settings.lifetime_hours)
    assert abs(record.expires_at - expected) < timedelta(minutes=1)
    # As the page says it at once: the registry's moment, and how far off it is.
    assert f"Expires: {shown_expiry(record.expires_at)}" in page.text, record.expires_at


def test_the_job_archives_then_drops_what_is_due(browser, runtime, db_type, db_name, catalog):
    browser.get("/dbi/create_my_db", params={"db_type": db_type, "name": db_name})
    _make_due(runtime, db_type, db_name)
    assert f"{db_type}:{db_name}" in runtime.purger.due()

    assert f"{db_type}:{db_name}" in runtime.purger.run_once()
    assert db_name not in catalog(db_type)
    instructor = Actor(runtime.accounts.get(INSTRUCTOR))
    archived = [m for m in runtime.archives.list(instructor) if m.database == db_name]
    assert len(archived) == 1
    rows = audit_rows(browser.get("/audit").text, f"{db_type}:{db_name}")
    assert any({"dbwrapper (expiry)", "archive and drop", "ok"} <= row for row in rows), rows


def test_a_database_whose_archive_fails_is_kept_and_purged_later(
    runtime, browser, db_type, db_name, catalog, tmp_path
):
    browser.get("/dbi/create_my_db", params={"db_type": db_type, "name": db_name})
    _make_due(runtime, db_type, db_name)
    broken = Purger(runtime.service, runtime.expiry, _broken(runtime, tmp_path, db_type, "exit 1"))

    assert broken.run_once() == []  # no exception escapes: the job must keep running
    assert db_name in catalog(db_type)
    (entry, *_) = audit_of(runtime, f"{db_type}:{db_name}")  # newest first
    assert (entry.action, entry.outcome) == ("archive and drop", "failed"), entry

    assert f"{db_type}:{db_name}" in runtime.purger.run_once()
    assert db_name not in catalog(db_type)


def test_a_permanent_database_is_never_purged(runtime, browser, db_type, db_name, catalog):
    browser.get("/dbi/create_my_db", params={"db_type": db_type, "name": db_name})
    _make_due(runtime, db_type, db_name)
    done = browser.post("/dbi/expiry", data={"db_type": db_type, "name": db_name, "change": "permanent"})
    assert done.status_code == 200
    assert f"{db_name} is now permanent" in done.text
    assert runtime.service.registry.database(db_type, db_name).expires_at is None
    runtime.purger.run_once()
    assert db_name in catalog(db_type)


def test_instructors_see_what_expires_next_and_extend_it(runtime, browser, trainee, db_type, db_name):
    browser.get("/dbi/create_my_db", params={"db_type": db_type, "name": db_name})
    _make_due(runtime, db_type, db_name)
    home = browser.get("/").text
    assert f"<code>{db_name}</code>" in home.split("Expiring next", 1)[1]
    assert "(due now)" in home

    extended = browser.post("/dbi/expiry", data={"db_type": db_type, "name": db_name, "change": "extend"})
    assert "(in 7 days)" in extended.text.split("Expiring next", 1)[0]
    assert "(in 7 days)" not in browser.get("/").text.split("Expiring next", 1)[0], "said once"
    expires = runtime.service.registry.database(db_type, db_name).expires_at
    assert timedelta(days=6, hours=23) < expires - datetime.now(UTC) <= timedelta(days=7)

    alice = trainee()
    refused = alice.post("/dbi/expiry", data={"db_type": db_type, "name": db_name, "change": "permanent"})
    assert refused.status_code == 403
    assert runtime.service.registry.database(db_type, db_name).expires_at == expires


def test_the_job_runs_in_the_background(runtime, browser, db_type, db_name, catalog):
    browser.get("/dbi/create_my_db", params={"db_type": db_type, "name": db_name})
    _make_due(runtime, db_type, db_name)
    monitor = Monitor(cherrypy.engine, runtime.purger.run_once, frequency=0.2, name="test expiry")
    monitor.start()
    try:
        deadline = time.monotonic() + 30
        while db_name in catalog(db_type) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        monitor.stop()
    assert db_name not in catalog(db_type)


def test_without_archive_on_expiry_the_job_only_drops(runtime, browser, db_type, db_name, catalog):
    browser.get("/dbi/create_my_db", params={"db_type": db_type, "name": db_name})
    _make_due(runtime, db_type, db_name)
    purger = Purger(runtime.service, runtime.expiry, runtime.archives, archive_first=False)
    assert f"{db_type}:{db_name}" in purger.run_once()
    assert db_name not in catalog(db_type)
    instructor = Actor(runtime.accounts.get(INSTRUCTOR))
    assert not [m for m in runtime.archives.list(instructor) if m.database == db_name]


def test_expiry_on_the_command_line(cli, browser, runtime, db_type, db_name, catalog):
    browser.get("/dbi/create_my_db", params={"db_type": db_type, "name": db_name})
    assert cli("expiry", "set", "--db-type", db_type, "--name", db_name, "--days", "-1").returncode == 0
    assert db_name in cli("expiry", "list").stdout
    purged = cli("expiry", "purge")
    assert purged.returncode == 0, purged.stderr
    assert f"{db_type}:{db_name}" in purged.stdout
    assert db_name not in catalog(db_type)


def test_a_time_the_registry_hands_back_naive_is_shown_as_the_utc_it_is(monkeypatch):
    """SQLite returns times without their zone; on a machine whose clock is not in UTC they must
    not be taken for its local time."""
    import time

    from dbwrapper.formatting import utc_text

    monkeypatch.setenv("TZ", "Europe/Paris")
    time.tzset()
    try:
        assert utc_text(datetime(2026, 1, 1, 12, 0, 0), seconds=True) == "2026-01-01 12:00:00 UTC"
        assert utc_text(datetime(2026, 1, 1, 12, 0, tzinfo=UTC)) == "2026-01-01 12:00 UTC"
    finally:
        monkeypatch.undo()
        time.tzset()
