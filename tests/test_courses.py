"""Courses: every database made for one starts with its content, owned by the trainee's login."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from dbwrapper.accounts import Actor
from dbwrapper.errors import Forbidden, InvalidInput
from dbwrapper.tools import ToolFailed
from tests.conftest import INSTRUCTOR
from tests.test_isolation import run_as, shown_credentials

FRANCHISE = {"stores": 40, "items": 200, "stock": 8000, "orders": 20000}


def test_a_trainees_course_database_holds_the_course_and_is_theirs(trainee, db_type, runtime, rows):
    alice = trainee()
    page = alice.get("/dbi/create_my_db", params={"db_type": db_type, "course": "franchise"})
    assert page.status_code == 200, page.text
    assert "for the course franchise" in page.text
    shown = shown_credentials(page.text)
    name = make_url(shown["url"]).database

    assert rows(db_type, name) == FRANCHISE
    low = run_as(db_type, shown, name, "SELECT count(*) FROM low_stock")
    assert low.stdout.strip() == "669"  # the view came too
    # The trainee's login made the tables, so the trainee may change them.
    changed = run_as(db_type, shown, name, "ALTER TABLE orders ADD COLUMN note VARCHAR(40)")
    assert changed.returncode == 0, changed.stderr
    refused = run_as(db_type, shown, name, "INSERT INTO stock VALUES (1, 1, -5)")
    assert refused.returncode != 0  # constraints came with it


def test_a_course_that_does_not_load_leaves_nothing_behind(runtime, db_type, db_name, catalog, admin):
    instructor = Actor(runtime.accounts.get(INSTRUCTOR))
    broken = f"broken_{db_type}"
    runtime.courses.add(instructor, broken, "", {db_type: "CREATE TABLE ok (i INTEGER);\nTHIS IS NOT SQL;\n"})
    with pytest.raises(ToolFailed):
        runtime.service.create(instructor, db_type, db_name, course=broken)
    assert db_name not in catalog(db_type)
    assert runtime.service.registry.database(db_type, db_name) is None
    login_query = {
        "postgres": "SELECT count(*) FROM pg_roles WHERE rolname = :name",
        "mysql": "SELECT count(*) FROM mysql.user WHERE User = :name",
    }[db_type]
    with admin[db_type].connect() as connection:
        assert connection.execute(text(login_query), {"name": db_name}).scalar_one() == 0


def test_an_unknown_course_is_a_400_naming_the_courses(browser, db_type, catalog):
    before = catalog(db_type)
    page = browser.get("/dbi/create_my_db", params={"db_type": db_type, "name": "x_course", "course": "nope"})
    assert page.status_code == 400
    assert "the courses are: " in page.text and "franchise" in page.text
    assert catalog(db_type) == before


def test_only_instructors_define_courses(runtime, trainee):
    alice = Actor(runtime.accounts.get(trainee().user_name))
    with pytest.raises(Forbidden, match="Only an instructor"):
        runtime.courses.add(alice, "mine", "", {"postgres": "SELECT 1;"})
    instructor = Actor(runtime.accounts.get(INSTRUCTOR))
    with pytest.raises(InvalidInput):
        runtime.courses.add(instructor, "Bad Name", "", {"postgres": "SELECT 1;"})


def test_courses_on_the_command_line(cli, tmp_path, runtime, db_type, db_name, catalog, as_owner):
    sql = tmp_path / "tiny.sql"
    sql.write_text("CREATE TABLE boxes (n INTEGER);\nINSERT INTO boxes VALUES (7);\n")
    option = {"postgres": "--postgres-sql", "mysql": "--mysql-sql"}[db_type]
    added = cli("course", "add", f"tiny_{db_type}", option, str(sql), "--description", "one box")
    assert added.returncode == 0, added.stderr
    assert f"tiny_{db_type}" in cli("course", "list").stdout
    made = cli("create", "--db-type", db_type, "--name", db_name, "--course", f"tiny_{db_type}")
    assert made.returncode == 0, made.stderr
    runtime.service.registry.refresh()  # made by the command line, another process
    with as_owner(db_type, db_name) as connection:
        assert connection.execute(text("SELECT n FROM boxes")).scalar_one() == 7
    runtime.service.destroy(Actor(runtime.accounts.get(INSTRUCTOR)), db_type, db_name)
    assert db_name not in catalog(db_type)


def test_a_course_made_from_an_existing_database(cli, runtime, db_type, db_name, as_owner, rows):
    instructor = Actor(runtime.accounts.get(INSTRUCTOR))
    runtime.service.create(instructor, db_type, db_name, course="franchise")
    with as_owner(db_type, db_name) as connection:  # the instructor prepares it by hand
        connection.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body VARCHAR(80))"))
        connection.execute(text("INSERT INTO notes VALUES (1, 'count the paper clips first')"))
    course = f"from_{db_name}"
    option = {"postgres": "--postgres-from", "mysql": "--mysql-from"}[db_type]
    added = cli("course", "add", course, option, db_name)
    assert added.returncode == 0, added.stderr
    with as_owner(db_type, db_name) as connection:  # later changes to the source do not change the course
        connection.execute(text("DELETE FROM orders"))

    copy = f"{db_name}_c"
    made = runtime.service.create(instructor, db_type, copy, course=course)
    try:
        assert rows(db_type, copy) == {**FRANCHISE, "notes": 1}
        assert made.credentials.login.name == copy
        trainee_engine = create_engine(made.credentials.url)
        with trainee_engine.begin() as connection:  # its own login owns the view and the tables
            connection.execute(text("DROP VIEW low_stock"))
            connection.execute(text("ALTER TABLE notes ADD COLUMN seen INTEGER"))
        trainee_engine.dispose()
    finally:
        runtime.service.destroy(instructor, db_type, copy)


def test_a_course_from_a_database_dbwrapper_does_not_manage_is_a_clear_error(cli, db_type):
    """Only a managed database, read as its own login, can become a course: never the
    server's own (its users and their password hashes would go to every trainee)."""
    option = {"postgres": "--postgres-from", "mysql": "--mysql-from"}[db_type]
    for database in ("no_such_db", {"postgres": "postgres", "mysql": "mysql"}[db_type], "dbwrapper"):
        refused = cli("course", "add", f"nothing_{db_type}", option, database)
        assert refused.returncode == 2
        assert f"{database} is not a database dbwrapper manages" in refused.stderr
    assert f"nothing_{db_type}" not in cli("course", "list").stdout


