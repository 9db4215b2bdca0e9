"""After a crash, or a change made with the servers' own tools, the registry is reconciled."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from dbwrapper.accounts import Actor
from dbwrapper.config import Settings
from dbwrapper.errors import Refused
from dbwrapper.registry import AuditEntry
from dbwrapper.runtime import Runtime
from tests.conftest import INSTRUCTOR, audit_rows

LOGINS = {
    "postgres": "SELECT count(*) FROM pg_roles WHERE rolname = :name",
    "mysql": "SELECT count(*) FROM mysql.user WHERE User = :name",
}


def logins(admin, db_type, name) -> int:
    """How many logins named ``name`` the server has (MySQL: one per host)."""
    with admin[db_type].connect() as connection:
        return connection.execute(text(LOGINS[db_type]), {"name": name}).scalar_one()


def test_a_database_made_but_never_recorded_is_adopted_not_dropped(runtime, db_type, db_name, catalog):
    backend = runtime.servers.backend(db_type)
    backend.create_database(db_name)  # as if the service died before recording it

    report = runtime.reconciler.run()
    instructor = Actor(runtime.accounts.get(INSTRUCTOR))
    try:
        assert f"{db_type}:{db_name}" in report.adopted
        record = runtime.service.registry.database(db_type, db_name)
        assert record.owner == INSTRUCTOR and record.expires_at is None
        engine = create_engine(
            backend.database_url(db_name).set(username=record.login, password=record.password)
        )
        with engine.connect() as connection:  # its new login works
            assert connection.execute(text("SELECT 1")).scalar_one() == 1
        engine.dispose()
    finally:
        runtime.service.destroy(instructor, db_type, db_name)
    assert db_name not in catalog(db_type)


def test_a_record_whose_database_is_gone_is_forgotten_with_its_login(
    runtime, browser, admin, db_type, db_name
):
    browser.get("/dbi/create_my_db", params={"db_type": db_type, "name": db_name})
    with admin[db_type].connect() as connection:  # dropped with the server's own tools
        connection.exec_driver_sql(f"DROP DATABASE {db_name}")

    report = runtime.reconciler.run()
    assert f"{db_type}:{db_name}" in report.forgotten
    assert runtime.service.registry.database(db_type, db_name) is None
    assert logins(admin, db_type, db_name) == 0
    rows = audit_rows(browser.get("/audit").text, f"{db_type}:{db_name}")
    assert any({"reconcile", "forgotten"} <= row for row in rows), rows


def test_half_written_archives_are_removed(runtime):
    partial = runtime.archives.directory / "postgres" / "somedb" / ".20261126T000000_000000Z.dump.partial"
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.write_bytes(b"half a dump")
    assert runtime.reconciler.run().partial_files >= 1
    assert not partial.exists()


def test_nothing_is_forgotten_while_a_server_is_unreachable(tmp_path, monkeypatch, db_type):
    monkeypatch.setenv("DBWRAPPER_INSTRUCTOR_PASSWORD", "instructor-password")
    down = {"postgres": "postgresql://x:y@127.0.0.1:1/postgres", "mysql": "mysql://x:y@127.0.0.1:1"}
    settings = Settings(
        backend_urls={db_type: down[db_type]}, embedded=False,
        control_url=f"sqlite:///{tmp_path / 'registry.sqlite'}", archive_dir=tmp_path / "archives",
    )
    runtime = Runtime(settings)
    runtime.start()  # reconciling at start must not fail on an unreachable server
    try:
        registry = runtime.service.registry
        keeper = runtime.accounts.get("cwcuser")
        note = AuditEntry(actor="tests", action="record", target="kept_db", outcome="ok", detail="")
        registry.record_database(db_type, "kept_db", keeper, "kept_db", "pw", audit=note)
        report = runtime.reconciler.run()
        assert report.unreachable == [db_type]
        assert registry.database(db_type, "kept_db") is not None
    finally:
        runtime.stop()


def test_two_services_on_one_server_leave_each_others_databases_alone(
    runtime, browser, server_urls, db_type, db_name, catalog, tmp_path, monkeypatch
):
    browser.get("/dbi/create_my_db", params={"db_type": db_type, "name": db_name})
    monkeypatch.setenv("DBWRAPPER_INSTRUCTOR_PASSWORD", "instructor-password")
    other = Runtime(Settings(
        backend_urls=server_urls, embedded=False, archive_dir=tmp_path / "archives",
        control_url=f"sqlite:///{tmp_path / 'other-registry.sqlite'}",
    ))
    other.start()  # reconciles: must not adopt the first service's databases
    try:
        assert other.service.registry.database(db_type, db_name) is None
        someone = Actor(other.accounts.get(INSTRUCTOR))
        with pytest.raises(Refused, match="not created by dbwrapper"):
            other.service.destroy(someone, db_type, db_name)
    finally:
        other.stop()
    assert db_name in catalog(db_type)
    record = runtime.service.registry.database(db_type, db_name)
    url = runtime.servers.backend(db_type).database_url(db_name)
    engine = create_engine(url.set(username=record.login, password=record.password))
    with engine.connect() as connection:  # its login's password was not reset by the other service
        assert connection.execute(text("SELECT 1")).scalar_one() == 1
    engine.dispose()
