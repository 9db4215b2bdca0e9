"""MySQL's and MariaDB's quirks: no database to connect to, errno codes, KILL before DROP."""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from dbwrapper.backends.base import Backend, DatabaseEntry, Login, Source
from dbwrapper.backends.mysqldump import tables_in_dump
from dbwrapper.errors import Refused
from dbwrapper.names import validate_name
from dbwrapper.tools import mapped, run_tool

#: The DEFINER clause of SHOW CREATE VIEW: `user`@`host`, backquotes doubled inside.
DEFINER = re.compile(r"DEFINER=`(?:[^`]|``)*`@`(?:[^`]|``)*`")
ER_NO_SUCH_TABLE = 1146
ER_DB_CREATE_EXISTS = 1007
ER_LOCK_WAIT_TIMEOUT = 1205
ER_NO_SUCH_THREAD = 1094
#: MariaDB stores a schema comment from this version on; MySQL does not at all.
MARIADB_SCHEMA_COMMENTS = (10, 5)


def verbatim(connection: Connection, statement: str) -> None:
    """Run ``statement`` as written: one the server printed (SHOW CREATE) or built from
    its catalog's quoted names.

    SQLAlchemy hands PyMySQL every statement with a (here empty) parameter set,
    and PyMySQL %-formats it with that, so a ``%`` in it (``DEFINER=...@'%'``, a
    ``LIKE '%x'`` check) must be doubled to stay itself.
    """
    connection.exec_driver_sql(statement.replace("%", "%%"))


