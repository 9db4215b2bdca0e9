"""MySQL's and MariaDB's quirks: no database to connect to, errno codes, KILL before DROP."""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, event, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from dbwrapper.backends import mysqlobjects
from dbwrapper.backends.base import Backend, DatabaseEntry, Login, Source
from dbwrapper.backends.mysqldump import tables_in_dump
from dbwrapper.backends.mysqlobjects import errno, verbatim
from dbwrapper.db import without
from dbwrapper.errors import DbWrapperError, Refused
from dbwrapper.names import validate_name
from dbwrapper.tools import mapped, run_tool

#: The DEFINER clause a dump writes on the lines that make views, routines, triggers and events.
DUMP_DEFINER = re.compile(mysqlobjects.DEFINER.pattern.encode())
ER_DB_CREATE_EXISTS = 1007
ER_LOCK_WAIT_TIMEOUT = 1205
ER_NO_SUCH_THREAD = 1094
#: What index hints on a view get: it has no indexes, not even none.
ER_KEY_DOES_NOT_EXIST = 1176
#: "Operation CREATE USER failed": one of the accounts exists already.
ER_CANNOT_USER = 1396
#: The sql_mode flags in which the server prints names in double quotes: ANSI_QUOTES, and
#: the combinations that include it.
DOUBLE_QUOTING_MODES = frozenset({"ANSI_QUOTES", "ANSI", "DB2", "MAXDB", "MSSQL", "ORACLE", "POSTGRESQL"})
#: MariaDB stores a schema comment from this version on; MySQL does not at all.
MARIADB_SCHEMA_COMMENTS = (10, 5)
#: The statements that drop what a copy cannot carry, by its kind (see mysqlobjects.uncopyable).
DROP_STATEMENTS = {
    "event": "DROP EVENT", "sequence": "DROP SEQUENCE", "package": "DROP PACKAGE",
    "package body": "DROP PACKAGE BODY", "table": "RENAME TABLE",
}


@contextmanager
def foreign_key_checks_off(connection: Connection) -> Iterator[None]:
    """Tables made, filled and dropped in any order: the rows satisfied their foreign keys
    where they come from. The setting is the session's, so it is put back before the
    pooled connection serves anyone else."""
    connection.exec_driver_sql("SET SESSION foreign_key_checks = 0")
    try:
        yield
    finally:
        connection.exec_driver_sql("SET SESSION foreign_key_checks = 1")


@contextmanager
def never_pooled_again(connection: Connection) -> Iterator[None]:
    """The session is closed afterwards instead of going back to the pool.

    For the super-user's INSERTs into a copy, the one statement of its that fires
    triggers: none exists yet on the tables it fills, and nobody but the super-user
    can reach the database meanwhile (Backend.create_database, Backend.shut_out). Were
    one to fire all the same, what it set in the session (sql_select_limit, user
    variables, transaction_read_only, ...) would serve nobody's request next.
    """
    try:
        yield
    finally:
        connection.invalidate()


def changed_meanwhile(schema: str, table: str) -> Refused:
    """The refusal when a table became something else (a view) while it was being copied."""
    return Refused(
        f"The table {table} of {schema} changed while it was being copied (it is no longer a table), "
        "so it was not copied and nothing of it was run; try again when nobody is changing it."
    )


def cannot_carry(name: str, found: list[tuple[str, str]]) -> str:
    """Why a snapshot or revert of ``name`` is refused for what it holds, and what to do."""
    what = ", ".join(f"the {kind} {item}" for kind, item in found)
    why = (" An event runs on its schedule wherever it is: copied into a snapshot, it would change what "
           "must stay as it was." if any(kind == "event" for kind, _ in found) else "")
    table = (f" {mysqlobjects.LEDGER} is a name dbwrapper keeps for itself."
             if any(kind == "table" for kind, _ in found) else "")
    undo = ", ".join(sorted({DROP_STATEMENTS[kind] for kind, _ in found}))
    return (
        f"{name} holds {what}, which a copy made on the MySQL server cannot carry.{why}{table} To take "
        f"a snapshot or revert, keep the definitions (SHOW CREATE ...), remove what is named ({undo}) and "
        "make it again afterwards; or archive the database, which keeps everything. Nothing was changed."
    )


