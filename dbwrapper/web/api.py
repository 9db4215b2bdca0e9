"""The JSON API's CherryPy side: read a request into a :class:`~dbwrapper.api.routing.Call`,
say who is asking, and write the :class:`~dbwrapper.api.routing.Reply` out.

``tools.json_in`` reads the body (JSON, or the text of a CSV roster; any other
type is a 415), ``tools.json_out`` writes the reply, and every error under
``/api/``, CherryPy's own included (an unknown path, bad JSON), is a problem
document: never an HTML page, never a traceback.

Who is asking: an ``Authorization: Bearer`` token (no session, no CSRF: a
browser never sends that header by itself), or the pages' session cookie, for
a front-end in the same browser; then an unsafe method must also send the
session's CSRF token as ``X-CSRF-Token``.
"""

from __future__ import annotations

import json
from typing import Any

import cherrypy

from dbwrapper.accounts import Actor
from dbwrapper.api.handling import INTERNAL_ERROR, Api, problem_reply
from dbwrapper.api.problems import PROBLEM_TYPE, Problem
from dbwrapper.api.routes import PUBLIC, ROUTES
from dbwrapper.api.routing import PREFIX, Call, Reply
from dbwrapper.errors import DbWrapperError, NotLoggedIn
from dbwrapper.formatting import Templates
from dbwrapper.registry import User
from dbwrapper.runtime import Runtime
from dbwrapper.web.auth import bearer_actor, bound_requests, csrf_matches, session_user, without_session
from dbwrapper.web.pages import Pages

#: Who a public route (the API's own description) is answered for.
ANYONE = Actor(User(id=0, name="anyone", role="anyone", quota=0), via="api")
#: The header a session's unsafe requests carry their CSRF token in.
CSRF_HEADER = "X-CSRF-Token"
#: The request headers a call carries on to the API.
READ_HEADERS = ("Idempotency-Key", "If-Match", "If-None-Match")
BODY_TYPES = ["application/json", "text/csv"]
#: The largest body the API reads: a batch of a hundred operations, a course's SQL.
MAX_BODY_BYTES = 4 * 2**20
SAFE = ("GET", "HEAD")
ASK_FOR_TOKEN = 'Bearer realm="dbwrapper"'


def read_body(entity: Any) -> None:
    """``tools.json_in``'s processor: a JSON document, or the text of a CSV roster, of at most
    :data:`MAX_BODY_BYTES` (it is read before anyone is asked who they are)."""
    if entity.length is not None and entity.length > MAX_BODY_BYTES:
        raise cherrypy.HTTPError(413, f"A request body is at most {MAX_BODY_BYTES // 2**20} MiB.")
    raw = entity.fp.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise cherrypy.HTTPError(413, f"A request body is at most {MAX_BODY_BYTES // 2**20} MiB.")
    request = cherrypy.serving.request
    request.api_type = entity.content_type.value
    try:
        text = raw.decode("utf-8")
        request.api_body = text if request.api_type == "text/csv" else json.loads(text)
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        what = "UTF-8 text" if isinstance(error, UnicodeError) else "valid JSON"
        where = f": {error}" if isinstance(error, json.JSONDecodeError) else ""
        raise cherrypy.HTTPError(400, f"The body is not {what}{where}.") from None


def write_reply(*args: Any, **kwargs: Any) -> bytes:
    """``tools.json_out``'s handler: the reply's status, headers and JSON body."""
    reply: Reply = cherrypy.serving.request._json_inner_handler(*args, **kwargs)
    response = cherrypy.serving.response
    response.status = reply.status
    response.headers.update(reply.headers)
    if reply.body is None:
        response.headers.pop("Content-Type", None)
        return b""
    if reply.status >= 400:
        response.headers["Content-Type"] = PROBLEM_TYPE
    return json.dumps(reply.body).encode()


def problem_page(status: str, message: str, traceback: str, version: str) -> str:
    """CherryPy's own errors under ``/api/`` (an unknown path, a bad body) as problem documents."""
    code = int(status.split()[0])
    cherrypy.serving.response.headers["Content-Type"] = PROBLEM_TYPE
    detail = message if code != 404 else f"There is no {cherrypy.serving.request.path_info}; see {PREFIX}/openapi.json."
    return json.dumps(Problem(code, detail).body())


