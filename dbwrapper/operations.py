"""Work that outlives its request, and its process: operations, recorded in the registry.

A class provisioned from the page, or copies prepared before one, takes
longer than a request: it runs in a thread, and its record in the registry
says how far it got and how it ended. Any ``dbwrapper serve`` process on that
registry reports it, whichever one does the work, and none keeps it in memory.

The process at work moves the record's heartbeat every :data:`HEARTBEAT_SECONDS`.
A running operation whose heartbeat stopped for :data:`STALE_SECONDS` lost its
process (killed, or its machine gone): reading it records it as
``interrupted``, with how far it got. What it made stays, and running it again
finishes the rest (a class makes nothing twice, the pool counts what is ready).
"""

from __future__ import annotations

import builtins
import json
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from dbwrapper.accounts import Actor
from dbwrapper.bulk import BulkReport, ClassActions
from dbwrapper.classes import ClassProvisioner, ClassReport
from dbwrapper.errors import DbWrapperError, InvalidInput, NotFound
from dbwrapper.joblog import log as job_log
from dbwrapper.preparations import Preparations
from dbwrapper.registry import DatabaseRecord, Registry
from dbwrapper.registry.base import as_utc
from dbwrapper.registry.models import Operation
from dbwrapper.registry.operations import RUNNING
from dbwrapper.servers import Servers

#: How often this process moves the heartbeat of its running operations.
HEARTBEAT_SECONDS = 2.0
#: A running operation whose heartbeat is older than this lost its process.
STALE_SECONDS = 10.0
#: How often :meth:`Step.advance` asks the registry whether a cancel was requested.
CANCEL_CHECK_SECONDS = 1.0
#: Ended operations are forgotten after this many days: a class's result holds passwords.
KEPT_DAYS = 7
#: The most operations one listing shows.
LISTED = 100

#: This job's lines in the log.
log = partial(job_log, "OPERATIONS")

#: What an operation does, told how to report its progress; it returns its result (JSON-able).
Work = Callable[["Step"], object]


class Cancelled(Exception):
    """Raised by :meth:`Step.advance` once a cancel was requested: the work stops between two
    steps. Not a :class:`DbWrapperError`, so that no step takes it for its own failure."""


class Step:
    """How the work of one operation reports its progress, and hears a cancel."""

    def __init__(self, registry: Registry, operation: Operation, clock: Callable[[], float] = time.monotonic) -> None:
        self.registry = registry
        self.operation = operation
        self.done = 0
        #: What the work made so far, for the record of an operation that ends early
        #: (cancelled or failed); ``None``: nothing worth keeping.
        self.partial: Callable[[], object] | None = None
        self._clock = clock
        self._checked = -CANCEL_CHECK_SECONDS  # the first step asks at once

    def advance(self, done: int, current: str = "") -> None:
        """``done`` of the total are done, ``current`` is next; raises :class:`Cancelled` if a
        cancel was requested (asked of the registry at most every :data:`CANCEL_CHECK_SECONDS`)."""
        self.done = done
        self.registry.record_progress(self.operation.id, done, current)
        if self._clock() - self._checked >= CANCEL_CHECK_SECONDS:
            self._checked = self._clock()
            if self.registry.cancel_requested(self.operation.id):
                raise Cancelled(f"cancelled after {done} of {self.operation.total}")


