"""The workflow every engine shares; subclasses override only their quirks.

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

Nothing request-specific is stored on a backend: every call takes a connection
from the pool and gives it back, so one instance serves all CherryPy threads.
"""

from __future__ import annotations

import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from functools import partial
from typing import Any, ClassVar

from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from dbwrapper.config import DEFAULT_LOGIN_CONNECTION_LIMIT, env_var
from dbwrapper.db import (
    Deadlines,
    create_engine,
    long_deadline,
    missed_deadline,
    one_off_engine,
    with_driver,
    without,
)
from dbwrapper.errors import (
    BackendUnavailable,
    DatabaseBusy,
    DbWrapperError,
    InvalidInput,
    Refused,
)
from dbwrapper.gates import Gates
from dbwrapper.names import validate_name
from dbwrapper.tools import run_tool, sha256_of

#: How the service marks the databases it created, so that it never drops one it did not.
#: Each registry adds its own id (see :meth:`Backend.belong_to`), so that two services
#: sharing a server neither destroy nor adopt each other's databases.
MARKER = "created by dbwrapper"
INSTANCE_ID = re.compile(r"[0-9a-f]{32}")

#: How long to keep retrying while the server reports the template busy. PostgreSQL
#: itself waits up to 5 s for other sessions to leave before it reports that, so
#: this only adds attempts when its answer came quickly.
BUSY_RETRY_SECONDS = 3.0

#: How long listed sizes may be reused. Sizes are the costly part of a listing
#: (PostgreSQL stats every file of every database), and a class of thirty
#: reloading the list page must not make the server walk its whole disk each time.
SIZE_CACHE_SECONDS = 5.0

#: How long a whole listing may be reused. A class of thirty reloading the list
#: page then costs the server one catalog query a second, not thirty; this
#: backend's own creates and drops show at once.
LISTING_CACHE_SECONDS = 1.0


@dataclass(frozen=True)
class Login:
    """A database's own login: a PostgreSQL role or a MySQL user, with its password."""

    name: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class Source:
    """A database new ones are copied from (a course's master), and the login owning its content."""

    name: str
    owner: str


@dataclass(frozen=True)
class DatabaseEntry:
    """A database as the catalog names it, before sizes are added."""

    name: str
    #: ``True`` if this service created it; ``None`` when the server cannot record that.
    managed: bool | None


@dataclass(frozen=True)
class DatabaseInfo:
    """One database as a listing shows it."""

    name: str
    #: On-disk size in bytes; ``None`` when the server would not say.
    size_bytes: int | None
    #: ``True`` if this service created it; ``None`` when the server cannot record that.
    managed: bool | None


