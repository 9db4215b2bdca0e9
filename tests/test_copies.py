"""Course databases are copies made on the server: from the course's master, or a spare from the pool.

Whatever the way, the trainee's database is the course's content exactly
(tables, rows, indexes, constraints, views), owned by the trainee's login.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from markupsafe import escape
from sqlalchemy import inspect, text

from dbwrapper.accounts import Actor
from dbwrapper.backends import Backend
from dbwrapper.copies import CourseCopies, copy_name
from dbwrapper.errors import Forbidden, InvalidInput
from dbwrapper.registry import CourseCopy
from tests.conftest import INSTRUCTOR, login_of
from tests.test_courses import FRANCHISE
from tests.test_isolation import run_as, someone_elses_account

DEFINER = re.compile(r"DEFINER=\S+ ")


def owners(look_inside, db_type: str, name: str) -> set[str]:
    """Who owns the tables and views (PostgreSQL), or defines the views (MySQL)."""
    query = {
        "postgres": "SELECT tableowner FROM pg_catalog.pg_tables WHERE schemaname = 'public' "
                    "UNION SELECT viewowner FROM pg_catalog.pg_views WHERE schemaname = 'public'",
        "mysql": "SELECT DISTINCT SUBSTRING_INDEX(DEFINER, '@', 1) FROM information_schema.VIEWS "
                 "WHERE TABLE_SCHEMA = DATABASE()",
    }[db_type]
    with look_inside(db_type, name) as connection:
        return set(connection.execute(text(query)).scalars())


def shape(look_inside, backend: Backend, name: str) -> dict[str, Any]:
    """Everything a course defines, as SQLAlchemy's inspector reads it from the catalog."""
    with look_inside(backend.db_type, name) as connection:
        found = inspect(connection)
        counts = backend.catalog.count_rows(connection)
        tables = sorted(found.get_table_names())
        return {
            "tables": {
                table: {
                    "columns": [(c["name"], str(c["type"]), c["nullable"]) for c in found.get_columns(table)],
                    "primary key": found.get_pk_constraint(table)["constrained_columns"],
                    "indexes": sorted((i["name"], tuple(i["column_names"])) for i in found.get_indexes(table)),
                    "foreign keys": sorted(
                        (tuple(fk["constrained_columns"]), fk["referred_table"]) for fk in found.get_foreign_keys(table)
                    ),
                    "checks": sorted(c["sqltext"] for c in found.get_check_constraints(table)),
                    "rows": counts[table],
                }
                for table in tables
            },
            # Who defined a view is who owns the copy (see owners()), not part of the course.
            "views": {view: DEFINER.sub("", found.get_view_definition(view))
                      for view in sorted(found.get_view_names())},
        }


@pytest.fixture
def copies(runtime) -> Iterator[CourseCopies]:
    """A pool of one spare per course, filled by the test itself and emptied afterwards."""
    yield CourseCopies(runtime.servers, pool_size=1)
    for spare in [*runtime.service.registry.copies(kind="spare"), *runtime.service.registry.copies(kind="spent")]:
        runtime.servers.backend(spare.db_type).drop_database(spare.name, spare.name, registered=True)
        runtime.service.registry.forget_copy(spare)


def franchise_master(runtime, db_type: str) -> CourseCopy:
    backend = runtime.servers.backend(db_type)
    return runtime.service.copies.master(backend, "franchise", runtime.service.course_sql("franchise", backend))


def how_made(runtime, db_type: str, name: str) -> str:
    target = f"{db_type}:{name}"
    entry = next(e for e in runtime.service.registry.audit_entries() if e.target == target and e.action == "create")
    return entry.detail


def test_a_course_database_is_a_server_side_copy_identical_to_the_master(
    runtime, db_type, db_name, instructor, look_inside, rows
):
    backend = runtime.servers.backend(db_type)
    master = franchise_master(runtime, db_type)
    runtime.service.create(instructor, db_type, db_name, course="franchise")

    assert how_made(runtime, db_type, db_name) == "copy"
    assert shape(look_inside, backend, db_name) == shape(look_inside, backend, master.name)
    assert rows(db_type, db_name) == FRANCHISE
    assert owners(look_inside, db_type, db_name) == {db_name}  # the database's own login


