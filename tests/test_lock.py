"""Commands beside a running service never destroy its work in progress.

Reconciling settles what a crash left half-done by destroying it, and a
process reconciles when it starts. Beside a running service, what looks
half-done is the service's own work: a revert's database renamed away, a
restore's database dropped to be made again, an archive's half-written file.
So a process reconciles only when it has the registry to itself (its lock taken
exclusively), and every process holds the lock shared while it works.

Each attack holds the service (the one these tests run in this process) in the
middle of its work, at a chosen call, while other processes run commands; or
stops a command half-way with SIGSTOP while a service starts beside it.
Afterwards nothing is missing and the work completes. ``dbwrapper reconcile``
is refused while anything else is at work, and settles a crash when nothing is.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from dbwrapper.accounts import Actor
from dbwrapper.backends.base import Login
from dbwrapper.errors import DbWrapperError
from dbwrapper.registry.lock import ADVISORY_KEY, FileLock
from tests.conftest import INSTRUCTOR, INSTRUCTOR_PASSWORD
from tests.servers import free_port
from tests.serving import Service
from tests.test_courses import FRANCHISE
from tests.test_crashes import BACKEND_CLASS, CRASHING, LOGINS_CLASS
from tests.test_reconcile import logins

#: ``dbwrapper reconcile``'s exit code while another process is at work on the registry.
REGISTRY_IN_USE = 7


@contextmanager
def held_at(monkeypatch, part, method: str, work: Callable[[], Any]) -> Iterator[Future]:
    """Run ``work`` on a thread of the service, held at its first call of ``part.method`` (a
    backend's part: ``backend.creation``, ``backend.client``) for as long as the block runs;
    yields the work's future."""
    reached, resume = threading.Event(), threading.Event()
    original = getattr(part, method)

    def held(*args: Any, **kwargs: Any) -> Any:
        if not reached.is_set():
            reached.set()
            resume.wait(120)
        return original(*args, **kwargs)

    monkeypatch.setattr(part, method, held)
    with ThreadPoolExecutor(max_workers=1) as thread:
        future = thread.submit(work)
        try:
            while not reached.wait(0.1):
                assert not future.done(), f"the work ended before {method}: {future.exception()!r}"
            yield future
        finally:
            resume.set()


def connects(backend, name: str, record) -> bool:
    """Whether the database's own login still opens it."""
    engine = create_engine(backend.database_url(name, Login(record.login, record.password)))
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()


# -- the service at work, commands beside it ----------------------------------------------


def test_a_revert_half_way_loses_nothing_to_commands_beside_it(
    runtime, cli, db_type, db_name, catalog, monkeypatch, as_owner, rows
):
    instructor = Actor(runtime.accounts.get(INSTRUCTOR))
    runtime.service.create(instructor, db_type, db_name, course="franchise")
    other = f"{db_name}_2"
    try:
        clean, _ = runtime.snapshots.take(instructor, db_type, db_name, "clean")
        backend = runtime.servers.backend(db_type)
        with as_owner(db_type, db_name) as connection:
            connection.execute(text("DELETE FROM orders"))  # the work since the snapshot
        reverting = partial(runtime.snapshots.revert, instructor, db_type, db_name, clean.id)
        # Held once what the database holds is set aside (PostgreSQL: renamed away, so the
        # database is missing), before the snapshot is copied in.
        with held_at(monkeypatch, backend.creation, "copy_snapshot", reverting) as revert:
            for command in (("list", "--db-type", db_type),
                            ("snapshot", "list", "--db-type", db_type, "--name", db_name),
                            ("create", "--db-type", db_type, "--name", other)):
                done = cli(*command)
                assert done.returncode == 0, done.stderr
        assert f"Reverted {db_name}" in revert.result(timeout=120)
        assert rows(db_type, db_name) == FRANCHISE
        runtime.service.registry.refresh()
        _, record, kept = runtime.snapshots.list(instructor, db_type, db_name)
        assert sorted(s.label.split(" to ")[0] for s in kept) == ["before reverting", "clean"]
        assert {s.name for s in kept} <= catalog(db_type)
        assert connects(backend, db_name, record)
    finally:
        runtime.service.destroy(instructor, db_type, other)
        runtime.service.destroy(instructor, db_type, db_name)


def test_a_restore_over_the_original_half_way_keeps_its_login_beside_commands(
    runtime, cli, db_type, db_name, admin, monkeypatch, as_owner, rows
):
    instructor = Actor(runtime.accounts.get(INSTRUCTOR))
    runtime.service.create(instructor, db_type, db_name, course="franchise")
    try:
        manifest = runtime.archives.archive(instructor, db_type, db_name)
        backend = runtime.servers.backend(db_type)
        with as_owner(db_type, db_name) as connection:
            connection.execute(text("DELETE FROM orders"))
        # Held once the original is dropped, before it is made again to restore into.
        restoring = partial(runtime.archives.restore, instructor, manifest.id)
        with held_at(monkeypatch, backend.creation, "create_database", restoring) as restore:
            done = cli("list", "--db-type", db_type)
            assert done.returncode == 0, done.stderr
        assert f"Restored {db_name}" in restore.result(timeout=120).summary
        assert rows(db_type, db_name) == FRANCHISE
        runtime.service.registry.refresh()
        record = runtime.service.registry.database(db_type, db_name)
        assert record is not None and logins(admin, db_type, record.login) > 0
        assert connects(backend, db_name, record)
    finally:
        runtime.service.destroy(instructor, db_type, db_name)


def test_an_archive_half_written_is_finished_beside_commands(
    runtime, cli, db_type, db_name, monkeypatch
):
    instructor = Actor(runtime.accounts.get(INSTRUCTOR))
    runtime.service.create(instructor, db_type, db_name, course="franchise")
    try:
        backend = runtime.servers.backend(db_type)
        archiving = partial(runtime.archives.archive, instructor, db_type, db_name)
        # Held once the dump tool has written the file (under its temporary name), before it is read back.
        with held_at(monkeypatch, backend.client, "scan_archive", archiving) as archive:
            assert list((runtime.archives.directory / db_type / db_name).glob(".*.partial"))
            done = cli("list", "--db-type", db_type)
            assert done.returncode == 0, done.stderr
        manifest = archive.result(timeout=120)
        assert manifest.tables == FRANCHISE
        runtime.archives.verify(manifest)
    finally:
        runtime.service.destroy(instructor, db_type, db_name)


def test_reconcile_is_refused_while_a_service_runs_and_changes_nothing(runtime, cli, admin, db_type, db_name):
    runtime.service.create(Actor(runtime.accounts.get(INSTRUCTOR)), db_type, db_name)
    with admin[db_type].connect() as connection:  # gone: reconciling would forget it and its login
        connection.exec_driver_sql(f"DROP DATABASE {db_name}")
    partial = runtime.archives.directory / db_type / db_name / ".20261126T000000_000000Z.partial"
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.write_bytes(b"half a dump")  # reconciling would remove it

    refused = cli("reconcile")
    assert refused.returncode == REGISTRY_IN_USE
    assert "A dbwrapper service or command is at work on this registry" in refused.stderr
    assert "Stop the service first" in refused.stderr and "Traceback" not in refused.stderr
    runtime.service.registry.refresh()
    assert runtime.service.registry.database(db_type, db_name) is not None
    assert logins(admin, db_type, db_name) > 0
    assert partial.exists()

    report = runtime.reconciler.run()  # the tests' own hand, as if the service were stopped
    assert f"{db_type}:{db_name}" in report.forgotten and not partial.exists()


@pytest.mark.backend("postgres")
def test_a_service_whose_lock_session_ends_takes_the_lock_again(runtime, cli, admin):
    holding = text(
        "SELECT pid FROM pg_catalog.pg_locks WHERE locktype = 'advisory' AND mode = 'ShareLock' "
        "AND granted AND classid = :high AND objid = :low AND objsubid = 1 AND database = "
        "(SELECT oid FROM pg_catalog.pg_database WHERE datname = 'dbwrapper')"
    )
    key = {"high": ADVISORY_KEY >> 32, "low": ADVISORY_KEY & 0xFFFFFFFF}

    def holders() -> set[int]:
        with admin["postgres"].connect() as connection:
            return set(connection.execute(holding, key).scalars())

    (service,) = holders()
    with admin["postgres"].connect() as connection:  # as a restart of the registry's server would
        connection.execute(text("SELECT pg_catalog.pg_terminate_backend(:pid)"), {"pid": service})
    deadline = time.monotonic() + 30  # the check runs every few seconds
    while not holders() - {service} and time.monotonic() < deadline:
        time.sleep(0.2)
    assert holders() - {service}, "the service did not take the registry lock again"
    assert cli("reconcile").returncode == REGISTRY_IN_USE


def test_a_lock_file_removed_under_a_process_is_made_and_taken_again(tmp_path):
    path = tmp_path / "registry.sqlite.lock"
    working = FileLock(path)
    working.share()
    path.unlink()  # now it keeps nobody out
    intruder = FileLock(path)
    assert intruder.take_alone()
    intruder.release()

    working.keep()
    probe = FileLock(path)
    assert not probe.take_alone()
    working.release()
    assert probe.take_alone()
    probe.release()


# -- a registry of their own: a service started beside a command, and crashes --------------


@dataclass
class Processes:
    """dbwrapper processes, as a user runs them, on a registry of their own that the tests'
    service does not hold."""

    env: dict[str, str]
    directory: Path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "dbwrapper", *args], env=self.env, cwd=self.directory,
                              capture_output=True, text=True, timeout=120)

    def stopped(self, where: tuple[str, str], method: str, *args: str) -> subprocess.Popen[str]:
        """``dbwrapper ARGS``, stopped with SIGSTOP at its first call of ``method``; SIGCONT resumes it."""
        process = subprocess.Popen(
            [sys.executable, "-c", CRASHING, *where, method, "0", "stop", *args],
            env=self.env, cwd=self.directory, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        _, status = os.waitpid(process.pid, os.WUNTRACED)
        if not os.WIFSTOPPED(status):
            raise AssertionError(f"it ended before {method}: {process.stderr.read()}")  # type: ignore[union-attr]
        return process

    def crashed(self, where: tuple[str, str], method: str, *args: str) -> subprocess.CompletedProcess[str]:
        """``dbwrapper ARGS``, ended on the spot at its first call of ``method``."""
        return subprocess.run([sys.executable, "-c", CRASHING, *where, method, "0", "exit", *args],
                              env=self.env, cwd=self.directory, capture_output=True, text=True, timeout=120)

    @contextmanager
    def serving(self) -> Iterator[Path]:
        """``dbwrapper serve``, up and answering for as long as the block runs; yields its log."""
        log_path = self.directory / "serve.log"
        with log_path.open("w") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "dbwrapper", "serve", "--port", str(port := free_port())],
                env=self.env, cwd=self.directory, stdout=log, stderr=subprocess.STDOUT,
            )
            try:
                Service(process, f"http://127.0.0.1:{port}", log_path).wait_until_up()
                yield log_path
            finally:
                process.terminate()
                process.wait(timeout=30)


