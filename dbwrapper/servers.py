"""The database servers of one process: a backend per configured server, and the registry.

SQLAlchemy's advice is one engine per database URL, held for the life of the
process. :class:`Servers` is that holder: it opens one :class:`Backend` per
configured server when the service starts (starting the embedded PostgreSQL
if no PostgreSQL server is configured), opens the registry in its control
database (migrating it to the latest schema), and disposes of them all when
it stops. They all keep the same deadlines, and each server has one gate
(:mod:`dbwrapper.gates`), shared by a backend and the registry on one server.
The web layer ties :meth:`start` and :meth:`stop` to the CherryPy engine; the
command line calls them around one command.
"""

from __future__ import annotations

from sqlalchemy.engine import URL

from dbwrapper.backends import BACKEND_CLASSES, Backend, open_backend
from dbwrapper.config import CONTROL_DATABASE, DB_TYPES, Settings
from dbwrapper.db import Deadlines
from dbwrapper.embedded import EmbeddedPostgres
from dbwrapper.errors import InvalidInput, UnknownBackend
from dbwrapper.gates import Gates
from dbwrapper.registry import Registry


class Servers:
    """Every configured backend, by ``db_type``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.deadlines = Deadlines(settings.short_deadline_seconds, settings.long_deadline_seconds)
        self.gates = Gates(settings.requests_per_server)
        self._backends: dict[str, Backend] = {}
        self._embedded: EmbeddedPostgres | None = None
        self._registry: Registry | None = None

    def start(self) -> None:
        """Open a backend for every configured server; idempotent."""
        if self._backends:
            return
        urls: dict[str, str | URL] = dict(self.settings.backend_urls)
        # Parse every URL before starting anything, so a typo fails fast.
        for db_type, url in urls.items():
            BACKEND_CLASSES[db_type].normalize_url(url)
        client_urls: dict[str, URL] = {}
        if "postgres" not in urls and self.settings.embedded:
            # It listens beyond this machine when the service does, for trainees' own machines.
            self._embedded = EmbeddedPostgres(
                self.settings.embedded_dir, host=self.settings.host, port=self.settings.embedded_port
            )
            self._embedded.start()
            urls["postgres"], client_urls["postgres"] = self._embedded.url, self._embedded.client_url
        limit = self.settings.login_connection_limit
        self._backends = {
            db_type: open_backend(
                db_type, urls[db_type], client_urls.get(db_type), login_connection_limit=limit,
                deadlines=self.deadlines, gates=self.gates,
            )
            for db_type in DB_TYPES if db_type in urls
        }
        self._registry = Registry(self._control_url(), self.deadlines, self.gates)
        self._registry.upgrade()
        instance_id = self._registry.instance_id()
        for backend in self._backends.values():
            backend.belong_to(instance_id)

    def _control_url(self) -> str:
        """The registry's URL: configured, or database ``dbwrapper`` on the PostgreSQL backend."""
        if self.settings.control_url:
            return self.settings.control_url
        if "postgres" not in self._backends:
            raise InvalidInput(
                "The registry needs a control database: configure a PostgreSQL backend "
                "or control_url (DBWRAPPER_CONTROL_URL)."
            )
        postgres = self._backends["postgres"]
        # Not marked as dbwrapper's, so that no page can destroy it; closed to PUBLIC.
        postgres.create_database(CONTROL_DATABASE, managed=False)
        return postgres.url.set(database=CONTROL_DATABASE).render_as_string(hide_password=False)

    @property
    def registry(self) -> Registry:
        """The registry; only after :meth:`start`."""
        assert self._registry is not None, "Servers.start() has not run"
        return self._registry

    def stop(self) -> None:
        """Close every pooled connection and let go of the embedded server."""
        backends, self._backends = self._backends, {}
        for backend in backends.values():
            backend.dispose()
        if self._registry is not None:
            self._registry.dispose()
            self._registry = None
        if self._embedded is not None:
            self._embedded.stop()
            self._embedded = None

    @property
    def db_types(self) -> list[str]:
        """The ``db_type`` values this process offers."""
        return list(self._backends)

    @property
    def embedded(self) -> EmbeddedPostgres | None:
        """The embedded PostgreSQL, when PostgreSQL is the embedded server."""
        return self._embedded

    def backend(self, db_type: object) -> Backend:
        """The backend for ``db_type``; a clear 400 for anything else."""
        if not isinstance(db_type, str) or db_type not in self._backends:
            raise UnknownBackend(db_type, self.db_types)
        return self._backends[db_type]
