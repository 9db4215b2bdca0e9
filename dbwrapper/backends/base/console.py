"""The SQL console's part of a backend: a session as the database's own login, with the
console's limits, each statement's capped result, and cancelling from another session.

The session is the database's own login's, opened only for the run and closed
after it: whatever the text does, it does with that login's rights, inside the
database the server lets that login open. Limits are the server's own (a
statement timeout it enforces), backed by the client's deadline: a trainee who
switches the server's timeout off in their own session still has their
statement cancelled when the deadline passes, from a second session of the
same login.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from dbwrapper.backends.base.types import Login
from dbwrapper.console.results import Result, as_text
from dbwrapper.console.statements import Lexicon, Statement, position
from dbwrapper.db import Deadlines, long_deadline, missed_deadline, one_off_engine
from dbwrapper.errors import DbWrapperError

if TYPE_CHECKING:
    from dbwrapper.backends.base.backend import Backend

#: Seconds the client waits past the statement timeout before it cancels the statement itself.
GRACE_SECONDS = 2.0
#: Rows fetched at a time while counting those past the cap.
COUNT_BATCH = 10_000


@dataclass(frozen=True)
class Limits:
    """What one console run may take of a shared server."""

    #: The longest a statement may run.
    seconds: float
    #: Rows shown of each result; the rest are counted.
    rows: int
    #: Bytes of text all of a run's results may hold.
    bytes: int


@dataclass
class Budget:
    """The bytes of text left to a run's results."""

    bytes: int


@dataclass
class ConsoleSession:
    """A connection as the database's own login, its driver connection, and the server's id of
    its session."""

    connection: Connection
    dbapi: Any
    id: int


class BaseConsole(ABC):
    """Runs the console's statements on one server; each engine fetches and cancels its own way."""

    lexicon: Lexicon

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    @contextmanager
    def session(self, name: str, login: Login, limits: Limits) -> Iterator[ConsoleSession]:
        """A session in database ``name`` as ``login`` with ``limits``, closed afterwards.

        Its statements have the long deadline, the statement timeout plus
        :data:`GRACE_SECONDS`; connecting has the server's short one.
        """
        deadlines = Deadlines(short=self.backend.deadlines.short, long=limits.seconds + GRACE_SECONDS)
        engine = one_off_engine(self.backend.database_url(name, login), deadlines)
        # The password is given back to the login only when the server refuses it (its owner
        # changed it in a session of theirs): setting it before every run would cost each a
        # super-user statement and a password hash on the server, most of a SELECT 1's time.
        for renewed in (False, True):
            entered = False
            try:
                with self.backend.connected(engine) as connection, long_deadline():
                    entered = True
                    dbapi = connection.connection.dbapi_connection
                    yield ConsoleSession(connection, dbapi, self.begin(dbapi, limits))
                return
            except DbWrapperError as error:
                cause = getattr(error.__cause__, "orig", None)
                if entered or renewed or cause is None or not self.refused_password(cause):
                    raise
            self.backend.logins.renew_password(login)

    def run(self, session: ConsoleSession, statement: Statement, whole: str, limits: Limits, budget: Budget,
            login: Login, name: str) -> Result:
        """Run ``statement`` (of the console's text ``whole``); what it gave, or the server's error.

        A statement that outlives the deadline is cancelled from a second
        session of ``login``; its session is then gone, and the result says so.
        """
        result = Result(statement.text, statement.line)
        started = time.monotonic()
        try:
            self.execute(session.dbapi, statement, limits, budget, result)
        except self.driver_errors as error:
            result.columns, result.rows = [], []
            if missed_deadline(error) is not None:
                session.connection.invalidate()  # a late answer may still come: never reuse it
                with suppress(DbWrapperError):  # a server that hung cancels nothing; the run says why it ended
                    self.cancel(name, login, session.id)
                result.error = (f"The statement ran longer than {limits.seconds:g} s and was cancelled; "
                                "the rest of the text was not run.")
            else:
                result.error = self.message(error)
                if (offset := self.error_offset(error, statement)) is not None:
                    result.error_line, result.error_column = position(whole, statement.start + offset)
        result.seconds = time.monotonic() - started
        return result

    def cancel(self, name: str, login: Login, session_id: int) -> bool:
        """Ask the server to stop what session ``session_id`` of ``login`` is running, from a
        session of that login (which may stop only its own); whether a statement was stopped.
        A server that cannot be reached is a 503 that names it, not "nothing was running"."""
        engine = one_off_engine(self.backend.database_url(name, login), self.backend.deadlines)
        with self.backend.connected(engine) as connection:
            try:
                answer = connection.execute(text(self.cancel_sql), {"id": session_id})
            except DBAPIError as error:
                # The session ended after the registry named it (its run finished): its id is
                # no session's now, or another login's, and there is nothing of ours to stop.
                if isinstance(error.orig, Exception) and self.not_ours(error.orig):
                    return False
                raise
            return bool(answer.scalar()) if answer.returns_rows else True  # KILL QUERY answers no rows

    @staticmethod
    def keep(result: Result, rows: Sequence[Sequence[object]], limits: Limits, budget: Budget) -> int:
        """Put ``rows`` (as text) into ``result`` while the caps allow; how many were left out."""
        for index, row in enumerate(rows):
            if len(result.rows) >= limits.rows:
                result.cut = f"the console shows {limits.rows:,} rows"
                return len(rows) - index
            texts = [as_text(value) for value in row]
            size = sum(len(value.encode()) for value in texts if value is not None)
            if size > budget.bytes:
                result.cut = f"a run's results hold at most {limits.bytes:,} bytes"
                budget.bytes = 0
                return len(rows) - index
            budget.bytes -= size
            result.rows.append(texts)
        return 0

    @staticmethod
    def count(fetch: Callable[[int], Sequence[object]]) -> int:
        """How many rows ``fetch`` (a cursor's ``fetchmany``) still gives."""
        total = 0
        while batch := fetch(COUNT_BATCH):
            total += len(batch)
        return total

    # -- what each engine implements ------------------------------------------------

    #: The driver's error classes a statement may raise.
    driver_errors: tuple[type[Exception], ...]
    #: Cancels session ``:id``'s statement (answering whether it did, where the engine says).
    cancel_sql: str

    @abstractmethod
    def begin(self, dbapi: Any, limits: Limits) -> int:
        """Give the session the console's limits; its id on the server."""

    @abstractmethod
    def execute(self, dbapi: Any, statement: Statement, limits: Limits, budget: Budget, result: Result) -> None:
        """Run ``statement``, filling ``result`` with its capped rows or its status; the driver's error
        if it failed."""

    @abstractmethod
    def in_transaction(self, dbapi: Any) -> bool:
        """Whether the session is open and inside a transaction the text began and did not end."""

    @abstractmethod
    def not_ours(self, error: Exception) -> bool:
        """Whether a cancel failed because the session is no longer one of the login's own."""

    @abstractmethod
    def refused_password(self, error: Exception) -> bool:
        """Whether connecting failed because the server refused the login's password."""

    @abstractmethod
    def message(self, error: Exception) -> str:
        """The server's error message, as a person reads it."""

    @abstractmethod
    def error_offset(self, error: Exception, statement: Statement) -> int | None:
        """Where in ``statement`` the server's error points (an offset from 0), if it says."""
