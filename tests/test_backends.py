"""The backend classes on their own: engines per database, and what they leave behind."""

from __future__ import annotations

import base64
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text

from dbwrapper.backends import BACKEND_CLASSES
from dbwrapper.backends.base import Login
from dbwrapper.backends.postgresql import scram_sha_256


def test_a_database_engine_works_inside_the_database_and_goes_with_the_drop(
    server_url, db_type, db_name, catalog
):
    backend = BACKEND_CLASSES[db_type](server_url)
    try:
        assert backend.create_database(db_name) is True
        engine = backend.database_engine(db_name)
        assert backend.database_engine(db_name) is engine  # one engine per database

        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE boxes (store INTEGER, paper_clips INTEGER)"))
            connection.execute(text("INSERT INTO boxes VALUES (:store, :clips)"), {"store": 1, "clips": 50})
        with engine.connect() as connection:
            assert connection.execute(text("SELECT paper_clips FROM boxes")).scalar_one() == 50
        assert engine.pool.checkedin() == 1  # a pooled session sits in the database

        assert backend.drop_database(db_name) is True
        assert engine.pool.checkedin() == 0  # disposed with the database
        assert db_name not in catalog(db_type)
        assert backend.database_engine(db_name) is not engine
    finally:
        backend.dispose()


def test_creating_reports_whether_it_created(server_url, db_type, db_name):
    backend = BACKEND_CLASSES[db_type](server_url)
    try:
        assert backend.create_database(db_name) is True
        assert backend.create_database(db_name) is False
        assert backend.drop_database(db_name) is True
        assert backend.drop_database(db_name) is False
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
                backend.drop_database(name)

    try:
        with ThreadPoolExecutor(max_workers=1) as others:
            churning = others.submit(churn)
            try:
                for round_ in range(12):
                    login = Login(f"{db_name}_l{round_}", "secret-password")
                    assert backend.create_database(f"{db_name}_l{round_}", login) is True
                    backend.drop_database(f"{db_name}_l{round_}", login.name)
            finally:
                stop.set()
            churning.result()
    finally:
        for name in names:
            backend.drop_database(name)
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
