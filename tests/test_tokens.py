"""Personal API tokens: a script sends ``Authorization: Bearer <token>`` instead of logging in.

A token is made on the account page (``/account/``) or with ``dbwrapper token create``, shown
once, and kept in the registry only as its SHA-256. It acts as its user, with their role, until
it is revoked or its user removed; a bad token is a 401, never the login page. No cookie is
involved, so a token's POSTs need no CSRF token, and the service sets no session cookie for them.
"""

from __future__ import annotations

import hashlib
import html
import re
import uuid
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select

from dbwrapper.accounts import Actor
from dbwrapper.errors import Forbidden
from dbwrapper.registry.models import ApiToken, utc_now
from tests.conftest import INSTRUCTOR

SECRET = re.compile(r'<code class="token">(dbw_[A-Za-z0-9_-]+)</code>')


def make_token(browser, name: str) -> str:
    """Make a token on the account page; the secret the page shows (once)."""
    page = browser.post("/account/create_token", data={"name": name})
    assert page.status_code == 200, page.text
    found = SECRET.search(page.text)
    assert found, page.text
    return found.group(1)


def with_token(base_url: str, method: str, path: str, secret: str, **kwargs) -> requests.Response:
    """A script's request: the token in its header, no cookie, no redirect followed."""
    return requests.request(
        method, base_url + path, headers={"Authorization": f"Bearer {secret}"}, allow_redirects=False,
        timeout=60, **kwargs,
    )


def stored(runtime, user_name: str) -> list[ApiToken]:
    """The token rows the registry holds for ``user_name``."""
    return runtime.accounts.registry.tokens(runtime.accounts.get(user_name))


def token_id(runtime, user_name: str, name: str) -> str:
    """The id of ``user_name``'s token ``name``, as the revoke buttons send it."""
    return str(next(token.id for token in stored(runtime, user_name) if token.name == name))


def test_a_token_made_on_the_account_page_is_shown_once_and_opens_pages(trainee, base_url):
    alice = trainee()
    page = alice.post("/account/create_token", data={"name": "laptop scripts"})
    secret = SECRET.search(page.text).group(1)
    assert "only time it is shown" in page.text
    example = f'curl -H "Authorization: Bearer {secret}" {base_url}/api/v1/databases'
    assert example in html.unescape(page.text)

    listed = alice.get("/account/")
    assert "laptop scripts" in listed.text
    assert secret not in listed.text  # never shown again
    assert 'aria-label="Revoke the token laptop scripts"' in listed.text

    answer = with_token(base_url, "GET", "/dbi/list?db_type=postgres", secret)
    assert answer.status_code == 200
    assert alice.user_name in answer.text  # the page is theirs: the header names who is logged in
    assert "Set-Cookie" not in answer.headers  # no session is made for a script,
    assert "Set-Cookie" in alice.get("/dbi/list?db_type=postgres").headers  # as for a browser


def test_the_account_page_is_linked_from_every_page(trainee):
    assert '<a href="/account/">API tokens</a>' in trainee().get("/").text


def test_a_post_with_a_token_needs_no_csrf_token(trainee, runtime, base_url):
    alice = trainee()
    secret, other = make_token(alice, "ci"), make_token(alice, "old")

    # No csrf_token field: the header, which no other site can make a browser send, is the proof.
    revoked = with_token(
        base_url, "POST", "/account/revoke_token", secret, data={"token": token_id(runtime, alice.user_name, "old")}
    )
    assert revoked.status_code == 303, revoked.text  # to the account page; a script has no session to tell
    assert revoked.headers["Location"] == f"{base_url}/account/"
    assert "Set-Cookie" not in revoked.headers
    assert with_token(base_url, "GET", "/", other).status_code == 401


@pytest.mark.parametrize(
    "secret",
    ["dbw_" + "A" * 43, "dbw_short", "not a token at all", ""],
    ids=["unknown", "malformed", "garbage", "empty"],
)
def test_a_bad_token_is_a_401_never_the_login_page(base_url, secret):
    for method, path in (("GET", "/dbi/list?db_type=postgres"), ("POST", "/dbi/destroy_my_db")):
        answer = with_token(base_url, method, path, secret)
        assert answer.status_code == 401
        assert "Location" not in answer.headers
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        assert "Set-Cookie" not in answer.headers
        # One message for every bad token: it does not tell an unknown one from a malformed one.
        assert "This API token is not valid" in answer.text


def test_a_revoked_token_stops_working_at_once(trainee, runtime, base_url):
    alice = trainee()
    secret = make_token(alice, "to revoke")
    assert with_token(base_url, "GET", "/", secret).status_code == 200
    revoked = alice.post("/account/revoke_token", data={"token": token_id(runtime, alice.user_name, "to revoke")})
    assert revoked.status_code == 200
    assert with_token(base_url, "GET", "/", secret).status_code == 401


