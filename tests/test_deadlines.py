"""Every database call has a deadline, and a server that misses one costs only its own users.

Here in this process, against the test servers behind a forwarder that can
hang (tests/tcpproxy.py); tests/test_server_hangs.py does the same to the
service as a user runs it.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator

import pytest
import sqlalchemy
from sqlalchemy import make_url, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from dbwrapper.backends import BACKEND_CLASSES, Backend
from dbwrapper.backends.base import Source
from dbwrapper.db import Deadlines, create_engine, long_deadline, one_off_engine
from dbwrapper.errors import BackendUnavailable
from dbwrapper.gates import PAUSE_SECONDS, Gates
from dbwrapper.tools import ToolFailed, run_tool
from tests.serving import LABELS
from tests.tcpproxy import TcpProxy, target_of, through


@pytest.fixture
def db_name(unmanaged_name: str) -> str:
    """These tests work beneath the service, on the backend's own calls: their databases are
    no registry's, made and dropped behind the service's back on purpose (see unmanaged_name)."""
    return unmanaged_name


SLEEP = {"postgres": "SELECT pg_sleep(:seconds)", "mysql": "SELECT SLEEP(:seconds)"}
#: Short, so that these tests wait little; far longer than any statement here takes.
DEADLINE = 2.0


@pytest.fixture
def backend(db_type: str, server_url: str, proxy: TcpProxy) -> Iterator[Backend]:
    """A backend reaching its server through ``proxy``, with short deadlines and room for two requests."""
    found = BACKEND_CLASSES[db_type](
        through(server_url, proxy), deadlines=Deadlines(short=DEADLINE, long=60), gates=Gates(2)
    )
    yield found
    found.dispose()


def timed(call) -> tuple[float, object]:
    """How long ``call()`` took, and what it returned or raised."""
    started = time.monotonic()
    try:
        outcome = call()
    except Exception as error:  # noqa: BLE001 - the tests look at what it was
        outcome = error
    return time.monotonic() - started, outcome


def test_a_statement_waits_its_deadline_and_no_longer(db_type, server_url):
    engine = create_engine(BACKEND_CLASSES[db_type].normalize_url(server_url), Deadlines(short=0.5, long=5))
    try:
        with engine.connect() as connection:
            with pytest.raises(OperationalError) as missed:
                connection.execute(text(SLEEP[db_type]), {"seconds": 2})
            assert missed.value.connection_invalidated  # its late answer is never read by anyone
        with engine.connect() as connection, long_deadline():
            connection.execute(text(SLEEP[db_type]), {"seconds": 1})  # a copy may take that long
    finally:
        engine.dispose()


def test_a_hung_server_is_a_503_naming_it_within_the_deadline(db_type, backend, proxy):
    backend.list_databases(fresh=True)
    proxy.hang()
    took, outcome = timed(lambda: backend.list_databases(fresh=True))  # on the pooled connection
    assert isinstance(outcome, BackendUnavailable)
    assert str(outcome).startswith(f"The {LABELS[db_type]} server ({db_type} backend, ")
    assert f"did not answer within {DEADLINE:g} s" in str(outcome)
    assert DEADLINE <= took < DEADLINE + 10


def test_after_a_missed_deadline_requests_fail_at_once_then_the_server_is_tried_again(db_type, backend, proxy):
    proxy.hang()
    timed(lambda: backend.list_databases(fresh=True))  # a new connection, never answered

    took, outcome = timed(lambda: backend.list_databases(fresh=True))
    assert isinstance(outcome, BackendUnavailable) and "did not answer within" in str(outcome)
    assert took < DEADLINE  # the pause: nobody waits a whole deadline again

    proxy.resume()
    time.sleep(PAUSE_SECONDS)
    assert backend.list_databases(fresh=True)  # the next request tries, and the server answers


def test_past_the_bound_a_request_is_refused_at_once(db_type, backend, proxy):
    backend.list_databases(fresh=True)
    proxy.hang()
    outcomes: list[object] = []
    waiting = [threading.Thread(target=lambda: outcomes.append(timed(lambda: backend.list_databases(fresh=True))))
               for _ in range(2)]
    for thread in waiting:
        thread.start()
    time.sleep(DEADLINE / 4)  # both are waiting on the hung server

    took, refused = timed(lambda: backend.list_databases(fresh=True))
    assert isinstance(refused, BackendUnavailable)
    assert str(refused).startswith(
        f"2 requests are already waiting for the {LABELS[db_type]} server ({db_type} backend, "
    )
    assert took < DEADLINE / 2
    for thread in waiting:
        thread.join()
    assert all(isinstance(outcome, BackendUnavailable) for _, outcome in outcomes)


def test_a_copy_gets_the_long_deadline_only_from_a_server_that_answers_now(db_type, backend, proxy, db_name):
    assert backend.create_database(db_name)
    copy = Source(db_name, owner=db_name)
    try:
        backend.list_databases(fresh=True)  # the pooled connection was used a moment ago
        proxy.hang()
        # A copy made on the server, its first statement under the long deadline (a minute here).
        took, outcome = timed(lambda: backend.create_database(f"{db_name}_copy", source=copy))
        assert isinstance(outcome, BackendUnavailable) and f"did not answer within {DEADLINE:g} s" in str(outcome)
        assert took < DEADLINE + 10
    finally:
        proxy.resume()
        time.sleep(PAUSE_SECONDS)
        backend.drop_database(f"{db_name}_copy", registered=False)
        backend.drop_database(db_name, registered=False)


def test_connecting_keeps_the_short_deadline_even_for_a_copy(db_type, server_url, proxy):
    url = BACKEND_CLASSES[db_type].normalize_url(through(server_url, proxy))
    engine = one_off_engine(url, Deadlines(short=DEADLINE, long=60))
    proxy.hang()
    with long_deadline():
        took, outcome = timed(engine.connect)
    assert isinstance(outcome, OperationalError)
    assert took < DEADLINE + 10


@pytest.mark.backend("postgres")
def test_a_session_keeps_the_settings_it_asks_for_beside_the_servers_own_limits(server_urls):
    url = BACKEND_CLASSES["postgres"].normalize_url(server_urls["postgres"])
    engine = one_off_engine(url, Deadlines(short=4), connect_args={"options": "-c search_path=pg_catalog"})
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SHOW search_path").scalar() == "pg_catalog"
        assert connection.exec_driver_sql("SHOW lock_timeout").scalar() == "2s"  # half the deadline


@pytest.mark.backend("postgres")
def test_a_connection_made_elsewhere_keeps_its_own_connect_timeout(server_urls):
    """psycopg2's wait callback is the whole process's, and libpq leaves connect_timeout to it."""
    url = BACKEND_CLASSES["postgres"].normalize_url(server_urls["postgres"])
    create_engine(url, Deadlines()).dispose()  # the callback is installed, as in the service
    proxy = TcpProxy(target_of(url))
    proxy.start()
    try:
        proxy.hang()
        elsewhere = sqlalchemy.create_engine(
            make_url(through(url, proxy)), connect_args={"connect_timeout": 2}, poolclass=NullPool
        )
        took, outcome = timed(elsewhere.connect)
    finally:
        proxy.stop()
    assert isinstance(outcome, OperationalError)
    assert took < 2 + 10


def test_a_tool_that_does_not_finish_is_stopped_at_its_deadline():
    took, outcome = timed(lambda: run_tool([sys.executable, "-c", "import time; time.sleep(30)"], {}, timeout=0.5))
    assert isinstance(outcome, ToolFailed)
    assert "did not finish within 0.5 s" in str(outcome)
    assert took < 10
