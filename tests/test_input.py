"""Bad input gets a clear 400 and nothing is executed; what must stay, stays."""

from __future__ import annotations

import threading
import time

import pytest
import requests
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from dbwrapper.backends import BACKEND_CLASSES
from dbwrapper.errors import InvalidInput
from dbwrapper.names import validate_name

HOSTILE_NAMES = [
    "x'; DROP DATABASE postgres; --",
    "x`; DROP DATABASE mysql; --",
    'x"; DROP DATABASE test; --',
    "two words",
    "semi;colon",
    "Capital",
    "1starts_with_digit",
    "ünïcødé",
    "x" * 64,
    "../../etc/passwd",
    "",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_names_are_refused_before_any_sql(browser, db_type, name, catalog):
    before = catalog(db_type)
    for method, action in (("get", "create_my_db"), ("get", "destroy_my_db"), ("post", "destroy_my_db")):
        kwargs = {"params" if method == "get" else "data": {"db_type": db_type, "name": name}}
        response = getattr(browser, method)(f"/dbi/{action}", **kwargs)
        assert response.status_code == 400, (action, response.text)
        assert "Database name" in response.text or "database name" in response.text
    assert catalog(db_type) == before


def test_the_longest_allowed_name_is_63_characters():
    assert validate_name("a" * 63) == "a" * 63
    with pytest.raises(InvalidInput, match="limit is 63"):
        validate_name("a" * 64)


@pytest.mark.parametrize("db_type_value", ["oracle", "", "postgres'--", "POSTGRES"])
def test_an_unknown_backend_is_a_400_naming_the_valid_ones(browser, db_type_value):
    response = browser.get("/dbi/create_my_db", params={"db_type": db_type_value})
    assert response.status_code == 400
    assert "valid values: postgres, mysql" in response.text


def test_a_missing_db_type_is_a_400(browser):
    response = browser.get("/dbi/list")
    assert response.status_code == 400
    assert "valid values: postgres, mysql" in response.text


def test_unknown_parameters_and_paths_are_named_in_a_400(browser):
    response = browser.get("/dbi/list", params={"db_type": "postgres", "colour": "red"})
    assert response.status_code == 400
    assert "Unknown parameter(s): colour" in response.text
    assert browser.get("/dbi/list/extra", params={"db_type": "postgres"}).status_code == 400


def test_create_is_not_a_post_and_destroy_is_not_a_put(browser):
    assert browser.post("/dbi/create_my_db", data={"db_type": "postgres"}).status_code == 405
    assert browser.put("/dbi/destroy_my_db", data={"db_type": "postgres"}).status_code == 405


def test_values_in_pages_are_escaped(browser):
    response = browser.get("/dbi/list", params={"db_type": "<script>alert(1)</script>"})
    assert response.status_code == 400
    assert "<script>" not in response.text
    assert "&lt;script&gt;" in response.text


@pytest.mark.parametrize("system_db", ["postgres", "template1", "mysql", "information_schema"])
def test_the_servers_own_databases_are_never_dropped(browser, db_type, system_db, catalog):
    before = catalog(db_type)
    response = browser.post("/dbi/destroy_my_db", data={"db_type": db_type, "name": system_db})
    assert response.status_code in (200, 409)  # 200 only when that name is not on this engine
    if system_db in before:
        assert response.status_code == 409
    assert catalog(db_type) == before


def test_a_database_dbwrapper_did_not_create_is_left_alone(browser, db_type, unmanaged_name, admin, catalog):
    with admin[db_type].connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {unmanaged_name}")  # behind the service's back: that is the point

    response = browser.post("/dbi/destroy_my_db", data={"db_type": db_type, "name": unmanaged_name})
    assert response.status_code == 409
    assert "not created by dbwrapper" in response.text
    assert unmanaged_name in catalog(db_type)


@pytest.mark.backend("postgres")
def test_a_busy_template_is_retried_then_the_create_goes_through(browser, server_urls, catalog, request):
    name = "t_busy_then_free"
    form = {"db_type": "postgres", "name": name}
    request.addfinalizer(lambda: browser.post("/dbi/destroy_my_db", data=form))
    template = _template1_session(server_urls["postgres"])
    # Someone on template1 blocks CREATE DATABASE; they leave after half a second.
    threading.Timer(0.5, template.close).start()
    response = browser.get("/dbi/create_my_db", params={"db_type": "postgres", "name": name})
    assert response.status_code == 200
    assert name in catalog("postgres")


@pytest.mark.backend("postgres")
def test_a_template_that_stays_busy_is_reported_clearly(browser, server_urls, catalog):
    name = "t_busy_forever"
    template = _template1_session(server_urls["postgres"])
    try:
        started = time.monotonic()
        response = browser.get("/dbi/create_my_db", params={"db_type": "postgres", "name": name})
        assert time.monotonic() - started < 15
    finally:
        template.close()
    assert response.status_code == 409
    assert "being accessed by other users" in response.text
    assert "close it and try again" in response.text
    assert name not in catalog("postgres")


def _template1_session(url: str):
    backend = BACKEND_CLASSES["postgres"]
    # NullPool: closing the connection must really end the session.
    engine = create_engine(backend.normalize_url(url).set(database="template1"), poolclass=NullPool)
    connection = engine.connect()
    connection.exec_driver_sql("SELECT 1")
    return connection


#: Forms whose fields reach code that wants text, by who may send them.
TWICE = [
    ("anonymous", "/login", [("name", "alice"), ("name", "bob"), ("password", "x")]),
    ("anonymous", "/login", [("name", "alice"), ("password", "x"), ("password", "y")]),
    ("trainee", "/archives/restore", [("archive", "postgres/a_1/20260101T000000_000000Z"), ("archive", "b")]),
    ("trainee", "/archives/delete", [("archive", "postgres/a_1/20260101T000000_000000Z"), ("archive", "b")]),
    ("instructor", "/users/remove", [("name", "alice"), ("name", "bob")]),
    ("instructor", "/users/set_password", [("name", "alice"), ("name", "bob")]),
]


@pytest.mark.backend("postgres")
@pytest.mark.parametrize(
    ("who", "path", "fields"), TWICE,
    ids=["login-name", "login-password", "archive-restore", "archive-delete", "user-remove", "user-password"],
)
def test_a_form_field_given_twice_is_a_400(anonymous, trainee, browser, who, path, fields):
    """CherryPy hands a handler a list for a field sent twice, which code wanting text (a
    regular expression, a dict key, a name lookup) would answer with a 500: the login page's
    for anyone on the network. Every page refuses it with a 400 that names the field."""
    session = {"anonymous": anonymous, "instructor": browser}.get(who) or trainee()
    if who == "anonymous":
        session.get("/login")
    answered = requests.Session.request(session, "POST", session.base_url + path,
                                        data=[*fields, ("csrf_token", session.csrf)], timeout=60)
    assert answered.status_code == 400, answered.text
    assert f"Give {fields[0][0] if fields[0][0] == fields[1][0] else fields[1][0]} once." in answered.text
