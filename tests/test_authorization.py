"""Every action, tried by everyone: anonymous, the owner, another trainee, an instructor.

A refusal changes nothing: the server's databases and the registry's users
are compared before and after.
"""

from __future__ import annotations

import pytest

REDIRECT, FORBIDDEN, OK = 303, 403, 200
#: It acted and sent the browser on to a page that says so (Post/Redirect/Get): a 303, not to the login page.
ACTED = "acted"

# action: (method, path, form or query, expected status per actor)
DATABASE_ACTIONS = {
    "list": ("GET", "/dbi/list", {}, {"anonymous": REDIRECT, "owner": OK, "other": OK, "instructor": OK}),
    "create": (
        "GET", "/dbi/create_my_db", {"name": "{db}"},
        {"anonymous": REDIRECT, "owner": ACTED, "other": FORBIDDEN, "instructor": ACTED},
    ),
    "confirm destroy": (
        "GET", "/dbi/destroy_my_db", {"name": "{db}"},
        {"anonymous": REDIRECT, "owner": OK, "other": FORBIDDEN, "instructor": OK},
    ),
    "destroy": (
        "POST", "/dbi/destroy_my_db", {"name": "{db}"},
        {"anonymous": REDIRECT, "owner": ACTED, "other": FORBIDDEN, "instructor": ACTED},
    ),
    "archive": (
        "POST", "/archives/create", {"name": "{db}"},
        {"anonymous": REDIRECT, "owner": ACTED, "other": FORBIDDEN, "instructor": ACTED},
    ),
    "snapshots page": (
        "GET", "/snapshots/", {"name": "{db}"},
        {"anonymous": REDIRECT, "owner": OK, "other": FORBIDDEN, "instructor": OK},
    ),
    "take a snapshot": (
        "POST", "/snapshots/take", {"name": "{db}"},
        {"anonymous": REDIRECT, "owner": ACTED, "other": FORBIDDEN, "instructor": ACTED},
    ),
}
ACCOUNT_ACTIONS = {
    "home": ("GET", "/", {}, {"anonymous": REDIRECT, "owner": OK, "other": OK, "instructor": OK}),
    "users page": (
        "GET", "/users/", {},
        {"anonymous": REDIRECT, "owner": FORBIDDEN, "other": FORBIDDEN, "instructor": OK},
    ),
    "add user": (
        "POST", "/users/add", {"name": "newcomer", "role": "instructor"},
        {"anonymous": REDIRECT, "owner": FORBIDDEN, "other": FORBIDDEN, "instructor": ACTED},
    ),
    "new password": (
        "POST", "/users/set_password", {"name": "{owner}"},
        {"anonymous": REDIRECT, "owner": FORBIDDEN, "other": FORBIDDEN, "instructor": ACTED},
    ),
    "remove user": (
        "POST", "/users/remove", {"name": "{other}"},
        {"anonymous": REDIRECT, "owner": FORBIDDEN, "other": FORBIDDEN, "instructor": ACTED},
    ),
    "archives page": (
        "GET", "/archives/", {}, {"anonymous": REDIRECT, "owner": OK, "other": OK, "instructor": OK}
    ),
    "courses page": (
        "GET", "/courses/", {},
        {"anonymous": REDIRECT, "owner": FORBIDDEN, "other": FORBIDDEN, "instructor": OK},
    ),
    "add a course": (
        "POST", "/courses/add", {"name": "by_{owner}", "postgres_from": "{owner}_db_missing"},
        {"anonymous": REDIRECT, "owner": FORBIDDEN, "other": FORBIDDEN, "instructor": 400},
    ),
    "audit log": (
        "GET", "/audit", {},
        {"anonymous": REDIRECT, "owner": FORBIDDEN, "other": FORBIDDEN, "instructor": OK},
    ),
}
ACTORS = ("anonymous", "owner", "other", "instructor")


@pytest.fixture
def cast(anonymous, browser, trainee, runtime):
    """The owner (a trainee with a database), another trainee, an instructor, and nobody."""
    owner, other = trainee(), trainee()
    yield {"anonymous": anonymous, "owner": owner, "other": other, "instructor": browser}
    if runtime.accounts.registry.user("newcomer"):
        runtime.accounts.remove("newcomer", by="tests")


def _answered(response, expected, base_url: str) -> None:
    """The response is the ``expected`` status; a 303 leads to the login page, or elsewhere once it ACTED."""
    assert response.status_code == (REDIRECT if expected == ACTED else expected), response.text
    if response.status_code == REDIRECT:
        to_login = response.headers["Location"].startswith(f"{base_url}/login")
        assert to_login == (expected == REDIRECT), response.headers["Location"]


def _send(session, method, path, params, fill):
    values = {key: value.format(**fill) for key, value in params.items()}
    if method == "GET":
        return session.get(path, params=values, allow_redirects=False)
    return session.post(path, data=values, allow_redirects=False)


@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize("action", DATABASE_ACTIONS)
def test_database_actions(cast, actor, action, db_type, catalog, runtime):
    owner = cast["owner"]
    db = f"{owner.user_name}_db"
    assert owner.get("/dbi/create_my_db", params={"db_type": db_type, "name": db}).status_code == 200
    before = catalog(db_type)

    method, path, params, expected = DATABASE_ACTIONS[action]
    response = _send(cast[actor], method, path, {"db_type": db_type, **params}, {"db": db})

    _answered(response, expected[actor], cast[actor].base_url)
    after = catalog(db_type)
    if expected[actor] not in (OK, ACTED):
        assert after == before
    elif action == "destroy":
        assert db not in after
    elif action == "take a snapshot":
        (snapshot,) = after - before
        assert snapshot.startswith("_dbw_snap_")
    else:
        assert after == before
    if action == "list" and actor == "other":
        assert db not in response.text  # a trainee sees only their own


@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize("action", ACCOUNT_ACTIONS)
def test_account_actions(cast, actor, action, runtime):
    users_before = {(u.name, u.password_hash) for u in runtime.accounts.users()}
    method, path, params, expected = ACCOUNT_ACTIONS[action]

    fill = {"owner": cast["owner"].user_name, "other": cast["other"].user_name}
    response = _send(cast[actor], method, path, params, fill)

    _answered(response, expected[actor], cast[actor].base_url)
    users_after = {(u.name, u.password_hash) for u in runtime.accounts.users()}
    if expected[actor] not in (OK, ACTED):
        assert users_after == users_before
    elif method == "POST":
        assert users_after != users_before


def test_the_command_line_is_for_instructors(cli, trainee, db_type, catalog):
    alice = trainee()
    before = catalog(db_type)
    refused = cli("create", "--db-type", db_type, "--as", alice.user_name)
    assert refused.returncode == 6
    assert "Only an instructor may use the command line." in refused.stderr
    assert catalog(db_type) == before


def test_a_login_leads_back_to_the_action(anonymous, db_type, my_name, catalog):
    from tests.conftest import INSTRUCTOR, INSTRUCTOR_PASSWORD

    page = anonymous.get("/dbi/create_my_db", params={"db_type": db_type})
    assert page.url.startswith(f"{anonymous.base_url}/login?next=")
    try:
        done = anonymous.post(
            "/login", data={"name": INSTRUCTOR, "password": INSTRUCTOR_PASSWORD,
                            "next": f"/dbi/create_my_db?db_type={db_type}"},
        )
        assert done.status_code == 200
        assert f"Created {my_name}" in done.text
        assert my_name in catalog(db_type)
    finally:
        anonymous.post("/dbi/destroy_my_db", data={"db_type": db_type})
