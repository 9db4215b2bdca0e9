"""The command line on another machine: ``dbwrapper --server URL`` runs the same commands
through the JSON API, with an API token (``DBWRAPPER_TOKEN``) and no super-user URL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dbwrapper.accounts import Actor
from dbwrapper.errors import InvalidInput, NotLoggedIn, Refused
from dbwrapper.remote import Client
from tests.conftest import INSTRUCTOR
from tests.test_classes import roster  # noqa: F401  (a fixture: three trainees and a failing row, removed after)

Remote = Callable[..., subprocess.CompletedProcess[str]]


def laptop_env(token: str) -> dict[str, str]:
    """All an instructor's laptop has: a shell's PATH and a token; no server URL, no app.conf."""
    return {"PATH": os.environ["PATH"], "DBWRAPPER_TOKEN": token}


@pytest.fixture
def remote(base_url: str, tmp_path) -> Remote:
    """``remote(token, ARGS...)``: ``dbwrapper --server <the test service> ARGS`` in a new process."""

    def run(token: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "dbwrapper", "--server", base_url, *args],
            env=laptop_env(token), capture_output=True, text=True, timeout=300, cwd=tmp_path,
        )

    return run


@pytest.fixture
def token_for(runtime) -> Iterator[Callable[[str], str]]:
    """``token_for(user_name)``: a new API token of that user, revoked afterwards."""
    made = []

    def make(user_name: str) -> str:
        actor = Actor(runtime.accounts.get(user_name))
        token, secret = runtime.accounts.create_token(actor, user_name, "tests")
        made.append((actor, user_name, token.id))
        return secret

    yield make
    for actor, user_name, token_id in made:
        if runtime.accounts.registry.user(user_name) is not None:  # a trainee's went with their account
            runtime.accounts.revoke_token(actor, user_name, token_id)


def test_the_laptop_has_no_super_user_url():
    env = laptop_env("dbw_example")
    assert set(env) == {"PATH", "DBWRAPPER_TOKEN"}
    assert not any(scheme in value for value in env.values() for scheme in ("postgresql:", "mysql:"))


def test_a_trainee_creates_lists_snapshots_and_destroys_their_database_remotely(
    remote, token_for, trainee, runtime, db_type
):
    alice = trainee()
    token = token_for(alice.user_name)
    name = runtime.service.default_name(Actor(runtime.accounts.get(alice.user_name)))

    created = remote(token, "create", "--db-type", db_type)
    assert created.returncode == 0, created.stderr
    assert f"Created {name} on " in created.stdout
    assert "Password:" in created.stdout and "SQLAlchemy URL:" in created.stdout
    assert f"{name}" in created.stdout and "<- this one" in created.stdout

    listed = remote(token, "list", "--db-type", db_type)
    assert listed.returncode == 0, listed.stderr
    assert name in listed.stdout and f"owner={alice.user_name}" in listed.stdout

    taken = remote(token, "snapshot", "take", "--db-type", db_type, "--name", name, "--label", "before joins")
    assert taken.returncode == 0, taken.stderr
    assert f"Took a snapshot of {name}" in taken.stdout
    snapshots = remote(token, "snapshot", "list", "--db-type", db_type, "--name", name)
    assert f"Snapshots of {name}:" in snapshots.stdout and '"before joins"' in snapshots.stdout

    destroyed = remote(token, "destroy", "--db-type", db_type, "--name", name)
    assert destroyed.returncode == 0, destroyed.stderr
    assert f"Dropped {name} from " in destroyed.stdout
    runtime.service.registry.refresh()  # the service dropped it; this process caches the registry
    assert runtime.service.registry.database(db_type, name) is None
    assert token not in created.stdout + created.stderr + destroyed.stdout + destroyed.stderr

    again = remote(token, "destroy", "--db-type", db_type, "--name", name)
    assert again.returncode == 0, again.stderr  # nothing to drop is no failure, as on this machine
    assert "nothing was changed" in again.stdout


def test_an_instructor_provisions_a_class_from_a_csv_roster_remotely(
    remote, token_for, roster, db_type, tmp_path, base_url  # noqa: F811
):
    sheet = tmp_path / "sheet.html"
    provisioned = remote(token_for(INSTRUCTOR), "class", "provision", str(roster.path), "--course", "franchise",
                         "--db-type", db_type, "--sheet", str(sheet))
    assert provisioned.returncode == Refused.exit_code, provisioned.stderr  # the failing row, as here
    assert "3 provisioned, 1 failed" in provisioned.stdout
    assert roster.taken in provisioned.stdout and "FAILED" in provisioned.stdout
    assert all(name in provisioned.stdout for name in roster.names)
    assert "4/4" in provisioned.stderr  # the progress bar, as the operation moved
    page = sheet.read_text()
    assert all(name in page for name in roster.names)
    assert "<style>" in page and base_url in page  # a file, with its style inside; where to log in
    assert oct(sheet.stat().st_mode & 0o777) == "0o600"


def test_a_wrong_token_exits_as_not_logged_in_and_says_so(remote):
    wrong = "dbw_" + "x" * 43
    refused = remote(wrong, "list", "--db-type", "postgres")
    assert refused.returncode == NotLoggedIn.exit_code
    assert refused.stderr.startswith("dbwrapper: ") and "token is not valid" in refused.stderr
    assert wrong not in refused.stdout + refused.stderr


def test_reconcile_with_server_is_refused(remote, token_for):
    refused = remote(token_for(INSTRUCTOR), "reconcile")
    assert refused.returncode == InvalidInput.exit_code == 2
    assert "runs only on the service's machine" in refused.stderr


class Flaky(BaseHTTPRequestHandler):
    """A service that answers the first request 503 and the second 201, noting every key."""

    keys: list[str | None] = []

    def do_POST(self) -> None:
        self.keys.append(self.headers.get("Idempotency-Key"))
        self.rfile.read(int(self.headers["Content-Length"]))
        status, body = (503, {"status": 503, "detail": "busy"}) if len(self.keys) == 1 else (201, {"ok": True})
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: object) -> None:
        """Quiet."""


def test_a_retry_after_a_503_sends_the_same_idempotency_key_so_the_service_acts_once():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        answer = Client(f"http://127.0.0.1:{server.server_port}", "dbw_example").send("POST", "/databases", {})
    finally:
        server.shutdown()
    assert answer.status == 201
    [first, second] = Flaky.keys
    assert first and first == second


def test_an_instructor_runs_the_other_commands_remotely(remote, token_for, runtime, db_type):
    """Users, tokens, expiry, snapshots and archives: each says what the same command says here."""
    token = token_for(INSTRUCTOR)
    name, user = f"rm_{uuid.uuid4().hex[:8]}", f"ru{uuid.uuid4().hex[:8]}"

    def ok(*args: str) -> str:
        done = remote(token, *args)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert f"Added trainee {user}; password: " in ok("user", "add", user, "--quota", "2")
    assert f"New password for {user}: " in ok("user", "set-password", user)
    assert f"Removed {user}." in ok("user", "remove", user)
    assert "tests" in ok("token", "list", INSTRUCTOR)

    ok("create", "--db-type", db_type, "--name", name)
    try:
        assert f"{name} now expires: never (permanent)" in ok("expiry", "set", "--db-type", db_type, "--name", name,
                                                             "--permanent")
        assert "(in 2 days)" in ok("expiry", "set", "--db-type", db_type, "--name", name, "--days", "2.5")
        assert f"{db_type}:{name}" in ok("expiry", "list")

        ok("snapshot", "take", "--db-type", db_type, "--name", name)
        [snapshot] = runtime.snapshots.list(Actor(runtime.accounts.get(INSTRUCTOR)), db_type, name)[2]
        assert f"Reverted {name} to " in ok("snapshot", "revert", "--db-type", db_type, "--name", name,
                                            str(snapshot.id))
        assert "Deleted the snapshot " in ok("snapshot", "delete", "--db-type", db_type, "--name", name,
                                             str(snapshot.id))

        assert f"Archived {name} as " in ok("archive", "create", "--db-type", db_type, "--name", name, "--drop")
        [archive] = [line.split()[0] for line in ok("archive", "list").splitlines() if f"/{name}/" in line]
        restored = ok("archive", "restore", archive)
        assert f"{name}" in restored and "<- this one" in restored
        assert f"Deleted the archive {archive}." in ok("archive", "delete", archive)
    finally:
        ok("destroy", "--db-type", db_type, "--name", name)