class Operations:
    """This process's operations: it starts them, runs them in threads and keeps their
    heartbeat; it reports anyone's, from the registry."""

    def __init__(
        self, servers: Servers, classes: ClassProvisioner, preparations: Preparations, class_actions: ClassActions,
        process: str,
    ) -> None:
        self.servers = servers
        self.classes = classes
        self.preparations = preparations
        self.class_actions = class_actions
        #: This process, as its operations' records name it (see :mod:`dbwrapper.settle`).
        self.process = process
        # Two requests of this process asking for the same preparation start one.
        self._starting = threading.Lock()

    @property
    def registry(self) -> Registry:
        return self.servers.registry

    def start(self, actor: Actor, kind: str, target: str, total: int, work: Work) -> Operation:
        """Record ``kind`` of work on ``target`` as running, and run ``work`` in a thread.

        ``work`` ends the operation: what it returns is its result (``succeeded``);
        :class:`Cancelled` makes it ``cancelled``, any other exception ``failed``.
        """
        self.registry.prune_operations(KEPT_DAYS)
        operation = self.registry.add_operation(Operation(
            id=secrets.token_urlsafe(12), kind=kind, target=target, state=RUNNING, done=0, total=total,
            current="", started_by=actor.name, process=self.process, cancel_requested=False,
        ))
        thread = threading.Thread(target=self._run, args=(Step(self.registry, operation), work),
                                  name=f"{kind} {operation.id}", daemon=True)
        thread.start()
        return operation

    def _run(self, step: Step, work: Work) -> None:
        operation = step.operation
        state: str = "failed"
        error: str | None = None
        result: object = None
        try:
            result = work(step)
            state = "succeeded"
        except Cancelled as cancelled:
            state, error = "cancelled", str(cancelled)
        except DbWrapperError as failure:
            error = str(failure)
        except Exception:  # the record must say it ended, whatever happened; the log says why
            log(f"The {operation.kind} operation {operation.id} on {operation.target} failed", failed=True)
            error = (f"It stopped on an unexpected error after {step.done} of {operation.total}; "
                     "the service's log says why.")
        if state != "succeeded" and step.partial is not None:
            result = step.partial()
        try:
            self.registry.finish_operation(operation.id, state, error=error,
                                           result=json.dumps(result) if result is not None else None)
        except Exception:  # its process lives on: the record says running until that one ends
            log(f"Could not record how the {operation.kind} operation {operation.id} ended", failed=True)

    def beat(self) -> None:
        """Move the heartbeat of this process's running operations; for a periodic job, so it
        never raises: a failure is logged, and a heartbeat missed for long makes them stale."""
        try:
            self.registry.beat_operations(self.process)
        except Exception:
            log("Could not move the heartbeat of this process's operations", failed=True)

    def interrupt_all(self) -> builtins.list[Operation]:
        """Record every running operation as interrupted: for a process alone on the registry,
        whose start means every other process ended."""
        return self.registry.interrupt_operations()

    def stop(self) -> None:
        """This process ends: its running operations, whose threads end with it, are interrupted.
        Never raises, so that the rest of the process stops all the same."""
        try:
            self.registry.interrupt_operations(process=self.process)
        except Exception:
            log("Could not record this process's running operations as interrupted", failed=True)

    def get(self, actor: Actor, operation_id: object, kind: str | None = None) -> Operation:
        """The operation ``operation_id`` (of ``kind``, if given). Instructors see every one,
        trainees only their own: another's is as unknown as a missing one."""
        found = self.registry.operation(operation_id) if isinstance(operation_id, str) else None
        if found is None or (kind is not None and found.kind != kind) or not self._visible(actor, found):
            raise NotFound("There is no such operation (ended ones are forgotten after "
                           f"{KEPT_DAYS} days).")
        if self._stale(found):
            self._interrupt_stale()
            found = self.registry.operation(found.id) or found
        return found

    def cancel(self, actor: Actor, operation_id: object) -> Operation:
        """Ask for the operation to stop at its next step; one that ended is returned as it is,
        so asking twice, or too late, is no error."""
        found = self.get(actor, operation_id)
        if found.state == RUNNING:
            self.registry.request_cancel(found.id)
            found = self.get(actor, found.id)
        return found

    def start_class(self, actor: Actor, names: builtins.list[str], course: str, db_type: str) -> Operation:
        """Provision a class (see :mod:`dbwrapper.classes`); its result is the
        :class:`~dbwrapper.classes.ClassReport`, as JSON (:meth:`class_report` reads it back).

        A bad course or server is refused now, for the whole roster."""
        backend = self.classes.check(actor, course, db_type)
        report = ClassReport(course, backend.db_type)

        def work(step: Step) -> object:
            step.partial = report.to_json
            try:
                self.classes.fill(actor, names, report, lambda done, total, name: step.advance(done, name))
            finally:
                self.classes.hand_out(report)  # the record carries them to the sheet, however it ended
            return report.to_json()

        return self.start(actor, "class", f"{backend.db_type}:{course}", len(names), work)

    @staticmethod
    def class_report(operation: Operation) -> ClassReport | None:
        """The report of a class operation, as far as it got; ``None`` until it ends."""
        return ClassReport.from_json(json.loads(operation.result)) if operation.result else None

    def start_bulk(self, actor: Actor, class_id: object, action: object) -> Operation:
        """Do ``action`` (see :mod:`dbwrapper.bulk`) to every database the class operation
        ``class_id`` made that still exists; the operation's kind is ``bulk <action>``, its
        target the class's id, its result the :class:`~dbwrapper.bulk.BulkReport` as JSON
        (:meth:`bulk_report` reads it back). The input is checked now, for a 400 on the page."""
        action = self.class_actions.check(actor, action)
        found, records = self.class_databases(actor, class_id)
        report = BulkReport(action)

        def work(step: Step) -> object:
            step.partial = report.to_json
            self.class_actions.run(actor, action, records, report, step.advance)
            return report.to_json()

        return self.start(actor, f"bulk {action}", found.id, len(records), work)

    def class_databases(self, actor: Actor, class_id: object) -> tuple[Operation, builtins.list[DatabaseRecord]]:
        """The class operation ``class_id`` and the databases it made that still exist; a class
        still being provisioned is refused, as its databases are not all there yet."""
        found = self.get(actor, class_id, kind="class")
        report = self.class_report(found)
        if found.state == RUNNING:
            raise InvalidInput("That class is still being provisioned; act on its databases once it ends.")
        if report is None:
            raise InvalidInput("That class's provisioning ended before it could say what it made; provision "
                               "the same roster again (nothing is made twice), then act on that class.")
        return found, self.class_actions.databases(report)

    @staticmethod
    def bulk_report(operation: Operation) -> BulkReport | None:
        """The report of a bulk operation, as far as it got; ``None`` until it ends."""
        return BulkReport.from_json(json.loads(operation.result)) if operation.result else None

    def start_preparation(self, actor: Actor, db_type: object, course: str, count: object) -> tuple[Operation, bool]:
        """Prepare ``count`` ready copies of ``course`` (see :mod:`dbwrapper.preparations`); the
        operation counts the copies ready. If one is running for that course and engine, by any
        process, that one and ``False``. The input is checked now: a mistake is a 400 on the page."""
        backend, _ = self.preparations.check(actor, db_type, course, count)
        assert isinstance(count, int)
        target = f"{backend.db_type}:{course}"

        def work(step: Step) -> object:
            def progress(made: int, missing: int) -> None:  # the copies made now, of those missing
                step.advance(count - missing + made)

            return {"made": self.preparations.prepare(actor, backend.db_type, course, count, progress)}

        with self._starting:
            if running := self._found(kind="prepare", state=RUNNING, target=target, limit=1):
                return running[0], False
            return self.start(actor, "prepare", target, count, work), True

    def preparing(self) -> set[tuple[str, str]]:
        """(engine, course) of the preparations under way, in any process."""
        found = self._found(kind="prepare", state=RUNNING, limit=LISTED)
        return {(db_type, course) for db_type, _, course in (op.target.partition(":") for op in found)}

    def list(
        self, actor: Actor, *, started_by: str | None = None, state: str | None = None, kind: str | None = None,
        limit: int = LISTED,
    ) -> builtins.list[Operation]:
        """The newest first, at most ``limit``: every one an instructor asks for, a trainee's own."""
        if not actor.is_instructor:
            if started_by not in (None, actor.name):
                return []
            started_by = actor.name
        found = self._found(started_by=started_by, state=state, kind=kind, limit=min(max(limit, 1), LISTED))
        return [operation for operation in found if self._visible(actor, operation)]

    def _found(self, **filters: Any) -> builtins.list[Operation]:
        """The registry's operations, the stale among them recorded as interrupted first."""
        found = self.registry.operations(**filters)
        if any(self._stale(operation) for operation in found):
            self._interrupt_stale()
            found = self.registry.operations(**filters)
        return found

    @staticmethod
    def _visible(actor: Actor, operation: Operation) -> bool:
        """Instructors see every operation; a trainee those they started. Names are reused (a
        trainee removed after one course, another of the same name in the next): an operation
        older than the account is someone else's."""
        if actor.is_instructor:
            return True
        started, joined = as_utc(operation.created_at), as_utc(actor.user.created_at)
        newer = started is None or joined is None or started >= joined
        return operation.started_by == actor.name and newer

    @staticmethod
    def _stale(operation: Operation) -> bool:
        return (operation.state == RUNNING
                and operation.heartbeat_at < datetime.now(UTC) - timedelta(seconds=STALE_SECONDS))

    def _interrupt_stale(self) -> None:
        for operation in self.registry.interrupt_operations(silent_for=timedelta(seconds=STALE_SECONDS)):
            log(f"The {operation.kind} operation {operation.id} on {operation.target} was interrupted: "
                f"its process stopped after {operation.done} of {operation.total}")
