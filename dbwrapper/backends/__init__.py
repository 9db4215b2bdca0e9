"""One package per database engine, each split into small parts; :func:`open_backend` picks one.

Like Django's ``django/db/backends/<engine>/``: :mod:`.base` holds the
workflows and declares the hooks; :mod:`.postgresql` and :mod:`.mysql`
implement them, one module per part (``creation``, ``logins``, ``catalog``,
``client``, ``errors``), composed by each engine's :class:`Backend`.
"""

from sqlalchemy.engine import URL

from dbwrapper.backends.base import Backend, DatabaseEntry, DatabaseInfo
from dbwrapper.backends.mysql import MySQLBackend
from dbwrapper.backends.postgresql import PostgreSQLBackend
from dbwrapper.db import Deadlines
from dbwrapper.gates import Gates

BACKEND_CLASSES: dict[str, type[Backend]] = {
    cls.db_type: cls for cls in (PostgreSQLBackend, MySQLBackend)
}


def open_backend(
    db_type: str, url: str | URL, client_url: str | URL | None = None, *, login_connection_limit: int,
    deadlines: Deadlines, gates: Gates,
) -> Backend:
    """The backend of ``db_type`` (``postgres`` or ``mysql``) for the server at ``url``, which
    the owners' own programs reach at ``client_url`` (by default, ``url`` too), whose logins
    may each hold ``login_connection_limit`` connections, and whose calls keep ``deadlines``
    past the server's gate in ``gates``."""
    return BACKEND_CLASSES[db_type](
        url, client_url, login_connection_limit=login_connection_limit, deadlines=deadlines, gates=gates
    )


__all__ = ["Backend", "DatabaseEntry", "DatabaseInfo", "MySQLBackend", "PostgreSQLBackend", "open_backend"]
