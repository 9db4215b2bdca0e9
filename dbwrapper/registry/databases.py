"""Managed databases and their snapshots, in the registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.exc import IntegrityError

from dbwrapper.errors import Refused
from dbwrapper.registry.base import Store, as_utc
from dbwrapper.registry.models import AuditEntry, ConsoleRun, ManagedDatabase, Reader, Snapshot, User


@dataclass(frozen=True)
class DatabaseRecord:
    """A managed database as the registry knows it; plain data, safe to share between threads."""

    id: int
    db_type: str
    name: str
    owner_id: int
    owner: str
    login: str
    password: str = field(repr=False)
    expires_at: datetime | None = None
    #: ``False`` while it is being made: recorded first, so a crash leaves a record of it.
    ready: bool = True
    #: The course it started from, and when it was recorded (what the API shows of it).
    course: str | None = None
    created_at: datetime | None = None
    #: The process that recorded it, which makes it while it is not ready (see
    #: :mod:`dbwrapper.settle`); ``None`` on records older than that.
    process: str | None = None


def _by_place(record: DatabaseRecord) -> tuple[str, str]:
    return record.db_type, record.name


class DatabaseRecords(Store):
    """Which databases exist for whom (cached for every listing), and their snapshots."""

    def _load_databases(self, *where: ColumnElement[bool]) -> list[DatabaseRecord]:
        """The records that match ``where``, read now, by ``db_type`` and name."""
        query = (
            select(
                ManagedDatabase.id, ManagedDatabase.db_type, ManagedDatabase.name,
                ManagedDatabase.owner_id, User.name, ManagedDatabase.login, ManagedDatabase.password,
                ManagedDatabase.expires_at, ManagedDatabase.ready, ManagedDatabase.course,
                ManagedDatabase.created_at, ManagedDatabase.process,
            )
            .join(User)
            .where(*where)
            .order_by(ManagedDatabase.db_type, ManagedDatabase.name)
        )
        with self.session() as session:
            return [DatabaseRecord(*row[:7], as_utc(row[7]), row[8], row[9], as_utc(row[10]), row[11])
                    for row in session.execute(query)]

    def _all_databases(self) -> list[DatabaseRecord]:
        return self._cached(("databases",), self._load_databases)

    def _update_databases(self, change: Callable[[list[DatabaseRecord]], list[DatabaseRecord]]) -> None:
        """Apply this process's committed change to the cached records instead of reloading them."""
        with self._cache_lock:
            cached = self._cache.get(("databases",))
            if cached is not None:
                self._cache[("databases",)] = (cached[0], sorted(change(cached[1]), key=_by_place))

    def databases(self, db_type: str | None = None, owner: User | None = None) -> list[DatabaseRecord]:
        """Managed databases with their owners, by ``db_type`` and name."""
        return [
            db for db in self._all_databases()
            if (db_type is None or db.db_type == db_type) and (owner is None or db.owner_id == owner.id)
        ]

    def database(self, db_type: str, name: str) -> DatabaseRecord | None:
        return next((db for db in self._all_databases() if (db.db_type, db.name) == (db_type, name)), None)

    def claims(self) -> list[DatabaseRecord]:
        """The databases being made (not ready) by a process that named itself, read now,
        not from the cache: another process's claims, to settle once it has ended."""
        return self._load_databases(ManagedDatabase.ready.is_(False), ManagedDatabase.process.is_not(None))

    def record_database(
        self, db_type: str, name: str, owner: User, login: str, password: str, audit: AuditEntry | None,
        expires_at: datetime | None = None, course: str | None = None, *, ready: bool = True,
        process: str | None = None,
    ) -> DatabaseRecord | None:
        """Record a database, and the audit entry saying so, in one transaction.

        ``ready=False`` records one about to be made, before it exists (see
        :meth:`mark_database_ready`), by ``process``. ``None`` if that name is
        recorded already: someone else is making it.
        """
        row = ManagedDatabase(
            db_type=db_type, name=name, owner_id=owner.id, login=login, password=password,
            expires_at=expires_at, course=course, ready=ready, process=process,
        )
        try:
            with self.session() as session:
                session.add_all([row, audit] if audit else [row])
                session.flush()
                record = DatabaseRecord(
                    row.id, db_type, name, owner.id, owner.name, login, password, expires_at, ready, course,
                    as_utc(row.created_at), process,
                )
        except IntegrityError:
            return None
        self._update_databases(lambda records: [*records, record])
        return record

    def mark_database_ready(self, record: DatabaseRecord, audit: AuditEntry) -> DatabaseRecord:
        """The database exists and is complete; audit its making in the same transaction.

        Refused if its record is gone meanwhile (an instructor destroyed it while it was
        being made): the caller then drops what it made instead of reporting it made.
        """
        with self.session() as session:
            marked = session.execute(
                update(ManagedDatabase).where(ManagedDatabase.id == record.id).values(ready=True)
            )
            if marked.rowcount != 1:  # type: ignore[attr-defined]
                raise Refused(f"{record.name} was destroyed while it was being made.")
            session.add(audit)
        done = replace(record, ready=True)
        self._update_databases(lambda records: [done if db.id == record.id else db for db in records])
        return done

    def set_expiry(self, record: DatabaseRecord, expires_at: datetime | None, audit: AuditEntry) -> None:
        """Change when a database expires, and audit it, in one transaction."""
        with self.session() as session:
            session.execute(
                update(ManagedDatabase).where(ManagedDatabase.id == record.id).values(expires_at=expires_at)
            )
            session.add(audit)
        changed = replace(record, expires_at=expires_at)
        self._update_databases(lambda records: [changed if db.id == record.id else db for db in records])

    def set_database_password(self, record: DatabaseRecord, password: str) -> DatabaseRecord:
        """Give the database's own login a new password in the registry; the record as it is now."""
        with self.session() as session:
            session.execute(update(ManagedDatabase).where(ManagedDatabase.id == record.id).values(password=password))
        changed = replace(record, password=password)
        self._update_databases(lambda records: [changed if db.id == record.id else db for db in records])
        return changed

    def forget_database(self, record: DatabaseRecord, audit: AuditEntry | None) -> None:
        """Forget a dropped database, its snapshots, its console history and its reader, and add
        the audit entry saying so, in one transaction."""
        with self.session() as session:
            session.execute(delete(Snapshot).where(Snapshot.database_id == record.id))
            session.execute(delete(ConsoleRun).where(ConsoleRun.database_id == record.id))
            session.execute(delete(Reader).where(Reader.database_id == record.id))
            session.execute(delete(ManagedDatabase).where(ManagedDatabase.id == record.id))
            if audit is not None:
                session.add(audit)
        self._update_databases(lambda records: [db for db in records if db.id != record.id])

    def snapshots(self, record: DatabaseRecord | None = None, owner: User | None = None) -> list[Snapshot]:
        """Snapshots, newest first: of one database, of one owner's databases, or all."""
        query = select(Snapshot).order_by(Snapshot.taken_at.desc(), Snapshot.id.desc())
        if record is not None:
            query = query.where(Snapshot.database_id == record.id)
        if owner is not None:
            query = query.join(ManagedDatabase).where(ManagedDatabase.owner_id == owner.id)
        with self.session() as session:
            return [self._utc(snapshot) for snapshot in session.scalars(query)]

    @staticmethod
    def _utc(snapshot: Snapshot) -> Snapshot:
        snapshot.taken_at = as_utc(snapshot.taken_at) or snapshot.taken_at
        return snapshot

    def add_snapshot(self, snapshot: Snapshot) -> Snapshot:
        """Record a snapshot before its database is made, with the state saying how far it got."""
        with self.session() as session:
            session.add(snapshot)
        return self._utc(snapshot)

    def set_snapshot(self, snapshot: Snapshot, state: str, size_bytes: int | None = None,
                     audit: AuditEntry | None = None) -> None:
        with self.session() as session:
            session.execute(
                update(Snapshot).where(Snapshot.id == snapshot.id).values(state=state, size_bytes=size_bytes)
            )
            if audit is not None:
                session.add(audit)
        snapshot.state, snapshot.size_bytes = state, size_bytes

    def forget_snapshot(self, snapshot: Snapshot, audit: AuditEntry | None = None) -> None:
        with self.session() as session:
            session.execute(delete(Snapshot).where(Snapshot.id == snapshot.id))
            if audit is not None:
                session.add(audit)
