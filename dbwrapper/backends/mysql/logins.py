"""MySQL's logins: a user with a row per host it needs, granted exactly its database.

A login is a user with a row per host in mysql.user: '%', and 'localhost' and
every host an anonymous user has. The server tries the rows with the most
specific host first, so an anonymous ''@'localhost' (a default install may have
one) or ''@'127.0.0.1' would otherwise win over 'name'@'%' from there and refuse
the password. Each row gets the connection limit, which the server counts per
row: from any one place, one row applies.

A login's rows are the ones dbwrapper made, never another account of that user
name. It is made only where the name has no account on any host: otherwise it
would take that account over (its password, its grants, its DROP), so the new
database is refused. From then on its rows are those for the hosts it needs now,
and those that hold its database's grant: a row made for an anonymous user who
is gone since keeps it, as the trainee has no GRANT OPTION to revoke it. An
account of that user name someone makes later for any other host is neither:
it never gets the password, the grant or the lock, and is never dropped. (A
login is named like its database: the service names it so.)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from dbwrapper.backends.base.logins import BaseLogins
from dbwrapper.backends.base.types import Login
from dbwrapper.backends.mysql.errors import ER_CANNOT_USER, ER_NO_SUCH_THREAD
from dbwrapper.backends.mysql.objects import errno
from dbwrapper.names import validate_name


def end_sessions_where(connection: Connection, column: str, value: str) -> int:
    """KILL the sessions whose ``column`` (DB or USER, a constant) is ``value``; how many."""
    sessions = connection.execute(
        text(
            f"SELECT ID FROM information_schema.PROCESSLIST "
            f"WHERE {column} = :value AND ID <> CONNECTION_ID()"
        ),
        {"value": value},
    ).scalars()
    ended = 0
    for session_id in list(sessions):
        try:
            connection.execute(text("KILL :id"), {"id": int(session_id)})
            ended += 1
        except DBAPIError as error:
            if errno(error) != ER_NO_SUCH_THREAD:  # it ended by itself meanwhile
                raise
    return ended


def escaped(name: str) -> str:
    """``name`` as GRANT takes it, with its LIKE wildcards escaped (and as mysql.db keeps it)."""
    return validate_name(name).replace("_", "\\_")


def accounts(login: str, hosts: Iterable[str]) -> tuple[list[str], dict[str, str]]:
    """``login``'s accounts on ``hosts`` as bound ``user@host`` placeholders, and their values."""
    ordered = sorted(hosts)
    params = {"login": login, **{f"host{i}": host for i, host in enumerate(ordered)}}
    return [f":login@:host{i}" for i in range(len(ordered))], params


