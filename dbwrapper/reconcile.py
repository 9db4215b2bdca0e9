"""Making the registry match the servers again after a crash or a change made elsewhere.

A crash between making a database and recording it, or a database dropped
with the server's own tools, leaves the registry and a server disagreeing.
At every start (and with ``dbwrapper reconcile``) this settles it without
losing anything:

* a record whose database is gone is forgotten, and its login removed;
* a database carrying dbwrapper's marker that the registry does not know is
  adopted, not dropped: it gets a login (made, or its password reset), is
  recorded for the first instructor and kept until someone decides;
* course copies (masters, spares) that were not finished, or whose database
  is gone, are dropped and forgotten; a database with the copies' prefix that
  the registry does not name at all (a spare claimed by a handout that never
  ended) is dropped with its login;
* half-written archive files (``.*.partial``) are removed.

A server that cannot be reached is left alone: nothing is forgotten because
of an outage.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dbwrapper.accounts import Accounts, generate_password
from dbwrapper.archives import Archives
from dbwrapper.backends import Backend
from dbwrapper.backends.base import Login
from dbwrapper.config import CONTROL_DATABASE
from dbwrapper.errors import DbWrapperError
from dbwrapper.names import RESERVED_PREFIX
from dbwrapper.registry import AuditEntry, User
from dbwrapper.service import DatabaseService

ACTOR = "dbwrapper (reconcile)"


@dataclass
class Report:
    """What reconciling did, by ``backend:name``."""

    forgotten: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    unfinished: list[str] = field(default_factory=list)
    partial_files: int = 0
    unreachable: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        said = []
        if self.forgotten:
            said.append(f"forgot {', '.join(self.forgotten)}: no longer on the server")
        if self.adopted:
            said.append(f"adopted {', '.join(self.adopted)}: on the server but not in the registry")
        if self.unfinished:
            said.append(f"dropped {', '.join(self.unfinished)}: dbwrapper's own copies, left unfinished")
        if self.partial_files:
            said.append(f"removed {self.partial_files} half-written archive file(s)")
        if self.unreachable:
            said.append(f"could not check {', '.join(self.unreachable)}")
        return said


class Reconciler:
    """Brings the registry and the servers into agreement."""

    def __init__(self, service: DatabaseService, accounts: Accounts, archives: Archives) -> None:
        self.service = service
        self.accounts = accounts
        self.archives = archives

    def run(self) -> Report:
        report = Report()
        for backend in self.service.backends():
            try:
                self._reconcile(backend, report)
            except DbWrapperError:
                report.unreachable.append(backend.kind)
        for partial in self.archives.directory.rglob(".*.partial"):
            partial.unlink(missing_ok=True)
            report.partial_files += 1
        return report

    def _reconcile(self, backend: Backend, report: Report) -> None:
        registry = self.service.registry
        listing = backend.list_databases(fresh=True)
        existing = {info.name for info in listing}
        on_server = {info.name for info in listing if info.managed} - {CONTROL_DATABASE}
        for record in registry.databases(backend.kind):
            if record.name not in existing:
                backend.drop_database(record.name, record.login)  # only its login is left to remove
                registry.forget_database(record, audit=self._entry(backend, record.name, "forgotten"))
                report.forgotten.append(f"{backend.kind}:{record.name}")
        own = self._own_copies(backend, existing, on_server, report)
        known = {record.name for record in registry.databases(backend.kind)}
        for name in sorted(on_server - known - own):
            login = Login(name, generate_password())
            backend.adopt_database(name, login)
            registry.record_database(
                backend.kind, name, self._keeper(), login.name, login.password,
                audit=self._entry(backend, name, "adopted"),
            )
            report.adopted.append(f"{backend.kind}:{name}")

    def _own_copies(self, backend: Backend, existing: set[str], on_server: set[str], report: Report) -> set[str]:
        """Settle the course copies; the names of those that stay, which are not to be adopted."""
        registry = self.service.registry
        kept: set[str] = set()
        for copy in registry.copies(backend.kind):
            if copy.ready and copy.name in existing:
                kept.add(copy.name)
                continue
            backend.drop_database(copy.name, copy.name)
            registry.forget_copy(copy)
            report.unfinished.append(f"{backend.kind}:{copy.name}")
        for name in sorted(name for name in on_server - kept if name.startswith(RESERVED_PREFIX)):
            backend.drop_database(name, name)
            report.unfinished.append(f"{backend.kind}:{name}")
        return {name for name in on_server if name.startswith(RESERVED_PREFIX)}

    def _keeper(self) -> User:
        """Who adopted databases belong to: the first instructor, or any instructor."""
        registry = self.service.registry
        first = registry.user(self.service.settings.first_instructor)
        if first is not None and first.role == "instructor":
            return first
        return next(user for user in registry.users() if user.role == "instructor")

    @staticmethod
    def _entry(backend: Backend, name: str, outcome: str) -> AuditEntry:
        return AuditEntry(actor=ACTOR, action="reconcile", target=f"{backend.kind}:{name}",
                          outcome=outcome, detail="")
