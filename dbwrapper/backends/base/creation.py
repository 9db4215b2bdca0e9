"""Creating, copying and dropping databases: the workflows every engine shares.

Like Django's ``BaseDatabaseCreation``: each workflow lives here once (what is
made in which order, what is undone when a step fails, what the service's
errors say), and each engine overrides only narrow hooks (its ``CREATE
DATABASE``, how it drops, copies and moves content). A hook never calls back up
into a workflow; where an engine needs a bare ``CREATE DATABASE`` in a hook
(MySQL's backup of a revert, PostgreSQL's clone of a snapshot) it takes the
step :meth:`BaseCreation.make`, which makes nothing else.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import nullcontext
from typing import TYPE_CHECKING, ClassVar

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from dbwrapper.backends.base.types import Login, Source
from dbwrapper.db import long_deadline
from dbwrapper.errors import DbWrapperError, Refused
from dbwrapper.names import validate_name

if TYPE_CHECKING:
    from dbwrapper.backends.base.backend import Backend

#: How long to keep retrying while the server reports the template busy. PostgreSQL
#: itself waits up to 5 s for other sessions to leave before it reports that, so
#: this only adds attempts when its answer came quickly.
BUSY_RETRY_SECONDS = 3.0


class BaseCreation(ABC):
    """One server's databases: made, copied, snapshotted, reverted and dropped."""

    #: Whether the server renames a database in place (PostgreSQL); if not (MySQL), a
    #: database's content moves into a new one instead (like Django's ``features``).
    can_rename_database: ClassVar[bool]

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    # -- the workflows -------------------------------------------------------------

    def create_database(
        self, name: str, login: Login | None = None, *, managed: bool = True, source: Source | None = None,
    ) -> bool:
        """Create ``name``, owned by ``login`` if given; ``False`` if it already existed.

        Nothing is changed when it existed, not even the login. Two concurrent
        calls for the same name make one database: the loser sees the server's
        "already exists" and reports ``False``. If the login cannot be made, the
        new database is dropped again: nothing is left half-made. ``managed``
        marks the database as this service's (the control database is not).
        With ``source``, the new database starts as a copy of that database
        (tables, rows, indexes, constraints, views), its content owned by ``login``.
        """
        try:
            return self._create_database(name, login, managed, source)
        finally:
            self.backend.catalog.forget_listing()  # whatever happened, the next listing asks the server

    def _create_database(self, name: str, login: Login | None, managed: bool, source: Source | None) -> bool:
        if not self.make(name, managed=managed, source=source):
            return False
        backend, logins = self.backend, self.backend.logins
        made_login = False
        action = f"make the login for {name}"
        try:
            with backend.admin_connection() as connection:
                logins.revoke_public_access(connection)
                if login is not None:
                    logins.create_login(connection, login)
                    made_login = True
            # The content is copied before the login may open the database, so that nothing
            # of the login's (a trigger planted meanwhile) can run in the super-user's copy;
            # the login exists already, as PostgreSQL's REASSIGN OWNED needs it.
            if source is not None:
                action = f"copy {source.name} into {name}"
                with long_deadline():
                    self.copy_content(source, name, login.name if login else source.owner)
            if login is not None:
                action = f"give {name} to {login.name}"
                with backend.admin_connection() as connection:
                    logins.grant(connection, login.name, name)
        except (DBAPIError, DbWrapperError) as error:
            self._undo_create(name, login.name if made_login and login else None)
            if isinstance(error, DBAPIError):
                raise backend.errors.refused(action, error) from error
            raise
        return True

    def make(self, name: str, *, managed: bool = True, source: Source | None = None) -> bool:
        """Run this engine's ``CREATE DATABASE`` for ``name`` (a clone of ``source`` where the
        engine clones on the server), again while the server reports the source busy;
        ``False`` if ``name`` existed. A step, not a workflow: no login, no content copied."""
        validate_name(name)
        errors = self.backend.errors
        deadline = time.monotonic() + BUSY_RETRY_SECONDS
        delay = 0.1
        while True:
            try:
                # A clone copies the source's data on the server: the long deadline.
                with long_deadline() if source is not None else nullcontext(), \
                        self.backend.admin_connection() as connection:
                    self.create(connection, name, managed, source)
                return True
            except DBAPIError as error:
                if errors.is_duplicate(error):
                    return False
                if not errors.is_busy(error):
                    raise errors.refused(f"create {name}", error) from error
                if time.monotonic() + delay > deadline:
                    raise errors.busy(
                        f"create {name}", error,
                        "Another session is connected to the database it is copied from; close it and try again.",
                    ) from error
                time.sleep(delay)
                delay *= 2

    def _undo_create(self, name: str, login: str | None) -> None:
        """Drop what a failed create made; best effort, as the server may be the problem."""
        try:
            with self.backend.admin_connection() as connection:
                self.drop(connection, name)
                if login is not None:
                    self.backend.logins.drop_login(connection, login)
        except (DBAPIError, DbWrapperError):
            pass

    def drop_database(self, name: str, login: str | None = None, *, registered: bool) -> bool:
        """Drop ``name``, ending any open sessions on it; its ``login`` goes with it.

        Returns ``False`` if it did not exist. ``registered`` says the registry
        records ``name`` as this service's: the registry decides, never the
        marker, which the database's owner can change (``COMMENT ON DATABASE``,
        ``ALTER DATABASE ... COMMENT``). A database the registry does not know is
        dropped only if it carries this service's marker, so that a typo never
        drops someone else's data.
        """
        try:
            return self._drop_database(name, login, registered)
        finally:
            self.backend.catalog.forget_listing()  # whatever happened, the next listing asks the server

    def _drop_database(self, name: str, login: str | None, registered: bool) -> bool:
        validate_name(name)
        backend, logins = self.backend, self.backend.logins
        busy = "Another session is holding it; try again in a moment."
        with backend.errors.translated(f"drop {name}", busy), backend.admin_connection() as connection:
            entry = backend.catalog.lookup(connection, name)
            if entry is None:
                if login is not None:
                    logins.drop_login(connection, login)
                return False
            if entry.managed is False and not registered:
                raise Refused(
                    f"{name} exists on {backend.label} but was not created by dbwrapper, so it "
                    "is left alone. Drop it with the server's own tools if you mean to."
                )
            self.drop(connection, name)
            if login is not None:
                logins.drop_login(connection, login)
        return True

    def give_spare(self, spare: Source, name: str, login: Login) -> bool:
        """Give the ready copy ``spare`` (a warm pool's spare) to ``login`` as database ``name``.

        ``False`` if ``name`` already exists; the spare is then left as it was.
        """
        validate_name(name)
        try:
            with self.backend.errors.translated(f"hand {spare.name} over as {name}"):
                if self.can_rename_database:
                    return self.rename_spare(spare, name, login)
                # The spare's content moves into a new database. The emptied spare and its
                # login are left for the pool to drop later. A handout that fails or dies
                # half-way is dropped whole, so its triggers need no ledger.
                if not self.create_database(name, login):
                    return False
                try:
                    self.move_spare(spare, name, login)
                except (DBAPIError, DbWrapperError):
                    self.drop_database(name, login.name, registered=True)
                    raise
                return True
        finally:
            self.backend.catalog.forget_listing()

    def take_snapshot(self, name: str, snapshot: str, owner: str) -> int:
        """Copy database ``name`` (content owned by ``owner``) as ``snapshot``, which its owner
        cannot reach. The sessions on it are ended first, so that the copy is of one moment
        (and because PostgreSQL clones a database only with nobody in it); returns how many."""
        with self.backend.errors.translated(f"snapshot {name}"):
            self.check_copyable(name)
            ended = self.end_sessions(name, owner)
        self.create_database(snapshot, source=Source(name, owner))
        return ended

    def revert_database(self, name: str, snapshot: str, backup: str, owner: str) -> int:
        """Give ``name`` (content owned by ``owner``) the content of ``snapshot`` again; see
        :meth:`replace_content`, which returns how many sessions were ended."""
        return self.replace_content(
            f"revert {name}", name, backup, owner, lambda: self.copy_snapshot(Source(snapshot, owner), name, owner),
        )

    def reset_database(self, name: str, course: Source, backup: str, owner: str, *, spare: bool) -> int:
        """Give ``name`` (content owned by ``owner``) its course's starting content again: a
        ready ``spare`` of the pool swapped in (:meth:`take_spare`), or else a copy of the
        course's master (:meth:`copy_snapshot`). See :meth:`replace_content`, which returns how
        many sessions were ended."""
        fill = self.take_spare if spare else self.copy_snapshot
        return self.replace_content(f"reset {name}", name, backup, owner, lambda: fill(course, name, owner))

    def replace_content(self, action: str, name: str, backup: str, owner: str, fill: Callable[[], None]) -> int:
        """Give ``name`` (content owned by ``owner``) new content, by ``fill``.

        What it holds is first moved into the new database ``backup``, moved
        rather than copied; if ``fill`` then fails, it is restored from there.
        Meanwhile the owner's login is locked (:meth:`BaseLogins.lock_login`) and
        its sessions are ended; returns how many. Whatever happens, the login is
        unlocked at the end, and after a crash by :meth:`undo_revert`.
        """
        backend, logins = self.backend, self.backend.logins
        try:
            with backend.errors.translated(action):
                self.check_copyable(name)
                logins.lock_login(owner)
                try:
                    ended = self.end_sessions(name, owner)
                    try:
                        self.move_to_backup(name, backup, owner)
                        with long_deadline():
                            fill()
                    except (DBAPIError, DbWrapperError):
                        if backend.catalog.exists(backup):  # something was moved aside: it goes back
                            self.restore_backup(name, backup, owner)
                        raise
                finally:
                    logins.unlock_login(owner)
                return ended
        finally:
            backend.catalog.forget_listing()

    def undo_revert(self, name: str, backup: str, owner: str) -> None:
        """Undo a revert a crash interrupted: ``name`` gets back what was moved into ``backup``,
        and its owner's login is unlocked.

        Nothing to restore if the revert had not moved anything aside yet; the
        login is unlocked all the same, as the revert may have locked it already.
        """
        backend = self.backend
        try:
            with backend.errors.translated(f"put {name} back as it was"):
                try:
                    if backend.catalog.exists(backup):
                        self.restore_backup(name, backup, owner)
                finally:
                    backend.logins.unlock_login(owner)
        finally:
            backend.catalog.forget_listing()

    def adopt_database(self, name: str, login: Login) -> None:
        """Give an existing database its own ``login`` (made, or its password reset)."""
        backend, logins = self.backend, self.backend.logins
        with backend.errors.translated(f"give {name} a login"), backend.admin_connection() as connection:
            logins.revoke_public_access(connection)
            logins.reset_login(connection, login)
            logins.grant(connection, login.name, name)

    def recreate_database(self, name: str, login: str) -> None:
        """Replace ``name`` by an empty database owned by the same ``login`` (for a restore over it)."""
        self.drop_database(name, registered=True)
        self.create_database(name)
        backend = self.backend
        with backend.errors.translated(f"give {name} back to {login}"), backend.admin_connection() as connection:
            backend.logins.grant(connection, login, name)

    # -- the hooks each engine implements ---------------------------------------------

    @abstractmethod
    def create(self, connection: Connection, name: str, managed: bool, source: Source | None) -> None:
        """Run this engine's ``CREATE DATABASE`` for ``name``, marked as ours if ``managed``; an
        engine that can clone on the server does so here from ``source``."""

    @abstractmethod
    def drop(self, connection: Connection, name: str) -> None:
        """End the sessions on ``name`` and drop it."""

    @abstractmethod
    def copy_content(self, source: Source, name: str, owner: str) -> None:
        """Finish making ``name`` a copy of ``source`` whose content login ``owner`` owns
        (after :meth:`create`)."""

    @abstractmethod
    def can_copy(self, source: str) -> bool:
        """Whether :meth:`copy_content` copies everything database ``source`` holds."""

    def check_copyable(self, name: str) -> None:
        """Refuse, before anything changes, a database that could not be copied whole; on
        PostgreSQL, which clones a database's files, there is none (and a view cannot break:
        what it reads cannot be dropped from under it)."""

    @abstractmethod
    def end_sessions(self, name: str, login: str) -> int:
        """End the sessions on database ``name`` and of its owner ``login``; how many were ended."""

    def rename_spare(self, spare: Source, name: str, login: Login) -> bool:
        """Rename the ready copy ``spare`` to ``name``, owned by ``login`` (where
        :attr:`can_rename_database`); ``False``, with ``spare`` untouched, if ``name`` exists."""
        raise NotImplementedError

    def move_spare(self, spare: Source, name: str, login: Login) -> None:
        """Move what the ready copy ``spare`` holds into the new database ``name`` of ``login``'s,
        in time that does not grow with its size (where databases cannot be renamed)."""
        raise NotImplementedError

    @abstractmethod
    def move_to_backup(self, name: str, backup: str, owner: str) -> None:
        """Move what ``name`` holds into the new database ``backup``, in time that does not
        grow with its size; ``name`` then is empty, or gone."""

    @abstractmethod
    def copy_snapshot(self, snapshot: Source, name: str, owner: str) -> None:
        """Make ``name`` (emptied or gone) a copy of ``snapshot`` (a snapshot, or a course's
        master, whose content another login owns), its content ``owner``'s."""

    @abstractmethod
    def take_spare(self, spare: Source, name: str, owner: str) -> None:
        """Make ``name`` (emptied or gone) what the ready copy ``spare`` holds, its content
        ``owner``'s, in time that does not grow with its size; the emptied ``spare`` (or
        its login) is left for the pool to drop."""

    @abstractmethod
    def restore_backup(self, name: str, backup: str, owner: str) -> None:
        """Give ``name`` back what was moved into ``backup``, whatever the revert had copied
        in meanwhile, and remove ``backup``."""

    def freeze_master(self, name: str) -> None:
        """Keep a master's content owner from changing it once loaded; nothing by default."""
