"""How much dbwrapper's HTTP path costs on top of the SQL it exists to run.

Run from the repository root::

    .venv/bin/python bench/create_overhead.py [--iterations 30] [--requests 2000] [--threads 4]

For PostgreSQL and MySQL/MariaDB alike it measures, in one process and one run:

* the median time of ``GET /dbi/create_my_db`` against a bare ``CREATE DATABASE``
  on a held SQLAlchemy connection, and of create followed by
  ``POST /dbi/destroy_my_db`` against a bare ``CREATE`` + ``DROP``; HTTP and
  bare iterations alternate so that drift (caches, autovacuum, a busy
  neighbour) hits both alike;
* alongside, the backend's own create and drop of a database with its login
  (role or user, and the grant), without HTTP or registry: the HTTP create
  makes that login too, so these rows split the HTTP time into the login work
  the SQL needs and the service's own overhead;
* the request rate of ``GET /dbi/list`` against a trivial CherryPy handler
  mounted in the same server, in interleaved rounds.

Every client logs in once as the first instructor, before it is timed, and
then sends its session cookie (and the session's CSRF token in POSTs), as a
browser does; the trivial handler gets the same cookie, so both paths carry
the same headers.

Absolute times depend on the machine; the ratios compare two things measured
side by side on the same machine, servers and interpreter, so its speed
cancels out. That is why the targets are stated as ratios where they can be.

The servers are those named by ``DBWRAPPER_POSTGRES_URL`` and
``DBWRAPPER_MYSQL_URL`` (super-user URLs), or else throwaway ones from
``tests/servers.py``. The script always exits 0 once it has measured: it
reports, it does not judge.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import statistics
import sys
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cherrypy  # noqa: E402
from sqlalchemy import Connection, create_engine  # noqa: E402

from dbwrapper.backends import BACKEND_CLASSES  # noqa: E402
from dbwrapper.backends.base import Backend, Login  # noqa: E402
from dbwrapper.config import DB_TYPES, DEFAULT_FIRST_INSTRUCTOR, Settings, env_var  # noqa: E402
from dbwrapper.passwords import generate_password  # noqa: E402
from dbwrapper.runtime import INSTRUCTOR_PASSWORD_VARIABLE, Runtime  # noqa: E402
from dbwrapper.web.app import mount, server_config  # noqa: E402
from tests.servers import SERVERS, free_port  # noqa: E402

HOST = "127.0.0.1"
WARMUP_ITERATIONS = 2
RATE_ROUNDS = 3
#: The constant database the bare statements create and drop.
BARE_NAME = "dbwrapper_bench_bare"
#: The constant database (and login) the backend's own create and drop make and remove.
BARE_LOGIN_NAME = "dbwrapper_bench_login"
TRIVIAL_PATH = "/trivial/"

#: Who the clients log in as, with a password the bench sets (see start_service).
INSTRUCTOR = DEFAULT_FIRST_INSTRUCTOR
INSTRUCTOR_PASSWORD = "bench-instructor-password"
SESSION_COOKIE = "session_id"
CSRF_FIELD = "csrf_token"
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')

#: The targets: PostgreSQL create ratio, MySQL create+drop milliseconds, list/trivial rate ratio.
PG_CREATE_RATIO_MAX = 1.25
MYSQL_CREATE_DROP_MS_MAX = 15.0
LIST_RATE_RATIO_MIN = 0.5


class Trivial:
    """The cheapest page CherryPy can serve: the baseline for request rates."""

    @cherrypy.expose
    def index(self) -> str:
        return "ok"


class Client:
    """One keep-alive HTTP/1.1 connection to the service, with one login session."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection(HOST, port, timeout=60)
        self.connection.connect()
        #: The session cookie, sent with every request once the server has set one.
        self.cookie: dict[str, str] = {}
        self.csrf = ""
        self.logged_in = False

    def log_in(self) -> None:
        """Log in as the first instructor the way a browser does, before anything is timed.

        The login form carries the token of the session it starts; logging in
        starts a new session, with a new token, which every logged-in page's
        logout form carries: the page the login redirects to gives it.
        """
        self.csrf = self._token(self.get("/login"))
        self.post_form(
            "/login", {"name": INSTRUCTOR, "password": INSTRUCTOR_PASSWORD, "next": "/"}, expect=303
        )
        self.csrf = self._token(self.get("/"))
        self.logged_in = True

    def get(self, path: str, expect: int = 200) -> bytes:
        return self._send("GET", path, None, {}, expect)

    def post_form(self, path: str, form: dict[str, str], expect: int = 200) -> bytes:
        """POST ``form`` with the session's CSRF token, as the service's own forms do."""
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        return self._send("POST", path, urlencode({CSRF_FIELD: self.csrf, **form}), headers, expect)

    def _send(self, method: str, path: str, body: str | None, headers: dict[str, str], expect: int) -> bytes:
        self.connection.request(method, path, body, {**self.cookie, **headers})
        response = self.connection.getresponse()
        content = response.read()
        if response.status != expect:
            raise RuntimeError(f"{method} {path} answered {response.status}: {content[:300]!r}")
        # The session id changes only while logging in; parsing the cookie the
        # server repeats on every later response would add client time (in this
        # process, under the same GIL as the server) to the pages with sessions only.
        if not self.logged_in:
            for header in response.headers.get_all("Set-Cookie", []):
                if SESSION_COOKIE in (cookie := SimpleCookie(header)):
                    self.cookie = {"Cookie": f"{SESSION_COOKIE}={cookie[SESSION_COOKIE].value}"}
        return content

    @staticmethod
    def _token(page: bytes) -> str:
        found = CSRF_INPUT.search(page.decode())
        if found is None:
            raise RuntimeError(f"No {CSRF_FIELD} in the page: {page[:300]!r}")
        return found.group(1)

    def close(self) -> None:
        self.connection.close()


