"""PostgreSQL's logins: roles sent a SCRAM verifier, owning their database, PUBLIC shut out."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from dbwrapper.backends.base.logins import BaseLogins
from dbwrapper.backends.base.types import Login
from dbwrapper.backends.postgresql.errors import DUPLICATE_OBJECT
from dbwrapper.backends.postgresql.sql import change_database
from dbwrapper.errors import Refused

#: PostgreSQL's own iteration count for SCRAM-SHA-256 (scram_iterations' default).
SCRAM_ITERATIONS = 4096


def scram_sha_256(password: str, salt: bytes | None = None) -> str:
    """The verifier PostgreSQL stores for ``password`` (RFC 5802/7677, as pg_authid holds it).

    Computed here so that the password itself never reaches the server. The
    generated passwords are ASCII, so SASLprep leaves them as they are.
    """
    salt = salt or os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, SCRAM_ITERATIONS)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return f"SCRAM-SHA-256${SCRAM_ITERATIONS}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def set_role_password(connection: Connection, quoted_role: str, login: Login, limit: int) -> None:
    """Give the role ``quoted_role`` (quoted already, as it may be renamed in the same statement's
    transaction) ``login``'s password as a SCRAM verifier, and the connection ``limit`` as it is now."""
    connection.execute(
        text(f"ALTER ROLE {quoted_role} LOGIN CONNECTION LIMIT :limit PASSWORD :verifier"),
        {"limit": limit, "verifier": scram_sha_256(login.password)},
    )


class PostgreSQLLogins(BaseLogins):
    """Roles: one per database, its owner."""

    def revoke_public_access(self, connection: Connection) -> None:
        # Every database grants CONNECT to PUBLIC when it is made, the
        # maintenance database "postgres" included, and PostgreSQL has no way to
        # deny it to one role. A login made here must reach its own database
        # only, so PUBLIC loses CONNECT everywhere on this server.
        open_to_all = connection.execute(
            text(
                "SELECT datname FROM pg_catalog.pg_database "
                "WHERE datallowconn AND has_database_privilege('public', oid, 'CONNECT')"
            )
        ).scalars()
        # Others may make, rename or drop databases meanwhile, and shut PUBLIC out too.
        for name in list(open_to_all):
            quoted = connection.dialect.identifier_preparer.quote_identifier(name)  # a catalog name
            change_database(connection, f"REVOKE CONNECT, TEMPORARY ON DATABASE {quoted} FROM PUBLIC")

    def create_login(self, connection: Connection, login: Login) -> None:
        # The server gets the SCRAM verifier, never the password: a CREATE ROLE
        # in the server's log or in pg_stat_statements then reveals nothing.
        # CONNECTION LIMIT counts the role's sessions on the whole server. A role of that
        # name is someone else's, never taken over.
        backend = self.backend
        try:
            connection.execute(
                text(f"CREATE ROLE {backend.quote(login.name)} LOGIN CONNECTION LIMIT :limit PASSWORD :verifier"),
                {"limit": backend.login_connection_limit, "verifier": scram_sha_256(login.password)},
            )
        except DBAPIError as error:
            if backend.errors.error_code(error) == DUPLICATE_OBJECT:
                raise backend.errors.login_taken(login.name) from error
            raise

    def reset_login(self, connection: Connection, login: Login) -> None:
        query = text("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = :name")
        if connection.execute(query, {"name": login.name}).first() is None:
            self.create_login(connection, login)
            return
        set_role_password(connection, self.backend.quote(login.name), login, self.backend.login_connection_limit)

    def grant(self, connection: Connection, login: str, name: str) -> None:
        # The owner may connect and do anything inside; PUBLIC was shut out by revoke_public_access().
        quote = self.backend.quote
        if not change_database(connection, f"ALTER DATABASE {quote(name)} OWNER TO {quote(login)}"):
            raise Refused(f"{name} was dropped while it was being given to {login}.")

    def drop_login(self, connection: Connection, login: str) -> None:
        connection.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE usename = :login"),
            {"login": login},
        )
        connection.exec_driver_sql(f"DROP ROLE IF EXISTS {self.backend.quote(login)}")

    def grant_reading(self, connection: Connection, reader: str, name: str) -> None:
        # Every transaction of the reader's starts read-only; its grants (share_for_reading)
        # are SELECT only, so even one it sets back to read-write can change nothing.
        connection.exec_driver_sql(
            f"ALTER ROLE {self.backend.quote(reader)} SET default_transaction_read_only = on"
        )

    def share_for_reading(self, connection: Connection, reader: str, name: str) -> None:
        # Run as the owner, at every read-only session: a revert or a reset makes the database
        # anew (so its CONNECT grant), and tables made since need their SELECT.
        quote, quoted_reader = connection.dialect.identifier_preparer.quote_identifier, self.backend.quote(reader)
        connection.exec_driver_sql(f"GRANT CONNECT ON DATABASE {self.backend.quote(name)} TO {quoted_reader}")
        schemas = connection.execute(text(
            "SELECT nspname FROM pg_catalog.pg_namespace WHERE pg_catalog.pg_has_role(nspowner, 'USAGE') "
            "AND nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'"
        )).scalars()
        for schema in list(schemas):
            quoted = quote(schema)  # a catalog name, quoted whatever it holds
            for grant in (f"GRANT USAGE ON SCHEMA {quoted} TO {quoted_reader}",
                          f"GRANT SELECT ON ALL TABLES IN SCHEMA {quoted} TO {quoted_reader}",
                          f"GRANT SELECT ON ALL SEQUENCES IN SCHEMA {quoted} TO {quoted_reader}",
                          f"ALTER DEFAULT PRIVILEGES IN SCHEMA {quoted} GRANT SELECT ON TABLES TO {quoted_reader}"):
                connection.exec_driver_sql(grant)