class Backend(ABC):
    """One database server, reached with super-user credentials."""

    #: The ``db_type`` users type: ``postgres`` or ``mysql``.
    kind: ClassVar[str]
    #: The engine's name as people write it, for pages and messages.
    label: ClassVar[str]
    #: SQLAlchemy dialect names this class accepts in a URL.
    dialects: ClassVar[frozenset[str]]
    #: Databases that belong to the server itself and are never created or dropped here.
    system_databases: ClassVar[frozenset[str]]
    #: What the server calls what a login is made as: ``PostgreSQL role``, ``MySQL account``.
    login_kind: ClassVar[str]

    def __init__(
        self, url: str | URL, client_url: str | URL | None = None, *,
        login_connection_limit: int = DEFAULT_LOGIN_CONNECTION_LIMIT,
        deadlines: Deadlines = Deadlines(), gates: Gates | None = None,
    ) -> None:
        self.url = self.normalize_url(url)
        #: Where the owners' own programs reach the server: ``url``'s address, unless they
        #: reach it elsewhere (the embedded PostgreSQL: dbwrapper on its socket, trainees on TCP).
        self.client_url = self.normalize_url(client_url) if client_url is not None else self.url
        #: How many connections each login made here may hold at once.
        self.login_connection_limit = login_connection_limit
        self.deadlines = deadlines
        self.gate = (gates or Gates()).gate(self.url, self.server)
        self._admin = create_engine(
            self.admin_url(self.url), deadlines, autocommit=True, connect_args=self.session_options()
        )
        self.tune_admin_engine(self._admin)
        self._sizes = SizeCache()
        self._listing: tuple[float, list[DatabaseInfo]] | None = None
        self.marker = MARKER

    def belong_to(self, instance_id: str) -> None:
        """Mark databases as this registry's: ``created by dbwrapper <instance id>``."""
        if not INSTANCE_ID.fullmatch(instance_id):
            raise ValueError(f"not an instance id: {instance_id!r}")
        self.marker = f"{MARKER} {instance_id}"
        self._listing = None

    # -- URLs and engines ---------------------------------------------------

    @classmethod
    def normalize_url(cls, url: str | URL) -> URL:
        """Parse ``url`` and check that it is meant for this engine."""
        try:
            parsed = make_url(url)
        except ArgumentError as error:
            raise InvalidInput(f"{env_var(cls.kind)}: {error}") from error
        if parsed.get_backend_name() not in cls.dialects:
            raise InvalidInput(
                f"The {cls.kind} backend needs a {cls.label} URL, "
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
        return f"{self.label} server ({self.kind} backend, {self.where})"

    def database_url(self, name: str, login: Login | None = None) -> URL:
        """The URL of database ``name`` on this server: with ``login``, or the super-user's credentials."""
        url = self.url.set(database=validate_name(name))
        return url.set(username=login.name, password=login.password) if login else url

    def client_database_url(self, name: str, login: Login) -> URL:
        """The URL the owner's own programs open database ``name`` with, as ``login``."""
        url = self.client_url.set(database=validate_name(name))
        return url.set(username=login.name, password=login.password)

    @abstractmethod
    def client_command(self, name: str, login: Login | None = None) -> str:
        """The command line of this engine's own client that opens database ``name``.

        It never carries the password: the client asks for it.
        """

    def dispose(self) -> None:
        """Close every pooled connection; called when the service stops."""
        self._admin.dispose()

    def quote(self, name: str) -> str:
        """``name`` validated, then quoted by this dialect's identifier preparer."""
        return self._admin.dialect.identifier_preparer.quote_identifier(validate_name(name))

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
                raise self._unavailable(error) from error
            with connection:
                try:
                    yield connection
                except DBAPIError as error:
                    if error.connection_invalidated or self.is_disconnect(error):
                        raise self._unavailable(error) from error
                    raise

    # -- the workflows --------------------------------------------------------

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
            self._listing = None  # whatever happened, the next listing asks the server

    def _create_database(self, name: str, login: Login | None, managed: bool, source: Source | None) -> bool:
        quoted = self.quote(name)
        deadline = time.monotonic() + BUSY_RETRY_SECONDS
        delay = 0.1
        while True:
            try:
                # A clone copies the source's data on the server: the long deadline.
                with long_deadline() if source is not None else nullcontext(), self.admin_connection() as connection:
                    self.create(connection, quoted, managed, source)
                break
            except DBAPIError as error:
                if self.is_duplicate(error):
                    return False
                if not self.is_busy(error):
                    raise self._refused(f"create {name}", error) from error
                if time.monotonic() + delay > deadline:
                    raise DatabaseBusy(
                        f"{self.label} could not create {name}: {self.server_message(error)} "
                        "Another session is connected to the database it is copied from; "
                        "close it and try again."
                    ) from error
                time.sleep(delay)
                delay *= 2
        made_login = False
        action = f"make the login for {name}"
        try:
            with self.admin_connection() as connection:
                self.protect(connection)
                if login is not None:
                    self.create_login(connection, login)
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
                with self.admin_connection() as connection:
                    self.grant(connection, login, name, quoted)
        except (DBAPIError, DbWrapperError) as error:
            self._undo_create(name, quoted, login.name if made_login and login else None)
            if isinstance(error, DBAPIError):
                raise self._refused(action, error) from error
            raise
        return True

    def _undo_create(self, name: str, quoted: str, login: str | None) -> None:
        """Drop what a failed create made; best effort, as the server may be the problem."""
        try:
            with self.admin_connection() as connection:
                self.drop(connection, name, quoted)
                if login is not None:
                    self.drop_login(connection, login)
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
            self._listing = None  # whatever happened, the next listing asks the server

    def _drop_database(self, name: str, login: str | None, registered: bool) -> bool:
        quoted = self.quote(name)
        try:
            with self.admin_connection() as connection:
                entry = self.lookup(connection, name)
                if entry is None:
                    if login is not None:
                        self.drop_login(connection, login)
                    return False
                if entry.managed is False and not registered:
                    raise Refused(
                        f"{name} exists on {self.label} but was not created by dbwrapper, so it "
                        "is left alone. Drop it with the server's own tools if you mean to."
                    )
                self.drop(connection, name, quoted)
                if login is not None:
                    self.drop_login(connection, login)
        except DBAPIError as error:
            if self.is_busy(error):
                raise DatabaseBusy(
                    f"{self.label} could not drop {name}: {self.server_message(error)} "
                    "Another session is holding it; try again in a moment."
                ) from error
            raise self._refused(f"drop {name}", error) from error
        return True

    def hand_over(self, spare: Source, name: str, login: Login) -> bool:
        """Give the ready copy ``spare`` (a warm pool's spare) to ``login`` as database ``name``.

        ``False`` if ``name`` already exists; the spare is then left as it was.
        """
        validate_name(name)
        try:
            with self._translated(f"hand {spare.name} over as {name}"):
                return self.rename_spare(spare, name, login)
        finally:
            self._listing = None

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
        self.renew_password(login)
        with self.connected(one_off_engine(self.database_url(name, login), self.deadlines)) as connection:
            yield connection

    def renew_password(self, login: Login) -> None:
        """Give ``login`` the password the registry keeps for it again (and the service shows)."""
        with self._translated(f"set the password of {login.name}"), self.admin_connection() as connection:
            self.reset_login(connection, login)

    def take_snapshot(self, name: str, snapshot: str, owner: str) -> int:
        """Copy database ``name`` (content owned by ``owner``) as ``snapshot``, which its owner
        cannot reach. The sessions on it are ended first, so that the copy is of one moment
        (and because PostgreSQL clones a database only with nobody in it); returns how many."""
        with self._translated(f"snapshot {name}"):
            self.check_copyable(name)
            ended = self.end_sessions(name, owner)
        self.create_database(snapshot, source=Source(name, owner))
        return ended

    def revert_database(self, name: str, snapshot: str, before: str, owner: str) -> int:
        """Give ``name`` (content owned by ``owner``) the content of ``snapshot`` again.

        What it holds is first set aside as the new database ``before``, moved
        rather than copied; if copying the snapshot in then fails, it is put back.
        Meanwhile the owner's login is shut out (:meth:`shut_out`) and its sessions
        are ended; returns how many. Whatever happens, the login is let in again at
        the end, and after a crash by :meth:`put_back_database`.
        """
        try:
            with self._translated(f"revert {name}"):
                self.check_copyable(name)
                self.shut_out(owner)
                try:
                    ended = self.end_sessions(name, owner)
                    try:
                        self.set_aside(name, before, owner)
                        with long_deadline():
                            self.copy_back(snapshot, name, owner)
                    except (DBAPIError, DbWrapperError):
                        if self.exists(before):  # something was set aside: it goes back
                            self.put_back(name, before, owner)
                        raise
                finally:
                    self.let_in(owner)
                return ended
        finally:
            self._listing = None

    def put_back_database(self, name: str, before: str, owner: str) -> None:
        """Undo a revert a crash interrupted: ``name`` gets back what was set aside as ``before``,
        and its owner's login is let in again.

        Nothing to put back if the revert had not set anything aside yet; the
        login is let in all the same, as the revert may have shut it out already.
        """
        try:
            with self._translated(f"put {name} back as it was"):
                try:
                    if self.exists(before):
                        self.put_back(name, before, owner)
                finally:
                    self.let_in(owner)
        finally:
            self._listing = None

    @contextmanager
    def _translated(self, action: str) -> Iterator[None]:
        """The server's refusals as this service's errors: busy (409) or refused."""
        try:
            yield
        except DBAPIError as error:
            if self.is_busy(error):
                raise DatabaseBusy(
                    f"{self.label} could not {action}: {self.server_message(error)} "
                    "A session is still using it; try again in a moment."
                ) from error
            raise self._refused(action, error) from error

    def exists(self, name: str) -> bool:
        with self.admin_connection() as connection:
            return self.lookup(connection, name) is not None

    def database_size(self, name: str) -> int | None:
        """Database ``name``'s size in bytes, measured now."""
        with self.admin_connection() as connection:
            return self.sizes(connection, {name}).get(name)

    def adopt_database(self, name: str, login: Login) -> None:
        """Give an existing database its own ``login`` (made, or its password reset)."""
        try:
            with self.admin_connection() as connection:
                self.protect(connection)
                self.reset_login(connection, login)
                self.grant(connection, login, name, self.quote(name))
        except DBAPIError as error:
            raise self._refused(f"give {name} a login", error) from error

    def recreate_database(self, name: str, login: str) -> None:
        """Replace ``name`` by an empty database owned by the same ``login`` (for a restore over it)."""
        self.drop_database(name, registered=True)
        self.create_database(name)
        try:
            with self.admin_connection() as connection:
                self.grant(connection, Login(login, ""), name, self.quote(name))
        except DBAPIError as error:
            raise self._refused(f"give {name} back to {login}", error) from error

    def server_version(self) -> str:
        """The server's version, as the dialect reads it, for an archive's manifest."""
        with self.admin_connection() as connection:
            return ".".join(str(part) for part in connection.dialect.server_version_info or ())

    def list_databases(self, *, fresh: bool = False) -> list[DatabaseInfo]:
        """Every database on the server, by name, with size and whether we created it.

        ``fresh`` asks the server even if a listing of the last second could be reused.
        """
        cached = self._listing
        if not fresh and cached is not None and time.monotonic() - cached[0] < LISTING_CACHE_SECONDS:
            return cached[1]
        try:
            with self.admin_connection() as connection:
                entries = self.databases(connection)
                sizes = self._sizes.get({e.name for e in entries}, partial(self.sizes, connection))
        except DBAPIError as error:
            raise self._refused("list databases", error) from error
        infos = [DatabaseInfo(e.name, sizes.get(e.name), e.managed) for e in entries]
        self._listing = (time.monotonic(), infos)
        return infos

    def table_counts(self, name: str, login: Login) -> dict[str, int]:
        """Rows per table of database ``name``, counted as its own ``login`` (a restore's check
        against its manifest)."""
        with self._translated(f"count the rows of {name}"), self.as_owner(name, login) as connection:
            return self.count_rows(connection)

    def count_rows(self, connection: Connection) -> dict[str, int]:
        """Rows per table of the connected database (in its transaction's snapshot, if it has one)."""
        with long_deadline():  # counting reads every row
            return {
                table: connection.execute(text(self.count_statement(connection, table))).scalar_one()
                for table in self.tables(connection)
            }

    def load_sql(self, client_tool: str, name: str, login: Login, sql: str) -> None:
        """Run ``sql`` (a course's) in database ``name`` as ``login``, so that it owns what the
        SQL makes, with the client's own commands disabled (:meth:`script`)."""
        run_tool(self.script_command(client_tool, name, login), self.tool_env(login),
                 feed=self.script(sql.encode().splitlines(keepends=True)), timeout=self.deadlines.long)

    # -- the quirks each engine implements ------------------------------------

    #: The engine's dump tool, its own client (which runs SQL scripts), and the archive file's suffix.
    dump_tool: ClassVar[str]
    client_tool: ClassVar[str]
    archive_suffix: ClassVar[str]
    #: The tools a restore runs, the dump tool's counterpart among them.
    restore_tools: ClassVar[tuple[str, ...]]

    @abstractmethod
    def tables(self, connection: Connection) -> list[str]:
        """The base tables of the connected database (names come from the catalog)."""

    @abstractmethod
    def count_statement(self, connection: Connection, table: str) -> str:
        """``SELECT count(*)`` of ``table`` (a catalog name), every name in it qualified."""

    @abstractmethod
    def tool_env(self, login: Login | None = None) -> dict[str, str]:
        """What the engine's tools need in their environment to connect as ``login`` (the
        super-user's by default): where to connect and, never on a command line, the password."""

    @abstractmethod
    def dump_command(self, tool: str, name: str, path: str, login: Login) -> list[str]:
        """The dump tool's arguments to dump database ``name`` into ``path`` as its own ``login``."""

    @abstractmethod
    def sql_dump_command(self, tool: str, name: str, login: Login) -> list[str]:
        """The dump tool's arguments to print database ``name`` as SQL text, read as its own
        ``login``, that another login can load elsewhere (no owners, no privileges), for a
        course made from it."""

    @abstractmethod
    def script_command(self, tool: str, name: str, login: Login) -> list[str]:
        """The client's arguments to run a SQL script from its standard input in database
        ``name`` as ``login``, stopping at the first error (see :meth:`script`)."""

    @abstractmethod
    def script(self, lines: Iterable[bytes]) -> Iterator[bytes]:
        """``lines`` of SQL (a course's, or a restore's), as :meth:`script_command`'s client is
        to read them: as SQL only, its own commands (a shell, files) never obeyed."""

    @abstractmethod
    def dump(self, tool: str, name: str, path: str, login: Login) -> dict[str, int | None]:
        """Dump database ``name`` to ``path`` with the engine's dump ``tool``, as its own ``login``.

        Returns the tables the dump must hold, each with its rows if the engine
        counted them in the dump's own snapshot, or ``None`` if they are counted
        in the file instead (:meth:`scan_archive`). Either way a manifest counts
        the rows its archive holds, even while the database's owner is at work.
        """

    @abstractmethod
    def restore(self, tools: dict[str, str], name: str, login: Login, path: str) -> None:
        """Restore archive ``path`` into the empty database ``name`` as its own ``login``, which
        then owns every object; ``tools`` are the paths of :attr:`restore_tools`."""

    def scan_archive(self, tools: dict[str, str], path: str) -> tuple[str, dict[str, int | None]]:
        """An archive file's SHA-256, and its tables (see :meth:`archive_tables`), read from the file.

        Both go through the whole file. The checksum is taken on a thread of its
        own, with the GIL released, while the engine reads the tables: a scan
        costs about the longer of the two, not their sum, and it is what an
        archive adds to the bare dump tool's time.
        """
        with ThreadPoolExecutor(max_workers=1) as hashing:
            digest = hashing.submit(sha256_of, path)
            tables = self.archive_tables(tools, path)
            return digest.result(), tables

    @abstractmethod
    def archive_tables(self, tools: dict[str, str], path: str) -> dict[str, int | None]:
        """The tables an archive file holds, each with its rows if the format tells them
        without restoring it (else ``None``)."""

    def tune_admin_engine(self, engine: Engine) -> None:
        """Adjust the AUTOCOMMIT admin engine to this driver; nothing by default."""

    def cautions(self) -> list[str]:
        """How this server's own settings break a promise of dbwrapper's, which only its
        administrator can change: said at every start, as a sentence each. None by default,
        nor when the server cannot be asked."""
        return []

    def session_options(self) -> dict[str, str]:
        """Driver connection arguments every super-user session starts with; none by default."""
        return {}

    @abstractmethod
    def create(self, connection: Connection, quoted: str, managed: bool, source: Source | None) -> None:
        """Run this engine's ``CREATE DATABASE`` for an already quoted name, marked as ours if
        ``managed``; an engine that can clone on the server does so here from ``source``."""

    @abstractmethod
    def copy_content(self, source: Source, name: str, owner: str) -> None:
        """Finish making ``name`` a copy of ``source`` whose content login ``owner`` owns
        (after :meth:`create`)."""

    @abstractmethod
    def can_copy(self, source: str) -> bool:
        """Whether :meth:`copy_content` copies everything database ``source`` holds."""

    @abstractmethod
    def rename_spare(self, spare: Source, name: str, login: Login) -> bool:
        """Make the ready copy ``spare`` into database ``name`` owned by ``login``, in time that
        does not grow with its size; ``False``, with ``spare`` untouched, if ``name`` exists."""

    @abstractmethod
    def end_sessions(self, name: str, login: str) -> int:
        """End the sessions on database ``name`` and of its owner ``login``; how many were ended."""

    @abstractmethod
    def set_aside(self, name: str, before: str, owner: str) -> None:
        """Move what ``name`` holds into the new database ``before``, in time that does not
        grow with its size; ``name`` then is empty, or gone."""

    @abstractmethod
    def copy_back(self, snapshot: str, name: str, owner: str) -> None:
        """Make ``name`` (emptied or gone) a copy of ``snapshot``, its content ``owner``'s."""

    @abstractmethod
    def put_back(self, name: str, before: str, owner: str) -> None:
        """Give ``name`` back what was set aside as ``before``, whatever the revert had copied
        in meanwhile, and remove ``before``."""

    def check_copyable(self, name: str) -> None:
        """Refuse, before anything changes, a database that could not be copied whole; on
        PostgreSQL, which clones a database's files, there is none (and a view cannot break:
        what it reads cannot be dropped from under it)."""

    def shut_out(self, login: str) -> None:
        """Keep ``login`` from opening its database until :meth:`let_in`, while the super-user
        copies into it (a revert); its open sessions are ended after. Nothing by default: a
        PostgreSQL revert makes a new database, which the super-user never enters."""

    def let_in(self, login: str) -> None:
        """Let ``login`` open its database again after :meth:`shut_out`; harmless if it was not
        shut out."""

    def seal(self, name: str) -> None:
        """Keep a master's content owner from changing it once loaded; nothing by default."""

    def protect(self, connection: Connection) -> None:
        """Close what a new login could reach beyond its own database; nothing by default."""

    @abstractmethod
    def create_login(self, connection: Connection, login: Login) -> None:
        """Make ``login`` on the server (its password is a bound parameter)."""

    @abstractmethod
    def reset_login(self, connection: Connection, login: Login) -> None:
        """Make ``login``, or give the existing one ``login.password``."""

    @abstractmethod
    def grant(self, connection: Connection, login: Login, name: str, quoted: str) -> None:
        """Give ``login`` database ``name``, and nothing else."""

    @abstractmethod
    def drop_login(self, connection: Connection, login: str) -> None:
        """End ``login``'s sessions and remove it from the server, if it is there."""

    @abstractmethod
    def drop(self, connection: Connection, name: str, quoted: str) -> None:
        """End the sessions on ``name`` and drop it."""

    @abstractmethod
    def lookup(self, connection: Connection, name: str) -> DatabaseEntry | None:
        """Database ``name`` from the catalog, or ``None`` (a bound-parameter query)."""

    @abstractmethod
    def databases(self, connection: Connection) -> list[DatabaseEntry]:
        """Every database from the catalog, ordered by name; cheap, run on every listing."""

    @abstractmethod
    def sizes(self, connection: Connection, names: set[str]) -> dict[str, int | None]:
        """Size in bytes of each database in ``names``; costly, so :class:`SizeCache` reuses it."""

    @abstractmethod
    def error_code(self, error: DBAPIError) -> Any:
        """The driver's error code (SQLSTATE or errno) of ``error``."""

    @abstractmethod
    def is_duplicate(self, error: DBAPIError) -> bool:
        """Whether ``error`` says the database already exists."""

    def is_busy(self, error: DBAPIError) -> bool:
        """Whether ``error`` says another session holds what we need; worth retrying."""
        return False

    def is_disconnect(self, error: DBAPIError) -> bool:
        """Whether ``error`` means the server went away mid-statement."""
        return self._admin.dialect.is_disconnect(error.orig, None, None)  # type: ignore[arg-type]

    # -- messages ------------------------------------------------------------------

    @staticmethod
    def server_message(error: DBAPIError) -> str:
        """The first line of what the server said, without SQLAlchemy's decoration."""
        text = str(error.orig).strip()
        line = text.splitlines()[0] if text else type(error.orig).__name__
        return line.rstrip(".") + "."

    def login_taken(self, login: str) -> Refused:
        """The refusal to make ``login`` where the server has one of that name already: it is
        someone else's, and never taken over."""
        return Refused(
            f"A {self.login_kind} named {login} exists already on the {self.server}, and the new "
            "database's login would be named so too, and take it over. Choose another name; nothing was made."
        )

    def _unavailable(self, error: DBAPIError) -> BackendUnavailable:
        if (seconds := missed_deadline(error.orig)) is not None:
            return self.gate.missed(seconds)
        return BackendUnavailable(
            f"The {self.server} cannot be reached: "
            f"{self.server_message(error)} Check that the server is running and that "
            f"{env_var(self.kind)} or {self.kind}_url in app.conf points at it; "
            "the service uses it again as soon as it answers."
        )

    def _refused(self, action: str, error: DBAPIError) -> DbWrapperError:
        return DbWrapperError(f"{self.label} refused to {action}: {self.server_message(error)}")


class SizeCache:
    """The last sizes a backend measured, reused for :data:`SIZE_CACHE_SECONDS`.

    A listing that shows a database the last measurement did not see (one just
    created) measures that one at once, so a new database never shows without
    a size, and the rest are not measured again for it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._measured_at = float("-inf")
        self._sizes: dict[str, int | None] = {}

    def get(
        self, names: set[str], measure: Callable[[set[str]], dict[str, int | None]]
    ) -> dict[str, int | None]:
        with self._lock:
            fresh = time.monotonic() - self._measured_at < SIZE_CACHE_SECONDS
            sizes, missing = self._sizes, names - self._sizes.keys()
        if fresh and not missing:
            return sizes
        if fresh:
            sizes = {**sizes, **measure(missing)}
            with self._lock:
                self._sizes = sizes
            return sizes
        sizes = measure(names)
        with self._lock:
            self._sizes, self._measured_at = sizes, time.monotonic()
        return sizes
