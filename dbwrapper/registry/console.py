"""The SQL console's runs in the registry: each database's history, and the runs at work,
which any process may be asked to cancel."""

from __future__ import annotations

from sqlalchemy import delete, select, update

from dbwrapper.registry.base import Store
from dbwrapper.registry.databases import DatabaseRecord
from dbwrapper.registry.models import ConsoleRun

#: How many runs of each database its history keeps.
HISTORY_LENGTH = 50


class ConsoleRecords(Store):
    """What was run in each database's console, newest first, at most :data:`HISTORY_LENGTH`."""

    def start_run(self, record: DatabaseRecord, actor: str, sql: str, process: str) -> int:
        """Record a run about to start; its id."""
        with self.session() as session:
            run = ConsoleRun(database_id=record.id, actor=actor, sql=sql, state="running", process=process)
            session.add(run)
            session.flush()
            return run.id

    def run_session(self, run_id: int, session_id: int) -> None:
        """Name the server session running ``run_id``, for a cancel."""
        with self.session() as session:
            session.execute(update(ConsoleRun).where(ConsoleRun.id == run_id).values(session_id=session_id))

    def finish_run(self, record: DatabaseRecord, run_id: int, summary: str) -> None:
        """Mark ``run_id`` done with ``summary``, and forget the database's runs past the history's length."""
        with self.session() as session:
            session.execute(
                update(ConsoleRun).where(ConsoleRun.id == run_id).values(state="done", summary=summary[:255])
            )
            kept = (
                select(ConsoleRun.id).where(ConsoleRun.database_id == record.id)
                .order_by(ConsoleRun.id.desc()).limit(HISTORY_LENGTH)
            )
            old = select(ConsoleRun.id).where(
                ConsoleRun.database_id == record.id, ConsoleRun.state == "done",
                ConsoleRun.id.not_in(list(session.scalars(kept))),
            )
            session.execute(delete(ConsoleRun).where(ConsoleRun.id.in_(list(session.scalars(old)))))

    def console_runs(self, record: DatabaseRecord) -> list[ConsoleRun]:
        """The database's runs, newest first."""
        with self.session() as session:
            query = select(ConsoleRun).where(ConsoleRun.database_id == record.id).order_by(ConsoleRun.id.desc())
            return list(session.scalars(query.limit(HISTORY_LENGTH)))

    def console_run(self, record: DatabaseRecord, run_id: int) -> ConsoleRun | None:
        """Run ``run_id`` of this database, if it is still in its history."""
        with self.session() as session:
            return session.scalar(
                select(ConsoleRun).where(ConsoleRun.id == run_id, ConsoleRun.database_id == record.id)
            )