@dataclass
class Phases:
    """Per-iteration seconds of create alone and of create followed by drop."""

    create: list[float]
    create_drop: list[float]

    def add(self, create: float, create_drop: float) -> None:
        self.create.append(create)
        self.create_drop.append(create_drop)

    def medians_ms(self) -> tuple[float, float]:
        return statistics.median(self.create) * 1000, statistics.median(self.create_drop) * 1000


@dataclass
class EngineResult:
    """Everything measured for one backend kind."""

    http: Phases
    bare: Phases
    bare_login: Phases
    list_rate: float
    server_version: str


# -- servers and the in-process service --------------------------------------------


def server_urls(stack: ExitStack) -> dict[str, str]:
    """Each kind's super-user URL: from the environment, else a throwaway server."""
    return {
        kind: os.environ.get(env_var(kind)) or stack.enter_context(SERVERS[kind]())
        for kind in DB_TYPES
    }


def start_service(urls: dict[str, str]) -> tuple[int, Runtime]:
    """Start dbwrapper plus the trivial handler on a free port; return the port and the runtime.

    A new registry makes the first instructor with the bench's password (and
    prints no generated one); a registry an earlier run left on an existing
    server already has that instructor, with whatever password it got then, so
    the password is set again once the runtime has started.
    """
    # No background jobs: course copies and expiry would compete with what is measured.
    # A deadline that only a broken server misses: dropping databases one after the other, as
    # the runs clean up, waits on the server's checkpoints, which a slow disk makes long.
    settings = Settings(host=HOST, port=free_port(), backend_urls=urls, embedded=False,
                        pool_size=0, expiry_check_seconds=24 * 3600, short_deadline_seconds=120)
    os.environ[INSTRUCTOR_PASSWORD_VARIABLE] = INSTRUCTOR_PASSWORD
    cherrypy.config.update(server_config(settings))
    cherrypy.config.update({"log.screen": False, "log.access_file": ""})
    runtime = mount(settings)
    cherrypy.tree.mount(Trivial(), TRIVIAL_PATH.rstrip("/"))
    cherrypy.engine.start()
    if cherrypy.engine.state != cherrypy.engine.states.STARTED:
        raise RuntimeError("The CherryPy engine did not start; see the log above.")
    runtime.accounts.set_password(INSTRUCTOR, INSTRUCTOR_PASSWORD, by="bench")
    return settings.port, runtime


# -- create and drop --------------------------------------------------------------


