"""Reading a server's catalog: which databases exist, their sizes, their tables and rows.

Listings are what a class of thirty reloads all day, so both their costly part
(sizes) and the whole listing are reused for a moment, timed by an injectable
clock so that tests can move time rather than wait for it.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from sqlalchemy import Connection, text

from dbwrapper.backends.base.types import DatabaseEntry, DatabaseInfo, Login
from dbwrapper.db import long_deadline

if TYPE_CHECKING:
    from dbwrapper.backends.base.backend import Backend

#: How long listed sizes may be reused. Sizes are the costly part of a listing
#: (PostgreSQL stats every file of every database), and a class of thirty
#: reloading the list page must not make the server walk its whole disk each time.
SIZE_CACHE_SECONDS = 5.0

#: How long a whole listing may be reused. A class of thirty reloading the list
#: page then costs the server one catalog query a second, not thirty; this
#: backend's own creates and drops show at once.
LISTING_CACHE_SECONDS = 1.0

Clock = Callable[[], float]


class SizeCache:
    """The last sizes a backend measured, reused for :data:`SIZE_CACHE_SECONDS` of ``clock``.

    A listing that shows a database the last measurement did not see (one just
    created) measures that one at once, so a new database never shows without
    a size, and the rest are not measured again for it.
    """

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._measured_at = float("-inf")
        self._sizes: dict[str, int | None] = {}

    def get(
        self, names: set[str], measure: Callable[[set[str]], dict[str, int | None]]
    ) -> dict[str, int | None]:
        """The sizes of ``names``, measured with ``measure`` where the last ones are too old or lack a name."""
        with self._lock:
            fresh = self._clock() - self._measured_at < SIZE_CACHE_SECONDS
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
            self._sizes, self._measured_at = sizes, self._clock()
        return sizes


class BaseCatalog(ABC):
    """What one server's catalog says; each engine supplies the queries."""

    def __init__(self, backend: Backend, *, clock: Clock = time.monotonic) -> None:
        self.backend = backend
        self._clock = clock
        self._sizes = SizeCache(clock)
        self._listing: tuple[float, list[DatabaseInfo]] | None = None

    def list_databases(self, *, fresh: bool = False) -> list[DatabaseInfo]:
        """Every database on the server, by name, with size and whether we created it.

        ``fresh`` asks the server even if a listing of the last second could be reused.
        """
        cached = self._listing
        if not fresh and cached is not None and self._clock() - cached[0] < LISTING_CACHE_SECONDS:
            return cached[1]
        with self.backend.errors.translated("list databases"), self.backend.admin_connection() as connection:
            entries = self.databases(connection)
            sizes = self._sizes.get({e.name for e in entries}, partial(self.sizes, connection))
        infos = [DatabaseInfo(e.name, sizes.get(e.name), e.managed) for e in entries]
        self._listing = (self._clock(), infos)
        return infos

    def forget_listing(self) -> None:
        """The next listing asks the server: a database was made, dropped or renamed (or may have been)."""
        self._listing = None

    def exists(self, name: str) -> bool:
        """Whether database ``name`` is on the server now."""
        with self.backend.admin_connection() as connection:
            return self.lookup(connection, name) is not None

    def database_size(self, name: str) -> int | None:
        """Database ``name``'s size in bytes, measured now."""
        with self.backend.admin_connection() as connection:
            return self.sizes(connection, {name}).get(name)

    def server_version(self) -> str:
        """The server's version, as the dialect reads it, for an archive's manifest."""
        with self.backend.admin_connection() as connection:
            return ".".join(str(part) for part in connection.dialect.server_version_info or ())

    def server_major(self) -> int:
        """The server's major version (15 for 15.4), as the admin engine's dialect read it."""
        with self.backend.admin_connection() as connection:
            return int((connection.dialect.server_version_info or (0,))[0])

    def table_counts(self, name: str, login: Login) -> dict[str, int]:
        """Rows per table of database ``name``, counted as its own ``login`` (a restore's check
        against its manifest)."""
        backend = self.backend
        with backend.errors.translated(f"count the rows of {name}"), backend.as_owner(name, login) as connection:
            return self.count_rows(connection)

    def count_rows(self, connection: Connection) -> dict[str, int]:
        """Rows per table of the connected database (in its transaction's snapshot, if it has one)."""
        with long_deadline():  # counting reads every row
            return {
                table: connection.execute(text(self.count_statement(connection, table))).scalar_one()
                for table in self.tables(connection)
            }

    def lookup(self, connection: Connection, name: str) -> DatabaseEntry | None:
        """Database ``name`` from the catalog, or ``None``."""
        found = self.entries(connection, name)
        return found[0] if found else None

    def databases(self, connection: Connection) -> list[DatabaseEntry]:
        """Every database from the catalog, ordered by name; cheap, run on every listing."""
        return self.entries(connection, None)

    # -- the queries each engine implements ---------------------------------------

    @abstractmethod
    def entries(self, connection: Connection, name: str | None) -> list[DatabaseEntry]:
        """Database ``name`` from the catalog (a bound-parameter query), or with ``None`` every
        database a listing shows, ordered by name."""

    @abstractmethod
    def sizes(self, connection: Connection, names: set[str]) -> dict[str, int | None]:
        """Size in bytes of each database in ``names``; costly, so :class:`SizeCache` reuses it."""

    @abstractmethod
    def tables(self, connection: Connection) -> list[str]:
        """The base tables of the connected database (names come from the catalog)."""

    @abstractmethod
    def count_statement(self, connection: Connection, table: str) -> str:
        """``SELECT count(*)`` of ``table`` (a catalog name), every name in it qualified."""



