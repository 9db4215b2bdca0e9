"""Making the registry match the servers again after a crash or a change made elsewhere.

A crash in the middle of making, reverting or dropping a database, or a
database dropped with the server's own tools, leaves the registry and a
server disagreeing. This settles it without losing anything that a crash did
not already lose:

* a database recorded as being made (not ready) is dropped with its login:
  nobody was ever shown it;
* a revert that did not finish is undone: the database gets back what it held
  before (set aside by the revert, not copied), and its login the access the
  revert had shut it out of; a half-taken snapshot is dropped;
* course copies (masters, spares) that were not finished, or whose database is
  gone, are dropped and forgotten, and so is a database with the copies' prefix
  that the registry does not name at all (a spare whose handout never ended);
* a record whose database is gone is forgotten, and its login removed;
* a database carrying dbwrapper's marker that the registry does not know is
  adopted, not dropped: it gets a login (made, or its password reset), is
  recorded for the first instructor and kept until someone decides;
* half-written archive files (``.*.partial``) are removed.

All but adopting are also what another process's work looks like while it
is under way (a database being made; a PostgreSQL revert, which renames the
database away; a restore over the original, which drops it and makes it
again; an archive being written), so reconciling is right only while no
other process is at work on this registry: run it only holding the registry
lock exclusively (:mod:`dbwrapper.registry.lock`), as :meth:`Runtime.start
<dbwrapper.runtime.Runtime.start>` does. (Adopting is not: a database is
recorded before it is made and forgotten after it is dropped. It waits for the
same moment all the same, as it gives a login a new password.)

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
    put_back: list[str] = field(default_factory=list)
    partial_files: int = 0
    unreachable: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        said = []
        if self.forgotten:
            said.append(f"forgot {', '.join(self.forgotten)}: no longer on the server")
        if self.adopted:
            said.append(f"adopted {', '.join(self.adopted)}: on the server but not in the registry")
        if self.put_back:
            said.append(f"put back {', '.join(self.put_back)} as before a revert that did not finish")
        if self.unfinished:
            said.append(f"dropped {', '.join(self.unfinished)}: left half-made by a crash")
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
        """Reconcile every reachable backend, and the archive directory (see the module:
        only while no other process is at work on this registry)."""
        report = Report()
        for backend in self.service.backends():
            try:
                self._reconcile(backend, report)
            except DbWrapperError:
                report.unreachable.append(backend.db_type)
        for partial in self.archives.directory.rglob(".*.partial"):
            partial.unlink(missing_ok=True)
            report.partial_files += 1
        return report

    def _reconcile(self, backend: Backend, report: Report) -> None:
        registry = self.service.registry
        self._settle_snapshots(backend, report)  # first: it may give a database back
        self._settle_databases(backend, report)
        listing = backend.list_databases(fresh=True)
        existing = {info.name for info in listing}
        on_server = {info.name for info in listing if info.managed} - {CONTROL_DATABASE}
        self._settle_copies(backend, existing, on_server, report)
        for record in registry.databases(backend.db_type):
            if record.ready and record.name not in existing:
                # Only its login and its snapshots are left to remove.
                self.service.remove(backend, record, self._entry(backend, record.name, "forgotten"))
                report.forgotten.append(f"{backend.db_type}:{record.name}")
        known = {record.name for record in registry.databases(backend.db_type)}
        # dbwrapper's own copies are never adopted: settled above, or still being made.
        for name in sorted(name for name in on_server - known if not name.startswith(RESERVED_PREFIX)):
            login = Login(name, generate_password())
            backend.creation.adopt_database(name, login)
            registry.record_database(
                backend.db_type, name, self._keeper(), login.name, login.password,
                audit=self._entry(backend, name, "adopted"),
            )
            report.adopted.append(f"{backend.db_type}:{name}")

    def _settle_snapshots(self, backend: Backend, report: Report) -> None:
        """Undo reverts that did not finish; drop snapshots that were not finished or are gone."""
        registry = self.service.registry
        for record in registry.databases(backend.db_type):
            for snapshot in registry.snapshots(record):
                if snapshot.state in ("reverting", "interrupted"):
                    backend.creation.undo_revert(record.name, snapshot.name, record.login)
                    registry.forget_snapshot(snapshot, audit=self._entry(backend, record.name, "put back"))
                    report.put_back.append(f"{backend.db_type}:{record.name}")
                elif snapshot.state != "ready" or not backend.exists(snapshot.name):
                    backend.drop_database(snapshot.name, registered=True)
                    registry.forget_snapshot(snapshot)
                    report.unfinished.append(f"{backend.db_type}:{snapshot.name}")

    def _settle_databases(self, backend: Backend, report: Report) -> None:
        """Drop the databases a crash left half-made (recorded, never ready), with their logins."""
        registry = self.service.registry
        for record in registry.databases(backend.db_type):
            if not record.ready:
                self.service.remove(backend, record, self._entry(backend, record.name, "unfinished"))
                report.unfinished.append(f"{backend.db_type}:{record.name}")

    def _settle_copies(self, backend: Backend, existing: set[str], on_server: set[str], report: Report) -> None:
        """Drop course copies that were not finished or are gone, and unnamed ones (see the module)."""
        registry = self.service.registry
        named = {s.name for record in registry.databases(backend.db_type) for s in registry.snapshots(record)}
        for copy in registry.copies(backend.db_type):
            if copy.ready and copy.kind != "spent" and copy.name in existing:
                named.add(copy.name)
                continue
            backend.drop_database(copy.name, copy.name, registered=True)
            registry.forget_copy(copy)
            if copy.kind != "spent":  # a spent one is what a handout left, dropped as planned
                report.unfinished.append(f"{backend.db_type}:{copy.name}")
        for name in sorted(name for name in on_server - named if name.startswith(RESERVED_PREFIX)):
            backend.drop_database(name, name, registered=False)
            report.unfinished.append(f"{backend.db_type}:{name}")

    def _keeper(self) -> User:
        """Who adopted databases belong to: the first instructor, or any instructor."""
        registry = self.service.registry
        first = registry.user(self.service.settings.first_instructor)
        if first is not None and first.role == "instructor":
            return first
        return next(user for user in registry.users() if user.role == "instructor")

    @staticmethod
    def _entry(backend: Backend, name: str, outcome: str) -> AuditEntry:
        return AuditEntry.new(ACTOR, "reconcile", f"{backend.db_type}:{name}", outcome=outcome)