def http_create_drop(client: Client, kind: str, name: str) -> tuple[float, float]:
    """Seconds of the create request, and of create plus destroy."""
    start = time.perf_counter()
    # Both answer 303 (Post/Redirect/Get): the listing they lead to is not part of the work timed.
    client.get(f"/dbi/create_my_db?{urlencode({'db_type': kind, 'name': name})}", expect=303)
    created = time.perf_counter()
    client.post_form("/dbi/destroy_my_db", {"db_type": kind, "name": name}, expect=303)
    return created - start, time.perf_counter() - start


def bare_create_drop(connection: Connection, quoted: str) -> tuple[float, float]:
    """Seconds of the bare CREATE DATABASE, and of CREATE plus DROP."""
    start = time.perf_counter()
    connection.exec_driver_sql(f"CREATE DATABASE {quoted}")
    created = time.perf_counter()
    connection.exec_driver_sql(f"DROP DATABASE {quoted}")
    return created - start, time.perf_counter() - start


def backend_create_drop(backend: Backend, login: Login) -> tuple[float, float]:
    """Seconds of the backend's own create with a login, and of that plus its drop.

    This is the SQL an HTTP create runs (CREATE DATABASE, the login, the grant,
    on the backend's pooled connections) without HTTP, session or registry.
    """
    start = time.perf_counter()
    backend.create_database(login.name, login)
    created = time.perf_counter()
    backend.drop_database(login.name, login.name, registered=True)
    return created - start, time.perf_counter() - start


def measure_create(port: int, kind: str, url: str, iterations: int) -> tuple[Phases, Phases, Phases, str]:
    """Alternate HTTP, bare and backend iterations; return the three timings and the server's version."""
    backend_class = BACKEND_CLASSES[kind]
    engine = create_engine(
        backend_class.admin_url(backend_class.normalize_url(url)), isolation_level="AUTOCOMMIT"
    )
    backend = backend_class(url)
    login = Login(BARE_LOGIN_NAME, generate_password())
    quoted = engine.dialect.identifier_preparer.quote_identifier(BARE_NAME)
    http, bare, bare_login = Phases([], []), Phases([], []), Phases([], [])
    client = Client(port)
    try:
        client.log_in()
        backend.drop_database(login.name, login.name, registered=True)  # left by an aborted run
        with engine.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted}")  # left by an aborted run
            version = ".".join(str(part) for part in connection.dialect.server_version_info)
            runs: list[tuple[Phases, Callable[[int], tuple[float, float]]]] = [
                (http, lambda i: http_create_drop(client, kind, f"bench_{os.getpid()}_{i}")),
                (bare, lambda i: bare_create_drop(connection, quoted)),
                (bare_login, lambda i: backend_create_drop(backend, login)),
            ]
            for i in range(WARMUP_ITERATIONS + iterations):
                # Alternate the order, so that HTTP does not always come first or last.
                for phases, run in runs if i % 2 == 0 else reversed(runs):
                    timings = run(i)
                    if i >= WARMUP_ITERATIONS:
                        phases.add(*timings)
    finally:
        client.close()
        backend.dispose()
        engine.dispose()
    return http, bare, bare_login, version


# -- request rates ------------------------------------------------------------------


def request_rate(port: int, path: str, requests: int, threads: int) -> float:
    """Requests per second of ``requests`` GETs of ``path`` over ``threads`` keep-alive clients."""
    per_thread = requests // threads
    ready = threading.Barrier(threads + 1)
    failures: list[BaseException] = []

    def worker(client: Client) -> None:
        ready.wait()
        try:
            for _ in range(per_thread):
                client.get(path)
        except BaseException as error:  # reported by the main thread
            failures.append(error)

    clients = [Client(port) for _ in range(threads)]
    try:
        for client in clients:  # here, untimed, where a failed login stops the run at once
            client.log_in()
        workers = [threading.Thread(target=worker, args=(client,)) for client in clients]
        for thread in workers:
            thread.start()
        ready.wait()
        start = time.perf_counter()
        for thread in workers:
            thread.join()
        elapsed = time.perf_counter() - start
    finally:
        for client in clients:
            client.close()
    if failures:
        raise RuntimeError(f"GET {path} failed: {failures[0]}") from failures[0]
    return per_thread * threads / elapsed


