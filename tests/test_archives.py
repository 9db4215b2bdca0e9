"""Archives: dumped by the engine's own tool, verified, restored; nothing lost on failure."""

from __future__ import annotations

import shlex
import stat
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import text

from dbwrapper.accounts import Actor
from dbwrapper.archives import Archives
from dbwrapper.backends import BACKEND_CLASSES
from dbwrapper.backends.base import Login
from dbwrapper.errors import Forbidden, Refused
from dbwrapper.runtime import Runtime
from dbwrapper.tools import ToolFailed, find_tool
from tests.conftest import INSTRUCTOR, login_of


@pytest.fixture
def stocked(runtime, instructor, db_type, db_name, as_owner):
    """A managed database with a franchise's paper clips in it, put there by its owner."""
    runtime.service.create(instructor, db_type, db_name)
    with as_owner(db_type, db_name) as connection:
        connection.execute(text("CREATE TABLE stores (id INTEGER PRIMARY KEY, city VARCHAR(40))"))
        connection.execute(text("CREATE TABLE stock (store INTEGER, item VARCHAR(40), boxes INTEGER)"))
        connection.execute(text("INSERT INTO stores VALUES (1, 'Boston'), (2, 'Denver')"))
        connection.execute(
            text("INSERT INTO stock VALUES (:store, 'paper clips', :boxes)"),
            [{"store": 1, "boxes": 50}, {"store": 2, "boxes": 30}, {"store": 2, "boxes": 20}],
        )
    return db_name


def boxes(runtime, db_type, name) -> int:
    backend = runtime.servers.backend(db_type)
    with backend.as_owner(name, login_of(runtime, db_type, name)) as connection:
        return connection.execute(text("SELECT sum(boxes) FROM stock")).scalar_one()


def files_of(archives: Archives) -> set[Path]:
    return {path for path in archives.directory.rglob("*") if path.is_file()}


def test_an_archive_has_a_manifest_and_restores_into_a_new_database(
    runtime, instructor, db_type, stocked, catalog, request
):
    manifest = runtime.archives.archive(instructor, db_type, stocked)
    assert manifest.tables == {"stores": 2, "stock": 3}
    assert manifest.engine == db_type and manifest.owner == INSTRUCTOR
    assert len(manifest.sha256) == 64 and manifest.size_bytes > 0
    assert manifest in runtime.archives.list(instructor)

    copy = f"{stocked}_copy"
    request.addfinalizer(lambda: runtime.service.destroy(instructor, db_type, copy))
    outcome = runtime.archives.restore(instructor, manifest.id, into=copy)
    assert outcome.summary == f"Restored {copy} from {manifest.id}."
    assert boxes(runtime, db_type, copy) == 100
    assert outcome.credentials is not None  # the new database has its own login


def test_restoring_over_the_original_keeps_what_it_held_as_an_archive(
    runtime, instructor, db_type, stocked, as_owner
):
    manifest = runtime.archives.archive(instructor, db_type, stocked)
    with as_owner(db_type, stocked) as connection:
        connection.execute(text("DELETE FROM stock"))  # a trainee breaks their data

    runtime.archives.restore(instructor, manifest.id)
    assert boxes(runtime, db_type, stocked) == 100
    before_restore = [m for m in runtime.archives.list(instructor) if m.database == stocked][0]
    assert before_restore.tables == {"stores": 2, "stock": 0}


def test_archive_and_drop_drops_only_after_the_archive_is_verified(
    runtime, instructor, db_type, stocked, catalog
):
    manifest = runtime.archives.archive(instructor, db_type, stocked, drop=True)
    assert stocked not in catalog(db_type)
    runtime.archives.restore(instructor, manifest.id)
    assert boxes(runtime, db_type, stocked) == 100


