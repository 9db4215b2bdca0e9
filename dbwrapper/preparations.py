"""Preparing ready copies of a course before a class.

``dbwrapper pool fill`` prepares them in the terminal, with a progress bar;
from a browser the work would outlast the request, so it runs as an
operation (:meth:`dbwrapper.operations.Operations.start_preparation`), and
the Courses page shows the ready copies grow as it goes.
"""

from __future__ import annotations

from collections.abc import Callable

from dbwrapper.accounts import Actor
from dbwrapper.backends import Backend
from dbwrapper.errors import InvalidInput, Refused
from dbwrapper.service import DatabaseService

#: The most copies of a course prepared in one go: a class, not a server's worth of disk.
MAX_PREPARED_COPIES = 200


class Preparations:
    """Preparing ready copies of a course, for instructors."""

    def __init__(self, service: DatabaseService) -> None:
        self.service = service

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
