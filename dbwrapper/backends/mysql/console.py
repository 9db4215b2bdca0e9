"""MySQL's console: an unbuffered cursor streams a result, so that the service holds the rows
shown, not all of them, and counts the rest as they pass."""

from __future__ import annotations

import re
from typing import Any

import pymysql
import pymysql.cursors
from pymysql.constants import SERVER_STATUS

from dbwrapper.backends.base.console import GRACE_SECONDS, BaseConsole, Budget, Limits
from dbwrapper.console.results import Result
from dbwrapper.console.statements import MYSQL, Statement

#: "Access denied for user": the password was refused.
ER_ACCESS_DENIED = 1045
#: "Unknown thread id", "You are not owner of thread": a KILL of a session that has ended.
ER_NO_SUCH_THREAD, ER_KILL_DENIED = 1094, 1095
#: Where MySQL's syntax errors point: ``... near 'FORM t' at line 2``.
_AT_LINE = re.compile(r"at line (\d+)\s*$")


class MySQLConsole(BaseConsole):
    lexicon = MYSQL
    driver_errors = (pymysql.err.MySQLError,)
    cancel_sql = "KILL QUERY :id"

    def begin(self, dbapi: Any, limits: Limits) -> int:
        dbapi.autocommit(True)
        # PyMySQL's socket waits for each statement the timeout and a grace, then gives up
        # (SQLAlchemy's events, which set it otherwise, do not see the driver's own cursors).
        dbapi._read_timeout = dbapi._write_timeout = limits.seconds + GRACE_SECONDS
        with dbapi.cursor() as cursor:
            if getattr(self.backend.dialect, "is_mariadb", False):
                cursor.execute("SET SESSION max_statement_time = %s", (limits.seconds,))
            else:  # MySQL's limit is in milliseconds, and for SELECT only
                cursor.execute("SET SESSION max_execution_time = %s", (int(limits.seconds * 1000),))
            cursor.execute("SELECT CONNECTION_ID()")
            return int(cursor.fetchone()[0])

    def execute(self, dbapi: Any, statement: Statement, limits: Limits, budget: Budget, result: Result) -> None:
        with dbapi.cursor(pymysql.cursors.SSCursor) as cursor:
            cursor.execute(statement.text)
            if cursor.description is None:
                result.status = f"{cursor.rowcount:,} row{'s' if cursor.rowcount != 1 else ''} affected"
            else:
                result.columns = [column[0] for column in cursor.description]
                result.more_rows = self.keep(result, cursor.fetchmany(limits.rows + 1), limits, budget)
                result.more_rows += self.count(cursor.fetchmany)
            while cursor.nextset():  # a CALL's further results, read to the end
                self.count(cursor.fetchmany)

    def in_transaction(self, dbapi: Any) -> bool:
        return dbapi.open and bool(dbapi.server_status & SERVER_STATUS.SERVER_STATUS_IN_TRANS)

    def not_ours(self, error: Exception) -> bool:
        return _code_and_text(error)[0] in (ER_NO_SUCH_THREAD, ER_KILL_DENIED)

    def refused_password(self, error: Exception) -> bool:
        return _code_and_text(error)[0] == ER_ACCESS_DENIED

    def message(self, error: Exception) -> str:
        code, said = _code_and_text(error)
        return f"{said} (error {code})" if code else said

    def error_offset(self, error: Exception, statement: Statement) -> int | None:
        found = _AT_LINE.search(_code_and_text(error)[1])
        if not found:
            return None
        lines = statement.text.split("\n")
        line = int(found[1])
        return sum(len(before) + 1 for before in lines[:line - 1]) if line <= len(lines) else None


def _code_and_text(error: Exception) -> tuple[object, str]:
    """The server's error number and message, from PyMySQL's ``(code, message)`` arguments."""
    if len(error.args) >= 2:
        return error.args[0], str(error.args[1])
    return None, str(error)
