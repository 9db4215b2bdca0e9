"""The engine's command-line tools: their argument lists and minimal environments, dumps and restores.

Like Django's ``settings_to_cmd_args_env``: every tool gets an argument list
(never a shell line) and an environment of its own that holds where to connect
and, never on a command line, the password; nothing of this machine's option
files or of the service's own environment.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, ClassVar

from dbwrapper.backends.base.types import Login
from dbwrapper.tools import run_tool, sha256_of

if TYPE_CHECKING:
    from dbwrapper.backends.base.backend import Backend


class BaseClient(ABC):
    """One server's command-line tools, as each engine runs them."""

    #: The engine's dump tool, its own client (which runs SQL scripts), and the archive file's suffix.
    dump_tool: ClassVar[str]
    client_tool: ClassVar[str]
    archive_suffix: ClassVar[str]
    #: The tools a restore runs, the dump tool's counterpart among them.
    restore_tools: ClassVar[tuple[str, ...]]

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def load_sql(self, client_tool: str, name: str, login: Login, sql: str) -> None:
        """Run ``sql`` (a course's) in database ``name`` as ``login``, so that it owns what the
        SQL makes, with the client's own commands disabled (:meth:`script`)."""
        run_tool(self.script_command(client_tool, name, login), self.tool_env(login),
                 feed=self.script(sql.encode().splitlines(keepends=True)), timeout=self.backend.deadlines.long)

    def scan_archive(self, tools: dict[str, str], path: str) -> tuple[str, dict[str, int | None]]:
        """An archive file's SHA-256, and its tables (see :meth:`archive_tables`), read from the file.

        Both go through the whole file. The checksum is taken on a thread of its
        own, with the GIL released, while the engine reads the tables: a scan
        costs about the longer of the two, not their sum, and it is what an
        archive adds to the bare dump tool's time.
        """
        with ThreadPoolExecutor(max_workers=1) as hashing:
            digest = hashing.submit(sha256_of, path)
            tables = self.archive_tables(tools, path)
            return digest.result(), tables

    # -- what each engine implements ------------------------------------------------

    @property
    @abstractmethod
    def host(self) -> str:
        """Where :meth:`command` connects: a host name, an address, or a socket's path or
        directory (``/...``); ``localhost`` for the client's default, a socket of this machine's."""

    @abstractmethod
    def command(self, name: str, login: Login | None = None) -> str:
        """The command line of this engine's own client that opens database ``name``, for people.

        It never carries the password: the client asks for it.
        """

    @abstractmethod
    def tool_env(self, login: Login | None = None) -> dict[str, str]:
        """What the engine's tools need in their environment to connect as ``login`` (the
        super-user's by default): where to connect and, never on a command line, the password."""

    @abstractmethod
    def dump_command(self, tool: str, name: str, path: str, login: Login) -> list[str]:
        """The dump tool's arguments to dump database ``name`` into ``path`` as its own ``login``."""

    @abstractmethod
    def sql_dump_command(self, tool: str, name: str, login: Login) -> list[str]:
        """The dump tool's arguments to print database ``name`` as SQL text, read as its own
        ``login``, that another login can load elsewhere (no owners, no privileges), for a
        course made from it."""

    @abstractmethod
    def script_command(self, tool: str, name: str, login: Login) -> list[str]:
        """The client's arguments to run a SQL script from its standard input in database
        ``name`` as ``login``, stopping at the first error (see :meth:`script`)."""

    @abstractmethod
    def script(self, lines: Iterable[bytes]) -> Iterator[bytes]:
        """``lines`` of SQL (a course's, or a restore's), as :meth:`script_command`'s client is
        to read them: as SQL only, its own commands (a shell, files) never obeyed."""

    @abstractmethod
    def dump(self, tool: str, name: str, path: str, login: Login) -> dict[str, int | None]:
        """Dump database ``name`` to ``path`` with the engine's dump ``tool``, as its own ``login``.

        Returns the tables the dump must hold, each with its rows if the engine
        counted them in the dump's own snapshot, or ``None`` if they are counted
        in the file instead (:meth:`scan_archive`). Either way a manifest counts
        the rows its archive holds, even while the database's owner is at work.
        """

    @abstractmethod
    def restore(self, tools: dict[str, str], name: str, login: Login, path: str) -> None:
        """Restore archive ``path`` into the empty database ``name`` as its own ``login``, which
        then owns every object; ``tools`` are the paths of :attr:`restore_tools`."""

    @abstractmethod
    def archive_tables(self, tools: dict[str, str], path: str) -> dict[str, int | None]:
        """The tables an archive file holds, each with its rows if the format tells them
        without restoring it (else ``None``)."""