@pytest.fixture(params=["postgres registry", "sqlite registry"])
def processes(request, server_urls, admin, tmp_path) -> Iterator[Processes]:
    """Processes on a registry of their own: in a database of its own on the PostgreSQL
    server (an advisory lock), or in SQLite (a lock file)."""
    if request.param == "sqlite registry":
        url, database = f"sqlite:///{tmp_path / 'registry.sqlite'}", None
    else:
        database = f"reg_{uuid.uuid4().hex[:12]}"
        # By hand, as an operator makes one: a registry's database is none the service manages.
        with admin["postgres"].connect() as connection:
            connection.exec_driver_sql(f"CREATE DATABASE {database}")
        url = make_url(server_urls["postgres"]).set(drivername="postgresql+psycopg2", database=database)
        url = url.render_as_string(hide_password=False)
    env = {key: value for key, value in os.environ.items() if not key.startswith("DBWRAPPER_")}
    env.update({
        "DBWRAPPER_POSTGRES_URL": server_urls["postgres"], "DBWRAPPER_MYSQL_URL": server_urls["mysql"],
        "DBWRAPPER_CONTROL_URL": url, "DBWRAPPER_ARCHIVE_DIR": str(tmp_path / "archives"),
        "DBWRAPPER_INSTRUCTOR_PASSWORD": INSTRUCTOR_PASSWORD,
    })
    # The service's jobs would fill a pool of course copies, which nothing here needs.
    (tmp_path / "app.conf").write_text("[dbwrapper]\npool_size = 0\n")
    yield Processes(env, tmp_path)
    if database is not None:
        with admin["postgres"].connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE {database} WITH (FORCE)")


