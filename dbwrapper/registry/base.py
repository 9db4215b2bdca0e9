"""The registry's connection: one engine, sessions in one transaction each, migrations on
start, a short-lived cache of the reads every request makes, and the control database's
failures as 503s that name it. The records themselves are read and written by the classes
:class:`~dbwrapper.registry.store.Registry` is made of, one module per kind of record."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, select, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from dbwrapper.db import Deadlines, create_engine, missed_deadline, with_driver
from dbwrapper.errors import BackendUnavailable
from dbwrapper.gates import Gates
from dbwrapper.registry.models import Instance

T = TypeVar("T")

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"

#: How long a read of users or databases is reused. Every request reads its
#: user, and every listing the owners; without reuse those round trips were
#: most of a list page's time. This process's own writes clear it at once, so
#: only another process's change (the command line) can show this late.
READ_CACHE_SECONDS = 2.0


def as_utc(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every time here is UTC."""
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


class Store:
    """The control database's engine, sessions and read cache, for the record classes."""

    def __init__(
        self, url: str | URL, deadlines: Deadlines = Deadlines(), gates: Gates | None = None, *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = with_driver(make_url(url))
        self.where = self.url.render_as_string(hide_password=True)
        # Its server's gate, which it shares with a backend on the same server.
        self.gate = (gates or Gates()).gate(self.url, f"control database ({self.where})")
        self.engine: Engine = create_engine(self.url, deadlines)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        #: What the read cache measures its age with; a test may pass a clock it moves itself.
        self.clock = clock
        self._cache: dict[tuple[Hashable, ...], tuple[float, Any]] = {}
        self._cache_lock = threading.Lock()

    def refresh(self) -> None:
        """Forget every cached read, so the next ones see other processes' changes."""
        with self._cache_lock:
            self._cache.clear()

    def _cached(self, key: tuple[Hashable, ...], load: Callable[[], T]) -> T:
        now = self.clock()
        with self._cache_lock:
            found = self._cache.get(key)
        if found is not None and now - found[0] < READ_CACHE_SECONDS:
            return found[1]
        value = load()
        with self._cache_lock:
            self._cache[key] = (now, value)
        return value

    def upgrade(self) -> None:
        """Bring the schema to the latest migration; safe to run on every start."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self._unavailable_as_503(), self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _unavailable_as_503(self) -> Iterator[None]:
        """Work on the control database past its gate; a database that cannot be used, or
        missed a deadline, is a 503 that names it."""
        with self.gate.entered():
            try:
                yield
            except DBAPIError as error:
                if isinstance(error, IntegrityError):
                    raise
                if (seconds := missed_deadline(error.orig)) is not None:
                    raise self.gate.missed(seconds) from error
                raise BackendUnavailable(
                    f"The control database ({self.where}) cannot be used: "
                    f"{str(error.orig).strip().splitlines()[0]}"
                ) from error

    @contextmanager
    def session(self, *, durable: bool = True) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error.

        A transaction that need not be ``durable`` (a console run's history row) is, on
        PostgreSQL, committed without waiting for its write to reach the disk: a crash
        may lose it, never corrupt anything, and the request does not wait on an fsync.
        """
        with self._unavailable_as_503(), self._sessions.begin() as session:
            if not durable and self.engine.dialect.name == "postgresql":
                session.execute(text("SET LOCAL synchronous_commit TO OFF"))
            yield session

    def instance_id(self) -> str:
        """This registry's id (made by its first migration)."""
        with self.session() as session:
            return session.scalar(select(Instance.uuid).where(Instance.id == 1)) or ""
