"""Preparing ready copies of a course in the background, from the instructors' Courses page.

``dbwrapper pool fill`` prepares them in the terminal, with a progress bar;
from a browser the work would outlast the request, so it runs in a thread
here, and the Courses page shows the ready copies grow as it goes. One
preparation at a time per course and engine: asking again while one runs
changes nothing.
"""

from __future__ import annotations

import threading

from dbwrapper.accounts import Actor
from dbwrapper.copies import log
from dbwrapper.service import DatabaseService


class Preparations:
    """Background preparations of ready copies, by (engine, course)."""

    def __init__(self, service: DatabaseService) -> None:
        self.service = service
        self._running: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def start(self, actor: Actor, db_type: object, course: str, count: object) -> bool:
        """Start preparing; ``False`` if one is already running for that course and engine.

        The input is checked now, so that a mistake is a 400 on the page, not a line in a log.
        """
        backend, _ = self.service.check_preparation(actor, db_type, course, count)
        key = (backend.db_type, course)
        with self._lock:
            if key in self._running:
                return False
            self._running.add(key)

        def run() -> None:
            try:
                self.service.prepare_copies(actor, backend.db_type, course, count)
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