def test_tables_with_any_name_a_trainee_may_choose_are_archived_and_restored(
    runtime, instructor, db_type, stocked, request, as_owner, rows
):
    odd = ["order lines", 'say "hi"', "it`s", "café", "Mixed Case"]
    with as_owner(db_type, stocked) as connection:
        for number, table in enumerate(odd):
            quoted = connection.dialect.identifier_preparer.quote_identifier(table)
            connection.execute(text(f"CREATE TABLE {quoted} (n INTEGER)"))
            connection.execute(text(f"INSERT INTO {quoted} VALUES (:n)"), [{"n": n} for n in range(number + 1)])

    manifest = runtime.archives.archive(instructor, db_type, stocked)
    assert manifest.tables == {"stores": 2, "stock": 3} | {table: n + 1 for n, table in enumerate(odd)}
    copy = f"{stocked}_copy"
    request.addfinalizer(lambda: runtime.service.destroy(instructor, db_type, copy))
    runtime.archives.restore(instructor, manifest.id, into=copy)  # its counts are checked against the manifest
    assert rows(db_type, copy) == manifest.tables


def _broken(runtime, tmp_path: Path, db_type: str, script: str) -> Archives:
    """Archives whose dump tool is ``script`` (with $REAL the real tool)."""
    backend = runtime.servers.backend(db_type)
    real = find_tool(backend.client.dump_tool, {})
    wrapper = tmp_path / backend.client.dump_tool
    wrapper.write_text(f"#!/bin/sh\nREAL={real}\n{script}\n")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    settings = replace(runtime.settings, tools={backend.client.dump_tool: str(wrapper)})
    return Archives(runtime.service, settings)


@pytest.mark.parametrize(
    "failure, script",
    [
        ("the dump tool fails", 'echo "dump: connection lost" >&2; exit 1'),
        # A 4 kB file size limit: the tool gets EFBIG mid-way, as on a full disk.
        ("the disk fills mid-way", 'ulimit -f 4; exec "$REAL" "$@"'),
    ],
)
def test_a_failed_archive_leaves_no_file_and_drops_nothing(
    runtime, instructor, db_type, stocked, catalog, tmp_path, failure, script, as_owner
):
    with as_owner(db_type, stocked) as connection:
        connection.execute(
            text("INSERT INTO stock VALUES (:store, :item, 1)"),
            [{"store": 3, "item": f"item {i} " + "x" * 30} for i in range(2000)],
        )
    broken = _broken(runtime, tmp_path, db_type, script)
    before = files_of(broken)
    with pytest.raises(ToolFailed):
        broken.archive(instructor, db_type, stocked, drop=True)
    assert stocked in catalog(db_type)
    assert files_of(broken) == before


def test_rows_written_while_archiving_never_make_the_manifest_disagree_with_the_archive(
    runtime, instructor, db_type, stocked, catalog, tmp_path, rows
):
    """A trainee keeps working while their database is archived (expiry does not ask them):
    the manifest counts the rows the archive holds, so restoring it passes its own check."""
    backend = runtime.servers.backend(db_type)
    owner = login_of(runtime, db_type, stocked)
    client = backend.client.script_command(find_tool(backend.client.client_tool, {}), stocked, owner)
    password = {"postgres": "PGPASSWORD", "mysql": "MYSQL_PWD"}[db_type]
    # The dump tool starts a moment after the archive did, and a row arrives in between.
    insert = "INSERT INTO stock VALUES (3, 'late paper clips', 7);"
    broken = _broken(runtime, tmp_path, db_type,
                     f"sleep 0.5; echo {shlex.quote(insert)} | {password}={shlex.quote(owner.password)} "
                     f"{shlex.join(client)}; exec \"$REAL\" \"$@\"")

    manifest = broken.archive(instructor, db_type, stocked)
    assert boxes(runtime, db_type, stocked) == 107  # the row arrived
    restored = f"{stocked}_restored"
    broken.restore(instructor, manifest.id, into=restored)  # raises if the counts disagree
    assert rows(db_type, restored) == manifest.tables
    runtime.service.destroy(instructor, db_type, restored)


@pytest.mark.parametrize("db_type", ["mysql"])
@pytest.mark.parametrize("layout", ["--skip-extended-insert", "--net-buffer-length=4096"])
def test_mysql_archives_count_the_rows_in_the_dump_itself(
    runtime, instructor, db_type, stocked, tmp_path, layout, as_owner
):
    """MySQL cannot share mysqldump's snapshot, so the rows are counted in the file: a statement
    per row or many rows per statement, whatever the values hold."""
    awkward = ["it's", "a),\n(b", "ends;\n", "ends;", "back\\slash", "(", "", "line\r\nbreak", "\U0001F4CE"]
    with as_owner(db_type, stocked) as connection:
        connection.execute(
            text("INSERT INTO stock VALUES (3, :item, 1)"),
            [{"item": awkward[i % len(awkward)]} for i in range(300)],
        )
    # --no-defaults comes first, as mysqldump requires; the layout's option after it.
    broken = _broken(runtime, tmp_path, db_type, f'first=$1; shift; exec "$REAL" "$first" {layout} "$@"')

    manifest = broken.archive(instructor, db_type, stocked)
    assert manifest.tables == {"stores": 2, "stock": 303}
    broken.restore(instructor, manifest.id, into=f"{stocked}_2")  # raises if the counts disagree
    runtime.service.destroy(instructor, db_type, f"{stocked}_2")