def test_an_instructor_adds_a_course_on_the_courses_page(browser, trainee, runtime, db_type, db_name, rows):
    page = browser.get("/courses/")
    assert page.status_code == 200 and "franchise" in page.text
    course = f"web_{db_name}"
    field = {"postgres": "postgres_sql", "mysql": "mysql_sql"}[db_type]
    sql = "CREATE TABLE boxes (n INTEGER);\nINSERT INTO boxes VALUES (7), (8);\n"
    added = browser.post("/courses/add", data={"name": course, "description": "two boxes"},
                         files={field: ("boxes.sql", sql.encode())})
    assert added.status_code == 200, added.text
    assert f"Added the course {course}" in added.text and f"<code>{course}</code>" in added.text
    instructor = Actor(runtime.accounts.get(INSTRUCTOR))
    runtime.service.create(instructor, db_type, db_name, course=course)
    assert rows(db_type, db_name) == {"boxes": 2}

    alice = trainee()
    assert alice.get("/courses/").status_code == 403
    refused = alice.post("/courses/add", data={"name": "mine"}, files={field: ("x.sql", b"SELECT 1;")})
    assert refused.status_code == 403


def test_the_courses_page_says_what_is_wrong(browser, db_type):
    field = {"postgres": "postgres", "mysql": "mysql"}[db_type]
    both = browser.post("/courses/add", data={"name": f"both_{db_type}", f"{field}_from": "x"},
                        files={f"{field}_sql": ("a.sql", b"SELECT 1;")})
    assert both.status_code == 400 and "either SQL or a database" in both.text
    latin = browser.post("/courses/add", data={"name": f"latin_{db_type}"},
                         files={f"{field}_sql": ("a.sql", "SELECT 'caf\u00e9';".encode("latin-1"))})
    assert latin.status_code == 400 and "is not UTF-8 text" in latin.text
    nothing = browser.post("/courses/add", data={"name": f"nothing_{db_type}"})
    assert nothing.status_code == 400 and "needs the SQL" in nothing.text


def test_a_field_given_twice_on_the_courses_page_is_a_400(browser, db_type):
    for field in ("name", "description"):
        data = {"name": f"twice_{db_type}", "description": "once", field: ["a_one", "a_two"]}
        twice = browser.post("/courses/add", data=data, files={f"{db_type}_sql": ("a.sql", b"SELECT 1;")})
        assert twice.status_code == 400, (field, twice.status_code)
