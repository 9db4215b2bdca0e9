"""MySQL copies carry everything a database holds, and the super-user runs none of it.

A snapshot, a revert, a course made from a database and the copies made of
that course hold the tables, rows, views, triggers and routines (procedures
and functions) of what they copy, each defined by the copy's own login. The
super-user who makes them runs only definitions the server printed, and
``INSERT ... SELECT`` of base tables' stored columns into fresh tables that
have no triggers yet. So a trainee who plants code that would give them the
server if the super-user ran it (a function that writes into ``mysql.db``, a
view that calls it with the invoker's rights, a procedure that grants
everything, a trigger that records who fired it) gains nothing, whatever is
copied: the witness table the planted code writes to never names anyone but a
database's own login. Nor can the trainee plant anything in a copy while it is
being made, and what is made in ANSI_QUOTES mode is copied like the rest.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from decimal import Decimal

import pymysql
import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from dbwrapper.accounts import Actor
from dbwrapper.backends.base import Login
from dbwrapper.backends.mysql import MySQLBackend
from dbwrapper.backends.mysql import creation as mysql_creation
from dbwrapper.backends.mysql.creation import MySQLCreation
from dbwrapper.errors import DbWrapperError, Refused
from tests.conftest import INSTRUCTOR, login_of
from tests.test_copies import copies  # noqa: F401 (a fixture: a pool filled by the test, emptied after)
from tests.test_courses import FRANCHISE
from tests.test_isolation import shown_credentials
from tests.test_snapshots import course_database

pytestmark = pytest.mark.backend("mysql")

#: "Function or expression ... cannot be used in the CHECK/DEFAULT/GENERATED ALWAYS AS clause"
ER_FUNCTION_NOT_ALLOWED = 1901
#: "CHECK does not support subqueries or stored functions"
ER_SUBQUERIES_NOT_ALLOWED = 1970
#: "You have an error in your SQL syntax"
ER_PARSE_ERROR = 1064


def execute(engine: Engine, *statements: str) -> list[tuple]:
    """Run ``statements`` one by one on a connection of ``engine``; the last one's rows, if any."""
    rows: list[tuple] = []
    with engine.connect() as connection:
        for statement in statements:
            result = connection.exec_driver_sql(statement.replace("%", "%%"))
            rows = [tuple(row) for row in result] if result.returns_rows else []
        connection.commit()
    return rows


def as_login(url: str) -> Engine:
    """An engine that logs in as a database's own login (no pool: every use is a new session)."""
    return create_engine(url, poolclass=NullPool)


def plant_functions(engine: Engine, login: str) -> None:
    """A witness table, and functions that write in it who ran them, one of them seizing more."""
    execute(
        engine,
        "CREATE TABLE witness (who VARCHAR(300), how VARCHAR(40))",
        # Whoever runs spy() leaves their name; SQL SECURITY INVOKER: it runs with the caller's rights.
        "CREATE FUNCTION spy() RETURNS INTEGER SQL SECURITY INVOKER MODIFIES SQL DATA "
        "BEGIN INSERT INTO witness VALUES (CURRENT_USER(), 'spy'); RETURN 1; END",
        # Run by the super-user, seize() gives the trainee the server's own database.
        "CREATE FUNCTION seize() RETURNS INTEGER SQL SECURITY INVOKER MODIFIES SQL DATA "
        "BEGIN INSERT INTO mysql.db (Host, Db, User, Select_priv, Insert_priv) "
        f"VALUES ('%', 'mysql', '{login}', 'Y', 'Y'); RETURN spy(); END",
        f"CREATE PROCEDURE promote() GRANT ALL PRIVILEGES ON *.* TO '{login}'@'%' WITH GRANT OPTION",
    )


def plant(engine: Engine, login: str) -> None:
    """What a trainee who wants more than their database leaves in it for the super-user."""
    plant_functions(engine, login)
    execute(
        engine,
        "CREATE SQL SECURITY INVOKER VIEW grab AS SELECT seize() AS x",
        "CREATE VIEW peek AS SELECT spy() AS x",
        "CREATE TRIGGER tattle BEFORE INSERT ON stores FOR EACH ROW "
        "INSERT INTO witness VALUES (CURRENT_USER(), 'trigger')",
        # The trainee's own use of it, before anything is copied: one of each.
        "INSERT INTO stores VALUES (1001, 'Lyon 1', '2024-05-01')",
        "SELECT x FROM peek",
    )