def measure_rates(port: int, requests: int, threads: int) -> dict[str, float]:
    """Median rate per path over interleaved rounds: trivial, each list, trivial, each list..."""
    paths = {"trivial": TRIVIAL_PATH}
    paths.update({kind: f"/dbi/list?db_type={kind}" for kind in DB_TYPES})
    request_rate(port, TRIVIAL_PATH, threads * 10, threads)  # warm-up
    rounds: dict[str, list[float]] = {key: [] for key in paths}
    for _ in range(RATE_ROUNDS):
        for key, path in paths.items():
            rounds[key].append(request_rate(port, path, requests, threads))
    return {key: statistics.median(rates) for key, rates in rounds.items()}


# -- the report ---------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def print_report(results: dict[str, EngineResult], trivial_rate: float, args: argparse.Namespace) -> None:
    print(
        f"\nMedians of {args.iterations} iterations (after {WARMUP_ITERATIONS} warm-up), HTTP and "
        f"bare alternating; rates: median of {RATE_ROUNDS} rounds of {args.requests} requests "
        f"over {args.threads} keep-alive clients.\n"
    )
    kinds = list(results)
    print(f"{'':28}" + "".join(f"{kind:>14}" for kind in kinds))
    print(f"{'server version':28}" + "".join(f"{results[kind].server_version:>14}" for kind in kinds))
    rows: list[tuple[str, Callable[[EngineResult], float], str]] = [
        ("HTTP create (ms)", lambda r: r.http.medians_ms()[0], ".2f"),
        ("bare create (ms)", lambda r: r.bare.medians_ms()[0], ".2f"),
        ("  ratio", lambda r: r.http.medians_ms()[0] / r.bare.medians_ms()[0], ".2f"),
        ("bare create+login (ms)", lambda r: r.bare_login.medians_ms()[0], ".2f"),
        ("HTTP create+drop (ms)", lambda r: r.http.medians_ms()[1], ".2f"),
        ("bare create+drop (ms)", lambda r: r.bare.medians_ms()[1], ".2f"),
        ("  ratio", lambda r: r.http.medians_ms()[1] / r.bare.medians_ms()[1], ".2f"),
        ("bare create+login+drop (ms)", lambda r: r.bare_login.medians_ms()[1], ".2f"),
        ("list (req/s)", lambda r: r.list_rate, ".0f"),
        ("trivial (req/s)", lambda r: trivial_rate, ".0f"),
        ("  ratio", lambda r: r.list_rate / trivial_rate, ".2f"),
    ]
    for label, value, spec in rows:
        print(f"{label:28}" + "".join(f"{value(results[kind]):>14{spec}}" for kind in kinds))

    pg, my = results["postgres"], results["mysql"]
    pg_ratio = pg.http.medians_ms()[0] / pg.bare.medians_ms()[0]
    my_ms = my.http.medians_ms()[1]
    targets = [
        (f"PostgreSQL HTTP create <= {PG_CREATE_RATIO_MAX}x bare create", f"{pg_ratio:.2f}x",
         pg_ratio <= PG_CREATE_RATIO_MAX),
        (f"MySQL HTTP create+drop median < {MYSQL_CREATE_DROP_MS_MAX:g} ms", f"{my_ms:.2f} ms",
         my_ms < MYSQL_CREATE_DROP_MS_MAX),
    ]
    for kind, result in results.items():
        ratio = result.list_rate / trivial_rate
        targets.append(
            (f"{kind} list rate >= {LIST_RATE_RATIO_MIN}x trivial rate", f"{ratio:.2f}x",
             ratio >= LIST_RATE_RATIO_MIN)
        )
    print("\nTargets")
    for label, measured, ok in targets:
        print(f"  {label:48}{measured:>10}  {verdict(ok)}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=30, help="timed create/drop iterations per engine")
    parser.add_argument("--requests", type=int, default=2000, help="requests per rate round")
    parser.add_argument("--threads", type=int, default=4, help="client threads for the rates")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    with ExitStack() as stack:
        urls = server_urls(stack)
        stack.callback(cherrypy.engine.exit)
        port, _ = start_service(urls)
        timings = {kind: measure_create(port, kind, urls[kind], args.iterations) for kind in DB_TYPES}
        rates = measure_rates(port, args.requests, args.threads)
    results = {
        kind: EngineResult(http, bare, bare_login, rates[kind], version)
        for kind, (http, bare, bare_login, version) in timings.items()
    }
    print_report(results, rates["trivial"], args)


if __name__ == "__main__":
    main()
