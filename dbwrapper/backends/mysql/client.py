"""MySQL's tools: mysql and mysqldump, with --no-defaults, and the password in MYSQL_PWD only."""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Iterable, Iterator
from pathlib import Path

from dbwrapper.backends.base.client import BaseClient
from dbwrapper.backends.base.types import Login
from dbwrapper.backends.mysql import objects
from dbwrapper.backends.mysql.catalog import tables_and_views
from dbwrapper.backends.mysql.dumpfile import tables_in_dump
from dbwrapper.names import validate_name
from dbwrapper.tools import mapped, run_tool

#: The DEFINER clause a dump writes on the lines that make views, routines, triggers and events.
DUMP_DEFINER = re.compile(objects.DEFINER.pattern.encode())


def _lines_of(path: str | Path) -> Iterator[bytes]:
    """A dump file's lines, read as they are fed to the client."""
    with open(path, "rb") as dump:
        yield from dump


class MySQLClient(BaseClient):
    """mysql and mysqldump."""

    dump_tool = "mysqldump"
    client_tool = "mysql"
    restore_tools = ("mysql",)  # the client runs the dump's SQL
    archive_suffix = ".sql"

    @property
    def host(self) -> str:
        url = self.backend.url
        return str(url.query.get("unix_socket") or url.host or "localhost")

    def command(self, name: str, login: Login | None = None) -> str:
        url = self.backend.url
        socket = url.query.get("unix_socket")
        user = login.name if login else url.username
        command = ["mysql"]
        command += ["-S", str(socket)] if socket else []
        command += ["-h", url.host] if url.host else []
        command += ["-P", str(url.port)] if url.port else []
        command += ["-u", user] if user else []
        command += ["-p"] if login or url.password else []
        return shlex.join([*command, name])

    def tool_env(self, login: Login | None = None) -> dict[str, str]:
        # MYSQL_PWD keeps the password off the command line (where ps shows it)
        # and out of a failed command's error output.
        password = login.password if login else self.backend.url.password
        return {"MYSQL_PWD": password} if password else {}

    def _connection_args(self, login: Login | None = None) -> list[str]:
        """Where and as whom a tool connects, after ``--no-defaults`` (which must come first):
        no option file of this machine's (``~/.my.cnf``, ``/etc/mysql``) adds anything."""
        url = self.backend.url
        socket = url.query.get("unix_socket")
        args = ["--no-defaults", f"--socket={socket}" if socket else f"--host={url.host or 'localhost'}"]
        args += [f"--port={url.port}"] if url.port else []
        user = login.name if login else url.username
        return args + ([f"--user={user}"] if user else [])

    def dump_command(self, tool: str, name: str, path: str, login: Login) -> list[str]:
        # One consistent snapshot of InnoDB tables without locking them, with
        # everything a course database may hold; no CREATE DATABASE, so it can
        # be restored under another name.
        return [
            tool, *self._connection_args(login), "--single-transaction", "--routines", "--triggers",
            "--events", "--no-tablespaces", f"--result-file={path}", validate_name(name),
        ]

    def sql_dump_command(self, tool: str, name: str, login: Login) -> list[str]:
        return [
            tool, *self._connection_args(login), "--single-transaction", "--routines", "--triggers", "--events",
            "--no-tablespaces", "--skip-comments", validate_name(name),
        ]

    def script_command(self, tool: str, name: str, login: Login) -> list[str]:
        # --binary-mode: the client obeys none of its own commands (system, \!, source,
        # tee, connect, ...) but DELIMITER, which dumps of triggers and routines need,
        # and the charset's \C. --local-infile=0: a LOAD DATA LOCAL INFILE cannot make
        # it send a file of this machine. Piped, it stops at the first error.
        return [tool, *self._connection_args(login), self._connect_timeout(), "--binary-mode",
                "--local-infile=0", "--batch", validate_name(name)]

    def script(self, lines: Iterable[bytes]) -> Iterator[bytes]:
        # mysqldump names who defined each view, trigger, routine and event, and
        # only a super-user may define objects for someone else. Without the
        # clause, the login running the script defines them. It stands only on the
        # lines that create such objects, never on a row's.
        for line in lines:
            yield DUMP_DEFINER.sub(b"", line, count=1) if line.startswith((b"/*!", b"CREATE")) else line

    def _connect_timeout(self) -> str:
        """The mysql client's limit on connecting, the short deadline; mysqldump has none, and
        starts only after this service's own connection found the server answering."""
        return f"--connect-timeout={math.ceil(self.backend.deadlines.short)}"

    def dump(self, tool: str, name: str, path: str, login: Login) -> dict[str, int | None]:
        # mysqldump's snapshot cannot be shared, so the rows are counted in the
        # file it writes (archive_tables); the tables it must hold are listed first.
        backend = self.backend
        with backend.admin_connection() as connection:
            tables, _ = tables_and_views(connection, name)
        backend.logins.renew_password(login)
        run_tool(self.dump_command(tool, name, path, login), self.tool_env(login), timeout=backend.deadlines.long)
        return dict.fromkeys(tables)

    def restore(self, tools: dict[str, str], name: str, login: Login, path: str) -> None:
        self.backend.logins.renew_password(login)
        run_tool(self.script_command(tools["mysql"], name, login), self.tool_env(login),
                 feed=self.script(_lines_of(path)), timeout=self.backend.deadlines.long)

    def archive_tables(self, tools: dict[str, str], path: str) -> dict[str, int | None]:
        with mapped(path) as dump:
            return tables_in_dump(dump)
