"""A MySQL/MariaDB database's views, routines and triggers: read from the server, made again elsewhere.

Beside its tables, a database a copy must carry holds views, routines
(procedures and functions) and triggers. The server prints each one's
definition (``SHOW CREATE VIEW``, ``SHOW CREATE PROCEDURE``/``FUNCTION``,
``information_schema.TRIGGERS``); these functions make them again in another
database from what it printed, each defined by the content's owner
(``DEFINER=`owner`@'%'``) whoever runs the statement. The copies in
:mod:`dbwrapper.backends.mysql.creation` run them as the super-user, and that never
runs a trainee's code, because:

* making a view, routine or trigger stores its definition and runs none of
  it. The statements are the server's own output (a trigger's: its timing,
  event and body, put together again around quoted names), with only the
  definer and the database's name changed; the driver sends one statement per
  query (PyMySQL does not ask for multi-statements), so no text inside a
  definition can add a statement of its own;
* reading runs nothing either: information_schema, ``SHOW CREATE`` and
  ``CHECK TABLE`` open a view's definition without executing it (tested in
  tests/test_mysql_copies.py with a view whose function writes down who ran it);
* once made, a trigger and a routine run as their definer, the owner, whoever
  fires or calls them; a view or routine with ``SQL SECURITY INVOKER`` runs
  with the rights of whoever uses it, and the super-user never uses one.

Names a routine's or trigger's body qualifies with the database's own name
keep pointing at it (the server prints bodies as they were written); a view's
are rewritten, as the server qualifies every name in a view.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from dbwrapper.errors import Refused
from dbwrapper.names import validate_name

#: The DEFINER clause the server prints: `user`@`host` (or a role, `role`), backquotes doubled
#: inside; or "user"@"host" for an object made with sql_mode ANSI_QUOTES, which SHOW CREATE
#: prints (and mysqldump writes) in the object's own mode.
DEFINER = re.compile(r'DEFINER=(?:`(?:[^`]|``)*`(?:@`(?:[^`]|``)*`)?|"(?:[^"]|"")*"(?:@"(?:[^"]|"")*")?)')
#: How SHOW CREATE PROCEDURE/FUNCTION begins, up to the routine's (unqualified) name.
ROUTINE_HEAD = re.compile(rf"CREATE {DEFINER.pattern} (?:AGGREGATE )?(?:FUNCTION|PROCEDURE) ")
#: The table that keeps a database's triggers while a move has turned them off (see keep_triggers).
LEDGER = "_dbw_triggers"
ER_NO_SUCH_TABLE = 1146
#: "execute command denied to user ... for routine ..."
ER_PROCACCESS_DENIED = 1370


def verbatim(connection: Connection, statement: str) -> None:
    """Run ``statement`` as written: one the server printed (SHOW CREATE) or built from
    its catalog's quoted names.

    SQLAlchemy hands PyMySQL every statement with a (here empty) parameter set,
    and PyMySQL %-formats it with that, so a ``%`` in it (``DEFINER=...@'%'``, a
    ``LIKE '%x'`` check) must be doubled to stay itself.
    """
    connection.exec_driver_sql(statement.replace("%", "%%"))


def quote(connection: Connection, name: str) -> str:
    """A name from the catalog, quoted by the dialect's preparer."""
    return connection.dialect.identifier_preparer.quote_identifier(name)


def qualified(connection: Connection, schema: str, name: str) -> str:
    """```schema`.`name```, the database's name checked against the allow-list first."""
    return f"{quote(connection, validate_name(schema))}.{quote(connection, name)}"


def defined_by(connection: Connection, owner: str) -> str:
    """The DEFINER clause that makes ``owner``'s login (its '%' row) an object's definer."""
    return f"DEFINER={quote(connection, validate_name(owner))}@'%'"


@dataclass(frozen=True)
class Routine:
    """A procedure or function, as SHOW CREATE prints it."""

    kind: str  # PROCEDURE or FUNCTION
    name: str
    #: The sql_mode it was made in, which it runs in: it is made again in the same.
    sql_mode: str
    #: What follows its name: parameters, characteristics and body.
    rest: str


@dataclass(frozen=True)
class Trigger:
    """A trigger, as information_schema.TRIGGERS describes it."""

    name: str
    table: str
    timing: str  # BEFORE or AFTER
    event: str  # INSERT, UPDATE or DELETE
    #: Its place among the table's triggers for the same timing and event, from 1.
    order: int
    sql_mode: str
    body: str