class MySQLBackend(Backend):
    """A MySQL or MariaDB server."""

    kind = "mysql"
    label = "MySQL/MariaDB"
    dialects = frozenset({"mysql", "mariadb"})
    system_databases = frozenset({"mysql", "information_schema", "performance_schema", "sys"})

    @staticmethod
    def admin_url(url: URL) -> URL:
        # Server-wide work on MySQL needs no database at all.
        return url.set(database=None)

    dump_tool = "mysqldump"
    restore_tool = "mysql"
    archive_suffix = ".sql"

    def tables(self, connection: Connection) -> list[str]:
        query = text(
            "SELECT TABLE_NAME FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1"
        )
        return list(connection.execute(query).scalars())

    def tool_env(self) -> dict[str, str]:
        # MYSQL_PWD keeps the password off the command line (where ps shows it)
        # and out of a failed command's error output.
        return {"MYSQL_PWD": self.url.password} if self.url.password else {}

    def _connection_args(self, user: str | None = None) -> list[str]:
        url = self.url
        socket = url.query.get("unix_socket")
        args = [f"--socket={socket}"] if socket else [f"--host={url.host or 'localhost'}"]
        args += [f"--port={url.port}"] if url.port else []
        user = user or url.username
        return args + ([f"--user={user}"] if user else [])

    def dump_command(self, tool: str, name: str, path: str) -> tuple[list[str], bool]:
        # One consistent snapshot of InnoDB tables without locking them, with
        # everything a course database may hold; no CREATE DATABASE, so it can
        # be restored under another name.
        return [
            tool, *self._connection_args(), "--single-transaction", "--routines", "--triggers",
            "--events", "--no-tablespaces", f"--result-file={path}", validate_name(name),
        ], False

    def restore_command(self, tool: str, name: str, path: str, login: str) -> tuple[list[str], bool]:
        return [tool, *self._connection_args(), self._connect_timeout(), validate_name(name)], True

    def sql_dump_command(self, tool: str, name: str) -> list[str]:
        return [
            tool, *self._connection_args(), "--single-transaction", "--routines", "--triggers", "--events",
            "--no-tablespaces", "--skip-comments", validate_name(name),
        ]

    def portable_sql(self, dump: str) -> str:
        # mysqldump names who defined each view, trigger, routine and event, and
        # only a super-user may define objects for someone else. Without the
        # clause, whoever loads the course defines them. It stands only on the
        # lines that create such objects, never on a row's.
        return "".join(
            DEFINER.sub("", line, count=1) if line.startswith(("/*!", "CREATE")) else line
            for line in dump.splitlines(keepends=True)
        )

    client_tool = "mysql"

    def load_command(self, tool: str, name: str, login: Login) -> tuple[list[str], dict[str, str]]:
        # The mysql client stops at the first error when reading standard input.
        argv = [tool, *self._connection_args(login.name), self._connect_timeout(), validate_name(name)]
        return argv, {"MYSQL_PWD": login.password}

    def _connect_timeout(self) -> str:
        """The mysql client's limit on connecting, the short deadline; mysqldump has none, and
        starts only after this service's own connection found the server answering."""
        return f"--connect-timeout={math.ceil(self.deadlines.short)}"

    def dump(self, tool: str, name: str, path: str) -> dict[str, int | None]:
        # mysqldump's snapshot cannot be shared, so the rows are counted in the
        # file it writes (archive_tables); the tables it must hold are listed first.
        with self.admin_connection() as connection:
            tables, _ = self._objects_of(connection, name)
        argv, _ = self.dump_command(tool, name, path)
        run_tool(argv, self.tool_env(), timeout=self.deadlines.long)
        return dict.fromkeys(tables)

    def archive_tables(self, restore_tool: str, path: str) -> dict[str, int | None]:
        with mapped(path) as dump:
            return tables_in_dump(dump)

    def tune_admin_engine(self, engine: Engine) -> None:
        # SQLAlchemy ends every use of a connection with the DBAPI's rollback(),
        # which in AUTOCOMMIT undoes nothing; psycopg2 then sends nothing, but
        # PyMySQL sends a ROLLBACK round trip each time. This engine's dialect is
        # its own, so skipping it here touches no other engine.
        engine.dialect.do_rollback = lambda dbapi_connection: None  # type: ignore[method-assign]

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

    def copy_content(self, source: Source, name: str, owner: str) -> None:
        # Copied on the server, table by table: the definition as the server
        # itself prints it (indexes, keys, checks, AUTO_INCREMENT), then the rows
        # with INSERT ... SELECT, so no row passes through a client.
        into, origin = self.quote(name), self.quote(source.name)
        with self.admin_connection() as connection:
            tables, view_names = self._objects_of(connection, source.name)
            columns = self._stored_columns(connection, source.name)
            views = self._view_statements(connection, source.name, view_names)
            definitions = [self._table_definition(connection, source.name, table, name) for table in tables]
            # Tables are made and filled in any order: the rows satisfied the foreign
            # keys in the source already. The setting is the session's, so it is put
            # back before the pooled connection serves anyone else.
            connection.exec_driver_sql("SET SESSION foreign_key_checks = 0")
            try:
                for table, definition in zip(tables, definitions, strict=True):
                    verbatim(connection, definition)
                    listed = ", ".join(self.quote_table(column) for column in columns[table])
                    quoted = self.quote_table(table)
                    verbatim(connection, f"INSERT INTO {into}.{quoted} ({listed}) "
                                         f"SELECT {listed} FROM {origin}.{quoted}")
            finally:
                connection.exec_driver_sql("SET SESSION foreign_key_checks = 1")
            self._create_views(connection, views.values(), source.name, name, owner)

    def can_copy(self, source: str) -> bool:
        # copy_content() copies tables and views; a course with triggers, routines
        # or events is loaded from its SQL instead.
        with self.admin_connection() as connection:
            others = connection.execute(text(
                "SELECT (SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = :db)"
                " + (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = :db)"
                " + (SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = :db)"
            ), {"db": source}).scalar_one()
        return not others

    def rename_spare(self, spare: Source, name: str, login: Login) -> bool:
        # MySQL cannot rename a database: the spare's content moves into a new one.
        # The emptied spare and its login are left for the pool to drop later.
        if not self.create_database(name, login):
            return False
        try:
            self._move_content(spare.name, name, login.name, clear_source=False)
        except DBAPIError:
            self.drop_database(name, login.name)
            raise
        return True

    def set_aside(self, name: str, before: str, owner: str) -> None:
        # Moved, not copied: MySQL cannot rename a database.
        self.create_database(before)
        self._move_content(name, before, owner)

    def copy_back(self, snapshot: str, name: str, owner: str) -> None:
        self.copy_content(Source(snapshot, owner), name, owner)

    def put_back(self, name: str, before: str, owner: str) -> None:
        # A revert may have stopped anywhere, so what each database holds decides.
        # Tables in `before` were set aside by one atomic RENAME: they go back, and
        # tables in `name` beside them are the snapshot's copy, which goes. Views
        # are made in `before` before they are dropped from `name`, and the copy
        # makes its views after its tables: so with the copy begun, `name`'s views
        # are the snapshot's and give way to `before`'s; otherwise `name` keeps its
        # own and gets back any `before` has that it lost.
        with self.admin_connection() as connection:
            set_aside, kept_views = self._objects_of(connection, before)
            copied, current_views = self._objects_of(connection, name)
            views = self._view_statements(connection, before, kept_views)
            if set_aside:
                connection.exec_driver_sql("SET SESSION foreign_key_checks = 0")
                try:
                    for table in copied:
                        verbatim(connection, f"DROP TABLE {self.quote(name)}.{self.quote_table(table)}")
                finally:
                    connection.exec_driver_sql("SET SESSION foreign_key_checks = 1")
                self._rename_tables(connection, before, name, set_aside)
            if set_aside and copied:
                for view in current_views:
                    verbatim(connection, f"DROP VIEW {self.quote(name)}.{self.quote_table(view)}")
                current_views = []
            missing = [statement for view, statement in views.items() if view not in current_views]
            self._create_views(connection, missing, before, name, owner)
        self.drop_database(before)

    def _move_content(self, source: str, target: str, owner: str, *, clear_source: bool = True) -> None:
        """Move every table and view of ``source`` into ``target``, in time that does not grow with the data.

        RENAME TABLE moves tables between databases as a catalog change, all of
        them in one atomic statement (foreign keys move with them). Views cannot
        move: they are made again in ``target``, defined by ``owner``, and dropped
        from ``source`` if ``clear_source`` (not when ``source`` is dropped later anyway).
        """
        with self.admin_connection() as connection:
            tables, view_names = self._objects_of(connection, source)
            views = self._view_statements(connection, source, view_names)
            self._rename_tables(connection, source, target, tables)
            self._create_views(connection, views.values(), source, target, owner)
            for view in views if clear_source else ():
                verbatim(connection, f"DROP VIEW {self.quote(source)}.{self.quote_table(view)}")

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

    def check_views(self, name: str) -> None:
        # A view that no longer works (it reads a table or column since dropped)
        # cannot be made again in another database, so a snapshot or a revert
        # would stop half-way. CHECK TABLE tells (the catalog lists such a view
        # like any other). Asked of the owner's own database only, where the
        # views' definer has its rights: elsewhere every view would fail the check.
        with self.admin_connection() as connection:
            _, views = self._objects_of(connection, name)
            if not views:
                return
            listed = ", ".join(f"{self.quote(name)}.{self.quote_table(view)}" for view in views)
            checked = connection.exec_driver_sql(f"CHECK TABLE {listed}").all()
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
        assert statement.startswith(prefix), statement[:80]
        return f"CREATE TABLE {self.quote(target)}.{quoted}{statement[len(prefix):]}"

    def _view_statements(self, connection: Connection, schema: str, views: list[str]) -> dict[str, str]:
        """``schema``'s ``views`` by name, as the server prints their CREATE statements (every
        name in them qualified by ``schema``)."""
        return {
            view: connection.execute(text(f"SHOW CREATE VIEW {self.quote(schema)}.{self.quote_table(view)}")).one()[1]
            for view in views
        }

    def _create_views(
        self, connection: Connection, views: Iterable[str], source: str, target: str, owner: str,
    ) -> None:
        """Make ``source``'s ``views`` in ``target``, defined by ``owner`` so they run with its rights.

        The server qualifies every name in a view with its database, as
        `source`.`table`; those become `target`.`table`. (A string literal in a
        view that spelled `source`. with its backquotes would be changed too;
        a view has no reason to.) A view may read
        another: those that fail for a missing view are tried again once the
        others exist.
        """
        definer = f"DEFINER={self.quote(owner)}@'%'"
        moved_from, moved_to = f"{self.quote(source)}.", f"{self.quote(target)}."
        pending = [DEFINER.sub(lambda _: definer, view, count=1).replace(moved_from, moved_to) for view in views]
        while pending:
            failed: list[tuple[str, DBAPIError]] = []
            for statement in pending:
                try:
                    verbatim(connection, statement)
                except DBAPIError as error:
                    if self.error_code(error) != ER_NO_SUCH_TABLE:
                        raise
                    failed.append((statement, error))
            if len(failed) == len(pending):
                raise failed[0][1]
            pending = [statement for statement, _ in failed]

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

    def create_login(self, connection: Connection, login: Login) -> None:
        # Made for both '%' and 'localhost': a default server install may have an
        # anonymous ''@'localhost' user, which would otherwise win over
        # 'name'@'%' for every connection from the server's own host.
        connection.execute(
            text(
                "CREATE USER :login@'%' IDENTIFIED BY :password, "
                ":login@'localhost' IDENTIFIED BY :password"
            ),
            {"login": login.name, "password": login.password},
        )

    def reset_login(self, connection: Connection, login: Login) -> None:
        for host in ("%", "localhost"):
            params = {"login": login.name, "host": host, "password": login.password}
            connection.execute(text("CREATE USER IF NOT EXISTS :login@:host IDENTIFIED BY :password"), params)
            connection.execute(text("ALTER USER :login@:host IDENTIFIED BY :password"), params)

    def grant(self, connection: Connection, login: Login, name: str, quoted: str) -> None:
        # In GRANT, _ and % in a database name are wildcards: alice_1 would also
        # match alicex1. Escaped, the grant covers exactly this database.
        exact = self.quote_pattern(name)
        connection.execute(
            text(f"GRANT ALL PRIVILEGES ON {exact}.* TO :login@'%', :login@'localhost'"),
            {"login": login.name},
        )

    def drop_login(self, connection: Connection, login: str) -> None:
        # Sessions outlive DROP USER and keep their privileges; end them first.
        self._end_sessions(connection, "USER", login)
        connection.execute(text("DROP USER IF EXISTS :login@'%', :login@'localhost'"), {"login": login})

    def quote_pattern(self, name: str) -> str:
        """``name`` quoted for GRANT, with its LIKE wildcards escaped."""
        escaped = validate_name(name).replace("_", "\\_")
        return self._admin.dialect.identifier_preparer.quote_identifier(escaped)

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
        args = getattr(error.orig, "args", ())
        return args[0] if args else None

    def is_duplicate(self, error: DBAPIError) -> bool:
        return self.error_code(error) == ER_DB_CREATE_EXISTS

    def is_busy(self, error: DBAPIError) -> bool:
        return self.error_code(error) == ER_LOCK_WAIT_TIMEOUT
