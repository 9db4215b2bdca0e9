"""The registry lock: whether any other dbwrapper process is at work on a registry.

Work in progress is recorded in the registry before it is done (a database
not yet ready, a snapshot ``taking`` or ``reverting``, a course copy not yet
ready, an archive's ``.partial`` file), so that what a crash leaves can be
settled (:mod:`dbwrapper.reconcile`). Settling it is destroying it, which is
right only if nobody is still at work on it. This lock says when:

* every dbwrapper process that works on a registry (the service, and every
  command) holds the lock *shared* for its whole life;
* reconciling needs it *exclusively*, which a process gets only while no other
  process holds it at all: then every unfinished record was left by a crash.

A PostgreSQL registry is locked with a session-level advisory lock, held on a
connection of its own for the life of the process (outside the registry's pool,
whose connections come and go); PostgreSQL releases it when that session ends,
however the process ends. Other registries (SQLite, MySQL) are locked with a
lock file (``flock``): beside a SQLite file, and in the service's data
directory otherwise; a lock file only keeps out processes on the same machine
(and, for the data directory, of the same user).

A lock whose session ends while its process lives (the registry restarted) is
lost: :meth:`RegistryLock.keep`, run by a periodic job, notices and takes it
shared again.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
import time
from abc import ABC, abstractmethod
from contextlib import suppress
from functools import partial
from pathlib import Path

from sqlalchemy import Connection, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from dbwrapper.db import Deadlines, create_engine
from dbwrapper.embedded import service_data_dir
from dbwrapper.errors import BackendUnavailable, RegistryInUse
from dbwrapper.joblog import log as job_log

#: How often a held lock is checked, and taken again if it was lost.
LOCK_CHECK_SECONDS = 5.0
#: How long a starting process waits for another's exclusive use (a reconcile) to end.
LOCK_WAIT_SECONDS = 60.0
#: How often it asks again meanwhile.
LOCK_POLL_SECONDS = 0.2
#: How long the lock's session waits for an unanswered packet before the session fails.
SESSION_TIMEOUT_MS = 10_000
#: The advisory-lock functions the registry lock calls, as whole statements: constants, the
#: key bound as a value.
ADVISORY_CALLS = {
    function: text(f"SELECT pg_catalog.{function}(:key)")
    for function in ("pg_try_advisory_lock", "pg_try_advisory_lock_shared", "pg_advisory_unlock")
}
#: The advisory lock's key in the registry's database: b"dbwrappr" as a number.
ADVISORY_KEY = int.from_bytes(b"dbwrappr", "big")

#: This lock's lines in the log.
log = partial(job_log, "LOCK")


class RegistryLock(ABC):
    """One process's hold on its registry's lock: shared, exclusive, or none yet."""

    def __init__(self, where: str) -> None:
        #: What is locked, for messages: the registry's address or the lock file.
        self.where = where
        #: Whether this process has the registry to itself (only while it reconciles).
        self.exclusive = False
        self._held = False  # by the current session or open file
        self._wanted = False  # from share() to release(): what keep() keeps
        # keep() runs on the periodic job's thread, the rest on the process's own.
        self._guard = threading.Lock()

    def take_alone(self) -> bool:
        """Take the lock exclusively if no other process holds it at all; whether it did."""
        with self._guard:
            self._held = self.exclusive = self._try(exclusive=True)
            return self.exclusive

    def share(self, wait: float = LOCK_WAIT_SECONDS) -> None:
        """Hold the lock shared (no longer exclusively, if it was), waiting while another
        process holds it exclusively; :class:`RegistryInUse` if that lasts ``wait`` seconds."""
        deadline = time.monotonic() + wait
        with self._guard:
            while not self._try(exclusive=False):
                if time.monotonic() > deadline:
                    raise RegistryInUse(
                        f"Another dbwrapper process (dbwrapper reconcile, or a service starting) has "
                        f"had the registry ({self.where}) to itself for {wait:.0f} s; try again once "
                        "it is done."
                    )
                time.sleep(LOCK_POLL_SECONDS)
            self._held = self._wanted = True
            self.exclusive = False

    def keep(self) -> None:
        """Take the lock shared again if it was lost (its session ended); for a periodic job,
        so it never raises: a failure is logged and the next run tries again."""
        with self._guard:
            if not self._wanted or (self._held and self._still_held()):
                return
            if self._held:
                log(f"The registry lock ({self.where}) was lost; taking it again.")
            self._close()  # the attempt opens a new session or file
            try:
                self._held = self._try(exclusive=False)
            except Exception as error:  # the registry is still down: the next run tries again
                self._held = False
                log(f"The registry lock ({self.where}) could not be taken again yet: {error}")
                return
            if self._held:
                log(f"The registry lock ({self.where}) is held again.")
            else:
                log(f"The registry lock ({self.where}) could not be taken again: another dbwrapper "
                    "process has it exclusively (dbwrapper reconcile?) while this one is at work.")

    def release(self) -> None:
        """Let go of the lock; other processes may then reconcile."""
        with self._guard:
            self._held = self._wanted = self.exclusive = False
            self._close()

    def forget(self) -> None:
        """Let go of the lock for good, removing what names it (a lock file) if this holder
        held it: for a lock nobody takes again, a process's own once that process has ended
        (:func:`~dbwrapper.registry.joblock.process_lock`)."""
        with self._guard:
            if self._held:
                self._remove_name()
        self.let_go()  # at once: a closed session's locks are freed only once its server process has gone
        self.release()

    def let_go(self) -> None:
        """Give up what :meth:`take_alone` took, at once, keeping the session for the next
        attempt (a job lock's, :mod:`dbwrapper.registry.joblock`). Never raises: a session
        that fails is dropped, which frees the lock too."""
        with self._guard:
            try:
                if self._held:
                    self._unlock()
            except BackendUnavailable:
                self._close()
            finally:
                self._held = self.exclusive = False

    @abstractmethod
    def _try(self, *, exclusive: bool) -> bool:
        """Take the lock in this mode without waiting, giving up an exclusive hold for a
        shared one; whether it was taken."""

    @abstractmethod
    def _still_held(self) -> bool:
        """Whether the session or open file that took the lock still holds it."""

    @abstractmethod
    def _close(self) -> None:
        """Drop what holds the lock, which releases it."""

    @abstractmethod
    def _unlock(self) -> None:
        """Release the lock at once."""

    def _remove_name(self) -> None:
        """Remove what names the lock, while holding it; an advisory lock's key is only a number."""


class AdvisoryLock(RegistryLock):
    """A PostgreSQL registry's lock: advisory lock ``key`` (the registry's own,
    :data:`ADVISORY_KEY`, unless another is given), held by one session."""

    def __init__(self, url: URL, deadlines: Deadlines, key: int = ADVISORY_KEY) -> None:
        super().__init__(url.render_as_string(hide_password=True))
        self._key = key
        # Its own engine without a pool: the lock lives exactly as long as this one session.
        # Every call has a deadline, and the session's keepalives find a server gone while
        # it idles, so that the check never hangs (nor the process's stop, which waits for it).
        self._engine = create_engine(
            url, deadlines, autocommit=True, pooled=False,
            connect_args={"tcp_user_timeout": SESSION_TIMEOUT_MS,
                          "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3},
        )
        self._connection: Connection | None = None

    def _ask(self, function: str) -> bool:
        """Call one of :data:`ADVISORY_CALLS` on the lock's session, with its key bound."""
        try:
            if self._connection is None:
                self._connection = self._engine.connect()
            found = self._connection.execute(ADVISORY_CALLS[function], {"key": self._key})
            return bool(found.scalar_one())
        except DBAPIError as error:
            raise BackendUnavailable(
                f"The control database ({self.where}) cannot be locked: "
                f"{str(error.orig).strip().splitlines()[0]}"
            ) from error

    def _try(self, *, exclusive: bool) -> bool:
        if exclusive:
            return self._ask("pg_try_advisory_lock")
        # A session's own locks never conflict: shared is granted beside its exclusive hold,
        # which is let go only then, so that the lock is never free in between.
        taken = self._ask("pg_try_advisory_lock_shared")
        if taken and self.exclusive:
            self._ask("pg_advisory_unlock")
        return taken

    def _unlock(self) -> None:
        # A closed session's locks are freed only once its server process has gone; this is now.
        self._ask("pg_advisory_unlock")

    def _still_held(self) -> bool:
        if self._connection is None:
            return False
        try:
            self._connection.execute(text("SELECT 1"))
        except DBAPIError:
            return False  # the session is gone, and its lock with it
        return True

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with suppress(DBAPIError):  # a dead session holds nothing any more
                connection.close()


class FileLock(RegistryLock):
    """Any other registry's lock: ``flock`` on a lock file, on this machine only."""

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.path = path
        self._fd: int | None = None

    def _try(self, *, exclusive: bool) -> bool:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        # From exclusive to shared is not atomic with flock: another process may take the
        # lock in between, and this one then waits in share() before doing any work.
        try:
            fcntl.flock(self._fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _still_held(self) -> bool:
        # A lock on a file that was removed or replaced keeps nobody out any more.
        if self._fd is None:
            return False
        try:
            named = os.stat(self.path)
        except FileNotFoundError:
            return False
        held = os.fstat(self._fd)
        return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)

    def _close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def _unlock(self) -> None:
        # Closing is unlocking; the next attempt opens the file by its name again.
        self._close()

    def _remove_name(self) -> None:
        # Removed before it is closed: whoever opened it meanwhile takes the lock on the
        # removed file once this one lets go, and knows its holder ended all the same.
        self.path.unlink(missing_ok=True)


def registry_lock(url: URL, deadlines: Deadlines) -> RegistryLock:
    """The lock of the registry at ``url``, whose calls keep ``deadlines``."""
    if url.get_backend_name() == "postgresql":
        return AdvisoryLock(url, deadlines)
    return FileLock(lock_file(url))


def lock_file(url: URL) -> Path:
    """The lock file of a registry that is not on PostgreSQL: beside a SQLite file, else in
    the service's data directory."""
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return Path(f"{url.database}.lock")
    # Named by where the registry is, so that two registries never share a lock file.
    place = url.render_as_string(hide_password=True)
    digest = hashlib.sha256(place.encode()).hexdigest()[:16]
    return service_data_dir() / "locks" / f"registry-{digest}.lock"
