"""A server that hangs is a 503 naming it within seconds, and costs nobody else anything.

A hung server accepts connections and never answers: here a forwarder in front
of a real server (tests/tcpproxy.py) freezes what it holds open and answers
nothing new. The service runs as a user runs it (``dbwrapper serve``), its
registry in SQLite so that it stays up, with the defaults but a short deadline
(so that these tests wait a few seconds, not ten).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from sqlalchemy import Engine, make_url

from dbwrapper.backends.base import LISTING_CACHE_SECONDS
from dbwrapper.config import REQUESTS_PER_SERVER
from dbwrapper.gates import PAUSE_SECONDS
from dbwrapper.registry.store import READ_CACHE_SECONDS
from tests.conftest import INSTRUCTOR, INSTRUCTOR_PASSWORD, Browser
from tests.serving import LABELS, STOP_SECONDS, Service, serve, sqlite_registry
from tests.tcpproxy import TcpProxy, target_of, through

DEADLINE = 5
CONF = f"short_deadline_seconds = {DEADLINE}\n"
#: How long a request may take to get its 503 from a hung server: its deadline, and room
#: for a busy machine.
BOUND = DEADLINE + 20


@pytest.fixture
def service(db_type: str, server_url: str, proxy: TcpProxy, tmp_path: Path) -> Iterator[Service]:
    """``dbwrapper serve``, reaching the ``db_type`` server through ``proxy``."""
    with serve(tmp_path, {db_type: through(server_url, proxy)}, sqlite_registry(tmp_path), CONF) as running:
        yield running


@pytest.fixture
def instructor(service: Service) -> Iterator[Browser]:
    with service.browser() as browser:
        yield browser


def hung_answer(db_type: str, response: requests.Response, took: float) -> None:
    """``response`` is the 503 that names the hung server, and came within the bound."""
    assert response.status_code == 503, response.text
    assert f"The {LABELS[db_type]} server ({db_type} backend, " in response.text
    assert f"did not answer within {DEADLINE} s" in response.text
    assert took < BOUND


def timed(request, *args, **kwargs) -> tuple[requests.Response, float]:
    started = time.monotonic()
    response = request(*args, **kwargs)
    return response, time.monotonic() - started


def test_a_hung_server_is_a_503_naming_it_within_seconds_and_nothing_is_half_made(
    db_type, instructor, proxy, tmp_path
):
    where = {"db_type": db_type, "name": "hung_db"}
    made = instructor.get("/dbi/create_my_db", params={**where, "course": "franchise"})
    assert made.status_code == 200, made.text
    taken = instructor.post("/snapshots/take", data={**where, "label": "before"})
    assert taken.status_code == 200, taken.text
    number = taken.text.split("<tr>\n  <td>", 1)[1].split("<", 1)[0]

    proxy.hang()
    time.sleep(LISTING_CACHE_SECONDS)  # a listing is reused for a moment; then the server is asked
    for answer in (
        timed(instructor.get, "/dbi/list", params={"db_type": db_type}),
        timed(instructor.post, "/snapshots/take", data=where),
        timed(instructor.post, "/snapshots/revert", data={**where, "snapshot": number}),
        timed(instructor.post, "/archives/create", data=where),
        timed(instructor.get, "/dbi/create_my_db",
              params={"db_type": db_type, "name": "hung_db2", "course": "franchise"}),
    ):
        hung_answer(db_type, *answer)
    assert instructor.get("/courses/").status_code == 200  # the registry is elsewhere: its pages go on

    proxy.resume()
    time.sleep(PAUSE_SECONDS)  # then the next request tries the server again
    listing = instructor.get("/dbi/list", params={"db_type": db_type})
    assert listing.status_code == 200, listing.text
    assert "hung_db2" not in listing.text  # nothing half-made
    assert not [path for path in (tmp_path / "archives").rglob("*") if path.is_file()]
    snapshots = instructor.get("/snapshots/", params=where)
    assert snapshots.text.count("<tr>\n  <td>") == 1 and "before" in snapshots.text
    reverted = instructor.post("/snapshots/revert", data={**where, "snapshot": number})
    assert reverted.status_code == 200, reverted.text


def test_a_hung_server_holds_its_own_requests_and_lets_every_other_page_answer(
    db_type, service, instructor, proxy
):
    # A class's worth of sessions, and some more: more requests than the server's bound.
    browsers = [service.browser() for _ in range(REQUESTS_PER_SERVER + 5)]
    proxy.hang()
    time.sleep(LISTING_CACHE_SECONDS)
    with ThreadPoolExecutor(len(browsers)) as pool:
        stuck = [pool.submit(timed, browser.get, "/dbi/list", params={"db_type": db_type}) for browser in browsers]
        time.sleep(1)  # they are waiting on the hung server now

        for path in ("/static/style.css", "/login", "/"):
            page, took = timed(instructor.get, path)
            assert page.status_code == 200, (path, page.text)
            assert took < DEADLINE  # it answered while the others waited
        assert not all(request.done() for request in stuck)

        answers = [request.result() for request in stuck]
    for response, took in answers:
        assert response.status_code == 503, response.text
        assert f"{LABELS[db_type]} server ({db_type} backend, " in response.text
        assert took < BOUND
    refused = [response for response, _ in answers if "requests are already waiting" in response.text]
    assert refused, "past the bound, requests are refused at once"
    assert all(f"{REQUESTS_PER_SERVER} requests are already waiting for the {LABELS[db_type]} server" in response.text
               for response in refused)
    assert len(refused) <= len(browsers) - REQUESTS_PER_SERVER + 2  # the background jobs may hold a place or two
    for browser in browsers:
        browser.close()


def test_sigterm_stops_the_service_while_requests_wait_on_a_hung_server(db_type, service, proxy):
    browsers = [service.browser() for _ in range(5)]
    proxy.hang()
    time.sleep(LISTING_CACHE_SECONDS)
    with ThreadPoolExecutor(len(browsers)) as pool:
        stuck = [pool.submit(browser.get, "/dbi/list", params={"db_type": db_type}) for browser in browsers]
        time.sleep(1)  # they are waiting on the hung server now

        started = time.monotonic()
        service.process.terminate()
        assert service.process.wait(timeout=STOP_SECONDS) == 0
        assert time.monotonic() - started < BOUND
        for request in stuck:
            assert request.result().status_code == 503  # each got its answer before the service stopped
    for browser in browsers:
        browser.close()


def test_the_service_starts_while_a_server_hangs_and_uses_it_once_it_answers(
    db_type, server_url, proxy, tmp_path
):
    proxy.hang()
    started = time.monotonic()
    with serve(tmp_path, {db_type: through(server_url, proxy)}, sqlite_registry(tmp_path), CONF) as service:
        assert time.monotonic() - started < BOUND  # reconciling skipped the hung server
        with service.browser() as browser:
            hung_answer(db_type, *timed(browser.get, "/dbi/list", params={"db_type": db_type}))

            proxy.resume()
            time.sleep(PAUSE_SECONDS)
            listing = browser.get("/dbi/list", params={"db_type": db_type})
            assert listing.status_code == 200, listing.text


@pytest.fixture
def control_database(admin: dict[str, Engine]) -> Iterator[str]:
    """A throwaway database on the test PostgreSQL for a registry; dropped afterwards."""
    name = f"t_registry_{uuid.uuid4().hex[:8]}"
    # By hand, as an operator makes one: a registry's database is none the service manages.
    with admin["postgres"].connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    yield name
    with admin["postgres"].connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.backend("postgres")
def test_a_hung_registry_is_a_503_naming_it_not_a_frozen_service(server_urls, control_database, tmp_path):
    postgres = server_urls["postgres"]
    proxy = TcpProxy(target_of(postgres))
    proxy.start()
    registry = through(make_url(postgres).set(drivername="postgresql+psycopg2", database=control_database), proxy)
    try:
        with serve(tmp_path, {"postgres": postgres}, registry, CONF) as service, service.browser() as browser:
            assert browser.get("/").status_code == 200
            proxy.hang()

            time.sleep(READ_CACHE_SECONDS)  # each request reads its user from the registry again
            home, took = timed(browser.get, "/")
            assert home.status_code == 503, home.text
            assert "The control database (postgresql+psycopg2://postgres:***@127.0.0.1:" in home.text
            assert f"did not answer within {DEADLINE} s" in home.text
            assert took < BOUND
            with Browser(service.base) as someone:
                login, took = timed(someone.log_in, INSTRUCTOR, INSTRUCTOR_PASSWORD)
            assert login.status_code == 503 and "The control database (" in login.text
            assert took < BOUND
            assert requests.get(service.base + "/static/style.css", timeout=BOUND).status_code == 200

            proxy.resume()
            time.sleep(PAUSE_SECONDS)
            assert browser.get("/").status_code == 200
    finally:
        proxy.stop()
