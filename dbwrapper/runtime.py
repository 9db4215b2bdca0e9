"""Everything one process needs, started in the right order, for the web and the CLI alike."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime

from cherrypy.process.plugins import BackgroundTask

from dbwrapper.accounts import Accounts
from dbwrapper.archives import Archives
from dbwrapper.backends.base.console import Limits
from dbwrapper.bulk import ClassActions
from dbwrapper.classes import ClassProvisioner
from dbwrapper.config import Settings
from dbwrapper.console.service import Console
from dbwrapper.courses import Courses
from dbwrapper.departures import Departures
from dbwrapper.expiry import Expiry, Purger
from dbwrapper.operations import HEARTBEAT_SECONDS, Operations
from dbwrapper.preparations import Preparations
from dbwrapper.readonly import ReadOnly
from dbwrapper.reconcile import Reconciler, Report
from dbwrapper.registry.joblock import ExclusiveJob, job_lock, new_process_id, process_lock
from dbwrapper.registry.lock import LOCK_CHECK_SECONDS, RegistryLock, registry_lock
from dbwrapper.servers import Servers
from dbwrapper.service import DatabaseService
from dbwrapper.settle import SETTLE_SECONDS, Settler
from dbwrapper.snapshots import Snapshots

#: Sets the first instructor's password instead of generating one.
INSTRUCTOR_PASSWORD_VARIABLE = "DBWRAPPER_INSTRUCTOR_PASSWORD"
#: How often expired web sessions, failed logins past the throttle's window and idempotency
#: keys past their time are forgotten (CherryPy's own session clean-up runs every five minutes too).
LOGINS_PRUNE_SECONDS = 300.0

#: A periodic job: its name (which names its lock), the seconds between runs, what runs.
Job = tuple[str, float, Callable[[], object]]


class Runtime:
    """The servers, the registry's users and the database service of one process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        #: This process, as the records of its work in progress name it.
        self.process = new_process_id()
        self.servers = Servers(settings)
        self.accounts = Accounts(self.servers)
        self.courses = Courses(self.servers)
        self.service = DatabaseService(self.servers, self.process)
        self.archives = Archives(self.service, settings)
        self.snapshots = Snapshots(self.service, settings.snapshot_quota)
        self.read_only = ReadOnly(self.service)
        self.service.shown_login = self.read_only.shown_login
        self.console = Console(self.service, self.read_only, Limits(
            settings.console_statement_seconds, settings.console_rows, settings.console_result_bytes,
        ))
        self.departures = Departures(self.accounts, self.service, self.archives)
        self.preparations = Preparations(self.service)
        self.expiry = Expiry(self.service)
        self.purger = Purger(self.service, self.expiry, self.archives, archive_first=settings.archive_on_expiry)
        self.reconciler = Reconciler(self.service, self.accounts, self.archives)
        self.classes = ClassProvisioner(self.service, self.accounts)
        self.class_actions = ClassActions(self.expiry, self.snapshots, self.archives)
        self.operations = Operations(self.servers, self.classes, self.preparations, self.class_actions, self.process)
        self.settler = Settler(self.service)
        #: The registry's lock, held shared from :meth:`start` to :meth:`stop`.
        self.lock: RegistryLock | None = None
        #: This process's own lock, held shared from :meth:`start` to :meth:`stop`: while it
        #: is held, no other process settles this one's work (see :mod:`dbwrapper.settle`).
        self.process_lock: RegistryLock | None = None
        #: What reconciling at the start did; ``None`` if another process was at work.
        self.reconciled: Report | None = None
        self._keeper: BackgroundTask | None = None
        self._exclusive_jobs: list[ExclusiveJob] = []  # whose locks' sessions stop() closes
        self._heartbeat: BackgroundTask | None = None
        self._started = False

    def start(self) -> None:
        """Open the backends and the registry and take its lock; make the first instructor
        if there is none; reconcile, if no other dbwrapper process is at work.

        Alone on the registry (its lock taken exclusively), this process reconciles
        the registry with the servers, settling what a crash left half-done, before
        it does anything else; then it holds the lock shared, as every process does
        while it works, so that no other process reconciles beside it. With another
        process at work, whose work in progress that would destroy, it reconciles
        nothing and :attr:`reconciled` stays ``None``.

        A generated first password is printed here, once: it is in no file and no log.
        So are the tools archives miss, and what a server's own settings break
        (:meth:`~dbwrapper.backends.Backend.cautions`), at every start.
        Starting twice does nothing the second time.
        """
        if self._started:
            return
        self._started = True
        self.reconciled = None
        self.servers.start()
        self.lock = registry_lock(self.servers.registry.url, self.servers.deadlines)
        alone = self.lock.take_alone()
        if not alone:
            self.lock.share()  # before any work: waits while another process reconciles
        self.process_lock = process_lock(self.servers.registry.url, self.servers.deadlines, self.process)
        self.process_lock.share()  # before any work: nothing this process records is settled while it lives
        for tool in self.archives.missing_tools():
            print(
                f"  dbwrapper: archives need {tool}, which was not found: install it or set "
                f"{tool} = \"/path/to/{tool}\" in app.conf's [dbwrapper] section.",
                flush=True,
            )
        for backend in self.service.backends():
            for caution in backend.cautions():
                print(f"  dbwrapper: {caution}", flush=True)
        self.courses.add_samples()
        password = self.accounts.bootstrap(os.environ.get(INSTRUCTOR_PASSWORD_VARIABLE))
        if password is not None:
            print(
                f"\n  First start: instructor {self.settings.first_instructor!r} was created with "
                f"password {password}\n  It is shown only now; change it with "
                f"'dbwrapper user set-password {self.settings.first_instructor}'.\n",
                flush=True,
            )
        if alone:
            # Every other process ended, and with it what it was at work on.
            for operation in self.operations.interrupt_all():
                print(f"  dbwrapper: the {operation.kind} operation {operation.id} on {operation.target} "
                      f"was {operation.error}.", flush=True)
            self.reconciled = self.reconciler.run()
            for line in self.reconciled.lines():
                print(f"  dbwrapper: reconciled the registry with the servers: {line}.", flush=True)
            self.lock.share()
        # A registry that restarts ends the locks' sessions: this takes them again.
        self._keeper = BackgroundTask(LOCK_CHECK_SECONDS, self._keep_locks)
        self._keeper.name = "dbwrapper registry lock"
        self._keeper.start()
        self._heartbeat = BackgroundTask(HEARTBEAT_SECONDS, self.operations.beat)
        self._heartbeat.name = "dbwrapper operations heartbeat"
        self._heartbeat.start()

    def jobs(self) -> list[Job]:
        """The periodic jobs, which the web service runs each in one process at a time
        (:meth:`exclusive`); a job is one line here."""
        return [
            ("expiry", self.settings.expiry_check_seconds, self.purger.run_once),
            ("pool", self.settings.pool_check_seconds, self.service.copies.refill),
            ("logins", LOGINS_PRUNE_SECONDS, self.forget_stale_logins),
            ("keys", LOGINS_PRUNE_SECONDS, self.forget_expired_keys),
            ("settle", SETTLE_SECONDS, self.settler.run),
        ]

    def _keep_locks(self) -> None:
        """Take the registry's lock and this process's own again if their sessions ended."""
        for lock in (self.lock, self.process_lock):
            if lock is not None:
                lock.keep()

    def exclusive(self, name: str, job: Callable[[], object]) -> ExclusiveJob:
        """``job``, run only while no other process on this registry runs job ``name``; it
        never raises (see :class:`~dbwrapper.registry.joblock.ExclusiveJob`)."""
        exclusive = ExclusiveJob(name, job, lambda: job_lock(self.servers.registry.url, self.servers.deadlines, name))
        self._exclusive_jobs.append(exclusive)
        return exclusive

    def forget_stale_logins(self) -> None:
        """Forget web sessions past their expiry, and failed logins the throttle no longer counts."""
        self.servers.registry.prune_web_sessions(datetime.now(UTC))
        self.accounts.throttle.prune()

    def forget_expired_keys(self) -> None:
        """Forget the API's idempotency keys past their time (see :mod:`dbwrapper.api.idempotency`)."""
        self.servers.registry.prune_keys(datetime.now(UTC))

    def stop(self) -> None:
        if self._keeper is not None:
            self._keeper.cancel()
            self._keeper = None
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            self._heartbeat = None
            self.operations.stop()
        for job in self._exclusive_jobs:
            job.stop()
        if self.process_lock is not None:
            self.process_lock.forget()  # this process's id is never used again
            self.process_lock = None
        if self.lock is not None:
            self.lock.release()
            self.lock = None
        self.servers.stop()
        self._started = False