def test_a_spare_from_the_pool_is_handed_over_by_renaming_it(
    runtime, db_type, trainee, copies, catalog, look_inside
):
    backend = runtime.servers.backend(db_type)
    master = franchise_master(runtime, db_type)
    copies.top_up(backend, "franchise", runtime.service.course_sql("franchise", backend))
    (spare,) = runtime.service.registry.copies(db_type, "franchise", "spare")
    assert spare.name in catalog(db_type)

    alice = trainee()
    page = alice.get("/dbi/create_my_db", params={"db_type": db_type, "course": "franchise"})
    assert page.status_code == 200, page.text
    name = f"{alice.user_name}_{runtime.settings.port}"

    assert how_made(runtime, db_type, name) == "pool"
    assert runtime.service.registry.copies(db_type, "franchise", "spare") == []
    copies.drop_spent(backend)  # the pool's job drops what the handout left (MySQL: an empty database)
    assert spare.name not in catalog(db_type)
    assert runtime.service.registry.copies(db_type, "franchise", "spent") == []
    assert shape(look_inside, backend, name) == shape(look_inside, backend, master.name)
    assert owners(look_inside, db_type, name) == {name}
    # The login that came with the spare is now the trainee's, with the password they were given.
    login = login_of(runtime, db_type, name)
    credentials = {"url": backend.database_url(name, login).render_as_string(False), "password": login.password}
    low = run_as(db_type, credentials, name, "SELECT count(*) FROM low_stock")
    assert low.returncode == 0, low.stderr
    assert low.stdout.strip() == "669"
    changed = run_as(db_type, credentials, name, "DROP VIEW low_stock")
    assert changed.returncode == 0, changed.stderr  # the trainee owns what came with it

    assert copies.top_up(backend, "franchise", runtime.service.course_sql("franchise", backend)) == 1


def test_a_handout_never_takes_over_an_account_named_like_the_trainees_database(
    runtime, db_type, trainee, copies, admin, catalog
):
    """A handout gives the trainee's database a login of its name: PostgreSQL renames the
    spare's role to it, MySQL makes it. A role or account of that name that is someone
    else's makes the handout a 409, as it makes a copy one (tests/test_isolation.py), and
    that account stays as it was."""
    backend = runtime.servers.backend(db_type)
    copies.top_up(backend, "franchise", runtime.service.course_sql("franchise", backend))
    alice = trainee()
    name = f"{alice.user_name}_ops"
    with someone_elses_account(admin, db_type, name) as account:
        before = account()
        refused = alice.get("/dbi/create_my_db", params={"db_type": db_type, "name": name, "course": "franchise"})
        assert refused.status_code == 409, refused.text
        assert f"named {name} exists already" in refused.text
        assert runtime.service.registry.copies(db_type, "franchise", "spare") == []  # the handout was tried
        assert name not in catalog(db_type)
        assert runtime.service.registry.database(db_type, name) is None
        assert account() == before


def test_an_empty_pool_falls_back_to_a_copy(runtime, db_type, db_name, instructor):
    assert runtime.service.registry.copies(db_type, "franchise", "spare") == []
    runtime.service.create(instructor, db_type, db_name, course="franchise")
    assert how_made(runtime, db_type, db_name) == "copy"


def test_copies_are_nobodys_working_databases(runtime, db_type, browser, copies):
    backend = runtime.servers.backend(db_type)
    master = franchise_master(runtime, db_type)
    listed = browser.get("/dbi/list", params={"db_type": db_type})
    assert master.name not in listed.text
    refused = browser.get("/dbi/destroy_my_db", params={"db_type": db_type, "name": master.name})
    assert refused.status_code == 400
    assert escape("dbwrapper's own copies") in refused.text
    assert master.name in {info.name for info in backend.list_databases(fresh=True)}


@pytest.mark.backend("mysql")
def test_mysql_loads_a_course_with_an_event_from_its_sql(runtime, db_name, instructor, as_owner):
    """A copy would carry the event to the master's spares, where it would run before anyone has them."""
    course = f"scheduled_{db_name}"
    runtime.courses.add(instructor, course, "", {"mysql": (
        "CREATE TABLE boxes (n INTEGER);\n"
        "CREATE EVENT tidy ON SCHEDULE EVERY 1 DAY DO DELETE FROM boxes;\n"
        "INSERT INTO boxes (n) VALUES (21);\n"
    )})
    runtime.service.create(instructor, "mysql", db_name, course=course)
    assert how_made(runtime, "mysql", db_name) == "sql"
    with as_owner("mysql", db_name) as connection:
        assert connection.execute(text("SELECT EVENT_NAME FROM information_schema.EVENTS "
                                       "WHERE EVENT_SCHEMA = DATABASE()")).scalar_one() == "tidy"
        assert connection.execute(text("SELECT n FROM boxes")).scalar_one() == 21


