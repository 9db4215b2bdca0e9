"""A MySQL or MariaDB server: no database to connect to, and admin sessions set up for copying."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from dbwrapper.backends.base.backend import Backend
from dbwrapper.backends.mysql.catalog import MySQLCatalog
from dbwrapper.backends.mysql.client import MySQLClient
from dbwrapper.backends.mysql.console import MySQLConsole
from dbwrapper.backends.mysql.creation import MySQLCreation
from dbwrapper.backends.mysql.errors import MySQLErrors
from dbwrapper.backends.mysql.logins import MySQLLogins
from dbwrapper.db import without
from dbwrapper.errors import DbWrapperError

#: The sql_mode flags in which the server prints names in double quotes: ANSI_QUOTES, and
#: the combinations that include it.
DOUBLE_QUOTING_MODES = frozenset({"ANSI_QUOTES", "ANSI", "DB2", "MAXDB", "MSSQL", "ORACLE", "POSTGRESQL"})


class MySQLBackend(Backend):
    """A MySQL or MariaDB server."""

    db_type = "mysql"
    label = "MySQL/MariaDB"
    dialects = frozenset({"mysql", "mariadb"})
    system_databases = frozenset({"mysql", "information_schema", "performance_schema", "sys"})
    login_kind = "MySQL account"

    creation_class = MySQLCreation
    logins_class = MySQLLogins
    catalog_class = MySQLCatalog
    client_class = MySQLClient
    console_class = MySQLConsole
    errors_class = MySQLErrors

    @staticmethod
    def admin_url(url: URL) -> URL:
        # Server-wide work on MySQL needs no database at all.
        return without(url, "database")

    def tune_admin_engine(self, engine: Engine) -> None:
        # SQLAlchemy ends every use of a connection with the DBAPI's rollback(),
        # which in AUTOCOMMIT undoes nothing; psycopg2 then sends nothing, but
        # PyMySQL sends a ROLLBACK round trip each time. This engine's dialect is
        # its own, so skipping it here touches no other engine.
        engine.dialect.do_rollback = lambda dbapi_connection: None  # type: ignore[method-assign]

        @event.listens_for(engine, "connect")
        def copying_mode(dbapi_connection: Any, record: Any) -> None:
            # A table copied here is made where the server keeps its own, whatever DATA or
            # INDEX DIRECTORY its owner gave it (SHOW CREATE TABLE then leaves them out, and
            # the server ignores them). And the server prints tables and views with backquotes,
            # which the copies read, even if its own default quotes names with double quotes.
            # A row whose AUTO_INCREMENT column holds 0 keeps its 0 when copied, instead of
            # getting the next number (mysqldump sets the same mode for the same reason).
            # Lock waits are bounded by dbwrapper.db.
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SELECT @@SESSION.sql_mode")
                (mode,) = cursor.fetchone()
                kept = [flag for flag in mode.split(",") if flag and flag not in DOUBLE_QUOTING_MODES]
                copying = [*kept, "NO_DIR_IN_CREATE", "NO_AUTO_VALUE_ON_ZERO"]
                cursor.execute("SET SESSION sql_mode = %s", (",".join(dict.fromkeys(copying)),))

    def cautions(self) -> list[str]:
        # DATA DIRECTORY needs no privilege: with symbolic links on, any login's CREATE TABLE
        # puts a table's file wherever the server's system user may write. dbwrapper keeps its
        # own sessions from honouring it (NO_DIR_IN_CREATE), but not a trainee's, nor the
        # course SQL its logins run: only the server's own option does.
        try:
            with self.admin_connection() as connection:
                found = connection.exec_driver_sql("SHOW VARIABLES LIKE 'have_symlink'").first()
        except (DBAPIError, DbWrapperError):
            return []
        if found is None or found[1] != "YES":
            return []
        return [
            f"the {self.server} has symbolic links on (have_symlink = YES), so any login there, every "
            "trainee's among them, can make it write table files into any directory its system user may "
            "write to (CREATE TABLE ... DATA DIRECTORY). Start it with --skip-symbolic-links "
            "(symbolic-links = 0 in its [mysqld] options)."
        ]

