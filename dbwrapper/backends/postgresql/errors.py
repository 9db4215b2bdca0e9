"""PostgreSQL's SQLSTATE codes, and what they mean to dbwrapper."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import DBAPIError

from dbwrapper.backends.base.errors import DatabaseErrors

DUPLICATE_DATABASE = "42P04"
#: Two concurrent ``CREATE DATABASE`` of one name can also end in this, from the
#: unique index on ``pg_database``, instead of ``42P04``.
UNIQUE_VIOLATION = "23505"
#: "source database ... is being accessed by other users", or a drop that met sessions.
OBJECT_IN_USE = "55006"
#: A role (or another object) of that name exists already.
DUPLICATE_OBJECT = "42710"
#: A database that no longer exists (dropped or renamed meanwhile).
INVALID_CATALOG_NAME = "3D000"
#: A lock wait that reached lock_timeout (see dbwrapper.db): another session holds it.
LOCK_NOT_AVAILABLE = "55P03"


def pgcode(error: DBAPIError) -> Any:
    """psycopg2's SQLSTATE of ``error``, if it has one."""
    return getattr(error.orig, "pgcode", None)


class PostgreSQLErrors(DatabaseErrors):
    """psycopg2's errors, by SQLSTATE."""

    def error_code(self, error: DBAPIError) -> Any:
        return pgcode(error)

    def is_duplicate(self, error: DBAPIError) -> bool:
        code = self.error_code(error)
        return code == DUPLICATE_DATABASE or (
            code == UNIQUE_VIOLATION and "pg_database_datname_index" in str(error.orig)
        )

    def is_busy(self, error: DBAPIError) -> bool:
        return self.error_code(error) in (OBJECT_IN_USE, LOCK_NOT_AVAILABLE)
