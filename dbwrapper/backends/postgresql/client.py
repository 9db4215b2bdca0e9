"""PostgreSQL's tools: psql, pg_dump and pg_restore, with libpq's environment and nothing else."""

from __future__ import annotations

import math
import os
import shlex
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import text

from dbwrapper.backends.base.client import BaseClient
from dbwrapper.backends.base.types import Login
from dbwrapper.backends.postgresql.psqlscript import restricted
from dbwrapper.names import validate_name
from dbwrapper.tools import run_tool, tool_output


class PostgreSQLClient(BaseClient):
    """psql, pg_dump and pg_restore."""

    dump_tool = "pg_dump"
    client_tool = "psql"
    # A restore is pg_restore printing the archive as SQL, which psql runs (see restore()).
    restore_tools = ("pg_restore", "psql")
    archive_suffix = ".dump"

    @property
    def host(self) -> str:
        url = self.backend.client_url
        # A socket's directory is a host to psql too; with none, libpq's default socket.
        return str(url.host or url.query.get("host") or "localhost")

    def command(self, name: str, login: Login | None = None) -> str:
        url = self.backend.client_url
        user = login.name if login else url.username
        command = ["psql"]
        command += ["-h", self.host] if url.host or url.query.get("host") else []
        command += ["-p", str(url.port)] if url.port else []
        command += ["-U", user] if user else []
        return shlex.join([*command, "-d", name])

    def tool_env(self, login: Login | None = None) -> dict[str, str]:
        url = self.backend.url
        user, password = (login.name, login.password) if login else (url.username, url.password)
        env = {"PGHOST": str(url.host or url.query.get("host") or "localhost"), "PGPASSFILE": os.devnull}
        env |= {"PGPORT": str(url.port)} if url.port else {}
        env |= {"PGUSER": user} if user else {}
        env |= {"PGPASSWORD": password} if password else {}
        # libpq's own limit on connecting, in whole seconds (2 at least).
        env["PGCONNECT_TIMEOUT"] = str(max(2, math.ceil(self.backend.deadlines.short)))
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
        return restricted(lines, self.backend.catalog.server_major())

    def dump(self, tool: str, name: str, path: str, login: Login) -> dict[str, int | None]:
        # The rows are counted in the very snapshot pg_dump dumps, while it dumps:
        # this transaction exports its snapshot and stays open while pg_dump
        # imports it (--snapshot) and works. Both connect as the database's login.
        backend = self.backend
        argv = [*self.dump_command(tool, name, path, login)]
        with backend.errors.translated(f"count the rows of {name}"), backend.as_owner(name, login) as connection:
            connection.execution_options(isolation_level="REPEATABLE READ")
            with connection.begin(), ThreadPoolExecutor(max_workers=1) as dumping:
                snapshot = connection.execute(text("SELECT pg_catalog.pg_export_snapshot()")).scalar_one()
                dumped = dumping.submit(
                    run_tool, [*argv, f"--snapshot={snapshot}"], self.tool_env(login), timeout=backend.deadlines.long
                )
                counts: dict[str, int | None] = {**backend.catalog.count_rows(connection)}
                dumped.result()
        return counts

    def restore(self, tools: dict[str, str], name: str, login: Login, path: str) -> None:
        # pg_restore prints the archive as a SQL script (it needs no connection for
        # that), and psql runs it as the database's login, in one transaction: every
        # object is then the login's, and the trainee's own functions (in CHECK
        # constraints, defaults, triggers, index expressions) run as the trainee
        # while the rows are copied in. Through psql, not pg_restore --dbname, so
        # that the script can lose what this server's version does not know.
        self.backend.logins.renew_password(login)
        script = tool_output([tools["pg_restore"], "--no-owner", "--no-privileges", "--file=-", path], {})
        run_tool(self.script_command(tools["psql"], name, login), self.tool_env(login), feed=self.script(script),
                 timeout=self.backend.deadlines.long)

    def archive_tables(self, tools: dict[str, str], path: str) -> dict[str, int | None]:
        # pg_restore --list prints the archive's table of contents (without reading
        # the data, so without rows): "215; 1259 16390 TABLE public order lines alice".
        # Names are printed unquoted, so a table's is what lies between the schema
        # and the owner (a login, whose name has no spaces).
        listing = run_tool([tools["pg_restore"], "--list", path], {}, timeout=self.backend.deadlines.long)
        tables: dict[str, int | None] = {}
        for line in listing.splitlines():
            _, _, entry = line.partition("; ")
            parts = entry.split(" ", 3)
            if len(parts) == 4 and parts[2] == "TABLE" and parts[3].startswith("public "):
                tables[parts[3].removeprefix("public ").rpartition(" ")[0]] = None
        return tables
