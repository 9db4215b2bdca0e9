"""One action over a whole class: extend, reset to the course, or archive and drop every database.

*The class* is what one class provisioning made: the databases of its report
(:class:`~dbwrapper.classes.ClassReport`) that still exist. That is what an
instructor has in front of them on the class's page, and what they mean by
"this class": not every database of the course, which may hold another
session's trainees, or a database someone made for the course by hand.

Each database is done on its own, as a class's rows are: one that fails (a
server hiccup, a database someone is reverting) is reported with its reason
and the others go on. From a page it runs as an operation
(:meth:`dbwrapper.operations.Operations.start_bulk`), with the progress bar of
a provisioning.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dbwrapper.accounts import Actor
from dbwrapper.archives import Archives
from dbwrapper.classes import ClassReport
from dbwrapper.errors import DbWrapperError, InvalidInput
from dbwrapper.expiry import EXTENSION, Expiry
from dbwrapper.registry import DatabaseRecord
from dbwrapper.snapshots import Snapshots

#: Each action, and what it does to each database, as a confirmation says it.
ACTIONS = {
    "extend": "push its expiry back a week",
    "reset": "reset it to the course's start (what it holds is kept as a snapshot)",
    "archive": "archive it to disk, verify the archive, then drop it",
}

#: ``progress(done, name)``: told before each database (``name``) and at the end.
Progress = Callable[[int, str], None]


@dataclass
class BulkReport:
    """What one action over a class did, database by database; as JSON, an operation's result."""

    action: str
    done: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "done": [{"database": name, "note": note} for name, note in self.done],
            "failed": [{"database": name, "reason": reason} for name, reason in self.failed],
        }

    @classmethod
    def from_json(cls, report: dict[str, Any]) -> BulkReport:
        return cls(
            report["action"], [(row["database"], row["note"]) for row in report["done"]],
            [(row["database"], row["reason"]) for row in report["failed"]],
        )


class ClassActions:
    """Extend, reset or archive and drop a class's databases, for an instructor."""

    def __init__(self, expiry: Expiry, snapshots: Snapshots, archives: Archives) -> None:
        self.expiry = expiry
        self.snapshots = snapshots
        self.archives = archives

    def check(self, actor: Actor, action: object) -> str:
        """The action, if an instructor asks for one there is; a 403 or a 400 otherwise."""
        actor.require_instructor("act on a whole class")
        if not isinstance(action, str) or action not in ACTIONS:
            raise InvalidInput(f"Unknown action {action!s:.20}; valid: {', '.join(ACTIONS)}.")
        return action

    def databases(self, report: ClassReport) -> list[DatabaseRecord]:
        """The class's databases that still exist (an archived or destroyed one is gone)."""
        registry = self.snapshots.registry
        named = [row.access.database for row in report.done if row.access is not None]
        found = (registry.database(report.db_type, name) for name in dict.fromkeys(named))
        return [record for record in found if record is not None and record.ready]

    def run(
        self, actor: Actor, action: str, records: list[DatabaseRecord], report: BulkReport,
        progress: Progress = lambda done, name: None,
    ) -> None:
        """Do ``action`` (checked by :meth:`check`) to each of ``records`` into ``report``,
        telling ``progress`` before each. An exception from ``progress`` (the operation was
        cancelled) stops it between two databases, and ``report`` holds what was done."""
        for done, record in enumerate(records):
            progress(done, record.name)
            try:
                report.done.append((record.name, self._one(actor, action, record)))
            except DbWrapperError as error:
                report.failed.append((record.name, str(error)))
        progress(len(records), "")

    def _one(self, actor: Actor, action: str, record: DatabaseRecord) -> str:
        if action == "extend":
            self.expiry.extend(actor, record.db_type, record.name, EXTENSION)
            return "expiry pushed back a week"
        if action == "reset":
            return self.snapshots.reset(actor, record.db_type, record.name)
        manifest = self.archives.archive(actor, record.db_type, record.name, drop=True)
        return f"archived as {manifest.id} and dropped"
