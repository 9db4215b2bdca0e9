"""The SQL console's runs in the registry: each database's history, and the runs at work,
which any process may be asked to cancel.

A history row is not worth an fsync: its writes are not ``durable`` (see
:meth:`~dbwrapper.registry.base.Store.session`), so a run waits for no disk.
"""

from __future__ import annotations

from sqlalchemy import delete, select, update

from dbwrapper.registry.base import Store
from dbwrapper.registry.databases import DatabaseRecord
from dbwrapper.registry.models import ConsoleRun

#: How many runs of each database its history keeps.
HISTORY_LENGTH = 50
#: Older runs are forgotten at every this many runs (of any database), not at each: until
#: then a history holds a few more rows than it shows.
PRUNE_EVERY = 10


class ConsoleRecords(Store):
    """What was run in each database's console, newest first, at most :data:`HISTORY_LENGTH`."""

    def start_run(self, record: DatabaseRecord, actor: str, sql: str, process: str, session_id: int) -> int:
        """Record a run about to start in the server session ``session_id`` (for a cancel); its id."""
        with self.session(durable=False) as session:
            run = ConsoleRun(database_id=record.id, actor=actor, sql=sql, state="running", process=process,
                             session_id=session_id)
            session.add(run)
            session.flush()
            return run.id

    def finish_run(self, record: DatabaseRecord, run_id: int, summary: str) -> None:
        """Mark ``run_id`` done with ``summary``; every :data:`PRUNE_EVERY` runs, forget the
        database's runs past the history's length."""
        with self.session(durable=False) as session:
            session.execute(
                update(ConsoleRun).where(ConsoleRun.id == run_id).values(state="done", summary=summary[:255])
            )
            if run_id % PRUNE_EVERY:
                return
            oldest_kept = session.scalar(
                select(ConsoleRun.id).where(ConsoleRun.database_id == record.id)
                .order_by(ConsoleRun.id.desc()).offset(HISTORY_LENGTH - 1).limit(1)
            )
            if oldest_kept is not None:
                session.execute(delete(ConsoleRun).where(
                    ConsoleRun.database_id == record.id, ConsoleRun.id < oldest_kept, ConsoleRun.state == "done",
                ))

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