def test_reconciling_drops_copies_a_crash_left_unfinished(runtime, db_type, catalog):
    backend = runtime.servers.backend(db_type)
    registry = runtime.service.registry
    # A spare recorded and made, but the process died before marking it ready ...
    half = registry.add_copy(CourseCopy(db_type=db_type, course="franchise", kind="spare",
                                        name=copy_name("spare"), password="x" * 20, ready=False))
    backend.create_database(half.name)
    # ... and a spare claimed for a handout that never finished: no row names it.
    orphan = copy_name("spare")
    backend.create_database(orphan)
    master = franchise_master(runtime, db_type)

    report = runtime.reconciler.run()

    assert f"{db_type}:{half.name}" in report.unfinished and f"{db_type}:{orphan}" in report.unfinished
    assert not {half.name, orphan} & catalog(db_type)
    assert [c.name for c in registry.copies(db_type, kind="spare") if c.name == half.name] == []
    assert master.name in catalog(db_type)  # a finished master stays
    assert not [name for name in report.adopted if "_dbw_" in name]


def test_the_pool_says_once_that_a_course_does_not_load_and_keeps_going(
    runtime, db_type, copies, instructor, caplog
):
    course = f"unloadable_{db_type}"
    runtime.courses.add(instructor, course, "", {db_type: "THIS IS NOT SQL;\n"})
    copies.refill()
    copies.refill()
    said = [r for r in caplog.records if f"The course {course} does not load" in r.getMessage()]
    assert len(said) == 1
    assert runtime.service.registry.copies(db_type, course) == []  # nothing half-made is left
    assert len(runtime.service.registry.copies(db_type, "franchise", "spare")) == 1  # the others still fill


def test_an_instructor_prepares_copies_before_class_and_the_class_gets_them(cli, runtime, db_type, copies, trainee):
    prepared = cli("pool", "fill", "--course", "franchise", "--db-type", db_type, "--count", "3")
    assert prepared.returncode == 0, prepared.stderr
    assert "Made 3 copies of franchise; at least 3 are ready" in prepared.stdout
    assert f"{db_type} 3" in cli("pool", "list").stdout
    runtime.service.registry.refresh()

    for _ in range(3):
        alice = trainee()
        assert alice.get("/dbi/create_my_db", params={"db_type": db_type, "course": "franchise"}).status_code == 200
        assert how_made(runtime, db_type, f"{alice.user_name}_{runtime.settings.port}") == "pool"
    assert runtime.service.registry.copies(db_type, "franchise", "spare") == []


def test_preparing_copies_is_for_instructors_and_a_sensible_count(runtime, db_type, trainee, instructor):
    alice = Actor(runtime.accounts.get(trainee().user_name))
    with pytest.raises(Forbidden):
        runtime.preparations.prepare(alice, db_type, "franchise", 2)
    for count in (0, 201, "3"):
        with pytest.raises(InvalidInput, match="from 1 to 200"):
            runtime.preparations.prepare(instructor, db_type, "franchise", count)


def test_what_handouts_leave_is_dropped_even_with_no_pool_kept(runtime, db_type, trainee, catalog):
    # pool_size 0 (as the tests' service has it), but an instructor prepared copies by hand.
    instructor = Actor(runtime.accounts.get(INSTRUCTOR))
    runtime.preparations.prepare(instructor, db_type, "franchise", 1)
    (spare,) = runtime.service.registry.copies(db_type, "franchise", "spare")
    alice = trainee()
    alice.get("/dbi/create_my_db", params={"db_type": db_type, "course": "franchise"})
    assert runtime.service.copies.pool_size == 0
    runtime.service.copies.refill()
    assert runtime.service.registry.copies(db_type, kind="spent") == []
    assert spare.name not in catalog(db_type)


def test_an_instructor_prepares_copies_from_the_courses_page(browser, trainee, runtime, db_type, copies):
    started = browser.post("/courses/prepare", data={"course": "franchise", "db_type": db_type, "count": "2"})
    assert started.status_code == 200, started.text
    assert f"Preparing 2 ready copies of franchise on {db_type}" in started.text
    deadline = time.monotonic() + 60
    while runtime.operations.preparing() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert f"{db_type} (2)" in browser.get("/courses/").text

    for count in ("many", "0", ["1", "2"]):
        refused = browser.post("/courses/prepare", data={"course": "franchise", "db_type": db_type, "count": count})
        assert refused.status_code == 400
    assert trainee().post("/courses/prepare", data={"course": "franchise", "db_type": db_type,
                                                     "count": "2"}).status_code == 403
