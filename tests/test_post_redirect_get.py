"""Pages that behave: every form that changes something answers with a 303 to a page that says
what it did once (Post/Redirect/Get), so that a reload never acts again; a secret shown once
(a password, a token, a restored database's credentials) is on that page and on no other; and
destructive and password actions ask first, on a confirmation page whose GET never acts.

The 303s are checked with ``allow_redirects=False``; the pages after them as a browser sees
them, reloaded as a person would (a GET of the same URL).
"""

from __future__ import annotations

import html
import re
import uuid
from datetime import UTC, datetime, timedelta

import requests

from dbwrapper.accounts import Actor
from dbwrapper.web.sessions import RegistrySession
from tests.conftest import INSTRUCTOR, Browser

SESSION_COOKIE = "session_id"
PASSWORD = re.compile(r'<code class="secret">([^<]+)</code>')
TOKEN = re.compile(r'<code class="token">(dbw_[A-Za-z0-9_-]+)</code>')
POST_FORMS = re.compile(r'<form method="post" action="([^"]+)"')


def posted(browser: Browser, path: str, data: dict[str, str]) -> str:
    """POST a form as a browser would, without following: it answers 303; where it sends the
    browser (a path on this site)."""
    answer = browser.post(path, data=data, allow_redirects=False)
    assert answer.status_code == 303, answer.text
    location = answer.headers["Location"]
    assert location.startswith(browser.base_url + "/"), location
    return location.removeprefix(browser.base_url)


def text_of(page: requests.Response) -> str:
    return html.unescape(page.text)


def session_data(runtime, browser: Browser) -> str:
    """What the browser's session holds in the registry now, as its JSON."""
    found = runtime.servers.registry.web_session(browser.cookies[SESSION_COOKIE], datetime.now(UTC))
    assert found is not None
    return found[0]


def asks_first(browser: Browser, path: str, params: dict[str, str]) -> str:
    """The confirmation page of ``path``: one form, which POSTs to ``path``, and a way back."""
    page = browser.get(path, params=params)
    assert page.status_code == 200, page.text
    assert POST_FORMS.findall(page.text) == ["/logout", path], page.text  # the layout's, and its own
    assert ">Cancel</a>" in page.text
    return text_of(page)


# -- users ----------------------------------------------------------------------------------------


def test_adding_a_user_shows_the_password_once_and_a_reload_adds_nobody(browser, runtime, base_url):
    name = f"prg_{uuid.uuid4().hex[:8]}"
    try:
        assert posted(browser, "/users/add", {"name": name, "role": "trainee"}) == "/users/"
        users = len(runtime.accounts.users())
        page = browser.get("/users/")
        assert f"Added trainee {name}." in page.text
        (password,) = PASSWORD.findall(page.text)
        assert password not in session_data(runtime, browser)  # the session held it until this page only

        again = browser.get("/users/")
        assert f"Added trainee {name}." not in again.text and password not in again.text
        assert len(runtime.accounts.users()) == users
        with Browser(base_url) as newcomer:
            assert "Log out" in newcomer.log_in(name, password).text
    finally:
        runtime.accounts.remove(name, by="tests")


def test_a_new_password_is_asked_for_first_then_shown_once(browser, trainee, runtime, base_url):
    alice = trainee()
    hash_before = runtime.accounts.get(alice.user_name).password_hash
    asked = asks_first(browser, "/users/set_password", {"name": alice.user_name})
    assert f"{alice.user_name}'s password is replaced by a new, generated one" in asked
    assert runtime.accounts.get(alice.user_name).password_hash == hash_before  # the GET did nothing

    assert posted(browser, "/users/set_password", {"name": alice.user_name}) == "/users/"
    page = browser.get("/users/")
    (password,) = PASSWORD.findall(page.text)
    issued = runtime.accounts.get(alice.user_name).password_hash
    assert issued != hash_before
    again = browser.get("/users/")
    assert password not in again.text and "Issued a new password" not in again.text
    assert runtime.accounts.get(alice.user_name).password_hash == issued  # the reload issued none
    with Browser(base_url) as someone:
        assert someone.log_in(alice.user_name, alice.password).status_code == 401
        assert someone.log_in(alice.user_name, password).status_code == 200


