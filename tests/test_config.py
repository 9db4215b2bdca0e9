"""Settings come from app.conf, then the environment; names from the template."""

from __future__ import annotations

import pytest

from dbwrapper.backends import BACKEND_CLASSES
from dbwrapper.config import Settings, load_settings
from dbwrapper.db import Deadlines
from dbwrapper.errors import InvalidInput
from dbwrapper.names import render_name
from dbwrapper.registry.store import Registry
from dbwrapper.web.app import serve


def test_app_conf_sets_the_server_and_the_backends(tmp_path):
    conf = tmp_path / "app.conf"
    conf.write_text(
        '[global]\nserver.socket_port = 7100\nserver.thread_pool = 20\n'
        '[dbwrapper]\nmysql_url = "mysql://root@127.0.0.1:3306"\nname_template = "class_%(user)s"\n'
        '[/static]\ntools.gzip.on = True\n'
    )
    settings = load_settings(conf, environ={})
    assert settings.port == 7100
    assert settings.server_config == {"server.thread_pool": 20}
    assert settings.backend_urls == {"mysql": "mysql://root@127.0.0.1:3306"}
    assert render_name(settings.name_template, user="alice", port=settings.port) == "class_alice"
    assert settings.app_config == {"/static": {"tools.gzip.on": True}}


def test_the_environment_overrides_app_conf(tmp_path):
    conf = tmp_path / "app.conf"
    conf.write_text('[dbwrapper]\npostgres_url = "postgresql://file@127.0.0.1/postgres"\n')
    settings = load_settings(conf, environ={"DBWRAPPER_POSTGRES_URL": "postgresql://env@db/postgres"})
    assert settings.backend_urls == {"postgres": "postgresql://env@db/postgres"}


def test_defaults_give_the_first_instructor_cwcuser_7001(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no app.conf here
    settings = load_settings(environ={})
    assert (settings.host, settings.port) == ("127.0.0.1", 7001)
    assert render_name(settings.name_template, user=settings.first_instructor, port=settings.port) == (
        "cwcuser_7001"
    )
    assert render_name(settings.name_template, user="alice", port=settings.port) == "alice_7001"


def test_a_broken_config_file_is_a_clear_error(tmp_path):
    conf = tmp_path / "app.conf"
    conf.write_text("[global]\nserver.socket_port = seven\n")
    with pytest.raises(InvalidInput, match="not valid"):
        load_settings(conf, environ={})
    with pytest.raises(InvalidInput, match="Cannot read"):
        load_settings(tmp_path / "missing.conf", environ={})


def test_a_template_that_makes_a_bad_name_is_refused():
    with pytest.raises(InvalidInput, match="not allowed"):
        render_name("Class-%(port)s", user="alice", port=7001)
    with pytest.raises(InvalidInput, match="may use %\\(user\\)s and %\\(port\\)s"):
        render_name("class_%(group)s", user="alice", port=7001)


def test_every_logins_connection_limit_is_a_setting(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no app.conf here
    assert load_settings(environ={}).login_connection_limit == 10
    conf = tmp_path / "app.conf"
    conf.write_text("[dbwrapper]\nlogin_connection_limit = 25\n")
    assert load_settings(conf, environ={}).login_connection_limit == 25
    for wrong in ("0", '"many"', "2.5"):
        conf.write_text(f"[dbwrapper]\nlogin_connection_limit = {wrong}\n")
        with pytest.raises(InvalidInput, match="login_connection_limit is a whole number of connections, at least 1"):
            load_settings(conf, environ={})


def test_the_deadlines_and_the_bound_per_server_come_from_app_conf(tmp_path):
    conf = tmp_path / "app.conf"
    conf.write_text(
        "[dbwrapper]\nshort_deadline_seconds = 3\nlong_deadline_seconds = 120\nrequests_per_server = 20\n"
    )
    settings = load_settings(conf, environ={})
    assert (settings.short_deadline_seconds, settings.long_deadline_seconds) == (3, 120)
    assert settings.requests_per_server == 20

    conf.write_text("[dbwrapper]\nshort_deadline_seconds = 0\n")
    with pytest.raises(InvalidInput, match="short_deadline_seconds in app.conf must be a number above 0"):
        load_settings(conf, environ={})


def test_serve_refuses_a_bound_per_server_that_could_hold_every_thread():
    too_many = Settings(requests_per_server=60, server_config={"server.thread_pool": 60})
    with pytest.raises(InvalidInput, match=r"requests_per_server \(60\) must be below server.thread_pool \(60\)"):
        serve(too_many)


def test_a_url_without_a_password_has_none_left_to_show():
    """``mysql://root:@host`` means "no password": nothing (not a mask) is shown for it."""
    url = BACKEND_CLASSES["mysql"].normalize_url("mysql://root:@127.0.0.1:3306")
    assert url.password is None
    assert url.render_as_string(hide_password=True) == "mysql+pymysql://root@127.0.0.1:3306"


def test_mysql_server_wide_work_names_no_database_even_when_the_url_does():
    url = BACKEND_CLASSES["mysql"].normalize_url("mysql://root:secret@127.0.0.1:3306/shop")
    admin = BACKEND_CLASSES["mysql"].admin_url(url)
    assert admin.database is None
    assert admin.password == "secret"


def test_a_plain_postgresql_control_url_gets_dbwrapper_s_driver():
    """``postgresql://`` is what people write; the registry uses psycopg2 for it, as the backends do."""
    registry = Registry("postgresql://dbwrapper@127.0.0.1:1/control", Deadlines(short=1, long=1))
    assert registry.url.drivername == "postgresql+psycopg2"