def unexpected_problem() -> None:
    """A bug: the traceback goes to the server log, the client gets a problem that says so."""
    response = cherrypy.serving.response
    response.status = 500
    response.headers["Content-Type"] = PROBLEM_TYPE
    response.body = json.dumps(Problem(500, INTERNAL_ERROR).body()).encode()


class ApiController:
    """``/api/v1/...``: one handler for every path; :class:`~dbwrapper.api.handling.Api` routes it."""

    def __init__(self, runtime: Runtime) -> None:
        self.api = Api(runtime, ROUTES)
        self.accounts = runtime.accounts

    @cherrypy.expose
    def default(self, *segments: str, **query: Any) -> Reply:
        request = cherrypy.serving.request
        path = "/" + "/".join(segments)
        method = request.method
        try:
            if twice := sorted(name for name, value in query.items() if not isinstance(value, str)):
                raise Problem(400, f"Give {', '.join(twice)} once.", {"field": twice[0]})
            self.api.router.find(method, path)  # an unknown path is a 404 before anyone is asked who they are
            actor = ANYONE if path in PUBLIC else self._actor(method)
        except Problem as problem:
            if problem.status == 401:
                problem.headers.setdefault("WWW-Authenticate", ASK_FOR_TOKEN)
            return problem_reply(problem)
        except DbWrapperError as error:
            return problem_reply(Problem.of(error))
        headers = {name: value for name in READ_HEADERS if (value := request.headers.get(name)) is not None}
        call = Call(actor, "GET" if method == "HEAD" else method, path, query,
                    getattr(request, "api_body", None), getattr(request, "api_type", "application/json"), headers)
        return self.api.handle(call)

    def _actor(self, method: str) -> Actor:
        """Who asks: their token's user, or their session's; a 401 for nobody."""
        try:
            actor = bearer_actor(self.accounts)
        except NotLoggedIn as error:
            raise Problem(401, str(error)) from None
        if actor is None:
            actor = self._session_actor(method)
        bound_requests(self.accounts, actor)  # a trainee's requests at once, as on the pages
        return actor

    def _session_actor(self, method: str) -> Actor:
        user = session_user(self.accounts)
        if user is None:
            raise Problem(401, "Log in first: send Authorization: Bearer <token> (make one on your account page), "
                               "or the pages' session cookie.")
        if method not in SAFE and not csrf_matches(cherrypy.serving.request.headers.get(CSRF_HEADER)):
            raise Problem(403, f"With the session cookie, send its CSRF token as {CSRF_HEADER} (or use a token).")
        return Actor(user)


class ApiPages:
    """``/api/``: the API shown to a person; anything else below it is the API's 404."""

    def __init__(self, runtime: Runtime, templates: Templates) -> None:
        self.v1 = ApiController(runtime)
        self.templates = templates

    @cherrypy.expose
    def index(self) -> str:
        return Pages(self.templates, None, "").api(self.v1.api.router.routes, cherrypy.request.base)

    @cherrypy.expose
    def default(self, *segments: str, **query: Any) -> str:
        raise cherrypy.NotFound()


def api_config() -> dict[str, dict[str, Any]]:
    """The API's sections of the application's config."""
    return {
        "/api": {
            "tools.trailing_slash.missing": False,  # /api is the page too, not a 301 to it
            "error_page.default": problem_page,
            "request.error_response": unexpected_problem,
            "tools.dbw_login.on": False,
            "tools.dbw_csrf.on": False,
            "tools.dbw_api_session.on": True,
            # The API only reads who is asking from a session: holding its lock for a call
            # would keep the browser's Cancel waiting for the run it cancels.
            "tools.sessions.locking": "explicit",
        },
        "/api/v1": {
            # PUT has no route: its body is not read, so that it is a 405, not a 411.
            "request.methods_with_bodies": ("POST", "PATCH"),
            "tools.json_in.on": True,
            "tools.json_in.content_type": BODY_TYPES,
            "tools.json_in.processor": read_body,
            "tools.json_out.on": True,
            "tools.json_out.handler": write_reply,
        },
    }


def install_api_tools() -> None:
    """``tools.dbw_api_session``: the session tool stays off requests that came with a token."""
    cherrypy.tools.dbw_api_session = cherrypy.Tool("on_start_resource", without_session)

