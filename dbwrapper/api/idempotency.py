"""Safe replays: the ``Idempotency-Key`` header (IETF draft-ietf-httpapi-idempotency-key-header).

The first request with a key is recorded as at work before it acts; its
response, errors included, is then kept with a fingerprint of the request,
keyed by user and key, for ``idempotency_hours``. A retry with the same key
and the same request gets that response again (``Idempotent-Replayed: true``)
and acts no more; the same key with another request is a 422; a retry while
the first is still at work is a 409. Responses that say the service could not
act at all (a 5xx, a 429) are not kept: the retry acts then, as the first
would have. The service's own actions are each all-or-nothing and asking
twice changes nothing, so a first request whose process died before its
response was kept is safe to act again: its row names that process, and a
retry takes the key over once the process is known to have ended (its lock is
free, :func:`~dbwrapper.registry.joblock.process_ended`), never while it works.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from dbwrapper.api.problems import Problem
from dbwrapper.api.routing import Call, Reply
from dbwrapper.registry import Registry
from dbwrapper.registry.models import IdempotencyRecord

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
#: The members of an answer that are shown once and never stored: a new token, a password.
SECRETS = ("token", "password")
#: The longest key accepted (the draft sets no bound; a UUID is 36).
MAX_KEY_LENGTH = 255


def fingerprint(call: Call) -> str:
    """What makes two requests the same request: method, path, query, body and precondition
    (a retry with a corrected ``If-Match`` is another request)."""
    text = json.dumps(
        [call.method, call.path, sorted(call.query.items()), call.content_type, call.body, call.header("If-Match")],
        sort_keys=True, default=str, separators=(",", ":"),
    )
    return hashlib.sha256(text.encode()).hexdigest()


def kept(reply: Reply) -> bool:
    """Whether a response is the request's outcome (kept for retries) or a passing failure:
    the service could not act (5xx), or asks to be asked again (``Retry-After``: 429, busy)."""
    return reply.status < 500 and "Retry-After" not in reply.headers


def without_secrets(body: Any) -> Any:
    """What of an answer is kept: a secret it shows (a new token, a user's password, also
    inside a batch's results) is shown once, in the first answer only, and the registry never
    holds it (a replay says ``null``). A database's ``credentials`` stay: they are its owner's
    to read again at any time."""
    if isinstance(body, list):
        return [without_secrets(item) for item in body]
    if isinstance(body, dict):
        return {key: None if key in SECRETS else value if key == "credentials" else without_secrets(value)
                for key, value in body.items()}
    return body


class Idempotency:
    """Answers a request with a key once, and every retry of it with the same answer."""

    def __init__(
        self, registry: Registry, hours: float, process: str, ended: Callable[[str], bool],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.registry = registry
        self.lifetime = timedelta(hours=hours)
        #: This process, and how to tell whether another one has ended.
        self.process = process
        self.ended = ended
        self.clock = clock

    def once(self, call: Call, key: str, answer: Callable[[], Reply]) -> Reply:
        if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
            raise Problem(400, f"An {HEADER} is 1 to {MAX_KEY_LENGTH} printable characters.",
                          {"field": HEADER})
        print_ = fingerprint(call)
        record = self._claim(call, key, print_)
        if isinstance(record, Reply):
            return record
        try:
            reply = answer()
        except BaseException:
            self.registry.forget_key(record)
            raise
        if kept(reply):
            body = json.dumps(without_secrets(reply.body))
            self.registry.keep_response(record, reply.status, body, json.dumps(reply.headers))
        else:
            self.registry.forget_key(record)
        return reply

    def _claim(self, call: Call, key: str, print_: str) -> IdempotencyRecord | Reply:
        """The row this request acts under, or the reply kept for the key; a :class:`Problem`
        if the key is another request's or still at work."""
        user_id = call.actor.user.id
        for _ in range(3):  # a row that expired, or whose process ended, is taken over
            now = self.clock()
            found = self.registry.idempotency_record(user_id, key)  # a retry's one query
            if found is None:
                claimed = self.registry.claim_key(user_id, key, print_, now + self.lifetime, self.process)
                if claimed is not None:
                    return claimed
                continue  # another request claimed it between the two: read it
            at_work = found.status is None
            if found.expires_at <= now or (at_work and self._abandoned(found)):
                self.registry.forget_key(found)
                continue
            if found.fingerprint != print_:
                raise Problem(422, f"The {HEADER} {key!r} was sent with another request; use a new key for "
                                   "a new request.", {"field": HEADER})
            if at_work:
                raise Problem(409, f"The request with the {HEADER} {key!r} is still at work; retry once it "
                                   "has answered.", headers={"Retry-After": "1"})
            headers = {**json.loads(found.headers), REPLAYED: "true"}
            return Reply(found.status or 200, json.loads(found.body or "null"), headers)
        raise Problem(409, f"The {HEADER} {key!r} is in use by another request; retry.")

    def _abandoned(self, found: IdempotencyRecord) -> bool:
        """Whether the first request's process ended before it answered: it never will."""
        return found.process is not None and found.process != self.process and self.ended(found.process)

    def prune(self) -> int:
        """Forget the keys whose time is up (run by a periodic job)."""
        return self.registry.prune_keys(self.clock())

