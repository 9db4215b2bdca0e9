"""Any number of ``dbwrapper serve`` processes on one registry behave as one service.

A class may be served by two processes behind one address (or two addresses, one per
room): a browser's requests then reach either. So nothing a request depends on lives in
one process's memory. Sessions and failed logins are rows in the registry, and each
periodic job (the expiry job, the pool's refill, pruning sessions) runs in one process at
a time, under a job lock of its own.

These tests run two ``dbwrapper serve`` processes, on two ports, on a registry of their
own on the test PostgreSQL server, and use them as a browser would.
"""

from __future__ import annotations

import re
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

from dbwrapper.accounts import FAILURES_PER_NAME
from dbwrapper.db import Deadlines
from dbwrapper.registry.joblock import ExclusiveJob, job_lock, new_process_id, process_ended, process_lock
from dbwrapper.registry.lock import FileLock, RegistryLock, registry_lock
from dbwrapper.settle import ACTOR as SETTLE_ACTOR
from dbwrapper.settle import SETTLE_SECONDS
from tests.conftest import INSTRUCTOR, INSTRUCTOR_PASSWORD, Browser, fresh_name, wait_for
from tests.serving import Service, serve
from tests.test_tokens import make_token, with_token

#: The session cookie CherryPy sets.
SESSION_COOKIE = "session_id"
#: Both processes look for expired databases this often, so that their runs overlap.
EXPIRY_CHECK_SECONDS = 0.2
#: Databases made due at once for the expiry job.
DUE_DATABASES = 8
#: How long the expiry job may take to purge them all.
PURGE_SECONDS = 90

pytestmark = pytest.mark.backend("postgres")


# -- a registry of their own, and two processes on it ---------------------------------------


def new_registry(admin: Engine, server_url: str) -> tuple[str, str]:
    """A database for a registry on the test PostgreSQL server, and its URL."""
    name = f"t_registry_{uuid.uuid4().hex[:8]}"
    # By hand, as an operator makes one: a registry's database is none the service manages.
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = make_url(server_url).set(drivername="postgresql+psycopg2", database=name)
    return name, url.render_as_string(hide_password=False)


def drop_registry(admin: Engine, name: str) -> None:
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def registry_url(admin: dict[str, Engine], server_urls: dict[str, str]) -> Iterator[str]:
    """A fresh registry's URL (a database of its own), dropped afterwards."""
    name, url = new_registry(admin["postgres"], server_urls["postgres"])
    yield url
    drop_registry(admin["postgres"], name)


@dataclass
class Pair:
    """Two ``dbwrapper serve`` processes on one registry, and that registry's database."""

    one: Service
    other: Service
    registry: Engine

    def logs(self) -> str:
        return self.one.log.read_text() + self.other.log.read_text()


@contextmanager
def two_services(admin: dict[str, Engine], server_urls: dict[str, str], tmp_path_factory, conf: str) -> Iterator[Pair]:
    """Two processes serving PostgreSQL databases from one fresh registry, with ``conf``."""
    name, url = new_registry(admin["postgres"], server_urls["postgres"])
    backends = {"postgres": server_urls["postgres"]}
    registry = create_engine(url, poolclass=NullPool)
    try:
        with ExitStack() as running:
            one, other = (
                running.enter_context(serve(tmp_path_factory.mktemp(label), backends, url, conf))
                for label in ("one", "other")
            )
            yield Pair(one, other, registry)
    finally:
        registry.dispose()
        drop_registry(admin["postgres"], name)


@pytest.fixture(scope="module")
def pair(admin: dict[str, Engine], server_urls: dict[str, str], tmp_path_factory) -> Iterator[Pair]:
    """Two processes on one fresh registry; both run the expiry job every
    :data:`EXPIRY_CHECK_SECONDS`."""
    conf = f"expiry_check_seconds = {EXPIRY_CHECK_SECONDS}\npool_size = 0\n"
    with two_services(admin, server_urls, tmp_path_factory, conf) as both:
        yield both


def on(service: Service, browser: Browser) -> Browser:
    """A browser on ``service`` holding ``browser``'s session cookie: the same browser, its
    next request reaching the other process."""
    moved = Browser(service.base)
    moved.cookies.set(SESSION_COOKIE, browser.cookies[SESSION_COOKIE])
    moved.csrf = browser.csrf
    return moved


