"""What a person sees, clicking through the pages in a real browser, on a desktop and a phone.

Only the login page's address is typed: everything else is reached by the links and buttons
a person would use (see tests/browsing.py for the browser and the screenshots of each step).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from dbwrapper.accounts import Actor
from tests.browsing import TIMEOUT_MS, chromium, log_in, log_out, open_page, page, problems, steps, viewport  # noqa: F401
from tests.conftest import INSTRUCTOR, INSTRUCTOR_PASSWORD, login_of, remove_users
from tests.test_console_pages import STOPPED, wait_until_running

#: A class of a few trainees is made from copies of the course in well under this (milliseconds).
CLASS_TIMEOUT_MS = 120_000


@pytest.fixture
def instructor_database(runtime, my_name):
    """The first instructor's own PostgreSQL database, which the test makes and destroys by its
    pages; whatever it leaves (the database, its archives) is removed afterwards."""
    yield my_name
    instructor = Actor(runtime.accounts.get(INSTRUCTOR), via="tests")
    if runtime.service.registry.database("postgres", my_name) is not None:
        runtime.service.destroy(instructor, "postgres", my_name)
    for manifest in runtime.archives.list(instructor):
        if manifest.database == my_name:
            runtime.archives.delete(instructor, manifest.id)


def test_a_trainee_works_in_the_console_alone_runs_by_keyboard_and_cancels_a_long_query(
    page, steps, trainee, runtime, db_type, monkeypatch,
):
    """A trainee with no client installed: several statements, Ctrl+Enter, an error that says
    where, the history, and a query that would run for a minute stopped by Cancel."""
    unhurried = replace(runtime.console.limits, seconds=60)  # only the Cancel can end the long query in time
    monkeypatch.setattr(runtime, "console", replace(runtime.console, limits=unhurried))
    alice = trainee()
    backend = runtime.servers.backend(db_type)
    name = f"{alice.user_name}_{runtime.settings.port}"
    sleep = {"postgres": "SELECT pg_sleep(60);", "mysql": "SELECT SLEEP(60);"}[db_type]
    results = page.get_by_role("region", name="Results")
    sql = page.get_by_label(re.compile("^SQL"))

    with steps("Log in, create my database and open its console"):
        log_in(page, alice.user_name, alice.password)
        page.get_by_role("link", name=f"Create my {backend.label} database").click()
        page.get_by_role("link", name=f"SQL console of {name}").click()
        expect(page.get_by_role("heading", name=f"SQL console: {name}")).to_be_visible()

    with steps("Make a table and read it back, with Ctrl+Enter"):
        sql.fill("CREATE TABLE fruit (name VARCHAR(20));\nINSERT INTO fruit VALUES ('pear'), ('fig');\n"
                 "SELECT name FROM fruit ORDER BY name;")
        sql.press("Control+Enter")
        expect(results).to_contain_text("3 statements: 3 ran")
        expect(results.get_by_role("cell", name="fig", exact=True)).to_be_visible()

    with steps("A mistake says on which line"):
        sql.fill("SELECT 1;\nSELECT * FORM fruit;")
        sql.press("Control+Enter")
        expect(results).to_contain_text("(line 2, column")

    with steps("Start a long query and cancel it"):
        sql.fill(sleep)
        page.get_by_role("button", name="Run", exact=True).click()
        expect(results).to_contain_text("Running")
        wait_until_running(runtime, db_type, name)
        page.get_by_role("button", name="Cancel running statements").click()
        expect(results.get_by_role("heading", name=re.compile("^Statement 1"))).to_be_visible(timeout=TIMEOUT_MS)
        expect(results).not_to_contain_text("Nothing was running")
        stopped = results.get_by_text(STOPPED[db_type]).or_(results.get_by_role("cell", name="1", exact=True))
        expect(stopped).to_be_visible()

    with steps("The history has every run, newest first"):
        page.reload()
        entries = page.get_by_role("list").filter(has_text="open").get_by_role("listitem")
        expect(entries.first).to_contain_text(sleep.rstrip(";"))
        expect(entries).to_have_count(3)


@pytest.mark.backend("postgres")
def test_an_instructor_archives_restores_snapshots_reverts_and_destroys_their_database(
    page, steps, runtime, instructor_database, as_owner, catalog,
):
    name = instructor_database

    def notes() -> int:
        with as_owner("postgres", name) as connection:
            return connection.exec_driver_sql("SELECT count(*) FROM information_schema.tables "
                                              "WHERE table_name = 'notes'").scalar_one()

    with steps("Log in as the instructor"):
        log_in(page, INSTRUCTOR, INSTRUCTOR_PASSWORD)
        expect(page.get_by_role("heading", name="Databases for trainees")).to_be_visible()

    with steps("Create my PostgreSQL database"), page.expect_response(re.compile("/dbi/create_my_db")) as made:
        page.get_by_role("link", name="Create my database on PostgreSQL").click()
        expect(page.get_by_role("main")).to_contain_text(f"Created {name} on PostgreSQL")
        expect(page.get_by_role("heading", name=f"{name} on PostgreSQL")).to_be_visible()
        expect(page.locator(".secret")).to_have_text(login_of(runtime, "postgres", name).password)
        assert made.value.headers["cache-control"] == "no-store"  # the password is on it
    with as_owner("postgres", name) as connection:
        connection.exec_driver_sql("CREATE TABLE notes (line text)")

    with steps("Archive it now"):
        page.get_by_role("button", name=f"Archive now: {name}").click()
        expect(page.get_by_role("main")).to_contain_text(f"Archived {name} as")
        archive = re.search(rf"Archived {name} as (\S+), ", page.get_by_role("main").inner_text())
        assert archive, page.get_by_role("main").inner_text()
    with as_owner("postgres", name) as connection:
        connection.exec_driver_sql("DROP TABLE notes")

    with steps("Restore the archive over it"):
        page.get_by_role("button", name=f"Restore to {name} from {archive[1]}").click()
        expect(page.get_by_role("main")).to_contain_text(f"Restored {name} from {archive[1]}.")
        assert notes() == 1

    with steps("Take a snapshot with a label"):
        page.get_by_role("link", name=f"Snapshots of {name}").click()
        expect(page.get_by_role("heading", name=f"Snapshots of {name}")).to_be_visible()
        page.get_by_label("Snapshot label (optional)").fill("before the joins")
        page.get_by_role("button", name="Take a snapshot now").click()
        expect(page.get_by_role("main")).to_contain_text(f"Took a snapshot of {name}")
        expect(page.get_by_role("row").filter(has_text="before the joins")).to_have_count(1)
    with as_owner("postgres", name) as connection:
        connection.exec_driver_sql("DROP TABLE notes")

    with steps("Revert to the snapshot"):
        row = page.get_by_role("row").filter(has_text="before the joins")
        row.get_by_role("link", name=re.compile(f"^Revert {name} to the snapshot")).click()
        expect(page.get_by_role("heading", name=re.compile(f"^Revert {name} to the snapshot"))).to_be_visible()

    with steps("Confirm the revert"):
        page.get_by_role("button", name=f"Revert {name}").click()
        expect(page.get_by_role("main")).to_contain_text(f"Reverted {name} to")
        assert notes() == 1

    with steps("Ask to destroy it, from the home page"):
        page.get_by_role("link", name="Home").click()
        page.get_by_role("link", name="Destroy… my database on PostgreSQL").click()
        expect(page.get_by_role("heading", name=f"Destroy {name}?")).to_be_visible()
        assert name in catalog("postgres")  # asking destroys nothing

    with steps("Confirm"):
        page.get_by_role("button", name=f"Destroy {name}").click()
        expect(page.get_by_role("main")).to_contain_text(f"Dropped {name} from PostgreSQL.")
        assert name not in catalog("postgres")


def test_a_trainee_creates_their_database_sees_how_to_connect_and_back_shows_nothing_after_logout(
    page, steps, trainee, runtime, db_type,
):
    alice = trainee()
    backend = runtime.servers.backend(db_type)
    name = f"{alice.user_name}_{runtime.settings.port}"

    with steps("Log in as a trainee"):
        log_in(page, alice.user_name, alice.password)
        expect(page.get_by_role("heading", name=f"{alice.user_name}'s databases")).to_be_visible()
        expect(page.get_by_role("main")).to_contain_text("You have no database yet.")

    with steps("Create my database"):
        page.get_by_role("link", name=f"Create my {backend.label} database").click()
        expect(page.get_by_role("heading", name=f"{name} on {backend.label}")).to_be_visible()
        password = login_of(runtime, db_type, name).password
        expect(page.locator(".secret")).to_have_text(password)
        client = {"postgres": "psql", "mysql": "mysql"}[db_type]
        expect(page.locator("pre").filter(has_text=client).first).to_contain_text(name)

    with steps("Run a query in its SQL console"):
        page.get_by_role("link", name=f"SQL console of {name}").click()
        page.get_by_label(re.compile("^SQL")).fill("SELECT 40 + 2 AS answer;")
        page.get_by_role("button", name="Run", exact=True).click()
        results = page.get_by_role("region", name="Results")
        expect(results.get_by_role("cell", name="42", exact=True)).to_be_visible()

    with steps("Go back home, where the password is"):
        page.get_by_role("link", name="Home").click()
        expect(page.locator(".secret")).to_have_text(password)

    with steps("Log out"):
        log_out(page)
        expect(page.get_by_role("heading", name="Log in")).to_be_visible()

    with steps("Press Back"):
        page.go_back()
        expect(page.get_by_role("heading", name="Log in")).to_be_visible()
        assert password not in page.content()


@pytest.mark.backend("postgres")
def test_an_instructor_provisions_a_class_from_the_home_page_and_watches_it(page, steps, runtime, tmp_path):
    names = [f"b{uuid.uuid4().hex[:6]}_{i}" for i in range(2)]
    try:
        with steps("Log in as the instructor"):
            log_in(page, INSTRUCTOR, INSTRUCTOR_PASSWORD)

        with steps("Send a roster for the franchise course"):
            roster = ("name\n" + "\n".join(names) + "\n").encode()
            page.get_by_label(re.compile("^Roster")).set_input_files(
                {"name": "roster.csv", "mimeType": "text/csv", "buffer": roster}
            )
            page.get_by_label("Course").select_option("franchise")
            page.get_by_label("Server").select_option("postgres")
            page.get_by_role("button", name="Read the roster").click()

        with steps("Confirm the names it read"):
            for trainee_name in names:
                expect(page.get_by_role("listitem").filter(has_text=trainee_name)).to_have_count(1)
            assert runtime.accounts.registry.user(names[0]) is None  # nothing is made before
            assert problems(page) == []
            page.get_by_role("button", name=re.compile("^Provision")).click()
            expect(page.get_by_role("heading", name="Class for franchise on postgres")).to_be_visible()
            expect(page.get_by_role("progressbar", name="Trainees provisioned")).to_be_attached()

        with steps("Watch it until it is done"):
            expect(page.get_by_text("2 provisioned, 0 failed.")).to_be_visible(timeout=CLASS_TIMEOUT_MS)
            bar = page.get_by_role("progressbar", name="Trainees provisioned")
            expect(bar).to_have_attribute("aria-valuetext", "2 of 2")
            for trainee_name in names:
                expect(page.get_by_role("row").filter(has_text=trainee_name)).to_have_count(1)
            assert problems(page) == []

        with steps("Open the credentials sheet"):
            page.get_by_role("link", name="Printable credentials sheet").click()
            for trainee_name in names:
                expect(page.get_by_role("heading", name=trainee_name)).to_be_visible()
    finally:
        remove_users(runtime, names)


# -- every page, for everyone ---------------------------------------------------------------

#: Links a visit must not follow: a GET that creates a database (the flows above click it).
ACTING = ("/dbi/create_my_db",)


def visit_every_page(page: Page, steps, start: str = "/") -> dict[str, list[str]]:
    """Follow every link of this site from ``start``, each once; what :func:`problems` finds on
    each HTML page."""
    found: dict[str, list[str]] = {}
    queue = [start]
    while queue:
        path = queue.pop(0)
        if path in found:
            continue
        with steps(f"Open {path}"):
            response = page.goto(path)
            assert response is not None
        if "text/html" not in response.headers.get("content-type", ""):
            found[path] = []
            continue
        found[path] = problems(page)
        links = page.eval_on_selector_all("a[href]", "links => links.map((a) => a.getAttribute('href'))")
        queue += [link for link in links
                  if link.startswith("/") and not link.startswith(ACTING) and link not in found]
    return found


def test_every_page_fits_the_screen_and_names_every_field_and_button(
    open_page, steps, trainee, runtime, viewport,
):
    alice = trainee(quota=2)
    actor = Actor(runtime.accounts.get(alice.user_name), via="tests")
    name = runtime.service.create(actor, "postgres", None).name
    # The longest name there may be, which a select of databases (the Archives page's) holds too.
    runtime.service.create(actor, "postgres", f"{alice.user_name}_{'x' * (62 - len(alice.user_name))}")
    for label in ("first", "second"):
        runtime.snapshots.take(actor, "postgres", name, label)
    archives = [runtime.archives.archive(actor, "postgres", name).id for _ in range(2)]
    everyones = {"/", "/archives/", "/account/"}
    pages = {
        (INSTRUCTOR, INSTRUCTOR_PASSWORD): everyones | {"/users/", "/courses/", "/audit", "/dbi/list?db_type=postgres"},
        (alice.user_name, alice.password): everyones | {
            "/api/", f"/snapshots/?db_type=postgres&name={name}", f"/console/?db_type=postgres&name={name}",
        },
    }
    try:
        for (who, password), expected in pages.items():
            page = open_page()
            with steps(f"Log in as {who}", page):
                log_in(page, who, password)
            seen = visit_every_page(page, steps)
            assert expected <= set(seen), f"{who} reached {sorted(seen)}"
            assert {path: found for path, found in seen.items() if found} == {}, f"{who} at {viewport}"
    finally:
        for archive in archives:
            runtime.archives.delete(actor, archive)


# -- times, and the keyboard -----------------------------------------------------------------------


@pytest.mark.parametrize("zone", ["Europe/Paris", "UTC"])
def test_times_are_in_utc_with_the_viewers_own_beside_them_when_it_differs(open_page, steps, zone):
    page = open_page(timezone_id=zone)
    with steps("Open the audit log", page):
        log_in(page, INSTRUCTOR, INSTRUCTOR_PASSWORD)
        page.get_by_role("banner").get_by_role("link", name="Audit log").click()
        first = page.locator("time[datetime]").first
        expect(first).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$"))
    moment = datetime.fromisoformat(first.get_attribute("datetime") or "")
    local = page.locator("time[datetime] + .local-time").first
    if zone == "UTC":
        expect(page.locator(".local-time")).to_have_count(0)
    else:
        expect(local).to_contain_text(f"{moment.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M:%S}")
        expect(local).to_contain_text("your time")


def test_the_keyboard_s_place_is_visible(page, steps):
    with steps("Tab to the first link"):
        page.goto("/login")
        page.keyboard.press("Tab")
        focused = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
        assert focused == "solid"
