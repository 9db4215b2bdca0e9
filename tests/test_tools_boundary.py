"""The engines' tools run as the database's own login, with a minimal environment, and a
course's SQL is SQL: the clients obey none of their own commands in it.

A web instructor uploads a course's SQL on the Courses page; psql and mysql
would run ``\\!``, ``system``, ``\\copy``, ``\\o``, ``source`` and the like from it
on the service's host, as the service's user. And the tools must not see the
service's environment (its super-user URLs, the first instructor's password).
"""

from __future__ import annotations

import json
import stat
import sys
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from dbwrapper.archives import Archives
from dbwrapper.errors import DbWrapperError
from dbwrapper.runtime import INSTRUCTOR_PASSWORD_VARIABLE
from dbwrapper.tools import find_tool
from tests.conftest import INSTRUCTOR_PASSWORD

#: Client commands that reach the host, per engine: each would make or write a file.
ESCAPES = {
    "postgres": [
        "\\! touch {mark}",
        "\\o {mark}",
        "\\copy (SELECT 1) TO '{mark}'",
        "\\setenv X 1\n\\! touch {mark}",
        "SELECT 1 \\g {mark}",
    ],
    "mysql": [
        "\\! touch {mark}",
        "system touch {mark}",
        "tee {mark}",
        "\\T {mark}",
        "pager touch {mark}",
    ],
}


@pytest.mark.parametrize("escape", range(5))
def test_client_commands_in_an_uploaded_course_never_run(browser, runtime, db_type, tmp_path, escape, catalog):
    mark = tmp_path / "escaped"
    sql = "CREATE TABLE boxes (n INTEGER);\n" + ESCAPES[db_type][escape].format(mark=mark) + "\nSELECT 1;\n"
    course = f"escape_{uuid.uuid4().hex[:8]}"
    field = {"postgres": "postgres_sql", "mysql": "mysql_sql"}[db_type]
    added = browser.post("/courses/add", data={"name": course}, files={field: ("evil.sql", sql.encode())})
    assert added.status_code == 200, added.text
    name = f"t_{uuid.uuid4().hex[:12]}"

    made = browser.get("/dbi/create_my_db", params={"db_type": db_type, "name": name, "course": course})
    assert made.status_code == 503, made.text  # the course does not load, and says why
    assert not mark.exists()
    assert name not in catalog(db_type)  # nothing half-made


def test_a_course_cannot_make_the_mysql_client_send_a_file_of_the_host(browser, runtime, instructor):
    course = f"infile_{uuid.uuid4().hex[:8]}"
    runtime.courses.add(instructor, course, "", {"mysql": (
        "CREATE TABLE stolen (line TEXT);\n"
        "LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE stolen;\n"
    )})
    name = f"t_{uuid.uuid4().hex[:12]}"
    with pytest.raises(DbWrapperError, match="mysql failed"):
        runtime.service.create(instructor, "mysql", name, course=course)


def test_psql_scripts_from_pg_dump_still_load_in_restricted_mode(runtime, instructor, rows):
    """pg_dump 17.6 and later open and close a plain dump with \\restrict KEY / \\unrestrict KEY:
    such an uploaded dump loads, its lines dropped, the script still restricted by ours."""
    course = f"dumped_{uuid.uuid4().hex[:8]}"
    runtime.courses.add(instructor, course, "", {"postgres": (
        "--\n-- PostgreSQL database dump\n--\n\n\\restrict AbC123\n\n"
        "SET statement_timeout = 0;\nSET transaction_timeout = 0;\n"
        "CREATE TABLE public.boxes (n integer);\n"
        "COPY public.boxes (n) FROM stdin;\n1\n2\n\\.\n\n\\unrestrict AbC123\n\n"
    )})
    name = f"t_{uuid.uuid4().hex[:12]}"
    runtime.service.create(instructor, "postgres", name, course=course)
    try:
        assert rows("postgres", name) == {"boxes": 2}
    finally:
        runtime.service.destroy(instructor, "postgres", name)


SPY = """#!{python}
import json, os, sys
with open({record!r}, "a") as out:
    out.write(json.dumps({{"tool": {tool!r}, "argv": sys.argv[1:], "env": dict(os.environ)}}) + "\\n")
os.execv({real!r}, [{real!r}, *sys.argv[1:]])
"""


def _spy(tmp_path: Path, tool: str, record: Path) -> Path:
    """A stand-in for ``tool`` that records its arguments and environment, then runs the real one."""
    spy = tmp_path / tool
    spy.write_text(SPY.format(python=sys.executable, record=str(record), tool=tool, real=find_tool(tool, {})))
    spy.chmod(spy.stat().st_mode | stat.S_IEXEC)
    return spy


def _runs(record: Path) -> list[dict]:
    return [json.loads(line) for line in record.read_text().splitlines() if line.strip()]


def test_archives_and_restores_run_the_tools_as_the_databases_login_with_a_minimal_environment(
    runtime, instructor, db_type, tmp_path, as_owner, server_urls
):
    name = f"t_{uuid.uuid4().hex[:12]}"
    runtime.service.create(instructor, db_type, name)
    with as_owner(db_type, name) as connection:
        connection.exec_driver_sql("CREATE TABLE boxes (n INTEGER)")
    backend = runtime.servers.backend(db_type)
    record = tmp_path / "runs.jsonl"
    client = backend.client
    tools = {tool: str(_spy(tmp_path, tool, record)) for tool in (client.dump_tool, *client.restore_tools)}
    spied = Archives(runtime.service, replace(runtime.settings, tools=tools))
    copy = f"{name}_2"
    try:
        manifest = spied.archive(instructor, db_type, name)
        spied.restore(instructor, manifest.id, into=copy)
    finally:
        runtime.service.destroy(instructor, db_type, name)
        runtime.service.destroy(instructor, db_type, copy)

    superuser_password = backend.url.password
    runs = _runs(record)
    assert {run["tool"] for run in runs} == {backend.client.dump_tool, *backend.client.restore_tools}
    for run in runs:
        env = run["env"]
        assert set(env) <= {"PATH", "LANG", "LC_ALL", "LC_CTYPE", "PGHOST", "PGPORT", "PGUSER",
                            "PGPASSWORD", "PGPASSFILE", "PGCONNECT_TIMEOUT", "MYSQL_PWD"}, sorted(env)
        assert INSTRUCTOR_PASSWORD not in json.dumps(run) and INSTRUCTOR_PASSWORD_VARIABLE not in env
        if superuser_password:
            assert superuser_password not in json.dumps(run)
        connects = "PGUSER" in env or any(arg.startswith("--user=") for arg in run["argv"])
        if connects:  # pg_restore printing an archive as SQL connects to nothing
            user = env.get("PGUSER") or next(a for a in run["argv"] if a.startswith("--user="))[7:]
            assert user in (name, copy), run["argv"]