def logged_in(browser: Browser) -> bool:
    home = browser.get("/", allow_redirects=False)
    return home.status_code == 200 and "Log out" in home.text


# -- sessions --------------------------------------------------------------------------------


def test_a_login_on_one_process_is_a_login_on_the_other(pair):
    with Browser(pair.one.base) as browser:
        assert browser.log_in(INSTRUCTOR, INSTRUCTOR_PASSWORD).status_code == 200
        with on(pair.other, browser) as moved:
            home = moved.get("/", allow_redirects=False)
            assert home.status_code == 200, home.text
            assert "Log out" in home.text and INSTRUCTOR in home.text
            # The session's CSRF token, which the page on the first process gave, is good here too.
            done = moved.post("/users/add", data={"name": f"u{uuid.uuid4().hex[:8]}", "role": "trainee"})
            assert done.status_code == 200 and "only time it is shown" in done.text, done.text


def test_a_logout_on_one_process_ends_the_session_on_the_other(pair):
    with Browser(pair.one.base) as browser:
        assert browser.log_in(INSTRUCTOR, INSTRUCTOR_PASSWORD).status_code == 200
        with on(pair.other, browser) as moved:
            assert logged_in(moved)
            moved.post("/logout")
        assert not logged_in(browser)  # the old cookie, on the first process: sent to log in
        assert browser.get("/").url.startswith(f"{pair.one.base}/login")


def test_sessions_are_kept_as_json_never_pickled(pair):
    with Browser(pair.one.base) as browser:
        assert browser.log_in(INSTRUCTOR, INSTRUCTOR_PASSWORD).status_code == 200
        with pair.registry.connect() as connection:
            data = connection.execute(
                text("SELECT data FROM web_sessions WHERE id = :id"), {"id": browser.cookies[SESSION_COOKIE]}
            ).scalar_one()
    assert re.fullmatch(r'\{"csrf": "[\w-]+", "user": "cwcuser"\}', data), data


# -- failed logins ---------------------------------------------------------------------------


def test_failed_logins_are_counted_across_processes(pair):
    with pair.one.browser() as instructor:
        added = instructor.post("/users/add", data={"name": (name := f"u{uuid.uuid4().hex[:8]}"), "role": "trainee"})
        password = re.search(r'<code class="secret">([^<]+)</code>', added.text).group(1)  # type: ignore[union-attr]
    with Browser(pair.one.base) as one, Browser(pair.other.base) as other:
        one.get("/login")
        other.get("/login")
        guesses = [one, other] * FAILURES_PER_NAME
        statuses = [browser.post("/login", data={"name": name, "password": "wrong-password"}).status_code
                    for browser in guesses[:FAILURES_PER_NAME]]
        assert statuses == [401] * FAILURES_PER_NAME  # 3 on one process, 2 on the other
        sixth = guesses[FAILURES_PER_NAME]
        assert sixth is other
        assert sixth.post("/login", data={"name": name, "password": "wrong-password"}).status_code == 429
        # Even the right password waits out the window, on either process.
        assert one.post("/login", data={"name": name, "password": password}).status_code == 429


# -- the periodic jobs -----------------------------------------------------------------------


def purged_lines(logs: str) -> Counter[str]:
    """How many times the logs say each database was purged."""
    return Counter(re.findall(r"Purged expired database (\S+)", logs))


@pytest.fixture
def due_names(pair, admin: dict[str, Engine]) -> Iterator[list[str]]:
    """Names for the expiry test's databases; any the job left are dropped afterwards."""
    names = [fresh_name() for _ in range(DUE_DATABASES)]
    yield names
    with admin["postgres"].connect() as connection:
        for name in names:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            connection.exec_driver_sql(f'DROP ROLE IF EXISTS "{name}"')


