"""Every route of the API, and the few that describe the API itself."""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING

import dbwrapper
from dbwrapper.api import batch, classroom, console, databases, people
from dbwrapper.api.openapi import openapi_document
from dbwrapper.api.problems import KINDS, TYPE_BASE
from dbwrapper.api.replies import ok
from dbwrapper.api.routing import PREFIX, Call, Reply, Route

if TYPE_CHECKING:
    from dbwrapper.api.handling import Api


def index(api: Api, call: Call) -> Reply:
    """Where everything is: a client needs to know only this path."""
    collections = ("databases", "archives", "courses", "classes", "operations", "users", "servers", "audit", "me")
    links = {name: f"{PREFIX}/{name}" for name in collections}
    return ok({"version": dbwrapper.__version__,
               "links": {**links, "batch": f"{PREFIX}/batch", "openapi": f"{PREFIX}/openapi.json"}})


def openapi(api: Api, call: Call) -> Reply:
    return ok(openapi_document(api.router.routes))


def problems(api: Api, call: Call) -> Reply:
    """The kinds of problem an error may be (each ``type`` points here)."""
    return ok({"problems": [{"type": TYPE_BASE + kind, "status": status, "title": HTTPStatus(status).phrase}
                            for status, kind in sorted(KINDS.items())]})


#: Routes anyone may read, logged in or not: what the API is.
PUBLIC = {"/", "/openapi.json", "/problems"}

ROUTES: list[Route] = [
    Route("GET", "/", index, "Where every collection is", response="Index"),
    Route("GET", "/openapi.json", openapi, "The OpenAPI 3.1 document of this API"),
    Route("GET", "/problems", problems, "The kinds of problem an error may be", response="ProblemKinds"),
    *databases.ROUTES, *console.ROUTES, *people.ROUTES, *classroom.ROUTES, *batch.ROUTES,
]
