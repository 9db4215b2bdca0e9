"""The embedded PostgreSQL a newcomer gets when no server is configured."""

from __future__ import annotations

import os

from dbwrapper.config import Settings
from dbwrapper.embedded import ROOT_DATA_DIR, default_data_dir
from dbwrapper.engines import Engines
from dbwrapper.service import DatabaseService


def test_with_no_postgres_url_an_embedded_server_serves(tmp_path):
    engines = Engines(Settings(backend_urls={}, embedded_dir=tmp_path / "pg"))
    engines.start()
    try:
        assert engines.kinds == ["postgres"]
        assert engines.embedded_dir == (tmp_path / "pg").resolve()
        service = DatabaseService(engines)
        outcome = service.create("postgres")
        assert outcome.changed and outcome.name == "cwcuser_7001"
        assert service.destroy("postgres").changed
    finally:
        engines.stop()


def test_root_keeps_its_embedded_data_out_of_its_home():
    if os.geteuid() == 0:
        assert default_data_dir() == ROOT_DATA_DIR
    else:
        assert default_data_dir().is_relative_to(os.path.expanduser("~"))