def test_removing_a_user_who_owns_nothing_asks_then_removes(browser, runtime):
    name = f"prg_{uuid.uuid4().hex[:8]}"
    runtime.accounts.add(name, "trainee", by="tests")
    asked = asks_first(browser, "/users/remove", {"name": name})
    assert f"Remove {name}?" in asked and "they can no longer log in" in asked
    assert runtime.accounts.registry.user(name) is not None
    assert posted(browser, "/users/remove", {"name": name}) == "/users/"
    assert browser.get("/users/").text.count(f"Removed {name}.") == 1
    assert runtime.accounts.registry.user(name) is None
    assert f"Removed {name}." not in browser.get("/users/").text


def test_removing_a_user_who_owns_databases_offers_to_archive_them(browser, trainee, runtime, db_type, catalog):
    alice = trainee()
    assert alice.get("/dbi/create_my_db", params={"db_type": db_type}).status_code == 200
    own = f"{alice.user_name}_{runtime.settings.port}"
    label = runtime.servers.backend(db_type).label
    asked = asks_first(browser, "/users/remove", {"name": alice.user_name})
    assert f"<li>{own} on {label}</li>" in asked
    assert 'name="databases" value="archive"' in asked and 'name="databases" value="destroy"' in asked
    assert own in catalog(db_type)

    # The plain removal is still refused: nothing is dropped unless asked for.
    assert browser.post("/users/remove", data={"name": alice.user_name}).status_code == 409
    assert posted(browser, "/users/remove", {"name": alice.user_name, "databases": "archive"}) == "/users/"
    instructor = Actor(runtime.accounts.get(INSTRUCTOR), via="tests")
    (archive,) = [m for m in runtime.archives.list(instructor) if m.database == own]
    try:
        said = browser.get("/users/").text
        assert f"Archived {own} as {archive.id} and dropped it. Removed {alice.user_name}." in said
        assert own not in catalog(db_type)
        assert runtime.accounts.registry.user(alice.user_name) is None
    finally:
        runtime.archives.delete(instructor, archive.id)


def test_removing_a_user_who_owns_databases_can_destroy_them(browser, trainee, runtime, catalog):
    alice = trainee()
    assert alice.get("/dbi/create_my_db", params={"db_type": "postgres"}).status_code == 200
    own = f"{alice.user_name}_{runtime.settings.port}"
    instructor = Actor(runtime.accounts.get(INSTRUCTOR), via="tests")
    archives_before = runtime.archives.list(instructor)
    assert posted(browser, "/users/remove", {"name": alice.user_name, "databases": "destroy"}) == "/users/"
    assert f"Dropped {own} from" in browser.get("/users/").text
    assert own not in catalog("postgres")
    assert runtime.accounts.registry.user(alice.user_name) is None
    assert runtime.archives.list(instructor) == archives_before  # nothing was archived


def test_a_script_with_a_token_is_refused_a_password_it_could_not_be_shown(browser, runtime, base_url):
    token, secret = runtime.accounts.create_token(
        Actor(runtime.accounts.get(INSTRUCTOR)), INSTRUCTOR, f"prg {uuid.uuid4().hex[:6]}",
    )
    name = f"prg_{uuid.uuid4().hex[:8]}"
    try:
        answer = requests.post(f"{base_url}/users/add", data={"name": name}, allow_redirects=False,
                               headers={"Authorization": f"Bearer {secret}"}, timeout=60)
        assert answer.status_code == 409 and "use the JSON API" in answer.text
        assert runtime.accounts.registry.user(name) is None  # refused before anything was done
    finally:
        runtime.accounts.revoke_token(Actor(runtime.accounts.get(INSTRUCTOR)), INSTRUCTOR, token.id)


# -- API tokens -----------------------------------------------------------------------------------


def test_a_new_token_is_shown_once_and_revoking_one_asks_first(trainee, runtime, base_url):
    alice = trainee()
    assert posted(alice, "/account/create_token", {"name": "ci"}) == "/account/"
    assert len(runtime.accounts.registry.tokens(runtime.accounts.get(alice.user_name))) == 1
    page = alice.get("/account/")
    (secret,) = TOKEN.findall(page.text)
    assert f'curl -H "Authorization: Bearer {secret}" {base_url}/api/v1/databases' in text_of(page)
    assert secret not in session_data(runtime, alice)
    again = alice.get("/account/")
    assert secret not in again.text and "Made the token ci." not in again.text
    (token,) = runtime.accounts.registry.tokens(runtime.accounts.get(alice.user_name))

    asked = asks_first(alice, "/account/revoke_token", {"token": str(token.id)})
    assert "Revoke the token ci?" in asked and "refused from their next request on" in asked
    bearer = {"Authorization": f"Bearer {secret}"}
    assert requests.get(f"{base_url}/", headers=bearer, timeout=60).status_code == 200  # the GET revoked nothing
    assert posted(alice, "/account/revoke_token", {"token": str(token.id)}) == "/account/"
    assert "Revoked the token ci; it no longer works." in alice.get("/account/").text
    assert requests.get(f"{base_url}/", headers=bearer, timeout=60).status_code == 401


