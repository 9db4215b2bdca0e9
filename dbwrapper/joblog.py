"""The background jobs' log (expiry, the warm pool): CherryPy's error log, which is the
console when serving, with the traceback when something failed."""

from __future__ import annotations

import logging

import cherrypy


def log(context: str, message: str, *, failed: bool = False) -> None:
    """Log ``message`` under ``context`` (``EXPIRY``, ``POOL``); with its traceback if ``failed``."""
    cherrypy.log(message, context=context, severity=logging.ERROR if failed else logging.INFO, traceback=failed)
