"""Nothing a trainee puts in their database ever runs with more rights than theirs.

A trainee owns their PostgreSQL database, so they may set its search_path, make
a schema named like the super-user (which ``"$user"`` resolves to), and define
functions, aggregates and views that shadow what an unqualified statement
names, or CHECK constraints that run their code while rows are copied in. Each
test here plants such traps *as the trainee*, lets the service do one of its
super-user operations on the database (archive, expiry, restore, snapshot,
revert, a course made from it, the pool's copies of that course), and checks
that no trap ran with the super-user's rights: every trap tries to make a
sentinel role a super-user, which succeeds only with those rights (and stays
visible after the database itself is gone). Against a PostgreSQL that checks
passwords (scram).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from dbwrapper.accounts import Actor
from dbwrapper.copies import CourseCopies
from tests.conftest import INSTRUCTOR

pytestmark = pytest.mark.backend("postgres")

#: Succeeds only with the super-user's rights; run as the trainee it fails quietly, so that
#: the trap never gets in the way of what it hides in (a count, a restore's CHECK).
ESCALATE = """
CREATE FUNCTION public.escalate() RETURNS boolean LANGUAGE plpgsql AS $body$
BEGIN
  BEGIN
    EXECUTE 'RESET ROLE';  -- a restore's SET ROLE undone: back to the session's super-user
    EXECUTE pg_catalog.format('ALTER ROLE %%I SUPERUSER', '{sentinel}');
  EXCEPTION WHEN OTHERS THEN NULL;
  END;
  RETURN true;
END
$body$;
"""
#: Functions and an aggregate that unqualified names resolve to once the database's own
#: search_path puts public before the catalog.
SHADOWS = """
CREATE FUNCTION public.count_step(total bigint) RETURNS bigint LANGUAGE sql
  AS $body$ SELECT total + 1 WHERE public.escalate() $body$;
CREATE AGGREGATE public.count(*) (SFUNC = public.count_step, STYPE = bigint, INITCOND = '0');
CREATE FUNCTION public.pg_export_snapshot() RETURNS text LANGUAGE sql
  AS $body$ SELECT pg_catalog.pg_export_snapshot() WHERE public.escalate() $body$;
CREATE FUNCTION public.pg_terminate_backend(integer) RETURNS boolean LANGUAGE sql
  AS $body$ SELECT public.escalate() $body$;
ALTER DATABASE {database} SET search_path = public, pg_catalog;
"""
#: A schema named like the super-user comes first in the default search_path ("$user"),
#: so its view shadows the trainee's table of the same name.
USER_SCHEMA = """
CREATE SCHEMA {superuser};
CREATE VIEW {superuser}.boxes AS SELECT * FROM public.boxes WHERE public.escalate();
"""
#: Checked for every row a restore copies in.
CHECKED = "CREATE TABLE public.checked (n integer CHECK (public.escalate()));"


@pytest.fixture
def sentinel(admin) -> Iterator[str]:
    """A role of the tests' own that every trap tries to make a super-user."""
    name = f"sentinel_{uuid.uuid4().hex[:8]}"
    with admin["postgres"].connect() as connection:
        connection.exec_driver_sql(f'CREATE ROLE "{name}" NOLOGIN')
    yield name
    with admin["postgres"].connect() as connection:
        connection.exec_driver_sql(f'DROP ROLE "{name}"')


@pytest.fixture
def escalated(admin, sentinel) -> Callable[[], bool]:
    """Whether a trap ran with the super-user's rights (the sentinel became a super-user)."""

    def check() -> bool:
        with admin["postgres"].connect() as connection:
            query = text("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = :name")
            return bool(connection.execute(query, {"name": sentinel}).scalar_one())

    return check


@pytest.fixture
def trapped(runtime, trainee, as_owner, server_urls, sentinel) -> Iterator[tuple[object, str]]:
    """A trainee's database (made through the web) with every trap in it, planted by the
    trainee's own login; yields the trainee's browser and the database's name."""
    alice = trainee(quota=3)
    assert alice.get("/dbi/create_my_db", params={"db_type": "postgres"}).status_code == 200
    name = f"{alice.user_name}_{runtime.settings.port}"
    superuser = make_url(server_urls["postgres"]).username
    with as_owner("postgres", name) as connection:
        connection.exec_driver_sql("CREATE TABLE public.boxes (n integer)")
        connection.exec_driver_sql("INSERT INTO public.boxes SELECT pg_catalog.generate_series(1, 5)")
        connection.exec_driver_sql(ESCALATE.format(sentinel=sentinel))
        connection.exec_driver_sql(CHECKED)
        connection.exec_driver_sql("INSERT INTO public.checked VALUES (1), (2)")
        connection.exec_driver_sql(USER_SCHEMA.format(superuser=superuser))
        connection.exec_driver_sql(SHADOWS.format(database=name))
    yield alice, name


