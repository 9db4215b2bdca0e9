"""Fixtures: real servers, the real service over HTTP, and a check that both engines ran.

Every test that takes ``db_type`` runs once against PostgreSQL and once
against MySQL/MariaDB. ``--require-backends=postgres,mysql`` (the README's
test command passes it) turns "an engine's tests did not run" into a failure.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import cherrypy
import platformdirs
import pytest
import requests
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.pool import NullPool

from dbwrapper.accounts import Actor
from dbwrapper.backends import BACKEND_CLASSES
from dbwrapper.backends.base import Login
from dbwrapper.config import Settings
from dbwrapper.embedded import ROOT_DATA_DIR
from dbwrapper.registry import AuditEntry
from dbwrapper.runtime import INSTRUCTOR_PASSWORD_VARIABLE, Runtime
from dbwrapper.service import Outcome
from dbwrapper.web.app import mount, server_config
from tests.servers import SERVERS, free_port, older_postgres_server, throwaway_mariadb
from tests.tcpproxy import TcpProxy, target_of

BACKENDS = ("postgres", "mysql")
_passed: Counter[str] = Counter()


# -- making sure both engines really ran ------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--require-backends",
        default="",
        help="comma-separated engines whose tests must have run and passed (postgres,mysql)",
    )


def _backend_of(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "db_type" in callspec.params:
        return callspec.params["db_type"]
    marker = item.get_closest_marker("backend")
    return marker.args[0] if marker else None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "backend(name): the test exercises only this engine")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    report = yield
    if report.when == "call" and report.passed and (backend := _backend_of(item)):
        _passed[backend] += 1
    return report


# -- making sure nothing is written outside temporary directories ------------------------

#: Where dbwrapper keeps its files when nothing says otherwise (archives, the embedded server's
#: data, lock files: see dbwrapper.embedded.service_data_dir), for root and for this user. The
#: tests run as root too, where these are writable: a test that forgets to name a temporary
#: directory (a Settings without archive_dir, a command without DBWRAPPER_ARCHIVE_DIR) lands here.
DEFAULT_DIRECTORIES = (ROOT_DATA_DIR.parent, Path(platformdirs.user_data_dir("dbwrapper")))
#: How deep they are looked at: each one, what it holds and what that holds (archives/postgres),
#: not each database's archives, which others' test runs on this machine may add to.
DEFAULT_DIRECTORY_DEPTH = 2
_defaults_seen: set[Path] = set()
_written_outside_tmp: list[tuple[str, list[Path]]] = []


def _in_default_directories() -> set[Path]:
    """What the default directories hold now, down to DEFAULT_DIRECTORY_DEPTH."""
    found: set[Path] = set()
    level = [directory for directory in DEFAULT_DIRECTORIES if directory.exists()]
    for _ in range(DEFAULT_DIRECTORY_DEPTH + 1):
        found.update(level)
        level = [child for path in level if path.is_dir() for child in path.iterdir()]
    return found


def pytest_sessionstart(session: pytest.Session) -> None:
    _defaults_seen.update(_in_default_directories())


def pytest_runtest_logfinish(nodeid: str, location: tuple[str, int | None, str]) -> None:
    # After each test and its teardown, so that the failure can name the test that wrote.
    if new := _in_default_directories() - _defaults_seen:
        _written_outside_tmp.append((nodeid, sorted(new)))
        _defaults_seen.update(new)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    writer = session.config.get_terminal_writer()
    for nodeid, paths in _written_outside_tmp:
        writer.line()
        writer.line(f"FAILED: {nodeid} wrote outside its temporary directories: "
                    f"{', '.join(map(str, paths))}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    required = [b for b in session.config.getoption("--require-backends").split(",") if b]
    missing = [b for b in required if not _passed[b]]
    if missing:
        writer.line()
        writer.line(
            f"FAILED: no test passed against: {', '.join(missing)} (--require-backends)", red=True
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# -- servers ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def server_urls() -> Iterator[dict[str, str]]:
    """Super-user URLs of one PostgreSQL and one MySQL/MariaDB server."""
    with SERVERS["postgres"]() as postgres, SERVERS["mysql"]() as mysql:
        yield {"postgres": postgres, "mysql": mysql}


@pytest.fixture(scope="session")
def older_postgres_url() -> Iterator[str]:
    """Super-user URL of a PostgreSQL older than the wheel's tools (see servers.older_postgres_server)."""
    with older_postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def mysql_with_symbolic_links() -> Iterator[str]:
    """Super-user URL of a throwaway MariaDB with symbolic links on, as dbwrapper warns about
    (the tests' own server runs without them: see servers.mysql_server)."""
    with throwaway_mariadb("--symbolic-links") as url:
        yield url


