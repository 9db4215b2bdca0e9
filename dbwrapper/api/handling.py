"""Answering a :class:`~dbwrapper.api.routing.Call`: find its route, check its preconditions,
act once per idempotency key, and turn every error into a problem.

Every resource carries an ``ETag``: a hash of what its ``GET`` answers, so it
changes with every change. ``If-None-Match`` on a ``GET`` answers 304 when
nothing changed; ``If-Match`` on ``PATCH`` and ``DELETE`` makes a request that
acts on what the client no longer sees a 412 (the seed's "Last time I
contacted you, you had seventy boxes").
"""

from __future__ import annotations

import hashlib
import json
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any

from dbwrapper.api import fields
from dbwrapper.api.idempotency import HEADER as IDEMPOTENCY_KEY
from dbwrapper.api.idempotency import Idempotency
from dbwrapper.api.problems import Problem
from dbwrapper.api.routing import PREFIX, Call, Reply, Route, Router
from dbwrapper.api.schemas import SCHEMAS
from dbwrapper.errors import DbWrapperError
from dbwrapper.joblog import log as job_log
from dbwrapper.registry.joblock import process_ended

if TYPE_CHECKING:
    from dbwrapper.runtime import Runtime

#: The API's lines in the log (with their tracebacks).
log = partial(job_log, "API")
INTERNAL_ERROR = "Something went wrong inside dbwrapper; the details are in the server log."

#: Methods that act, and so may carry an ``Idempotency-Key``: the draft's POST and PATCH, and
#: DELETE, which here is not idempotent in effect (a database made again after it was dropped
#: would be dropped again by a replayed batch).
ACTING = ("POST", "PATCH", "DELETE")
#: Methods whose ``If-Match`` is checked against the resource as it is now (for a POST, the
#: resource it acts on: the one at its path, or at the path it is an action of).
CONDITIONAL = ("POST", "PATCH", "DELETE")
#: Members that move by themselves (a token's last use moves as it is used): left out of ETags.
VOLATILE = ("last_used_at",)


def etag_of(body: Any) -> str:
    """A strong validator: the hash of the representation, without what moves by itself."""
    if isinstance(body, dict):
        body = {key: value for key, value in body.items() if key not in VOLATILE}
    text = json.dumps(body, sort_keys=True, default=str, separators=(",", ":"))
    return '"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'


def listed_tags(header: str, *, weak: bool) -> set[str]:
    """The entity tags an ``If-Match`` or ``If-None-Match`` lists. ``If-None-Match`` compares
    weakly (``W/"x"`` is ``"x"``); ``If-Match`` strongly, so a weak tag never matches there."""
    tags = {tag.strip() for tag in header.split(",") if tag.strip()}
    return {tag.removeprefix("W/") for tag in tags} if weak else {tag for tag in tags if not tag.startswith("W/")}


def problem_reply(problem: Problem) -> Reply:
    return Reply(problem.status, problem.body(), dict(problem.headers))


class Api:
    """The API of one runtime: its routes, its idempotency keys, and how a call is answered."""

    def __init__(self, runtime: Runtime, routes: list[Route]) -> None:
        self.runtime = runtime
        self.router = Router(routes)

    @cached_property
    def idempotency(self) -> Idempotency:
        """Made on first use: the registry exists only once the runtime has started."""
        servers = self.runtime.servers
        return Idempotency(
            servers.registry, self.runtime.settings.idempotency_hours, self.runtime.process,
            partial(process_ended, servers.registry.url, servers.deadlines),
        )

    def handle(self, call: Call) -> Reply:
        """The answer to ``call``; never raises for anything a request can cause."""
        try:
            route, params = self.router.find(call.method, call.path)
            key = call.header(IDEMPOTENCY_KEY)
            if call.method in ACTING and key is not None:
                return self.idempotency.once(call, key, lambda: self._answer(route, params, call))
            return self._answer(route, params, call)
        except Problem as problem:
            return problem_reply(problem)
        except DbWrapperError as error:  # the registry itself failed (a 503 naming it)
            return problem_reply(Problem.of(error))

    def _answer(self, route: Route, params: dict[str, str], call: Call) -> Reply:
        """The route's answer, every error a problem: a bug too, so that one operation of a
        batch that fails so does not throw away the answers of those that acted before it."""
        try:
            fields.plain_text(call.path, "the path")
            fields.plain_text(call.query, "the query")
            fields.plain_text(call.body, "the body")
            fields.known(call.query, set(route.query))
            self._check_body(route, call)
            if call.method in CONDITIONAL and (wanted := call.header("If-Match")) is not None:
                self._check_current(call, wanted)
            reply = route.handler(self, call, **params)
        except Problem as problem:
            return problem_reply(problem)
        except DbWrapperError as error:
            return problem_reply(Problem.of(error))
        except Exception:
            log(f"{call.method} {PREFIX}{call.path} failed", failed=True)
            return problem_reply(Problem(500, INTERNAL_ERROR))
        if call.method in ("GET", "HEAD") and reply.status == 200:
            etag = reply.headers["ETag"] = etag_of(reply.body)
            if (known := call.header("If-None-Match")) is not None and (
                known.strip() == "*" or etag in listed_tags(known, weak=True)
            ):
                return Reply(304, None, {"ETag": etag})
        return reply

    @staticmethod
    def _check_body(route: Route, call: Call) -> None:
        """Refuse a body of the wrong type, or with members its schema does not have (the
        OpenAPI document is the one list of them)."""
        if call.content_type == "text/csv" and not route.csv:
            raise Problem(415, f"{PREFIX}{call.path} takes JSON, not CSV.")
        if route.request is not None and call.body is not None and not isinstance(call.body, str):
            fields.known(call.fields(), set(SCHEMAS[route.request].get("properties", {})))

    def _check_current(self, call: Call, wanted: str) -> None:
        """Refuse (412) a change to a resource that is no longer what the client last saw: the
        resource at the path, or for an action (``.../revert``) the one it acts on."""
        path = call.path
        found = self.router.item_route(path)
        if found is None and call.method == "POST":
            path = path.rsplit("/", 1)[0] or "/"
            found = self.router.item_route(path)
        if found is None:
            raise Problem(400, f"{PREFIX}{call.path} has no version to compare If-Match with.", {"field": "If-Match"})
        route, params = found
        current = route.handler(self, Call(call.actor, "GET", path), **params)
        if current.status != 200:
            raise Problem(current.status, current.body.get("detail", "") if isinstance(current.body, dict) else "")
        etag = etag_of(current.body)
        if wanted.strip() != "*" and etag not in listed_tags(wanted, weak=False):
            raise Problem(412, f"{PREFIX}{path} has changed since you last read it (it is now {etag}); "
                               "read it again and decide.", {"etag": etag})
