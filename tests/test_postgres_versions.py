"""Older PostgreSQL servers, with the tools dbwrapper finds by default (the wheel's, 18).

pg_dump and pg_restore 17 and later write ``SET transaction_timeout``, which
PostgreSQL 13 to 16 do not know: a restore must still work there, and
archives made by earlier releases of dbwrapper must still restore.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest

from dbwrapper.accounts import Actor
from dbwrapper.backends.postgresql.psqlscript import FIRST_WITH_TRANSACTION_TIMEOUT
from dbwrapper.config import Settings
from dbwrapper.runtime import Runtime
from dbwrapper.tools import find_tool, wheel_bin
from tests.conftest import INSTRUCTOR, login_of
from tests.servers import free_port
from tests.test_courses import FRANCHISE

pytestmark = pytest.mark.backend("postgres")


@pytest.fixture
def older(older_postgres_url: str, tmp_path: Path) -> Iterator[Runtime]:
    """The service against the older server, its registry in SQLite, nothing of it configured
    but the server's URL: the tools are the ones it finds by itself."""
    settings = Settings(
        port=free_port(), backend_urls={"postgres": older_postgres_url}, embedded=False,
        control_url=f"sqlite:///{tmp_path / 'registry.sqlite'}", archive_dir=tmp_path / "archives",
        pool_size=0, expiry_check_seconds=24 * 3600,
    )
    runtime = Runtime(settings)
    runtime.start()
    yield runtime
    runtime.stop()


def _counts(runtime: Runtime, name: str) -> dict[str, int]:
    return runtime.servers.backend("postgres").catalog.table_counts(name, login_of(runtime, "postgres", name))


def test_an_archive_restores_on_an_older_server_with_the_default_tools(older):
    instructor = Actor(older.accounts.get(INSTRUCTOR))
    backend = older.servers.backend("postgres")
    assert backend.catalog.server_major() < FIRST_WITH_TRANSACTION_TIMEOUT
    older.service.create(instructor, "postgres", "course_db", course="franchise")
    manifest = older.archives.archive(instructor, "postgres", "course_db")
    assert manifest.server_version.startswith(str(backend.catalog.server_major()))

    older.archives.restore(instructor, manifest.id, into="course_copy")
    assert _counts(older, "course_copy") == FRANCHISE
    older.archives.restore(instructor, manifest.id)  # over the original
    assert _counts(older, "course_db") == FRANCHISE


def test_an_archive_made_by_an_earlier_release_still_restores(older):
    """Earlier releases wrote manifests of format 1, their time in whole seconds."""
    instructor = Actor(older.accounts.get(INSTRUCTOR))
    older.service.create(instructor, "postgres", "old_db", course="franchise")
    manifest = older.archives.archive(instructor, "postgres", "old_db")
    manifest_path = older.archives.directory / manifest.id.rsplit("/", 1)[0] / f"{manifest.id.rsplit('/', 1)[1]}.json"
    earlier = {**asdict(manifest), "format": 1, "created_at": manifest.created_at[:19] + "+00:00"}
    manifest_path.write_text(json.dumps(earlier, indent=2))
    older.service.destroy(instructor, "postgres", "old_db")

    older.archives.restore(instructor, manifest.id)
    assert _counts(older, "old_db") == FRANCHISE


def test_the_default_tools_are_newer_than_the_server(older):
    """What makes these tests worth running: the tools found are the wheel's, not the server's."""
    for tool in ("pg_dump", "pg_restore", "psql"):
        assert find_tool(tool, older.settings.tools) == str(wheel_bin() / tool)
    assert older.servers.backend("postgres").catalog.server_major() < FIRST_WITH_TRANSACTION_TIMEOUT
