"""Nothing is lost when the process dies half-way: killed in the middle of a class
provisioning, a revert and a purge, then reconciled as the service does at its start.

Each crash is real: the command runs in its own process, which is ended with
``os._exit`` (no ``finally``, no cleanup, as with ``kill -9``) at a chosen step.
Afterwards no database that should exist is missing, nothing half-made is left,
and the registry matches what is on the servers.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from dbwrapper.accounts import Actor
from dbwrapper.backends.base import Login
from dbwrapper.names import RESERVED_PREFIX
from dbwrapper.registry import AuditEntry
from tests.conftest import INSTRUCTOR, Browser
from tests.test_courses import FRANCHISE
from tests.test_mysql_copies import ROUTINES_AND_TRIGGERS, as_login, boxes_of_a_new_order, execute

#: Runs ``dbwrapper ARGS`` with one method replaced: its first ``after`` calls go through; at
#: the next one the process ends on the spot ("exit"), or stops until it is sent SIGCONT
#: ("stop"), as if paused in the middle of its work, and then goes on.
CRASHING = """
import os, signal, sys, importlib
module, cls, method, after, how = sys.argv[1:6]
target = getattr(importlib.import_module(module), cls)
original = getattr(target, method)
calls = []
def crash(*args, **kwargs):
    calls.append(1)
    if len(calls) == int(after) + 1 and how == "stop":
        os.kill(os.getpid(), signal.SIGSTOP)
    elif len(calls) > int(after) and how == "exit":
        os._exit(9)
    return original(*args, **kwargs)
setattr(target, method, crash)
if sys.argv[6:] == ["reconcile"]:
    # The reconciler itself, as the tests drive it in-process: the command is refused beside
    # the tests' own service, which holds the registry lock all along.
    from dbwrapper.config import load_settings
    from dbwrapper.runtime import Runtime
    runtime = Runtime(load_settings())
    runtime.servers.start()
    runtime.reconciler.run()
    sys.exit(0)
from dbwrapper.cli import main
sys.exit(main(sys.argv[6:]))
"""

BACKEND_CLASS = {
    "postgres": ("dbwrapper.backends.postgresql.creation", "PostgreSQLCreation"),
    "mysql": ("dbwrapper.backends.mysql.creation", "MySQLCreation"),
}
#: Where each engine's logins are made (the login a create makes).
LOGINS_CLASS = {
    "postgres": ("dbwrapper.backends.postgresql.logins", "PostgreSQLLogins"),
    "mysql": ("dbwrapper.backends.mysql.logins", "MySQLLogins"),
}
#: MySQL's views, routines and triggers are made by the functions of this module.
MYSQL_OBJECTS = ("dbwrapper.backends.mysql", "objects")


@pytest.fixture
def crashing(server_urls, runtime):
    """``crashing((module, class), method, after, *args)``: run ``dbwrapper ARGS`` as the ``cli``
    fixture does, dying at that call (``reconciled=False``: from the registry as it is)."""
    environment = {
        "DBWRAPPER_POSTGRES_URL": server_urls["postgres"],
        "DBWRAPPER_MYSQL_URL": server_urls["mysql"],
        "DBWRAPPER_ARCHIVE_DIR": str(runtime.archives.directory),
    }

    def run(
        where: tuple[str, str], method: str, after: int, *args: str, reconciled: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        # From a registry that matches the servers, so that the command's own start finds
        # nothing to reconcile, and the counted calls are the command's (unless the command
        # is to reconcile what a crash left).
        if reconciled:
            runtime.reconciler.run()
        done = subprocess.run(
            [sys.executable, "-c", CRASHING, *where, method, str(after), "exit", *args],
            env={**os.environ, **environment}, capture_output=True, text=True, timeout=120,
            cwd=Path(__file__).parent,
        )
        runtime.service.registry.refresh()  # the other process changed the registry
        return done

    return run


def assert_registry_matches_servers(runtime, db_type):
    """Every ready record has its database; every marked database is recorded or dbwrapper's own."""
    backend = runtime.servers.backend(db_type)
    on_server = {info.name: info for info in backend.list_databases(fresh=True)}
    registry = runtime.service.registry
    for record in registry.databases(db_type):
        assert record.ready, f"{record.name} is still half-made"
        assert record.name in on_server, f"{record.name} is recorded but missing"
        for snapshot in registry.snapshots(record):
            assert snapshot.state == "ready" and snapshot.name in on_server
    recorded = {record.name for record in registry.databases(db_type)}
    for name, info in on_server.items():
        if info.managed and not name.startswith(RESERVED_PREFIX) and name != "dbwrapper":
            assert name in recorded, f"{name} is on the server but unknown"