@pytest.fixture(params=BACKENDS)
def db_type(request: pytest.FixtureRequest) -> str:
    """Run the test once per engine."""
    return request.param


@pytest.fixture
def server_url(server_urls: dict[str, str], db_type: str) -> str:
    return server_urls[db_type]


@pytest.fixture
def proxy(server_url: str) -> Iterator[TcpProxy]:
    """A forwarder to the ``db_type`` server that the test can cut or make hang (tests/tcpproxy.py)."""
    forwarder = TcpProxy(target_of(server_url))
    forwarder.start()
    yield forwarder
    forwarder.stop()


@pytest.fixture(scope="session")
def admin(server_urls: dict[str, str]) -> Iterator[dict[str, Engine]]:
    """Super-user AUTOCOMMIT engines of our own, to check and clean up independently of dbwrapper."""
    engines = {}
    for kind, url in server_urls.items():
        backend = BACKEND_CLASSES[kind]
        engines[kind] = create_engine(
            backend.admin_url(backend.normalize_url(url)), isolation_level="AUTOCOMMIT"
        )
    yield engines
    for engine in engines.values():
        engine.dispose()


@pytest.fixture(scope="session")
def catalog(admin: dict[str, Engine]) -> Callable[[str], set[str]]:
    """``catalog(db_type)``: the database names on that server, as the server lists them."""
    queries = {
        "postgres": "SELECT datname FROM pg_database",
        "mysql": "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA",
    }

    def names(kind: str) -> set[str]:
        with admin[kind].connect() as connection:
            return set(connection.execute(text(queries[kind])).scalars())

    return names


@pytest.fixture(scope="session")
def look_inside(server_urls: dict[str, str]) -> Callable[[str, str], AbstractContextManager[Connection]]:
    """``look_inside(db_type, name)``: the tests' own super-user, in one database, to check
    what it holds independently of dbwrapper (which never connects into a trainee's database
    as the super-user). A connection of its own, closed afterwards: PostgreSQL copies no
    database with a session on it."""

    @contextmanager
    def connect(kind: str, name: str) -> Iterator[Connection]:
        backend = BACKEND_CLASSES[kind]
        url = backend.normalize_url(server_urls[kind]).set(database=name)
        engine = create_engine(url, poolclass=NullPool)
        try:
            with engine.begin() as connection:
                yield connection
        finally:
            engine.dispose()

    return connect


@pytest.fixture
def as_owner(runtime: Runtime) -> Callable[[str, str], AbstractContextManager[Connection]]:
    """``as_owner(db_type, name)``: a transaction in a managed database as its own login, the
    way its trainee works in it (so what a test puts there is the owner's, as in class)."""

    @contextmanager
    def connect(kind: str, name: str) -> Iterator[Connection]:
        with runtime.servers.backend(kind).as_owner(name, login_of(runtime, kind, name)) as connection:
            with connection.begin():
                yield connection

    return connect


def remove_users(runtime: Runtime, names: list[str]) -> None:
    """Remove the users a test made (a class's trainees, made perhaps by another process), with
    their databases, through the service."""
    runtime.accounts.registry.refresh()
    instructor = Actor(runtime.accounts.get(INSTRUCTOR), via="tests")
    for name in names:
        user = runtime.accounts.registry.user(name)
        if user is None:
            continue
        for db in runtime.accounts.registry.databases(owner=user):
            runtime.service.destroy(instructor, db.db_type, db.name)
        runtime.accounts.remove(name, by="tests")


def login_of(runtime: Runtime, db_type: str, name: str) -> Login:
    """The login the registry keeps for a managed database."""
    record = runtime.service.registry.database(db_type, name)
    assert record is not None, f"{name} is not a managed database"
    return Login(record.login, record.password)


