"""One class per database engine; :func:`open_backend` picks the right one."""

from sqlalchemy.engine import URL

from dbwrapper.backends.base import Backend, DatabaseEntry, DatabaseInfo
from dbwrapper.backends.mysql import MySQLBackend
from dbwrapper.backends.postgresql import PostgreSQLBackend
from dbwrapper.db import Deadlines
from dbwrapper.gates import Gates

BACKEND_CLASSES: dict[str, type[Backend]] = {
    cls.kind: cls for cls in (PostgreSQLBackend, MySQLBackend)
}


def open_backend(kind: str, url: str | URL, deadlines: Deadlines, gates: Gates) -> Backend:
    """The backend of ``kind`` (``postgres`` or ``mysql``) for the server at ``url``."""
    return BACKEND_CLASSES[kind](url, deadlines, gates)


__all__ = ["Backend", "DatabaseEntry", "DatabaseInfo", "MySQLBackend", "PostgreSQLBackend", "open_backend"]
