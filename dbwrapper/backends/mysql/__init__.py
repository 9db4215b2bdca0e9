"""MySQL and MariaDB: one small class per part (creation, logins, catalog, client, errors)."""

from dbwrapper.backends.mysql.backend import MySQLBackend

__all__ = ["MySQLBackend"]
