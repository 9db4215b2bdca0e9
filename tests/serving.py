"""``dbwrapper serve`` in a process of its own, as a user runs it, for the tests that take its servers away.

Its registry is wherever the test says (SQLite, so that it stays up while a
server is down; or a server behind a forwarder the test cuts), and its archives
go to the test's temporary directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from dbwrapper.runtime import INSTRUCTOR_PASSWORD_VARIABLE
from tests.conftest import INSTRUCTOR, INSTRUCTOR_PASSWORD, Browser
from tests.servers import free_port

#: How messages name each engine.
LABELS = {"postgres": "PostgreSQL", "mysql": "MySQL/MariaDB"}
#: The checkout under test, which the service must run, whatever the environment's own
#: installation of dbwrapper points to.
PROJECT = Path(__file__).resolve().parents[1]
#: Seconds ``dbwrapper serve`` may take to start (it loads nothing big) and to stop.
START_SECONDS = 60
STOP_SECONDS = 60


@dataclass(frozen=True)
class Service:
    """A running ``dbwrapper serve``: its process, its address and its log."""

    process: subprocess.Popen[bytes]
    base: str
    log: Path

    def browser(self) -> Browser:
        """A new browser on the service, logged in as the first instructor."""
        browser = Browser(self.base)
        assert browser.log_in(INSTRUCTOR, INSTRUCTOR_PASSWORD).status_code == 200
        return browser

    def wait_until_up(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            try:
                requests.get(self.base + "/static/style.css", timeout=1)
                return
            except requests.ConnectionError:
                time.sleep(0.1)
        raise AssertionError(f"dbwrapper serve did not start:\n{self.log.read_text()}")


def sqlite_registry(tmp_path: Path) -> str:
    """A registry in a file: it stays up whatever happens to the database servers."""
    return f"sqlite:///{tmp_path / 'registry.sqlite'}"


@contextmanager
def serve(tmp_path: Path, backend_urls: Mapping[str, str], control_url: str, conf: str = "") -> Iterator[Service]:
    """``dbwrapper serve`` offering ``backend_urls`` (by ``db_type``), its registry at ``control_url``,
    with ``conf`` added to its app.conf's ``[dbwrapper]`` section; stopped afterwards."""
    # Only the backends given, and no embedded PostgreSQL standing in for a missing one.
    (tmp_path / "app.conf").write_text(f"[dbwrapper]\nembedded = False\n{conf}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBWRAPPER_")}
    env |= {f"DBWRAPPER_{kind.upper()}_URL": url for kind, url in backend_urls.items()}
    env |= {"DBWRAPPER_CONTROL_URL": control_url, "DBWRAPPER_ARCHIVE_DIR": str(tmp_path / "archives")}
    env[INSTRUCTOR_PASSWORD_VARIABLE] = INSTRUCTOR_PASSWORD
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT), env.get("PYTHONPATH")]))
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "dbwrapper", "serve", "--port", str(port)],
            env=env, cwd=tmp_path, stdout=output, stderr=subprocess.STDOUT,
        )
        try:
            service = Service(process, f"http://127.0.0.1:{port}", log)
            service.wait_until_up()
            yield service
        finally:
            process.terminate()
            try:
                process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()  # a test of stopping failed; leave nothing running
                process.wait()
