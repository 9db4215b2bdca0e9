"""Read-only mode in the registry: each database's reader and the switches, per database
and per course (see :mod:`dbwrapper.readonly`)."""

from __future__ import annotations

from sqlalchemy import select, update

from dbwrapper.backends.base.types import Login
from dbwrapper.registry.base import Store
from dbwrapper.registry.databases import DatabaseRecord
from dbwrapper.registry.models import AuditEntry, Course, Reader


class ReaderRecords(Store):
    """Who reads which database, and which are read-only."""

    def reader(self, record: DatabaseRecord) -> tuple[Login, bool] | None:
        """The database's reader and whether its own switch is on; ``None`` if it has none yet."""
        with self.session() as session:
            found = session.scalar(select(Reader).where(Reader.database_id == record.id))
            return (Login(found.login, found.password), found.read_only) if found else None

    def add_reader(self, record: DatabaseRecord, reader: Login) -> None:
        """Record the database's reader (made on the server just before)."""
        with self.session() as session:
            session.add(Reader(database_id=record.id, login=reader.name, password=reader.password, read_only=False))

    def set_read_only(self, record: DatabaseRecord, on: bool, audit: AuditEntry) -> None:
        """Switch the database's own read-only mode, and audit it, in one transaction."""
        with self.session() as session:
            session.execute(update(Reader).where(Reader.database_id == record.id).values(read_only=on))
            session.add(audit)

    def set_course_read_only(self, course: str, on: bool, audit: AuditEntry) -> None:
        """Switch a course's read-only mode (for every database made from it), and audit it."""
        with self.session() as session:
            session.execute(update(Course).where(Course.name == course).values(read_only=on))
            session.add(audit)