def test_the_registry_keeps_only_the_tokens_sha256(trainee, runtime):
    alice = trainee()
    secret = make_token(alice, "hashed")
    (token,) = stored(runtime, alice.user_name)
    assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    with runtime.accounts.registry.session() as session:
        rows = session.execute(select(ApiToken.__table__)).all()
    assert not any(secret in str(value) for row in rows for value in row)
    # Nor does the audit log, which records that it was made.
    entries = [e for e in runtime.accounts.registry.audit_entries() if e.target == alice.user_name]
    assert any(e.action == "token create" for e in entries)
    assert not any(secret in f"{e.actor} {e.detail}" for e in entries)


def test_a_token_acts_with_its_users_role(browser, trainee, runtime, base_url):
    instructor_token = make_token(browser, "instructor's script")
    trainee_token = make_token(trainee(), "trainee's script")
    try:
        assert with_token(base_url, "GET", "/users/", instructor_token).status_code == 200
        assert with_token(base_url, "GET", "/users/", trainee_token).status_code == 403
    finally:  # the first instructor outlives the test
        browser.post("/account/revoke_token", data={"token": token_id(runtime, INSTRUCTOR, "instructor's script")})


def test_a_trainee_cannot_make_list_or_revoke_another_users_tokens(trainee, runtime, base_url):
    alice, bob = trainee(), trainee()
    bobs = make_token(bob, "bob's")
    (bobs_token,) = stored(runtime, bob.user_name)
    as_alice = Actor(runtime.accounts.get(alice.user_name))
    for attempt in (
        lambda: runtime.accounts.create_token(as_alice, bob.user_name, "mine now"),
        lambda: runtime.accounts.tokens(as_alice, bob.user_name),
        lambda: runtime.accounts.revoke_token(as_alice, bob.user_name, bobs_token.id),
    ):
        with pytest.raises(Forbidden) as refused:
            attempt()
        assert refused.value.http_status == 403

    # The page acts on one's own tokens only: bob's token id is no token of alice's.
    answer = alice.post("/account/revoke_token", data={"token": str(bobs_token.id)})
    assert answer.status_code == 404
    assert with_token(base_url, "GET", "/", bobs).status_code == 200


def test_a_token_cannot_make_tokens(trainee, base_url):
    """Or a leaked token could mint its own replacement, and revoking it would not be enough."""
    secret = make_token(trainee(), "script")
    answer = with_token(base_url, "POST", "/account/create_token", secret, data={"name": "another"})
    assert answer.status_code == 403


def test_token_names_are_short_printable_and_unique_per_user(trainee):
    alice = trainee()
    make_token(alice, "laptop")
    for name in ("laptop", "", " ", "x" * 65, "tab\there"):
        assert alice.post("/account/create_token", data={"name": name}).status_code == 400, repr(name)


def test_last_used_moves_on_use_at_most_once_a_minute(trainee, runtime, base_url):
    alice = trainee()
    secret = make_token(alice, "busy script")
    assert stored(runtime, alice.user_name)[0].last_used_at is None

    with_token(base_url, "GET", "/", secret)
    (first,) = stored(runtime, alice.user_name)
    assert first.last_used_at is not None
    with_token(base_url, "GET", "/", secret)
    assert stored(runtime, alice.user_name)[0].last_used_at == first.last_used_at  # no write per request

    later = utc_now() + timedelta(minutes=2)
    runtime.accounts.registry.token_user(first.token_hash, now=later)
    assert stored(runtime, alice.user_name)[0].last_used_at > first.last_used_at


def test_removing_a_user_removes_their_tokens(runtime, instructor, base_url):
    user, _ = runtime.accounts.add(f"tok_{uuid.uuid4().hex[:8]}", "trainee", by="tests")
    token, secret = runtime.accounts.create_token(instructor, user.name, "left behind?")
    assert with_token(base_url, "GET", "/", secret).status_code == 200
    runtime.accounts.remove(user.name, by="tests")
    with runtime.accounts.registry.session() as session:
        assert session.scalar(select(ApiToken).where(ApiToken.id == token.id)) is None
    assert with_token(base_url, "GET", "/", secret).status_code == 401


def test_tokens_on_the_command_line(cli, trainee, base_url):
    alice = trainee()
    made = cli("token", "create", alice.user_name, "--name", "from the cli")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.split()[-1]
    assert secret.startswith("dbw_")
    assert with_token(base_url, "GET", "/", secret).status_code == 200

    listed = cli("token", "list", alice.user_name)
    assert "from the cli" in listed.stdout
    assert secret not in listed.stdout
    token_id = re.search(r"^ +(\d+) +from the cli ", listed.stdout, re.M).group(1)

    revoked = cli("token", "revoke", alice.user_name, token_id)
    assert revoked.returncode == 0, revoked.stderr
    assert with_token(base_url, "GET", "/", secret).status_code == 401
    assert cli("token", "revoke", alice.user_name, token_id).returncode == 2  # NotFound: no such token
