"""Users (accounts with a role, a password hash and a quota) and courses, in the registry."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dbwrapper.errors import InvalidInput
from dbwrapper.registry.base import Store
from dbwrapper.registry.models import ApiToken, AuditEntry, Course, ManagedDatabase, User


class UserRecords(Store):
    """Who may log in, as what; and the courses instructors defined."""

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
