"""Reading and writing the registry, on its own engine, with migrations on start."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from dbwrapper.db import Deadlines, create_engine, missed_deadline, with_driver
from dbwrapper.errors import BackendUnavailable, InvalidInput, Refused
from dbwrapper.gates import Gates
from dbwrapper.registry.models import (
    AuditEntry,
    Course,
    CourseCopy,
    Instance,
    ManagedDatabase,
    Snapshot,
    User,
)

T = TypeVar("T")


@dataclass(frozen=True)
class DatabaseRecord:
    """A managed database as the registry knows it; plain data, safe to share between threads."""

    id: int
    backend: str
    name: str
    owner_id: int
    owner: str
    login: str
    password: str = field(repr=False)
    expires_at: datetime | None = None
    #: ``False`` while it is being made: recorded first, so a crash leaves a record of it.
    ready: bool = True


def _by_place(record: DatabaseRecord) -> tuple[str, str]:
    return record.backend, record.name


def as_utc(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every time here is UTC."""
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
AUDIT_DETAIL_LENGTH = 500

#: How long a read of users or databases is reused. Every request reads its
#: user, and every listing the owners; without reuse those round trips were
#: most of a list page's time. This process's own writes clear it at once, so
#: only another process's change (the command line) can show this late.
READ_CACHE_SECONDS = 2.0


