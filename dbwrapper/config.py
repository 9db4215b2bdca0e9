"""Settings: ``app.conf`` first, then the environment, then the command line.

``app.conf`` is a CherryPy config file (INI sections, Python values). Its
``[global]`` section configures the CherryPy server, its ``[dbwrapper]``
section configures this application, and any ``[/path]`` section is handed to
CherryPy with the mounted application. The environment variables
``DBWRAPPER_POSTGRES_URL`` and ``DBWRAPPER_MYSQL_URL`` override the backends'
URLs so that secrets need not live in a file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cherrypy.lib.reprconf import Parser

from dbwrapper.errors import InvalidInput

DB_TYPES = ("postgres", "mysql")
#: The engines' tools dbwrapper runs, each configurable in [dbwrapper] by its name.
TOOLS = ("pg_dump", "pg_restore", "psql", "mysqldump", "mysql")
DEFAULT_NAME_TEMPLATE = "%(user)s_%(port)s"
#: The first instructor's name; with the default template their database is cwcuser_7001.
DEFAULT_FIRST_INSTRUCTOR = "cwcuser"
#: The control database the registry lives in, on the PostgreSQL backend, by default.
CONTROL_DATABASE = "dbwrapper"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7001
#: The embedded PostgreSQL's TCP port: not 5432, which a system PostgreSQL may hold (nor 5433,
#: a second Debian cluster's, or 6432, PgBouncer's), and below the ports the system hands out
#: for outgoing connections.
DEFAULT_EMBEDDED_PORT = 7432
#: How many connections each database's own login may hold at once.
DEFAULT_LOGIN_CONNECTION_LIMIT = 10
#: Seconds a call to a database server may take: connecting, a statement, a commit, a ping.
SHORT_DEADLINE_SECONDS = 10.0
#: Seconds for what copies or counts data on the server, and for the engines' own tools.
LONG_DEADLINE_SECONDS = 600.0
#: Requests at work or waiting on one server at once: a class of 30 creating its databases
#: together, with its instructor and the background jobs (see dbwrapper.gates).
REQUESTS_PER_SERVER = 40
#: Requests one user may have at work at once, whatever their sessions: far fewer than a
#: server's bound, so that no user fills it alone (see dbwrapper.accounts.UserRequests).
REQUESTS_PER_USER = 8


def env_var(db_type: str) -> str:
    """The environment variable that configures backend ``db_type``."""
    return f"DBWRAPPER_{db_type.upper()}_URL"


@dataclass(frozen=True)
class Settings:
    """Everything the service needs to know to start, resolved once."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    name_template: str = DEFAULT_NAME_TEMPLATE
    #: Super-user URL per configured ``db_type``; a db_type absent here is not offered,
    #: except PostgreSQL, which falls back to the embedded server when ``embedded`` is on.
    backend_urls: Mapping[str, str] = field(default_factory=dict)
    #: The registry's SQLAlchemy URL; empty means database ``dbwrapper`` on the PostgreSQL backend.
    control_url: str = ""
    #: The instructor made on the first start.
    first_instructor: str = DEFAULT_FIRST_INSTRUCTOR
    #: How many databases a new trainee may own.
    default_quota: int = 1
    #: Where archives go; ``None`` means ``archives`` in the per-user data directory.
    archive_dir: Path | None = None
    #: Paths of the dump and restore tools, by tool name, where PATH would not find them.
    tools: Mapping[str, str] = field(default_factory=dict)
    #: How long a new database lives before the expiry job purges it; 0: for ever.
    lifetime_hours: float = 14 * 24
    #: Archive an expired database before dropping it (and keep it if that fails).
    archive_on_expiry: bool = True
    #: How often the expiry job looks for expired databases.
    expiry_check_seconds: float = 60
    #: Ready copies of each course kept per engine, so a seeded database is a rename (0: none),
    #: and how often the background job tops them up.
    pool_size: int = 2
    pool_check_seconds: float = 5
    #: How many snapshots a trainee may keep, over all their databases.
    snapshot_quota: int = 5
    #: How many archives a trainee may keep.
    archive_quota: int = 10
    #: How many connections each database's own login may hold at once, so that one
    #: trainee's runaway script cannot take a shared server's connections from the others.
    login_connection_limit: int = DEFAULT_LOGIN_CONNECTION_LIMIT
    #: Every call to a database server has a deadline (see dbwrapper.db): a server that does
    #: not answer within it counts as hung, a 503 that names it. The long one is for the few
    #: statements that copy or count data on the server, and for pg_dump, mysqldump and the rest.
    short_deadline_seconds: float = SHORT_DEADLINE_SECONDS
    long_deadline_seconds: float = LONG_DEADLINE_SECONDS
    #: How many requests may be at work or waiting on one server at once; past it, a 503 at
    #: once. Below server.thread_pool, so that a hung server never holds every thread.
    requests_per_server: int = REQUESTS_PER_SERVER
    #: How many requests one trainee may have at work at once (past it, a 429 for them).
    requests_per_user: int = REQUESTS_PER_USER
    #: How long the API keeps the first response to a request with an Idempotency-Key.
    idempotency_hours: float = 24
    #: The most operations one ``POST /api/v1/batch`` may carry.
    batch_limit: int = 100
    #: The SQL console's limits on a shared server: how long one statement may run (the
    #: server stops it), how many rows of a result are shown, how many bytes of text a run's
    #: results may hold in all.
    console_statement_seconds: float = 5
    console_rows: int = 1000
    console_result_bytes: int = 1_000_000
    #: Start an embedded PostgreSQL when no PostgreSQL URL is configured.
    embedded: bool = True
    #: Where the embedded PostgreSQL keeps its data; ``None`` means the per-user default.
    embedded_dir: Path | None = None
    #: The embedded PostgreSQL's TCP port, the same at every start.
    embedded_port: int = DEFAULT_EMBEDDED_PORT
    #: ``[global]`` of app.conf, for ``cherrypy.config.update``.
    server_config: Mapping[str, Any] = field(default_factory=dict)
    #: The ``[/path]`` sections of app.conf, for ``cherrypy.tree.mount``.
    app_config: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def with_server(self, host: str | None = None, port: int | None = None) -> Settings:
        """A copy with the listening address overridden (the command line's ``--host/--port``)."""
        return replace(self, host=host or self.host, port=port or self.port)