@dataclass(frozen=True)
class Definitions:
    """What a database holds beside its tables."""

    #: CREATE VIEW statements by view, as the server prints them (every name qualified).
    views: dict[str, str]
    routines: list[Routine]
    triggers: list[Trigger]


def read(connection: Connection, schema: str, views: Iterable[str]) -> Definitions:
    """``schema``'s ``views`` (their names come from the catalog), routines and triggers."""
    return Definitions(
        {view: connection.execute(text(f"SHOW CREATE VIEW {qualified(connection, schema, view)}")).one()[1]
         for view in views},
        _routines(connection, schema),
        _triggers(connection, schema),
    )


def _routines(connection: Connection, schema: str) -> list[Routine]:
    listed = connection.execute(text(
        "SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES "
        "WHERE ROUTINE_SCHEMA = :schema AND ROUTINE_TYPE IN ('PROCEDURE', 'FUNCTION') ORDER BY 1, 2"
    ), {"schema": schema}).all()
    routines = []
    for kind, name in listed:
        _, sql_mode, statement, *_ = connection.execute(
            text(f"SHOW CREATE {kind} {qualified(connection, schema, name)}")
        ).one()
        head = ROUTINE_HEAD.match(statement)
        quoted = printed_name(connection, name, sql_mode)
        if head is None or not statement.startswith(quoted, head.end()):
            raise Refused(f"MySQL printed the {kind.lower()} {name} of {schema} in a way dbwrapper does not "
                          f"know, so it cannot copy it: {statement[:80]!r}. Nothing was changed; archive the "
                          "database instead, which keeps it as it is.")
        routines.append(Routine(kind, name, sql_mode, statement[head.end() + len(quoted):]))
    return routines


def printed_name(connection: Connection, name: str, sql_mode: str) -> str:
    """``name`` as SHOW CREATE prints it for an object made in ``sql_mode``: between double
    quotes in ANSI_QUOTES (which the combinations including it list too), else backquotes."""
    if "ANSI_QUOTES" in sql_mode.split(","):
        return '"' + name.replace('"', '""') + '"'
    return quote(connection, name)


def _triggers(connection: Connection, schema: str) -> list[Trigger]:
    # A trigger is in its table's database. Asked by the table's (EVENT_OBJECT_SCHEMA),
    # MariaDB reads that database's tables only; by TRIGGER_SCHEMA, every database's.
    rows = connection.execute(text(
        "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER, "
        "SQL_MODE, ACTION_STATEMENT FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = :schema"
    ), {"schema": schema})
    return [Trigger(*row) for row in rows]


def uncopyable(connection: Connection, schema: str) -> list[tuple[str, str]]:
    """What ``schema`` holds that no copy carries, as (kind, name): events, sequences,
    packages, and a table that would be taken for the ledger.

    An event runs on its schedule wherever it is: a copy of it would change a
    snapshot, which must stay as it was, or a course's master and spares before
    anyone has them. Sequences (MariaDB) and packages (MariaDB's Oracle mode)
    are rare enough in a course to be left to the course's SQL and archives.
    """
    rows = connection.execute(text(
        "SELECT 'event', EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = :schema "
        "UNION ALL SELECT 'sequence', TABLE_NAME FROM information_schema.TABLES "
        "WHERE TABLE_SCHEMA = :schema AND TABLE_TYPE = 'SEQUENCE' "
        "UNION ALL SELECT LOWER(ROUTINE_TYPE), ROUTINE_NAME FROM information_schema.ROUTINES "
        "WHERE ROUTINE_SCHEMA = :schema AND ROUTINE_TYPE NOT IN ('PROCEDURE', 'FUNCTION') "
        "UNION ALL SELECT 'table', TABLE_NAME FROM information_schema.TABLES "
        "WHERE TABLE_SCHEMA = :schema AND TABLE_NAME = :ledger ORDER BY 1, 2"
    ), {"schema": schema, "ledger": LEDGER})
    return [(kind, name) for kind, name in rows]


@contextmanager
def _keeping_sql_mode(connection: Connection) -> Iterator[None]:
    """Let the caller set the session's sql_mode per object; the session's own comes back after.

    A routine or trigger keeps the sql_mode it was made in and runs in it, so
    it is made again in that same mode.
    """
    session = connection.exec_driver_sql("SELECT @@SESSION.sql_mode").scalar_one()
    try:
        yield
    finally:
        connection.execute(text("SET SESSION sql_mode = :mode"), {"mode": session})