def seized(admin: Engine, login: str) -> int:
    """How many rows seize() wrote into mysql.db for ``login``."""
    (count,), = execute(admin, f"SELECT COUNT(*) FROM mysql.db WHERE User = '{login}' AND Db = 'mysql'")
    return count


def definers(admin: Engine, name: str) -> dict[str, str]:
    """Who defines each trigger, routine and view of database ``name``."""
    rows = execute(
        admin,
        "SELECT CONCAT('trigger ', TRIGGER_NAME), DEFINER FROM information_schema.TRIGGERS "
        f"WHERE TRIGGER_SCHEMA = '{name}' "
        "UNION ALL SELECT CONCAT(LOWER(ROUTINE_TYPE), ' ', ROUTINE_NAME), DEFINER "
        f"FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = '{name}' "
        "UNION ALL SELECT CONCAT('view ', TABLE_NAME), DEFINER FROM information_schema.VIEWS "
        f"WHERE TABLE_SCHEMA = '{name}'",
    )
    return dict(rows)


PLANTED = {"trigger tattle", "function spy", "function seize", "procedure promote", "view grab", "view peek"}


def witnesses(admin: Engine, name: str) -> set[str]:
    """The logins (without their hosts) the planted code recorded in database ``name``."""
    return {who.split("@")[0] for who, in execute(admin, f"SELECT who FROM `{name}`.witness")}


def rights(admin: Engine, login: str) -> tuple[set[str], set[str]]:
    """What ``login`` may do: its grants as the server states them, and the databases
    ``mysql.db`` gives it (where seize() would write, for the next FLUSH PRIVILEGES)."""
    hosts = [host for host, in execute(admin, f"SELECT Host FROM mysql.user WHERE User = '{login}'")]
    grants = {grant for host in hosts for grant, in execute(admin, f"SHOW GRANTS FOR '{login}'@'{host}'")}
    databases = {db for db, in execute(admin, f"SELECT Db FROM mysql.db WHERE User = '{login}'")}
    return grants, databases


def assert_carried_and_owned(admin: Engine, name: str, login: str, host: str | None = "%") -> None:
    """``name`` holds every planted trigger, routine and view, each defined by ``login``
    (for ``host``; ``None``: whichever host it connected from)."""
    found = definers(admin, name)
    assert PLANTED <= found.keys(), f"{name} lacks {PLANTED - found.keys()}"
    defined = {definer for what, definer in found.items() if what in PLANTED}
    if host is None:
        assert {definer.rsplit("@", 1)[0] for definer in defined} == {login}
    else:
        assert defined == {f"{login}@{host}"}


def how_made(runtime, name: str) -> str:
    """How the service made MySQL database ``name``: pool, copy or sql (its audit entry says)."""
    entry = next(e for e in runtime.service.registry.audit_entries()
                 if e.target == f"mysql:{name}" and e.action == "create")
    return entry.detail


# -- what the copies rely on: the server's own rules, shown on this server ------------------


def test_the_super_users_session_runs_one_statement_per_query(runtime):
    """What a copy runs is one statement the server printed; text in it cannot add another."""
    with runtime.servers.backend("mysql").admin_connection() as connection:
        with pytest.raises(DBAPIError) as refused:
            connection.exec_driver_sql("SELECT 1; SELECT 2")
    assert refused.value.orig.args[0] == ER_PARSE_ERROR

def test_no_table_can_make_filling_it_call_a_stored_function(trainee):
    """A copy fills fresh tables with INSERT ... SELECT as the super-user, which evaluates their
    CHECK constraints, DEFAULT expressions and generated columns: MariaDB allows no stored
    function (nor a subquery that could call one) in any of them, whoever makes the table."""
    _, credentials, _ = course_database(trainee, "mysql")
    engine = as_login(credentials["url"])
    try:
        plant_functions(engine, make_url(credentials["url"]).username)
        for column in ("x INTEGER CHECK (spy() = 1)", "x INTEGER, CONSTRAINT c CHECK (x < (SELECT spy()))",
                       "x INTEGER DEFAULT (spy())", "x INTEGER AS (spy()) VIRTUAL", "x INTEGER AS (spy()) PERSISTENT"):
            with pytest.raises(DBAPIError) as refused:
                execute(engine, f"CREATE TABLE trap ({column})")
            assert refused.value.orig.args[0] in (ER_FUNCTION_NOT_ALLOWED, ER_SUBQUERIES_NOT_ALLOWED), column
    finally:
        engine.dispose()