def test_the_traps_would_work_if_the_super_user_fell_into_them(trapped, look_inside, escalated):
    """The traps are real: the super-user's own unqualified count, in the trainee's database,
    hands out SUPERUSER (which is why dbwrapper never runs one there)."""
    _, name = trapped
    assert not escalated()
    with look_inside("postgres", name) as connection:
        connection.exec_driver_sql("SELECT count(*) FROM boxes")
    assert escalated()


def test_archiving_from_the_page_runs_as_the_trainee(trapped, escalated, runtime):
    alice, name = trapped
    archived = alice.post("/archives/create", data={"db_type": "postgres", "name": name})
    assert archived.status_code == 200, archived.text
    assert not escalated()
    manifest = runtime.archives.list(Actor(runtime.accounts.get(INSTRUCTOR)))[0]
    assert manifest.database == name and manifest.tables == {"boxes": 5, "checked": 2}


def test_the_expiry_job_archives_and_drops_as_the_trainee(trapped, escalated, runtime, catalog):
    _, name = trapped
    instructor = Actor(runtime.accounts.get(INSTRUCTOR))
    runtime.expiry.set(instructor, "postgres", name, datetime.now(UTC) - timedelta(minutes=1))

    assert f"postgres:{name}" in runtime.purger.run_once()
    assert name not in catalog("postgres")
    assert not escalated()


def test_restoring_runs_the_trainees_checks_as_the_trainee(trapped, escalated, runtime, rows):
    alice, name = trapped
    archived = alice.post("/archives/create", data={"db_type": "postgres", "name": name})
    archive_id = archived.text.split(f"Archived {name} as ", 1)[1].split(",", 1)[0]

    copy = f"{alice.user_name}_copy"
    restored = alice.post("/archives/restore", data={"archive": archive_id, "into": copy})
    assert restored.status_code == 200, restored.text
    assert not escalated()
    assert rows("postgres", copy) == {"boxes": 5, "checked": 2}
    over = alice.post("/archives/restore", data={"archive": archive_id})
    assert over.status_code == 200, over.text
    assert not escalated()


def test_snapshots_and_reverts_never_run_the_trainees_code(trapped, escalated):
    alice, name = trapped
    where = {"db_type": "postgres", "name": name}
    taken = alice.post("/snapshots/take", data={**where, "label": "trapped"})
    assert taken.status_code == 200, taken.text
    number = taken.text.split("<tr>\n  <td>", 1)[1].split("<", 1)[0]
    reverted = alice.post("/snapshots/revert", data={**where, "snapshot": number})
    assert reverted.status_code == 200, reverted.text
    assert not escalated()


def test_a_course_made_from_the_database_and_its_copies_never_run_its_code(trapped, escalated, runtime):
    _, name = trapped
    db_name = f"t_{uuid.uuid4().hex[:12]}"
    instructor = Actor(runtime.accounts.get(INSTRUCTOR))
    course = f"trapped_{db_name}"
    runtime.courses.add_from(instructor, course, "", {}, {"postgres": name})
    assert not escalated()

    backend = runtime.servers.backend("postgres")
    pool = CourseCopies(runtime.servers, pool_size=1)
    made = runtime.service.create(instructor, "postgres", db_name, course=course)  # a copy of the master
    try:
        assert pool.top_up(backend, course, runtime.service.course_sql(course, backend)) == 1
        handed = runtime.service.create(instructor, "postgres", f"{db_name}_pool", course=course)
        assert made.credentials is not None and handed.credentials is not None
        assert not escalated()
    finally:
        runtime.service.destroy(instructor, "postgres", db_name)
        runtime.service.destroy(instructor, "postgres", f"{db_name}_pool")
        for copy in runtime.service.registry.copies("postgres", course):
            backend.drop_database(copy.name, copy.name, registered=True)
            runtime.service.registry.forget_copy(copy)
