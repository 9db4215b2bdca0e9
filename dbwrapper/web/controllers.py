"""The CherryPy handlers: read the request, call the service, render a page.

Handlers hold no SQL and no state of their own; :func:`domain_errors` turns
the service's errors into HTTP errors, which the error page renders.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import cherrypy

from dbwrapper.errors import DbWrapperError, InvalidInput
from dbwrapper.service import DatabaseService
from dbwrapper.web.pages import Pages


def domain_errors(handler: Callable[..., str]) -> Callable[..., str]:
    """Answer a :class:`DbWrapperError` with its status and message; refuse unknown parameters.

    CherryPy would answer an unknown query parameter or path segment with a
    404; a 400 that names it tells the user what to fix.
    """
    accepted = set(inspect.signature(handler).parameters) - {"self"}

    @functools.wraps(handler)
    def wrapper(self: Any, *path: str, **params: Any) -> str:
        try:
            if path:
                raise InvalidInput(f"Unknown path: /{'/'.join(path)}.")
            unknown = sorted(set(params) - accepted)
            if unknown:
                raise InvalidInput(f"Unknown parameter(s): {', '.join(unknown)}.")
            return handler(self, **params)
        except DbWrapperError as error:
            raise cherrypy.HTTPError(error.http_status, str(error)) from None

    return wrapper


class DBInterface:
    """``/dbi/``: create, destroy and list the per-user databases."""

    def __init__(self, service: DatabaseService, pages: Pages) -> None:
        self.service = service
        self.pages = pages

    @cherrypy.expose
    @cherrypy.tools.allow(methods=["GET", "HEAD"])
    @domain_errors
    def create_my_db(self, db_type: str | None = None, name: str | None = None) -> str:
        """Create the caller's database unless it exists, then list the server's databases."""
        return self.pages.created(self.service.create(db_type, name))

    @cherrypy.expose
    @cherrypy.tools.allow(methods=["GET", "HEAD", "POST"])
    @domain_errors
    def destroy_my_db(self, db_type: str | None = None, name: str | None = None) -> str:
        """GET asks for confirmation; the confirmation form POSTs, and only a POST drops."""
        if cherrypy.request.method == "POST":
            return self.pages.destroyed(self.service.destroy(db_type, name))
        return self.pages.confirm_destroy(*self.service.resolve(db_type, name))

    @cherrypy.expose
    @cherrypy.tools.allow(methods=["GET", "HEAD"])
    @domain_errors
    def list(self, db_type: str | None = None) -> str:
        """The server's databases, ours marked, with their sizes."""
        return self.pages.listing(self.service.list(db_type), mine=self.service.default_name())


class Root:
    """``/``: what the service is, its backends and links to the actions."""

    def __init__(self, service: DatabaseService, pages: Pages) -> None:
        self.service = service
        self.pages = pages
        self.dbi = DBInterface(service, pages)

    @cherrypy.expose
    @cherrypy.tools.allow(methods=["GET", "HEAD"])
    @domain_errors
    def index(self) -> str:
        embedded_dir = self.service.engines.embedded_dir
        return self.pages.index(self.service.backends(), self.service.default_name(), embedded_dir)
