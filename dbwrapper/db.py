"""Every SQLAlchemy engine of the process is built here, and every call on one has a deadline.

Like Flask's ``flaskr/db.py``, this is the one place that opens databases: the
backends' admin engines, their engines per database and one-off engines, and
the registry's, all come from :func:`create_engine` (or :func:`one_off_engine`),
and nothing else repeats a connection setting.

A server that accepts connections and never answers must cost a call its
deadline, not a thread for ever. The drivers help differently:

* psycopg2 has no read timeout, and libpq's ``connect_timeout`` covers
  connecting only (and nothing at all in libpq's nonblocking mode). So this
  module installs psycopg2's wait callback
  (``psycopg2.extensions.set_wait_callback``, what psycogreen does for gevent):
  libpq then works nonblocking, and whenever it must wait for the server
  (connecting, a statement, a commit, a ping) psycopg2 calls :func:`wait`,
  which waits at most the deadline and then raises :class:`DeadlineMissed`.
  psycopg2 closes a connection whose callback raised (``green_panic`` in its
  ``green.c``): a reply read half-way cannot be resumed.
* PyMySQL bounds its socket with ``connect_timeout``, ``read_timeout`` and
  ``write_timeout``; they are set to the deadline before every statement.

Either way, a connection that missed its deadline counts as disconnected
(SQLAlchemy's ``handle_error`` event), so its pool discards it rather than
hand it out again with a late answer still on its way.

The servers' own limits come on top. A lock wait ends on the server after half
the short deadline (PostgreSQL's ``lock_timeout``; MySQL's ``lock_wait_timeout``
and ``innodb_lock_wait_timeout``), so that a request waiting for another
session gets the server's own answer ("lock timeout", a 409) before its
deadline makes the server look hung; and no PostgreSQL statement runs longer
than the long deadline (``statement_timeout``), even once its client gave up.

There are two deadlines: the short one for every call, the long one for the
few statements that copy or count data on the server (:func:`long_deadline`).
"""

from __future__ import annotations

import math
import select
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import partial
from typing import Any

import psycopg2
import psycopg2.extensions
import sqlalchemy
from sqlalchemy import Engine, event
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import NullPool

from dbwrapper.config import LONG_DEADLINE_SECONDS, SHORT_DEADLINE_SECONDS
from dbwrapper.errors import InvalidInput

#: Hosts that name this machine: what is sent to them never crosses a network.
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
#: A pooled connection idle for longer than this is pinged before use (see _ping_when_idle).
IDLE_PING_SECONDS = 1.0

#: Whether the calls this thread makes now have the long deadline (see long_deadline).
_long: ContextVar[bool] = ContextVar("dbwrapper_long_deadline", default=False)
#: The deadline of this thread's latest call, in seconds: what a miss says it missed.
_applied: ContextVar[float] = ContextVar("dbwrapper_applied_deadline", default=SHORT_DEADLINE_SECONDS)


@dataclass(frozen=True)
class Deadlines:
    """How long one call to a database server may take before the server counts as hung."""

    #: Every call: connecting, a statement, a commit, a ping.
    short: float = SHORT_DEADLINE_SECONDS
    #: Calls in a :func:`long_deadline` block, and the engines' command-line tools.
    long: float = LONG_DEADLINE_SECONDS

    def now(self) -> float:
        """The deadline of a call this thread makes now."""
        return self.long if _long.get() else self.short

    @property
    def lock_wait(self) -> float:
        """Seconds the server itself waits for another session's lock: half the short deadline,
        so that it answers before the deadline is missed."""
        return self.short / 2


@contextmanager
def _deadline(long: bool) -> Iterator[None]:
    token = _long.set(long)
    try:
        yield
    finally:
        _long.reset(token)


def long_deadline() -> AbstractContextManager[None]:
    """The long deadline for the statements in the block: those that copy or count data on the server.

    The long one is given only to a server that answers now: a connection made
    in the block connects within the short deadline, and a pooled one taken in
    it is pinged first within the short deadline. So a server that hung a moment
    ago costs a copy the short deadline, not the long.
    """
    return _deadline(True)


class DeadlineMissed(psycopg2.OperationalError):
    """A PostgreSQL server did not answer within the deadline (raised by :func:`wait`)."""


def missed_deadline(error: BaseException | None) -> float | None:
    """The deadline in seconds that a driver's ``error`` says its call missed; ``None`` for any other error.

    psycopg2's is :class:`DeadlineMissed`; PyMySQL raises its error while
    handling its socket's ``TimeoutError``.
    """
    if isinstance(error, DeadlineMissed) or isinstance(getattr(error, "__context__", None), TimeoutError):
        return _applied.get()
    return None


