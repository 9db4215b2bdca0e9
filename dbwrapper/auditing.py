"""Which audit entries to read: the filters the audit page and ``dbwrapper audit`` share.

Both take the filters as a person types them (a user name, a target, an action, a
time with or without its zone), so both are read here, once; the registry applies
them in SQL (:meth:`~dbwrapper.registry.audit.AuditLog.audit_entries`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dbwrapper.errors import InvalidInput

#: How many entries a page of the audit log shows (the command line's default too).
AUDIT_PAGE = 100


def utc_time(value: str, name: str) -> datetime:
    """A time as a person types it: ISO 8601 (``2026-12-08 09:00``, ``2026-12-08``), in UTC
    unless it gives its zone; a 400 naming ``name`` otherwise."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(
            f"{name} is a time such as 2026-12-08 09:00 (UTC) or 2026-12-08T09:00:00+01:00; not {value!r}.", name
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@dataclass(frozen=True)
class AuditFilter:
    """Who did it (``actor``, a user name), on what (``target``: ``postgres:alice_7001`` or a
    database's name), which ``action``, and from ``since`` until before ``until``."""

    actor: str | None = None
    target: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    @classmethod
    def typed(
        cls, *, actor: str | None = None, target: str | None = None, action: str | None = None,
        since: str | None = None, until: str | None = None,
    ) -> AuditFilter:
        """The filters as typed in a form or on the command line; an empty one filters nothing."""
        for name, value in (("actor", actor), ("target", target), ("action", action), ("since", since),
                            ("until", until)):
            if value is not None and not isinstance(value, str):
                raise InvalidInput(f"Give {name} once, as text.", name)
        return cls(
            actor=(actor or "").strip() or None, target=(target or "").strip() or None,
            action=(action or "").strip() or None,
            since=utc_time(since, "since") if since and since.strip() else None,
            until=utc_time(until, "until") if until and until.strip() else None,
        )

    def criteria(self) -> dict[str, Any]:
        """The keyword arguments of ``audit_entries`` that apply these filters."""
        return {"actor": self.actor, "target": self.target, "action": self.action, "since": self.since,
                "until": self.until}

    def texts(self) -> dict[str, str]:
        """The filters as a form shows them again, and as a link to another page carries them."""
        return {
            "actor": self.actor or "", "target": self.target or "", "action": self.action or "",
            "since": f"{self.since:%Y-%m-%d %H:%M:%S}" if self.since else "",
            "until": f"{self.until:%Y-%m-%d %H:%M:%S}" if self.until else "",
        }