def make_routines(connection: Connection, routines: Iterable[Routine], target: str, owner: str) -> None:
    """Make ``routines`` in ``target``, defined by ``owner``."""
    definer = defined_by(connection, owner)
    routines = list(routines)
    if not routines:
        return
    with _keeping_sql_mode(connection):
        for routine in routines:
            connection.execute(text("SET SESSION sql_mode = :mode"), {"mode": routine.sql_mode})
            verbatim(connection, f"CREATE {definer} {routine.kind} "
                                 f"{qualified(connection, target, routine.name)}{routine.rest}")


def make_triggers(connection: Connection, triggers: Iterable[Trigger], target: str, owner: str) -> None:
    """Make ``triggers`` on ``target``'s tables, defined by ``owner``, each table's in their order
    (see _in_database)."""
    definer = defined_by(connection, owner)
    triggers = list(triggers)
    if not triggers:
        return
    with _in_database(connection, target), _keeping_sql_mode(connection):
        # A new trigger comes after those of its table, timing and event that exist.
        for trigger in sorted(triggers, key=lambda t: t.order):
            if trigger.timing not in ("BEFORE", "AFTER") or trigger.event not in ("INSERT", "UPDATE", "DELETE"):
                raise Refused(f"The trigger {trigger.name} has no timing and event dbwrapper knows "
                              f"({trigger.timing} {trigger.event}), so it cannot copy it.")
            connection.execute(text("SET SESSION sql_mode = :mode"), {"mode": trigger.sql_mode})
            verbatim(connection, f"CREATE {definer} TRIGGER {quote(connection, trigger.name)} {trigger.timing} "
                                 f"{trigger.event} ON {quote(connection, trigger.table)} FOR EACH ROW {trigger.body}")


def make_views(connection: Connection, views: Iterable[str], source: str, target: str, owner: str) -> None:
    """Make ``source``'s ``views`` (CREATE VIEW statements) in ``target``, defined by ``owner``.

    The server qualifies every name in a view with its database, as
    `source`.`table`; those become `target`.`table`. (A string literal in a
    view that spelled `source`. with its backquotes would be changed too;
    a view has no reason to.) A view may read another: those that fail for
    a missing view are tried again once the others exist. The routines a
    view calls must exist first (see _in_database).

    The server checks a view's function calls when it makes the view: a
    function that runs as its definer (SQL SECURITY DEFINER, the default) must
    be one its definer may run there. In a snapshot, which the owner cannot
    reach, it is not; there (and only where a view was refused for it) the
    database's functions run as their invoker while the views are made, then
    as their definer again. A crash in between leaves a snapshot half-taken,
    which is dropped, or a revert's backup while the database still has
    its own (see MySQLCreation.restore_backup).
    """
    definer = defined_by(connection, owner)
    moved_from = f"{quote(connection, validate_name(source))}."
    moved_to = f"{quote(connection, validate_name(target))}."
    pending = [DEFINER.sub(lambda _: definer, view, count=1).replace(moved_from, moved_to) for view in views]
    if not pending:
        return
    with _in_database(connection, target):
        refused = _made(connection, pending, waiting={ER_NO_SUCH_TABLE, ER_PROCACCESS_DENIED})
        if refused:
            with _functions_as_invoker(connection, target):
                refused = _made(connection, [statement for statement, _ in refused], waiting={ER_NO_SUCH_TABLE})
        if refused:
            raise refused[0][1]


def _made(connection: Connection, pending: list[str], waiting: set[int]) -> list[tuple[str, DBAPIError]]:
    """Make the views of ``pending`` that can be made, again and again while some are;
    those refused with an error in ``waiting``, and why."""
    while pending:
        failed: list[tuple[str, DBAPIError]] = []
        for statement in pending:
            try:
                verbatim(connection, statement)
            except DBAPIError as error:
                if errno(error) not in waiting:
                    raise
                failed.append((statement, error))
        if len(failed) == len(pending):
            return failed
        pending = [statement for statement, _ in failed]
    return []