class Registry:
    """The control database: who may log in, which databases exist for whom, what happened."""

    def __init__(self, url: str | URL, deadlines: Deadlines = Deadlines(), gates: Gates | None = None) -> None:
        self.url = with_driver(make_url(url))
        self.where = self.url.render_as_string(hide_password=True)
        # Its server's gate, which it shares with a backend on the same server.
        self.gate = (gates or Gates()).gate(self.url, f"control database ({self.where})")
        self.engine: Engine = create_engine(self.url, deadlines)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._cache: dict[tuple[Hashable, ...], tuple[float, Any]] = {}
        self._cache_lock = threading.Lock()

    def refresh(self) -> None:
        """Forget every cached read, so the next ones see other processes' changes."""
        with self._cache_lock:
            self._cache.clear()

    def owns_any(self, user: User) -> bool:
        """Whether ``user`` owns a database, asked of the database itself (not the cache)."""
        with self.session() as session:
            query = select(func.count()).where(ManagedDatabase.owner_id == user.id)
            return (session.scalar(query) or 0) > 0

    def _cached(self, key: tuple[Hashable, ...], load: Callable[[], T]) -> T:
        now = time.monotonic()
        with self._cache_lock:
            found = self._cache.get(key)
        if found is not None and now - found[0] < READ_CACHE_SECONDS:
            return found[1]
        value = load()
        with self._cache_lock:
            self._cache[key] = (now, value)
        return value

    @contextmanager
    def _changing_users(self) -> Iterator[Session]:
        """A session for a change to users; cached users are dropped once it is committed (or not)."""
        try:
            with self.session() as session:
                yield session
        finally:
            with self._cache_lock:
                for key in [key for key in self._cache if key[0] == "user"]:
                    del self._cache[key]

    def upgrade(self) -> None:
        """Bring the schema to the latest migration; safe to run on every start."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self._unavailable_as_503(), self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _unavailable_as_503(self) -> Iterator[None]:
        """Work on the control database past its gate; a database that cannot be used, or
        missed a deadline, is a 503 that names it."""
        with self.gate.entered():
            try:
                yield
            except DBAPIError as error:
                if isinstance(error, IntegrityError):
                    raise
                if (seconds := missed_deadline(error.orig)) is not None:
                    raise self.gate.missed(seconds) from error
                raise BackendUnavailable(
                    f"The control database ({self.where}) cannot be used: "
                    f"{str(error.orig).strip().splitlines()[0]}"
                ) from error

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error."""
        with self._unavailable_as_503(), self._sessions.begin() as session:
            yield session

    # -- users ----------------------------------------------------------------------

    def user(self, name: str) -> User | None:
        def load() -> User | None:
            with self.session() as session:
                return session.scalar(select(User).where(User.name == name))

        return self._cached(("user", name), load)

    def users(self) -> list[User]:
        with self.session() as session:
            return list(session.scalars(select(User).order_by(User.role, User.name)))

    def add_user(self, name: str, role: str, password_hash: str, quota: int, *, shown: bool = True) -> User:
        user = User(name=name, role=role, password_hash=password_hash, quota=quota, password_shown=shown)
        try:
            with self._changing_users() as session:
                session.add(user)
        except IntegrityError as error:
            raise InvalidInput(f"A user named {name} already exists.") from error
        return user

    def remove_user(self, user: User) -> None:
        with self._changing_users() as session:
            session.delete(session.get(User, user.id))

    def set_password_hash(self, user: User, password_hash: str, *, shown: bool = True) -> None:
        with self._changing_users() as session:
            session.execute(
                update(User).where(User.id == user.id).values(password_hash=password_hash, password_shown=shown)
            )

    def mark_passwords_shown(self, names: list[str]) -> None:
        """The passwords of these users have been handed out (a class's sheet is done)."""
        with self._changing_users() as session:
            session.execute(update(User).where(User.name.in_(names)).values(password_shown=True))

    def instance_id(self) -> str:
        """This registry's id (made by its first migration)."""
        with self.session() as session:
            return session.scalar(select(Instance.uuid).where(Instance.id == 1)) or ""

    def courses(self) -> list[Course]:
        with self.session() as session:
            return list(session.scalars(select(Course).order_by(Course.name)))

    def course(self, name: str) -> Course | None:
        with self.session() as session:
            return session.scalar(select(Course).where(Course.name == name))

    def add_course(self, course: Course, audit: AuditEntry) -> None:
        try:
            with self.session() as session:
                session.add_all([course, audit])
        except IntegrityError as error:
            raise InvalidInput(f"A course named {course.name} already exists.") from error

    def has_instructor(self) -> bool:
        with self.session() as session:
            return (session.scalar(select(func.count()).where(User.role == "instructor")) or 0) > 0

    # -- databases ------------------------------------------------------------------

    def _all_databases(self) -> list[DatabaseRecord]:
        def load() -> list[DatabaseRecord]:
            query = (
                select(
                    ManagedDatabase.id, ManagedDatabase.backend, ManagedDatabase.name,
                    ManagedDatabase.owner_id, User.name, ManagedDatabase.login, ManagedDatabase.password,
                    ManagedDatabase.expires_at, ManagedDatabase.ready,
                )
                .join(User)
                .order_by(ManagedDatabase.backend, ManagedDatabase.name)
            )
            with self.session() as session:
                return [DatabaseRecord(*row[:-2], as_utc(row[-2]), row[-1]) for row in session.execute(query)]

        return self._cached(("databases",), load)

    def _update_databases(self, change: Callable[[list[DatabaseRecord]], list[DatabaseRecord]]) -> None:
        """Apply this process's committed change to the cached records instead of reloading them."""
        with self._cache_lock:
            cached = self._cache.get(("databases",))
            if cached is not None:
                self._cache[("databases",)] = (cached[0], sorted(change(cached[1]), key=_by_place))

    def databases(self, backend: str | None = None, owner: User | None = None) -> list[DatabaseRecord]:
        """Managed databases with their owners, by backend and name."""
        return [
            db for db in self._all_databases()
            if (backend is None or db.backend == backend) and (owner is None or db.owner_id == owner.id)
        ]

    def database(self, backend: str, name: str) -> DatabaseRecord | None:
        return next((db for db in self._all_databases() if (db.backend, db.name) == (backend, name)), None)

    def record_database(
        self, backend: str, name: str, owner: User, login: str, password: str, audit: AuditEntry | None,
        expires_at: datetime | None = None, course: str | None = None, *, ready: bool = True,
    ) -> DatabaseRecord | None:
        """Record a database, and the audit entry saying so, in one transaction.

        ``ready=False`` records one about to be made, before it exists (see
        :meth:`mark_database_ready`). ``None`` if that name is recorded already:
        someone else is making it.
        """
        row = ManagedDatabase(
            backend=backend, name=name, owner_id=owner.id, login=login, password=password,
            expires_at=expires_at, course=course, ready=ready,
        )
        try:
            with self.session() as session:
                session.add_all([row, audit] if audit else [row])
                session.flush()
                record = DatabaseRecord(
                    row.id, backend, name, owner.id, owner.name, login, password, expires_at, ready
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

    def forget_database(self, record: DatabaseRecord, audit: AuditEntry | None) -> None:
        """Forget a dropped database and its snapshots, and add the audit entry saying so, in one
        transaction."""
        with self.session() as session:
            session.execute(delete(Snapshot).where(Snapshot.database_id == record.id))
            session.execute(delete(ManagedDatabase).where(ManagedDatabase.id == record.id))
            if audit is not None:
                session.add(audit)
        self._update_databases(lambda records: [db for db in records if db.id != record.id])

    # -- course copies (masters and spares) ------------------------------------------

    def copies(self, backend: str | None = None, course: str | None = None, kind: str | None = None,
               ) -> list[CourseCopy]:
        """Course copies, oldest first; never cached, as the pool's refill and handouts race."""
        query = select(CourseCopy).order_by(CourseCopy.id)
        for column, value in ((CourseCopy.backend, backend), (CourseCopy.course, course),
                              (CourseCopy.kind, kind)):
            if value is not None:
                query = query.where(column == value)
        with self.session() as session:
            return list(session.scalars(query))

    def add_copy(self, copy: CourseCopy) -> CourseCopy:
        """Record a copy before its database is made (not ready yet)."""
        with self.session() as session:
            session.add(copy)
        return copy

    def mark_copy_ready(self, copy: CourseCopy) -> None:
        with self.session() as session:
            session.execute(update(CourseCopy).where(CourseCopy.id == copy.id).values(ready=True))
        copy.ready = True

    def forget_copy(self, copy: CourseCopy) -> None:
        with self.session() as session:
            session.execute(delete(CourseCopy).where(CourseCopy.id == copy.id))

    def claim_spare(self, backend: str, course: str) -> CourseCopy | None:
        """Take a ready spare out of the pool, or ``None``; two callers never get the same one.

        The claim marks the row ``spent`` in one statement: whoever changes it owns the
        spare. What a handout leaves of a spare (MySQL: an emptied database and its
        login) is dropped later by the pool's job (:meth:`CourseCopies.refill`),
        not while a trainee waits.
        """
        for spare in self.copies(backend, course, "spare"):
            if spare.ready and self._change_kind(spare, "spare", "spent"):
                return spare
        return None

    def return_spare(self, spare: CourseCopy) -> None:
        """Put back a claimed spare that was not used."""
        self._change_kind(spare, "spent", "spare")

    def _change_kind(self, copy: CourseCopy, old: str, new: str) -> bool:
        with self.session() as session:
            changed = session.execute(
                update(CourseCopy)
                .where(CourseCopy.id == copy.id, CourseCopy.kind == old, CourseCopy.ready.is_(True))
                .values(kind=new)
            )
            done = changed.rowcount == 1  # type: ignore[attr-defined]
        if done:
            copy.kind = new
        return done

    # -- snapshots ---------------------------------------------------------------------

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

    # -- the audit log ---------------------------------------------------------------

    def audit(self, actor: str, action: str, target: str, outcome: str, detail: str = "") -> None:
        self.add_audit(AuditEntry.new(actor, action, target, outcome=outcome, detail=detail))

    def add_audit(self, entry: AuditEntry) -> None:
        entry.detail = (entry.detail or "")[:AUDIT_DETAIL_LENGTH]
        with self.session() as session:
            session.add(entry)

    def audit_entries(self, limit: int = 200) -> list[AuditEntry]:
        with self.session() as session:
            return list(session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)))
