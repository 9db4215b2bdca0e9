"""Preparing ready copies of a course before a class: in the terminal, or in the background.

``dbwrapper pool fill`` prepares them in the terminal, with a progress bar;
from a browser the work would outlast the request, so it runs in a thread
here, and the Courses page shows the ready copies grow as it goes. One
preparation at a time per course and engine: asking again while one runs
changes nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from dbwrapper.accounts import Actor
from dbwrapper.backends import Backend
from dbwrapper.copies import log
from dbwrapper.errors import InvalidInput, Refused
from dbwrapper.service import DatabaseService

#: The most copies of a course prepared in one go: a class, not a server's worth of disk.
MAX_PREPARED_COPIES = 200


class Preparations:
    """Preparing ready copies of a course: now (the command line), or in the background."""

    def __init__(self, service: DatabaseService) -> None:
        self.service = service
        self._running: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def prepare(
        self, actor: Actor, db_type: object, course: str, count: object,
        progress: Callable[[int, int], None] = lambda done, total: None,
    ) -> int:
        """Make the pool hold ``count`` ready copies of ``course`` now, before a class, so that
        every trainee's database is then a rename; how many were made. Instructors only.

        The pool's job keeps ``pool_size`` of them; copies beyond that stay until used.
        """
        backend, sql = self.check(actor, db_type, course, count)
        assert isinstance(count, int)
        with self.service.audited(actor, "prepare copies", f"{backend.db_type}:{course}") as entry:
            if not self.service.copies.copyable(backend, self.service.copies.master(backend, course, sql)):
                raise Refused(f"The course {course} is loaded from its SQL on {backend.label} each time "
                              "(it holds what a copy on the server cannot carry, such as events); "
                              "copies cannot be prepared.")
            made = self.service.copies.top_up(backend, course, sql, progress, size=count)
            entry.detail = f"{made} made, {count} ready"
        return made

    def check(self, actor: Actor, db_type: object, course: str, count: object) -> tuple[Backend, str]:
        """The backend and course SQL :meth:`prepare` would use, its input checked first."""
        actor.require_instructor("prepare copies of a course")
        backend = self.service.servers.backend(db_type)
        sql = self.service.course_sql(course, backend)
        if not isinstance(count, int) or not 1 <= count <= MAX_PREPARED_COPIES:
            raise InvalidInput(f"Prepare from 1 to {MAX_PREPARED_COPIES} copies at a time.")
        return backend, sql

    def start(self, actor: Actor, db_type: object, course: str, count: object) -> bool:
        """Start preparing; ``False`` if one is already running for that course and engine.

        The input is checked now, so that a mistake is a 400 on the page, not a line in a log.
        """
        backend, _ = self.check(actor, db_type, course, count)
        key = (backend.db_type, course)
        with self._lock:
            if key in self._running:
                return False
            self._running.add(key)

        def run() -> None:
            try:
                self.prepare(actor, backend.db_type, course, count)
            except Exception:  # audited by the service; the page shows what is ready
                log(f"Preparing copies of {course} on {backend.db_type} stopped", failed=True)
            finally:
                with self._lock:
                    self._running.discard(key)

        threading.Thread(target=run, name=f"prepare {backend.db_type}:{course}", daemon=True).start()
        return True

    def running(self) -> set[tuple[str, str]]:
        """(engine, course) of the preparations under way."""
        with self._lock:
            return set(self._running)
