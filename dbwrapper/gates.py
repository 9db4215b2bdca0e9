"""How many requests may be at work or waiting on one database server, and a pause once it missed a deadline.

A hung server holds every call that reaches it for a whole deadline (see
:mod:`dbwrapper.db`). Each server has a :class:`Gate` that keeps that to its
own users:

* a bound: at most ``requests_per_server`` requests at work or waiting on the
  server at once; past it, a 503 at once. CherryPy's thread pool is larger
  (``server.thread_pool`` in app.conf), so a hung server never holds every
  thread: the login page, static files and the other server's pages go on;
* a pause: once a call to the server missed its deadline, the requests of the
  next :data:`PAUSE_SECONDS` get a 503 at once instead of waiting a deadline
  each. After it, requests try the server again: the service recovers on its
  own as soon as the server answers, and a server still hung costs at most
  the bound's requests another deadline before the next pause.

A server is one gate, whichever engines reach it: the registry's control
database on the PostgreSQL backend's server waits behind that backend's gate.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import URL

from dbwrapper.config import REQUESTS_PER_SERVER
from dbwrapper.errors import BackendUnavailable

#: How long requests get a 503 at once after their server missed a deadline.
PAUSE_SECONDS = 5.0


class Gate:
    """One database server's bound on waiting requests, and its pause after a missed deadline."""

    def __init__(self, server: str, limit: int) -> None:
        #: The server as messages name it: ``PostgreSQL server (postgres backend, postgres@db:5432)``.
        self.server = server
        self.limit = limit
        self._lock = threading.Lock()
        self._inside = 0
        #: Whether this thread is inside already: a call made within a call takes no second place.
        self._here = threading.local()
        #: Until when the server is paused, and the deadline it missed.
        self._paused_until = float("-inf")
        self._missed = 0.0

    @contextmanager
    def entered(self) -> Iterator[None]:
        """The block may work on the server; a 503 at once past the bound or during a pause."""
        if getattr(self._here, "inside", False):
            yield
            return
        self._enter()
        self._here.inside = True
        try:
            yield
        finally:
            self._here.inside = False
            with self._lock:
                self._inside -= 1

    def _enter(self) -> None:
        with self._lock:
            if time.monotonic() < self._paused_until:
                raise self._hung()
            if self._inside >= self.limit:
                raise BackendUnavailable(
                    f"{self.limit} requests are already waiting for the {self.server}; try again in a moment."
                )
            self._inside += 1

    def missed(self, seconds: float) -> BackendUnavailable:
        """A call missed its deadline of ``seconds``: the pause begins. The 503 to raise for it."""
        with self._lock:
            self._paused_until = time.monotonic() + PAUSE_SECONDS
            self._missed = seconds
            return self._hung()

    def _hung(self) -> BackendUnavailable:
        return BackendUnavailable(
            f"The {self.server} did not answer within {self._missed:g} s: check that it is running and "
            "not overloaded. dbwrapper asks it again in a few seconds, and uses it as soon as it answers."
        )


class Gates:
    """One :class:`Gate` per server, whichever engines reach it."""

    def __init__(self, limit: int = REQUESTS_PER_SERVER) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._gates: dict[tuple[str, ...], Gate] = {}

    def gate(self, url: URL, server: str) -> Gate:
        """The gate of the server ``url`` reaches; named ``server`` if this is the first to ask."""
        with self._lock:
            return self._gates.setdefault(address(url), Gate(server, self.limit))


def address(url: URL) -> tuple[str, ...]:
    """Where ``url`` connects, whatever its database, login or driver: a host and port, a socket, a file."""
    if url.get_backend_name() == "sqlite":
        return ("sqlite", url.database or "")
    # A PostgreSQL socket directory (the embedded server's), a MySQL socket.
    socket = url.query.get("host") or url.query.get("unix_socket")
    return (url.get_backend_name(), str(url.host or socket or "localhost"), str(url.port or ""))
