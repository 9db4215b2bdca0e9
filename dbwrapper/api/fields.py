"""Reading a request's fields: each wrong one is a 400 that names it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from dbwrapper.errors import InvalidInput

MISSING = object()


def known(fields: Mapping[str, Any], allowed: set[str]) -> None:
    """Refuse fields the resource does not have: a typo must not be quietly ignored."""
    if unknown := sorted(set(fields) - allowed):
        raise InvalidInput(f"Unknown field(s): {', '.join(unknown)}; known: {', '.join(sorted(allowed))}.",
                           unknown[0])


def text(fields: Mapping[str, Any], name: str, default: Any = MISSING) -> Any:
    """The text ``fields[name]``; ``default`` when absent (a 400 when there is no default)."""
    value = fields.get(name, MISSING)
    if value is MISSING or (value is None and default is not MISSING):
        if default is MISSING:
            raise InvalidInput(f"Give {name}.", name)
        return default
    if not isinstance(value, str):
        raise InvalidInput(f"{name} is text, not {type(value).__name__}.", name)
    return value


def number(fields: Mapping[str, Any], name: str, default: Any = MISSING) -> Any:
    value = fields.get(name, MISSING)
    if value is MISSING or value is None:
        if default is MISSING:
            raise InvalidInput(f"Give {name}.", name)
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{name} is a whole number, not {value!r}.", name)
    return value


def flag(fields: Mapping[str, Any], name: str) -> bool:
    value = fields.get(name, False)
    if not isinstance(value, bool):
        raise InvalidInput(f"{name} is true or false, not {value!r}.", name)
    return value


def plain_text(value: Any, where: str) -> None:
    """Refuse text no database can hold and no name can have: NUL, or half of a surrogate pair
    (JSON can say both; PostgreSQL refuses the one, UTF-8 the other)."""
    if isinstance(value, str):
        if "\x00" in value or any("\ud800" <= char <= "\udfff" for char in value):
            raise InvalidInput(f"{where} holds a NUL character or half of a surrogate pair; send plain text.")
    elif isinstance(value, dict):
        for key, item in value.items():
            plain_text(key, where)
            plain_text(item, where)
    elif isinstance(value, list):
        for item in value:
            plain_text(item, where)


def whole(value: str | None, name: str, default: int | None) -> Any:
    """A query parameter that is a whole number (ASCII digits: ``"²".isdigit()`` is true)."""
    if value is None:
        return default
    if not (value.isascii() and value.isdigit()):
        raise InvalidInput(f"{name} is a whole number, not {value!r}.", name)
    return int(value)


def moment(value: Any, name: str) -> datetime:
    """An ISO 8601 time with its zone (``2026-12-08T09:00:00Z``), as UTC."""
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # year 1 at +14:00 is before year 1 in UTC
        pass
    raise InvalidInput(f"{name} is an ISO 8601 time with its zone, such as 2026-12-08T09:00:00Z; not {value!r}.",
                       name)


def iso(value: datetime | None) -> str | None:
    """A time as the API writes it: ISO 8601 in UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
