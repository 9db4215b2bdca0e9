"""PostgreSQL's databases: clones from a template, renames in one transaction, forced drops."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from dbwrapper.backends.base.creation import BaseCreation
from dbwrapper.backends.base.types import Login, Source
from dbwrapper.backends.postgresql.errors import DUPLICATE_OBJECT
from dbwrapper.backends.postgresql.logins import set_role_password
from dbwrapper.backends.postgresql.sql import change_database, in_transaction
from dbwrapper.db import one_off_engine

#: How CREATE DATABASE ... TEMPLATE copies (PostgreSQL 15 and later). FILE_COPY copies
#: the files after a checkpoint; WAL_LOG (the default) writes every block through the
#: WAL, which a class of thirty clones multiplies. bench/lifecycle.py measures both:
#: FILE_COPY took 0.3x to 0.7x of WAL_LOG's time from a 70 MB course.
CLONE_STRATEGY = "FILE_COPY"

#: Ends every session on one database but our own.
END_SESSIONS_ON = text(
    "SELECT pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity "
    "WHERE datname = :name AND pid <> pg_backend_pid()"
)


class PostgreSQLCreation(BaseCreation):
    """Databases cloned and renamed on the server, in time that does not grow with their data."""

    can_rename_database = True

    def create(self, connection: Connection, name: str, managed: bool, source: Source | None) -> None:
        quote = self.backend.quote
        quoted = quote(name)
        statement = f"CREATE DATABASE {quoted}"
        if source is not None:
            # A clone on the server: PostgreSQL copies the source's files (or
            # its blocks through the WAL), never its rows one by one.
            statement += f" TEMPLATE {quote(source.name)}"
            if (connection.dialect.server_version_info or ()) >= (15,):
                statement += f" STRATEGY {CLONE_STRATEGY}"
        # A new database grants CONNECT to PUBLIC, and revoking it is a statement of its own,
        # after CREATE DATABASE commits: a login knocking meanwhile at the name it can guess
        # (bob_7001) would get in and stay. So it refuses every connection, the super-user's
        # too, until PUBLIC has lost CONNECT and TEMPORARY on it.
        connection.exec_driver_sql(f"{statement} ALLOW_CONNECTIONS false")
        change_database(connection, f"REVOKE CONNECT, TEMPORARY ON DATABASE {quoted} FROM PUBLIC")
        change_database(connection, f"ALTER DATABASE {quoted} ALLOW_CONNECTIONS true")
        if managed:
            # COMMENT takes no server-side parameter; the driver quotes the bound marker.
            connection.execute(text(f"COMMENT ON DATABASE {quoted} IS :marker"), {"marker": self.backend.marker})

    def drop(self, connection: Connection, name: str) -> None:
        quoted = self.backend.quote(name)
        if (connection.dialect.server_version_info or ()) >= (13,):
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
            return
        # Before PostgreSQL 13: we cannot drop a database while sessions are
        # connected to it, so refuse new ones, end the open ones, then drop.
        connection.exec_driver_sql(f"ALTER DATABASE {quoted} ALLOW_CONNECTIONS false")
        connection.execute(END_SESSIONS_ON, {"name": name})
        connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted}")

    def copy_content(self, source: Source, name: str, owner: str) -> None:
        # The clone's tables, views and sequences still belong to the source's
        # login; they become the new login's in one catalog statement, whatever
        # the size of the data. (The master itself belongs to the super-user, see
        # freeze_master(), so this moves no database.)
        #
        # It is the one statement the super-user runs inside a database, a new
        # copy nobody has connected to yet: a catalog change that runs no function,
        # its session's search_path pinned to the catalog (session_options) and
        # naming nothing but two roles.
        if owner != source.owner:
            quote = self.backend.quote
            with self._superuser_session_in(name) as connection:
                connection.exec_driver_sql(f"REASSIGN OWNED BY {quote(source.owner)} TO {quote(owner)}")

    @contextmanager
    def _superuser_session_in(self, name: str) -> Iterator[Connection]:
        """A super-user transaction inside database ``name``, on a connection of its own
        (closed afterwards: a session left open on a database keeps it from being cloned)."""
        backend = self.backend
        engine = one_off_engine(backend.database_url(name), backend.deadlines, connect_args=backend.session_options())
        with backend.connected(engine) as connection, connection.begin():
            yield connection

    def can_copy(self, source: str) -> bool:
        return True  # a template clone copies everything a database holds

    def freeze_master(self, name: str) -> None:
        # The master becomes the super-user's: its loader keeps owning the content
        # (which REASSIGN OWNED hands to each copy's login) but can no longer
        # connect, so the master stays as the course defined it.
        with self.backend.admin_connection() as connection:
            change_database(connection, f"ALTER DATABASE {self.backend.quote(name)} OWNER TO CURRENT_USER")

    def end_sessions(self, name: str, login: str) -> int:
        with self.backend.admin_connection() as connection:
            ended = connection.execute(END_SESSIONS_ON, {"name": name}).scalars()
            return sum(1 for done in ended if done)

    def rename_spare(self, spare: Source, name: str, login: Login) -> bool:
        # A spare and its login are renamed together in one transaction: either
        # the trainee gets both, or the spare is left as it was.
        backend, quote = self.backend, self.backend.quote
        try:
            with backend.admin_connection() as connection, in_transaction(connection):
                connection.exec_driver_sql(f"ALTER DATABASE {quote(spare.name)} RENAME TO {quote(name)}")
                connection.exec_driver_sql(f"ALTER ROLE {quote(spare.owner)} RENAME TO {quote(login.name)}")
                # The limit as it is now, whatever it was when the spare was made.
                set_role_password(connection, quote(login.name), login, backend.login_connection_limit)
        except DBAPIError as error:
            if backend.errors.is_duplicate(error):
                return False
            if backend.errors.error_code(error) == DUPLICATE_OBJECT:  # the database was free, the role's name is not
                raise backend.errors.login_taken(login.name) from error
            raise
        return True

    def move_to_backup(self, name: str, backup: str, owner: str) -> None:
        # Renamed, not copied; and the super-user's, like every snapshot, so that
        # its owner cannot change it.
        quote = self.backend.quote
        with self.backend.admin_connection() as connection, in_transaction(connection):
            connection.exec_driver_sql(f"ALTER DATABASE {quote(name)} RENAME TO {quote(backup)}")
            connection.exec_driver_sql(f"ALTER DATABASE {quote(backup)} OWNER TO CURRENT_USER")

    def copy_snapshot(self, snapshot: Source, name: str, owner: str) -> None:
        # A clone of the snapshot, given to the owner; a master's content is handed over
        # from its loader's login as for every course copy (copy_content).
        quote = self.backend.quote
        self.make(name, source=snapshot)
        self.copy_content(snapshot, name, owner)
        with self.backend.admin_connection() as connection:
            connection.exec_driver_sql(f"ALTER DATABASE {quote(name)} OWNER TO {quote(owner)}")

    def take_spare(self, spare: Source, name: str, owner: str) -> None:
        # The spare is renamed into the place the reset emptied (move_to_backup renamed the
        # database away); its content goes from the spare's login to the owner's, the same
        # catalog statement as every course copy's, in a copy nobody has connected to. The
        # spare's login, which then owns nothing, is dropped by the pool's job.
        quote = self.backend.quote
        with self.backend.admin_connection() as connection:
            connection.exec_driver_sql(f"ALTER DATABASE {quote(spare.name)} RENAME TO {quote(name)}")
        self.copy_content(spare, name, owner)
        with self.backend.admin_connection() as connection:
            connection.exec_driver_sql(f"ALTER DATABASE {quote(name)} OWNER TO {quote(owner)}")

    def restore_backup(self, name: str, backup: str, owner: str) -> None:
        quote = self.backend.quote
        with self.backend.admin_connection() as connection:
            self.drop(connection, name)  # the revert's copy, if it got that far
            with in_transaction(connection):
                connection.exec_driver_sql(f"ALTER DATABASE {quote(backup)} RENAME TO {quote(name)}")
                connection.exec_driver_sql(f"ALTER DATABASE {quote(name)} OWNER TO {quote(owner)}")