def audit_of(runtime: Runtime, target: str) -> list[AuditEntry]:
    """The audit log's entries about ``target`` only (``postgres:t_0123``, a user's name),
    newest first: the registry is the whole session's, and other tests' entries never count."""
    return [entry for entry in runtime.service.registry.audit_entries(limit=100_000) if entry.target == target]


def audit_rows(page: str, target: str) -> list[set[str]]:
    """The rows of the audit page about ``target``, each as the set of its cells' text (when,
    who, action, on, outcome, detail): what the page says of that target, and of nothing else."""
    rows = []
    for row in re.findall(r"<tr\b[^>]*>(.*?)</tr>", page, re.S):
        cells = {html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
                 for cell in re.findall(r"<td\b[^>]*>(.*?)</td>", row, re.S)}
        if target in cells:
            rows.append(cells)
    return rows


@pytest.fixture
def rows(runtime: Runtime, look_inside) -> Callable[[str, str], dict[str, int]]:
    """``rows(db_type, name)``: rows per table, counted as the database's own login when it is a
    managed database (as a restore checks them), else by the tests' own super-user (snapshots)."""

    def count(kind: str, name: str) -> dict[str, int]:
        backend = runtime.servers.backend(kind)
        if runtime.service.registry.database(kind, name) is not None:
            return backend.catalog.table_counts(name, login_of(runtime, kind, name))
        with look_inside(kind, name) as connection:
            return backend.catalog.count_rows(connection)

    return count


class DatabaseJanitor:
    """One database of one test, made and removed through the service as its users would.

    As pytest-postgresql's ``DatabaseJanitor``, but through dbwrapper rather than behind its
    back: :meth:`init` creates the database with ``runtime.service.create``, :meth:`drop`
    destroys it with ``runtime.service.destroy`` and then checks that neither the registry nor
    the server still holds it. Used as a context manager it does both. A database left on the
    server that the registry does not know of is dropped here by the tests' own super-user, so
    that the next test starts clean, and reported as the failure it is.
    """

    def __init__(
        self, *, runtime: Runtime, actor: Actor, db_type: str, name: str,
        catalog: Callable[[str], set[str]], admin: Engine,
    ) -> None:
        self.runtime = runtime
        self.actor = actor
        self.db_type = db_type
        self.name = name
        self.catalog = catalog
        self.admin = admin

    def init(self, *, course: str | None = None) -> Outcome:
        """Create the database through the service (from ``course``, if given); check the
        registry holds it."""
        outcome = self.runtime.service.create(self.actor, self.db_type, self.name, course=course)
        assert outcome.changed, outcome.summary
        assert self.runtime.service.registry.database(self.db_type, self.name) is not None
        return outcome

    def drop(self) -> None:
        """Destroy the database through the service if the registry holds it; then check that
        neither the registry nor the server holds it any more."""
        registry = self.runtime.service.registry
        if registry.database(self.db_type, self.name) is not None:
            self.runtime.service.destroy(self.actor, self.db_type, self.name)
            assert registry.database(self.db_type, self.name) is None, (
                f"{self.db_type}:{self.name} is still in the registry after the service destroyed it"
            )
        if self.name in self.catalog(self.db_type):
            self._drop_behind_the_services_back()
            pytest.fail(
                f"{self.db_type}:{self.name} was left on the server and the registry does not know "
                "of it: a test that makes a database behind the service's back removes it itself "
                "(see unmanaged_name)."
            )

    def _drop_behind_the_services_back(self) -> None:
        with self.admin.connect() as connection:
            # No session may stay on a database that is dropped: PostgreSQL ends them (FORCE).
            force = " WITH (FORCE)" if self.db_type == "postgres" else ""
            quoted = self.admin.dialect.identifier_preparer.quote_identifier(self.name)
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted}{force}")

    def __enter__(self) -> DatabaseJanitor:
        self.init()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.drop()


def wait_for(check, within: float, pause: float = 0.2):
    """``check()``'s first true answer within ``within`` seconds, or its last false one."""
    deadline = time.monotonic() + within
    while not (found := check()) and time.monotonic() < deadline:
        time.sleep(pause)
    return found