def wait(connection: Any) -> None:
    """psycopg2's wait callback: wait for the server as libpq asks, at most the connection's deadline.

    The callback is the whole process's, so connections not made here wait as
    they would without it: for their own ``connect_timeout`` while connecting,
    and as long as it takes afterwards.
    """
    deadlines = getattr(connection, "deadlines", None)
    connecting = connection.status == psycopg2.extensions.STATUS_SETUP
    if deadlines is None:
        seconds = _connect_timeout(connection) if connecting else math.inf
    else:
        seconds = deadlines.short if connecting else deadlines.now()  # the long one is for statements
    _applied.set(seconds)
    give_up = time.monotonic() + seconds
    while (state := connection.poll()) != psycopg2.extensions.POLL_OK:
        if state == psycopg2.extensions.POLL_READ:
            ready = select.POLLIN
        elif state == psycopg2.extensions.POLL_WRITE:
            ready = select.POLLOUT
        else:
            raise psycopg2.OperationalError(f"bad state from poll: {state}")
        # Asked each time: while connecting, libpq may move on to another socket.
        poller = select.poll()
        poller.register(connection.fileno(), ready)
        remaining = give_up - time.monotonic()
        if remaining <= 0 or not poller.poll(None if remaining == math.inf else remaining * 1000):
            raise DeadlineMissed(f"the server did not answer within {seconds:g} s")


def _connect_timeout(connection: Any) -> float:
    """The ``connect_timeout`` of a connection not made here, as blocking libpq applies it (nonblocking
    libpq leaves it to the callback): none if zero or less, and two seconds at least."""
    given = int(psycopg2.extensions.parse_dsn(connection.dsn).get("connect_timeout") or 0)
    return max(given, 2) if given > 0 else math.inf


class _TimedConnection(psycopg2.extensions.connection):
    """A psycopg2 connection that carries its deadlines, for :func:`wait`."""

    def __init__(self, dsn: str, async_: int = 0, *, deadlines: Deadlines) -> None:
        self.deadlines = deadlines  # before connecting, which is waited for too
        super().__init__(dsn, async_)


def _psycopg2_arguments(url: URL, deadlines: Deadlines, given: Mapping[str, Any]) -> dict[str, Any]:
    if psycopg2.extensions.get_wait_callback() is not wait:
        psycopg2.extensions.set_wait_callback(wait)  # one for the whole process, as psycopg2 has
    limits = f"-c lock_timeout={deadlines.lock_wait * 1000:.0f} -c statement_timeout={deadlines.long * 1000:.0f}"
    theirs = given.get("options") or url.query.get("options")  # the caller's settings stay
    return {
        "connection_factory": partial(_TimedConnection, deadlines=deadlines),
        "options": f"{theirs} {limits}" if theirs else limits,
    }


def _pymysql_arguments(url: URL, deadlines: Deadlines, given: Mapping[str, Any]) -> dict[str, Any]:
    lock_wait = max(1, math.ceil(deadlines.lock_wait))  # whole seconds, at least one
    arguments: dict[str, Any] = {
        "connect_timeout": deadlines.short, "read_timeout": deadlines.short, "write_timeout": deadlines.short,
        "init_command": f"SET SESSION lock_wait_timeout = {lock_wait}, innodb_lock_wait_timeout = {lock_wait}",
    }
    # PyMySQL 1.2 tries TLS with every server that offers it, building a new SSL context (the
    # system's CA bundle read again) for each connection: 20 to 250 ms each, here. Over the
    # loopback TLS protects nothing, so a local server without TLS settings of its own gets none.
    asked = any(key.startswith("ssl") for key in (*url.query, *given))
    if not asked and (url.host or "localhost") in LOOPBACK_HOSTS:
        arguments["ssl_disabled"] = True
    return arguments


def _pysqlite_arguments(url: URL, deadlines: Deadlines, given: Mapping[str, Any]) -> dict[str, Any]:
    # A file cannot hang like a server; this is how long SQLite waits for another writer.
    return {"timeout": deadlines.short}


#: The drivers whose every call can be given a deadline, and how.
DRIVERS = {"psycopg2": _psycopg2_arguments, "pymysql": _pymysql_arguments, "pysqlite": _pysqlite_arguments}

#: The driver a URL that names none gets: the one dbwrapper installs. SQLAlchemy would pick
#: psycopg 3 for a bare postgresql://, and for a bare mysql:// mysqlclient, which needs a C toolchain.
DEFAULT_DRIVERS = {"postgresql": "psycopg2", "mysql": "pymysql", "mariadb": "pymysql"}


def without(url: URL, *parts: str) -> URL:
    """``url`` with ``parts`` (``"password"``, ``"database"``) left out.

    :meth:`URL.set` cannot do it: it reads ``None`` as "leave this part as it is".
    """
    cleared: dict[str, Any] = dict.fromkeys(parts)
    return url._replace(**cleared)


def with_driver(url: URL) -> URL:
    """``url``, naming its driver: dbwrapper's (:data:`DEFAULT_DRIVERS`) if it named none."""
    default = DEFAULT_DRIVERS.get(url.drivername)
    return url.set(drivername=f"{url.drivername}+{default}") if default else url


