"""Class provisioning: a roster in, an account, a course database and credentials per trainee out.

Each row is done on its own: a row that fails (a bad name, a server hiccup)
is reported with its reason and the others go on. Running the same roster
again makes nothing twice: existing accounts keep their passwords and
existing databases stay as they are.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field

from dbwrapper.accounts import Accounts, Actor
from dbwrapper.errors import DbWrapperError, InvalidInput
from dbwrapper.service import Credentials, DatabaseService

#: Header words a roster's first row may have instead of a name.
HEADERS = {"name", "user", "username", "trainee"}
MAX_ROSTER = 500

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class Provisioned:
    """One trainee's result: their account password if it was made now, and their database."""

    user: str
    password: str | None
    credentials: Credentials | None
    note: str


@dataclass
class ClassReport:
    course: str
    db_type: str
    done: list[Provisioned] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


def read_roster(text: str) -> list[str]:
    """The trainee names of a CSV roster: the first column, without a header or blank rows."""
    rows = [row for row in csv.reader(io.StringIO(text)) if row and row[0].strip()]
    names = [row[0].strip() for row in rows]
    if names and names[0].lower() in HEADERS:
        names = names[1:]
    if not names:
        raise InvalidInput("The roster names no trainee: one user name per row, in the first column.")
    if len(names) > MAX_ROSTER:
        raise InvalidInput(f"A roster holds at most {MAX_ROSTER} trainees.")
    return list(dict.fromkeys(names))  # a name twice is one trainee


class ClassProvisioner:
    """Makes a class from a roster, for an instructor."""

    def __init__(self, service: DatabaseService, accounts: Accounts) -> None:
        self.service = service
        self.accounts = accounts

    def provision(
        self, actor: Actor, names: list[str], course: str, db_type: str,
        progress: Progress = lambda done, total, name: None,
    ) -> ClassReport:
        actor.require_instructor("provision a class")
        backend = self.service.engines.backend(db_type)
        report = ClassReport(course, backend.kind)
        for number, name in enumerate(names, start=1):
            progress(number - 1, len(names), name)
            try:
                report.done.append(self._one(actor, name, course, backend.kind))
            except DbWrapperError as error:
                report.failed.append((name, str(error)))
        progress(len(names), len(names), "")
        return report

    def _one(self, actor: Actor, name: str, course: str, db_type: str) -> Provisioned:
        user = self.accounts.registry.user(name)
        password = None
        if user is None:
            user, password = self.accounts.add(name, "trainee", by=f"{actor.name} (class)")
        database = self.service.default_name(Actor(user))
        outcome = self.service.create(actor, db_type, database, owner=user, course=course)
        note = "new" if outcome.changed else "already there; unchanged"
        if password is None:
            note += "; account already existed, password unchanged"
        return Provisioned(name, password, outcome.credentials, note)
