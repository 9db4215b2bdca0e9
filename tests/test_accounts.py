"""Logging in and out, sessions, CSRF, the login throttle, and managing users."""

from __future__ import annotations

import re
import threading
import time
import uuid

import pytest
from markupsafe import escape

from dbwrapper.accounts import Actor
from dbwrapper.errors import Refused
from dbwrapper.registry.store import READ_CACHE_SECONDS
from dbwrapper.service import DatabaseService
from tests.conftest import INSTRUCTOR, INSTRUCTOR_PASSWORD, Browser, audit_rows


def test_a_wrong_password_is_a_401_that_does_not_say_which_part_was_wrong(anonymous):
    for name in (INSTRUCTOR, "nobody_here"):
        anonymous.get("/login")
        page = anonymous.post("/login", data={"name": name, "password": "wrong-password"})
        assert page.status_code == 401
        assert "Unknown user name or wrong password." in page.text


def test_the_session_cookie_is_httponly_and_samesite(base_url):
    with Browser(base_url) as browser:
        browser.get("/login")
        response = browser.post(
            "/login", data={"name": INSTRUCTOR, "password": INSTRUCTOR_PASSWORD}, allow_redirects=False
        )
        cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=Strict" in cookie


def test_logging_in_gives_a_new_session_id(base_url):
    with Browser(base_url) as browser:
        browser.get("/login")
        before = browser.cookies.get("session_id")
        browser.log_in(INSTRUCTOR, INSTRUCTOR_PASSWORD)
        assert browser.cookies.get("session_id") != before


def test_logging_out_ends_the_session(browser):
    assert browser.get("/audit").status_code == 200
    assert browser.post("/logout").url.endswith("/login")
    assert browser.get("/audit", allow_redirects=False).status_code == 303


def test_a_form_without_the_csrf_token_is_refused_and_changes_nothing(browser, trainee, runtime):
    alice = trainee()
    before = runtime.accounts.get(alice.user_name).password_hash
    browser.csrf = ""  # a form posted from another site has no token
    refused = browser.post("/users/set_password", data={"name": alice.user_name})
    assert refused.status_code == 403
    assert "did not come from dbwrapper" in refused.text
    assert runtime.accounts.get(alice.user_name).password_hash == before


def test_the_next_parameter_cannot_lead_off_the_site(anonymous):
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        anonymous.get("/login")
        done = anonymous.post(
            "/login", data={"name": INSTRUCTOR, "password": INSTRUCTOR_PASSWORD, "next": target},
            allow_redirects=False,
        )
        assert done.headers["Location"] == f"{anonymous.base_url}/"


def test_repeated_failed_logins_are_throttled(base_url, runtime):
    name = f"throttled_{uuid.uuid4().hex[:8]}"  # failures are counted in the registry: a name of this run's
    _, password = runtime.accounts.add(name, "trainee", by="tests")
    try:
        with Browser(base_url) as browser:
            browser.get("/login")
            statuses = [
                browser.post("/login", data={"name": name, "password": "wrong-password"}).status_code
                for _ in range(6)
            ]
            assert statuses[:5] == [401] * 5
            assert statuses[5] == 429
            # Even the right password waits out the window.
            assert browser.post("/login", data={"name": name, "password": password}).status_code == 429
    finally:
        runtime.accounts.remove(name, by="tests")


def test_an_instructor_adds_a_trainee_who_can_then_log_in(browser, base_url, runtime):
    page = browser.post("/users/add", data={"name": "webtrainee", "role": "trainee", "quota": "2"})
    try:
        assert page.status_code == 200
        password = re.search(r'<code class="secret">([^<]+)</code>', page.text).group(1)
        with Browser(base_url) as newcomer:
            home = newcomer.log_in("webtrainee", password)
            assert home.status_code == 200
            assert escape("webtrainee's databases") in home.text
            assert "up to 2 database(s)" in home.text
    finally:
        runtime.accounts.remove("webtrainee", by="tests")


@pytest.mark.parametrize("name", ["Bad-Name", "x" * 40, "1abc", "", "a'b"])
def test_user_names_that_cannot_name_a_database_are_refused(browser, name, runtime):
    before = len(runtime.accounts.users())
    page = browser.post("/users/add", data={"name": name, "role": "trainee"})
    assert page.status_code == 400
    assert len(runtime.accounts.users()) == before


def test_a_user_who_owns_databases_is_not_removed(browser, trainee, db_type, catalog):
    alice = trainee()
    alice.get("/dbi/create_my_db", params={"db_type": db_type})
    refused = browser.post("/users/remove", data={"name": alice.user_name})
    assert refused.status_code == 409
    assert "destroy those first" in refused.text