@contextmanager
def _functions_as_invoker(connection: Connection, schema: str) -> Iterator[None]:
    """``schema``'s functions that run as their definer run as their invoker meanwhile (see make_views)."""
    functions = list(connection.execute(text(
        "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = :schema "
        "AND ROUTINE_TYPE = 'FUNCTION' AND SECURITY_TYPE = 'DEFINER'"
    ), {"schema": schema}).scalars())
    for function in functions:
        verbatim(connection, f"ALTER FUNCTION {qualified(connection, schema, function)} SQL SECURITY INVOKER")
    try:
        yield
    finally:
        for function in functions:
            verbatim(connection, f"ALTER FUNCTION {qualified(connection, schema, function)} SQL SECURITY DEFINER")


@contextmanager
def _in_database(connection: Connection, schema: str) -> Iterator[None]:
    """The session in database ``schema`` meanwhile, to make views and triggers there.

    A view keeps a call to a function of its own database as the owner wrote it,
    unqualified (`spy`()), and the server looks such a name up in the session's
    database when the view is made (in the view's own when it is used). A trigger
    keeps the statement that made it, which mysqldump prints: made with unqualified
    names, it loads into any database. The admin sessions are otherwise in none,
    which MySQL cannot go back to (there is no USE NULL): afterwards the session is
    in information_schema, which holds no routines and whose sessions nothing ends.
    """
    connection.exec_driver_sql(f"USE {quote(connection, validate_name(schema))}")
    try:
        yield
    finally:
        connection.exec_driver_sql("USE information_schema")


def drop_views(connection: Connection, schema: str, views: Iterable[str]) -> None:
    for view in views:
        verbatim(connection, f"DROP VIEW {qualified(connection, schema, view)}")


def drop_routines(connection: Connection, schema: str, routines: Iterable[Routine]) -> None:
    for routine in routines:
        verbatim(connection, f"DROP {routine.kind} {qualified(connection, schema, routine.name)}")


def drop_triggers(connection: Connection, schema: str, triggers: Iterable[Trigger]) -> None:
    for trigger in triggers:
        verbatim(connection, f"DROP TRIGGER {qualified(connection, schema, trigger.name)}")


# -- the ledger: triggers kept while they are off ----------------------------------------
#
# RENAME TABLE refuses to move a table with triggers to another database, so a move
# drops them, renames, and makes them again; in between they exist nowhere but in this
# process. Before they are dropped they are written into the ledger, a table in a
# database only the super-user reaches (a revert's backup), and restore_backup
# makes them again from it after a crash. Rows are only ever added, and triggers are
# dropped only after theirs is in: whatever moment a crash hits, the ledger and the
# triggers that still exist hold them all between them.


def keep_triggers(connection: Connection, schema: str, triggers: Iterable[Trigger]) -> None:
    """Add ``triggers`` to ``schema``'s ledger, making the ledger first if it is missing."""
    ledger = qualified(connection, schema, LEDGER)
    connection.exec_driver_sql(
        f"CREATE TABLE IF NOT EXISTS {ledger} (name VARCHAR(64) PRIMARY KEY, table_name VARCHAR(64) NOT NULL, "
        "timing VARCHAR(6) NOT NULL, event VARCHAR(6) NOT NULL, action_order INTEGER NOT NULL, "
        "sql_mode TEXT NOT NULL, body LONGTEXT NOT NULL) CHARACTER SET utf8mb4"
    )
    rows = [
        {"name": t.name, "table": t.table, "timing": t.timing, "event": t.event, "order": t.order,
         "mode": t.sql_mode, "body": t.body}
        for t in triggers
    ]
    if rows:
        connection.execute(text(
            f"INSERT IGNORE INTO {ledger} VALUES (:name, :table, :timing, :event, :order, :mode, :body)"
        ), rows)


def errno(error: DBAPIError) -> int | None:
    """MySQL's error number of ``error`` (PyMySQL's first argument), if it has one."""
    args = getattr(error.orig, "args", ())
    return args[0] if args else None


def kept_triggers(connection: Connection, schema: str) -> list[Trigger]:
    """The triggers in ``schema``'s ledger; none if it has no ledger."""
    try:
        rows = connection.execute(text(
            "SELECT name, table_name, timing, event, action_order, sql_mode, body "
            f"FROM {qualified(connection, schema, LEDGER)}"
        )).all()
    except DBAPIError as error:
        if errno(error) != ER_NO_SUCH_TABLE:
            raise
        return []
    return [Trigger(*row) for row in rows]


def close_ledger(connection: Connection, schema: str) -> None:
    """Drop ``schema``'s ledger, once its triggers exist again."""
    connection.exec_driver_sql(f"DROP TABLE IF EXISTS {qualified(connection, schema, LEDGER)}")