def fresh_name() -> str:
    """A database name nobody has: ``t_<12 hex digits>``."""
    return f"t_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def janitor(
    runtime: Runtime, db_type: str, catalog: Callable[[str], set[str]], admin: dict[str, Engine]
) -> Iterator[DatabaseJanitor]:
    """A :class:`DatabaseJanitor` for a fresh name, by the first instructor; the test creates
    the database (through the service or its pages), the janitor destroys it afterwards
    through the service and checks the registry and the server no longer hold it."""
    actor = Actor(runtime.accounts.get(INSTRUCTOR), via="tests")
    janitor = DatabaseJanitor(
        runtime=runtime, actor=actor, db_type=db_type, name=fresh_name(), catalog=catalog,
        admin=admin[db_type],
    )
    yield janitor
    janitor.drop()


@pytest.fixture
def db_name(janitor: DatabaseJanitor) -> str:
    """A fresh database name for one test, for the service to make: see :func:`janitor`."""
    return janitor.name


@pytest.fixture
def managed_db(janitor: DatabaseJanitor) -> str:
    """A database the first instructor made through the service, destroyed through it afterwards."""
    janitor.init()
    return janitor.name


@pytest.fixture
def unmanaged_name(db_type: str, admin: dict[str, Engine]) -> Iterator[str]:
    """A fresh name for a database a test makes behind the service's back on purpose (someone
    else's, made by hand; a backend's own calls): dropped afterwards by the tests' own
    super-user, as the service would refuse to."""
    name = fresh_name()
    yield name
    engine = admin[db_type]
    with engine.connect() as connection:
        force = " WITH (FORCE)" if db_type == "postgres" else ""
        quoted = engine.dialect.identifier_preparer.quote_identifier(name)
        connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted}{force}")


# -- the service -------------------------------------------------------------------------

INSTRUCTOR = "cwcuser"
INSTRUCTOR_PASSWORD = "instructor-password"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
#: The hidden fields of a form, as the confirmation of a roster has them.
CONFIRMATION_FIELD = re.compile(r'<input type="hidden" name="(course|db_type|trainees)" value="([^"]*)">')


