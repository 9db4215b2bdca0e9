"""MySQL's databases: no clone and no rename, so content is copied and moved on the server.

Copies, moves and snapshots run on the pooled admin connection with every name
qualified by its database: a new connection into each database would cost more
(a MySQL login takes milliseconds) than the catalog work itself.

The super-user who runs them never runs a trainee's code (see
:mod:`dbwrapper.backends.mysql.objects` for views, routines and triggers).
Tables are made from the server's own SHOW CREATE TABLE and filled with INSERT
... SELECT of the source's stored columns into a fresh table with no trigger
yet, in a database nobody else can reach meanwhile (a new one not yet granted,
a snapshot, or a reverted one whose login is locked), so that nobody can add
one; MariaDB refuses stored functions and subqueries in CHECK constraints,
DEFAULT expressions and generated columns, so filling it runs none. The source
may change meanwhile (its owner can reconnect): a table that became a view is
refused by USE INDEX () before anything of it runs. And the admin sessions have
NO_DIR_IN_CREATE (``MySQLBackend.tune_admin_engine``), so a table's DATA or
INDEX DIRECTORY, which its owner chose, is never honoured for the super-user.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from dbwrapper.backends.base.creation import BaseCreation
from dbwrapper.backends.base.types import Login, Source
from dbwrapper.backends.mysql import objects
from dbwrapper.backends.mysql.catalog import has_schema_comments, tables_and_views
from dbwrapper.backends.mysql.errors import ER_KEY_DOES_NOT_EXIST
from dbwrapper.backends.mysql.logins import end_sessions_where
from dbwrapper.backends.mysql.objects import quote, verbatim
from dbwrapper.errors import Refused

#: The statements that drop what a copy cannot carry, by its kind (see objects.uncopyable).
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
    can reach the database meanwhile (BaseCreation.create_database, MySQLLogins.lock_login).
    Were one to fire all the same, what it set in the session (sql_select_limit, user
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
    table = (f" {objects.LEDGER} is a name dbwrapper keeps for itself."
             if any(kind == "table" for kind, _ in found) else "")
    undo = ", ".join(sorted({DROP_STATEMENTS[kind] for kind, _ in found}))
    return (
        f"{name} holds {what}, which a copy made on the MySQL server cannot carry.{why}{table} To take "
        f"a snapshot or revert, keep the definitions (SHOW CREATE ...), remove what is named ({undo}) and "
        "make it again afterwards; or archive the database, which keeps everything. Nothing was changed."
    )


def rename_tables(connection: Connection, source: str, target: str, tables: list[str]) -> None:
    """Move ``tables`` from ``source`` to ``target`` in one atomic RENAME TABLE."""
    if tables:
        moves = ", ".join(
            f"{objects.qualified(connection, source, t)} TO {objects.qualified(connection, target, t)}"
            for t in tables
        )
        verbatim(connection, f"RENAME TABLE {moves}")


class MySQLCreation(BaseCreation):
    """Databases whose content is copied table by table, or moved by RENAME TABLE."""

    can_rename_database = False

    def create(self, connection: Connection, name: str, managed: bool, source: Source | None) -> None:
        # MySQL cannot clone a database: copy_content() fills it afterwards.
        statement = f"CREATE DATABASE {self.backend.quote(name)} CHARACTER SET utf8mb4"
        if managed and has_schema_comments(connection):
            # On MariaDB the marker is part of the CREATE, so it is never missing;
            # the driver quotes the bound marker.
            connection.execute(text(f"{statement} COMMENT :marker"), {"marker": self.backend.marker})
            return
        connection.exec_driver_sql(statement)

    def drop(self, connection: Connection, name: str) -> None:
        # A session inside the database would hold a metadata lock and make the
        # DROP wait; end those sessions first, as PostgreSQL's FORCE does.
        end_sessions_where(connection, "DB", name)
        connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {self.backend.quote(name)}")

    def copy_content(self, source: Source, name: str, owner: str) -> None:
        # Copied on the server, table by table: the definition as the server
        # itself prints it (indexes, keys, checks, AUTO_INCREMENT), then the rows
        # with INSERT ... SELECT, so no row passes through a client. Routines come
        # before the views that may call them, and triggers last, once the rows are
        # in, so that the copy fires none of them.
        into, origin = self.backend.quote(name), self.backend.quote(source.name)
        with self.backend.admin_connection() as connection, never_pooled_again(connection):
            tables, views = tables_and_views(connection, source.name)
            columns = self._stored_columns(connection, source.name)
            found = objects.read(connection, source.name, views)
            definitions = [self._table_definition(connection, source.name, table, name) for table in tables]
            with foreign_key_checks_off(connection):
                for table, definition in zip(tables, definitions, strict=True):
                    verbatim(connection, definition)
                    listed = ", ".join(quote(connection, column) for column in columns[table])
                    quoted = quote(connection, table)
                    try:
                        verbatim(connection, f"INSERT INTO {into}.{quoted} ({listed}) "
                                             f"SELECT {listed} FROM {origin}.{quoted} USE INDEX ()")
                    except DBAPIError as error:
                        if self.backend.errors.error_code(error) == ER_KEY_DOES_NOT_EXIST:  # a view now
                            raise changed_meanwhile(source.name, table) from error
                        raise
            objects.make_routines(connection, found.routines, name, owner)
            objects.make_views(connection, found.views.values(), source.name, name, owner)
            objects.make_triggers(connection, found.triggers, name, owner)

    def can_copy(self, source: str) -> bool:
        # What copy_content() cannot carry (events, above all) is loaded from the course's SQL.
        with self.backend.admin_connection() as connection:
            return not objects.uncopyable(connection, source)

    def check_copyable(self, name: str) -> None:
        # A view that no longer works (it reads a table or column since dropped)
        # cannot be made again in another database, so a snapshot or a revert
        # would stop half-way. CHECK TABLE tells (the catalog lists such a view
        # like any other) and runs nothing of the view. Asked of the owner's own
        # database only, where the views' definer has its rights: elsewhere every
        # view would fail the check.
        with self.backend.admin_connection() as connection:
            found = objects.uncopyable(connection, name)
            _, views = tables_and_views(connection, name)
            listed = ", ".join(objects.qualified(connection, name, view) for view in views)
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

    def end_sessions(self, name: str, login: str) -> int:
        # In a database, or the owner's own anywhere: a session may use a
        # database without having chosen it.
        with self.backend.admin_connection() as connection:
            return end_sessions_where(connection, "DB", name) + end_sessions_where(connection, "USER", login)

    def move_spare(self, spare: Source, name: str, login: Login) -> None:
        with self.backend.admin_connection() as connection:
            self.move_content(connection, spare.name, name, login.name, clear_source=False)

    def move_to_backup(self, name: str, backup: str, owner: str) -> None:
        # Moved, not copied: MySQL cannot rename a database. The ledger is made in
        # `backup` even for a database without triggers, before any table moves: a
        # table of the owner's with its name then cannot move in (RENAME TABLE fails
        # whole), so a ledger restore_backup finds in `backup` is always the service's own.
        self.make(backup)
        with self.backend.admin_connection() as connection:
            self.move_content(connection, name, backup, owner, ledger=backup)
            objects.close_ledger(connection, backup)

    def copy_snapshot(self, snapshot: Source, name: str, owner: str) -> None:
        self.copy_content(snapshot, name, owner)

    def take_spare(self, spare: Source, name: str, owner: str) -> None:
        # Moved into the database the reset emptied (move_to_backup), as a handout moves
        # a spare into a new one; the emptied spare is dropped by the pool's job.
        with self.backend.admin_connection() as connection:
            self.move_content(connection, spare.name, name, owner, clear_source=False)

    def restore_backup(self, name: str, backup: str, owner: str) -> None:
        # A revert may have stopped anywhere, so what each database holds decides.
        # Tables in `backup` were moved there by one atomic RENAME, after `backup` got
        # copies of the routines, and before it got the views and triggers, which
        # `name` keeps until then (views, routines) or the ledger does (triggers).
        # The copy of the snapshot begins with its tables: with one in `name` beside
        # those moved aside, `name`'s tables, routines and views are the snapshot's and
        # give way to `backup`'s. Otherwise what `name` has is its own, and it gets
        # back what `backup` has that it lacks. Each step leaves what the next run
        # needs: what goes is made again from `backup`, which stays whole until it
        # is dropped at the end.
        with self.backend.admin_connection() as connection:
            moved, kept_views = tables_and_views(connection, backup)
            moved = [table for table in moved if table != objects.LEDGER]
            copied, current_views = tables_and_views(connection, name)
            kept = objects.read(connection, backup, kept_views)
            current = objects.read(connection, name, [])  # its views go by name
            current_routines = current.routines
            triggers = {t.name: t for t in [*objects.kept_triggers(connection, backup), *kept.triggers]}
            if moved:
                objects.keep_triggers(connection, backup, kept.triggers)  # before they are dropped
                if copied:
                    objects.drop_views(connection, name, current_views)
                    objects.drop_routines(connection, name, current_routines)
                    current_views, current_routines = [], []
                    with foreign_key_checks_off(connection):
                        for table in copied:  # their triggers go with them
                            verbatim(connection, f"DROP TABLE {objects.qualified(connection, name, table)}")
                objects.drop_triggers(connection, backup, kept.triggers)
                rename_tables(connection, backup, name, moved)
            present = {(r.kind, r.name) for r in current_routines}
            objects.make_routines(
                connection, [r for r in kept.routines if (r.kind, r.name) not in present], name, owner,
            )
            missing = [statement for view, statement in kept.views.items() if view not in current_views]
            objects.make_views(connection, missing, backup, name, owner)
            # Triggers on the tables `name` has now that it lacks.
            firing = set() if moved else {trigger.name for trigger in current.triggers}
            tables = set(moved or copied)
            objects.make_triggers(
                connection, [t for t in triggers.values() if t.name not in firing and t.table in tables], name, owner,
            )
            self.drop(connection, backup)

    def move_content(
        self, connection: Connection, source: str, target: str, owner: str, *,
        ledger: str | None = None, clear_source: bool = True,
    ) -> None:
        """Move everything ``source`` holds into ``target``, in time that does not grow with the data.

        RENAME TABLE moves tables between databases as a catalog change, all of
        them in one atomic statement (foreign keys move with them), but no table
        with triggers: those are dropped first and made again in ``target``, kept
        meanwhile in the ``ledger`` database's ledger (see objects), if one is
        named. Views and routines cannot move: they are made again in ``target``,
        defined by ``owner``, and dropped from ``source`` if ``clear_source`` (not
        when ``source`` is dropped later anyway).
        """
        tables, views = tables_and_views(connection, source)
        found = objects.read(connection, source, views)
        objects.make_routines(connection, found.routines, target, owner)
        if ledger is not None:
            objects.keep_triggers(connection, ledger, found.triggers)
        objects.drop_triggers(connection, source, found.triggers)
        rename_tables(connection, source, target, tables)
        objects.make_triggers(connection, found.triggers, target, owner)
        objects.make_views(connection, found.views.values(), source, target, owner)
        if clear_source:
            objects.drop_views(connection, source, found.views)
            objects.drop_routines(connection, source, found.routines)

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
        quoted = quote(connection, table)
        shown = connection.execute(text(f"SHOW CREATE TABLE {objects.qualified(connection, schema, table)}"))
        statement = shown.one()[1]
        prefix = f"CREATE TABLE {quoted}"
        if not statement.startswith(prefix):  # a view now: SHOW CREATE TABLE prints its CREATE VIEW
            raise changed_meanwhile(schema, table)
        return f"CREATE TABLE {self.backend.quote(target)}.{quoted}{statement[len(prefix):]}"
