"""What a request asks (:class:`Call`), what answers it (:class:`Reply`), and the table of
routes between them (:class:`Router`), which the OpenAPI document is also made from."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dbwrapper.accounts import Actor
from dbwrapper.api.problems import Problem

#: The API's root path; every route's pattern is below it.
PREFIX = "/api/v1"
#: One path segment of a route's pattern: ``{name}``.
SEGMENT = re.compile(r"\{([a-z_]+)\}")


@dataclass(frozen=True)
class Call:
    """One request as the API sees it, whether it came over HTTP or inside a batch."""

    actor: Actor
    method: str
    #: Below :data:`PREFIX`: ``/databases/postgres/alice_7001``.
    path: str
    query: Mapping[str, str] = field(default_factory=dict)
    #: The JSON body (``None`` without one), or the text of a CSV body.
    body: Any = None
    content_type: str = "application/json"
    #: Request headers the API reads: ``Idempotency-Key``, ``If-Match``, ``If-None-Match``.
    headers: Mapping[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None

    def fields(self) -> dict[str, Any]:
        """The body as an object; a 400 when it is something else."""
        if self.body is None:
            return {}
        if not isinstance(self.body, dict):
            raise Problem(400, "The request body must be a JSON object.")
        return self.body


@dataclass
class Reply:
    """An answer: a status, a JSON body (``None`` for none) and headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "headers": self.headers, "body": self.body}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Reply:
        return cls(int(data["status"]), data.get("body"), dict(data.get("headers") or {}))


Handler = Callable[..., Reply]


@dataclass(frozen=True)
class Route:
    """One method on one path pattern, with what the OpenAPI document says of it."""

    method: str
    pattern: str
    handler: Handler
    summary: str
    #: The JSON Schema names (in :mod:`dbwrapper.api.schemas`) of the body and of the answer.
    request: str | None = None
    response: str | None = None
    #: The success status, and the errors this route may answer besides the common ones.
    status: int = 200
    errors: tuple[int, ...] = ()
    #: Query parameters: name -> (JSON Schema, description).
    query: Mapping[str, tuple[dict[str, Any], str]] = field(default_factory=dict)
    #: Whether a body other than JSON is accepted too (``text/csv`` for a roster).
    csv: bool = False

    @property
    def regex(self) -> re.Pattern[str]:
        """The pattern as a regular expression (its literal parts are plain path characters)."""
        return re.compile("^" + SEGMENT.sub(r"(?P<\1>[^/]+)", self.pattern) + "$")

    @property
    def parameters(self) -> list[str]:
        return SEGMENT.findall(self.pattern)


class Router:
    """The routes, found by method and path; an unknown path is a 404, a known one with
    another method a 405 that lists the methods it has (``Allow``)."""

    def __init__(self, routes: list[Route]) -> None:
        self.routes = routes
        self._compiled = [(route, route.regex) for route in routes]

    def find(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        methods: list[str] = []
        for route, regex in self._compiled:
            if matched := regex.match(path):
                if route.method == method or (method == "HEAD" and route.method == "GET"):
                    return route, matched.groupdict()
                methods.append(route.method)
        if not methods:
            raise Problem(404, f"There is no {PREFIX}{path}; the API's paths are in {PREFIX}/openapi.json.")
        allowed = sorted(set(methods) | ({"HEAD"} if "GET" in methods else set()))
        raise Problem(405, f"{PREFIX}{path} does not take {method}; it takes {', '.join(allowed)}.",
                      headers={"Allow": ", ".join(allowed)})

    def item_route(self, path: str) -> tuple[Route, dict[str, str]] | None:
        """The ``GET`` of ``path``, which says what its resource is now (for ``If-Match``)."""
        try:
            return self.find("GET", path)
        except Problem:
            return None
