"""The OpenAPI 3.1 document, made from the routes themselves so that it cannot drift from them."""

from __future__ import annotations

from typing import Any

import dbwrapper
from dbwrapper.api.handling import ACTING, CONDITIONAL
from dbwrapper.api.idempotency import HEADER as IDEMPOTENCY_KEY
from dbwrapper.api.idempotency import REPLAYED
from dbwrapper.api.problems import KINDS, PROBLEM_TYPE
from dbwrapper.api.routing import PREFIX, Route
from dbwrapper.api.schemas import SCHEMAS, ref

#: What any route may answer: who you are, the service's limits, its servers, a bug.
COMMON_ERRORS = (400, 401, 429, 500, 503)
#: What every acting route may answer besides: a session without its CSRF token (403), a
#: changed resource (412), a key in use (409) or reused (422), a body too big or not JSON.
ACTING_ERRORS = (403, 409, 412, 413, 415, 422)
DESCRIPTIONS = {
    200: "OK", 201: "Created (200 when it existed already: nothing was changed)",
    202: "Accepted: follow the operation",
    204: "Done; no body", 304: "Not modified since the ETag you sent",
    400: "The request is wrong; `field` names what",
    401: "No valid session or token", 403: "Not yours to do", 404: "No such resource (or not yours to see)",
    405: "Not a method of this path (see Allow)", 409: "In conflict with what is there or at work",
    412: "Changed since the ETag you sent in If-Match", 413: "The body is too big", 415: "Send JSON",
    422: "Idempotency-Key reused for another request",
    429: "Too many at once; wait Retry-After seconds", 500: "A bug; the server log has the details",
    503: "A database server is unavailable; the detail names it",
}


def header(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, "schema": schema or {"type": "string"}}


def problem(status: int) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": DESCRIPTIONS.get(status, "Error"),
                              "content": {PROBLEM_TYPE: {"schema": ref("Problem")}}}
    if status == 429:
        answer["headers"] = {"Retry-After": header("Seconds to wait", {"type": "string"})}
    if status == 405:
        answer["headers"] = {"Allow": header("The methods this path takes")}
    return answer


def operation(route: Route) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[^/]+$"}}
        for name in route.parameters
    ]
    parameters += [{"name": name, "in": "query", "required": False, "schema": schema, "description": description}
                   for name, (schema, description) in route.query.items()]
    if route.method in ACTING:
        parameters.append({"name": IDEMPOTENCY_KEY, "in": "header", "required": False,
                           "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                           "description": "Retries with the same key get the first answer, without acting again"})
    if route.method in CONDITIONAL:
        parameters.append({"name": "If-Match", "in": "header", "required": False, "schema": {"type": "string"},
                           "description": "Act only if the resource's ETag is still this one (else 412)"})
    if route.method == "GET":
        parameters.append({"name": "If-None-Match", "in": "header", "required": False, "schema": {"type": "string"},
                           "description": "Answer 304 if the resource's ETag is still this one"})
    success: dict[str, Any] = {"description": DESCRIPTIONS[route.status]}
    if route.response is not None:
        success["content"] = {"application/json": {"schema": ref(route.response)}}
    headers: dict[str, Any] = {}
    if route.status in (201, 202):
        headers["Location"] = header("Where the new resource, or the operation to follow, is")
    if route.method == "GET":
        headers["ETag"] = header("The resource's version")
    if route.method in ACTING:
        headers[REPLAYED] = header("true when this is the answer kept for an Idempotency-Key")
    if headers:
        success["headers"] = headers
    responses: dict[str, Any] = {str(route.status): success}
    if route.status == 201:
        responses["200"] = {**success, "description": "It existed already; nothing was changed"}
    if route.method == "GET":
        responses["304"] = {"description": DESCRIPTIONS[304]}
    errors = set(COMMON_ERRORS) | set(route.errors)
    if route.method in ACTING:
        errors |= set(ACTING_ERRORS)
    for status in sorted(errors):
        responses[str(status)] = problem(status)
    document: dict[str, Any] = {
        "operationId": route.handler.__name__, "summary": route.summary, "parameters": parameters,
        "responses": responses,
    }
    if route.request is not None:
        content = {"application/json": {"schema": ref(route.request)}}
        if route.csv:
            content["text/csv"] = {"schema": {"type": "string"}}
        document["requestBody"] = {"required": route.request != "Empty", "content": content}
    return document


def openapi_document(routes: list[Route]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(PREFIX + route.pattern, {})[route.method.lower()] = operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "dbwrapper", "version": dbwrapper.__version__,
            "description": (
                "A real database per trainee on PostgreSQL or MySQL/MariaDB. Authenticate with "
                "`Authorization: Bearer <token>` (make one on your account page, with `dbwrapper token create`, "
                "or POST /api/v1/me/tokens). Errors are RFC 9457 problem details. Every non-idempotent request "
                "may carry an Idempotency-Key; every resource an ETag. Problem types: "
                + ", ".join(sorted(set(KINDS.values()))) + "."
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"session": []}],
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "A personal API token"},
                "session": {"type": "apiKey", "in": "cookie", "name": "session_id",
                            "description": "The pages' login; unsafe methods also need X-CSRF-Token"},
            },
        },
    }
