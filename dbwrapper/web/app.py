"""Wire the CherryPy application: the root, its config, tools, error pages and the plugin."""

from __future__ import annotations

import html
from typing import Any

import cherrypy
from cherrypy.process.plugins import Monitor

from dbwrapper.config import Settings
from dbwrapper.errors import DbWrapperError, InvalidInput
from dbwrapper.formatting import Templates
from dbwrapper.runtime import Runtime
from dbwrapper.web.api import api_config, install_api_tools
from dbwrapper.web.auth import SECURITY_HEADERS, install_tools
from dbwrapper.web.controllers import Root
from dbwrapper.web.pages import Pages
from dbwrapper.web.plugin import RuntimePlugin
from dbwrapper.web.sessions import RegistrySession

#: Minutes a login lasts without being used.
SESSION_MINUTES = 8 * 60

#: CherryPy's request threads. A hung database server holds at most requests_per_server
#: of them (40) for a deadline, its gate sends the rest away at once (dbwrapper.gates):
#: 20 stay for the login page, static files and the other server, and a class of 30
#: creating its databases together still fits under one server's bound.
THREAD_POOL = 60


def server_config(settings: Settings) -> dict[str, Any]:
    """The ``[global]`` settings: ours first, then app.conf's, then the listening address."""
    return {
        "engine.autoreload.on": False,
        "request.show_tracebacks": False,
        "log.screen": True,
        "server.thread_pool": THREAD_POOL,
        **settings.server_config,
        "server.socket_host": settings.host,
        "server.socket_port": settings.port,
    }


def mount(settings: Settings, runtime: Runtime | None = None) -> Runtime:
    """Mount the application at ``/`` and subscribe its runtime to the CherryPy engine."""
    runtime = runtime or Runtime(settings)
    RuntimePlugin(cherrypy.engine, runtime).subscribe()
    # The periodic jobs, each in one process at a time. Monitor quits on an exception,
    # which an exclusive job never raises.
    for name, seconds, job in runtime.jobs():
        Monitor(cherrypy.engine, runtime.exclusive(name, job), frequency=seconds, name=f"dbwrapper {name}").subscribe()
    install_tools(runtime.accounts)
    install_api_tools()
    templates = Templates()

    def error_page(status: str, message: str, traceback: str, version: str) -> str:
        # The traceback stays in the server log; a page shows only the message.
        # CherryPy has HTML-escaped status and message for its own page; ours escapes
        # whatever it shows, so they go in as the text they were, not escaped twice.
        actor = getattr(cherrypy.serving.request, "actor", None)
        return Pages(templates, actor, "").error(html.unescape(status), html.unescape(message))

    def unexpected_error() -> None:
        # CherryPy has already logged the traceback; the page says where to look.
        cherrypy.HTTPError(
            500, "Something went wrong inside dbwrapper; the details are in the server log."
        ).set_response()
        cherrypy.serving.response.headers.update(SECURITY_HEADERS)  # set here: no tool runs after

    config: dict[str, dict[str, Any]] = {
        "/": {
            "error_page.default": error_page,
            "request.error_response": unexpected_error,
            "tools.encode.on": True,
            "tools.encode.encoding": "utf-8",
            "tools.sessions.on": True,
            "tools.sessions.httponly": True,
            "tools.sessions.timeout": SESSION_MINUTES,
            # In the registry, so that every process serving it knows every login.
            "tools.sessions.storage_class": RegistrySession,
            "tools.sessions.servers": runtime.servers,
            "tools.sessions.clean_freq": 0,  # the "logins" job prunes them, in one process
            "tools.dbw_samesite.on": True,
            "tools.dbw_headers.on": True,
            "tools.dbw_csrf.on": True,
            "tools.dbw_login.on": True,
        },
        "/login": {"tools.dbw_login.on": False},
        "/logout": {"tools.dbw_login.on": False},
        "/static": {
            "tools.staticdir.on": True,
            "tools.staticdir.dir": str(templates.static_dir),
            "tools.sessions.on": False,
            "tools.dbw_login.on": False,
            "tools.dbw_csrf.on": False,
            "tools.dbw_headers.on": False,
        },
    }
    config.update(api_config())
    for path, section in settings.app_config.items():
        config.setdefault(path, {}).update(section)
    cherrypy.tree.mount(Root(runtime, templates), "/", config)
    return runtime


def serve(settings: Settings) -> None:
    """Run the service until interrupted, printing the URL to open."""
    config = server_config(settings)
    if settings.requests_per_server >= config["server.thread_pool"]:
        raise InvalidInput(
            f"requests_per_server ({settings.requests_per_server}) must be below server.thread_pool "
            f"({config['server.thread_pool']}) in app.conf, or a hung database server could hold every "
            "thread: raise server.thread_pool or lower requests_per_server."
        )
    cherrypy.config.update(config)
    runtime = mount(settings)
    # Start before the port opens, so a bad URL or a failed embedded server is
    # one clear message instead of a traceback from the engine's bus.
    try:
        runtime.start()
    except DbWrapperError:
        runtime.stop()
        raise
    cherrypy.engine.signals.subscribe()
    cherrypy.engine.start()
    if cherrypy.engine.state != cherrypy.engine.states.STARTED:
        cherrypy.engine.exit()
        raise SystemExit(1)
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    print(f"\n  dbwrapper is running: open http://{host}:{settings.port}/\n", flush=True)
    cherrypy.engine.block()
