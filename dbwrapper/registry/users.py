"""Users (accounts with a role, a password hash and a quota) and courses, in the registry."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dbwrapper.errors import DatabaseBusy, InvalidInput
from dbwrapper.registry.base import Store
from dbwrapper.registry.models import ApiToken, AuditEntry, Course, ManagedDatabase, User

#: How long a request waits for another process's work under the same user's lock.
USER_LOCK_WAIT_SECONDS = 10.0
USER_LOCK_POLL_SECONDS = 0.05
#: The lock each engine takes without waiting, and gives back (PostgreSQL's goes with its
#: transaction; MySQL's named lock is its session's, so it is let go explicitly).
TRY_LOCK = {
    "postgresql": ("SELECT pg_catalog.pg_try_advisory_xact_lock(:key)", None),
    "mysql": ("SELECT GET_LOCK(:name, 0)", "SELECT RELEASE_LOCK(:name)"),
}


class UserRecords(Store):
    """Who may log in, as what; and the courses instructors defined."""

    @contextmanager
    def holding(self, user: User) -> Iterator[None]:
        """Hold ``user``'s lock in the registry, across every process that serves it, while the
        block runs: what a quota counts and what it then makes are one step for them all.

        On PostgreSQL an advisory lock of the block's transaction, on MySQL a named lock; a
        SQLite registry is one machine's and its writers take turns anyway (this process's
        own lock, in :mod:`dbwrapper.quotas`, keeps its requests in order). Another process
        that holds it longer than :data:`USER_LOCK_WAIT_SECONDS` (a long snapshot of the same
        user's) makes this one a 409 to retry, never a wait without end.
        """
        statements = TRY_LOCK.get(self.engine.dialect.name)
        if statements is None:
            yield
            return
        take, give_back = statements
        digest = hashlib.sha256(f"dbwrapper user {user.id}".encode()).digest()
        values = {"key": int.from_bytes(digest[:8], "big", signed=True), "name": f"dbwrapper_user_{user.id}"}
        with self.session() as session:
            deadline = time.monotonic() + USER_LOCK_WAIT_SECONDS
            while not session.execute(text(take), values).scalar_one():
                if time.monotonic() > deadline:
                    raise DatabaseBusy(f"Another request of {user.name}'s is making something they keep; "
                                       "try again once it ends.")
                time.sleep(USER_LOCK_POLL_SECONDS)
            try:
                yield
            finally:
                if give_back is not None:
                    session.execute(text(give_back), values)

    def databases_owned(self, user: User) -> int:
        """How many databases ``user`` owns, asked of the registry now (never the cache)."""
        with self.session() as session:
            return session.scalar(select(func.count()).where(ManagedDatabase.owner_id == user.id)) or 0

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
        """Remove ``user`` and their API tokens. The tokens go explicitly, in the same
        transaction: SQLite enforces no ``ON DELETE CASCADE`` unless foreign keys are on."""
        with self._changing_users() as session:
            session.execute(delete(ApiToken).where(ApiToken.user_id == user.id))
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

    def has_instructor(self) -> bool:
        with self.session() as session:
            return (session.scalar(select(func.count()).where(User.role == "instructor")) or 0) > 0

    def owns_any(self, user: User) -> bool:
        """Whether ``user`` owns a database, asked of the database itself (not the cache)."""
        with self.session() as session:
            query = select(func.count()).where(ManagedDatabase.owner_id == user.id)
            return (session.scalar(query) or 0) > 0

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
