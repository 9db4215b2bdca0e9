"""Course databases made fast: a master per course and engine, and a warm pool of spares.

A course's SQL is loaded once per engine, into its *master* database, by the
master's own login. Every database made for the course afterwards is a copy
of the master made on the server (PostgreSQL: ``CREATE DATABASE ... TEMPLATE``;
MySQL: the tables' definitions, then ``INSERT ... SELECT``), so no SQL is
replayed and no row passes through a client.

Faster still, the *pool* keeps ``pool_size`` ready copies (*spares*) of each
course per engine, made in the background. Giving a trainee a seeded database
is then a rename (PostgreSQL renames the database and its login; MySQL moves
the tables with one ``RENAME TABLE``), in time that does not grow with the
course. When the pool is empty, a copy is made on the spot.

A spare handed out is marked ``spent``; what is left of it (on MySQL, an
emptied database and its login) is dropped by the next refill.

Masters and spares are named ``_dbw_master_…`` and ``_dbw_spare_…``, a prefix
no user may choose; listings leave them out. Each is recorded before it is
made and marked ready after, so that reconciling after a crash knows what was
half-made (see :mod:`dbwrapper.reconcile`).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from functools import partial

from dbwrapper.accounts import generate_password
from dbwrapper.backends import Backend
from dbwrapper.backends.base import Login, Source
from dbwrapper.errors import DbWrapperError
from dbwrapper.joblog import log as job_log
from dbwrapper.names import RESERVED_PREFIX
from dbwrapper.registry import CourseCopy, Registry
from dbwrapper.servers import Servers
from dbwrapper.tools import ToolFailed, find_tool

#: This job's lines in the log.
log = partial(job_log, "POOL")


def copy_name(kind: str) -> str:
    """A new master's or spare's database (and login) name: ``_dbw_spare_3fa2b1c9d0e4``.

    Short enough for a MySQL user name (32 characters).
    """
    return f"{RESERVED_PREFIX}{kind}_{secrets.token_hex(6)}"


def as_source(copy: CourseCopy) -> Source:
    """A copy as something to copy from: its database, and its login that owns the content."""
    return Source(copy.name, copy.name)


class CourseCopies:
    """Each course's masters and warm spares, and making a course database from them."""

    def __init__(self, servers: Servers, pool_size: int = 0) -> None:
        self.servers = servers
        #: Spares kept ready per course and engine; 0 makes every course database a copy on the spot.
        self.pool_size = pool_size
        self._lock = threading.Lock()
        self._course_locks: dict[tuple[str, str], threading.Lock] = {}
        #: Whether each master's content can be copied on the server (MySQL's copies
        #: carry no events), asked once per master and process.
        self._copyable: dict[str, bool] = {}
        #: (engine, course) whose SQL failed to load into a master: the pool stops trying them.
        self._unloadable: set[tuple[str, str]] = set()

    @property
    def registry(self) -> Registry:
        return self.servers.registry

    def _course_lock(self, db_type: str, course: str) -> threading.Lock:
        with self._lock:
            return self._course_locks.setdefault((db_type, course), threading.Lock())

    # -- making a course database -------------------------------------------------

    def provision(self, backend: Backend, course: str, sql: str, name: str, login: Login) -> str | None:
        """Make database ``name``, owned by ``login``, with ``course``'s content.

        Returns how: ``"pool"`` (a spare renamed), ``"copy"`` (copied from the
        master on the server) or ``"sql"`` (the course's SQL run, for content the
        server cannot copy); ``None`` if ``name`` already existed, which is then
        left as it was. On failure nothing is left behind.
        """
        spare = self.registry.claim_spare(backend.db_type, course)
        if spare is not None:
            try:
                handed = backend.creation.give_spare(as_source(spare), name, login)
            except DbWrapperError:
                log(f"The spare {spare.name} could not be handed over; making a copy instead", failed=True)
                self._discard(backend, spare)
            else:
                if handed:
                    return "pool"
                self.registry.return_spare(spare)
                return None
        master = self.master(backend, course, sql)
        if not self.copyable(backend, master):
            if not backend.create_database(name, login):
                return None
            self.load(backend, name, login, sql)
            return "sql"
        return "copy" if backend.create_database(name, login, source=as_source(master)) else None

    def master(self, backend: Backend, course: str, sql: str) -> CourseCopy:
        """The course's master on ``backend``, made from ``sql`` the first time it is needed."""
        with self._course_lock(backend.db_type, course):
            for copy in self.registry.copies(backend.db_type, course, "master"):
                if copy.ready:
                    return copy
            return self._make(backend, course, "master", lambda login: self._load_master(backend, login, sql))

    def copyable(self, backend: Backend, master: CourseCopy) -> bool:
        """Whether ``master`` is copied on the server; if not, its course is loaded from SQL each time."""
        if master.name not in self._copyable:
            self._copyable[master.name] = backend.creation.can_copy(master.name)
        return self._copyable[master.name]

    def _load_master(self, backend: Backend, login: Login, sql: str) -> None:
        backend.create_database(login.name, login)
        self.load(backend, login.name, login, sql)
        backend.creation.freeze_master(login.name)

    def load(self, backend: Backend, name: str, login: Login, sql: str) -> None:
        """Run ``sql`` in ``name`` as ``login``, with the engine's client; drop ``name`` if it fails.

        Run by the database's own login, so that it owns every table it makes,
        and as SQL only: the client obeys none of its own commands in it (a
        course's SQL may come from a web upload; see :meth:`Backend.script`).
        """
        try:
            tool = find_tool(backend.client.client_tool, self.servers.settings.tools)
            if tool is None:
                raise ToolFailed(f"{backend.client.client_tool} was not found to load the course: install it, "
                                 f"or set {backend.client.client_tool} = \"/path\" in app.conf.")
            backend.client.load_sql(tool, name, login, sql)
        except ToolFailed:
            backend.drop_database(name, login.name, registered=True)
            raise

    # -- the warm pool --------------------------------------------------------------

    def refill(self) -> int:
        """Drop what handouts left, and top up every course's pool on every engine it has
        content for; the spares made.

        Meant for a background job: it never raises. A failure is logged and
        the next run tries again, except a course whose SQL does not load: that
        is said once, and the course is left to trainees' requests, which report it.
        """
        made = 0
        try:
            courses = self.registry.courses()
            backends = [self.servers.backend(db_type) for db_type in self.servers.db_types]
        except Exception:  # the registry is down: try again next time
            log("The pool could not read the registry", failed=True)
            return made
        for backend in backends:
            try:
                self.drop_spent(backend)
            except Exception:
                log(f"The pool could not drop what handouts left on {backend.db_type}", failed=True)
            for course in courses if self.pool_size > 0 else ():
                sql = course.sql(backend.db_type)
                if not sql or (backend.db_type, course.name) in self._unloadable:
                    continue
                try:
                    made += self.top_up(backend, course.name, sql)
                except ToolFailed as error:
                    self._unloadable.add((backend.db_type, course.name))
                    log(f"The course {course.name} does not load on {backend.db_type}; no spares of it "
                        f"are kept: {error}")
                except Exception:
                    log(f"The pool could not make a spare of {course.name} on {backend.db_type}", failed=True)
        return made

    def drop_spent(self, backend: Backend) -> None:
        """Drop what handouts left of their spares: done here, not while a trainee waits."""
        for spent in self.registry.copies(backend.db_type, kind="spent"):
            self._discard(backend, spent)

    def top_up(
        self, backend: Backend, course: str, sql: str, progress: Callable[[int, int], None] = lambda done, total: None,
        size: int | None = None,
    ) -> int:
        """Make spares of ``course`` on ``backend`` until it has ``size`` (by default
        :attr:`pool_size`); how many were made.

        ``progress(done, total)`` is told how far it got, before each spare and at the end.
        """
        master = self.master(backend, course, sql)
        if not self.copyable(backend, master):
            return 0
        wanted = self.pool_size if size is None else size
        missing = max(wanted - len(self.registry.copies(backend.db_type, course, "spare")), 0)
        for done in range(missing):
            progress(done, missing)
            self._make(backend, course, "spare",
                       lambda login: backend.create_database(login.name, login, source=as_source(master)))
        progress(missing, missing)
        return missing

    def _make(self, backend: Backend, course: str, kind: str, build: Callable[[Login], object]) -> CourseCopy:
        """Record a copy, build it, mark it ready; on failure remove both and raise."""
        copy = self.registry.add_copy(CourseCopy(
            db_type=backend.db_type, course=course, kind=kind, name=copy_name(kind),
            password=generate_password(), ready=False,
        ))
        try:
            build(Login(copy.name, copy.password))
        except BaseException:
            self._discard(backend, copy)
            raise
        self.registry.mark_copy_ready(copy)
        return copy

    def _discard(self, backend: Backend, copy: CourseCopy) -> None:
        """Drop a copy and its login, and forget it; best effort, as the server may be the problem."""
        try:
            backend.drop_database(copy.name, copy.name, registered=True)
        except DbWrapperError:
            log(f"Could not drop {copy.name}; reconciling at the next start will", failed=True)
            return
        self.registry.forget_copy(copy)