def test_reading_a_views_definition_runs_none_of_it(trainee, admin):
    """What the super-user reads of a view (CHECK TABLE, SHOW CREATE VIEW, information_schema)
    runs nothing of it; selecting from it would, as the last check shows."""
    _, credentials, name = course_database(trainee, "mysql")
    engine = as_login(credentials["url"])
    try:
        plant_functions(engine, make_url(credentials["url"]).username)
        execute(engine, "CREATE SQL SECURITY INVOKER VIEW peek_as_invoker AS SELECT spy() AS x")
        root = admin["mysql"]
        execute(root, f"CHECK TABLE `{name}`.peek_as_invoker")
        execute(root, f"SHOW CREATE VIEW `{name}`.peek_as_invoker")
        for catalog in ("TABLES", "COLUMNS", "VIEWS"):
            execute(root, f"SELECT * FROM information_schema.{catalog} WHERE TABLE_SCHEMA = '{name}'")
        assert witnesses(root, name) == set()
        execute(root, f"SELECT x FROM `{name}`.peek_as_invoker")
        assert witnesses(root, name) == {root.url.username}
    finally:
        engine.dispose()


def test_snapshots_reverts_courses_and_their_copies_run_nothing_as_the_super_user(runtime, trainee, admin):
    """The trainee plants their traps, then takes a snapshot, reverts to it, and an instructor
    makes a course of the database and a copy of the course: every one of those copies
    carries the traps, none springs, and in the last copy they work for its own login."""
    alice, credentials, name = course_database(trainee, "mysql")
    login = make_url(credentials["url"]).username
    trainee_engine = as_login(credentials["url"])
    root = admin["mysql"]
    instructor = Actor(runtime.accounts.get(INSTRUCTOR))
    owner = Actor(runtime.accounts.get(alice.user_name))
    rights_before = rights(root, login)
    plant(trainee_engine, login)
    course = f"planted_{uuid.uuid4().hex[:8]}"
    copy = f"{course}_copy"
    try:
        snapshot, _ = runtime.snapshots.take(owner, "mysql", name, "planted")
        runtime.snapshots.revert(owner, "mysql", name, snapshot.id)
        (before,) = [s for s in runtime.snapshots.list(owner, "mysql", name)[2] if s.id != snapshot.id]
        runtime.courses.add_from(instructor, course, "", {}, {"mysql": name})
        made = runtime.service.create(instructor, "mysql", copy, course=course)
        (master,) = runtime.service.registry.copies("mysql", course, "master")

        # Nothing ran as the super-user: the trainee's rights are what they were, and the
        # planted code recorded nobody but the trainee, in every copy of it.
        assert rights(root, login) == rights_before
        assert seized(root, login) == 0
        for database in (name, snapshot.name, before.name, master.name, copy):
            assert witnesses(root, database) == {login}, database
        # Each copy holds the trainee's triggers, routines and views, defined by its own login
        # (the snapshots by the trainee's, who cannot reach them); the master by the login
        # that loaded the course's SQL, from wherever it connected.
        for database in (name, snapshot.name, before.name):
            assert_carried_and_owned(root, database, login)
        assert_carried_and_owned(root, master.name, master.name, host=None)
        assert_carried_and_owned(root, copy, copy)
        assert execute(root, f"SELECT COUNT(*) FROM `{name}`.stores") == [(FRANCHISE["stores"] + 1,)]

        # And they work, as the copy's own login: the trigger fires and the view calls the function.
        copy_engine = as_login(made.credentials.url)
        execute(copy_engine, "INSERT INTO stores VALUES (1002, 'Nantes 1', '2024-06-01')", "SELECT x FROM peek")
        copy_engine.dispose()
        recorded = execute(root, f"SELECT SUBSTRING_INDEX(who, '@', 1), how FROM `{copy}`.witness ORDER BY how, who")
        assert recorded == sorted([(login, "spy"), (copy, "spy"), (login, "trigger"), (copy, "trigger")],
                                  key=lambda row: (row[1], row[0]))
        assert how_made(runtime, copy) == "copy"  # on the server, not from the course's SQL
    finally:
        trainee_engine.dispose()
        if runtime.service.registry.database("mysql", copy) is not None:
            runtime.service.destroy(instructor, "mysql", copy)


