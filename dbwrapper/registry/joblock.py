"""Job locks: each periodic job runs in one process at a time, however many serve a registry.

Two processes purging the same expired database, or both topping up a course's pool, would
do the work twice or trip over each other. So a run of a job first takes the job's own lock,
without waiting: if another process holds it (its run of the job is at work), this run does
nothing, and the next one tries again. The lock is let go when the run ends, so whichever
process comes next takes the job over, and a process that dies frees it (its session or its
open file goes with it). The PostgreSQL session stays open between runs.

The locks are the registry lock's kinds (:mod:`dbwrapper.registry.lock`), taken exclusively:
on a PostgreSQL registry an advisory lock with a key of the job's own, on a session of its own;
otherwise ``flock`` on a file of the job's own beside the registry's lock file.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from functools import partial

from sqlalchemy.engine import URL

from dbwrapper.db import Deadlines
from dbwrapper.joblog import log as job_log
from dbwrapper.registry.lock import AdvisoryLock, FileLock, RegistryLock, lock_file

#: A job's name, which names its lock file too.
JOB_NAME = re.compile(r"[a-z][a-z0-9-]{0,31}")

#: These locks' lines in the log.
log = partial(job_log, "JOBS")


def job_key(name: str) -> int:
    """The advisory lock key of job ``name``: 64 bits of a hash, as PostgreSQL's signed bigint."""
    digest = hashlib.sha256(f"dbwrapper job {name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def job_lock(url: URL, deadlines: Deadlines, name: str) -> RegistryLock:
    """The lock of job ``name`` on the registry at ``url``, whose calls keep ``deadlines``."""
    if not JOB_NAME.fullmatch(name):
        raise ValueError(f"A job's name is lower-case letters, digits and dashes: not {name!r}.")
    if url.get_backend_name() == "postgresql":
        return AdvisoryLock(url, deadlines, job_key(name))
    registry_file = lock_file(url)
    return FileLock(registry_file.with_name(f"{registry_file.stem}.{name}.lock"))


def new_process_id() -> str:
    """A new id for a process: 24 hex digits, unique, short enough to name its lock."""
    return secrets.token_hex(12)


def process_lock(url: URL, deadlines: Deadlines, process: str) -> RegistryLock:
    """The lock process ``process`` holds from its start to its stop, shared: whoever can
    take it exclusively knows that process has ended (see :mod:`dbwrapper.settle`)."""
    return job_lock(url, deadlines, f"process-{process}")


def process_ended(url: URL, deadlines: Deadlines, process: str) -> bool:
    """Whether process ``process`` has ended: its lock can be taken. Taken, it is forgotten
    at once (its lock file removed): an ended process never comes back."""
    lock = process_lock(url, deadlines, process)
    try:
        return lock.take_alone()
    finally:
        lock.forget()


class ExclusiveJob:
    """A periodic job that runs only while this process holds its job lock.

    For a CherryPy ``Monitor``, which quits on its first exception: this never raises.
    A run that cannot ask for the lock (the registry is down), or that fails, is logged
    and the next run tries again.
    """

    def __init__(self, name: str, job: Callable[[], object], lock: Callable[[], RegistryLock]) -> None:
        self.name = name
        self.job = job
        # The lock is made at the first run: the registry's address is known only once the
        # process has started (an embedded server's port).
        self._make_lock = lock
        self._lock: RegistryLock | None = None

    def __call__(self) -> None:
        """Run the job once, unless another process is running it."""
        try:
            if self._lock is None:
                self._lock = self._make_lock()
            # This run's own: the engine may stop() the job meanwhile, from another thread.
            lock = self._lock
            if not lock.take_alone():
                return
        except Exception:
            log(f"The {self.name} job could not ask for its lock; it tries again next time", failed=True)
            self.stop()  # its session may be broken: the next run opens another
            return
        try:
            self.job()
        except Exception:
            log(f"The {self.name} job failed; it runs again next time", failed=True)
        finally:
            lock.let_go()  # after a stop(), a lock already released: let_go() does nothing then

    def stop(self) -> None:
        """Close the lock's session or file; a later run opens another."""
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()
