"""A PostgreSQL server: the maintenance database, and super-user sessions pinned to the catalog."""

from __future__ import annotations

from sqlalchemy.engine import URL

from dbwrapper.backends.base.backend import Backend
from dbwrapper.backends.postgresql.catalog import PostgreSQLCatalog
from dbwrapper.backends.postgresql.client import PostgreSQLClient
from dbwrapper.backends.postgresql.console import PostgreSQLConsole
from dbwrapper.backends.postgresql.creation import PostgreSQLCreation
from dbwrapper.backends.postgresql.errors import PostgreSQLErrors
from dbwrapper.backends.postgresql.logins import PostgreSQLLogins

#: Where the super-user's sessions look names up: the catalog, and its own temporary
#: schema last (PostgreSQL's advice after CVE-2018-1058).
CATALOG_SEARCH_PATH = "pg_catalog,pg_temp"


class PostgreSQLBackend(Backend):
    """A PostgreSQL server."""

    db_type = "postgres"
    label = "PostgreSQL"
    dialects = frozenset({"postgresql"})
    system_databases = frozenset({"postgres", "template0", "template1"})
    login_kind = "PostgreSQL role"

    creation_class = PostgreSQLCreation
    logins_class = PostgreSQLLogins
    catalog_class = PostgreSQLCatalog
    client_class = PostgreSQLClient
    console_class = PostgreSQLConsole
    errors_class = PostgreSQLErrors

    @staticmethod
    def admin_url(url: URL) -> URL:
        # Server-wide work connects to the maintenance database, never to
        # template1: a session on template1 makes every CREATE DATABASE fail
        # with "source database is being accessed by other users".
        return url.set(database="postgres")

    def session_options(self) -> dict[str, str]:
        # Every super-user session resolves names in the catalog only (CVE-2018-1058):
        # set at connection start, before any statement, whatever the database or
        # role settings say.
        return {"options": f"-c search_path={CATALOG_SEARCH_PATH}"}
