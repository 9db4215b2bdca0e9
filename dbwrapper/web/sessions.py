"""CherryPy sessions kept in the registry, so that any number of ``dbwrapper serve`` processes on
one registry know every browser's login: a cookie from one is honoured by all, and a logout on
one ends the session on all.

The values are stored as JSON, never pickled (as CherryPy's ``FileSession`` does): a row in the
registry must not be able to run code in the service. They are a user's name, a CSRF token, and
what one page hands the next (a message, a secret shown once, a console run's results).

CherryPy locks a session for the length of a request, so that two requests of one browser
do not overwrite each other's changes. The lock here is this process's own, like
``RamSession``'s: a lock across processes would hold a registry connection for every request.
A request that changed nothing writes back only the expiry, never the values it read, and a
save never brings back a session deleted meanwhile (a logout elsewhere).

A request that works long on a database must not hold the browser's other requests meanwhile:
a Cancel would wait for what it cancels. The JSON API only reads who is asking, and so takes
no lock at all (``tools.sessions.locking`` is ``explicit`` under ``/api``); a page that works
long and then writes to the session lets go of the lock for the work (:func:`unlocked`).
"""

from __future__ import annotations

import json
import re
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import cherrypy
from cherrypy.lib.sessions import Session

from dbwrapper.errors import DbWrapperError
from dbwrapper.registry.sessions import SessionRecords
from dbwrapper.servers import Servers

#: What CherryPy's ``generate_id`` makes: an id of any other form was never a session.
SESSION_ID = re.compile(r"[0-9a-f]{40}")
#: A request that changes nothing in its session writes it back (to push its expiry) only
#: if its expiry moved by this much: otherwise every page would be a write to the registry.
TOUCH_SECONDS = 60


class RegistrySession(Session):
    """A session whose values live in the registry (``tools.sessions.servers`` names it)."""

    #: The servers whose registry holds the sessions: set from the app's config.
    servers: Servers
    # This process's locks, one per session id, dropped once no request holds them.
    _locks: weakref.WeakValueDictionary[str, threading.RLock] = weakref.WeakValueDictionary()
    _locks_guard = threading.Lock()

    def __init__(self, id: str | None = None, **kwargs: Any) -> None:
        self._made: str | None = None  # an id generated here, not yet in the registry
        self._stored: tuple[str, datetime] | None = None  # what _load read
        self._lock: threading.RLock | None = None
        super().__init__(id, **kwargs)

    @property
    def _records(self) -> SessionRecords:
        return self.servers.registry

    def now(self) -> datetime:
        return datetime.now(UTC)

    def generate_id(self) -> str:
        self._made = super().generate_id()
        return self._made

    def _exists(self) -> bool:
        if not SESSION_ID.fullmatch(self.id or ""):
            return False
        with registry_errors_as_http():
            return self._records.web_session(self.id, self.now()) is not None

    def _load(self) -> tuple[dict[str, Any], datetime] | None:
        with registry_errors_as_http():
            self._stored = self._records.web_session(self.id, self.now())
        if self._stored is None:
            return None
        data, expires_at = self._stored
        return json.loads(data), expires_at

    def _save(self, expiration_time: datetime) -> None:
        data = json.dumps(self._data, sort_keys=True)
        new = self.id == self._made
        if not new and self._stored is not None and data == self._stored[0]:
            if expiration_time - self._stored[1] >= timedelta(seconds=TOUCH_SECONDS):
                with registry_errors_as_http():
                    self._records.touch_web_session(self.id, expiration_time)
                self._stored = (data, expiration_time)
            return
        with registry_errors_as_http():
            self._records.save_web_session(self.id, data, expiration_time, new=new)
        self._made, self._stored = None, (data, expiration_time)

    def _delete(self) -> None:
        with registry_errors_as_http():
            self._records.delete_web_session(self.id)

    def acquire_lock(self) -> None:
        with self._locks_guard:
            lock = self._locks.get(self.id)
            if lock is None:
                lock = self._locks[self.id] = threading.RLock()
        lock.acquire()
        self._lock, self.locked = lock, True

    def release_lock(self) -> None:
        lock, self._lock, self.locked = self._lock, None, False
        if lock is not None:
            lock.release()

    def clean_up(self) -> None:
        """Forget expired sessions. The service leaves this to its own periodic job (which runs
        in one process at a time), with CherryPy's ``tools.sessions.clean_freq`` at 0."""
        self._records.prune_web_sessions(self.now())


@contextmanager
def unlocked() -> Iterator[None]:
    """The block runs without this request's session lock, so that the same browser's other
    requests are served meanwhile; then the lock is taken again and the session read anew,
    so that what this request writes afterwards keeps what the others wrote."""
    session = getattr(cherrypy.serving, "session", None)
    if session is None or not session.locked:
        yield
        return
    session.release_lock()
    try:
        yield
    finally:
        session.acquire_lock()
        session.load()


@contextmanager
def registry_errors_as_http() -> Iterator[None]:
    """The registry's failures (down, hung) as the 503 that names it, from inside CherryPy's
    session tool, which would make any other exception a 500."""
    try:
        yield
    except DbWrapperError as error:
        raise cherrypy.HTTPError(error.http_status, str(error)) from None