def test_a_service_started_beside_a_command_at_work_leaves_its_work_alone(
    runtime, processes, db_type, db_name, catalog
):
    # Stopped half-way: the database is made, and recorded as not ready yet, its login not made.
    making = processes.stopped(LOGINS_CLASS[db_type], "create_login", "create", "--db-type", db_type,
                               "--name", db_name)
    try:
        with processes.serving() as log:
            making.send_signal(signal.SIGCONT)
            out, err = making.communicate(timeout=120)
            assert making.returncode == 0, err
            assert f"Created {db_name}" in out and db_name in catalog(db_type)
            refused = processes.run("reconcile")  # beside the service, now
            assert refused.returncode == REGISTRY_IN_USE, refused.stdout + refused.stderr
        assert "Another dbwrapper process is at work on this registry" in log.read_text()
        assert "reconciled" not in log.read_text()

        done = processes.run("reconcile")  # nothing else at work now
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "The registry matches the servers."
        listed = processes.run("list", "--db-type", db_type)
        assert any(db_name in line and "dbwrapper" in line for line in listed.stdout.splitlines())
    finally:
        if making.poll() is None:
            making.kill()
            making.wait()
        processes.run("destroy", "--db-type", db_type, "--name", db_name)
    assert db_name not in catalog(db_type)


