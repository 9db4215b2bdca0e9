"""A class from a roster: an account, a course database and credentials per trainee.

How a roster file is read (headers, columns, bad rows) is in test_rosters.py; here the class is
made, on real servers, from the command line and from the pages.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from dbwrapper.config import DEFAULT_HOST, DEFAULT_PORT
from dbwrapper.names import render_name
from dbwrapper.passwords import ALPHABET, GENERATED_PASSWORD_LENGTH
from tests.conftest import remove_users

#: A password as the generator makes them, on a page.
GENERATED = re.compile(f"[{ALPHABET}]{{{GENERATED_PASSWORD_LENGTH}}}")


@dataclass
class Roster:
    """A roster file naming three trainees who can be made, then one who cannot: ``taken``."""

    path: Path
    names: list[str]
    taken: str


@pytest.fixture
def roster(tmp_path, runtime, db_type, instructor):
    """Three trainees, then a fourth whose database name is already another user's (that row fails
    on its own, the others are made); everything made is removed afterwards."""
    names = [f"c{uuid.uuid4().hex[:6]}_{i}" for i in range(3)]
    owner = f"c{uuid.uuid4().hex[:6]}"
    taken = f"{owner}_x"
    user, _ = runtime.accounts.add(owner, "trainee", by="tests")
    runtime.service.create(instructor, db_type, f"{taken}_notes", owner=user)  # named like taken's own
    path = tmp_path / "roster.csv"
    path.write_text("name\n" + "\n".join([*names, taken]) + "\n")
    yield Roster(path, names, taken)
    remove_users(runtime, [*names, taken, owner])  # the command line made them, in another process


def test_a_class_is_provisioned_from_a_roster_and_a_failing_row_does_not_stop_it(
    cli, roster, db_type, runtime, tmp_path, rows
):
    sheet = tmp_path / "sheet.html"
    first = cli("class", "provision", str(roster.path), "--course", "franchise", "--db-type", db_type,
                "--sheet", str(sheet))
    assert first.returncode == 4, first.stderr  # one row failed, and says so
    assert "row 1 left out, a header: name" in first.stdout
    assert "3 provisioned, 1 failed" in first.stdout
    assert f"{roster.taken}" in first.stdout and "FAILED: A user named" in first.stdout
    assert "3/4" in first.stderr or "4/4" in first.stderr  # the progress bar

    runtime.service.registry.refresh()  # made by the command line, another process
    page = sheet.read_text()
    for name in roster.names:
        [record] = [db for db in runtime.service.registry.databases(db_type) if db.owner == name]
        assert rows(db_type, record.name)["orders"] == 20000
        assert record.password in page and name in page
        assert GENERATED.fullmatch(record.password)
    assert oct(sheet.stat().st_mode & 0o777) == "0o600"
    # A file opened from the disk: its style is inside it, and it says where to log in.
    assert "<style>" in page and "@page { size: A4" in page and "/static/sheet.css" not in page
    assert f"http://{DEFAULT_HOST}:{DEFAULT_PORT}" in page  # the command line's own settings

    hashes = {name: runtime.accounts.get(name).password_hash for name in roster.names}
    again = cli("class", "provision", str(roster.path), "--course", "franchise", "--db-type", db_type,
                "--sheet", str(tmp_path / "again.html"))
    assert "3 provisioned, 1 failed" in again.stdout
    assert again.stdout.count("already there; unchanged") == 3
    runtime.service.registry.refresh()
    assert {name: runtime.accounts.get(name).password_hash for name in roster.names} == hashes
    assert len([db for db in runtime.service.registry.databases(db_type) if db.owner in roster.names]) == 3
    assert "unchanged: the one given to you before" in (tmp_path / "again.html").read_text()


def test_a_roster_with_a_bad_row_is_refused_before_anyone_is_made(cli, roster, db_type, runtime):
    roster.path.write_text(roster.path.read_text() + "Not-A-Name\n")
    refused = cli("class", "provision", str(roster.path), "--course", "franchise", "--db-type", db_type)
    assert refused.returncode == 2
    assert "1 row(s) of the roster hold no user name in the column \"name\": row 6 (Not-A-Name)" in refused.stderr
    runtime.accounts.registry.refresh()
    assert all(runtime.accounts.registry.user(name) is None for name in roster.names)


def test_an_instructor_confirms_the_names_a_roster_holds_then_watches_the_class_and_prints_its_sheet(
    browser, db_type, runtime, base_url
):
    names = [f"w{uuid.uuid4().hex[:6]}_{i}" for i in range(2)]
    home = browser.get("/")
    assert 'action="/classes/provision"' in home.text
    # An LMS's export: a header, a column of logins that is not the first, a row without a login.
    roster = "Student,ID,SIS Login ID\n" + "".join(f'"Trainee, {n}",{n},{name}\n' for n, name in enumerate(names))
    roster += '"Student, Test",99,\n'
    try:
        asked = browser.read_roster(roster, db_type=db_type)
        assert asked.status_code == 200, asked.text
        assert "Provision these 2 trainees" in asked.text
        assert all(f"<li><code>{name}</code></li>" in asked.text for name in names)
        assert "read from the column &#34;SIS Login ID&#34;" in asked.text
        assert "Rows left out (2)" in asked.text and "Student, Test, 99" in asked.text
        assert "franchise" in asked.text and runtime.servers.backend(db_type).label in asked.text
        runtime.accounts.registry.refresh()
        assert all(runtime.accounts.registry.user(name) is None for name in names)  # nothing made yet
        assert browser.get("/classes/provision").status_code == 405  # a GET never makes anything
        assert browser.get("/classes/start").status_code == 405

        started, page, status_url = browser.provision_class(roster, db_type=db_type, within=120)
        assert "<progress" in started.text
        assert "Provisioning 2 trainee(s) for franchise." in started.text  # said once, after the redirect
        assert "2 provisioned, 0 failed." in page.text

        sheet = browser.get(status_url.replace("/status", "/sheet"))
        assert all(name in sheet.text for name in names)
        assert f"<code class=\"address\">{base_url}</code>" in sheet.text
        said = " ".join(sheet.text.split())
        assert "account passwords are shown only here, now" in said and "<em>New password</em>" in said
        assert sheet.text.count("Expires</dt><dd>20") == 2
        assert 'href="/static/sheet.css"' in sheet.text and "<style>" not in sheet.text  # the CSP: no inline style
        for name in names:
            record = runtime.service.registry.database(db_type, render_name(
                runtime.settings.name_template, user=name, port=runtime.settings.port))
            assert record is not None and record.password in sheet.text
        style = browser.get("/static/sheet.css")
        assert style.status_code == 200 and "@page { size: A4" in style.text and "break-inside: avoid" in style.text
    finally:
        remove_users(runtime, names)


def test_the_confirmation_is_checked_again_and_only_instructors_provision(browser, trainee, runtime, db_type):
    tampered = browser.post("/classes/start", data={"course": "franchise", "db_type": db_type,
                                                    "trainees": "mallory_1 Not-A-Name"})
    assert tampered.status_code == 400 and "Not user names: &#39;Not-A-Name&#39;" in tampered.text
    bad = browser.read_roster("login\nalice_ok\nAlice Smith\n", db_type=db_type)
    assert bad.status_code == 400 and "row 3 (Alice Smith)" in bad.text
    unknown = browser.read_roster("alice_ok\n", db_type="nope")
    assert unknown.status_code == 400 and "Unknown or unconfigured db_type" in unknown.text

    alice = trainee()
    assert alice.read_roster("mallory_1\n", db_type=db_type).status_code == 403
    refused = alice.post("/classes/start", data={"course": "franchise", "db_type": db_type, "trainees": "mallory_1"})
    assert refused.status_code == 403
    runtime.accounts.registry.refresh()
    assert runtime.accounts.registry.user("mallory_1") is None


def test_an_unknown_course_refuses_the_whole_roster_before_making_anyone(cli, roster, db_type, runtime):
    refused = cli("class", "provision", str(roster.path), "--course", "nope", "--db-type", db_type)
    assert refused.returncode == 2
    assert "There is no course 'nope'" in refused.stderr
    runtime.accounts.registry.refresh()
    assert all(runtime.accounts.registry.user(name) is None for name in roster.names)
