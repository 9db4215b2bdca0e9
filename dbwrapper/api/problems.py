"""Errors as RFC 9457 problem details (``application/problem+json``).

Every error under ``/api/`` is one of these, with the same status and the
same sentence the pages show for the same domain error; a ``type`` names its
kind so that a script can tell a quota (``conflict``) from a precondition
(``precondition-failed``) without parsing the sentence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from dbwrapper.errors import DatabaseBusy, DbWrapperError, TooManyAttempts

PROBLEM_TYPE = "application/problem+json"
#: Where a problem's ``type`` points: the API's own description of its kinds.
TYPE_BASE = "/api/v1/problems#"
#: Seconds a 429 asks the client to wait (the login window and a trainee's requests clear by then).
RETRY_AFTER_SECONDS = 5

#: The kind of problem each status is, as the ``type`` names it.
KINDS = {
    400: "invalid-input",
    401: "not-logged-in",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    411: "length-required",
    412: "precondition-failed",
    413: "too-large",
    415: "unsupported-media-type",
    422: "idempotency-key-reused",
    428: "precondition-required",
    429: "too-many-requests",
    500: "internal-error",
    503: "server-unavailable",
}


@dataclass(frozen=True)
class Problem(Exception):
    """An error answer: its status, one sentence of detail, and any extension members."""

    status: int
    detail: str
    extra: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, error: DbWrapperError) -> Problem:
        """The problem a domain error is, with ``Retry-After`` for a 429 and the field a 400 names."""
        extra: dict[str, Any] = {}
        if field_name := getattr(error, "field", None):
            extra["field"] = field_name
        # Both pass: another request is at work. A retry (with the same Idempotency-Key) is welcome.
        passing = isinstance(error, TooManyAttempts | DatabaseBusy)
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if passing else {}
        return cls(error.http_status, str(error), extra, headers)

    def body(self) -> dict[str, Any]:
        kind = KINDS.get(self.status, "error")
        return {
            "type": TYPE_BASE + kind,
            "title": HTTPStatus(self.status).phrase,
            "status": self.status,
            "detail": self.detail,
            **self.extra,
        }
