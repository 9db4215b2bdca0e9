"""Logins, sessions and CSRF as CherryPy tools, switched on per path in the app's config.

* ``tools.dbw_login``: every handler under it needs a logged-in user; anyone
  else is sent to the login page, and back to where they were going after. A
  request with ``Authorization: Bearer <token>`` is logged in by its API token
  instead (a bad token is a 401), and has no session: see :func:`bearer_actor`.
* ``tools.dbw_csrf``: every POST must carry the session's ``csrf_token``, unless
  it came with a token: no cookie logged it in, so there is nothing to forge.
* ``tools.dbw_samesite``: the session cookie is ``SameSite=Strict`` (CherryPy's
  session tool sets ``HttpOnly`` but knows no SameSite). Strict, not Lax:
  ``GET /dbi/create_my_db`` creates (the seed's URL), and Lax would send the
  cookie with a link another site makes a logged-in user follow.
* ``tools.dbw_headers``: pages are never cached, framed or sniffed (:data:`SECURITY_HEADERS`).
"""

from __future__ import annotations

import hmac
import re
import secrets
from functools import partial
from urllib.parse import urlencode

import cherrypy
from cherrypy.lib import sessions

from dbwrapper.accounts import Accounts, Actor
from dbwrapper.errors import DbWrapperError, NotLoggedIn
from dbwrapper.registry import User

#: A path on this site (see safe_next): printable ASCII (0x21-0x7e) without backslashes.
LOCAL_PATH = re.compile(r"/(?:[!-.0-\[\]-~][!-\[\]-~]*)?")
#: Sent with every page: nothing is kept by the browser (the Back button after logging
#: out must not show the last trainee's password), framed, sniffed or loaded from elsewhere.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
}

SESSION_USER = "user"
SESSION_CSRF = "csrf"
CSRF_FIELD = "csrf_token"


def csrf_token() -> str:
    """The session's token, made on first use; every form carries it. A request that came
    with an API token has no session, and its forms need none (see ``check_csrf``)."""
    if getattr(cherrypy.serving.request, "bearer", False):
        return ""
    session = cherrypy.session
    token = session.get(SESSION_CSRF)
    if token is None:
        token = session[SESSION_CSRF] = secrets.token_urlsafe(32)
    return token


def log_in(user: User) -> None:
    """Start a fresh session for ``user`` (a new id, so a planted one is useless)."""
    cherrypy.session.regenerate()
    cherrypy.session[SESSION_USER] = user.name
    cherrypy.session[SESSION_CSRF] = secrets.token_urlsafe(32)


def log_out() -> None:
    cherrypy.session.clear()
    cherrypy.session.regenerate()


def safe_next(target: object) -> str:
    """Where to go after logging in: a path on this site, never another site.

    Browsers drop tabs and line breaks from a URL and read a backslash as a
    slash, so ``/\t/evil.example`` and ``/\\evil.example`` lead to
    ``//evil.example``, another site: a path is one slash, then printable ASCII
    that is neither a slash nor a backslash, then anything printable but a
    backslash.
    """
    if isinstance(target, str) and LOCAL_PATH.fullmatch(target):
        return target
    return "/"


def bearer_secret() -> str | None:
    """The token of this request's ``Authorization: Bearer`` header; ``None`` without one."""
    scheme, _, secret = cherrypy.serving.request.headers.get("Authorization", "").partition(" ")
    return secret.strip() if scheme.lower() == "bearer" else None


def bearer_actor(accounts: Accounts) -> Actor | None:
    """Who this request's API token acts as (its user, with their role), or ``None`` for a
    request without one; :class:`NotLoggedIn` for a token that is not valid.

    The request is marked ``bearer``, so that ``check_csrf`` lets its POSTs through:
    a browser never adds this header by itself, so another site cannot send it.
    """
    secret = bearer_secret()
    if secret is None:
        return None
    actor = Actor(accounts.authenticate_token(secret), via="api")
    cherrypy.serving.request.bearer = True
    return actor


