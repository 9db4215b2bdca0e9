"""Read-only mode: an instructor lets a database (or every database of a course) be read,
not changed, by its trainee.

The mode is a login, not a filter: each database gets a *reader*, a login of
its own that may only read it (PostgreSQL: SELECT grants and transactions that
start read-only; MySQL: SELECT and SHOW VIEW on the database). While the mode is
on, the trainee is shown the reader's credentials instead of the owner's, and
the console runs as the reader. Switching it on gives the owner's login a new
password and ends its sessions, so the one the trainee saw no longer opens the
database for writing; switching it off shows the owner's credentials again, with
that new password. Instructors keep the owner's credentials throughout.
"""

from __future__ import annotations

import secrets
from contextlib import suppress
from dataclasses import dataclass

from dbwrapper.accounts import Actor
from dbwrapper.backends import Backend
from dbwrapper.backends.base import Login
from dbwrapper.errors import DbWrapperError, NotFound
from dbwrapper.names import RESERVED_PREFIX
from dbwrapper.passwords import generate_password
from dbwrapper.registry import DatabaseRecord
from dbwrapper.service import DatabaseService


def reader_name() -> str:
    """A new reader's login name: ``_dbw_ro_3fa2b1c9d0e4`` (a name users cannot choose)."""
    return f"{RESERVED_PREFIX}ro_{secrets.token_hex(6)}"


@dataclass(frozen=True)
class ReadOnly:
    """Switch read-only mode per database or per course, and open databases as their readers."""

    service: DatabaseService

    def applies(self, record: DatabaseRecord) -> bool:
        """Whether ``record`` is read-only now: by its own switch, or its course's."""
        return record.id in self.service.registry.read_only_ids()

    def shown_login(self, actor: Actor, record: DatabaseRecord) -> Login:
        """The login ``actor`` is shown for ``record``: its reader for a trainee while read-only."""
        if not actor.is_instructor and self.applies(record):
            return self.reader(self.service.servers.backend(record.db_type), record)
        return Login(record.login, record.password)

    def console_login(self, backend: Backend, record: DatabaseRecord, *, to_run: bool = True) -> Login:
        """The login the console runs as: the reader while read-only (``to_run``: given, as the
        owner, what there is to read now), else the owner."""
        if not self.applies(record):
            return Login(record.login, record.password)
        reader = self.reader(backend, record)
        if to_run:
            self._share(backend, record, reader)
        return reader

    def _share(self, backend: Backend, record: DatabaseRecord, reader: Login) -> None:
        """As the owner, give ``reader`` what there is to read now (a revert or a reset makes
        the database anew; tables may have been made since)."""
        with backend.as_owner(record.name, Login(record.login, record.password)) as connection:
            backend.logins.share_for_reading(connection, reader.name, record.name)
            connection.commit()

    def reader(self, backend: Backend, record: DatabaseRecord) -> Login:
        """The database's reader, made on its server the first time it is asked for."""
        found = self.service.registry.reader(record)
        if found is not None:
            return found
        reader = Login(reader_name(), generate_password())
        backend.logins.make_reader(reader, record.name)
        try:
            self.service.registry.add_reader(record, reader)
        except DbWrapperError:
            # A reader the registry does not know would never be dropped: remove it again.
            with suppress(DbWrapperError):
                backend.logins.remove_login(reader.name)
            raise
        return reader

    def switch_database(self, actor: Actor, db_type: object, name: str | None, on: bool) -> str:
        """Switch one database's own mode; a sentence saying what changed."""
        actor.require_instructor("switch read-only mode")
        backend, record = self.service.managed(actor, db_type, name)
        action = "read-only" if on else "read-write"
        with self.service.audited(actor, action, f"{backend.db_type}:{record.name}") as entry:
            reader = self.reader(backend, record)
            if on:
                self._share(backend, record, reader)
                self._shut_out_owner(backend, record)
            self.service.registry.set_read_only(record, on, audit=entry)
        if on:
            return (f"{record.name} is read-only now: {record.owner} is shown a login that can only read it, "
                    "and the password they had no longer works.")
        course = self.service.registry.course(record.course) if record.course else None
        still = f" It stays read-only while its course {course.name} is." if course and course.read_only else ""
        return f"{record.name}'s own read-only mode is off: {record.owner} is shown its own login again.{still}"

    def switch_course(self, actor: Actor, course: str, on: bool) -> str:
        """Switch a course's mode, for every database made from it; a sentence saying what changed."""
        actor.require_instructor("switch read-only mode")
        registry = self.service.registry
        found = registry.course(course) if isinstance(course, str) else None
        if found is None:
            raise NotFound(f"There is no course {course!r}.")
        databases = [db for db in registry.databases() if db.course == found.name and db.ready]
        with self.service.audited(actor, "read-only" if on else "read-write", f"course:{found.name}") as entry:
            if on:
                for record in databases:
                    backend = self.service.servers.backend(record.db_type)
                    self._share(backend, record, self.reader(backend, record))
                    if not self.applies(record):
                        self._shut_out_owner(backend, record)
            registry.set_course_read_only(found.name, on, audit=entry)
        state = "read-only" if on else "no longer read-only by its course"
        return f"The course {found.name}'s {len(databases)} database(s) are {state}."

    def _shut_out_owner(self, backend: Backend, record: DatabaseRecord) -> None:
        """Give the owner's login a password the trainee has not seen, and end its sessions."""
        changed = self.service.registry.set_database_password(record, generate_password())
        backend.logins.renew_password(Login(changed.login, changed.password))
        backend.creation.end_sessions(record.name, record.login)
