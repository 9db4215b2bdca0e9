"""MySQL's and MariaDB's error numbers, and what they mean to dbwrapper."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import DBAPIError

from dbwrapper.backends.base.errors import DatabaseErrors
from dbwrapper.backends.mysql.objects import errno

ER_DB_CREATE_EXISTS = 1007
ER_LOCK_WAIT_TIMEOUT = 1205
ER_NO_SUCH_THREAD = 1094
#: What index hints on a view get: it has no indexes, not even none.
ER_KEY_DOES_NOT_EXIST = 1176
#: "Operation CREATE USER failed": one of the accounts exists already.
ER_CANNOT_USER = 1396


class MySQLErrors(DatabaseErrors):
    """PyMySQL's errors, by errno."""

    def error_code(self, error: DBAPIError) -> Any:
        return errno(error)

    def is_duplicate(self, error: DBAPIError) -> bool:
        return self.error_code(error) == ER_DB_CREATE_EXISTS

    def is_busy(self, error: DBAPIError) -> bool:
        return self.error_code(error) == ER_LOCK_WAIT_TIMEOUT
