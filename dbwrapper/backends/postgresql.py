"""PostgreSQL's quirks: the maintenance database, comments as markers, forced drops."""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import os
import shlex
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, bindparam, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from dbwrapper.backends.base import Backend, DatabaseEntry, Login, Source
from dbwrapper.backends.psqlscript import restricted
from dbwrapper.db import one_off_engine
from dbwrapper.errors import Refused
from dbwrapper.names import validate_name
from dbwrapper.tools import run_tool, tool_output

DUPLICATE_DATABASE = "42P04"
#: Two concurrent ``CREATE DATABASE`` of one name can also end in this, from the
#: unique index on ``pg_database``, instead of ``42P04``.
UNIQUE_VIOLATION = "23505"
#: "source database ... is being accessed by other users", or a drop that met sessions.
OBJECT_IN_USE = "55006"
#: A role (or another object) of that name exists already.
DUPLICATE_OBJECT = "42710"
#: A database that no longer exists (dropped or renamed meanwhile).
INVALID_CATALOG_NAME = "3D000"
#: A lock wait that reached lock_timeout (see dbwrapper.db): another session holds it.
LOCK_NOT_AVAILABLE = "55P03"
#: What PostgreSQL says when two sessions change one catalog row (a database's rights or
#: owner) at the same moment: the later one fails, and doing it again then works.
CONCURRENT_UPDATE = "tuple concurrently updated"
CONCURRENT_UPDATE_TRIES = 5


#: How CREATE DATABASE ... TEMPLATE copies (PostgreSQL 15 and later). FILE_COPY copies
#: the files after a checkpoint; WAL_LOG (the default) writes every block through the
#: WAL, which a class of thirty clones multiplies. bench/lifecycle.py measures both:
#: FILE_COPY took 0.3x to 0.7x of WAL_LOG's time from a 70 MB course.
CLONE_STRATEGY = "FILE_COPY"

#: Where the super-user's sessions look names up: the catalog, and its own temporary
#: schema last (PostgreSQL's advice after CVE-2018-1058).
CATALOG_SEARCH_PATH = "pg_catalog,pg_temp"

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


@contextmanager
def in_transaction(connection: Connection) -> Iterator[None]:
    """One transaction on an AUTOCOMMIT connection: what runs inside happens together or not at all.

    PostgreSQL renames databases and roles inside a transaction, which the
    admin engine's AUTOCOMMIT would otherwise not open.
    """
    connection.exec_driver_sql("BEGIN")
    try:
        yield
    except BaseException:
        connection.exec_driver_sql("ROLLBACK")
        raise
    connection.exec_driver_sql("COMMIT")