def test_a_table_swapped_for_a_view_while_it_is_copied_is_refused_and_runs_nothing(
    runtime, trainee, admin, monkeypatch
):
    """The trainee may reconnect while their database is copied: between the moment the
    copy reads a table's definition and the moment it reads its rows, they make the table
    a view that calls seize() with the invoker's rights. The copy must not read it."""
    alice, credentials, name = course_database(trainee, "mysql")
    login = make_url(credentials["url"]).username
    trainee_engine = as_login(credentials["url"])
    plant_functions(trainee_engine, login)
    execute(trainee_engine, "CREATE TABLE bait (x INTEGER)", "INSERT INTO bait VALUES (1)")
    read_definition = MySQLCreation._table_definition

    def swap_after_reading(self, connection, schema, table, target):
        definition = read_definition(self, connection, schema, table, target)
        if schema == name and table == "bait":
            execute(trainee_engine, "DROP TABLE bait", "CREATE SQL SECURITY INVOKER VIEW bait AS SELECT seize() AS x")
        return definition

    monkeypatch.setattr(MySQLCreation, "_table_definition", swap_after_reading)
    owner = Actor(runtime.accounts.get(alice.user_name))
    try:
        try:
            outcome: object = runtime.snapshots.take(owner, "mysql", name)
        except DbWrapperError as error:
            outcome = error
        assert witnesses(admin["mysql"], name) == set()  # nobody ran spy(), the super-user least
        assert seized(admin["mysql"], login) == 0
        assert isinstance(outcome, Refused) and "changed while it was being copied" in str(outcome), outcome
        assert runtime.snapshots.list(owner, "mysql", name)[2] == []  # nothing half-made is kept
    finally:
        trainee_engine.dispose()


#: A MySQL session's sql_select_limit when nobody changed it.
NO_SELECT_LIMIT = 2**64 - 1
#: The trainee's trigger: it notes whose session fired it (in a table copied before boxes),
#: and leaves that session answering one row per SELECT from then on.
POISON = ("CREATE TRIGGER poison BEFORE INSERT ON boxes FOR EACH ROW BEGIN "
          "INSERT INTO a_witness VALUES (USER()); SET @@SESSION.sql_select_limit = 1; END")
ER_NO_SUCH_TABLE = 1146
ER_TRG_ALREADY_EXISTS = 1359