def test_the_expiry_job_purges_each_database_in_one_process_only(pair, due_names, catalog):
    with pair.one.browser() as instructor:
        for name in due_names:
            made = instructor.get("/dbi/create_my_db", params={"db_type": "postgres", "name": name})
            assert made.status_code == 200, made.text
    # All due at once, as if their week had passed: both processes' next runs find them all.
    with pair.registry.begin() as connection:
        connection.execute(
            text("UPDATE managed_databases SET expires_at = now() - interval '1 minute' WHERE name = ANY(:names)"),
            {"names": due_names},
        )
    deadline = time.monotonic() + PURGE_SECONDS
    while set(due_names) & catalog("postgres") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not set(due_names) & catalog("postgres"), pair.logs()
    time.sleep(10 * EXPIRY_CHECK_SECONDS)  # a second purge, if any, would have begun by now

    # Without the job lock both processes would take up each database: one purges it, the
    # other fails (or archives it a second time) and says so.
    targets = [f"postgres:{name}" for name in due_names]
    assert purged_lines(pair.logs()) == Counter(targets), pair.logs()
    assert "could not purge" not in pair.logs()
    with pair.registry.connect() as connection:
        entries = [tuple(row) for row in connection.execute(
            text("SELECT target, action, outcome FROM audit_log WHERE actor = 'dbwrapper (expiry)'")
        )]
    # Each archived and dropped once (the drop is audited of its own), and nothing failed.
    once = [(target, action, "ok") for target in targets for action in ("archive and drop", "destroy")]
    assert Counter(entries) == Counter(once), entries


# -- the job lock itself ---------------------------------------------------------------------


@pytest.fixture(params=["postgres registry", "sqlite registry"])
def lock_url(request, tmp_path: Path) -> URL:
    """A registry's URL for each kind of job lock: an advisory lock (PostgreSQL) and a lock
    file beside the registry's own (SQLite)."""
    if request.param == "sqlite registry":
        return make_url(f"sqlite:///{tmp_path / 'registry.sqlite'}")
    return make_url(request.getfixturevalue("registry_url"))


def test_a_job_lock_has_one_holder_at_a_time(lock_url: URL):
    first, second = (job_lock(lock_url, Deadlines(), "expiry") for _ in range(2))
    assert first.take_alone()
    assert not second.take_alone()  # held: the second holder is refused, and does not wait
    # Another job's lock, and the registry lock every process holds, are other locks.
    pool, registry = job_lock(lock_url, Deadlines(), "pool"), registry_lock(lock_url, Deadlines())
    assert pool.take_alone()
    registry.share()
    first.let_go()  # its run is over
    assert second.take_alone()  # free again: the next holder gets it
    for lock in (first, second, pool, registry):
        lock.release()


def test_an_exclusive_job_does_nothing_while_another_process_runs_it(lock_url: URL):
    runs: list[int] = []

    def make_lock() -> RegistryLock:
        return job_lock(lock_url, Deadlines(), "expiry")

    job = ExclusiveJob("expiry", lambda: runs.append(1), make_lock)
    elsewhere = make_lock()  # as another process's run of the job holds it
    assert elsewhere.take_alone()
    job()
    assert runs == []
    elsewhere.let_go()
    job()
    job()  # each run lets the lock go when it ends
    assert runs == [1, 1]
    assert elsewhere.take_alone()
    elsewhere.release()
    job.stop()


# -- a process that ends mid-work ------------------------------------------------------------

#: Trainees in the class whose process is killed half-way.
ROSTER = 12
#: How long the other process may take to report the class interrupted, and to settle what it
#: left: the heartbeat goes stale in 10 s, and a process's lock must be found free for 10 s.
SETTLE_WITHIN = 60
#: How long a class of :data:`ROSTER` may take on one process.
CLASS_WITHIN = 180
#: Both processes name a trainee's database alike (by default the name carries the port).
SAME_NAMES = 'name_template = "%(user)s_class"\n'
#: The registry's records of databases being made.
CLAIMS = "SELECT name, process FROM managed_databases WHERE NOT ready AND name = ANY(:names)"


def process_of(service: Service) -> str:
    """The id a ``dbwrapper serve`` goes by in the registry's records, which it logs at its start."""
    found = re.search(r"This is process ([0-9a-f]{24}) on the registry", service.log.read_text())
    assert found, service.log.read_text()
    return found.group(1)


def claims(pair: Pair, names: list[str]) -> dict[str, str]:
    """The not-ready records among databases ``names``, with the process each names."""
    with pair.registry.connect() as connection:
        return dict(connection.execute(text(CLAIMS), {"names": names}).all())


def settled_entries(pair: Pair) -> dict[str, str]:
    """What the settle job audited, by target: its detail."""
    with pair.registry.connect() as connection:
        return dict(connection.execute(text(
            "SELECT target, detail FROM audit_log WHERE actor = :actor AND outcome = 'settled'"
        ), {"actor": SETTLE_ACTOR}).all())