@pytest.mark.parametrize("db_type", ["mysql"])
def test_rows_on_one_line_as_oracle_mysqldump_writes_them_are_counted_too(runtime, db_type, tmp_path):
    dump = tmp_path / "oracle.sql"
    dump.write_bytes(
        b"-- MySQL dump 10.13\n"
        b"CREATE TABLE `notes` (\n  `id` int NOT NULL\n) ENGINE=InnoDB;\n"
        b"INSERT INTO `notes` VALUES (1,'a),(b'),(2,'it\\'s (x)'),(3,NULL),(4,_binary 'x\\\\');\n"
        b"INSERT INTO `notes` VALUES (5,'\\n;');\n"
        b"CREATE TABLE `empty` (\n  `id` int NOT NULL\n) ENGINE=InnoDB;\n"
    )
    backend = runtime.servers.backend(db_type)
    assert backend.client.archive_tables({}, str(dump)) == {"notes": 5, "empty": 0}


def test_a_damaged_archive_is_refused(runtime, instructor, db_type, stocked):
    manifest = runtime.archives.archive(instructor, db_type, stocked)
    path = runtime.archives.directory / db_type / stocked / manifest.file
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ToolFailed, match="does not match its checksum"):
        runtime.archives.restore(instructor, manifest.id, into=f"{stocked}_2")


def test_trainees_archive_and_restore_only_their_own(runtime, trainee, instructor, db_type, stocked):
    alice = Actor(runtime.accounts.get(trainee().user_name))
    with pytest.raises(Forbidden):
        runtime.archives.archive(alice, db_type, stocked)
    manifest = runtime.archives.archive(instructor, db_type, stocked)
    with pytest.raises(Forbidden):
        runtime.archives.restore(alice, manifest.id, into=f"{alice.name}_stolen")
    assert manifest not in runtime.archives.list(alice)


def test_passwords_never_reach_a_tools_command_line(db_type):
    password, owners = "Pa55-word-of-the-day", "0wner-pa55word"
    url = {"postgres": "postgresql://admin:{}@127.0.0.1:1/x", "mysql": "mysql://admin:{}@127.0.0.1:1"}
    backend = BACKEND_CLASSES[db_type](url[db_type].format(password))
    login = Login("some_login", owners)
    try:
        for argv in (
            backend.client.dump_command("dump", "some_db", "/tmp/archive", login),
            backend.client.sql_dump_command("dump", "some_db", login),
            backend.client.script_command("client", "some_db", login),
        ):
            assert not any(password in arg or owners in arg for arg in argv)
        tool_env = backend.client.tool_env
        assert password in tool_env().values()
        assert owners in tool_env(login).values() and password not in tool_env(login).values()
    finally:
        backend.dispose()


def test_archives_on_the_command_line(cli, runtime, instructor, db_type, stocked):
    made = cli("archive", "create", "--db-type", db_type, "--name", stocked)
    assert made.returncode == 0, made.stderr
    archive_id = made.stdout.split(" as ", 1)[1].split(" ", 1)[0]
    assert archive_id in cli("archive", "list").stdout
    restored = cli("archive", "restore", archive_id, "--into", f"{stocked}_cli")
    runtime.service.registry.refresh()  # the command line recorded it, in another process
    try:
        assert restored.returncode == 0, restored.stderr
        assert boxes(runtime, db_type, f"{stocked}_cli") == 100
    finally:
        runtime.service.destroy(instructor, db_type, f"{stocked}_cli")


