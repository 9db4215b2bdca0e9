"""One action over a whole class, from the class's page: extend, reset to the course, archive and drop.

The class is what one provisioning made: its databases that still exist. Each
action asks first, naming how many databases it touches, then runs in the
background with the provisioning's progress bar and reports every database.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest

from dbwrapper.accounts import Actor
from tests.conftest import INSTRUCTOR, Browser, login_of, remove_users
from tests.test_courses import FRANCHISE
from tests.test_isolation import run_as


@pytest.fixture
def class_of_two(browser: Browser, runtime, db_type) -> Iterator[tuple[str, list[str]]]:
    """A class of two trainees provisioned from the page: its status page and its databases.
    The trainees, their databases and any archives of them are removed afterwards."""
    names = [f"b{uuid.uuid4().hex[:6]}_{i}" for i in range(2)]
    _, page, status_url = browser.provision_class("name\n" + "\n".join(names) + "\n", db_type=db_type, within=120)
    assert "2 provisioned, 0 failed." in page.text, page.text
    databases = [f"{name}_{runtime.settings.port}" for name in names]
    yield status_url, databases
    instructor = Actor(runtime.accounts.get(INSTRUCTOR), via="tests")
    for manifest in runtime.archives.list(instructor):
        if manifest.database in databases:
            runtime.archives.delete(instructor, manifest.id)
    remove_users(runtime, names)


def act(browser: Browser, status_url: str, action: str, count: int) -> str:
    """Ask for ``action`` on the class's page, confirm it, and follow its progress; the last page."""
    class_page = browser.get(status_url).text
    link = re.search(rf'href="(/classes/act\?job=[^"]+&amp;action={action})"', class_page)
    assert link, class_page
    asked = browser.get(link[1].replace("&amp;", "&"))
    assert asked.status_code == 200, asked.text
    assert f"For each of the {count} database(s) this class made" in asked.text
    job = re.search(r'name="job" value="([^"]+)"', asked.text)[1]
    started = browser.post("/classes/act", data={"job": job, "action": action})
    assert started.status_code == 200 and "<progress" in started.text, started.text
    assert f"Started, for each of {count} database(s) of the class" in started.text  # said once, there
    page, deadline = started, time.monotonic() + 180
    while " done, " not in page.text and time.monotonic() < deadline:
        time.sleep(0.2)
        page = browser.get(started.url.removeprefix(browser.base_url))
    assert f"{count} done, 0 failed." in page.text, page.text
    assert f'href="{status_url}"' in page.text.replace("&amp;", "&")  # back to the class
    return page.text


def test_an_instructor_extends_resets_and_archives_a_whole_class(
    browser, runtime, db_type, class_of_two, rows, catalog,
):
    status_url, databases = class_of_two
    class_page = browser.get(status_url).text
    for button in ("Extend all 2…", "Reset to the course all 2…", "Archive and drop all 2…"):
        assert button in class_page

    registry = runtime.service.registry
    before = {name: registry.database(db_type, name).expires_at for name in databases}
    act(browser, status_url, "extend", 2)
    registry.refresh()
    for name in databases:
        moved = registry.database(db_type, name).expires_at
        assert moved is not None and abs(moved - before[name] - timedelta(days=7)) < timedelta(minutes=1)

    for name in databases:  # each trainee breaks their data
        login = login_of(runtime, db_type, name)
        url = runtime.servers.backend(db_type).database_url(name, login).render_as_string(False)
        broken = run_as(db_type, {"url": url, "password": login.password}, name, "DELETE FROM orders")
        assert broken.returncode == 0, broken.stderr
    done = act(browser, status_url, "reset", 2)
    for name in databases:
        assert f"Reset {name} to the start of the course franchise" in done
        assert rows(db_type, name) == FRANCHISE
        (kept,) = registry.snapshots(registry.database(db_type, name))
        assert kept.label == "before reset to franchise" and rows(db_type, kept.name)["orders"] == 0

    done = act(browser, status_url, "archive", 2)
    assert done.count("and dropped") == 2
    instructor = Actor(runtime.accounts.get(INSTRUCTOR), via="tests")
    archived = {manifest.database for manifest in runtime.archives.list(instructor)}
    for name in databases:
        assert registry.database(db_type, name) is None and name not in catalog(db_type)
        assert name in archived
    # Nothing is left to act on: the class's page offers no action that would touch nothing.
    assert "/classes/act" not in browser.get(status_url).text


def test_actions_over_a_class_are_an_instructors_and_say_what_is_wrong(browser, trainee, runtime, class_of_two):
    status_url, _ = class_of_two
    job = status_url.split("job=", 1)[1]
    alice = trainee()
    assert alice.get("/classes/act", params={"job": job, "action": "extend"}).status_code == 403
    assert alice.post("/classes/act", data={"job": job, "action": "archive"}).status_code == 403
    unknown = browser.get("/classes/act", params={"job": job, "action": "explode"})
    assert unknown.status_code == 400 and "valid: extend, reset, archive" in unknown.text
    missing = browser.post("/classes/act", data={"job": "nope", "action": "extend"})
    assert missing.status_code == 404
    instructor = Actor(runtime.accounts.get(INSTRUCTOR), via="tests")
    started = [op for kind in ("bulk extend", "bulk archive") for op in runtime.operations.list(instructor, kind=kind)
               if op.target == job]
    assert started == []  # none of these started anything
