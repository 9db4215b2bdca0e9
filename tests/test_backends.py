"""The backend classes on their own: work as a database's own login, and what they leave behind."""

from __future__ import annotations

import base64
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text

from dbwrapper.backends import BACKEND_CLASSES
from dbwrapper.backends.base import LISTING_CACHE_SECONDS, SIZE_CACHE_SECONDS, Login, SizeCache
from dbwrapper.backends.postgresql import scram_sha_256


@pytest.fixture
def db_name(unmanaged_name: str) -> str:
    """These tests work beneath the service, on the backend's own calls: their databases are
    no registry's, made and dropped behind the service's back on purpose (see unmanaged_name)."""
    return unmanaged_name


CURRENT_USER = {"postgres": "SELECT current_user", "mysql": "SELECT SUBSTRING_INDEX(CURRENT_USER(), '@', 1)"}
CHANGE_OWN_PASSWORD = {
    "postgres": "ALTER ROLE CURRENT_USER PASSWORD 'chosen-by-the-trainee'",
    "mysql": "SET PASSWORD = PASSWORD('chosen-by-the-trainee')",
}


def test_work_inside_a_database_runs_as_its_own_login_and_leaves_no_session(
    server_url, db_type, db_name, catalog
):
    backend = BACKEND_CLASSES[db_type](server_url)
    login = Login(db_name, "secret-password-1")
    try:
        assert backend.create_database(db_name, login) is True
        with backend.as_owner(db_name, login) as connection, connection.begin():
            connection.execute(text("CREATE TABLE boxes (store INTEGER, paper_clips INTEGER)"))
            connection.execute(text("INSERT INTO boxes VALUES (:store, :clips)"), {"store": 1, "clips": 50})
            assert connection.execute(text(CURRENT_USER[db_type])).scalar_one() == login.name
        assert backend.catalog.table_counts(db_name, login) == {"boxes": 1}

        assert backend.drop_database(db_name, login.name, registered=True) is True  # no session in the way
        assert db_name not in catalog(db_type)
    finally:
        backend.dispose()


def test_a_login_whose_owner_changed_its_password_gets_the_registrys_back(server_url, db_type, db_name):
    """A trainee may change their login's password; the service's work as that login (and
    the credentials its pages show) go on with the password the registry keeps."""
    backend = BACKEND_CLASSES[db_type](server_url)
    login = Login(db_name, "secret-password-1")
    try:
        backend.create_database(db_name, login)
        with backend.as_owner(db_name, login) as connection:
            connection.execute(text(CHANGE_OWN_PASSWORD[db_type]))
        assert backend.catalog.table_counts(db_name, login) == {}
    finally:
        backend.drop_database(db_name, login.name, registered=True)
        backend.dispose()


def test_creating_reports_whether_it_created(server_url, db_type, db_name):
    backend = BACKEND_CLASSES[db_type](server_url)
    try:
        assert backend.create_database(db_name) is True
        assert backend.create_database(db_name) is False
        assert backend.drop_database(db_name, registered=False) is True
        assert backend.drop_database(db_name, registered=False) is False
    finally:
        backend.dispose()


def test_logins_are_made_while_other_databases_come_and_go(server_url, db_type, db_name):
    """A class creates and destroys at once. On PostgreSQL, making a login takes CONNECT from
    PUBLIC on every database of the server: one dropped meanwhile must not fail the create."""
    backend = BACKEND_CLASSES[db_type](server_url)
    names = [f"{db_name}_{i}" for i in range(6)]
    stop = threading.Event()

    def churn() -> None:  # other trainees' databases, made and dropped over and over
        while not stop.is_set():
            for name in names:
                backend.create_database(name)
            for name in names:
                backend.drop_database(name, registered=True)

    try:
        with ThreadPoolExecutor(max_workers=1) as others:
            churning = others.submit(churn)
            try:
                for round_ in range(12):
                    login = Login(f"{db_name}_l{round_}", "secret-password")
                    assert backend.create_database(f"{db_name}_l{round_}", login) is True
                    backend.drop_database(f"{db_name}_l{round_}", login.name, registered=True)
            finally:
                stop.set()
            churning.result()
    finally:
        for name in names:
            backend.drop_database(name, registered=True)
        backend.dispose()


def test_a_listing_shows_a_new_database_with_its_size_at_once(server_url, db_type, db_name):
    backend = BACKEND_CLASSES[db_type](server_url)
    try:
        backend.list_databases()  # sizes measured and cached now
        backend.create_database(db_name)
        entry = next(db for db in backend.list_databases() if db.name == db_name)
        assert entry.size_bytes is not None
        assert entry.managed is True
    finally:
        backend.dispose()


@pytest.mark.backend("postgres")
def test_a_login_password_reaches_postgresql_only_as_its_scram_verifier(admin):
    """Our verifier for a password and salt is the one PostgreSQL computes itself."""
    with admin["postgres"].connect() as connection:
        connection.exec_driver_sql("CREATE ROLE scram_check LOGIN PASSWORD 'Known-password-1'")
        try:
            stored = connection.exec_driver_sql(
                "SELECT rolpassword FROM pg_authid WHERE rolname = 'scram_check'"
            ).scalar()
        finally:
            connection.exec_driver_sql("DROP ROLE scram_check")
    salt = base64.b64decode(stored.split("$")[1].split(":")[1])
    assert scram_sha_256("Known-password-1", salt) == stored


class FakeClock:
    """A clock the test moves, so that a cache's time passes without waiting for it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_sizes_are_reused_for_a_while_and_a_new_database_is_measured_at_once():
    clock = FakeClock()
    cache = SizeCache(clock)
    measured: list[set[str]] = []

    def measure(names: set[str]) -> dict[str, int | None]:
        measured.append(names)
        return dict.fromkeys(names, 1)

    assert cache.get({"a", "b"}, measure) == {"a": 1, "b": 1}
    clock.now += SIZE_CACHE_SECONDS / 2
    cache.get({"a", "b"}, measure)
    cache.get({"a", "b", "c"}, measure)  # c is new: it alone is measured
    assert measured == [{"a", "b"}, {"c"}]
    clock.now += SIZE_CACHE_SECONDS
    cache.get({"a"}, measure)
    assert measured[-1] == {"a"}


def test_a_listing_is_reused_for_a_moment_and_a_create_shows_at_once(server_url, db_type, db_name):
    clock = FakeClock()
    backend = BACKEND_CLASSES[db_type](server_url, clock=clock)
    other = BACKEND_CLASSES[db_type](server_url)  # another process's service, on the same server
    try:
        before = {info.name for info in backend.list_databases()}
        other.create_database(db_name)
        assert {info.name for info in backend.list_databases()} == before  # reused
        clock.now += LISTING_CACHE_SECONDS
        assert db_name in {info.name for info in backend.list_databases()}
        backend.drop_database(db_name, registered=True)
        assert db_name not in {info.name for info in backend.list_databases()}  # its own drop shows at once
    finally:
        other.drop_database(db_name, registered=True)
        backend.dispose()
        other.dispose()