def test_killed_in_the_middle_of_a_class(runtime, crashing, db_type, tmp_path, catalog, rows):
    names = [f"crash_{db_type[:2]}_{n}" for n in range(4)]
    roster = tmp_path / "roster.csv"
    roster.write_text("\n".join(names) + "\n")
    args = ("class", "provision", str(roster), "--course", "franchise", "--db-type", db_type,
            "--sheet", str(tmp_path / "sheet.html"))
    # The master's content is copied into each trainee's database; dies during the third copy.
    died = crashing(BACKEND_CLASS[db_type], "copy_content", 2, *args)
    assert died.returncode == 9, died.stderr
    databases = [f"{name}_7001" for name in names]
    half_made = runtime.service.registry.database(db_type, databases[2])
    assert half_made is not None and not half_made.ready

    report = runtime.reconciler.run()
    assert f"{db_type}:{databases[2]}" in report.unfinished
    assert databases[2] not in catalog(db_type)
    assert_registry_matches_servers(runtime, db_type)
    for done in databases[:2]:  # those made before the crash are whole
        assert rows(db_type, done) == FRANCHISE

    again = crashing(BACKEND_CLASS[db_type], "copy_content", 99, *args)  # runs to the end
    assert again.returncode == 0, again.stderr
    assert "4 provisioned, 0 failed" in again.stdout
    assert_registry_matches_servers(runtime, db_type)
    instructor = Actor(runtime.accounts.get(INSTRUCTOR))
    for name, database in zip(names, databases, strict=True):
        runtime.service.destroy(instructor, db_type, database)
        runtime.accounts.remove(name, by="tests")


@pytest.mark.parametrize("step", ["sessions ended", "set aside", "copy back"])
def test_killed_in_the_middle_of_a_revert(runtime, crashing, db_type, db_name, catalog, step, as_owner, rows):
    instructor = Actor(runtime.accounts.get(INSTRUCTOR))
    runtime.service.create(instructor, db_type, db_name, course="franchise")
    snapshot, _ = runtime.snapshots.take(instructor, db_type, db_name, "clean")
    with as_owner(db_type, db_name) as connection:
        connection.execute(text("DELETE FROM orders"))  # the work since the snapshot
    # "copy back": PostgreSQL dies once the database is set aside (renamed), as the clone's
    # CREATE DATABASE is about to run (the first is the registry's, at start); MySQL once its
    # tables and views are moved aside, as the snapshot is about to be copied in.
    # "set aside": while it is being set aside (MySQL: tables moved, views not yet made again;
    # PostgreSQL: before the renaming transaction). "sessions ended": before anything is set
    # aside, but with the login shut out already (MySQL locks it while root copies in).
    where, method, after = {
        (db_type, "sessions ended"): (BACKEND_CLASS[db_type], "end_sessions", 0),
        ("postgres", "copy back"): (BACKEND_CLASS["postgres"], "create", 1),
        ("mysql", "copy back"): (BACKEND_CLASS["mysql"], "copy_content", 0),
        ("postgres", "set aside"): (BACKEND_CLASS["postgres"], "move_to_backup", 0),
        ("mysql", "set aside"): (MYSQL_OBJECTS, "make_views", 0),
    }[db_type, step]
    died = crashing(where, method, after, "snapshot", "revert", "--db-type", db_type,
                    "--name", db_name, str(snapshot.id))
    assert died.returncode == 9, died.stderr

    report = runtime.reconciler.run()
    assert f"{db_type}:{db_name}" in report.put_back
    # The revert did not happen: the database holds what it held, work included, and nothing
    # is lost; the snapshot is still there to revert to. Its login is let in again: the rows
    # are counted as it.
    assert rows(db_type, db_name) == {**FRANCHISE, "orders": 0}
    assert_registry_matches_servers(runtime, db_type)
    _, _, kept = runtime.snapshots.list(instructor, db_type, db_name)
    assert [s.label for s in kept] == ["clean"] and snapshot.name in catalog(db_type)
    runtime.snapshots.revert(instructor, db_type, db_name, snapshot.id)
    assert rows(db_type, db_name) == FRANCHISE