def test_a_trainee_archives_and_restores_from_the_web(trainee, db_type):
    alice = trainee(quota=2)
    own = f"{alice.user_name}_7"
    assert alice.get("/dbi/create_my_db", params={"db_type": db_type, "name": own}).status_code == 200
    archived = alice.post("/archives/create", data={"db_type": db_type, "name": own})
    assert archived.status_code == 200
    archive_id = archived.text.split(f"Archived {own} as ", 1)[1].split(",", 1)[0]
    assert f"<code>{archive_id}</code>" in alice.get("/archives/").text

    copy = alice.post("/archives/restore", data={"archive": archive_id, "into": f"{alice.user_name}_8"})
    assert copy.status_code == 200, copy.text
    assert f"Restored {alice.user_name}_8 from {archive_id}." in copy.text
    over = alice.post("/archives/restore", data={"archive": archive_id})
    assert over.status_code == 200, over.text


def test_archive_pages_need_a_login_and_a_csrf_token(anonymous, browser, db_type):
    assert anonymous.get("/archives/", allow_redirects=False).status_code == 303
    browser.csrf = ""
    refused = browser.post("/archives/create", data={"db_type": db_type, "name": "x"})
    assert refused.status_code == 403


def test_an_archive_that_lacks_a_table_is_not_kept(runtime, instructor, db_type, stocked, catalog, tmp_path):
    leave_out = {
        "postgres": 'exec "$REAL" --exclude-table=stock "$@"',
        # DB: the last argument; --no-defaults stays first, as mysqldump requires.
        "mysql": 'for DB; do :; done; first=$1; shift; exec "$REAL" "$first" --ignore-table="$DB.stock" "$@"',
    }[db_type]
    broken = _broken(runtime, tmp_path, db_type, leave_out)
    before = files_of(broken)
    with pytest.raises(ToolFailed, match="lacks the tables stock"):
        broken.archive(instructor, db_type, stocked, drop=True)
    assert stocked in catalog(db_type)
    assert files_of(broken) == before


def test_a_trainee_keeps_at_most_their_quota_of_archives(runtime, trainee, db_type):
    alice = trainee()
    alice.get("/dbi/create_my_db", params={"db_type": db_type})
    name = f"{alice.user_name}_{runtime.settings.port}"
    me = Actor(runtime.accounts.get(alice.user_name))
    archives = Archives(runtime.service, replace(runtime.settings, archive_quota=2))
    first = archives.archive(me, db_type, name)
    archives.archive(me, db_type, name)
    with pytest.raises(Refused, match="already keeps 2 archive"):
        archives.archive(me, db_type, name)
    archives.restore(me, first.id)  # the safety archive of a restore is kept past the quota
    assert len(archives.list(me)) == 3

    for manifest in archives.list(me)[:2]:
        archives.delete(me, manifest.id)
    assert archives.archive(me, db_type, name).database == name


def test_archives_are_readable_by_the_service_alone(runtime, instructor, db_type, stocked):
    manifest = runtime.archives.archive(instructor, db_type, stocked)
    folder = runtime.archives.directory / db_type / stocked
    for path in (runtime.archives.directory, folder.parent, folder):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert {path.suffix for path in folder.iterdir()} >= {".json", Path(manifest.file).suffix}


def test_a_new_trainee_with_an_old_trainees_name_gets_none_of_their_archives(runtime, base_url, db_type):
    name = f"re{uuid.uuid4().hex[:6]}"
    instructor = Actor(runtime.accounts.get(INSTRUCTOR))
    first, _ = runtime.accounts.add(name, "trainee", by="tests")
    runtime.service.create(Actor(first), db_type)
    manifest = runtime.archives.archive(Actor(first), db_type, None)
    runtime.service.destroy(instructor, db_type, manifest.database)
    runtime.accounts.remove(name, by="tests")

    second, _ = runtime.accounts.add(name, "trainee", by="tests")  # next term, someone else
    try:
        assert runtime.archives.list(Actor(second)) == []
        with pytest.raises(Forbidden):
            runtime.archives.restore(Actor(second), manifest.id)
        assert manifest in runtime.archives.list(instructor)
    finally:
        runtime.accounts.remove(name, by="tests")


