"""``POST /api/v1/batch``: what a client accumulated while it could not reach the service,
sent in one request.

Each operation is answered as if it came alone (the same routes, preconditions
and idempotency keys), in order, each with its own status and body; one that
fails does not stop the rest. With a key on every operation, sending the same
batch twice changes nothing the second time: every answer is a replay.

In order, with one exception that changes no outcome: consecutive creates of
databases that each name a different database (the bulk case: a class's
databases from an LMS) are independent of each other, so they are made
:data:`PARALLEL_CREATES` at a time; every server's gate still bounds them.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from dbwrapper.api.problems import Problem
from dbwrapper.api.routing import PREFIX, Call, Reply, Route

if TYPE_CHECKING:
    from dbwrapper.api.handling import Api

#: The request headers an operation may carry.
OPERATION_HEADERS = ("Idempotency-Key", "If-Match", "If-None-Match")
OPERATION_FIELDS = {"method", "path", "body", "headers"}
METHODS = ("GET", "POST", "PATCH", "DELETE")
#: How many independent creates of a batch are at work at once.
PARALLEL_CREATES = 4


def read_operation(number: int, entry: Any) -> tuple[str, str, Any, dict[str, str]]:
    """One operation's method, path (below the API's root), body and headers; a 400 naming it."""
    where = f"operations[{number}]"
    if not isinstance(entry, dict) or set(entry) - OPERATION_FIELDS:
        raise Problem(400, f"{where} is an object with {', '.join(sorted(OPERATION_FIELDS))}.", {"field": where})
    method, path, headers = entry.get("method"), entry.get("path"), entry.get("headers") or {}
    if method not in METHODS:
        raise Problem(400, f"{where}.method is one of {', '.join(METHODS)}.", {"field": f"{where}.method"})
    if not isinstance(path, str) or not path.startswith(PREFIX + "/"):
        raise Problem(400, f"{where}.path is a path of this API, such as {PREFIX}/databases.",
                      {"field": f"{where}.path"})
    if not isinstance(headers, dict) or not all(
        name in OPERATION_HEADERS and isinstance(value, str) for name, value in headers.items()
    ):
        raise Problem(400, f"{where}.headers may set {', '.join(OPERATION_HEADERS)}, as text.",
                      {"field": f"{where}.headers"})
    return method, path.removeprefix(PREFIX), entry.get("body"), headers


def run_batch(api: Api, call: Call) -> Reply:
    body = call.fields()
    entries = body.get("operations")
    limit = api.runtime.settings.batch_limit
    if not isinstance(entries, list) or not 1 <= len(entries) <= limit:
        raise Problem(400, f"A batch is {{\"operations\": [...]}} with 1 to {limit} operations.",
                      {"field": "operations"})
    operations = [read_operation(number, entry) for number, entry in enumerate(entries)]
    if any(path.split("?")[0] == "/batch" for _, path, _, _ in operations):
        raise Problem(400, "A batch cannot hold another batch.", {"field": "operations"})
    calls = []
    for method, path, operation_body, headers in operations:
        path, _, query = path.partition("?")
        calls.append(Call(call.actor, method, path, dict(parse_qsl(query)), operation_body, headers=headers))
    results: list[dict[str, Any]] = []
    with ThreadPoolExecutor(PARALLEL_CREATES, thread_name_prefix="dbwrapper batch") as pool:
        for run in runs(calls):
            results += [reply.to_json() for reply in pool.map(api.handle, run)]
    return Reply(200, {"results": results})


def created_database(call: Call) -> tuple[Any, Any] | None:
    """The database a create names (its server and name), or ``None`` for another operation."""
    if call.method != "POST" or call.path != "/databases" or call.query or not isinstance(call.body, dict):
        return None
    named = (call.body.get("db_type"), call.body.get("name"))
    return named if all(isinstance(part, str) for part in named) else None


def runs(calls: list[Call]) -> Iterator[list[Call]]:
    """The calls in order, as runs that may be answered at once: consecutive creates of
    different databases together, every other call alone."""
    run: list[Call] = []
    named: set[tuple[Any, Any]] = set()
    for call in calls:
        database = created_database(call)
        if run and (database is None or database in named):
            yield run
            run, named = [], set()
        run.append(call)
        if database is None:
            yield run
            run = []
        else:
            named.add(database)
    if run:
        yield run


ROUTES = [
    Route("POST", "/batch", run_batch,
          "Apply a list of operations in order, each with its own idempotency key, each answered on its own",
          request="Batch", response="BatchResults"),
]
