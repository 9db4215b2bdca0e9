"""Read-only mode in the registry: each database's reader and the switches, per database
and per course (see :mod:`dbwrapper.readonly`)."""

from __future__ import annotations

from sqlalchemy import or_, select, update

from dbwrapper.backends.base.types import Login
from dbwrapper.registry.base import Store
from dbwrapper.registry.databases import DatabaseRecord
from dbwrapper.registry.models import AuditEntry, Course, ManagedDatabase, Reader


class ReaderRecords(Store):
    """Who reads which database, and which are read-only."""

    def read_only_ids(self) -> frozenset[int]:
        """The ids of the managed databases that are read-only now, by their own switch or their
        course's (cached like the databases, so that a listing asks once)."""
        def load() -> frozenset[int]:
            query = (
                select(ManagedDatabase.id)
                .outerjoin(Reader, Reader.database_id == ManagedDatabase.id)
                .outerjoin(Course, Course.name == ManagedDatabase.course)
                .where(or_(Reader.read_only.is_(True), Course.read_only.is_(True)))
            )
            with self.session() as session:
                return frozenset(session.scalars(query))

        return self._cached(("read_only",), load)

    def _switched(self) -> None:
        """Forget the cached read-only databases: this process sees a switch at once."""
        with self._cache_lock:
            self._cache.pop(("read_only",), None)

    def reader(self, record: DatabaseRecord) -> Login | None:
        """The database's reader; ``None`` if it has none yet."""
        with self.session() as session:
            found = session.scalar(select(Reader).where(Reader.database_id == record.id))
            return Login(found.login, found.password) if found else None

    def add_reader(self, record: DatabaseRecord, reader: Login) -> None:
        """Record the database's reader (made on the server just before)."""
        with self.session() as session:
            session.add(Reader(database_id=record.id, login=reader.name, password=reader.password, read_only=False))

    def set_read_only(self, record: DatabaseRecord, on: bool, audit: AuditEntry) -> None:
        """Switch the database's own read-only mode, and audit it, in one transaction."""
        with self.session() as session:
            session.execute(update(Reader).where(Reader.database_id == record.id).values(read_only=on))
            session.add(audit)
        self._switched()

    def set_course_read_only(self, course: str, on: bool, audit: AuditEntry) -> None:
        """Switch a course's read-only mode (for every database made from it), and audit it."""
        with self.session() as session:
            session.execute(update(Course).where(Course.name == course).values(read_only=on))
            session.add(audit)
        self._switched()
