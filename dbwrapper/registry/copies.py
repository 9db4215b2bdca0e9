"""Course copies, masters and ready spares, in the registry."""

from __future__ import annotations

from sqlalchemy import delete, select, update

from dbwrapper.registry.base import Store
from dbwrapper.registry.models import CourseCopy


class CopyRecords(Store):
    """The pool's masters and spares; never cached, as the pool's refill and handouts race."""

    def copies(self, db_type: str | None = None, course: str | None = None, kind: str | None = None,
               ) -> list[CourseCopy]:
        """Course copies, oldest first; never cached, as the pool's refill and handouts race."""
        query = select(CourseCopy).order_by(CourseCopy.id)
        for column, value in ((CourseCopy.db_type, db_type), (CourseCopy.course, course),
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

    def claim_spare(self, db_type: str, course: str) -> CourseCopy | None:
        """Take a ready spare out of the pool, or ``None``; two callers never get the same one.

        The claim marks the row ``spent`` in one statement: whoever changes it owns the
        spare. What a handout leaves of a spare (MySQL: an emptied database and its
        login) is dropped later by the pool's job (:meth:`CourseCopies.refill`),
        not while a trainee waits.
        """
        for spare in self.copies(db_type, course, "spare"):
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