def test_a_failed_restore_leaves_nothing_behind(runtime, instructor, db_type, stocked, tmp_path, catalog):
    manifest = runtime.archives.archive(instructor, db_type, stocked)
    backend = runtime.servers.backend(db_type)
    client = backend.client.restore_tools[-1]  # the tool that runs the SQL: psql, mysql
    wrapper = tmp_path / client
    wrapper.write_text('#!/bin/sh\ncat >/dev/null; echo "ERROR: out of shared memory" >&2; exit 3\n')
    wrapper.chmod(0o700)
    broken = Archives(runtime.service, replace(runtime.settings, tools={client: str(wrapper)}))
    copy = f"{stocked}_restored"

    with pytest.raises(ToolFailed, match="out of shared memory"):
        broken.restore(instructor, manifest.id, into=copy)
    assert runtime.service.registry.database(db_type, copy) is None
    assert copy not in catalog(db_type)


def test_restoring_over_and_over_keeps_a_trainees_archives_within_their_quota_and_one(trainee, runtime, db_type):
    """A restore over the original first archives what the database holds, past the quota, so
    that a restore is not refused for want of room; but only once: restoring again and again
    would fill the service's disk with whole copies, until archives and the expiry job (which
    archives before it drops) fail for everyone."""
    alice = trainee()
    assert alice.get("/dbi/create_my_db", params={"db_type": db_type}).status_code == 200
    actor = Actor(runtime.accounts.get(alice.user_name))
    archives = Archives(runtime.service, replace(runtime.settings, archive_quota=1))
    archive = archives.archive(actor, db_type, None)
    archives.restore(actor, archive.id)  # kept past the quota: one
    with pytest.raises(Refused, match="quota of 1 and the one a restore may keep past it; delete one first"):
        archives.restore(actor, archive.id)
    kept = [manifest.id for manifest in archives.list(actor)]
    assert len(kept) == archives.quota + 1
    archives.delete(actor, kept[0])
    archives.restore(actor, archive.id)  # room again


def test_restoring_into_a_database_dbwrapper_does_not_manage_is_a_clear_refusal(
    browser, runtime, instructor, db_type, managed_db, unmanaged_name, admin, catalog
):
    """The registry does not know the target, but the server holds a database of that name
    (made by hand): a 409 that names it, and that database left as it is."""
    archive = runtime.archives.archive(instructor, db_type, managed_db)
    with admin[db_type].connect() as connection:
        # Someone else's, made by hand behind the service's back: that is the point.
        connection.exec_driver_sql(f"CREATE DATABASE {unmanaged_name}")
    restored = browser.post("/archives/restore", data={"archive": archive.id, "into": unmanaged_name})
    runtime.archives.delete(instructor, archive.id)
    assert restored.status_code in (400, 409), restored.text
    assert unmanaged_name in restored.text
    assert unmanaged_name in catalog(db_type)


@pytest.mark.backend("postgres")
def test_a_trainee_of_another_registry_never_sees_nor_restores_an_archive(trainee, runtime, tmp_path, rows):
    """Two services of one OS user keep their archives in the same directory by default, and
    user names recur: a trainee of the other class with the same (common) name, whose account
    is older than the archive, must not list it nor restore it. A manifest names its registry."""
    alice = trainee()
    other = Runtime(replace(runtime.settings, control_url=f"sqlite:///{tmp_path / 'other.db'}",
                            port=runtime.settings.port + 1))
    other.start()
    try:
        namesake, _ = other.accounts.add(alice.user_name, "trainee", by="tests")
        assert alice.get("/dbi/create_my_db", params={"db_type": "postgres"}).status_code == 200
        name = f"{alice.user_name}_{runtime.settings.port}"
        archived = alice.post("/archives/create", data={"db_type": "postgres", "name": name})
        assert archived.status_code == 200, archived.text

        stranger = Actor(namesake)
        seen = [manifest.id for manifest in other.archives.list(stranger)]
        copy = f"{alice.user_name}_copy"
        try:
            if seen:
                other.archives.restore(stranger, seen[0], into=copy)
            assert seen == [], f"a trainee of another registry sees {seen}, and restored it as {copy}"
        finally:
            other.service.destroy(Actor(other.accounts.get(INSTRUCTOR)), "postgres", copy)
            for manifest in runtime.archives.list(Actor(runtime.accounts.get(alice.user_name))):
                runtime.archives.delete(Actor(runtime.accounts.get(INSTRUCTOR)), manifest.id)
    finally:
        other.stop()
