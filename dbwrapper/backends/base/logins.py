"""Logins and grants: each database's own login, what it may reach, and shutting it out for a while."""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import suppress
from typing import TYPE_CHECKING

from sqlalchemy import Connection

from dbwrapper.backends.base.types import Login

if TYPE_CHECKING:
    from dbwrapper.backends.base.backend import Backend


class BaseLogins(ABC):
    """One server's logins; each engine makes, grants and drops them its own way.

    The hooks that take a connection run on the admin connection they are
    given, so that a workflow can make a login and grant it in one go. Names
    come raw and are quoted where each statement is built; passwords and
    limits are always bound parameters.
    """

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def renew_password(self, login: Login) -> None:
        """Give ``login`` the password the registry keeps for it again (and the service shows)."""
        backend = self.backend
        with backend.errors.translated(f"set the password of {login.name}"), backend.admin_connection() as connection:
            self.reset_login(connection, login)

    def make_reader(self, reader: Login, name: str) -> None:
        """Make ``reader``, a login that may only read database ``name`` (see :mod:`dbwrapper.readonly`);
        one whose grant fails is removed again, never left half-made."""
        backend = self.backend
        with backend.errors.translated(f"make the reader {reader.name}"), backend.admin_connection() as connection:
            self.create_login(connection, reader)
            try:
                self.grant_reading(connection, reader.name, name)
            except Exception:
                with suppress(Exception):  # the grant's error is the one to report
                    self.drop_login(connection, reader.name)
                raise

    def remove_login(self, login: str) -> None:
        """End ``login``'s sessions and remove it from the server (a reader, once its database is gone)."""
        backend = self.backend
        with backend.errors.translated(f"remove the login {login}"), backend.admin_connection() as connection:
            self.drop_login(connection, login)

    # -- what each engine implements ------------------------------------------------

    @abstractmethod
    def grant_reading(self, connection: Connection, reader: str, name: str) -> None:
        """Let ``reader`` read database ``name`` and change nothing, as far as the super-user grants it."""

    def share_for_reading(self, connection: Connection, reader: str, name: str) -> None:
        """On ``connection``, the owner's own session in database ``name``: give ``reader`` what
        the owner's grants must add (PostgreSQL's privileges live inside the database); nothing
        by default."""

    def revoke_public_access(self, connection: Connection) -> None:
        """Close what a new login could reach beyond its own database; nothing by default."""

    @abstractmethod
    def create_login(self, connection: Connection, login: Login) -> None:
        """Make ``login`` on the server (its password is a bound parameter)."""

    @abstractmethod
    def reset_login(self, connection: Connection, login: Login) -> None:
        """Make ``login``, or give the existing one ``login.password``."""

    @abstractmethod
    def grant(self, connection: Connection, login: str, name: str) -> None:
        """Give login ``login`` database ``name``, and nothing else."""

    @abstractmethod
    def drop_login(self, connection: Connection, login: str) -> None:
        """End ``login``'s sessions and remove it from the server, if it is there."""

    def lock_login(self, login: str) -> None:
        """Keep ``login`` from opening its database until :meth:`unlock_login`, while the super-user
        copies into it (a revert); its open sessions are ended after. Nothing by default: a
        PostgreSQL revert makes a new database, which the super-user never enters."""

    def unlock_login(self, login: str) -> None:
        """Let ``login`` open its database again after :meth:`lock_login`; harmless if it was not
        locked."""
