"""One class per database engine; :func:`open_backend` picks the right one."""

from sqlalchemy.engine import URL

from dbwrapper.backends.base import Backend, DatabaseEntry, DatabaseInfo
from dbwrapper.backends.mysql import MySQLBackend
from dbwrapper.backends.postgresql import PostgreSQLBackend

BACKEND_CLASSES: dict[str, type[Backend]] = {
    cls.kind: cls for cls in (PostgreSQLBackend, MySQLBackend)
}


def open_backend(
    kind: str, url: str | URL, client_url: str | URL | None = None, *, login_connection_limit: int,
) -> Backend:
    """The backend of ``kind`` (``postgres`` or ``mysql``) for the server at ``url``, which
    the owners' own programs reach at ``client_url`` (by default, ``url`` too), and whose
    logins may each hold ``login_connection_limit`` connections."""
    return BACKEND_CLASSES[kind](url, client_url, login_connection_limit=login_connection_limit)


__all__ = ["Backend", "DatabaseEntry", "DatabaseInfo", "MySQLBackend", "PostgreSQLBackend", "open_backend"]
