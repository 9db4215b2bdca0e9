"""Class provisioning: a roster in, an account, a course database and credentials per trainee out.

The roster's names were read and checked already (:mod:`dbwrapper.rosters`). Each
is then done on its own: a row that fails (a name whose database someone else has,
a server hiccup) is reported with its reason and the others go on. Running the same roster
again makes nothing twice: existing accounts keep their passwords and
existing databases stay as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dbwrapper.accounts import Accounts, Actor
from dbwrapper.backends import Backend
from dbwrapper.errors import DbWrapperError
from dbwrapper.service import Credentials, DatabaseService

#: ``progress(done, total, name)``: told before each row (``name``) and at the end.
Progress = Callable[[int, int, str], None]


def _unheard(done: int, total: int, name: str) -> None:
    """The progress nobody follows."""


@dataclass(frozen=True)
class Access:
    """How a trainee connects to their database, as plain text: a report read back from the
    registry (another process may have made it) prints its sheet without asking a server."""

    database: str
    login: str
    login_password: str
    url: str
    command: str
    #: When the expiry job purges it; ``None``: never.
    expires_at: datetime | None

    @classmethod
    def of(cls, credentials: Credentials) -> Access:
        return cls(credentials.name, credentials.login.name, credentials.login.password, credentials.url,
                   credentials.command, credentials.expires_at)


@dataclass(frozen=True)
class Provisioned:
    """One trainee's result: their account password if it was made now, and their database
    (``access`` is ``None`` when its login's password is not known here)."""

    user: str
    password: str | None
    access: Access | None
    note: str

    def to_json(self) -> dict[str, Any]:
        access = self.access
        return {
            "user": self.user, "password": self.password,
            "database": access.database if access else None, "login": access.login if access else None,
            "login_password": access.login_password if access else None,
            "url": access.url if access else None, "command": access.command if access else None,
            "expires_at": access.expires_at.isoformat() if access and access.expires_at else None,
            "note": self.note,
        }

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> Provisioned:
        access = None
        if row["database"] is not None:
            expires_at = datetime.fromisoformat(row["expires_at"]) if row["expires_at"] else None
            access = Access(row["database"], row["login"], row["login_password"], row["url"], row["command"],
                            expires_at)
        return cls(row["user"], row["password"], access, row["note"])


@dataclass
class ClassReport:
    """What provisioning a class made, row by row; as JSON, an operation's result."""

    course: str
    db_type: str
    done: list[Provisioned] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "course": self.course, "db_type": self.db_type, "done": [done.to_json() for done in self.done],
            "failed": [{"user": user, "reason": reason} for user, reason in self.failed],
        }

    @classmethod
    def from_json(cls, report: dict[str, Any]) -> ClassReport:
        return cls(
            report["course"], report["db_type"], [Provisioned.from_json(row) for row in report["done"]],
            [(row["user"], row["reason"]) for row in report["failed"]],
        )


class ClassProvisioner:
    """Makes a class from a roster, for an instructor."""

    def __init__(self, service: DatabaseService, accounts: Accounts) -> None:
        self.service = service
        self.accounts = accounts

    def provision(
        self, actor: Actor, names: list[str], course: str, db_type: str, progress: Progress = _unheard,
    ) -> ClassReport:
        backend = self.check(actor, course, db_type)
        report = ClassReport(course, backend.db_type)
        self.fill(actor, names, report, progress)
        self.hand_out(report)
        return report

    def fill(self, actor: Actor, names: list[str], report: ClassReport, progress: Progress = _unheard) -> None:
        """Provision ``names`` into ``report``, once :meth:`check` passed, telling ``progress``
        before each row. An exception from ``progress`` (the operation was cancelled) stops
        it between rows, and ``report`` holds what was done."""
        for number, name in enumerate(names, start=1):
            progress(number - 1, len(names), name)
            try:
                report.done.append(self._one(actor, name, report.course, report.db_type))
            except DbWrapperError as error:
                report.failed.append((name, str(error)))
        progress(len(names), len(names), "")

    def hand_out(self, report: ClassReport) -> None:
        """The report carries its new passwords to a sheet: from now on they are handed out."""
        self.accounts.registry.mark_passwords_shown([done.user for done in report.done if done.password])

    def check(self, actor: Actor, course: str, db_type: str) -> Backend:
        """Refuse a whole roster up front when every row would fail the same way."""
        actor.require_instructor("provision a class")
        backend = self.service.servers.backend(db_type)
        self.service.course_sql(course, backend)
        return backend

    def _one(self, actor: Actor, name: str, course: str, db_type: str) -> Provisioned:
        by = f"{actor.name} (class)"
        user = self.accounts.registry.user(name)
        account = ""
        if user is None:
            user, password = self.accounts.add(name, "trainee", by=by, shown=False)
        elif user.password_shown:
            password, account = None, "; account already existed, password unchanged"
        else:  # made by a run whose sheet never came: nobody knows this password
            password = self.accounts.set_password(name, by=by, shown=False)
            account = "; account already existed, new password (the earlier one was never handed out)"
        database = self.service.default_name(Actor(user))
        outcome = self.service.create(actor, db_type, database, owner=user, course=course)
        note = ("new" if outcome.changed else "already there; unchanged") + account
        access = Access.of(outcome.credentials) if outcome.credentials else None
        return Provisioned(name, password, access, note)
