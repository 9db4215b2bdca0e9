"""A class from a roster: an account, a course database and credentials per trainee."""

from __future__ import annotations

import uuid

import pytest

from dbwrapper.classes import read_roster
from dbwrapper.errors import InvalidInput
from tests.conftest import remove_users


def test_a_roster_is_the_first_column_without_header_blanks_or_repeats():
    assert read_roster("name,email\nalice,a@x\n\nbob,b@x\nalice,again\n") == ["alice", "bob"]
    with pytest.raises(InvalidInput, match="names no trainee"):
        read_roster("name\n\n")


@pytest.fixture
def roster(tmp_path, runtime):
    """Three trainees and one impossible name; everything made is removed afterwards."""
    names = [f"c{uuid.uuid4().hex[:6]}_{i}" for i in range(3)]
    path = tmp_path / "roster.csv"
    path.write_text("name\n" + "\n".join([*names, "Not-A-Name"]) + "\n")
    yield path, names
    remove_users(runtime, names)  # the command line made them, in another process


def test_a_class_is_provisioned_from_a_roster_and_a_bad_row_does_not_stop_it(
    cli, roster, db_type, runtime, tmp_path, rows
):
    path, names = roster
    sheet = tmp_path / "sheet.html"
    first = cli("class", "provision", str(path), "--course", "franchise", "--db-type", db_type,
                "--sheet", str(sheet))
    assert first.returncode == 4, first.stderr  # one row failed, and says so
    assert "3 provisioned, 1 failed" in first.stdout
    assert "Not-A-Name" in first.stdout and "FAILED" in first.stdout
    assert "3/4" in first.stderr or "4/4" in first.stderr  # the progress bar

    runtime.service.registry.refresh()  # made by the command line, another process
    page = sheet.read_text()
    for name in names:
        [record] = [db for db in runtime.service.registry.databases(db_type) if db.owner == name]
        assert rows(db_type, record.name)["orders"] == 20000
        assert record.password in page and name in page
    assert oct(sheet.stat().st_mode & 0o777) == "0o600"

    hashes = {name: runtime.accounts.get(name).password_hash for name in names}
    again = cli("class", "provision", str(path), "--course", "franchise", "--db-type", db_type,
                "--sheet", str(tmp_path / "again.html"))
    assert "3 provisioned, 1 failed" in again.stdout
    assert again.stdout.count("already there; unchanged") == 3
    runtime.service.registry.refresh()
    assert {name: runtime.accounts.get(name).password_hash for name in names} == hashes
    assert len([db for db in runtime.service.registry.databases(db_type) if db.owner in names]) == 3


def test_an_instructor_provisions_a_class_from_the_page_and_watches_it(browser, trainee, db_type, runtime):
    names = [f"w{uuid.uuid4().hex[:6]}_{i}" for i in range(2)]
    home = browser.get("/")
    assert 'action="/classes/provision"' in home.text
    try:
        roster = "name\n" + "\n".join(names) + "\n"
        started, page, status_url = browser.provision_class(roster, db_type=db_type, within=120)
        assert "<progress" in started.text
        assert "2 provisioned, 0 failed." in page.text
        sheet = browser.get(status_url.replace("/status", "/sheet"))
        assert all(name in sheet.text for name in names)

        alice = trainee()
        assert alice.get(status_url).status_code == 403  # instructors only
        refused = alice.post(
            "/classes/provision", data={"course": "franchise", "db_type": db_type},
            files={"roster": ("roster.csv", "mallory_1\n", "text/csv")},
        )
        assert refused.status_code == 403
        assert runtime.accounts.registry.user("mallory_1") is None
    finally:
        remove_users(runtime, names)


def test_an_unknown_course_refuses_the_whole_roster_before_making_anyone(cli, roster, db_type, runtime):
    path, names = roster
    refused = cli("class", "provision", str(path), "--course", "nope", "--db-type", db_type)
    assert refused.returncode == 2
    assert "There is no course 'nope'" in refused.stderr
    runtime.accounts.registry.refresh()
    assert all(runtime.accounts.registry.user(name) is None for name in names)
