"""What the JSON API costs beside the page and the bare backend, and what its replays, batches
and ETags save.

Run from the repository root::

    .venv/bin/python bench/api.py [--iterations 20] [--batch 30]

For PostgreSQL and MySQL/MariaDB alike, in one process and one run, alternating the
paths compared so that drift hits both alike, it measures medians of:

* ``POST /api/v1/databases`` against the page's ``GET /dbi/create_my_db`` and against the
  backend's own create of a database with its login (no HTTP, no registry);
* a replayed ``POST`` (the same ``Idempotency-Key``) against the first request with it;
* one ``POST /api/v1/batch`` of ``--batch`` creates against as many single requests;
* ``GET`` of a database with a matching ``If-None-Match`` (a 304) against without.

Every database made is destroyed through the API again, untimed. The API client sends its
bearer token on one keep-alive connection; the page client its session cookie on another
(see ``bench/create_overhead.py``, whose servers, service and page client this reuses).
Ratios compare things measured side by side, so the machine's speed cancels out. The
script reports; it does not judge (it exits 0 once it has measured).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cherrypy  # noqa: E402

from bench.create_overhead import (  # noqa: E402
    HOST,
    INSTRUCTOR,
    WARMUP_ITERATIONS,
    Client,
    backend_create_drop,
    server_urls,
    start_service,
    verdict,
)
from dbwrapper.accounts import Actor  # noqa: E402
from dbwrapper.backends import BACKEND_CLASSES  # noqa: E402
from dbwrapper.backends.base import Login  # noqa: E402
from dbwrapper.config import DB_TYPES  # noqa: E402
from dbwrapper.passwords import generate_password  # noqa: E402

#: The targets: API create against the page's, replay and batch speed-ups.
API_CREATE_RATIO_MAX = 1.05
REPLAY_SPEEDUP_MIN = 10.0
BATCH_SPEEDUP_MIN = 1.5


class ApiClient:
    """One keep-alive connection to the API, with a bearer token."""

    def __init__(self, port: int, token: str) -> None:
        self.connection = http.client.HTTPConnection(HOST, port, timeout=120)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def send(self, method: str, path: str, body: Any = None, expect: tuple[int, ...] = (200,),
             **headers: str) -> tuple[int, Any, dict[str, str]]:
        payload = json.dumps(body) if body is not None else None
        self.connection.request(method, "/api/v1" + path, payload, {**self.headers, **headers})
        response = self.connection.getresponse()
        content = response.read()
        if response.status not in expect:
            raise RuntimeError(f"{method} {path} answered {response.status}: {content[:300]!r}")
        return response.status, json.loads(content) if content else None, dict(response.headers)

    def create(self, db_type: str, name: str, key: str | None = None) -> Any:
        headers = {"Idempotency-Key": key} if key else {}
        return self.send("POST", "/databases", {"db_type": db_type, "name": name}, (201,), **headers)

    def destroy(self, db_type: str, name: str) -> None:
        self.send("DELETE", f"/databases/{db_type}/{name}", expect=(204,))

    def close(self) -> None:
        self.connection.close()


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def fresh() -> str:
    return f"bench_{uuid.uuid4().hex[:10]}"


def one_iteration(page: Client, api: ApiClient, backend: Any, login: Login, db_type: str, batch: int,
                  forward: bool) -> dict[str, float]:
    """Seconds of every path once, the paths compared in the order ``forward`` says; every
    database made is destroyed again, untimed."""
    made: list[str] = []
    row: dict[str, float] = {}

    def api_create() -> None:
        made.append(name := fresh())
        row["api create"] = timed(lambda: api.create(db_type, name))

    def page_create() -> None:
        made.append(name := fresh())
        query = urlencode({"db_type": db_type, "name": name})
        row["page create"] = timed(lambda: page.get(f"/dbi/create_my_db?{query}", expect=303))

    def bare_create() -> None:
        row["backend create"], _ = backend_create_drop(backend, login)

    creates = [api_create, page_create, bare_create]
    for step in creates if forward else reversed(creates):
        step()

    key, name = str(uuid.uuid4()), fresh()
    made.append(name)
    row["first"] = timed(lambda: api.create(db_type, name, key))
    row["replay"] = timed(lambda: api.create(db_type, name, key))

    path = f"/databases/{db_type}/{name}"
    etag = api.send("GET", path)[2]["ETag"]
    row["get"] = timed(lambda: api.send("GET", path))
    row["get 304"] = timed(lambda: api.send("GET", path, expect=(304,), **{"If-None-Match": etag}))

    batch_names, single_names = [fresh() for _ in range(batch)], [fresh() for _ in range(batch)]
    made += batch_names + single_names
    operations = [{"method": "POST", "path": "/api/v1/databases", "body": {"db_type": db_type, "name": n},
                   "headers": {"Idempotency-Key": str(uuid.uuid4())}} for n in batch_names]

    def whole_batch() -> None:
        answer = api.send("POST", "/batch", {"operations": operations})[1]
        assert all(result["status"] == 201 for result in answer["results"]), answer

    def singles() -> None:
        for n in single_names:
            api.create(db_type, n, str(uuid.uuid4()))

    if forward:
        row["batch"], row["singles"] = timed(whole_batch), timed(singles)
    else:
        row["singles"], row["batch"] = timed(singles), timed(whole_batch)
    for made_name in made:
        api.destroy(db_type, made_name)
    return row


def measure(port: int, token: str, db_type: str, url: str, iterations: int, batch: int) -> dict[str, float]:
    """Median milliseconds of each path, alternating the paths compared."""
    page = Client(port)
    page.log_in()
    api = ApiClient(port, token)
    backend = BACKEND_CLASSES[db_type](url)
    login = Login("dbwrapper_bench_login", generate_password())
    times: dict[str, list[float]] = {}
    try:
        backend.drop_database(login.name, login.name, registered=True)  # left by an aborted run
        for i in range(WARMUP_ITERATIONS + iterations):
            # Fresh keep-alive connections, untimed: an iteration's batches outlast the server's
            # socket timeout for the one that waits meanwhile.
            for connection in (page.connection, api.connection):
                connection.close()
                connection.connect()
            row = one_iteration(page, api, backend, login, db_type, batch, forward=i % 2 == 0)
            if i >= WARMUP_ITERATIONS:
                for label, seconds in row.items():
                    times.setdefault(label, []).append(seconds)
    finally:
        page.close()
        api.close()
        backend.dispose()
    return {label: statistics.median(values) * 1000 for label, values in times.items()}


def print_report(results: dict[str, dict[str, float]], args: argparse.Namespace) -> None:
    print(f"\nMedians (ms) of {args.iterations} iterations after {WARMUP_ITERATIONS} warm-up; "
          f"batches of {args.batch}.\n")
    print(f"{'':30}" + "".join(f"{db_type:>14}" for db_type in results))
    rows: list[tuple[str, Callable[[dict[str, float]], float]]] = [
        ("API create", lambda r: r["api create"]),
        ("page create", lambda r: r["page create"]),
        ("  API / page", lambda r: r["api create"] / r["page create"]),
        ("backend create (no HTTP)", lambda r: r["backend create"]),
        ("  API / backend", lambda r: r["api create"] / r["backend create"]),
        ("first request with a key", lambda r: r["first"]),
        ("its replay", lambda r: r["replay"]),
        ("  first / replay", lambda r: r["first"] / r["replay"]),
        (f"batch of {args.batch} creates", lambda r: r["batch"]),
        (f"{args.batch} single creates", lambda r: r["singles"]),
        ("  singles / batch", lambda r: r["singles"] / r["batch"]),
        ("GET a database", lambda r: r["get"]),
        ("GET with If-None-Match (304)", lambda r: r["get 304"]),
        ("  GET / 304", lambda r: r["get"] / r["get 304"]),
    ]
    for label, value in rows:
        print(f"{label:30}" + "".join(f"{value(r):>14.2f}" for r in results.values()))
    print("\nTargets")
    for db_type, r in results.items():
        for label, measured, ok in (
            (f"{db_type}: API create <= {API_CREATE_RATIO_MAX}x page create", r["api create"] / r["page create"],
             r["api create"] / r["page create"] <= API_CREATE_RATIO_MAX),
            (f"{db_type}: replay >= {REPLAY_SPEEDUP_MIN:g}x faster than first", r["first"] / r["replay"],
             r["first"] / r["replay"] >= REPLAY_SPEEDUP_MIN),
            (f"{db_type}: batch >= {BATCH_SPEEDUP_MIN}x faster than singles", r["singles"] / r["batch"],
             r["singles"] / r["batch"] >= BATCH_SPEEDUP_MIN),
        ):
            print(f"  {label:52}{measured:>8.2f}x  {verdict(ok)}")


@contextmanager
def service_with_token() -> Iterator[tuple[dict[str, str], int, str]]:
    """The servers, the service on them and an API token of the first instructor's: their
    super-user URLs, the service's port and the token; everything stopped afterwards."""
    with ExitStack() as stack:
        urls = server_urls(stack)
        stack.callback(cherrypy.engine.exit)
        port, runtime = start_service(urls)
        actor = Actor(runtime.accounts.get(INSTRUCTOR), via="bench")
        _, token = runtime.accounts.create_token(actor, INSTRUCTOR, f"bench {os.getpid()}")
        yield urls, port, token


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20, help="timed iterations per engine")
    parser.add_argument("--batch", type=int, default=30, help="creates per batch")
    args = parser.parse_args()
    with service_with_token() as (urls, port, token):
        results = {db_type: measure(port, token, db_type, urls[db_type], args.iterations, args.batch)
                   for db_type in DB_TYPES}
    print_report(results, args)


if __name__ == "__main__":
    main()
