"""The test PostgreSQL checks passwords over TCP, as a default install does.

Trainees log in to it with their own passwords (``psql -h 127.0.0.1``), so the
security tests need a server that really refuses a wrong one. A server named by
DBWRAPPER_TEST_POSTGRES_URL is its owner's to configure: for it, only the URL
itself is checked.
"""

from __future__ import annotations

import os

import pytest
from sqlalchemy import URL, create_engine, make_url, text
from sqlalchemy.exc import OperationalError

from tests.servers import TEST_URL_VARIABLES

pytestmark = pytest.mark.backend("postgres")


def _select_one(url: URL) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT 1")).scalar_one()
    finally:
        engine.dispose()


def _postgres_url(server_urls: dict[str, str]) -> URL:
    return make_url(server_urls["postgres"]).set(drivername="postgresql+psycopg2")


def test_the_postgres_url_logs_in(server_urls):
    assert _select_one(_postgres_url(server_urls)) == 1


@pytest.mark.skipif(
    bool(os.environ.get(TEST_URL_VARIABLES["postgres"])),
    reason=f"{TEST_URL_VARIABLES['postgres']} names the server: its authentication is its owner's",
)
def test_the_throwaway_postgres_refuses_a_wrong_password_over_tcp(server_urls):
    url = _postgres_url(server_urls)
    assert url.host == "127.0.0.1" and url.password
    with pytest.raises(OperationalError, match="password authentication failed"):
        _select_one(url.set(password=url.password + "-wrong"))