@pytest.mark.backend("mysql")
@pytest.mark.parametrize("step", ["triggers set aside", "the snapshot's triggers", "putting back"])
def test_killed_while_a_reverts_triggers_are_off(runtime, crashing, db_name, step, rows):
    """MySQL moves no table with triggers to another database: a revert drops them, moves the
    tables, and makes them again there. Killed while they exist nowhere but in the ledger, or
    while the snapshot's own are made, or even while reconciling puts the database back,
    nothing is lost: triggers, routines and views are the database's own again."""
    instructor = Actor(runtime.accounts.get(INSTRUCTOR))
    runtime.service.create(instructor, "mysql", db_name, course="franchise")
    backend = runtime.servers.backend("mysql")
    record = runtime.service.registry.database("mysql", db_name)
    owner = as_login(backend.database_url(db_name, Login(record.login, record.password)).render_as_string(False))
    execute(owner, *ROUTINES_AND_TRIGGERS)
    snapshot, _ = runtime.snapshots.take(instructor, "mysql", db_name, "clean")
    execute(owner, "DELETE FROM orders", "DROP TRIGGER at_most_50",  # the work since the snapshot
            "CREATE TRIGGER no_deletes BEFORE DELETE ON stores FOR EACH ROW "
            "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'stores stay'")
    # The first trigger made is the set-aside copy's (its tables moved, their triggers in the
    # ledger only); the second the snapshot's, copied in after its tables, rows and views.
    revert = ("snapshot", "revert", "--db-type", "mysql", "--name", db_name, str(snapshot.id))
    died = crashing(MYSQL_OBJECTS, "make_triggers", 1 if step == "the snapshot's triggers" else 0, *revert)
    assert died.returncode == 9, died.stderr
    if step == "putting back":  # its tables moved back, their triggers in the ledger only
        died = crashing(MYSQL_OBJECTS, "make_triggers", 0, "reconcile", reconciled=False)
        assert died.returncode == 9, died.stderr

    report = runtime.reconciler.run()
    assert f"mysql:{db_name}" in report.put_back
    assert rows("mysql", db_name) == {**FRANCHISE, "orders": 0}
    assert_registry_matches_servers(runtime, "mysql")
    assert boxes_of_a_new_order(owner, 90001) == 80  # the trigger dropped since is still gone
    execute(owner, "CALL restock(1)", "SELECT COUNT(*) FROM priced",
            "INSERT INTO stores VALUES (1001, 'Lyon 1', '2024-05-01')")
    with pytest.raises(DBAPIError, match="stores stay"):
        execute(owner, "DELETE FROM stores WHERE id = 1001")
    with backend.admin_connection() as connection:  # no ledger is left anywhere
        ledgers = text("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_NAME = '_dbw_triggers'")
        assert connection.execute(ledgers).scalar_one() == 0


def test_killed_in_the_middle_of_a_purge(runtime, crashing, db_type, db_name, catalog, rows):
    instructor = Actor(runtime.accounts.get(INSTRUCTOR))
    runtime.service.create(instructor, db_type, db_name, course="franchise")
    record = runtime.service.registry.database(db_type, db_name)
    runtime.service.registry.set_expiry(record, datetime.now(UTC) - timedelta(minutes=1), audit=AuditEntry(
        actor="tests", action="expiry", target=f"{db_type}:{db_name}", outcome="ok", detail="made due"))
    # Archived, verified, dropped; dies before the registry forgets the database.
    died = crashing(("dbwrapper.registry.store", "Registry"), "forget_database", 0, "expiry", "purge")
    assert died.returncode == 9, died.stderr
    assert db_name not in catalog(db_type)

    report = runtime.reconciler.run()
    assert f"{db_type}:{db_name}" in report.forgotten
    assert_registry_matches_servers(runtime, db_type)
    # Nothing is lost: the verified archive holds it, and restores whole.
    (manifest,) = [m for m in runtime.archives.list(instructor) if m.database == db_name]
    assert manifest.tables == FRANCHISE
    runtime.archives.restore(instructor, manifest.id)
    assert rows(db_type, db_name) == FRANCHISE


def test_accounts_of_a_class_that_crashed_get_passwords_someone_sees(runtime, crashing, db_type, tmp_path, base_url):
    """The sheet of a class that died never came: running the roster again gives the accounts it
    made new passwords, on the new sheet, instead of saying "unchanged" about passwords nobody saw."""
    names = [f"pw_{db_type[:2]}_{n}_{os.getpid()}" for n in range(2)]
    roster = tmp_path / "roster.csv"
    roster.write_text("\n".join(names) + "\n")
    sheet = tmp_path / "sheet.html"
    args = ("class", "provision", str(roster), "--course", "franchise", "--db-type", db_type, "--sheet", str(sheet))
    died = crashing(BACKEND_CLASS[db_type], "copy_content", 1, *args)  # during the second trainee's copy
    assert died.returncode == 9, died.stderr
    assert all(runtime.accounts.registry.user(name) is not None for name in names)
    runtime.reconciler.run()

    again = crashing(BACKEND_CLASS[db_type], "copy_content", 99, *args)
    assert again.returncode == 0, again.stderr
    assert "new password (the earlier one was never handed out)" in again.stdout
    instructor = Actor(runtime.accounts.get(INSTRUCTOR))
    try:
        page = sheet.read_text()
        for name in names:
            card = re.search(rf"<h2><code>{name}</code></h2>.*?</article>", page, re.S)
            shown = re.search(r'<dt>Password</dt><dd><code class="secret">([^<]+)</code>', card.group(0))
            password = shown.group(1)
            assert password != "unchanged"
            with Browser(base_url) as trainee:
                assert trainee.log_in(name, password).status_code == 200
    finally:
        runtime.service.registry.refresh()
        for name in names:
            for db in runtime.service.registry.databases(owner=runtime.accounts.get(name)):
                runtime.service.destroy(instructor, db.db_type, db.name)
            runtime.accounts.remove(name, by="tests")