class MySQLLogins(BaseLogins):
    """Users with a row per host, granted exactly their database."""

    def create_login(self, connection: Connection, login: Login) -> None:
        errors = self.backend.errors
        if self._hosts(connection, login.name):
            raise errors.login_taken(login.name)
        made, params = accounts(login.name, self._needed_hosts(connection))
        try:
            connection.execute(
                text(f"CREATE USER {', '.join(f'{account} IDENTIFIED BY :password' for account in made)} "
                     "WITH MAX_USER_CONNECTIONS :limit"),
                {**params, "password": login.password, "limit": self.backend.login_connection_limit},
            )
        except DBAPIError as error:
            if errors.error_code(error) == ER_CANNOT_USER:  # made meanwhile, by someone else
                raise errors.login_taken(login.name) from error
            raise

    def reset_login(self, connection: Connection, login: Login) -> None:
        # A host that got an anonymous user since gets its row now, with the grant every
        # row of the login has.
        own = set(self._own_hosts(connection, login.name))
        new = self._needed_hosts(connection) - own
        params = {"password": login.password, "limit": self.backend.login_connection_limit}
        for host in sorted(new):
            connection.execute(text("CREATE USER IF NOT EXISTS :login@:host IDENTIFIED BY :password"),
                               {**params, "login": login.name, "host": host})
        every, named = accounts(login.name, own | new)
        connection.execute(
            text(f"ALTER USER {', '.join(f'{account} IDENTIFIED BY :password' for account in every)} "
                 "WITH MAX_USER_CONNECTIONS :limit"),
            {**params, **named},
        )
        if new:
            self._grant(connection, login.name, login.name, new)

    def grant(self, connection: Connection, login: str, name: str) -> None:
        self._grant(connection, login, name, self._own_hosts(connection, login))

    def _grant(self, connection: Connection, login: str, name: str, hosts: Iterable[str]) -> None:
        # In GRANT, _ and % in a database name are wildcards: alice_1 would also
        # match alicex1. Escaped, the grant covers exactly this database.
        granted, params = accounts(login, hosts)
        pattern = connection.dialect.identifier_preparer.quote_identifier(escaped(name))
        connection.execute(text(f"GRANT ALL PRIVILEGES ON {pattern}.* TO {', '.join(granted)}"), params)

    def grant_reading(self, connection: Connection, reader: str, name: str) -> None:
        granted, params = accounts(reader, self._own_hosts(connection, reader))
        pattern = connection.dialect.identifier_preparer.quote_identifier(escaped(name))
        connection.execute(text(f"GRANT SELECT, SHOW VIEW ON {pattern}.* TO {', '.join(granted)}"), params)

    def drop_login(self, connection: Connection, login: str) -> None:
        # Sessions outlive DROP USER and keep their privileges; end them first. Every
        # row of the login's goes, including those for anonymous users that are gone since.
        end_sessions_where(connection, "USER", login)
        dropped, params = accounts(login, self._own_hosts(connection, login))
        if dropped:
            connection.execute(text(f"DROP USER IF EXISTS {', '.join(dropped)}"), params)

    def lock_login(self, login: str) -> None:
        # A locked account cannot log in (MariaDB 10.4.2 and MySQL 5.7.6 on), while the
        # views, routines and triggers it defines keep working; its sessions are ended
        # next (BaseCreation.revert_database).
        self._set_account_lock(login, "LOCK")

    def unlock_login(self, login: str) -> None:
        self._set_account_lock(login, "UNLOCK")

    def _set_account_lock(self, login: str, how: Literal["LOCK", "UNLOCK"]) -> None:
        """ACCOUNT LOCK or UNLOCK (``how``, one of the two keywords) on every row of ``login``'s."""
        with self.backend.admin_connection() as connection:
            locked, params = accounts(login, self._own_hosts(connection, login))
            if locked:
                connection.execute(text(f"ALTER USER {', '.join(locked)} ACCOUNT {how}"), params)

    @staticmethod
    def _hosts(connection: Connection, user: str) -> list[str]:
        """The hosts ``user`` ('' for the anonymous users) has rows for, whoever made them."""
        rows = connection.execute(text("SELECT Host FROM mysql.user WHERE User = :user ORDER BY Host"), {"user": user})
        return list(rows.scalars())

    @staticmethod
    def _own_hosts(connection: Connection, login: str) -> list[str]:
        """The hosts of ``login``'s own rows: those it needs, and those holding its database's
        grant (see the module's docstring)."""
        rows = connection.execute(text(
            "SELECT u.Host FROM mysql.user u WHERE u.User = :login AND (u.Host IN ('%', 'localhost') "
            "OR u.Host IN (SELECT Host FROM mysql.user WHERE User = '') OR EXISTS (SELECT 1 FROM mysql.db d "
            "WHERE d.User = u.User AND d.Host = u.Host AND d.Db = :database)) ORDER BY 1"
        ), {"login": login, "database": escaped(login)})
        return list(rows.scalars())

    def _needed_hosts(self, connection: Connection) -> set[str]:
        """The hosts a login needs a row for, so that no anonymous user shadows it."""
        return {"%", "localhost", *self._hosts(connection, "")}