@contextmanager
def planting(url: URL, statement: str) -> Iterator[list[bool]]:
    """A trainee's programs running ``statement`` as their own login over and over, logging in
    again whenever their sessions are ended or refused, until it succeeds; yields a list that
    is non-empty once it did."""
    planted: list[bool] = []
    stop = threading.Event()

    def plant() -> None:
        while not stop.is_set() and not planted:
            try:
                session = pymysql.connect(host=url.host, port=url.port, user=url.username,
                                          password=url.password, database=url.database, autocommit=True)
            except pymysql.err.MySQLError:
                continue  # refused (shut out): try again
            try:
                with session.cursor() as cursor:
                    while not stop.is_set() and not planted:
                        try:
                            cursor.execute(statement)
                            planted.append(True)
                        except pymysql.err.MySQLError as error:
                            if error.args[0] == ER_TRG_ALREADY_EXISTS:
                                planted.append(True)
                            elif error.args[0] != ER_NO_SUCH_TABLE:
                                break  # ended by the revert: log in again
            finally:
                with suppress(pymysql.err.MySQLError):
                    session.close()

    threads = [threading.Thread(target=plant, daemon=True) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        yield planted
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def fired_by(admin: Engine, name: str) -> list[str]:
    """Whose sessions fired POISON in database ``name``."""
    return [who for who, in execute(admin, f"SELECT who FROM `{name}`.a_witness")]


def select_limits_of_the_pool(backend: MySQLBackend) -> list[int]:
    """sql_select_limit in every idle session of the super-user's pool (then set back, so
    that the tests after this one get the pool as it was)."""
    with ExitStack() as held:  # all at once, so that each is a different session
        sessions = [held.enter_context(backend.admin_connection()) for _ in range(backend._admin.pool.checkedin())]
        limits = [session.exec_driver_sql("SELECT @@SESSION.sql_select_limit").scalar_one() for session in sessions]
        for session in sessions:
            session.exec_driver_sql("SET SESSION sql_select_limit = DEFAULT")
    return limits


def test_a_revert_never_fires_a_trainees_trigger_in_the_super_users_session(runtime, trainee, admin, as_owner):
    """A revert copies the snapshot back table by table as the super-user: CREATE TABLE in the
    trainee's own database, then INSERT ... SELECT into it. Were the trainee's login to open
    that database meanwhile, a program of theirs that keeps asking for a trigger on the table
    would get it between the two statements (its request waits for the CREATE's lock and is
    served before the INSERT), and MySQL fires a trigger in the session of whoever inserts:
    the super-user's pooled session, where what it sets (sql_select_limit, lock_wait_timeout,
    transaction_read_only ...) stays for the requests of everyone that session serves next.
    So the login is shut out (ACCOUNT LOCK) and its sessions ended until the revert is done."""
    alice = trainee()
    assert alice.get("/dbi/create_my_db", params={"db_type": "mysql"}).status_code == 200
    name = f"{alice.user_name}_{runtime.settings.port}"
    with as_owner("mysql", name) as connection:
        connection.exec_driver_sql("CREATE TABLE a_witness (who VARCHAR(300))")
        connection.exec_driver_sql("CREATE TABLE boxes (n INTEGER)")
        connection.exec_driver_sql("INSERT INTO boxes VALUES (1), (2), (3)")
    where = {"db_type": "mysql", "name": name}
    assert alice.post("/snapshots/take", data={**where, "label": "before the exercise"}).status_code == 200
    (snapshot,) = runtime.service.registry.snapshots(runtime.service.registry.database("mysql", name))
    with as_owner("mysql", name) as connection:
        connection.exec_driver_sql("DROP TABLE boxes")  # the exercise went wrong: revert

    backend = runtime.servers.backend("mysql")
    with planting(backend.database_url(name, login_of(runtime, "mysql", name)), POISON) as planted:
        reverted = alice.post("/snapshots/revert", data={**where, "snapshot": snapshot.id})
        assert reverted.status_code == 200, reverted.text
        let_in_by = time.monotonic() + 20  # the trainee's programs get in again, and plant it now
        while not planted and time.monotonic() < let_in_by:
            time.sleep(0.05)
    assert planted, "the trainee's login was not let in again after the revert"

    assert fired_by(admin["mysql"], name) == [], "the trainee's trigger fired in the revert's copy"
    assert set(select_limits_of_the_pool(backend)) <= {NO_SELECT_LIMIT}


def test_a_trigger_that_fires_in_a_copy_leaves_nothing_in_the_super_users_pool(runtime, trainee, admin, monkeypatch):
    """Were a trigger ever to fire in a copy of the super-user's (none can: its tables have none
    while they are filled, and nobody else reaches them), what it sets in the session would
    still serve nobody: the session that ran the copy's INSERTs is closed, not pooled. Planted
    here by the tests' own super-user, between the snapshot's CREATE TABLE and its INSERT."""
    alice, credentials, name = course_database(trainee, "mysql")
    trainee_engine = as_login(credentials["url"])
    execute(trainee_engine, "CREATE TABLE a_witness (who VARCHAR(300))", "CREATE TABLE boxes (n INTEGER)",
            "INSERT INTO boxes VALUES (1)")
    trainee_engine.dispose()
    run = mysql_creation.verbatim

    def poisoned_after_making_boxes(connection, statement: str) -> None:
        run(connection, statement)
        if made := re.match(r"CREATE TABLE `(_dbw_snap_\w+)`\.`boxes`", statement):
            root = create_engine(admin["mysql"].url.set(database=made.group(1)), poolclass=NullPool)
            execute(root, POISON)  # in a session of its own, not in the snapshot when it is dropped
            root.dispose()

    monkeypatch.setattr(mysql_creation, "verbatim", poisoned_after_making_boxes)
    snapshot, _ = runtime.snapshots.take(Actor(runtime.accounts.get(alice.user_name)), "mysql", name)
    fired = [who.split("@")[0] for who in fired_by(admin["mysql"], snapshot.name)]
    assert fired == [admin["mysql"].url.username]  # it did fire, in the super-user's session
    assert set(select_limits_of_the_pool(runtime.servers.backend("mysql"))) <= {NO_SELECT_LIMIT}


def test_a_tables_own_data_directory_is_not_honoured_for_the_super_user(mysql_with_symbolic_links, tmp_path):
    """On a server with symbolic links on (dbwrapper warns about one: see tests/test_isolation.py),
    a login may put a table's file in a directory of its choosing (DATA DIRECTORY); the
    super-user's copies of it go where the server keeps its own (NO_DIR_IN_CREATE)."""
    backend = MySQLBackend(mysql_with_symbolic_links)
    name, snapshot = f"t_{uuid.uuid4().hex[:12]}", f"_dbw_snap_{uuid.uuid4().hex[:12]}"
    login = Login(name, "a-password-of-the-trainees")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    elsewhere.chmod(0o777)  # the server's own user writes there
    backend.create_database(name, login)
    try:
        trainee_engine = as_login(backend.database_url(name, login).render_as_string(False))
        execute(trainee_engine, f"CREATE TABLE placed (x INTEGER) DATA DIRECTORY = '{elsewhere}'",
                "INSERT INTO placed VALUES (7)")
        trainee_engine.dispose()
        backend.creation.take_snapshot(name, snapshot, name)

        with backend.admin_connection() as connection:
            shown = connection.exec_driver_sql(f"SHOW CREATE TABLE `{snapshot}`.placed").one()[1]
            copied = connection.exec_driver_sql(f"SELECT x FROM `{snapshot}`.placed").all()
        assert "DATA DIRECTORY" not in shown
        assert copied == [(7,)]
        assert [path.name for path in elsewhere.iterdir()] == [name]  # the trainee's table only
    finally:
        backend.drop_database(snapshot, registered=True)
        backend.drop_database(name, name, registered=True)
        backend.dispose()


def test_a_database_with_an_event_is_refused_a_snapshot_that_would_run_it(runtime, trainee, rows):
    """An event runs on its schedule wherever it is: copied into a snapshot, it would change
    what must stay as it was. So a snapshot or a revert of a database with an event is a
    409 that says what to do, and nothing changes."""
    alice, credentials, name = course_database(trainee, "mysql")
    where = {"db_type": "mysql", "name": name}
    taken = alice.post("/snapshots/take", data=where)
    assert taken.status_code == 200, taken.text
    number = runtime.service.registry.snapshots(runtime.service.registry.database("mysql", name))[0].id
    trainee_engine = as_login(credentials["url"])
    execute(trainee_engine, "DELETE FROM orders WHERE id <= 10",
            "CREATE EVENT tidy ON SCHEDULE EVERY 1 DAY DO DELETE FROM orders WHERE boxes > 90")
    trainee_engine.dispose()

    for path, data in (("/snapshots/take", {}), ("/snapshots/revert", {"snapshot": number})):
        refused = alice.post(path, data={**where, **data})
        assert refused.status_code == 409, path
        assert "the event tidy" in refused.text and "DROP EVENT" in refused.text, refused.text
        assert "Nothing was changed." in refused.text
    assert rows("mysql", name) == {**FRANCHISE, "orders": FRANCHISE["orders"] - 10}
    assert len(runtime.service.registry.snapshots(runtime.service.registry.database("mysql", name))) == 1


#: What a trainee may make in sql_mode ANSI_QUOTES, which quotes names with double quotes.
ANSI_QUOTED = (
    "SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',ANSI_QUOTES')",
    'CREATE TABLE "boxes" ("n" INTEGER)',
    'CREATE FUNCTION "answer"() RETURNS INTEGER DETERMINISTIC RETURN 42',
    'CREATE PROCEDURE "add_box"(IN "how_many" INTEGER) INSERT INTO "boxes" VALUES ("how_many")',
    'CREATE VIEW "answers" AS SELECT "answer"() AS "a", "n" FROM "boxes"',
    'CREATE TRIGGER "at_least_one" BEFORE INSERT ON "boxes" FOR EACH ROW SET NEW."n" = GREATEST(NEW."n", 1)',
)


def test_what_is_made_in_ansi_quotes_mode_is_copied_whole(runtime, trainee):
    """MySQL prints a routine (SHOW CREATE, mysqldump) in the sql_mode it was made in, and a
    trigger's definer likewise: in ANSI_QUOTES, between double quotes (``CREATE
    DEFINER="login"@"%" FUNCTION "answer"``). A snapshot, a revert, a course made from the
    database and a copy of that course carry all of it, and it works for the copy's login."""
    alice = trainee()
    page = alice.get("/dbi/create_my_db", params={"db_type": "mysql"})
    assert page.status_code == 200, page.text
    credentials = shown_credentials(page.text)
    name = make_url(credentials["url"]).database
    where = {"db_type": "mysql", "name": name}
    engine = as_login(credentials["url"])
    instructor = Actor(runtime.accounts.get(INSTRUCTOR))
    course = f"quoted_{uuid.uuid4().hex[:8]}"
    copy = f"{course}_copy"
    try:
        execute(engine, *ANSI_QUOTED, "CALL add_box(0)")
        taken = alice.post("/snapshots/take", data=where)
        assert taken.status_code == 200, taken.text
        (snapshot,) = runtime.service.registry.snapshots(runtime.service.registry.database("mysql", name))
        execute(engine, "DROP VIEW answers", "DROP TRIGGER at_least_one", "DELETE FROM boxes")
        reverted = alice.post("/snapshots/revert", data={**where, "snapshot": snapshot.id})
        assert reverted.status_code == 200, reverted.text
        assert execute(engine, "CALL add_box(0)", "SELECT a, n FROM answers") == [(42, 1), (42, 1)]

        runtime.courses.add_from(instructor, course, "", {}, {"mysql": name})
        made = runtime.service.create(instructor, "mysql", copy, course=course)
        assert how_made(runtime, copy) == "copy"
        copy_engine = as_login(made.credentials.url)
        assert execute(copy_engine, "CALL add_box(0)", "SELECT a, n FROM answers") == [(42, 1)] * 3
        copy_engine.dispose()
    finally:
        engine.dispose()
        if runtime.service.registry.database("mysql", copy) is not None:
            runtime.service.destroy(instructor, "mysql", copy)


def test_a_server_that_quotes_names_with_double_quotes_by_default_copies_all_the_same(runtime, trainee, admin, rows):
    """A server may give every session ANSI_QUOTES (``sql_mode = ANSI`` in its options), and
    then prints tables and views with double quotes too, which the copies do not read: the
    super-user's sessions leave it out, and a snapshot is the database whole."""
    backend = runtime.servers.backend("mysql")
    alice, _, name = course_database(trainee, "mysql")
    ((default,),) = execute(admin["mysql"], "SELECT @@GLOBAL.sql_mode")
    try:
        execute(admin["mysql"], "SET GLOBAL sql_mode = CONCAT(@@GLOBAL.sql_mode, ',ANSI')")
        backend.dispose()  # sessions start in the server's mode: new ones
        taken = alice.post("/snapshots/take", data={"db_type": "mysql", "name": name})
    finally:
        execute(admin["mysql"], f"SET GLOBAL sql_mode = '{default}'")
        backend.dispose()
    assert taken.status_code == 200, taken.text
    (snapshot,) = runtime.service.registry.snapshots(runtime.service.registry.database("mysql", name))
    assert rows("mysql", snapshot.name) == FRANCHISE
    views = f"SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = '{snapshot.name}'"
    assert execute(admin["mysql"], views) == [("low_stock",)]


#: What a course, or a trainee, may define beside tables: a function a view calls, a
#: procedure, and a trigger that changes what is inserted.
ROUTINES_AND_TRIGGERS = (
    "CREATE FUNCTION with_tax(price DECIMAL(8, 2)) RETURNS DECIMAL(9, 2) DETERMINISTIC RETURN price * 1.2",
    "CREATE VIEW priced AS SELECT name, with_tax(price) AS gross FROM items",
    "CREATE PROCEDURE restock(IN store INTEGER) UPDATE stock SET boxes = boxes + 10 WHERE store_id = store",
    "CREATE TRIGGER at_most_50 BEFORE INSERT ON orders FOR EACH ROW SET NEW.boxes = LEAST(NEW.boxes, 50)",
)


def boxes_of_a_new_order(engine: Engine, order: int) -> int:
    """Place an order of 80 boxes as ``engine``'s login; how many boxes the database recorded."""
    (boxes,), = execute(
        engine,
        f"INSERT INTO orders VALUES ({order}, 1, 1, 80, '2024-07-01 10:00:00')",
        f"SELECT boxes FROM orders WHERE id = {order}",
    )
    return boxes


def test_a_revert_brings_back_the_triggers_and_routines_of_the_snapshot_and_keeps_the_others(runtime, trainee, rows):
    alice, credentials, name = course_database(trainee, "mysql")
    owner = Actor(runtime.accounts.get(alice.user_name))
    engine = as_login(credentials["url"])
    try:
        execute(engine, *ROUTINES_AND_TRIGGERS)
        clean, _ = runtime.snapshots.take(owner, "mysql", name, "clean")
        execute(
            engine,
            "DROP TRIGGER at_most_50", "DROP PROCEDURE restock", "DROP VIEW priced", "DROP FUNCTION with_tax",
            "CREATE FUNCTION with_tax(price DECIMAL(8, 2)) RETURNS DECIMAL(9, 2) DETERMINISTIC RETURN price * 2",
            "CREATE VIEW priced AS SELECT name, with_tax(price) AS gross FROM items",
            "CREATE TRIGGER no_deletes BEFORE DELETE ON stores FOR EACH ROW "
            "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'stores stay'",
            "DELETE FROM orders",
        )
        runtime.snapshots.revert(owner, "mysql", name, clean.id)

        assert rows("mysql", name) == FRANCHISE
        assert boxes_of_a_new_order(engine, 90001) == 50  # the trigger is back, and fires for its owner
        execute(engine, "CALL restock(1)")
        assert execute(engine, "SELECT gross FROM priced WHERE name = 'paper clips, pack 1'") == [(Decimal("10.20"),)]
        # The trigger made after the snapshot went with the revert.
        execute(
            engine, "INSERT INTO stores VALUES (1001, 'Lyon 1', '2024-05-01')", "DELETE FROM stores WHERE id = 1001"
        )
        # What the database held before the revert is a snapshot of its own, triggers and all.
        (before,) = [s for s in runtime.snapshots.list(owner, "mysql", name)[2] if s.id != clean.id]
        runtime.snapshots.revert(owner, "mysql", name, before.id)
        assert boxes_of_a_new_order(engine, 90002) == 80
        assert execute(engine, "SELECT gross FROM priced WHERE name = 'paper clips, pack 1'") == [(Decimal("17.00"),)]
        execute(engine, "INSERT INTO stores VALUES (1002, 'Lyon 2', '2024-05-01')")
        with pytest.raises(DBAPIError, match="stores stay"):
            execute(engine, "DELETE FROM stores WHERE id = 1002")
    finally:
        engine.dispose()


def test_a_course_with_triggers_and_routines_is_copied_on_the_server_and_pooled(runtime, trainee, copies):
    instructor = Actor(runtime.accounts.get(INSTRUCTOR))
    course = f"triggered_{uuid.uuid4().hex[:8]}"
    sql = runtime.service.course_sql("franchise", runtime.servers.backend("mysql")) + "".join(
        f"{statement};\n" for statement in ROUTINES_AND_TRIGGERS
    )
    runtime.courses.add(instructor, course, "", {"mysql": sql})
    backend = runtime.servers.backend("mysql")
    assert copies.top_up(backend, course, sql) == 1  # a ready copy, from the master on the server

    for expected in ("pool", "copy"):  # the spare first, then a copy made on the spot
        alice = trainee()
        page = alice.get("/dbi/create_my_db", params={"db_type": "mysql", "course": course})
        assert page.status_code == 200, page.text
        name = f"{alice.user_name}_{runtime.settings.port}"
        assert how_made(runtime, name) == expected
        record = runtime.service.registry.database("mysql", name)
        engine = as_login(backend.database_url(name, Login(record.login, record.password)).render_as_string(False))
        try:
            assert boxes_of_a_new_order(engine, 90001) == 50
            execute(engine, "CALL restock(1)")
            assert execute(engine, "SELECT COUNT(*) FROM priced") == [(FRANCHISE["items"],)]
            execute(engine, "DROP TRIGGER at_most_50", "DROP PROCEDURE restock")  # they are the trainee's
        finally:
            engine.dispose()


def test_a_row_numbered_zero_keeps_its_number_through_a_snapshot_and_a_revert(runtime, trainee, as_owner, rows):
    """An AUTO_INCREMENT column may hold 0 (a trainee's session with NO_AUTO_VALUE_ON_ZERO, or a
    dump's); copied without that mode, the row would get the next number instead."""
    alice, _, name = course_database(trainee, "mysql")
    owner = Actor(runtime.accounts.get(alice.user_name))
    with as_owner("mysql", name) as connection:
        connection.exec_driver_sql("SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO'")
        connection.exec_driver_sql("CREATE TABLE counted (id INTEGER AUTO_INCREMENT PRIMARY KEY, what TEXT)")
        connection.exec_driver_sql("INSERT INTO counted VALUES (0, 'zero'), (5, 'five')")
    clean, _ = runtime.snapshots.take(owner, "mysql", name, "numbered")
    with as_owner("mysql", name) as connection:
        connection.exec_driver_sql("DELETE FROM counted")
    runtime.snapshots.revert(owner, "mysql", name, clean.id)
    with as_owner("mysql", name) as connection:
        rows = connection.exec_driver_sql("SELECT id, what FROM counted ORDER BY id").all()
        assert rows == [(0, "zero"), (5, "five")]