class MySQLBackend(Backend):
    """A MySQL or MariaDB server."""

    kind = "mysql"
    label = "MySQL/MariaDB"
    dialects = frozenset({"mysql", "mariadb"})
    system_databases = frozenset({"mysql", "information_schema", "performance_schema", "sys"})
    login_kind = "MySQL account"

    @staticmethod
    def admin_url(url: URL) -> URL:
        # Server-wide work on MySQL needs no database at all.
        return without(url, "database")

    dump_tool = "mysqldump"
    client_tool = "mysql"
    restore_tools = ("mysql",)  # the client runs the dump's SQL
    archive_suffix = ".sql"

    def tables(self, connection: Connection) -> list[str]:
        query = text(
            "SELECT TABLE_NAME FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1"
        )
        return list(connection.execute(query).scalars())

    def count_statement(self, connection: Connection, table: str) -> str:
        return f"SELECT COUNT(*) FROM {connection.dialect.identifier_preparer.quote_identifier(table)}"

    def tool_env(self, login: Login | None = None) -> dict[str, str]:
        # MYSQL_PWD keeps the password off the command line (where ps shows it)
        # and out of a failed command's error output.
        password = login.password if login else self.url.password
        return {"MYSQL_PWD": password} if password else {}

    def _connection_args(self, login: Login | None = None) -> list[str]:
        """Where and as whom a tool connects, after ``--no-defaults`` (which must come first):
        no option file of this machine's (``~/.my.cnf``, ``/etc/mysql``) adds anything."""
        url = self.url
        socket = url.query.get("unix_socket")
        args = ["--no-defaults", f"--socket={socket}" if socket else f"--host={url.host or 'localhost'}"]
        args += [f"--port={url.port}"] if url.port else []
        user = login.name if login else url.username
        return args + ([f"--user={user}"] if user else [])

    def dump_command(self, tool: str, name: str, path: str, login: Login) -> list[str]:
        # One consistent snapshot of InnoDB tables without locking them, with
        # everything a course database may hold; no CREATE DATABASE, so it can
        # be restored under another name.
        return [
            tool, *self._connection_args(login), "--single-transaction", "--routines", "--triggers",
            "--events", "--no-tablespaces", f"--result-file={path}", validate_name(name),
        ]

    def sql_dump_command(self, tool: str, name: str, login: Login) -> list[str]:
        return [
            tool, *self._connection_args(login), "--single-transaction", "--routines", "--triggers", "--events",
            "--no-tablespaces", "--skip-comments", validate_name(name),
        ]

    def script_command(self, tool: str, name: str, login: Login) -> list[str]:
        # --binary-mode: the client obeys none of its own commands (system, \!, source,
        # tee, connect, ...) but DELIMITER, which dumps of triggers and routines need,
        # and the charset's \C. --local-infile=0: a LOAD DATA LOCAL INFILE cannot make
        # it send a file of this machine. Piped, it stops at the first error.
        return [tool, *self._connection_args(login), self._connect_timeout(), "--binary-mode",
                "--local-infile=0", "--batch", validate_name(name)]

    def script(self, lines: Iterable[bytes]) -> Iterator[bytes]:
        # mysqldump names who defined each view, trigger, routine and event, and
        # only a super-user may define objects for someone else. Without the
        # clause, the login running the script defines them. It stands only on the
        # lines that create such objects, never on a row's.
        for line in lines:
            yield DUMP_DEFINER.sub(b"", line, count=1) if line.startswith((b"/*!", b"CREATE")) else line

    def _connect_timeout(self) -> str:
        """The mysql client's limit on connecting, the short deadline; mysqldump has none, and
        starts only after this service's own connection found the server answering."""
        return f"--connect-timeout={math.ceil(self.deadlines.short)}"

    def dump(self, tool: str, name: str, path: str, login: Login) -> dict[str, int | None]:
        # mysqldump's snapshot cannot be shared, so the rows are counted in the
        # file it writes (archive_tables); the tables it must hold are listed first.
        with self.admin_connection() as connection:
            tables, _ = self._objects_of(connection, name)
        self.renew_password(login)
        run_tool(self.dump_command(tool, name, path, login), self.tool_env(login), timeout=self.deadlines.long)
        return dict.fromkeys(tables)

    def restore(self, tools: dict[str, str], name: str, login: Login, path: str) -> None:
        self.renew_password(login)
        run_tool(self.script_command(tools["mysql"], name, login), self.tool_env(login),
                 feed=self.script(_lines_of(path)), timeout=self.deadlines.long)

    def archive_tables(self, tools: dict[str, str], path: str) -> dict[str, int | None]:
        with mapped(path) as dump:
            return tables_in_dump(dump)

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

    def client_command(self, name: str, login: Login | None = None) -> str:
        socket = self.url.query.get("unix_socket")
        user = login.name if login else self.url.username
        command = ["mysql"]
        command += ["-S", str(socket)] if socket else []
        command += ["-h", self.url.host] if self.url.host else []
        command += ["-P", str(self.url.port)] if self.url.port else []
        command += ["-u", user] if user else []
        command += ["-p"] if login or self.url.password else []
        return shlex.join([*command, name])

    @staticmethod
    def _has_schema_comments(connection: Connection) -> bool:
        dialect = connection.dialect
        version = dialect.server_version_info or ()
        return bool(getattr(dialect, "is_mariadb", False)) and version >= MARIADB_SCHEMA_COMMENTS

    def create(self, connection: Connection, quoted: str, managed: bool, source: Source | None) -> None:
        # MySQL cannot clone a database: copy_content() fills it afterwards.
        statement = f"CREATE DATABASE {quoted} CHARACTER SET utf8mb4"
        if managed and self._has_schema_comments(connection):
            # On MariaDB the marker is part of the CREATE, so it is never missing;
            # the driver quotes the bound marker.
            connection.execute(text(f"{statement} COMMENT :marker"), {"marker": self.marker})
            return
        connection.exec_driver_sql(statement)

    # Copies, moves and snapshots run on the pooled admin connection with every name
    # qualified by its database: a new connection into each database would cost more
    # (a MySQL login takes milliseconds) than the catalog work itself.
    #
    # The super-user who runs them never runs a trainee's code (see mysqlobjects for
    # views, routines and triggers). Tables are made from the server's own SHOW CREATE
    # TABLE and filled with INSERT ... SELECT of the source's stored columns into a
    # fresh table with no trigger yet, in a database nobody else can reach meanwhile
    # (a new one not yet granted, a snapshot, or a reverted one whose login is shut
    # out), so that nobody can add one; MariaDB refuses stored functions and subqueries
    # in CHECK constraints, DEFAULT expressions and generated columns, so filling it
    # runs none. The source may change meanwhile (its owner can reconnect): a table
    # that became a view is refused by USE INDEX () before anything of it runs. And
    # the admin sessions have NO_DIR_IN_CREATE (tune_admin_engine), so a table's DATA
    # or INDEX DIRECTORY, which its owner chose, is never honoured for the super-user.

    def copy_content(self, source: Source, name: str, owner: str) -> None:
        # Copied on the server, table by table: the definition as the server
        # itself prints it (indexes, keys, checks, AUTO_INCREMENT), then the rows
        # with INSERT ... SELECT, so no row passes through a client. Routines come
        # before the views that may call them, and triggers last, once the rows are
        # in, so that the copy fires none of them.
        into, origin = self.quote(name), self.quote(source.name)
        with self.admin_connection() as connection, never_pooled_again(connection):
            tables, views = self._objects_of(connection, source.name)
            columns = self._stored_columns(connection, source.name)
            found = mysqlobjects.read(connection, source.name, views)
            definitions = [self._table_definition(connection, source.name, table, name) for table in tables]
            with foreign_key_checks_off(connection):
                for table, definition in zip(tables, definitions, strict=True):
                    verbatim(connection, definition)
                    listed = ", ".join(self.quote_table(column) for column in columns[table])
                    quoted = self.quote_table(table)
                    try:
                        verbatim(connection, f"INSERT INTO {into}.{quoted} ({listed}) "
                                             f"SELECT {listed} FROM {origin}.{quoted} USE INDEX ()")
                    except DBAPIError as error:
                        if self.error_code(error) == ER_KEY_DOES_NOT_EXIST:  # a view now, which has no indexes
                            raise changed_meanwhile(source.name, table) from error
                        raise
            mysqlobjects.make_routines(connection, found.routines, name, owner)
            mysqlobjects.make_views(connection, found.views.values(), source.name, name, owner)
            mysqlobjects.make_triggers(connection, found.triggers, name, owner)

    def can_copy(self, source: str) -> bool:
        # What copy_content() cannot carry (events, above all) is loaded from the course's SQL.
        with self.admin_connection() as connection:
            return not mysqlobjects.uncopyable(connection, source)

    def rename_spare(self, spare: Source, name: str, login: Login) -> bool:
        # MySQL cannot rename a database: the spare's content moves into a new one.
        # The emptied spare and its login are left for the pool to drop later. A
        # handout that fails or dies half-way is dropped whole, so its triggers need
        # no ledger.
        if not self.create_database(name, login):
            return False
        try:
            with self.admin_connection() as connection:
                self._move_content(connection, spare.name, name, login.name, clear_source=False)
        except (DBAPIError, DbWrapperError):
            self.drop_database(name, login.name, registered=True)
            raise
        return True

    def set_aside(self, name: str, before: str, owner: str) -> None:
        # Moved, not copied: MySQL cannot rename a database. The ledger is made in
        # `before` even for a database without triggers, before any table moves: a
        # table of the owner's with its name then cannot move in (RENAME TABLE fails
        # whole), so a ledger put_back finds in `before` is always the service's own.
        self.create_database(before)
        with self.admin_connection() as connection:
            self._move_content(connection, name, before, owner, ledger=before)
            mysqlobjects.close_ledger(connection, before)

    def copy_back(self, snapshot: str, name: str, owner: str) -> None:
        self.copy_content(Source(snapshot, owner), name, owner)

    def put_back(self, name: str, before: str, owner: str) -> None:
        # A revert may have stopped anywhere, so what each database holds decides.
        # Tables in `before` were set aside by one atomic RENAME, after `before` got
        # copies of the routines, and before it got the views and triggers, which
        # `name` keeps until then (views, routines) or the ledger does (triggers).
        # The copy of the snapshot begins with its tables: with one in `name` beside
        # those set aside, `name`'s tables, routines and views are the snapshot's and
        # give way to `before`'s. Otherwise what `name` has is its own, and it gets
        # back what `before` has that it lacks. Each step leaves what the next run
        # needs: what goes is made again from `before`, which stays whole until it
        # is dropped at the end.
        with self.admin_connection() as connection:
            set_aside, kept_views = self._objects_of(connection, before)
            set_aside = [table for table in set_aside if table != mysqlobjects.LEDGER]
            copied, current_views = self._objects_of(connection, name)
            kept = mysqlobjects.read(connection, before, kept_views)
            current = mysqlobjects.read(connection, name, [])  # its views go by name
            current_routines = current.routines
            triggers = {t.name: t for t in [*mysqlobjects.kept_triggers(connection, before), *kept.triggers]}
            if set_aside:
                mysqlobjects.keep_triggers(connection, before, kept.triggers)  # before they are dropped
                if copied:
                    mysqlobjects.drop_views(connection, name, current_views)
                    mysqlobjects.drop_routines(connection, name, current_routines)
                    current_views, current_routines = [], []
                    with foreign_key_checks_off(connection):
                        for table in copied:  # their triggers go with them
                            verbatim(connection, f"DROP TABLE {self.quote(name)}.{self.quote_table(table)}")
                mysqlobjects.drop_triggers(connection, before, kept.triggers)
                self._rename_tables(connection, before, name, set_aside)
            present = {(r.kind, r.name) for r in current_routines}
            mysqlobjects.make_routines(
                connection, [r for r in kept.routines if (r.kind, r.name) not in present], name, owner,
            )
            missing = [statement for view, statement in kept.views.items() if view not in current_views]
            mysqlobjects.make_views(connection, missing, before, name, owner)
            # Triggers on the tables `name` has now that it lacks.
            firing = set() if set_aside else {trigger.name for trigger in current.triggers}
            tables = set(set_aside or copied)
            mysqlobjects.make_triggers(
                connection, [t for t in triggers.values() if t.name not in firing and t.table in tables], name, owner,
            )
        self.drop_database(before, registered=True)

    def _move_content(
        self, connection: Connection, source: str, target: str, owner: str, *,
        ledger: str | None = None, clear_source: bool = True,
    ) -> None:
        """Move everything ``source`` holds into ``target``, in time that does not grow with the data.

        RENAME TABLE moves tables between databases as a catalog change, all of
        them in one atomic statement (foreign keys move with them), but no table
        with triggers: those are dropped first and made again in ``target``, kept
        meanwhile in the ``ledger`` database's ledger (see mysqlobjects), if one is
        named. Views and routines cannot move: they are made again in ``target``,
        defined by ``owner``, and dropped from ``source`` if ``clear_source`` (not
        when ``source`` is dropped later anyway).
        """
        tables, views = self._objects_of(connection, source)
        found = mysqlobjects.read(connection, source, views)
        mysqlobjects.make_routines(connection, found.routines, target, owner)
        if ledger is not None:
            mysqlobjects.keep_triggers(connection, ledger, found.triggers)
        mysqlobjects.drop_triggers(connection, source, found.triggers)
        self._rename_tables(connection, source, target, tables)
        mysqlobjects.make_triggers(connection, found.triggers, target, owner)
        mysqlobjects.make_views(connection, found.views.values(), source, target, owner)
        if clear_source:
            mysqlobjects.drop_views(connection, source, found.views)
            mysqlobjects.drop_routines(connection, source, found.routines)

    def _rename_tables(self, connection: Connection, source: str, target: str, tables: list[str]) -> None:
        """Move ``tables`` from ``source`` to ``target`` in one atomic RENAME TABLE."""
        if tables:
            moves = ", ".join(
                f"{self.quote(source)}.{self.quote_table(t)} TO {self.quote(target)}.{self.quote_table(t)}"
                for t in tables
            )
            verbatim(connection, f"RENAME TABLE {moves}")

    def end_sessions(self, name: str, login: str) -> int:
        # In a database, or the owner's own anywhere: a session may use a
        # database without having chosen it.
        with self.admin_connection() as connection:
            return self._end_sessions(connection, "DB", name) + self._end_sessions(connection, "USER", login)

    def quote_table(self, name: str) -> str:
        """A table, view or column name from the catalog, quoted by the dialect's preparer."""
        return self._admin.dialect.identifier_preparer.quote_identifier(name)

    @staticmethod
    def _objects_of(connection: Connection, schema: str) -> tuple[list[str], list[str]]:
        """``schema``'s base tables and views, by name, in one catalog query."""
        rows = connection.execute(text(
            "SELECT TABLE_NAME, TABLE_TYPE = 'VIEW' FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = :schema AND TABLE_TYPE IN ('BASE TABLE', 'VIEW') ORDER BY 1"
        ), {"schema": schema}).all()
        return [name for name, view in rows if not view], [name for name, view in rows if view]

    def check_copyable(self, name: str) -> None:
        # A view that no longer works (it reads a table or column since dropped)
        # cannot be made again in another database, so a snapshot or a revert
        # would stop half-way. CHECK TABLE tells (the catalog lists such a view
        # like any other) and runs nothing of the view. Asked of the owner's own
        # database only, where the views' definer has its rights: elsewhere every
        # view would fail the check.
        with self.admin_connection() as connection:
            found = mysqlobjects.uncopyable(connection, name)
            _, views = self._objects_of(connection, name)
            listed = ", ".join(f"{self.quote(name)}.{self.quote_table(view)}" for view in views)
            checked = connection.exec_driver_sql(f"CHECK TABLE {listed}").all() if views else []
        if found:
            raise Refused(cannot_carry(name, found))
        broken = sorted({str(row[0]).split(".", 1)[1] for row in checked if str(row[2]).lower() == "error"})
        if broken:
            raise Refused(
                f"The view(s) {', '.join(broken)} of {name} read tables or columns that no longer exist, "
                "so MySQL cannot copy them; drop or fix them (DROP VIEW, CREATE OR REPLACE VIEW) and "
                "try again. Nothing was changed."
            )

    @staticmethod
    def _stored_columns(connection: Connection, schema: str) -> dict[str, list[str]]:
        """Each table's columns that hold data: generated ones are computed again, not copied."""
        rows = connection.execute(text(
            "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = :schema AND EXTRA NOT LIKE '%GENERATED%' ORDER BY ORDINAL_POSITION"
        ), {"schema": schema})
        columns: dict[str, list[str]] = {}
        for table, column in rows:
            columns.setdefault(table, []).append(column)
        return columns

    def _table_definition(self, connection: Connection, schema: str, table: str, target: str) -> str:
        """The server's own CREATE TABLE for ``schema.table``, made to create it in ``target``.

        The server prints the table's name unqualified, and references to tables
        of the same database too, which then resolve to the new table's database.
        """
        quoted = self.quote_table(table)
        statement = connection.execute(text(f"SHOW CREATE TABLE {self.quote(schema)}.{quoted}")).one()[1]
        prefix = f"CREATE TABLE {quoted}"
        if not statement.startswith(prefix):  # a view now: SHOW CREATE TABLE prints its CREATE VIEW
            raise changed_meanwhile(schema, table)
        return f"CREATE TABLE {self.quote(target)}.{quoted}{statement[len(prefix):]}"

    def _end_sessions(self, connection: Connection, column: str, value: str) -> int:
        """KILL the sessions whose ``column`` (DB or USER, a constant) is ``value``; how many."""
        sessions = connection.execute(
            text(
                f"SELECT ID FROM information_schema.PROCESSLIST "
                f"WHERE {column} = :value AND ID <> CONNECTION_ID()"
            ),
            {"value": value},
        ).scalars()
        ended = 0
        for session_id in list(sessions):
            try:
                connection.execute(text("KILL :id"), {"id": int(session_id)})
                ended += 1
            except DBAPIError as error:
                if self.error_code(error) != ER_NO_SUCH_THREAD:  # it ended by itself meanwhile
                    raise
        return ended

    def drop(self, connection: Connection, name: str, quoted: str) -> None:
        # A session inside the database would hold a metadata lock and make the
        # DROP wait; end those sessions first, as PostgreSQL's FORCE does.
        self._end_sessions(connection, "DB", name)
        connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted}")

    # A login is a user with a row per host in mysql.user: '%', and 'localhost' and
    # every host an anonymous user has. The server tries the rows with the most
    # specific host first, so an anonymous ''@'localhost' (a default install may have
    # one) or ''@'127.0.0.1' would otherwise win over 'name'@'%' from there and refuse
    # the password. Each row gets the connection limit, which the server counts per
    # row: from any one place, one row applies.
    #
    # A login's rows are the ones dbwrapper made, never another account of that user
    # name. It is made only where the name has no account on any host: otherwise it
    # would take that account over (its password, its grants, its DROP), so the new
    # database is refused. From then on its rows are those for the hosts it needs now,
    # and those that hold its database's grant: a row made for an anonymous user who
    # is gone since keeps it, as the trainee has no GRANT OPTION to revoke it. An
    # account of that user name someone makes later for any other host is neither:
    # it never gets the password, the grant or the lock, and is never dropped. (A
    # login is named like its database: the service names it so.)

    def create_login(self, connection: Connection, login: Login) -> None:
        if self._hosts(connection, login.name):
            raise self.login_taken(login.name)
        accounts, params = self._accounts(login.name, self._needed_hosts(connection))
        try:
            connection.execute(
                text(f"CREATE USER {', '.join(f'{account} IDENTIFIED BY :password' for account in accounts)} "
                     "WITH MAX_USER_CONNECTIONS :limit"),
                {**params, "password": login.password, "limit": self.login_connection_limit},
            )
        except DBAPIError as error:
            if self.error_code(error) == ER_CANNOT_USER:  # made meanwhile, by someone else
                raise self.login_taken(login.name) from error
            raise

    def reset_login(self, connection: Connection, login: Login) -> None:
        # A host that got an anonymous user since gets its row now, with the grant every
        # row of the login has.
        own = set(self._own_hosts(connection, login.name))
        new = self._needed_hosts(connection) - own
        params = {"password": login.password, "limit": self.login_connection_limit}
        for host in sorted(new):
            connection.execute(text("CREATE USER IF NOT EXISTS :login@:host IDENTIFIED BY :password"),
                               {**params, "login": login.name, "host": host})
        accounts, named = self._accounts(login.name, own | new)
        connection.execute(
            text(f"ALTER USER {', '.join(f'{account} IDENTIFIED BY :password' for account in accounts)} "
                 "WITH MAX_USER_CONNECTIONS :limit"),
            {**params, **named},
        )
        if new:
            self._grant(connection, login.name, login.name, new)

    def grant(self, connection: Connection, login: Login, name: str, quoted: str) -> None:
        self._grant(connection, login.name, name, self._own_hosts(connection, login.name))

    def _grant(self, connection: Connection, login: str, name: str, hosts: Iterable[str]) -> None:
        # In GRANT, _ and % in a database name are wildcards: alice_1 would also
        # match alicex1. Escaped, the grant covers exactly this database.
        accounts, params = self._accounts(login, hosts)
        connection.execute(text(f"GRANT ALL PRIVILEGES ON {self.quote_pattern(name)}.* TO {', '.join(accounts)}"),
                           params)

    def drop_login(self, connection: Connection, login: str) -> None:
        # Sessions outlive DROP USER and keep their privileges; end them first. Every
        # row of the login's goes, including those for anonymous users that are gone since.
        self._end_sessions(connection, "USER", login)
        accounts, params = self._accounts(login, self._own_hosts(connection, login))
        if accounts:
            connection.execute(text(f"DROP USER IF EXISTS {', '.join(accounts)}"), params)

    def shut_out(self, login: str) -> None:
        # A locked account cannot log in (MariaDB 10.4.2 and MySQL 5.7.6 on), while the
        # views, routines and triggers it defines keep working; its sessions are ended
        # next (Backend.revert_database).
        self._set_account_lock(login, "LOCK")

    def let_in(self, login: str) -> None:
        self._set_account_lock(login, "UNLOCK")

    def _set_account_lock(self, login: str, how: str) -> None:
        """ACCOUNT LOCK or UNLOCK (``how``, a constant) on every row of ``login``'s."""
        with self.admin_connection() as connection:
            accounts, params = self._accounts(login, self._own_hosts(connection, login))
            if accounts:
                connection.execute(text(f"ALTER USER {', '.join(accounts)} ACCOUNT {how}"), params)

    @staticmethod
    def _hosts(connection: Connection, user: str) -> list[str]:
        """The hosts ``user`` ('' for the anonymous users) has rows for, whoever made them."""
        rows = connection.execute(text("SELECT Host FROM mysql.user WHERE User = :user ORDER BY Host"), {"user": user})
        return list(rows.scalars())

    def _own_hosts(self, connection: Connection, login: str) -> list[str]:
        """The hosts of ``login``'s own rows: those it needs, and those holding its database's
        grant (see above)."""
        rows = connection.execute(text(
            "SELECT u.Host FROM mysql.user u WHERE u.User = :login AND (u.Host IN ('%', 'localhost') "
            "OR u.Host IN (SELECT Host FROM mysql.user WHERE User = '') OR EXISTS (SELECT 1 FROM mysql.db d "
            "WHERE d.User = u.User AND d.Host = u.Host AND d.Db = :database)) ORDER BY 1"
        ), {"login": login, "database": self._escaped(login)})
        return list(rows.scalars())

    def _needed_hosts(self, connection: Connection) -> set[str]:
        """The hosts a login needs a row for, so that no anonymous user shadows it."""
        return {"%", "localhost", *self._hosts(connection, "")}

    @staticmethod
    def _accounts(login: str, hosts: Iterable[str]) -> tuple[list[str], dict[str, str]]:
        """``login``'s accounts on ``hosts`` as bound ``user@host`` placeholders, and their values."""
        ordered = sorted(hosts)
        params = {"login": login, **{f"host{i}": host for i, host in enumerate(ordered)}}
        return [f":login@:host{i}" for i in range(len(ordered))], params

    @staticmethod
    def _escaped(name: str) -> str:
        """``name`` as GRANT takes it, with its LIKE wildcards escaped (and as mysql.db keeps it)."""
        return validate_name(name).replace("_", "\\_")

    def quote_pattern(self, name: str) -> str:
        """``name`` quoted for GRANT, with its LIKE wildcards escaped."""
        return self._admin.dialect.identifier_preparer.quote_identifier(self._escaped(name))

    def _entries(self, connection: Connection, condition: str, **params: str) -> list[DatabaseEntry]:
        managed = "SCHEMA_COMMENT = :marker" if self._has_schema_comments(connection) else "NULL"
        rows = connection.execute(
            text(f"SELECT SCHEMA_NAME, {managed} FROM information_schema.SCHEMATA {condition}"),
            {"marker": self.marker, **params},
        )
        return [DatabaseEntry(name, None if flag is None else bool(flag)) for name, flag in rows]

    def lookup(self, connection: Connection, name: str) -> DatabaseEntry | None:
        found = self._entries(connection, "WHERE SCHEMA_NAME = :name", name=name)
        return found[0] if found else None

    def databases(self, connection: Connection) -> list[DatabaseEntry]:
        return self._entries(connection, "ORDER BY SCHEMA_NAME")

    def sizes(self, connection: Connection, names: set[str]) -> dict[str, int | None]:
        # information_schema.TABLES is slow over the server's own schemas (hundreds
        # of tables, 30x slower even behind a join), so it is asked about the user
        # schemas only; the server's own show no size.
        user_schemas = sorted(names - self.system_databases)
        measured: dict[str, int] = {}
        if user_schemas:
            rows = connection.execute(
                text(
                    "SELECT TABLE_SCHEMA, SUM(DATA_LENGTH + INDEX_LENGTH) FROM information_schema.TABLES "
                    "WHERE TABLE_SCHEMA IN :names GROUP BY TABLE_SCHEMA"
                ).bindparams(bindparam("names", expanding=True)),
                {"names": user_schemas},
            )
            measured = {name: int(size or 0) for name, size in rows}
        # A schema without tables has no rows above: its size is 0, not unknown.
        return {name: None if name in self.system_databases else measured.get(name, 0) for name in names}

    def error_code(self, error: DBAPIError) -> Any:
        return errno(error)

    def is_duplicate(self, error: DBAPIError) -> bool:
        return self.error_code(error) == ER_DB_CREATE_EXISTS

    def is_busy(self, error: DBAPIError) -> bool:
        return self.error_code(error) == ER_LOCK_WAIT_TIMEOUT


def _lines_of(path: str | Path) -> Iterator[bytes]:
    """A dump file's lines, read as they are fed to the client."""
    with open(path, "rb") as dump:
        yield from dump
