"""The process-wide set of backends and their SQLAlchemy engines.

SQLAlchemy's advice is one engine per database URL, held for the life of the
process. :class:`Engines` is that holder: it opens one :class:`Backend` per
configured server when the service starts (starting the embedded PostgreSQL
if no PostgreSQL server is configured) and disposes of them all when it stops.
The web layer ties :meth:`start` and :meth:`stop` to the CherryPy engine; the
command line calls them around one command.
"""

from __future__ import annotations

from pathlib import Path

from dbwrapper.backends import BACKEND_CLASSES, Backend, open_backend
from dbwrapper.config import BACKEND_KINDS, Settings
from dbwrapper.embedded import EmbeddedPostgres
from dbwrapper.errors import UnknownBackend


class Engines:
    """Every configured backend, by ``db_type``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._backends: dict[str, Backend] = {}
        self._embedded: EmbeddedPostgres | None = None

    def start(self) -> None:
        """Open a backend for every configured server; idempotent."""
        if self._backends:
            return
        urls = dict(self.settings.backend_urls)
        # Parse every URL before starting anything, so a typo fails fast.
        for kind, url in urls.items():
            BACKEND_CLASSES[kind].normalize_url(url)
        if "postgres" not in urls and self.settings.embedded:
            self._embedded = EmbeddedPostgres(self.settings.embedded_dir)
            urls["postgres"] = self._embedded.start()
        self._backends = {
            kind: open_backend(kind, urls[kind]) for kind in BACKEND_KINDS if kind in urls
        }

    def stop(self) -> None:
        """Close every pooled connection and let go of the embedded server."""
        backends, self._backends = self._backends, {}
        for backend in backends.values():
            backend.dispose()
        if self._embedded is not None:
            self._embedded.stop()
            self._embedded = None

    @property
    def kinds(self) -> list[str]:
        """The ``db_type`` values this process offers."""
        return list(self._backends)

    @property
    def embedded_dir(self) -> Path | None:
        """The embedded PostgreSQL's data directory, when PostgreSQL is the embedded server."""
        return self._embedded.data_dir if self._embedded else None

    def backend(self, db_type: object) -> Backend:
        """The backend for ``db_type``; a clear 400 for anything else."""
        if not isinstance(db_type, str) or db_type not in self._backends:
            raise UnknownBackend(db_type, self.kinds)
        return self._backends[db_type]
