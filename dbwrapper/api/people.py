"""Who uses the service: the current user and their tokens, users (instructors), the audit log."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from dbwrapper.api import fields
from dbwrapper.api.fields import iso
from dbwrapper.api.replies import created, gone, ok
from dbwrapper.api.routing import PREFIX, Call, Reply, Route
from dbwrapper.errors import InvalidInput, NotFound
from dbwrapper.registry import User
from dbwrapper.registry.models import ApiToken, AuditEntry

if TYPE_CHECKING:
    from dbwrapper.api.handling import Api

#: Audit entries per page: at most, and when the client does not say.
AUDIT_PAGE_MAX = 500
AUDIT_PAGE_DEFAULT = 100


def user_path(name: str) -> str:
    return f"{PREFIX}/users/{name}"


def user_json(api: Api, user: User) -> dict[str, Any]:
    databases = api.runtime.service.registry.databases(owner=user)
    return {
        "name": user.name, "role": user.role, "quota": user.quota, "created_at": iso(user.created_at),
        "databases": [f"{PREFIX}/databases/{db.db_type}/{db.name}" for db in databases],
        "links": {"self": user_path(user.name)},
    }


def get_me(api: Api, call: Call) -> Reply:
    return ok({**user_json(api, call.actor.user), "links": {"self": f"{PREFIX}/me", "tokens": f"{PREFIX}/me/tokens"}})


def token_json(token: ApiToken) -> dict[str, Any]:
    return {"id": token.id, "name": token.name, "created_at": iso(token.created_at),
            "last_used_at": iso(token.last_used_at), "links": {"self": f"{PREFIX}/me/tokens/{token.id}"}}


def list_tokens(api: Api, call: Call) -> Reply:
    return ok({"tokens": [token_json(t) for t in api.runtime.accounts.tokens(call.actor, call.actor.name)]})


def create_token(api: Api, call: Call) -> Reply:
    """A new token for the current user: its secret is in this answer and nowhere else, ever."""
    body = call.fields()
    token, secret = api.runtime.accounts.create_token(call.actor, call.actor.name, fields.text(body, "name"))
    return created({**token_json(token), "token": secret}, f"{PREFIX}/me/tokens/{token.id}")


def delete_token(api: Api, call: Call, token: str) -> Reply:
    if not (token.isascii() and token.isdigit()):
        raise NotFound(f"There is no token {token}.")
    api.runtime.accounts.revoke_token(call.actor, call.actor.name, int(token))
    return gone()


def get_token(api: Api, call: Call, token: str) -> Reply:
    for found in api.runtime.accounts.tokens(call.actor, call.actor.name):
        if str(found.id) == token:
            return ok(token_json(found))
    raise NotFound(f"There is no token {token}.")


def find_user(api: Api, call: Call, name: str) -> User:
    call.actor.require_instructor("manage users")
    user = api.runtime.accounts.registry.user(name)
    if user is None:
        raise NotFound(f"There is no user named {name}.")
    return user


def list_users(api: Api, call: Call) -> Reply:
    call.actor.require_instructor("manage users")
    return ok({"users": [user_json(api, user) for user in api.runtime.accounts.users()]})


def get_user(api: Api, call: Call, name: str) -> Reply:
    return ok(user_json(api, find_user(api, call, name)))


def create_user(api: Api, call: Call) -> Reply:
    """Add a user; the answer carries their password, shown this once."""
    call.actor.require_instructor("manage users")
    body = call.fields()
    user, password = api.runtime.accounts.add(
        fields.text(body, "name"), fields.text(body, "role", "trainee"), fields.text(body, "password", None),
        fields.number(body, "quota", None), by=call.actor.name,
    )
    return created({**user_json(api, user), "password": password}, user_path(user.name))


def update_user(api: Api, call: Call, name: str) -> Reply:
    """Give a user a new password: the one sent, or a generated one (``"password": null``)."""
    user = find_user(api, call, name)
    body = call.fields()
    if "password" not in body:
        raise InvalidInput("Give password: the new one, or null for a generated one.", "password")
    password = api.runtime.accounts.set_password(user.name, fields.text(body, "password", None), by=call.actor.name)
    return ok({**user_json(api, user), "password": password})


def delete_user(api: Api, call: Call, name: str) -> Reply:
    api.runtime.accounts.remove(find_user(api, call, name).name, by=call.actor.name)
    return gone()


def audit_json(entry: AuditEntry) -> dict[str, Any]:
    return {"id": entry.id, "at": iso(entry.at), "actor": entry.actor, "action": entry.action,
            "target": entry.target, "outcome": entry.outcome, "detail": entry.detail}


def list_audit(api: Api, call: Call) -> Reply:
    """A page of the audit log, newest first; ``links.next`` is the page after it."""
    call.actor.require_instructor("read the audit log")
    query = dict(call.query)
    limit = fields.whole(query.get("limit"), "limit", AUDIT_PAGE_DEFAULT)
    if not 1 <= limit <= AUDIT_PAGE_MAX:
        raise InvalidInput(f"limit is from 1 to {AUDIT_PAGE_MAX}.", "limit")
    before = fields.whole(query.get("before"), "before", None)
    entries = api.runtime.accounts.registry.audit_entries(
        limit, actor=query.get("user"), target=query.get("target"), action=query.get("action"),
        since=fields.moment(query["since"], "since") if "since" in query else None,
        until=fields.moment(query["until"], "until") if "until" in query else None, before_id=before,
    )
    following = None
    if len(entries) == limit:
        following = f"{PREFIX}/audit?" + urlencode({**query, "before": entries[-1].id})
    return ok({"entries": [audit_json(e) for e in entries], "links": {"next": following}})


ROUTES = [
    Route("GET", "/me", get_me, "Who you are", response="User"),
    Route("GET", "/me/tokens", list_tokens, "Your API tokens (never their secrets)", response="TokenList"),
    Route("POST", "/me/tokens", create_token,
          "Make an API token, logged in with the pages' session (a token cannot make tokens); its secret is "
          "shown only in this answer", request="TokenCreate", response="NewToken", status=201, errors=(403,)),
    Route("GET", "/me/tokens/{token}", get_token, "One of your API tokens", response="Token", errors=(404,)),
    Route("DELETE", "/me/tokens/{token}", delete_token, "Revoke an API token, at once", status=204,
          errors=(404, 412)),
    Route("GET", "/users", list_users, "Every user (instructors)", response="UserList", errors=(403,)),
    Route("POST", "/users", create_user, "Add a user; their password is shown only in this answer (instructors)",
          request="UserCreate", response="NewUser", status=201, errors=(403,)),
    Route("GET", "/users/{name}", get_user, "A user (instructors)", response="User", errors=(403, 404)),
    Route("PATCH", "/users/{name}", update_user, "Give a user a new password (instructors)",
          request="UserUpdate", response="NewUser", errors=(403, 404, 412)),
    Route("DELETE", "/users/{name}", delete_user, "Remove a user who owns no database (instructors)", status=204,
          errors=(403, 404, 409, 412)),
    Route("GET", "/audit", list_audit, "The audit log, newest first, a page at a time (instructors)",
          response="AuditPage", errors=(403,), query={
              "user": ({"type": "string"}, "Only what this user did"),
              "target": ({"type": "string"}, "Only this target (postgres:alice_7001) or database name"),
              "action": ({"type": "string"}, "Only this action (create, destroy, snapshot...)"),
              "since": ({"type": "string", "format": "date-time"}, "From this time on"),
              "until": ({"type": "string", "format": "date-time"}, "Before this time"),
              "before": ({"type": "string", "pattern": "^[0-9]+$"}, "Entries older than this id (the next page)"),
              "limit": ({"type": "string", "pattern": "^[0-9]+$"}, f"At most this many (1-{AUDIT_PAGE_MAX})"),
          }),
]