def load_settings(path: Path | None = None, environ: Mapping[str, str] = os.environ) -> Settings:
    """Read ``path`` (or ``./app.conf`` when it exists) and apply the environment."""
    if path is None:
        candidate = Path("app.conf")
        path = candidate if candidate.is_file() else None
    sections: dict[str, dict[str, Any]] = {}
    if path is not None:
        parser = Parser()
        try:
            parser.read(str(path))
            # raw: configparser would otherwise try to fill name_template's %(port)s itself.
            sections = parser.as_dict(raw=True)
        except OSError as error:
            raise InvalidInput(f"Cannot read the config file {path}: {error.strerror}.") from error
        except Exception as error:  # reprconf raises ValueError and friends on bad values
            raise InvalidInput(f"The config file {path} is not valid: {error}") from error

    server = dict(sections.get("global", {}))
    own = sections.get("dbwrapper", {})
    urls = {db_type: own.get(f"{db_type}_url") or "" for db_type in DB_TYPES}
    for db_type in DB_TYPES:
        urls[db_type] = environ.get(env_var(db_type), urls[db_type])
    data_dir = environ.get("DBWRAPPER_DATA_DIR") or own.get("embedded_dir") or None
    archive_dir = environ.get("DBWRAPPER_ARCHIVE_DIR") or own.get("archive_dir") or None

    return Settings(
        host=server.pop("server.socket_host", DEFAULT_HOST),
        port=int(server.pop("server.socket_port", DEFAULT_PORT)),
        name_template=own.get("name_template", DEFAULT_NAME_TEMPLATE),
        backend_urls={db_type: url for db_type, url in urls.items() if url},
        control_url=environ.get("DBWRAPPER_CONTROL_URL") or own.get("control_url") or "",
        first_instructor=own.get("first_instructor", DEFAULT_FIRST_INSTRUCTOR),
        default_quota=int(own.get("default_quota", 1)),
        embedded=bool(own.get("embedded", True)),
        pool_size=int(own.get("pool_size", 2)),
        pool_check_seconds=float(own.get("pool_check_seconds", 5)),
        snapshot_quota=int(own.get("snapshot_quota", 5)),
        archive_quota=int(own.get("archive_quota", 10)),
        login_connection_limit=connection_limit(own.get("login_connection_limit", DEFAULT_LOGIN_CONNECTION_LIMIT)),
        short_deadline_seconds=positive(own, "short_deadline_seconds", SHORT_DEADLINE_SECONDS),
        long_deadline_seconds=positive(own, "long_deadline_seconds", LONG_DEADLINE_SECONDS),
        requests_per_server=int(positive(own, "requests_per_server", REQUESTS_PER_SERVER)),
        requests_per_user=int(positive(own, "requests_per_user", REQUESTS_PER_USER)),
        archive_dir=Path(archive_dir).expanduser() if archive_dir else None,
        tools={tool: own[tool] for tool in TOOLS if own.get(tool)},
        lifetime_hours=float(own.get("lifetime_hours", 14 * 24)),
        archive_on_expiry=bool(own.get("archive_on_expiry", True)),
        expiry_check_seconds=float(own.get("expiry_check_seconds", 60)),
        idempotency_hours=positive(own, "idempotency_hours", 24),
        batch_limit=int(positive(own, "batch_limit", 100)),
        console_statement_seconds=positive(own, "console_statement_seconds", 5),
        console_rows=int(positive(own, "console_rows", 1000)),
        console_result_bytes=int(positive(own, "console_result_bytes", 1_000_000)),
        embedded_dir=Path(data_dir).expanduser() if data_dir else None,
        embedded_port=int(own.get("embedded_port", DEFAULT_EMBEDDED_PORT)),
        server_config=server,
        app_config={key: value for key, value in sections.items() if key.startswith("/")},
    )


def connection_limit(value: Any) -> int:
    """``login_connection_limit`` as app.conf gives it: a whole number, at least 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput(f"login_connection_limit is a whole number of connections, at least 1, not {value!r}.")
    return value


def positive(section: Mapping[str, Any], key: str, default: float) -> float:
    """``section[key]`` as a number above zero (``default`` when absent), or a 400 naming it."""
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise InvalidInput(f"{key} in app.conf must be a number above 0, not {value!r}.")
    return float(value)