def without_session() -> None:
    """Take the session tool off a request that came with a token: a hook for
    ``on_start_resource``, which runs once every tool of the request is set up, before any
    of them runs (``tools.dbw_login`` attaches it; a path without that tool may attach it too).

    CherryPy's ``sessions.init`` makes a session, and sets its cookie, for every request
    it runs on; a script's requests would each leave one behind. So its hooks are
    removed, and the request has no ``cherrypy.session``.
    """
    if bearer_secret() is None:
        return
    hooks = cherrypy.serving.request.hooks
    session_hooks = (sessions.init, sessions.save, sessions.close, cherrypy.tools.sessions._lock_session)
    for point in hooks:
        hooks[point] = [hook for hook in hooks[point] if hook.callback not in session_hooks]


class LoginTool(cherrypy.Tool):
    """``tools.dbw_login``: ``require_login`` before the handler, and no session for a
    request that came with a token (see :func:`without_session`)."""

    def _setup(self) -> None:
        super()._setup()
        cherrypy.serving.request.hooks.attach("on_start_resource", without_session)


def session_user(accounts: Accounts) -> User | None:
    """The user this request's session is logged in as, if any."""
    name = cherrypy.session.get(SESSION_USER)
    return accounts.registry.user(name) if name else None


def csrf_matches(sent: object) -> bool:
    """Whether ``sent`` is this session's CSRF token (compared in constant time)."""
    expected = cherrypy.session.get(SESSION_CSRF)
    return isinstance(sent, str) and bool(expected) and hmac.compare_digest(sent, expected)


def bound_requests(accounts: Accounts, actor: Actor) -> None:
    """Count this request among the trainee's at work until it ends (a 429 past their bound,
    raised as :class:`~dbwrapper.errors.TooManyAttempts`); instructors, who act for the whole
    class, have none."""
    if actor.is_instructor:
        return
    accounts.requests.enter(actor.name)
    cherrypy.serving.request.hooks.attach("on_end_request", partial(accounts.requests.leave, actor.name))


def install_tools(accounts: Accounts) -> None:
    """Register the tools on ``cherrypy.tools``; the app's config switches them on."""

    def require_login() -> None:
        request = cherrypy.serving.request
        try:
            actor = bearer_actor(accounts)
            user = actor.user if actor else session_user(accounts)
        except NotLoggedIn as error:  # a script is told so, not sent to a login page
            cherrypy.serving.response.headers["WWW-Authenticate"] = 'Bearer realm="dbwrapper"'
            raise cherrypy.HTTPError(401, str(error)) from None
        except DbWrapperError as error:  # the registry is down or hung: a 503 naming it
            raise cherrypy.HTTPError(error.http_status, str(error)) from None
        if user is None:
            target = request.path_info + (f"?{request.query_string}" if request.query_string else "")
            if request.method != "GET":
                target = "/"  # a form posted after the session ended is not replayed
            raise cherrypy.HTTPRedirect("/login?" + urlencode({"next": target}), 303)
        request.actor = actor or Actor(user)
        try:
            bound_requests(accounts, request.actor)
        except DbWrapperError as error:  # too many of this trainee's requests at work already
            raise cherrypy.HTTPError(error.http_status, str(error)) from None

    def check_csrf() -> None:
        request = cherrypy.serving.request
        if request.method in ("GET", "HEAD"):
            return
        sent = request.params.pop(CSRF_FIELD, None)  # popped either way: no handler takes it
        if getattr(request, "bearer", False):
            return
        if not csrf_matches(sent):
            raise cherrypy.HTTPError(
                403, "This form has expired or did not come from dbwrapper; reload the page and try again."
            )

    def samesite() -> None:
        cookie = cherrypy.serving.response.cookie
        name = cherrypy.serving.request.config.get("tools.sessions.name", "session_id")
        if name in cookie:
            cookie[name]["samesite"] = "Strict"

    def security_headers() -> None:
        cherrypy.serving.response.headers.update(SECURITY_HEADERS)

    cherrypy.tools.dbw_login = LoginTool("before_handler", require_login, priority=55)
    cherrypy.tools.dbw_headers = cherrypy.Tool("before_finalize", security_headers)
    cherrypy.tools.dbw_csrf = cherrypy.Tool("before_handler", check_csrf, priority=60)
    cherrypy.tools.dbw_samesite = cherrypy.Tool("before_finalize", samesite)


def current_actor() -> Actor:
    """The logged-in actor of this request (set by ``tools.dbw_login``)."""
    return cherrypy.serving.request.actor
