"""Reading and writing the registry, on its own engine, with migrations on start."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, delete, func, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, joinedload, sessionmaker

from dbwrapper.backends.base import CONNECT_TIMEOUT, ping_when_idle
from dbwrapper.errors import BackendUnavailable, InvalidInput
from dbwrapper.registry.models import AuditEntry, ManagedDatabase, User

T = TypeVar("T")

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
AUDIT_DETAIL_LENGTH = 500

#: How long a read of users or databases is reused. Every request reads its
#: user, and every listing the owners; without reuse those round trips were
#: most of a list page's time. This process's own writes clear it at once, so
#: only another process's change (the command line) can show this late.
READ_CACHE_SECONDS = 2.0


class Registry:
    """The control database: who may log in, which databases exist for whom, what happened."""

    def __init__(self, url: str | URL) -> None:
        self.url = make_url(url)
        options = {"connect_args": {"connect_timeout": CONNECT_TIMEOUT}}
        if self.url.get_backend_name() == "sqlite":
            options = {}
        self.engine: Engine = create_engine(self.url, **options)
        ping_when_idle(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._cache: dict[Hashable, tuple[float, Any]] = {}
        self._cache_lock = threading.Lock()

    def _cached(self, key: Hashable, load: Callable[[], T]) -> T:
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
    def _writing(self) -> Iterator[Session]:
        """A session for a change; cached reads are dropped once it is committed (or not)."""
        try:
            with self.session() as session:
                yield session
        finally:
            with self._cache_lock:
                self._cache.clear()

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
        try:
            yield
        except DBAPIError as error:
            if isinstance(error, IntegrityError):
                raise
            where = self.url.render_as_string(hide_password=True)
            raise BackendUnavailable(
                f"The control database ({where}) cannot be used: {str(error.orig).strip().splitlines()[0]}"
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

    def add_user(self, name: str, role: str, password_hash: str, quota: int) -> User:
        user = User(name=name, role=role, password_hash=password_hash, quota=quota)
        try:
            with self._writing() as session:
                session.add(user)
        except IntegrityError as error:
            raise InvalidInput(f"A user named {name} already exists.") from error
        return user

    def remove_user(self, user: User) -> None:
        with self._writing() as session:
            session.delete(session.get(User, user.id))

    def set_password_hash(self, user: User, password_hash: str) -> None:
        with self._writing() as session:
            session.get(User, user.id).password_hash = password_hash  # type: ignore[union-attr]

    def has_instructor(self) -> bool:
        with self.session() as session:
            return (session.scalar(select(func.count()).where(User.role == "instructor")) or 0) > 0

    # -- databases ------------------------------------------------------------------

    def database(self, backend: str, name: str) -> ManagedDatabase | None:
        return next((db for db in self.databases(backend) if db.name == name), None)

    def databases(self, backend: str | None = None, owner: User | None = None) -> list[ManagedDatabase]:
        """Managed databases, with their owners loaded, by backend and name."""

        def load() -> list[ManagedDatabase]:
            query = select(ManagedDatabase).options(joinedload(ManagedDatabase.owner))
            if backend is not None:
                query = query.where(ManagedDatabase.backend == backend)
            if owner is not None:
                query = query.where(ManagedDatabase.owner_id == owner.id)
            with self.session() as session:
                return list(session.scalars(query.order_by(ManagedDatabase.backend, ManagedDatabase.name)))

        return self._cached(("databases", backend, owner.id if owner else None), load)

    def record_database(
        self, backend: str, name: str, owner: User, login: str, password: str, audit: AuditEntry
    ) -> None:
        """Record a new database, and the audit entry saying so, in one transaction."""
        with self._writing() as session:
            session.add(
                ManagedDatabase(backend=backend, name=name, owner_id=owner.id, login=login, password=password)
            )
            session.add(audit)

    def forget_database(self, record: ManagedDatabase, audit: AuditEntry) -> None:
        """Forget a dropped database, and add the audit entry saying so, in one transaction."""
        with self._writing() as session:
            session.execute(delete(ManagedDatabase).where(ManagedDatabase.id == record.id))
            session.add(audit)

    # -- the audit log ---------------------------------------------------------------

    def audit(self, actor: str, action: str, target: str, outcome: str, detail: str = "") -> None:
        self.add_audit(AuditEntry(actor=actor, action=action, target=target, outcome=outcome, detail=detail))

    def add_audit(self, entry: AuditEntry) -> None:
        entry.detail = (entry.detail or "")[:AUDIT_DETAIL_LENGTH]
        with self.session() as session:
            session.add(entry)

    def audit_entries(self, limit: int = 200) -> list[AuditEntry]:
        with self.session() as session:
            return list(session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)))
