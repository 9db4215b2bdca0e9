"""The answers resources give, by what they mean: read, made, started, gone."""

from __future__ import annotations

import json
from typing import Any

from dbwrapper.api.fields import iso
from dbwrapper.api.routing import PREFIX, Reply
from dbwrapper.registry.models import Operation


def ok(body: Any) -> Reply:
    return Reply(200, body)


def created(body: dict[str, Any], location: str, *, changed: bool = True) -> Reply:
    """A 201 with the new resource's ``Location``; a 200 (same body) when it was there already."""
    return Reply(201 if changed else 200, body, {"Location": location})


def gone() -> Reply:
    return Reply(204)


def operation_path(operation: Operation) -> str:
    return f"{PREFIX}/operations/{operation.id}"


def operation_json(operation: Operation) -> dict[str, Any]:
    """An operation as the API shows it: how far it got, and how it ended."""
    return {
        "id": operation.id,
        "kind": operation.kind,
        "target": operation.target,
        "state": operation.state,
        "progress": {"done": operation.done, "total": operation.total, "current": operation.current},
        "result": json.loads(operation.result) if operation.result else None,
        "error": operation.error,
        "started_by": operation.started_by,
        "created_at": iso(operation.created_at),
        "heartbeat_at": iso(operation.heartbeat_at),
        "finished_at": iso(operation.finished_at),
        "links": {"self": operation_path(operation), "cancel": operation_path(operation) + "/cancel"},
    }


def accepted(operation: Operation) -> Reply:
    """A 202: the work goes on in the background; ``Location`` is where to follow it."""
    return Reply(202, operation_json(operation), {"Location": operation_path(operation)})