def create_engine(
    url: str | URL, deadlines: Deadlines, *, autocommit: bool = False, pooled: bool = True,
    connect_args: Mapping[str, Any] | None = None,
) -> Engine:
    """An engine for ``url`` whose every call keeps ``deadlines``.

    ``autocommit`` gives its connections AUTOCOMMIT for their life (server-wide
    DDL runs outside transactions); without ``pooled``, each connection is
    opened for its use and closed after it. ``connect_args`` are the driver's
    arguments its sessions start with (a PostgreSQL search_path in ``options``,
    say), beside the deadlines' own.
    """
    url = with_driver(make_url(url))
    driver = url.get_driver_name()
    if driver not in DRIVERS:
        raise InvalidInput(
            f"{url.render_as_string(hide_password=True)} uses the driver {driver}, which dbwrapper cannot "
            f"give a deadline; name one of {', '.join(DRIVERS)} (postgresql+psycopg2://, mysql+pymysql://)."
        )
    given = connect_args or {}
    options: dict[str, Any] = {"connect_args": {**given, **DRIVERS[driver](url, deadlines, given)}}
    if autocommit:
        # In AUTOCOMMIT no transaction is ever left open, so the ROLLBACK the
        # pool sends when a connection comes back would be a wasted round trip.
        options |= {"isolation_level": "AUTOCOMMIT", "pool_reset_on_return": None}
    # The pool never makes a caller wait for a connection, which it would do without
    # a deadline: each server's gate (dbwrapper.gates) bounds how many are at work.
    options |= {"max_overflow": -1} if pooled else {"poolclass": NullPool}
    engine = sqlalchemy.create_engine(url, **options)

    @event.listens_for(engine, "do_connect")
    def short_for_connecting(dialect: Any, record: Any, cargs: Any, cparams: Any) -> None:
        _applied.set(deadlines.short)  # what a connect that misses has missed, whatever the block

    event.listen(engine, "handle_error", _discard_late)
    if driver == "pymysql":
        _keep_pymysql_deadlines(engine, deadlines)
    if pooled:
        _ping_when_idle(engine)
    return engine


def one_off_engine(url: str | URL, deadlines: Deadlines, *, connect_args: Mapping[str, Any] | None = None) -> Engine:
    """An engine for a few calls to any ``url`` (a database as its own login, say), with ``deadlines``.

    Its connections are not pooled but closed after each use, so that no session
    stays open on the database (PostgreSQL clones and renames a database only
    with nobody in it); there is nothing to dispose of. ``connect_args`` as for
    :func:`create_engine`.
    """
    return create_engine(url, deadlines, pooled=False, connect_args=connect_args)


def _discard_late(context: ExceptionContext) -> None:
    """A connection that missed its deadline is a disconnected one: its late answer may still come."""
    if missed_deadline(context.original_exception) is not None:
        context.is_disconnect = True


def _keep_pymysql_deadlines(engine: Engine, deadlines: Deadlines) -> None:
    """Give PyMySQL's socket the deadline of each call: the short one for the ping on checkout,
    the one in effect for each statement (and the commit after it).

    PyMySQL reads these attributes before each read and write of its socket, and
    has no public way to change its timeouts once connected.
    """

    def limit(dbapi_connection: Any, seconds: float) -> None:
        dbapi_connection._read_timeout = dbapi_connection._write_timeout = seconds
        _applied.set(seconds)

    @event.listens_for(engine, "checkout")
    def short_for_the_ping(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        limit(dbapi_connection, deadlines.short)

    @event.listens_for(engine, "before_cursor_execute")
    def in_effect_for_the_statement(
        connection: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        limit(cursor.connection, deadlines.now())


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection before use when it has been idle a while, or is taken for a copy.

    A server that restarted leaves dead connections in the pool; SQLAlchemy's
    ``pool_pre_ping`` finds them by pinging on every checkout, a round trip per
    request. A restart takes longer than a second, so a connection used within
    the last second cannot have been cut by one: like HikariCP's
    ``aliveBypassWindowMs``, skip the ping for those. A failed ping raises
    ``DisconnectionError``, on which the pool opens a fresh connection; but not
    one that missed its deadline, since a hung server would keep a fresh one
    waiting just as long. In a :func:`long_deadline` block every connection but a
    new one is pinged, within the short deadline.
    """

    @event.listens_for(engine, "checkin")
    def remember_last_use(dbapi_connection: Any, record: Any) -> None:
        record.info["last_used"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def ping_if_idle(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        last_used = record.info.get("last_used")
        if last_used is None:
            return  # new: the server has just answered its connect
        if not _long.get() and time.monotonic() - last_used < IDLE_PING_SECONDS:
            return  # used moments ago
        with _deadline(long=False):
            try:
                alive = engine.dialect.do_ping(dbapi_connection)
            except engine.dialect.loaded_dbapi.Error as error:
                if missed_deadline(error) is not None:
                    raise
                raise DisconnectionError(str(error)) from error
        if not alive:
            raise DisconnectionError("the server did not answer a ping")
