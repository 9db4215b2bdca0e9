"""One database server, composed of small parts like Django's ``DatabaseWrapper``.

A :class:`Backend` is one database server reached with super-user credentials.
It owns two kinds of SQLAlchemy engine:

* one *admin* engine for the life of the process, connected where that engine
  does server-wide work (PostgreSQL: the maintenance database ``postgres``;
  MySQL: no database), in AUTOCOMMIT because ``CREATE DATABASE`` and
  ``DROP DATABASE`` cannot run inside a transaction block on PostgreSQL and
  commit implicitly on MySQL anyway;
* one-off engines into one database *as that database's own login*
  (:meth:`Backend.as_owner`), for work on what its owner put in it (row counts,
  a dump's snapshot): a trainee's functions, views, operators and search_path
  then run with the trainee's rights, never the super-user's. The super-user
  never connects into a trainee's database.

:mod:`dbwrapper.db` builds them, with a deadline on every call; every
connection is taken past the server's gate (:mod:`dbwrapper.gates`), which
bounds how many requests wait on it and pauses it once it missed a deadline.

The work is done by its parts, one class each per engine: :attr:`~Backend.creation`
(databases made, copied, snapshotted, reverted, dropped), :attr:`~Backend.logins`
(logins and grants), :attr:`~Backend.catalog` (lookups, listings, sizes),
:attr:`~Backend.client` (the command-line tools), :attr:`~Backend.console` (the
SQL console's statements, as the database's own login) and :attr:`~Backend.errors`
(the one translation of driver errors).

Nothing request-specific is stored on a backend: every call takes a connection
from the pool and gives it back, so one instance serves all CherryPy threads.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import ClassVar

from sqlalchemy import Connection, Engine
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from dbwrapper.backends.base.catalog import BaseCatalog, Clock
from dbwrapper.backends.base.client import BaseClient
from dbwrapper.backends.base.console import BaseConsole
from dbwrapper.backends.base.creation import BaseCreation
from dbwrapper.backends.base.errors import DatabaseErrors
from dbwrapper.backends.base.logins import BaseLogins
from dbwrapper.backends.base.types import INSTANCE_ID, MARKER, DatabaseInfo, Login, Source
from dbwrapper.config import DEFAULT_LOGIN_CONNECTION_LIMIT, env_var
from dbwrapper.db import Deadlines, create_engine, one_off_engine, with_driver, without
from dbwrapper.errors import InvalidInput
from dbwrapper.gates import Gates
from dbwrapper.names import validate_name


class Backend(ABC):
    """One database server, reached with super-user credentials."""

    #: The ``db_type`` users type: ``postgres`` or ``mysql``.
    db_type: ClassVar[str]
    #: The engine's name as people write it, for pages and messages.
    label: ClassVar[str]
    #: SQLAlchemy dialect names this class accepts in a URL.
    dialects: ClassVar[frozenset[str]]
    #: Databases that belong to the server itself and are never created or dropped here.
    system_databases: ClassVar[frozenset[str]]
    #: What the server calls what a login is made as: ``PostgreSQL role``, ``MySQL account``.
    login_kind: ClassVar[str]

    #: The engine's parts, as Django's ``DatabaseWrapper`` names its own classes.
    creation_class: ClassVar[type[BaseCreation]]
    logins_class: ClassVar[type[BaseLogins]]
    catalog_class: ClassVar[type[BaseCatalog]]
    client_class: ClassVar[type[BaseClient]]
    console_class: ClassVar[type[BaseConsole]]
    errors_class: ClassVar[type[DatabaseErrors]]

    def __init__(
        self, url: str | URL, client_url: str | URL | None = None, *,
        login_connection_limit: int = DEFAULT_LOGIN_CONNECTION_LIMIT,
        deadlines: Deadlines = Deadlines(), gates: Gates | None = None, clock: Clock = time.monotonic,
    ) -> None:
        self.url = self.normalize_url(url)
        #: Where the owners' own programs reach the server: ``url``'s address, unless they
        #: reach it elsewhere (the embedded PostgreSQL: dbwrapper on its socket, trainees on TCP).
        self.client_url = self.normalize_url(client_url) if client_url is not None else self.url
        #: How many connections each login made here may hold at once.
        self.login_connection_limit = login_connection_limit
        self.deadlines = deadlines
        self.gate = (gates or Gates()).gate(self.url, self.server)
        self.marker = MARKER
        self.errors = self.errors_class(self)
        #: ``clock`` times the listings and sizes the catalog reuses (tests pass a fake one).
        self.catalog = self.catalog_class(self, clock=clock)
        self.logins = self.logins_class(self)
        self.creation = self.creation_class(self)
        self.client = self.client_class(self)
        self.console = self.console_class(self)
        self._admin = create_engine(
            self.admin_url(self.url), deadlines, autocommit=True, connect_args=self.session_options()
        )
        self.tune_admin_engine(self._admin)

    def belong_to(self, instance_id: str) -> None:
        """Mark databases as this registry's: ``created by dbwrapper <instance id>``."""
        if not INSTANCE_ID.fullmatch(instance_id):
            raise ValueError(f"not an instance id: {instance_id!r}")
        self.marker = f"{MARKER} {instance_id}"
        self.catalog.forget_listing()

    # -- URLs --------------------------------------------------------------------

    @classmethod
    def normalize_url(cls, url: str | URL) -> URL:
        """Parse ``url`` and check that it is meant for this engine."""
        try:
            parsed = make_url(url)
        except ArgumentError as error:
            raise InvalidInput(f"{env_var(cls.db_type)}: {error}") from error
        if parsed.get_backend_name() not in cls.dialects:
            raise InvalidInput(
                f"The {cls.db_type} backend needs a {cls.label} URL, "
                f"not {parsed.render_as_string(hide_password=True)!r}."
            )
        parsed = with_driver(parsed)
        if parsed.password == "":
            parsed = without(parsed, "password")  # so that pages do not show a mask for no password
        return parsed

    @staticmethod
    @abstractmethod
    def admin_url(url: URL) -> URL:
        """Where this engine's server-wide work connects."""

    @property
    def where(self) -> str:
        """The server's address for pages and messages: ``user@host:port``, never the password."""
        url = self.url
        host = url.host or url.query.get("host") or url.query.get("unix_socket") or "localhost"
        port = f":{url.port}" if url.port else ""
        user = f"{url.username}@" if url.username else ""
        return f"{user}{host}{port}"

    @property
    def server(self) -> str:
        """The server as messages name it: ``PostgreSQL server (postgres backend, postgres@db:5432)``."""
        return f"{self.label} server ({self.db_type} backend, {self.where})"

    def database_url(self, name: str, login: Login | None = None) -> URL:
        """The URL of database ``name`` on this server: with ``login``, or the super-user's credentials."""
        url = self.url.set(database=validate_name(name))
        return url.set(username=login.name, password=login.password) if login else url

    def client_database_url(self, name: str, login: Login) -> URL:
        """The URL the owner's own programs open database ``name`` with, as ``login``."""
        url = self.client_url.set(database=validate_name(name))
        return url.set(username=login.name, password=login.password)

    # -- connections -------------------------------------------------------------------

    @property
    def dialect(self) -> Dialect:
        """The admin engine's dialect: its identifier preparer quotes names, it knows a disconnect."""
        return self._admin.dialect

    def quote(self, name: str) -> str:
        """``name`` validated, then quoted by this dialect's identifier preparer."""
        return self.dialect.identifier_preparer.quote_identifier(validate_name(name))

    def admin_connection(self) -> AbstractContextManager[Connection]:
        """An AUTOCOMMIT connection for server-wide work; unreachable servers become a 503."""
        return self.connected(self._admin)

    @contextmanager
    def connected(self, engine: Engine) -> Iterator[Connection]:
        """A connection of ``engine`` (one of this server's), past the server's gate; a server
        that cannot be reached, goes away meanwhile or misses a deadline is a 503 that names it."""
        with self.gate.entered():
            try:
                connection = engine.connect()
            except DBAPIError as error:
                raise self.errors.unavailable(error) from error
            with connection:
                try:
                    yield connection
                except DBAPIError as error:
                    if error.connection_invalidated or self.errors.is_disconnect(error):
                        raise self.errors.unavailable(error) from error
                    raise

    @contextmanager
    def as_owner(self, name: str, login: Login) -> Iterator[Connection]:
        """A connection into database ``name`` as its own ``login``, for work on its content.

        Whatever its owner put in the database (functions, views, operators,
        triggers, a search_path of its own) then runs with the owner's rights,
        never the super-user's. The login's password is first set again to the
        one the registry keeps, as the owner may have changed it. The connection
        is closed afterwards rather than pooled: a session left open on a
        database keeps PostgreSQL from cloning, renaming or dropping it.
        """
        self.logins.renew_password(login)
        with self.connected(one_off_engine(self.database_url(name, login), self.deadlines)) as connection:
            yield connection

    def dispose(self) -> None:
        """Close every pooled connection; called when the service stops."""
        self._admin.dispose()

    # -- what the service calls most -------------------------------------------------------

    def create_database(
        self, name: str, login: Login | None = None, *, managed: bool = True, source: Source | None = None,
    ) -> bool:
        """See :meth:`BaseCreation.create_database`."""
        return self.creation.create_database(name, login, managed=managed, source=source)

    def drop_database(self, name: str, login: str | None = None, *, registered: bool) -> bool:
        """See :meth:`BaseCreation.drop_database`."""
        return self.creation.drop_database(name, login, registered=registered)

    def list_databases(self, *, fresh: bool = False) -> list[DatabaseInfo]:
        """See :meth:`BaseCatalog.list_databases`."""
        return self.catalog.list_databases(fresh=fresh)

    def exists(self, name: str) -> bool:
        """Whether database ``name`` is on the server now."""
        return self.catalog.exists(name)

    # -- the engine's own settings ------------------------------------------------------

    def session_options(self) -> dict[str, str]:
        """Driver connection arguments every super-user session starts with; none by default."""
        return {}

    def tune_admin_engine(self, engine: Engine) -> None:
        """Adjust the AUTOCOMMIT admin engine to this driver; nothing by default."""

    def cautions(self) -> list[str]:
        """How this server's own settings break a promise of dbwrapper's, which only its
        administrator can change: said at every start, as a sentence each. None by default,
        nor when the server cannot be asked."""
        return []