@pytest.fixture(scope="session")
def settings(server_urls: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Settings:
    archives = tmp_path_factory.mktemp("archives")
    # The expiry job's own runs are tested with their own Monitor; the service's must not
    # purge, in the middle of a test, a database that test made due. Likewise the pool's
    # tests fill it themselves (tests/test_copies.py), so the service keeps no spares.
    return Settings(
        port=free_port(), backend_urls=server_urls, embedded=False, archive_dir=archives,
        expiry_check_seconds=24 * 3600, pool_size=0,
    )


@pytest.fixture(scope="session")
def runtime(settings: Settings) -> Iterator[Runtime]:
    """The real service, in this process, on a free port; its registry on the test PostgreSQL."""
    os.environ[INSTRUCTOR_PASSWORD_VARIABLE] = INSTRUCTOR_PASSWORD
    cherrypy.config.update({**server_config(settings), "log.screen": False})
    runtime = mount(settings)
    cherrypy.engine.start()
    yield runtime
    cherrypy.engine.exit()
    cherrypy.tree.apps.clear()


@pytest.fixture(scope="session")
def base_url(runtime: Runtime, settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.port}"


class Browser(requests.Session):
    """A browser on the service: logs in, sends each form's CSRF token, and checks
    that no page ever shows a traceback."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url
        self.csrf = ""

    def request(self, method: str, url: str, *args, **kwargs) -> requests.Response:  # type: ignore[override]
        if method.upper() == "POST" and self.csrf:
            kwargs["data"] = {"csrf_token": self.csrf, **(kwargs.get("data") or {})}
        response = super().request(method, self.base_url + url, *args, timeout=60, **kwargs)
        assert "Traceback" not in response.text, response.text
        if found := CSRF.search(response.text):
            self.csrf = found.group(1)
        return response

    def log_in(self, name: str, password: str) -> requests.Response:
        self.get("/login")
        return self.post("/login", data={"name": name, "password": password})

    def read_roster(self, roster: str, *, db_type: str) -> requests.Response:
        """Upload ``roster`` (CSV text) on the Classes form for the franchise course: the page
        that asks to confirm the names it read."""
        return self.post(
            "/classes/provision", data={"course": "franchise", "db_type": db_type},
            files={"roster": ("roster.csv", roster, "text/csv")},
        )

    def start_class(self, roster: str, *, db_type: str) -> requests.Response:
        """Upload ``roster`` and press the confirmation's button, as it stands: the progress page."""
        confirmation = self.read_roster(roster, db_type=db_type)
        assert confirmation.status_code == 200, confirmation.text
        form = dict(CONFIRMATION_FIELD.findall(confirmation.text.partition('action="/classes/start"')[2]))
        started = self.post("/classes/start", data={name: html.unescape(value) for name, value in form.items()})
        assert started.status_code == 200 and "/classes/status?job=" in started.url, started.text
        return started

    def provision_class(
        self, roster: str, *, db_type: str, within: float,
    ) -> tuple[requests.Response, requests.Response, str]:
        """Send ``roster`` (CSV text) to the Classes page for the franchise course, confirm the
        names it shows, and follow its progress page for at most ``within`` seconds: the first
        progress page, the last one, and its path."""
        started = self.start_class(roster, db_type=db_type)
        status_url = started.url.removeprefix(self.base_url)
        deadline = time.monotonic() + within
        page = started
        while "provisioned," not in page.text and time.monotonic() < deadline:
            time.sleep(0.2)
            page = self.get(status_url)
        return started, page, status_url


@pytest.fixture
def anonymous(base_url: str) -> Iterator[Browser]:
    """A browser nobody has logged in with."""
    with Browser(base_url) as session:
        yield session


@pytest.fixture
def browser(base_url: str) -> Iterator[Browser]:
    """The first instructor, logged in."""
    with Browser(base_url) as session:
        assert session.log_in(INSTRUCTOR, INSTRUCTOR_PASSWORD).status_code == 200
        yield session


@pytest.fixture
def trainee(
    base_url: str, runtime: Runtime, catalog: Callable[[str], set[str]],
) -> Iterator[Callable[..., Browser]]:
    """``trainee(quota=1)``: a new trainee account, logged in; removed afterwards with its databases,
    through the service, which is then checked to have left none of them on the servers."""
    made: list[tuple[str, Browser]] = []

    def make(quota: int = 1) -> Browser:
        name = f"tr_{uuid.uuid4().hex[:8]}"
        _, password = runtime.accounts.add(name, "trainee", quota=quota, by="tests")
        session = Browser(base_url)
        assert session.log_in(name, password).status_code == 200
        session.user_name = name  # type: ignore[attr-defined]
        session.password = password  # type: ignore[attr-defined]
        made.append((name, session))
        return session

    yield make
    instructor = Actor(runtime.accounts.get(INSTRUCTOR), via="tests")
    for name, session in made:
        user = runtime.accounts.registry.user(name)
        if user is None:  # a test removed them itself
            continue
        owned = runtime.accounts.registry.databases(owner=user)
        for db in owned:
            runtime.service.destroy(instructor, db.db_type, db.name)
        left = [f"{db.db_type}:{db.name}" for db in owned if db.name in catalog(db.db_type)]
        assert left == [], f"the service's destroy left {left} on the servers"
        runtime.accounts.remove(name, by="tests")
        session.close()


@pytest.fixture
def instructor(runtime: Runtime) -> Actor:
    """The first instructor, as the service layer knows them (no browser)."""
    return Actor(runtime.accounts.get(INSTRUCTOR), via="tests")


@pytest.fixture
def my_name(settings: Settings) -> str:
    """The database name the service gives the first instructor: cwcuser_<port>."""
    return f"{INSTRUCTOR}_{settings.port}"


# -- the command line ------------------------------------------------------------------


@pytest.fixture
def cli(server_urls: dict[str, str], runtime: Runtime) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``dbwrapper ARGS`` as a user would, configured by the environment, on the
    same registry as the service (so the first instructor exists)."""
    env = {
        **os.environ,
        "DBWRAPPER_POSTGRES_URL": server_urls["postgres"],
        "DBWRAPPER_MYSQL_URL": server_urls["mysql"],
        "DBWRAPPER_ARCHIVE_DIR": str(runtime.archives.directory),
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "dbwrapper", *args],
            env=env, capture_output=True, text=True, timeout=120,
            cwd=Path(__file__).parent,  # no app.conf there: defaults plus the environment
        )

    return run