# -- databases ------------------------------------------------------------------------------------


def test_create_my_db_stays_a_get_and_a_reload_makes_nothing(trainee, runtime, db_type):
    alice = trainee(quota=2)
    own = f"{alice.user_name}_{runtime.settings.port}"
    made = alice.get("/dbi/create_my_db", params={"db_type": db_type}, allow_redirects=False)
    assert made.status_code == 303
    assert made.headers["Location"] == f"{alice.base_url}/dbi/list?db_type={db_type}"
    page = alice.get(f"/dbi/list?db_type={db_type}")
    password = runtime.service.registry.database(db_type, own).password
    assert f"Created {own}" in page.text and password in page.text
    assert password not in session_data(runtime, alice)

    again = alice.get(f"/dbi/list?db_type={db_type}")
    assert f"Created {own}" not in again.text and password not in again.text
    bookmark = alice.get("/dbi/create_my_db", params={"db_type": db_type})  # the bookmark, opened again
    assert f"{own} already exists" in bookmark.text
    assert [db.name for db in runtime.service.registry.databases(owner=alice_user(runtime, alice))] == [own]


def alice_user(runtime, browser: Browser):
    return runtime.accounts.get(browser.user_name)  # type: ignore[attr-defined]


def test_destroy_asks_first_and_its_post_redirects_to_the_listing(trainee, runtime, db_type, catalog):
    alice = trainee()
    alice.get("/dbi/create_my_db", params={"db_type": db_type})
    own = f"{alice.user_name}_{runtime.settings.port}"
    asked = asks_first(alice, "/dbi/destroy_my_db", {"db_type": db_type, "name": own})
    assert f"This drops {own} on {runtime.servers.backend(db_type).label}" in asked
    assert own in catalog(db_type)
    done = posted(alice, "/dbi/destroy_my_db", {"db_type": db_type, "name": own})
    assert done == f"/dbi/list?db_type={db_type}"
    assert alice.get(done).text.count(f"Dropped {own} from") == 1
    assert own not in catalog(db_type)
    assert "Dropped" not in alice.get(done).text


# -- snapshots ------------------------------------------------------------------------------------


def test_snapshots_are_taken_once_and_reverting_and_deleting_ask_first(trainee, runtime, db_type):
    alice = trainee()
    alice.get("/dbi/create_my_db", params={"db_type": db_type})
    own = f"{alice.user_name}_{runtime.settings.port}"
    record = runtime.service.registry.database(db_type, own)
    where = {"db_type": db_type, "name": own}

    def snapshots() -> list[int]:
        return [s.id for s in runtime.service.registry.snapshots(record) if s.state == "ready"]

    listed = posted(alice, "/snapshots/take", {**where, "label": "first"})
    assert listed == f"/snapshots/?db_type={db_type}&name={own}"
    assert alice.get(listed).text.count("Took a snapshot of") == 1
    assert "Took a snapshot of" not in alice.get(listed).text
    (taken,) = snapshots()  # the reloads took none

    asked = asks_first(alice, "/snapshots/revert", {**where, "snapshot": str(taken)})
    assert "gets back what it held then" in asked and '"first"' in asked
    assert snapshots() == [taken]
    assert posted(alice, "/snapshots/revert", {**where, "snapshot": str(taken)}) == listed
    assert f"Reverted {own} to" in alice.get(listed).text
    assert len(snapshots()) == 2 and f"Reverted {own} to" not in alice.get(listed).text
    assert len(snapshots()) == 2

    asked = asks_first(alice, "/snapshots/delete", {**where, "snapshot": str(taken)})
    assert "can no longer be reverted to it" in asked
    assert taken in snapshots()
    assert posted(alice, "/snapshots/delete", {**where, "snapshot": str(taken)}) == listed
    assert "Deleted the snapshot" in alice.get(listed).text
    assert taken not in snapshots() and len(snapshots()) == 1


# -- archives -------------------------------------------------------------------------------------