# Each way of settling once, each kind of lock once: the service's start is the usual one.
@pytest.mark.parametrize(("processes", "settler"), [("postgres registry", "serve"), ("sqlite registry", "reconcile")],
                         indirect=["processes"])
def test_with_nothing_else_at_work_a_crash_is_settled(runtime, processes, db_type, db_name, settler, look_inside):
    made = processes.run("create", "--db-type", db_type, "--name", db_name)
    assert made.returncode == 0, made.stderr
    backend = runtime.servers.backend(db_type)
    try:
        with look_inside(db_type, db_name) as connection:  # the registry is the other process's
            connection.execute(text("CREATE TABLE boxes (n INTEGER)"))
            connection.execute(text("INSERT INTO boxes VALUES (1), (2), (3)"))
        where = ("--db-type", db_type, "--name", db_name)
        taken = processes.run("snapshot", "take", *where, "--label", "clean")
        assert taken.returncode == 0, taken.stderr
        listed = processes.run("snapshot", "list", *where).stdout
        number = re.search(r'^\s+(\d+)\s+\d{4}-.*"clean"', listed, re.M).group(1)
        with look_inside(db_type, db_name) as connection:
            connection.execute(text("DELETE FROM boxes"))  # the work since the snapshot
        # Dies once what the database holds is set aside, before the snapshot is copied in.
        died = processes.crashed(BACKEND_CLASS[db_type], "copy_snapshot", "snapshot", "revert", *where, number)
        assert died.returncode == 9, died.stderr

        put_back = f"put back {db_type}:{db_name} as before a revert that did not finish"
        if settler == "reconcile":
            done = processes.run("reconcile")
            assert done.returncode == 0, done.stderr
            assert put_back in done.stdout
        else:
            with processes.serving() as log:
                assert put_back in log.read_text()
        # The revert did not happen: the work is kept, and the snapshot is there to revert to.
        with look_inside(db_type, db_name) as connection:
            assert backend.catalog.count_rows(connection) == {"boxes": 0}
        listed = processes.run("snapshot", "list", *where)
        assert '"clean"' in listed.stdout and "before reverting" not in listed.stdout
    finally:
        processes.run("destroy", "--db-type", db_type, "--name", db_name)


@pytest.mark.backend("mysql")
def test_an_expiry_purge_beside_a_revert_keeps_what_the_revert_set_aside(
    runtime, cli, instructor, monkeypatch, as_owner
):
    """A revert first sets aside what the database holds, as a snapshot being made
    ("reverting"), and empties the database (MySQL moves its tables out), then copies the
    snapshot in. ``dbwrapper expiry purge`` beside it, for a database that just became due,
    would archive the emptied database (which verifies: it lacks no table it has), then
    destroy it with all its snapshots, the one the revert set aside among them. A database a
    revert or a snapshot is at work on is left alone: the purge tries again next time."""
    db_name = f"t_{uuid.uuid4().hex[:12]}"
    runtime.service.create(instructor, "mysql", db_name)
    try:
        clean, _ = runtime.snapshots.take(instructor, "mysql", db_name, "clean")
        with as_owner("mysql", db_name) as connection:  # the work since the snapshot
            connection.exec_driver_sql("CREATE TABLE notes (line TEXT)")
            connection.exec_driver_sql("INSERT INTO notes VALUES ('a morning of work')")
        runtime.expiry.set(instructor, "mysql", db_name, datetime.now(UTC) - timedelta(minutes=1))
        backend = runtime.servers.backend("mysql")
        reverting = partial(runtime.snapshots.revert, instructor, "mysql", db_name, clean.id)
        with held_at(monkeypatch, backend.creation, "copy_snapshot", reverting) as revert:
            purged = cli("expiry", "purge")
        with suppress(DbWrapperError):
            revert.result(timeout=120)
        runtime.service.registry.refresh()
        archived = [m for m in runtime.archives.list(instructor) if m.database == db_name]
        record = runtime.service.registry.database("mysql", db_name)
        snapshots = [s for s in runtime.service.registry.snapshots(record) if backend.exists(s.name)] if record else []
        kept = [m.id for m in archived if "notes" in m.tables] + [s.name for s in snapshots if s.id != clean.id]
        assert kept, (f"the work since the snapshot is gone: the purge ({purged.stdout.strip()!r}) archived "
                      f"{[(m.id, m.tables) for m in archived]} and dropped the rest")
    finally:
        runtime.service.destroy(instructor, "mysql", db_name)
        for manifest in runtime.archives.list(instructor):
            if manifest.database == db_name:
                runtime.archives.delete(instructor, manifest.id)
