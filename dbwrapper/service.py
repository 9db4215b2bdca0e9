"""What the service does, with no HTTP in it.

The web controllers, the command line and (later) a JSON API call these
functions and only render what they return. Every function validates its
input before any SQL runs, and raises only :mod:`dbwrapper.errors`.
"""

from __future__ import annotations

from dataclasses import dataclass

from dbwrapper.backends import Backend, DatabaseInfo
from dbwrapper.config import Settings
from dbwrapper.engines import Engines
from dbwrapper.errors import Refused
from dbwrapper.names import render_name, validate_name


@dataclass(frozen=True)
class Listing:
    """A server's databases, as the list page and ``dbwrapper list`` show them."""

    backend: Backend
    databases: list[DatabaseInfo]


@dataclass(frozen=True)
class Outcome:
    """What a create or destroy did, and the server's databases afterwards."""

    name: str
    #: ``True`` if the call changed something; ``False`` if there was nothing to do.
    changed: bool
    #: One sentence saying what happened, the same on a page and on the command line.
    summary: str
    listing: Listing

    @property
    def backend(self) -> Backend:
        return self.listing.backend


class DatabaseService:
    """Create, list and destroy per-user databases on the configured backends."""

    def __init__(self, engines: Engines) -> None:
        self.engines = engines

    @property
    def settings(self) -> Settings:
        return self.engines.settings

    def backends(self) -> list[Backend]:
        """The configured backends, in a stable order."""
        return [self.engines.backend(kind) for kind in self.engines.kinds]

    def default_name(self) -> str:
        """The caller's database name, from the configured template (``cwcuser_7001``)."""
        return render_name(self.settings.name_template, port=self.settings.port)

    def resolve(self, db_type: object, name: str | None) -> tuple[Backend, str]:
        """The backend of ``db_type`` and a valid name (the caller's when ``None``), or a 400."""
        name = self.default_name() if name is None else validate_name(name)
        return self.engines.backend(db_type), name

    def list(self, db_type: object) -> Listing:
        """The databases on the server of ``db_type``."""
        backend = self.engines.backend(db_type)
        return Listing(backend, backend.list_databases())

    def create(self, db_type: object, name: str | None = None) -> Outcome:
        """Create the database unless it exists; asking twice changes nothing."""
        backend, name = self.resolve(db_type, name)
        if backend.create_database(name):
            summary = f"Created {name} on {backend.label}."
            return Outcome(name, True, summary, self.list(db_type))
        summary = f"{name} already exists on {backend.label}; nothing was changed."
        return Outcome(name, False, summary, self.list(db_type))

    def destroy(self, db_type: object, name: str | None = None) -> Outcome:
        """Drop a database this service created, ending the sessions still on it.

        The server's own databases are refused here, and databases the server
        says this service did not create are refused by the backend: a typo
        must never drop someone's data.
        """
        backend, name = self.resolve(db_type, name)
        if name in backend.system_databases:
            raise Refused(f"{name} belongs to the {backend.label} server itself; it is never dropped.")
        if backend.drop_database(name):
            summary = f"Dropped {name} from {backend.label}."
            return Outcome(name, True, summary, self.list(db_type))
        summary = f"{name} does not exist on {backend.label}; nothing was changed."
        return Outcome(name, False, summary, self.list(db_type))