def test_archiving_restoring_and_deleting_act_once(trainee, runtime, db_type, catalog):
    alice = trainee(quota=2)
    alice.get("/dbi/create_my_db", params={"db_type": db_type})
    own = f"{alice.user_name}_{runtime.settings.port}"
    actor = Actor(alice_user(runtime, alice))

    assert posted(alice, "/archives/create", {"db_type": db_type, "name": own}) == "/archives/"
    assert alice.get("/archives/").text.count(f"Archived {own} as ") == 1
    assert f"Archived {own} as " not in alice.get("/archives/").text
    (archive,) = runtime.archives.list(actor)  # the reloads archived nothing

    copy = f"{alice.user_name}_copy"
    restored = posted(alice, "/archives/restore", {"archive": archive.id, "into": copy})
    assert restored == f"/dbi/list?db_type={db_type}"
    page = alice.get(restored)
    password = runtime.service.registry.database(db_type, copy).password
    assert f"Restored {copy} from {archive.id}." in page.text and password in page.text
    again = alice.get(restored)
    assert password not in again.text and "Restored" not in again.text
    assert copy in catalog(db_type)

    asked = asks_first(alice, "/archives/delete", {"archive": archive.id})
    assert f"Delete the archive {archive.id}?" in asked
    assert runtime.archives.list(actor) == [archive]
    assert posted(alice, "/archives/delete", {"archive": archive.id}) == "/archives/"
    assert f"Deleted the archive {archive.id}." in alice.get("/archives/").text
    assert runtime.archives.list(actor) == []


# -- courses --------------------------------------------------------------------------------------


def test_adding_a_course_redirects_and_says_so_once(browser):
    course = f"t_{uuid.uuid4().hex[:8]}"
    answer = browser.post("/courses/add", data={"name": course}, allow_redirects=False,
                          files={"postgres_sql": ("c.sql", b"CREATE TABLE boxes (n INTEGER);\n")})
    assert answer.status_code == 303 and answer.headers["Location"] == f"{browser.base_url}/courses/"
    assert f"Added the course {course}" in browser.get("/courses/").text
    assert f"Added the course {course}" not in browser.get("/courses/").text


# -- every confirmation ---------------------------------------------------------------------------


def test_no_listing_posts_a_destructive_form_directly(browser, trainee, runtime):
    """The listing pages link to the confirmations; only creating, archiving, restoring and the
    like are forms there."""
    alice = trainee()
    alice.get("/dbi/create_my_db", params={"db_type": "postgres"})
    own = f"{alice.user_name}_{runtime.settings.port}"
    alice.post("/snapshots/take", data={"db_type": "postgres", "name": own})
    alice.post("/account/create_token", data={"name": "listed"})
    alice.post("/archives/create", data={"db_type": "postgres", "name": own})
    try:
        pages = [
            browser.get("/users/"), alice.get("/"), alice.get("/account/"), alice.get("/archives/"),
            alice.get("/snapshots/", params={"db_type": "postgres", "name": own}),
        ]
        asking = {"/users/remove", "/users/set_password", "/account/revoke_token", "/archives/delete",
                  "/snapshots/revert", "/snapshots/delete", "/dbi/destroy_my_db"}
        for page in pages:
            assert not asking & set(POST_FORMS.findall(page.text)), page.url
        assert f'href="/users/remove?name={alice.user_name}"' in pages[0].text
        assert "/account/revoke_token?token=" in pages[2].text
        assert "/archives/delete?archive=" in pages[3].text
        assert "/snapshots/revert?" in pages[4].text and "/snapshots/delete?" in pages[4].text
    finally:
        for manifest in runtime.archives.list(Actor(alice_user(runtime, alice))):
            runtime.archives.delete(Actor(alice_user(runtime, alice)), manifest.id)


def test_a_request_that_changed_nothing_keeps_what_another_wrote_meanwhile(runtime):
    """Two requests of one browser at once (an API call takes no session lock, a console run lets
    go of it): the one that only read the session writes back its expiry, never the values it
    read, so the other's message is still there for the next page."""
    first = RegistrySession(servers=runtime.servers)
    first["user"] = "somebody"
    first.save()
    reading = RegistrySession(first.id, servers=runtime.servers)
    assert reading.get("user") == "somebody"
    writing = RegistrySession(first.id, servers=runtime.servers)
    writing["messages"] = [["ok", "Done."]]
    writing.save()
    _, expired_at = runtime.servers.registry.web_session(first.id, datetime.now(UTC))
    reading.now = lambda: datetime.now(UTC) + timedelta(minutes=5)  # its expiry moves: it is written
    reading.save()
    _, expires_at = runtime.servers.registry.web_session(first.id, datetime.now(UTC))
    assert expires_at - expired_at > timedelta(minutes=4)
    assert RegistrySession(first.id, servers=runtime.servers).get("messages") == [["ok", "Done."]]
    first.delete()