def test_the_audit_log_shows_who_did_what(browser, trainee, db_type, runtime):
    alice = trainee()
    alice.get("/dbi/create_my_db", params={"db_type": db_type})
    alice.get("/dbi/create_my_db", params={"db_type": db_type, "name": "someone_else_db"})
    log = browser.get("/audit").text
    # Only alice's rows count: the log is the whole session's, and she is new.
    own = f"{db_type}:{alice.user_name}_{runtime.settings.port}"
    assert any({f"{alice.user_name} (web)", "create", "ok"} <= row for row in audit_rows(log, own))
    refused = audit_rows(log, f"{db_type}:someone_else_db")
    assert any({f"{alice.user_name} (web)", "create", "refused"} <= row for row in refused), refused
    assert any({"login", "ok"} <= row for row in audit_rows(log, alice.user_name))


def test_the_instructor_sees_every_database_with_its_owner(browser, trainee, db_type):
    alice = trainee()
    alice.get("/dbi/create_my_db", params={"db_type": db_type})
    page = browser.get("/dbi/list", params={"db_type": db_type}).text
    row = page.split(f"<code>{alice.user_name}_", 1)[1].split("</tr>", 1)[0]
    assert f"<td>{alice.user_name}</td>" in row


def test_a_trainee_stays_within_the_quota(trainee, db_type):
    alice = trainee(quota=1)
    assert alice.get("/dbi/create_my_db", params={"db_type": db_type}).status_code == 200
    second = alice.get("/dbi/create_my_db", params={"db_type": db_type, "name": f"{alice.user_name}_two"})
    assert second.status_code == 409
    assert "quota" in second.text


def test_user_commands_on_the_command_line(cli, runtime, monkeypatch):
    registry = runtime.accounts.registry
    now = time.monotonic()
    monkeypatch.setattr(registry, "clock", lambda: now)  # the service's reads stay fresh until moved
    added = cli("user", "add", "clitrainee", "--quota", "3")
    assert added.returncode == 0, added.stderr
    password = added.stdout.strip().rsplit(" ", 1)[1]
    assert runtime.accounts.authenticate("clitrainee", password, "tests").name == "clitrainee"
    listed = cli("user", "list")
    assert "clitrainee" in listed.stdout and "quota 3" in listed.stdout
    changed = cli("user", "set-password", "clitrainee")
    assert changed.returncode == 0
    assert cli("user", "remove", "clitrainee").returncode == 0
    # The service reuses what it read of users for a moment; another process's change
    # (this command line's) shows once that has passed.
    assert registry.user("clitrainee") is not None  # the read from before the removal
    monkeypatch.setattr(registry, "clock", lambda: now + READ_CACHE_SECONDS)
    assert registry.user("clitrainee") is None
    assert cli("user", "remove", INSTRUCTOR).returncode == 4  # the last instructor stays


def test_simultaneous_creates_cannot_pass_the_quota_together(trainee, base_url, db_type, runtime):
    alice = trainee(quota=1)
    # Separate logins: requests of one session already wait for each other.
    sessions = [Browser(base_url) for _ in range(4)]
    for session in sessions:
        session.log_in(alice.user_name, alice.password)
    barrier = threading.Barrier(len(sessions))

    def create(session: Browser, name: str) -> None:
        barrier.wait()
        session.get("/dbi/create_my_db", params={"db_type": db_type, "name": name})

    threads = [
        threading.Thread(target=create, args=(session, f"{alice.user_name}_{i}"))
        for i, session in enumerate(sessions)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(runtime.accounts.registry.databases(owner=runtime.accounts.get(alice.user_name))) == 1


def test_a_quota_that_is_not_one_number_is_a_400(browser, runtime):
    for quota, said in (("lots", "Quota 'lots' is not a number."), (["1", "2"], "Give quota once.")):
        refused = browser.post("/users/add", data={"name": "quota_twice", "role": "trainee", "quota": quota})
        assert refused.status_code == 400, quota
        assert escape(said) in refused.text
    assert runtime.accounts.registry.user("quota_twice") is None


def test_two_processes_cannot_pass_a_quota_together(trainee, db_type, runtime, monkeypatch):
    """Each process has its own locks; the registry's lock of the user is what they share. Two
    services (as two processes have) count the trainee's databases at once, slowly: one makes
    the database, the other is refused."""
    alice = trainee(quota=1)
    owner = runtime.accounts.get(alice.user_name)
    actor = Actor(owner)
    services = [runtime.service, DatabaseService(runtime.servers, "anotherprocess")]
    counted = runtime.servers.registry.databases_owned

    def slowly(user):
        found = counted(user)
        time.sleep(0.5)  # wide enough for the other process to count too, were it let in
        return found

    monkeypatch.setattr(runtime.servers.registry, "databases_owned", slowly)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def create(service: DatabaseService, name: str) -> None:
        barrier.wait()
        try:
            outcomes.append("made" if service.create(actor, db_type, name).changed else "unchanged")
        except Refused:
            outcomes.append("refused")

    threads = [threading.Thread(target=create, args=(service, f"{alice.user_name}_p{i}"))
               for i, service in enumerate(services)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["made", "refused"]
    assert runtime.servers.registry.databases_owned(owner) == 1
