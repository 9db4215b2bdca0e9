"""Operations (work that outlives its request) in the registry, where every process sees them.

Nothing here is cached: a progress page asks again every second, and what it
must show is the other processes' writes, as they happen.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, or_, select, update

from dbwrapper.registry.base import Store, as_utc
from dbwrapper.registry.models import Operation

RUNNING = "running"
#: The states an operation ends in.
ENDED = ("succeeded", "failed", "cancelled", "interrupted")


def _now() -> datetime:
    return datetime.now(UTC)


def _in_utc(operation: Operation) -> Operation:
    """The operation with its times in UTC (SQLite hands them back naive)."""
    operation.created_at = as_utc(operation.created_at) or operation.created_at
    operation.heartbeat_at = as_utc(operation.heartbeat_at) or operation.heartbeat_at
    operation.finished_at = as_utc(operation.finished_at)
    return operation


class OperationRecords(Store):
    """Who started what, how far it got, and how it ended."""

    def add_operation(self, operation: Operation) -> Operation:
        with self.session() as session:
            session.add(operation)
        return _in_utc(operation)

    def operation(self, operation_id: str) -> Operation | None:
        with self.session() as session:
            found = session.get(Operation, operation_id)
        return _in_utc(found) if found is not None else None

    def operations(
        self, *, started_by: str | None = None, state: str | None = None, kind: str | None = None,
        target: str | None = None, limit: int = 100,
    ) -> list[Operation]:
        """The newest first, those that match every filter given."""
        query = select(Operation).order_by(Operation.created_at.desc(), Operation.id).limit(limit)
        for column, wanted in ((Operation.started_by, started_by), (Operation.state, state),
                               (Operation.kind, kind), (Operation.target, target)):
            if wanted is not None:
                query = query.where(column == wanted)
        with self.session() as session:
            return [_in_utc(found) for found in session.scalars(query)]

    def record_progress(self, operation_id: str, done: int, current: str) -> None:
        """How far it got; its heartbeat moves with it."""
        with self.session() as session:
            session.execute(
                update(Operation).where(Operation.id == operation_id)
                .values(done=done, current=current[:128], heartbeat_at=_now())
            )

    def finish_operation(
        self, operation_id: str, state: str, *, result: str | None = None, error: str | None = None,
    ) -> None:
        """How it ended: ``state`` is one of :data:`ENDED`."""
        assert state in ENDED, state
        with self.session() as session:
            session.execute(
                update(Operation).where(Operation.id == operation_id)
                .values(state=state, result=result, error=error, finished_at=_now())
            )

    def request_cancel(self, operation_id: str) -> None:
        """Ask the process at work to stop it, at its next step; an ended one stays as it is."""
        with self.session() as session:
            session.execute(
                update(Operation).where(Operation.id == operation_id, Operation.state == RUNNING)
                .values(cancel_requested=True)
            )

    def cancel_requested(self, operation_id: str) -> bool:
        with self.session() as session:
            return bool(session.scalar(select(Operation.cancel_requested).where(Operation.id == operation_id)))

    def beat_operations(self, process: str) -> None:
        """``process`` is alive: the heartbeat of its running operations moves on."""
        with self.session() as session:
            session.execute(
                update(Operation).where(Operation.process == process, Operation.state == RUNNING)
                .values(heartbeat_at=_now())
            )

    def running_processes(self) -> set[str]:
        """The processes at work on running operations."""
        with self.session() as session:
            return set(session.scalars(select(Operation.process).where(Operation.state == RUNNING).distinct()))

    def interrupt_operations(
        self, *, process: str | None = None, silent_for: timedelta | None = None,
    ) -> list[Operation]:
        """Record as ``interrupted`` the running operations whose process ended: those of
        ``process``, or those whose heartbeat has not moved for ``silent_for``; or, given
        neither, all of them. Each keeps how far it got, which its error says; the ones
        recorded now are returned."""
        query = select(Operation).where(Operation.state == RUNNING).with_for_update()
        whose = []
        if process is not None:
            whose.append(Operation.process == process)
        if silent_for is not None:
            whose.append(Operation.heartbeat_at < _now() - silent_for)
        if whose:
            query = query.where(or_(*whose))
        with self.session() as session:
            found = list(session.scalars(query))
            for operation in found:
                operation.state = "interrupted"
                operation.error = f"interrupted after {operation.done} of {operation.total}: its process ended"
                operation.finished_at = _now()
        return [_in_utc(operation) for operation in found]

    def prune_operations(self, days: int) -> None:
        """Forget the operations that ended more than ``days`` ago (their results hold passwords)."""
        with self.session() as session:
            session.execute(
                delete(Operation).where(Operation.state.in_(ENDED),
                                        Operation.finished_at < _now() - timedelta(days=days))
            )
