"""The embedded PostgreSQL a newcomer gets when no server is configured."""

from __future__ import annotations

import os

from dbwrapper.accounts import Actor
from dbwrapper.config import Settings
from dbwrapper.embedded import ROOT_DATA_DIR, default_data_dir
from dbwrapper.runtime import INSTRUCTOR_PASSWORD_VARIABLE, Runtime


def test_with_no_postgres_url_an_embedded_server_serves(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(INSTRUCTOR_PASSWORD_VARIABLE, raising=False)
    runtime = Runtime(Settings(backend_urls={}, embedded_dir=tmp_path / "pg"))
    runtime.start()
    try:
        assert runtime.engines.kinds == ["postgres"]
        assert runtime.engines.embedded_dir == (tmp_path / "pg").resolve()
        assert "instructor 'cwcuser' was created with password" in capsys.readouterr().out
        instructor = Actor(runtime.accounts.get("cwcuser"))
        outcome = runtime.service.create(instructor, "postgres")
        assert outcome.changed and outcome.name == "cwcuser_7001"
        assert runtime.service.destroy(instructor, "postgres").changed
    finally:
        runtime.stop()


def test_root_keeps_its_embedded_data_out_of_its_home():
    if os.geteuid() == 0:
        assert default_data_dir() == ROOT_DATA_DIR
    else:
        assert default_data_dir().is_relative_to(os.path.expanduser("~"))
