"""A client of a dbwrapper service's JSON API (``/api/v1/``), for the command line on another
machine: it holds an API token, never a server's super-user URL.

Standard library only (``urllib.request``, ``json``), so a laptop installs nothing more.
Every request has a deadline, and is sent once more when the connection fails or the
service answers 503; an acting one carries a fresh ``Idempotency-Key``, the same both
times, so the service acts at most once. A problem answer becomes a :class:`RemoteError`
with the exit code the command line gives the same error here.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlencode, urlsplit
from urllib.request import Request, urlopen

import dbwrapper
from dbwrapper import errors
from dbwrapper.api.routing import PREFIX
from dbwrapper.errors import DbWrapperError, InvalidInput, NotLoggedIn

#: Seconds a request may take before it counts as a failed connection.
TIMEOUT_SECONDS = 30
#: How long an operation is followed before the command gives up on it (it goes on at the service).
FOLLOW_SECONDS = 3600
POLL_SECONDS = 0.5
#: Answers worth sending an acting request again for, with the same key: the service did not act.
RETRIED_STATUSES = (503,)

#: ``progress(done, total, current)``, told each time an operation moves.
Progress = Callable[[int, int, str], None]


def exit_codes() -> dict[int, int]:
    """The exit code of each HTTP status, from the domain errors themselves: where several
    share a status (409), the first defined, the most general, says it."""
    codes: dict[int, int] = {}
    for value in vars(errors).values():
        if isinstance(value, type) and issubclass(value, DbWrapperError):
            codes.setdefault(value.http_status, value.exit_code)
    return codes


class RemoteError(DbWrapperError):
    """What the service answered instead of doing it: its ``detail``, and the exit code its
    status has on this command line (a status no domain error has: the base class's)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.http_status = status
        self.exit_code = exit_codes().get(status, DbWrapperError.exit_code)


def segment(value: object) -> str:
    """One path segment, whatever the user typed: a ``/`` in a name cannot reach another route."""
    return quote(str(value), safe="")


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: Any


class Client:
    """One service, one token; every method answers the body, or raises :class:`RemoteError`."""

    def __init__(self, server: str, token: str, timeout: float = TIMEOUT_SECONDS) -> None:
        if urlsplit(server).scheme not in ("http", "https"):
            raise InvalidInput(f"--server is the service's address, such as https://dbwrapper.example.org; "
                               f"not {server!r}.", "server")
        if not token:
            raise NotLoggedIn("With --server, give an API token in DBWRAPPER_TOKEN (make one on the service's "
                              "/account/ page).")
        self.server = server.rstrip("/")
        self._token = token
        self.timeout = timeout

    def get(self, path: str, **query: str) -> Any:
        return self.send("GET", path + (f"?{urlencode(query)}" if query else "")).body

    def send(self, method: str, path: str, body: Any = None) -> Answer:
        """``method path`` (below ``/api/v1``); an acting method is sent at most twice, with one key."""
        headers = {"Accept": "application/json", "Authorization": f"Bearer {self._token}",
                   "User-Agent": f"dbwrapper/{dbwrapper.__version__}"}
        if method != "GET":
            headers["Idempotency-Key"] = str(uuid.uuid4())
        data = None if body is None else json.dumps(body).encode()
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = Request(self.server + PREFIX + path, data, headers, method=method)
        try:
            return self._once(request)
        except _Passing:
            pass
        try:
            return self._once(request)
        except _Passing as passing:
            raise passing.error from None

    def _once(self, request: Request) -> Answer:
        try:
            with urlopen(request, timeout=self.timeout) as response:
                return Answer(response.status, response.headers, read_json(response.read()))
        except HTTPError as answer:
            with answer:
                error = RemoteError(answer.code, problem_detail(answer.code, answer.read()))
            if answer.code in RETRIED_STATUSES:
                raise _Passing(error) from None
            raise error from None
        except (URLError, OSError) as failure:  # refused, reset, timed out: it may not have acted
            reason = getattr(failure, "reason", failure)
            error = RemoteError(503, f"Cannot reach the dbwrapper service at {self.server}: {reason}.")
            raise _Passing(error) from None

    def follow(self, started: Answer, progress: Progress | None = None) -> Any:
        """An operation (a 202's ``Location``) followed until it ends: its result if it succeeded,
        a :class:`RemoteError` otherwise. ``progress`` hears of every move, and of the end."""
        location = started.headers.get("Location") or started.body["links"]["self"]
        path = urlsplit(location).path.removeprefix(PREFIX)
        operation, shown, deadline = started.body, None, time.monotonic() + FOLLOW_SECONDS
        while True:
            moved = operation["progress"]
            if progress is not None and (moved["done"], moved["current"]) != shown:
                shown = moved["done"], moved["current"]
                progress(moved["done"], moved["total"], moved["current"] or "")
            if operation["state"] != "running":
                break
            if time.monotonic() > deadline:
                raise DbWrapperError(f"The {operation['kind']} operation is still running after {FOLLOW_SECONDS} s; "
                                     f"follow it at {self.server}{location}.")
            time.sleep(POLL_SECONDS)
            operation = self.get(path)
        if operation["state"] != "succeeded":  # why it failed is told, not which error it was
            raise DbWrapperError(operation["error"] or f"The {operation['kind']} operation ended {operation['state']}.")
        return operation["result"]


class _Passing(Exception):
    """A failure that may pass (no connection, a 503): worth one more try with the same key."""

    def __init__(self, error: RemoteError) -> None:
        super().__init__(str(error))
        self.error = error


def read_json(raw: bytes) -> Any:
    return json.loads(raw) if raw else None


def problem_detail(status: int, raw: bytes) -> str:
    """A problem document's ``detail``; the status alone for a body that is none (a proxy's page)."""
    try:
        problem = json.loads(raw)
    except ValueError:
        problem = None
    if not isinstance(problem, dict) or not isinstance(problem.get("detail"), str):
        return f"The service answered {status} without saying why."
    return problem["detail"]