def marked_unknown(pair: Pair, admin: dict[str, Engine]) -> set[str]:
    """Databases on the server carrying this registry's marker that the registry does not know."""
    with pair.registry.connect() as connection:
        instance = connection.execute(text("SELECT uuid FROM instance")).scalar_one()
        known = set(connection.execute(text(
            "SELECT name FROM managed_databases UNION SELECT name FROM course_copies")).scalars())
    with admin["postgres"].connect() as connection:
        marked = set(connection.execute(text(
            "SELECT datname FROM pg_catalog.pg_database "
            "WHERE pg_catalog.shobj_description(oid, 'pg_database') = :marker"
        ), {"marker": f"created by dbwrapper {instance}"}).scalars())
    return marked - known


def drop_what_it_made(pair: Pair, admin: dict[str, Engine]) -> None:
    """Drop every database and login the registry records or its marker names: they are on
    the shared test server, which outlives the registry."""
    with pair.registry.connect() as connection:
        made = set(connection.execute(text(
            "SELECT name FROM managed_databases UNION SELECT name FROM course_copies")).scalars())
    with admin["postgres"].connect() as connection:
        for name in sorted(made | marked_unknown(pair, admin)):
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            connection.exec_driver_sql(f'DROP ROLE IF EXISTS "{name}"')


@pytest.fixture
def doomed(admin: dict[str, Engine], server_urls: dict[str, str], tmp_path_factory) -> Iterator[Pair]:
    """Two processes of their own, the first of which the test kills; what they made is dropped."""
    with two_services(admin, server_urls, tmp_path_factory, f"pool_size = 0\n{SAME_NAMES}") as both:
        try:
            yield both
        finally:
            drop_what_it_made(both, admin)


def test_a_class_whose_process_dies_is_interrupted_and_settled_by_the_other(doomed: Pair, admin, catalog):
    one, other = doomed.one, doomed.other
    trainees = [f"k{uuid.uuid4().hex[:6]}_{i}" for i in range(ROSTER)]
    databases = [f"{name}_class" for name in trainees]
    with one.browser() as instructor:
        token = make_token(instructor, "settle")
    roster = {"course": "franchise", "db_type": "postgres", "trainees": trainees}
    started = with_token(one.base, "POST", "/api/v1/classes", token, json=roster)
    assert started.status_code == 202, started.text
    path = started.headers["Location"]

    # Watched from the other process, killed once it is part-way and a database is being made.
    seen: list[int] = []
    deadline = time.monotonic() + CLASS_WITHIN
    while time.monotonic() < deadline:
        progress = with_token(other.base, "GET", path, token).json()["progress"]
        seen.append(progress["done"])
        if progress["done"] >= 2 and claims(doomed, databases):
            one.process.kill()
            one.process.wait()
            break
        assert progress["done"] < ROSTER, "the class ended before it could be killed half-way"
        time.sleep(0.01)
    assert one.process.returncode == -9 and 2 <= seen[-1] < ROSTER, seen
    left = claims(doomed, databases)
    assert left, "nothing was being made when it was killed"
    with doomed.registry.connect() as connection:
        dead = connection.execute(text("SELECT process FROM operations")).scalar_one()
    assert set(left.values()) == {dead} == {process_of(one)}

    def interrupted() -> dict | None:
        found = with_token(other.base, "GET", path, token).json()
        return found if found["state"] == "interrupted" else None

    report = wait_for(interrupted, SETTLE_WITHIN)
    assert report, with_token(other.base, "GET", path, token).json()
    done = report["progress"]["done"]
    assert seen[-1] <= done < ROSTER and f"interrupted after {done} of {ROSTER}" in report["error"], report

    # Once the settle job has run, nothing half-made is left: not in the registry, not on the server.
    assert wait_for(lambda: not claims(doomed, databases), SETTLE_WITHIN), doomed.logs()
    settled = settled_entries(doomed)
    assert {f"postgres:{name}" for name in left} <= set(settled), settled
    assert all(f"process {dead}, which ended" in settled[f"postgres:{name}"] for name in left), settled
    with doomed.registry.connect() as connection:
        kept = dict(connection.execute(text(
            "SELECT name, id FROM managed_databases WHERE name = ANY(:names) AND ready"
        ), {"names": databases}).all())
    assert len(kept) >= 2 and not set(left) & set(kept), (kept, left)
    assert set(databases) & catalog("postgres") == set(kept)
    assert not marked_unknown(doomed, admin)
    with admin["postgres"].connect() as connection:
        logins = set(connection.execute(text("SELECT rolname FROM pg_catalog.pg_roles")).scalars())
    assert not set(left) & logins

    # The same roster again, on the other process: it finishes, and makes nothing twice.
    again = with_token(other.base, "POST", "/api/v1/classes", token, json=roster)
    assert again.status_code == 202, again.text

    def ended() -> dict | None:
        found = with_token(other.base, "GET", again.headers["Location"], token).json()
        return found if found["state"] != "running" else None

    finished = wait_for(ended, CLASS_WITHIN)
    assert finished and finished["state"] == "succeeded", finished
    rows = {row["user"]: row["note"] for row in finished["result"]["done"]}
    assert set(rows) == set(trainees) and not finished["result"]["failed"], finished["result"]
    unchanged = {f"{user}_class" for user, note in rows.items() if note.startswith("already there")}
    assert unchanged == set(kept), rows
    with doomed.registry.connect() as connection:
        now = dict(connection.execute(text(
            "SELECT name, id FROM managed_databases WHERE name = ANY(:names) AND ready"
        ), {"names": databases}).all())
    assert set(now) == set(databases) and all(now[name] == kept[name] for name in kept)
    assert set(databases) <= catalog("postgres") and not marked_unknown(doomed, admin)


