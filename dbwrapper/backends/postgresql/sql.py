"""Running PostgreSQL's catalog changes: a transaction on an AUTOCOMMIT connection, and retries."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from dbwrapper.backends.postgresql.errors import INVALID_CATALOG_NAME, pgcode

#: What PostgreSQL says when two sessions change one catalog row (a database's rights or
#: owner) at the same moment: the later one fails, and doing it again then works.
CONCURRENT_UPDATE = "tuple concurrently updated"
CONCURRENT_UPDATE_TRIES = 5


@contextmanager
def in_transaction(connection: Connection) -> Iterator[None]:
    """One transaction on an AUTOCOMMIT connection: what runs inside happens together or not at all.

    PostgreSQL renames databases and roles inside a transaction, which the
    admin engine's AUTOCOMMIT would otherwise not open.
    """
    connection.exec_driver_sql("BEGIN")
    try:
        yield
    except BaseException:
        connection.exec_driver_sql("ROLLBACK")
        raise
    connection.exec_driver_sql("COMMIT")


def change_database(connection: Connection, statement: str) -> bool:
    """Run ``statement``, which changes one database's rights or owner, in its own
    transaction, again if another session changed that database at the same moment
    (a class making its databases at once does); ``False`` if the database is gone.
    """
    attempt = 1
    while True:
        try:
            connection.exec_driver_sql(statement)
            return True
        except DBAPIError as error:
            if pgcode(error) == INVALID_CATALOG_NAME:
                return False
            if CONCURRENT_UPDATE not in str(error.orig) or attempt == CONCURRENT_UPDATE_TRIES:
                raise
        time.sleep(0.01 * attempt)
        attempt += 1
