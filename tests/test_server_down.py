"""A server that goes away is a 503 naming it; the service keeps running and recovers.

The service runs as a user runs it (``dbwrapper serve``), connected to each
database server through a TCP forwarder the test can cut.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dbwrapper.backends.base import LISTING_CACHE_SECONDS
from tests.conftest import Browser
from tests.serving import LABELS, serve, sqlite_registry
from tests.tcpproxy import TcpProxy, through


@pytest.fixture
def served(db_type: str, server_url: str, proxy: TcpProxy, tmp_path: Path) -> Iterator[Browser]:
    """``dbwrapper serve`` in its own process, reaching the ``db_type`` server through
    ``proxy``; its registry in SQLite, so that it stays up while the server is down.
    Yields the first instructor's browser, logged in."""
    with (
        serve(tmp_path, {db_type: through(server_url, proxy)}, sqlite_registry(tmp_path)) as service,
        service.browser() as browser,
    ):
        yield browser


def test_an_unreachable_server_is_a_503_and_the_service_recovers(db_type, served, proxy):
    assert served.get("/dbi/list", params={"db_type": db_type}).status_code == 200

    proxy.stop()
    time.sleep(LISTING_CACHE_SECONDS)  # a listing is reused for a moment; then the server is asked
    down = served.get("/dbi/list", params={"db_type": db_type})
    assert down.status_code == 503
    assert f"The {LABELS[db_type]} server ({db_type} backend, " in down.text
    assert "cannot be reached" in down.text
    assert "Check that the server is running" in down.text
    assert "Traceback" not in down.text
    # The service itself is still up.
    assert served.get("/").status_code == 200

    proxy.start()
    back = served.get("/dbi/list", params={"db_type": db_type})
    assert back.status_code == 200


def test_a_restart_while_the_service_is_idle_goes_unnoticed(db_type, served, proxy):
    assert served.get("/dbi/list", params={"db_type": db_type}).status_code == 200

    # The server goes away and comes back while the pooled connection sits idle.
    proxy.stop()
    proxy.start()
    time.sleep(1.5)

    after = served.get("/dbi/list", params={"db_type": db_type})
    assert after.status_code == 200, after.text


def test_snapshots_and_course_copies_meet_a_down_server_with_a_503_and_lose_nothing(db_type, served, proxy):
    made = served.get("/dbi/create_my_db", params={"db_type": db_type, "name": "down_db", "course": "franchise"})
    assert made.status_code == 200, made.text
    where = {"db_type": db_type, "name": "down_db"}
    taken = served.post("/snapshots/take", data={**where, "label": "before"})
    assert taken.status_code == 200, taken.text
    number = taken.text.split("<tr>\n  <td>", 1)[1].split("<", 1)[0]

    proxy.stop()
    for path, data in (("/snapshots/take", where), ("/snapshots/revert", {**where, "snapshot": number})):
        down = served.post(path, data=data)
        assert down.status_code == 503, (path, down.text)
        assert f"The {LABELS[db_type]} server ({db_type} backend, " in down.text
    copy = served.get("/dbi/create_my_db", params={"db_type": db_type, "name": "down_db2", "course": "franchise"})
    assert copy.status_code == 503
    archived = served.post("/archives/create", data=where)
    assert archived.status_code == 503, archived.text
    assert f"The {LABELS[db_type]} server ({db_type} backend, " in archived.text
    assert served.get("/courses/").status_code == 200  # the registry is elsewhere: the page still works

    proxy.start()
    listed = served.get("/snapshots/", params=where)
    assert listed.status_code == 200 and "before" in listed.text
    reverted = served.post("/snapshots/revert", data={**where, "snapshot": number})
    assert reverted.status_code == 200, reverted.text
    assert "down_db2" not in served.get("/dbi/list", params={"db_type": db_type}).text  # nothing half-made