# -- a live process's work is never settled ---------------------------------------------------


@pytest.fixture
def claim(pair: Pair, admin: dict[str, Engine]):
    """``claim(process)``: a database being made by ``process``, recorded as ``_claim`` records it,
    on the server with its login; dropped afterwards."""
    made: list[str] = []

    def record(process: str) -> str:
        made.append(name := fresh_name())
        with admin["postgres"].connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
            connection.exec_driver_sql(f'CREATE ROLE "{name}" LOGIN')
        with pair.registry.begin() as connection:
            connection.execute(text(
                "INSERT INTO managed_databases (backend, name, owner_id, login, password, created_at, ready, process) "
                "SELECT 'postgres', :name, id, :name, 'unused', now(), false, :process FROM users WHERE name = :owner"
            ), {"name": name, "process": process, "owner": INSTRUCTOR})
        return name

    yield record
    with pair.registry.begin() as connection:
        connection.execute(text("DELETE FROM managed_databases WHERE name = ANY(:names)"), {"names": made})
    with admin["postgres"].connect() as connection:
        for name in made:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            connection.exec_driver_sql(f'DROP ROLE IF EXISTS "{name}"')


def assert_only_the_ended_claim_is_settled(pair: Pair, claim, live: str, catalog) -> None:
    """A claim of process ``live`` outlives a claim of a process that ended, which the settle
    job settles (so it ran), and two runs more."""
    alive, ended = claim(live), claim(new_process_id())
    assert wait_for(lambda: f"postgres:{ended}" in settled_entries(pair), SETTLE_WITHIN), pair.logs()
    time.sleep(2 * SETTLE_SECONDS)
    assert claims(pair, [alive, ended]) == {alive: live}
    assert alive in catalog("postgres") and ended not in catalog("postgres")
    assert f"postgres:{alive}" not in settled_entries(pair)


def test_the_settle_job_leaves_a_live_processs_claim_alone(pair, claim, catalog):
    assert_only_the_ended_claim_is_settled(pair, claim, process_of(pair.other), catalog)


def test_a_frozen_process_counts_as_alive(pair, claim, catalog):
    frozen = pair.one.process
    frozen.send_signal(signal.SIGSTOP)  # its sessions stay open: its lock is held, its work is not settled
    try:
        assert_only_the_ended_claim_is_settled(pair, claim, process_of(pair.one), catalog)
    finally:
        frozen.send_signal(signal.SIGCONT)
    with pair.one.browser() as thawed:
        assert thawed.get("/").status_code == 200


def test_a_process_lock_is_free_only_once_its_process_ended(lock_url: URL):
    process = new_process_id()
    held = process_lock(lock_url, Deadlines(), process)
    held.share()  # as a process holds its own, from its start to its stop
    assert not process_ended(lock_url, Deadlines(), process)
    assert not process_ended(lock_url, Deadlines(), process)  # asking takes nothing from it
    held.forget()
    assert process_ended(lock_url, Deadlines(), process)
    if isinstance(held, FileLock):
        assert not held.path.exists()  # an ended process's lock file is removed
