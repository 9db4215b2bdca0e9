"""Smaller boundaries, each attacked as a trainee or a browser would.

* A name that is another user's own cannot be taken: ``zed`` cannot make
  ``zed_x_7001``, trainee zed_x's database to be, nor any ``zed_x_…``.
* Logging in never sends the browser to another site.
* No page is kept by the browser: Back after logging out shows no password.
* What is dbwrapper's is the registry's to say: a trainee who removes their
  database's marker cannot make it undestroyable.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import psycopg2
import pytest
from markupsafe import escape
from sqlalchemy.engine import make_url

from dbwrapper.accounts import Actor
from dbwrapper.errors import Refused
from tests.conftest import INSTRUCTOR, Browser, login_of


@pytest.fixture
def user(runtime, base_url) -> Iterator[Callable[[str], Browser]]:
    """``user(name)``: a trainee of that name, logged in; removed afterwards with their databases."""
    made: list[str] = []

    def make(name: str, quota: int = 3) -> Browser:
        _, password = runtime.accounts.add(name, "trainee", quota=quota, by="tests")
        made.append(name)
        session = Browser(base_url)
        assert session.log_in(name, password).status_code == 200
        return session

    yield make
    instructor = Actor(runtime.accounts.get(INSTRUCTOR), via="tests")
    for name in made:
        found = runtime.accounts.registry.user(name)
        for db in runtime.accounts.registry.databases(owner=found) if found else ():
            runtime.service.destroy(instructor, db.db_type, db.name)
        if found:
            runtime.accounts.remove(name, by="tests")


def test_a_trainee_cannot_take_a_name_that_is_another_users_own(user, runtime, db_type, catalog):
    zed_name = f"z{uuid.uuid4().hex[:6]}"
    zed, zed_x = user(zed_name), user(f"{zed_name}_x")
    port = runtime.settings.port
    for taken in (f"{zed_name}_x_{port}", f"{zed_name}_x_notes"):  # zed_x's database, zed_x's prefix
        refused = zed.get("/dbi/create_my_db", params={"db_type": db_type, "name": taken})
        assert refused.status_code == 403, taken
        assert escape(f"{taken} is {zed_name}_x's own name") in refused.text
        assert taken not in catalog(db_type)
    assert zed.get("/dbi/create_my_db", params={"db_type": db_type, "name": f"{zed_name}_notes"}).status_code == 200
    mine = zed_x.get("/dbi/create_my_db", params={"db_type": db_type})
    assert mine.status_code == 200 and f"Created {zed_name}_x_{port}" in mine.text


def test_an_instructor_cannot_make_a_database_that_is_a_trainees_own_for_someone_else(
    user, runtime, browser, db_type, catalog
):
    alice_name = f"a{uuid.uuid4().hex[:6]}"
    user(alice_name)
    theirs = f"{alice_name}_{runtime.settings.port}"
    refused = browser.get("/dbi/create_my_db", params={"db_type": db_type, "name": theirs})
    assert refused.status_code == 409
    assert escape(f"{theirs} is {alice_name}'s own name") in refused.text
    assert theirs not in catalog(db_type)


def test_a_user_whose_names_another_users_database_has_cannot_be_added(user, runtime, browser, db_type):
    zed_name = f"z{uuid.uuid4().hex[:6]}"
    zed = user(zed_name)
    early = f"{zed_name}_y_1"  # no zed_y yet: zed's own name
    assert zed.get("/dbi/create_my_db", params={"db_type": db_type, "name": early}).status_code == 200
    added = browser.post("/users/add", data={"name": f"{zed_name}_y"})
    assert added.status_code == 400
    assert f"would own {early} by its name, which belongs to {zed_name}" in added.text
    assert runtime.accounts.registry.user(f"{zed_name}_y") is None


@pytest.mark.parametrize("target", ["/\t/evil.example/", "//evil.example/", "/\\evil.example", "https://evil.example/"])
def test_logging_in_never_leads_to_another_site(anonymous, base_url, target):
    anonymous.get("/login", params={"next": target})
    done = anonymous.post("/login", data={"name": INSTRUCTOR, "password": "instructor-password", "next": target},
                          allow_redirects=False)
    assert done.status_code == 303
    where = urlsplit(done.headers["Location"])
    assert where.netloc == urlsplit(base_url).netloc and where.path == "/"


def test_a_page_with_a_password_is_not_kept_for_the_back_button(trainee, db_type):
    alice = trainee()
    page = alice.get("/dbi/create_my_db", params={"db_type": db_type})
    assert 'class="secret"' in page.text
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    alice.post("/logout")
    again = alice.get("/", allow_redirects=False)  # what Back does once nothing is cached
    assert again.status_code == 303 and 'class="secret"' not in again.text


UNMARK = {
    "postgres": 'COMMENT ON DATABASE "{name}" IS NULL',
    "mysql": "ALTER DATABASE `{name}` COMMENT ''",
}


def test_a_database_whose_owner_removed_its_marker_is_destroyed_all_the_same(trainee, runtime, db_type,
                                                                              as_owner, catalog):
    alice = trainee()
    alice.get("/dbi/create_my_db", params={"db_type": db_type})
    name = f"{alice.user_name}_{runtime.settings.port}"
    with as_owner(db_type, name) as connection:
        connection.exec_driver_sql(UNMARK[db_type].format(name=name))
    listed = next(db for db in runtime.servers.backend(db_type).list_databases(fresh=True) if db.name == name)
    assert listed.managed is False  # the marker is gone indeed

    done = alice.post("/dbi/destroy_my_db", data={"db_type": db_type, "name": name})
    assert done.status_code == 200, done.text
    assert name not in catalog(db_type)


def test_the_expiry_job_purges_a_database_whose_marker_was_removed(trainee, runtime, db_type, as_owner, catalog):
    alice = trainee()
    alice.get("/dbi/create_my_db", params={"db_type": db_type})
    name = f"{alice.user_name}_{runtime.settings.port}"
    with as_owner(db_type, name) as connection:
        connection.exec_driver_sql(UNMARK[db_type].format(name=name))
    instructor = Actor(runtime.accounts.get(INSTRUCTOR))
    runtime.expiry.set(instructor, db_type, name, datetime.now(UTC) - timedelta(minutes=1))

    assert f"{db_type}:{name}" in runtime.purger.run_once()
    assert name not in catalog(db_type)
    assert f"{db_type}:{name}" not in runtime.purger.run_once()  # archived once, not again every minute


def test_a_database_destroyed_while_it_is_being_made_is_not_reported_made(runtime, db_type, db_name,
                                                                          catalog, monkeypatch):
    instructor = Actor(runtime.accounts.get(INSTRUCTOR))
    backend = runtime.servers.backend(db_type)
    make = backend.create_database

    def made_then_destroyed(*args, **kwargs):  # another instructor's destroy, at that moment
        made = make(*args, **kwargs)
        runtime.service.destroy(instructor, db_type, db_name)
        return made

    monkeypatch.setattr(backend, "create_database", made_then_destroyed)
    with pytest.raises(Refused, match=f"{db_name} was destroyed while it was being made"):
        runtime.service.create(instructor, db_type, db_name)
    assert runtime.service.registry.database(db_type, db_name) is None
    assert db_name not in catalog(db_type)


def waiting_on_the_trainee(admin, count: int) -> None:
    """Return once ``count`` sessions of the server wait for a lock (the trainee's), or after 10 s."""
    give_up = time.monotonic() + 10
    with admin["postgres"].connect() as connection:
        while time.monotonic() < give_up:
            waiting = connection.exec_driver_sql(
                "SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE wait_event_type = 'Lock'"
            ).scalar_one()
            if waiting >= count:
                return
            time.sleep(0.05)


@pytest.mark.backend("postgres")
def test_one_trainee_cannot_take_the_server_from_everyone_else(trainee, runtime, base_url, server_urls, admin):
    """At most requests_per_server (40) requests may wait on a server, the registry's queries
    included when it lives there (dbwrapper.gates). A trainee tries to fill that bound alone:
    one session of theirs changes their own login's password in a transaction left open, so
    the password dbwrapper sets again before every dump waits on that row, and 45 restores
    at once from 45 logins would hold every place. But one user has at most
    requests_per_user (8) requests at work, the others a 429: the class goes on."""
    alice, bob = trainee(), trainee()
    assert alice.get("/dbi/create_my_db", params={"db_type": "postgres"}).status_code == 200
    name = f"{alice.user_name}_{runtime.settings.port}"
    archived = alice.post("/archives/create", data={"db_type": "postgres", "name": name})
    archive_id = archived.text.split(f"Archived {name} as ", 1)[1].split(",", 1)[0]

    own = login_of(runtime, "postgres", name)
    url = make_url(server_urls["postgres"])
    holder = psycopg2.connect(host=url.host, port=url.port, user=own.name, password=own.password, dbname=name)
    with holder.cursor() as cursor:  # a transaction left open: psycopg2 begins one
        cursor.execute(f'ALTER ROLE "{own.name}" PASSWORD %s', ("mine-for-a-moment",))

    # Requests of one session wait for each other (CherryPy locks a session per request):
    # the trainee logs in as many times as they send requests at once.
    sessions = [Browser(base_url) for _ in range(runtime.settings.requests_per_server + 5)]
    for session in sessions:
        assert session.log_in(alice.user_name, alice.password).status_code == 200
    restore = {"data": {"archive": archive_id}}
    crowd = [threading.Thread(target=session.post, args=("/archives/restore",), kwargs=restore)
             for session in sessions]
    try:
        for thread in crowd:
            thread.start()
        waiting_on_the_trainee(admin, runtime.settings.requests_per_user)
        answered = bob.get("/dbi/create_my_db", params={"db_type": "postgres"})
    finally:
        holder.rollback()
        holder.close()
        for thread in crowd:
            thread.join()
        for session in sessions:
            session.close()
        for manifest in runtime.archives.list(Actor(runtime.accounts.get(alice.user_name))):
            runtime.archives.delete(Actor(runtime.accounts.get(INSTRUCTOR)), manifest.id)
    assert answered.status_code == 200, answered.text
