"""Class provisioning: a roster in, an account, a course database and credentials per trainee out.

Each row is done on its own: a row that fails (a bad name, a server hiccup)
is reported with its reason and the others go on. Running the same roster
again makes nothing twice: existing accounts keep their passwords and
existing databases stay as they are.
"""

from __future__ import annotations

import csv
import io
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from dbwrapper.accounts import Accounts, Actor
from dbwrapper.backends import Backend
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
        backend = self.check(actor, course, db_type)
        report = ClassReport(course, backend.db_type)
        for number, name in enumerate(names, start=1):
            progress(number - 1, len(names), name)
            try:
                report.done.append(self._one(actor, name, course, backend.db_type))
            except DbWrapperError as error:
                report.failed.append((name, str(error)))
        progress(len(names), len(names), "")
        # The report carries the new passwords to the sheet: from now on they are handed out.
        self.accounts.registry.mark_passwords_shown([done.user for done in report.done if done.password])
        return report

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
        return Provisioned(name, password, outcome.credentials, note)


@dataclass
class ClassJob:
    """A class being provisioned in the background, as its progress page shows it."""

    id: str
    course: str
    db_type: str
    total: int
    done: int = 0
    current: str = ""
    report: ClassReport | None = None
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.report is not None or self.error is not None


class ClassJobs:
    """Runs provisionings in background threads, so the page can show their progress.

    Jobs live in this process's memory: a restart forgets them (what they made stays,
    and running the roster again finishes the rest, making nothing twice).
    """

    def __init__(self, provisioner: ClassProvisioner) -> None:
        self.provisioner = provisioner
        self._jobs: dict[str, ClassJob] = {}
        self._lock = threading.Lock()

    def start(self, actor: Actor, names: list[str], course: str, db_type: str) -> ClassJob:
        self.provisioner.check(actor, course, db_type)  # a bad course or server is a 400 now
        job = ClassJob(secrets.token_urlsafe(9), course, db_type, len(names))
        with self._lock:
            self._jobs[job.id] = job

        def progress(done: int, total: int, name: str) -> None:
            job.done, job.current = done, name

        def run() -> None:
            try:
                job.report = self.provisioner.provision(actor, names, course, db_type, progress)
            except Exception as error:  # the page must say it ended, whatever happened
                job.error = str(error) or type(error).__name__

        threading.Thread(target=run, name=f"class {job.id}", daemon=True).start()
        return job

    def get(self, actor: Actor, job_id: object) -> ClassJob:
        actor.require_instructor("follow a class provisioning")
        job = self._jobs.get(job_id) if isinstance(job_id, str) else None
        if job is None:
            raise InvalidInput(
                "There is no such provisioning (they are forgotten when the service restarts)."
            )
        return job
