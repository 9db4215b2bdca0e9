"""The backend classes on their own: engines per database, and what they leave behind."""

from __future__ import annotations

from sqlalchemy import text

from dbwrapper.backends import BACKEND_CLASSES


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
