"""PostgreSQL's console: a result is read through a cursor on the server, so that a huge one
costs the service the rows shown, not all of them, and the rest are counted where they are."""

from __future__ import annotations

import re
from typing import Any

import psycopg2
import psycopg2.errorcodes
import psycopg2.extensions

from dbwrapper.backends.base.console import BaseConsole, Budget, Limits
from dbwrapper.console.results import Result
from dbwrapper.console.statements import POSTGRES, Statement, first_word

#: Statements a cursor can be declared for: they return rows and change nothing by themselves.
CURSOR_STATEMENTS = frozenset({"SELECT", "VALUES", "TABLE"})
#: ``SELECT ... INTO new_table`` makes a table; no cursor can be declared for it.
_SELECT_INTO = re.compile(r"\binto\b", re.IGNORECASE)
#: The console's own cursor, in the trainee's own session.
CURSOR = '"_dbw_console"'


class PostgreSQLConsole(BaseConsole):
    lexicon = POSTGRES
    driver_errors = (psycopg2.Error,)
    cancel_sql = "SELECT pg_cancel_backend(:id)"

    def begin(self, dbapi: Any, limits: Limits) -> int:
        dbapi.autocommit = True
        with dbapi.cursor() as cursor:
            cursor.execute(
                "SELECT pg_backend_pid(), set_config('statement_timeout', %s, false)",
                (f"{limits.seconds * 1000:.0f}",),
            )
            return int(cursor.fetchone()[0])

    def execute(self, dbapi: Any, statement: Statement, limits: Limits, budget: Budget, result: Result) -> None:
        with dbapi.cursor() as cursor:
            if self._declared(statement):
                self._through_cursor(dbapi, cursor, statement, limits, budget, result)
                return
            cursor.execute(statement.text)
            result.status = cursor.statusmessage or ""
            if cursor.description is not None:
                result.columns = [column.name for column in cursor.description]
                result.more_rows = self.keep(result, cursor.fetchmany(limits.rows + 1), limits, budget)
                result.more_rows += max(0, cursor.rowcount - len(result.rows) - result.more_rows)

    def _through_cursor(
        self, dbapi: Any, cursor: Any, statement: Statement, limits: Limits, budget: Budget, result: Result,
    ) -> None:
        """``DECLARE``, ``FETCH`` the rows shown, ``MOVE`` past any more to count them, ``CLOSE``:
        in the text's own transaction if it began one, else in one of the console's.

        The statements go together in one query string (the simple query protocol runs them
        in order and answers with the last one's result): a small result costs two round
        trips, not six.
        """
        ours = dbapi.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_IDLE
        begin, end = ("BEGIN; ", "; COMMIT") if ours else ("", "")
        try:
            # The statement is the trainee's own SQL, run as the database's own login, as the console
            # exists to: nothing here gives it more rights. The rest is constant, and a whole number.
            cursor.execute(f"{begin}DECLARE {CURSOR} NO SCROLL CURSOR FOR {statement.text}\n;"
                           f" FETCH FORWARD {limits.rows + 1:d} FROM {CURSOR}")
            result.columns = [column.name for column in cursor.description]
            result.more_rows = self.keep(result, cursor.fetchall(), limits, budget)
            if result.more_rows:
                cursor.execute(f"MOVE FORWARD ALL FROM {CURSOR}")
                result.more_rows += cursor.rowcount
            cursor.execute(f"CLOSE {CURSOR}{end}")
            result.status = f"SELECT {len(result.rows) + result.more_rows}"
        except psycopg2.Error:
            if ours and not dbapi.closed:
                with dbapi.cursor() as rollback:  # another cursor: the error's keeps the query it sent
                    rollback.execute("ROLLBACK")
            raise

    def in_transaction(self, dbapi: Any) -> bool:
        return not dbapi.closed and dbapi.info.transaction_status != psycopg2.extensions.TRANSACTION_STATUS_IDLE

    def not_ours(self, error: Exception) -> bool:
        # A backend id no session has is only a warning (and false); one of another role's
        # is refused with insufficient_privilege.
        return getattr(error, "pgcode", None) == psycopg2.errorcodes.INSUFFICIENT_PRIVILEGE

    def refused_password(self, error: Exception) -> bool:
        # libpq reports a failed connection with no SQLSTATE; its message says why.
        return "password authentication failed" in str(error)

    def message(self, error: Exception) -> str:
        diag = getattr(error, "diag", None)
        primary = getattr(diag, "message_primary", None)
        if not primary:
            return str(error).strip()
        detail = " ".join(filter(None, [getattr(diag, "message_detail", None), getattr(diag, "message_hint", None)]))
        return f"{primary}. {detail}".strip() if detail else primary

    def error_offset(self, error: Exception, statement: Statement) -> int | None:
        where = getattr(getattr(error, "diag", None), "statement_position", None)
        sent = getattr(getattr(error, "cursor", None), "query", None)
        if not where or not sent:
            return None
        # The position counts characters of what was sent: the statement, maybe inside a DECLARE.
        offset = int(where) - 1 - sent.decode(errors="replace").find(statement.text)
        return offset if 0 <= offset <= len(statement.text) else None

    def _declared(self, statement: Statement) -> bool:
        """Whether ``statement`` is read through a cursor of the console's."""
        word = first_word(statement.text, self.lexicon)
        return word in CURSOR_STATEMENTS and not _SELECT_INTO.search(statement.text)