class PostgreSQLBackend(Backend):
    """A PostgreSQL server."""

    kind = "postgres"
    label = "PostgreSQL"
    dialects = frozenset({"postgresql"})
    system_databases = frozenset({"postgres", "template0", "template1"})
    login_kind = "PostgreSQL role"

    @staticmethod
    def admin_url(url: URL) -> URL:
        # Server-wide work connects to the maintenance database, never to
        # template1: a session on template1 makes every CREATE DATABASE fail
        # with "source database is being accessed by other users".
        return url.set(database="postgres")

    dump_tool = "pg_dump"
    client_tool = "psql"
    # A restore is pg_restore printing the archive as SQL, which psql runs (see restore()).
    restore_tools = ("pg_restore", "psql")
    archive_suffix = ".dump"

    def session_options(self) -> dict[str, str]:
        # Every super-user session resolves names in the catalog only (CVE-2018-1058):
        # set at connection start, before any statement, whatever the database or
        # role settings say.
        return {"options": f"-c search_path={CATALOG_SEARCH_PATH}"}

    def tables(self, connection: Connection) -> list[str]:
        # Tables outside the public schema would need schema-qualified names; a
        # trainee's database keeps its tables in public.
        query = text("SELECT tablename FROM pg_catalog.pg_tables WHERE schemaname = 'public' ORDER BY 1")
        return list(connection.execute(query).scalars())

    def count_statement(self, connection: Connection, table: str) -> str:
        quoted = connection.dialect.identifier_preparer.quote_identifier(table)
        return f"SELECT pg_catalog.count(*) FROM public.{quoted}"

    def tool_env(self, login: Login | None = None) -> dict[str, str]:
        url = self.url
        user, password = (login.name, login.password) if login else (url.username, url.password)
        env = {"PGHOST": str(url.host or url.query.get("host") or "localhost"), "PGPASSFILE": os.devnull}
        env |= {"PGPORT": str(url.port)} if url.port else {}
        env |= {"PGUSER": user} if user else {}
        env |= {"PGPASSWORD": password} if password else {}
        # libpq's own limit on connecting, in whole seconds (2 at least).
        env["PGCONNECT_TIMEOUT"] = str(max(2, math.ceil(self.deadlines.short)))
        return env

    def dump_command(self, tool: str, name: str, path: str, login: Login) -> list[str]:
        # Custom format: compressed, and pg_restore can list and pick from it. The
        # login comes in the environment (tool_env).
        return [tool, "--format=custom", f"--file={path}", f"--dbname={validate_name(name)}"]

    def sql_dump_command(self, tool: str, name: str, login: Login) -> list[str]:
        # Plain SQL, its objects created by whoever loads it, with no grants to roles
        # that may not exist where it is loaded.
        return [tool, "--format=plain", "--no-owner", "--no-privileges", f"--dbname={validate_name(name)}"]

    def script_command(self, tool: str, name: str, login: Login) -> list[str]:
        return [tool, "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1", "--single-transaction",
                f"--dbname={validate_name(name)}"]

    def script(self, lines: Iterable[bytes]) -> Iterator[bytes]:
        # psql in restricted mode, with settings this server knows: see psqlscript.
        return restricted(lines, self.server_major())

    def server_major(self) -> int:
        """The server's major version (15 for 15.4), as the admin engine's dialect read it."""
        with self.admin_connection() as connection:
            return int((connection.dialect.server_version_info or (0,))[0])

    def dump(self, tool: str, name: str, path: str, login: Login) -> dict[str, int | None]:
        # The rows are counted in the very snapshot pg_dump dumps, while it dumps:
        # this transaction exports its snapshot and stays open while pg_dump
        # imports it (--snapshot) and works. Both connect as the database's login.
        argv = [*self.dump_command(tool, name, path, login)]
        with self._translated(f"count the rows of {name}"), self.as_owner(name, login) as connection:
            connection.execution_options(isolation_level="REPEATABLE READ")
            with connection.begin(), ThreadPoolExecutor(max_workers=1) as dumping:
                snapshot = connection.execute(text("SELECT pg_catalog.pg_export_snapshot()")).scalar_one()
                dumped = dumping.submit(
                    run_tool, [*argv, f"--snapshot={snapshot}"], self.tool_env(login), timeout=self.deadlines.long
                )
                counts: dict[str, int | None] = {**self.count_rows(connection)}
                dumped.result()
        return counts

    def restore(self, tools: dict[str, str], name: str, login: Login, path: str) -> None:
        # pg_restore prints the archive as a SQL script (it needs no connection for
        # that), and psql runs it as the database's login, in one transaction: every
        # object is then the login's, and the trainee's own functions (in CHECK
        # constraints, defaults, triggers, index expressions) run as the trainee
        # while the rows are copied in. Through psql, not pg_restore --dbname, so
        # that the script can lose what this server's version does not know.
        self.renew_password(login)
        script = tool_output([tools["pg_restore"], "--no-owner", "--no-privileges", "--file=-", path], {})
        run_tool(self.script_command(tools["psql"], name, login), self.tool_env(login), feed=self.script(script),
                 timeout=self.deadlines.long)

    def archive_tables(self, tools: dict[str, str], path: str) -> dict[str, int | None]:
        # pg_restore --list prints the archive's table of contents (without reading
        # the data, so without rows): "215; 1259 16390 TABLE public order lines alice".
        # Names are printed unquoted, so a table's is what lies between the schema
        # and the owner (a login, whose name has no spaces).
        listing = run_tool([tools["pg_restore"], "--list", path], {}, timeout=self.deadlines.long)
        tables: dict[str, int | None] = {}
        for line in listing.splitlines():
            _, _, entry = line.partition("; ")
            parts = entry.split(" ", 3)
            if len(parts) == 4 and parts[2] == "TABLE" and parts[3].startswith("public "):
                tables[parts[3].removeprefix("public ").rpartition(" ")[0]] = None
        return tables

    def client_command(self, name: str, login: Login | None = None) -> str:
        url = self.client_url
        host = url.host or url.query.get("host")  # a socket's directory is a host to psql too
        user = login.name if login else url.username
        command = ["psql"]
        command += ["-h", str(host)] if host else []
        command += ["-p", str(url.port)] if url.port else []
        command += ["-U", user] if user else []
        return shlex.join([*command, "-d", name])

    def create(self, connection: Connection, quoted: str, managed: bool, source: Source | None) -> None:
        statement = f"CREATE DATABASE {quoted}"
        if source is not None:
            # A clone on the server: PostgreSQL copies the source's files (or
            # its blocks through the WAL), never its rows one by one.
            statement += f" TEMPLATE {self.quote(source.name)}"
            if (connection.dialect.server_version_info or ()) >= (15,):
                statement += f" STRATEGY {CLONE_STRATEGY}"
        # A new database grants CONNECT to PUBLIC, and revoking it is a statement of its own,
        # after CREATE DATABASE commits: a login knocking meanwhile at the name it can guess
        # (bob_7001) would get in and stay. So it refuses every connection, the super-user's
        # too, until PUBLIC has lost CONNECT and TEMPORARY on it.
        connection.exec_driver_sql(f"{statement} ALLOW_CONNECTIONS false")
        self._change_database(connection, f"REVOKE CONNECT, TEMPORARY ON DATABASE {quoted} FROM PUBLIC")
        self._change_database(connection, f"ALTER DATABASE {quoted} ALLOW_CONNECTIONS true")
        if managed:
            # COMMENT takes no server-side parameter; the driver quotes the bound marker.
            connection.execute(text(f"COMMENT ON DATABASE {quoted} IS :marker"), {"marker": self.marker})

    def copy_content(self, source: Source, name: str, owner: str) -> None:
        # The clone's tables, views and sequences still belong to the source's
        # login; they become the new login's in one catalog statement, whatever
        # the size of the data. (The master itself belongs to the super-user, see
        # seal(), so this moves no database.)
        #
        # It is the one statement the super-user runs inside a database, a new
        # copy nobody has connected to yet: a catalog change that runs no function,
        # its session's search_path pinned to the catalog (session_options) and
        # naming nothing but two roles.
        if owner != source.owner:
            with self._superuser_inside(name) as connection:
                connection.exec_driver_sql(f"REASSIGN OWNED BY {self.quote(source.owner)} TO {self.quote(owner)}")

    @contextmanager
    def _superuser_inside(self, name: str) -> Iterator[Connection]:
        """A super-user transaction inside database ``name``, on a connection of its own
        (closed afterwards: a session left open on a database keeps it from being cloned)."""
        engine = one_off_engine(self.database_url(name), self.deadlines, connect_args=self.session_options())
        with self.connected(engine) as connection, connection.begin():
            yield connection

    def can_copy(self, source: str) -> bool:
        return True  # a template clone copies everything a database holds

    def seal(self, name: str) -> None:
        # The master becomes the super-user's: its loader keeps owning the content
        # (which REASSIGN OWNED hands to each copy's login) but can no longer
        # connect, so the master stays as the course defined it.
        with self.admin_connection() as connection:
            self._change_database(connection, f"ALTER DATABASE {self.quote(name)} OWNER TO CURRENT_USER")

    def rename_spare(self, spare: Source, name: str, login: Login) -> bool:
        # A spare and its login are renamed together in one transaction: either
        # the trainee gets both, or the spare is left as it was.
        try:
            with self.admin_connection() as connection, in_transaction(connection):
                connection.exec_driver_sql(f"ALTER DATABASE {self.quote(spare.name)} RENAME TO {self.quote(name)}")
                connection.exec_driver_sql(f"ALTER ROLE {self.quote(spare.owner)} RENAME TO {self.quote(login.name)}")
                # The limit as it is now, whatever it was when the spare was made.
                connection.execute(
                    text(f"ALTER ROLE {self.quote(login.name)} CONNECTION LIMIT :limit PASSWORD :verifier"),
                    {"limit": self.login_connection_limit, "verifier": scram_sha_256(login.password)},
                )
        except DBAPIError as error:
            if self.is_duplicate(error):
                return False
            if self.error_code(error) == DUPLICATE_OBJECT:  # the database was free, the role's name is not
                raise self.login_taken(login.name) from error
            raise
        return True

    def end_sessions(self, name: str, login: str) -> int:
        with self.admin_connection() as connection:
            ended = connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            ).scalars()
            return sum(1 for done in ended if done)

    def set_aside(self, name: str, before: str, owner: str) -> None:
        # Renamed, not copied; and the super-user's, like every snapshot, so that
        # its owner cannot change it.
        with self.admin_connection() as connection, in_transaction(connection):
            connection.exec_driver_sql(f"ALTER DATABASE {self.quote(name)} RENAME TO {self.quote(before)}")
            connection.exec_driver_sql(f"ALTER DATABASE {self.quote(before)} OWNER TO CURRENT_USER")

    def copy_back(self, snapshot: str, name: str, owner: str) -> None:
        self.create_database(name, source=Source(snapshot, owner))
        with self.admin_connection() as connection:
            connection.exec_driver_sql(f"ALTER DATABASE {self.quote(name)} OWNER TO {self.quote(owner)}")

    def put_back(self, name: str, before: str, owner: str) -> None:
        with self.admin_connection() as connection:
            self.drop(connection, name, self.quote(name))  # the revert's copy, if it got that far
            with in_transaction(connection):
                connection.exec_driver_sql(f"ALTER DATABASE {self.quote(before)} RENAME TO {self.quote(name)}")
                connection.exec_driver_sql(f"ALTER DATABASE {self.quote(name)} OWNER TO {self.quote(owner)}")

    def protect(self, connection: Connection) -> None:
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
            quoted = connection.dialect.identifier_preparer.quote_identifier(name)
            self._change_database(connection, f"REVOKE CONNECT, TEMPORARY ON DATABASE {quoted} FROM PUBLIC")

    def _change_database(self, connection: Connection, statement: str) -> bool:
        """Run ``statement``, which changes one database's rights or owner, in its own
        transaction, again if another session changed that database at the same moment
        (a class making its databases at once does); ``False`` if the database is gone.
        """
        attempt = 1
        while True:
            try:
                connection.exec_driver_sql(statement)
                return True
            except DBAPIError as error:
                if self.error_code(error) == INVALID_CATALOG_NAME:
                    return False
                if CONCURRENT_UPDATE not in str(error.orig) or attempt == CONCURRENT_UPDATE_TRIES:
                    raise
            time.sleep(0.01 * attempt)
            attempt += 1

    def create_login(self, connection: Connection, login: Login) -> None:
        # The server gets the SCRAM verifier, never the password: a CREATE ROLE
        # in the server's log or in pg_stat_statements then reveals nothing.
        # CONNECTION LIMIT counts the role's sessions on the whole server. A role of that
        # name is someone else's, never taken over.
        try:
            connection.execute(
                text(f"CREATE ROLE {self.quote(login.name)} LOGIN CONNECTION LIMIT :limit PASSWORD :verifier"),
                {"limit": self.login_connection_limit, "verifier": scram_sha_256(login.password)},
            )
        except DBAPIError as error:
            if self.error_code(error) == DUPLICATE_OBJECT:
                raise self.login_taken(login.name) from error
            raise

    def reset_login(self, connection: Connection, login: Login) -> None:
        query = text("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = :name")
        if connection.execute(query, {"name": login.name}).first() is None:
            self.create_login(connection, login)
            return
        connection.execute(
            text(f"ALTER ROLE {self.quote(login.name)} LOGIN CONNECTION LIMIT :limit PASSWORD :verifier"),
            {"limit": self.login_connection_limit, "verifier": scram_sha_256(login.password)},
        )

    def grant(self, connection: Connection, login: Login, name: str, quoted: str) -> None:
        # The owner may connect and do anything inside; PUBLIC was shut out by protect().
        if not self._change_database(connection, f"ALTER DATABASE {quoted} OWNER TO {self.quote(login.name)}"):
            raise Refused(f"{name} was dropped while it was being given to {login.name}.")

    def drop_login(self, connection: Connection, login: str) -> None:
        connection.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE usename = :login"),
            {"login": login},
        )
        connection.exec_driver_sql(f"DROP ROLE IF EXISTS {self.quote(login)}")

    def drop(self, connection: Connection, name: str, quoted: str) -> None:
        if (connection.dialect.server_version_info or ()) >= (13,):
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
            return
        # Before PostgreSQL 13: we cannot drop a database while sessions are
        # connected to it, so refuse new ones, end the open ones, then drop.
        connection.exec_driver_sql(f"ALTER DATABASE {quoted} ALLOW_CONNECTIONS false")
        connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"
            ),
            {"name": name},
        )
        connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted}")

    def _entries(self, connection: Connection, condition: str, **params: str) -> list[DatabaseEntry]:
        # A join on pg_shdescription rather than shobj_description(), which looks
        # the comment up once per row: this query runs on every listing.
        rows = connection.execute(
            text(
                "SELECT d.datname, s.description = :marker FROM pg_catalog.pg_database d "
                "LEFT JOIN pg_catalog.pg_shdescription s ON s.objoid = d.oid "
                f"AND s.classoid = 'pg_catalog.pg_database'::regclass {condition}"
            ),
            {"marker": self.marker, **params},
        )
        return [DatabaseEntry(name, bool(managed)) for name, managed in rows]

    def lookup(self, connection: Connection, name: str) -> DatabaseEntry | None:
        found = self._entries(connection, "WHERE d.datname = :name", name=name)
        return found[0] if found else None

    def databases(self, connection: Connection) -> list[DatabaseEntry]:
        return self._entries(connection, "WHERE NOT d.datistemplate ORDER BY d.datname")

    def sizes(self, connection: Connection, names: set[str]) -> dict[str, int | None]:
        rows = connection.execute(
            text(
                # pg_database_size() fails on databases we may not connect to.
                "SELECT datname, CASE WHEN has_database_privilege(oid, 'CONNECT') "
                "THEN pg_catalog.pg_database_size(oid) END "
                "FROM pg_catalog.pg_database WHERE datname IN :names"
            ).bindparams(bindparam("names", expanding=True)),
            {"names": sorted(names)},
        )
        sizes: dict[str, int | None] = dict.fromkeys(names)  # dropped meanwhile: no size
        sizes.update({name: size for name, size in rows})
        return sizes

    def error_code(self, error: DBAPIError) -> Any:
        return getattr(error.orig, "pgcode", None)

    def is_duplicate(self, error: DBAPIError) -> bool:
        code = self.error_code(error)
        return code == DUPLICATE_DATABASE or (
            code == UNIQUE_VIOLATION and "pg_database_datname_index" in str(error.orig)
        )

    def is_busy(self, error: DBAPIError) -> bool:
        return self.error_code(error) in (OBJECT_IN_USE, LOCK_NOT_AVAILABLE)
