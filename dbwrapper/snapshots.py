"""Snapshots: a database as it was at one moment, kept on its server, to revert to; and
resetting a course's database to the course's start, which keeps the present as a snapshot too.

The seed's "RESTful Thoughts" article asks for UTC-stamped snapshots and
"revert to snapshot". A snapshot is a copy made on the server (see
:meth:`Backend.take_snapshot`), named ``_dbw_snap_…`` so that it never shows
as anybody's working database, and owned by the server's super-user so that
nobody changes it. Reverting never loses the present: the state before the
revert is set aside as a snapshot of its own, by renaming rather than copying.

Snapshots count against a quota per owner (instructors have none). The
snapshot a revert sets aside is kept even past the quota: a revert is never
refused for want of room.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass

from dbwrapper.accounts import Actor
from dbwrapper.backends import Backend
from dbwrapper.copies import as_source
from dbwrapper.errors import DbWrapperError, InvalidInput, Refused
from dbwrapper.formatting import utc_text
from dbwrapper.names import RESERVED_PREFIX
from dbwrapper.quotas import Quota
from dbwrapper.registry import AuditEntry, DatabaseRecord, Registry, Snapshot, User
from dbwrapper.service import DatabaseService

LABEL_LENGTH = 60
#: A trainee's snapshots, over all their databases.
SNAPSHOTS = Quota("snapshot", "delete one first", past_it="a revert")


def snapshot_name() -> str:
    """A new snapshot's database name: ``_dbw_snap_3fa2b1c9d0e4``."""
    return f"{RESERVED_PREFIX}snap_{secrets.token_hex(6)}"


def clean_label(label: object) -> str:
    """A label as given, trimmed: printable text of at most :data:`LABEL_LENGTH` characters."""
    if not isinstance(label, str):
        raise InvalidInput("Give a snapshot's label once, as text.")
    label = " ".join(label.split())
    if len(label) > LABEL_LENGTH or not label.isprintable():
        raise InvalidInput(f"A snapshot label is printable text of at most {LABEL_LENGTH} characters.")
    return label


def describe(snapshot: Snapshot) -> str:
    """``2026-11-27 10:15:03 UTC "before the joins exercise"``."""
    stamp = utc_text(snapshot.taken_at, seconds=True)
    return f'{stamp} "{snapshot.label}"' if snapshot.label else stamp


def audit_name(snapshot: Snapshot) -> str:
    """A snapshot as the audit log names it: as its users see it (its number, time and label),
    and its database's name on the server, for whoever looks there."""
    return f"#{snapshot.id} {describe(snapshot)} ({snapshot.name})"


@dataclass(frozen=True)
class Snapshots:
    """Take, list, revert to and delete a managed database's snapshots."""

    service: DatabaseService
    #: How many snapshots a trainee may keep, over all their databases.
    quota: int

    @property
    def registry(self) -> Registry:
        return self.service.registry

    def list(self, actor: Actor, db_type: object, name: str | None) -> tuple[Backend, DatabaseRecord, list[Snapshot]]:
        """The database's snapshots, newest first."""
        backend, record = self.service.managed(actor, db_type, name)
        return backend, record, [s for s in self.registry.snapshots(record) if s.state == "ready"]

    def take(self, actor: Actor, db_type: object, name: str | None, label: object = "") -> tuple[Snapshot, str]:
        """Snapshot the database now; the snapshot and a sentence saying what happened."""
        backend, record = self.service.managed(actor, db_type, name)
        label = clean_label(label)
        with self.service.audited(actor, "snapshot", f"{backend.db_type}:{record.name}") as entry:
            self.service.check_idle(backend, record)
            owner = self._owner(record)
            with self._room_for(actor, owner):
                snapshot = self.registry.add_snapshot(
                    Snapshot(database_id=record.id, name=snapshot_name(), label=label, state="taking")
                )
                try:
                    ended = backend.creation.take_snapshot(record.name, snapshot.name, record.login)
                except DbWrapperError:
                    self._discard(backend, snapshot)
                    raise
            entry.detail = audit_name(snapshot)
            self.registry.set_snapshot(snapshot, "ready", backend.catalog.database_size(snapshot.name), audit=entry)
        return snapshot, f"Took a snapshot of {record.name}: {describe(snapshot)}.{ended_note(ended)}"

    def revert(self, actor: Actor, db_type: object, name: str | None, snapshot_id: object) -> str:
        """Give the database a snapshot's content again, keeping what it held as a new snapshot."""
        backend, record, chosen = self.find(actor, db_type, name, snapshot_id)
        with self.service.audited(actor, "revert", f"{backend.db_type}:{record.name}") as entry:
            entry.detail = f"to {audit_name(chosen)}"
            self.service.check_writable(actor, record)
            label = f"before reverting to the snapshot of {utc_text(chosen.taken_at, seconds=True)}"
            before, ended = self._replace(actor, backend, record, label, entry, lambda before: (
                backend.creation.revert_database(record.name, chosen.name, before, record.login)))
        return (f"Reverted {record.name} to {describe(chosen)}. What it held before is kept as the "
                f"snapshot {describe(before)}.{ended_note(ended)}")

    def check_reset(self, actor: Actor, db_type: object, name: str | None) -> tuple[Backend, DatabaseRecord, str]:
        """What :meth:`reset` would act on (the backend, the database, its course's SQL), checked
        as the reset itself checks: for a confirmation page, and before a reset is started."""
        backend, record = self.service.managed(actor, db_type, name)
        self.service.check_writable(actor, record)
        if record.course is None:
            raise InvalidInput(f"{record.name} was not made for a course, so it has no course content to go "
                               "back to; revert it to a snapshot instead, or destroy it and create it again.")
        return backend, record, self.service.course_sql(record.course, backend)

    def reset(self, actor: Actor, db_type: object, name: str | None) -> str:
        """Give the database its course's starting content again, keeping what it held as a
        snapshot ("before reset to <course>"); its login and password stay as they are.

        The content comes from the course's warm pool when it has a ready copy (swapped in:
        PostgreSQL renames it, MySQL moves its tables), otherwise as a copy of the course's
        master made on the server. Like a revert (the same workflow,
        :meth:`BaseCreation.replace_content`), what it held is set aside first, and put back
        if the new content cannot be put in; a crash half-way is undone by reconciling.
        """
        backend, record, sql = self.check_reset(actor, db_type, name)
        course = record.course
        assert course is not None
        copies = self.service.copies
        with self.service.audited(actor, "reset", f"{backend.db_type}:{record.name}") as entry:
            master = copies.master(backend, course, sql)
            if not copies.copyable(backend, master):
                raise Refused(f"The course {course} is loaded from its SQL on {backend.label} each time (it holds "
                              "what a copy made on the server cannot carry, such as events), so a database of it "
                              "cannot be reset; archive it, then destroy it and create it again.")
            backend.creation.check_copyable(record.name)  # refused before a spare is taken from the pool

            def fill(before: str) -> int:
                # Claimed only now, with nothing left to refuse: a spare claimed is spent whatever
                # happens next, and the pool's job drops what is left of it.
                spare = self.registry.claim_spare(backend.db_type, course)
                entry.detail = f"to {course}, " + ("from the pool" if spare else "copied from its master")
                return backend.creation.reset_database(
                    record.name, as_source(spare or master), before, record.login, spare=spare is not None,
                )

            before, ended = self._replace(actor, backend, record, f"before reset to {course}", entry, fill)
        return (f"Reset {record.name} to the start of the course {course}. What it held before is kept as the "
                f"snapshot {describe(before)}.{ended_note(ended)}")

    def _replace(
        self, actor: Actor, backend: Backend, record: DatabaseRecord, label: str, entry: AuditEntry,
        fill: Callable[[str], int],
    ) -> tuple[Snapshot, int]:
        """Set what the database holds aside as a new snapshot labelled ``label``, and ``fill``
        it anew (told the snapshot's name; it returns how many sessions it ended): a revert,
        or a reset. The snapshot, and how many sessions were ended."""
        self.service.check_idle(backend, record)
        owner = self._owner(record)
        # What the database holds is kept past the quota, once: a revert is not refused
        # for want of room, but reverting again and again does not fill the server.
        with self._room_for(actor, owner, room=1):
            before = self.registry.add_snapshot(
                Snapshot(database_id=record.id, name=snapshot_name(), state="reverting", label=label)
            )
        try:
            ended = fill(before.name)
        except DbWrapperError:
            self._after_failed_revert(backend, before)
            raise
        self.registry.set_snapshot(before, "ready", backend.catalog.database_size(before.name), audit=entry)
        return before, ended

    def delete(self, actor: Actor, db_type: object, name: str | None, snapshot_id: object) -> str:
        backend, record, chosen = self.find(actor, db_type, name, snapshot_id)
        with self.service.audited(actor, "delete snapshot", f"{backend.db_type}:{record.name}") as entry:
            entry.detail = audit_name(chosen)
            backend.drop_database(chosen.name, registered=True)
            self.registry.forget_snapshot(chosen, audit=entry)
        return f"Deleted the snapshot {describe(chosen)} of {record.name}."

    def _owner(self, record: DatabaseRecord) -> User:
        owner = self.registry.user(record.owner)
        assert owner is not None  # a record's owner cannot be removed while it exists
        return owner

    def _room_for(self, actor: Actor, owner: User, room: int = 0) -> AbstractContextManager[None]:
        """Held while one more of ``owner``'s snapshots is made within their quota, and ``room``."""
        def kept() -> int:
            return len(self.registry.snapshots(owner=owner))

        return self.service.quotas.room_for(actor, owner, SNAPSHOTS, self.quota, kept, room=room)

    def find(
        self, actor: Actor, db_type: object, name: str | None, snapshot_id: object,
    ) -> tuple[Backend, DatabaseRecord, Snapshot]:
        """The snapshot a revert or a delete would act on, checked as they check it (for a
        confirmation page): the database, and one of its ready snapshots."""
        backend, record = self.service.managed(actor, db_type, name)
        return backend, record, self._find(record, snapshot_id)

    def _find(self, record: DatabaseRecord, snapshot_id: object) -> Snapshot:
        for snapshot in self.registry.snapshots(record):
            if str(snapshot.id) == str(snapshot_id) and snapshot.state == "ready":
                return snapshot
        raise InvalidInput(f"{record.name} has no snapshot {snapshot_id!s:.20}; list them to see which it has.")

    def _after_failed_revert(self, backend: Backend, before: Snapshot) -> None:
        """The backend put the database back as it was and nothing is left set aside: forget
        ``before``. If even that failed, or the server cannot say, it is ``interrupted``: the
        next work on the database puts it back first (:meth:`DatabaseService.check_idle`), or
        reconciling does. If the registry fails too, it stays ``reverting`` for reconciling."""
        with suppress(DbWrapperError):
            if not backend.exists(before.name):
                self.registry.forget_snapshot(before)
                return
        with suppress(DbWrapperError):
            self.registry.set_snapshot(before, "interrupted")

    def _discard(self, backend: Backend, snapshot: Snapshot) -> None:
        """Remove a snapshot that failed half-way. If the server is the problem, it is marked
        ``failed``: no longer at work (see :meth:`DatabaseService.check_idle`), and dropped by
        reconciling."""
        try:
            backend.drop_database(snapshot.name, registered=True)
        except DbWrapperError:
            with suppress(DbWrapperError):  # the registry may be down too: then it stays "taking"
                self.registry.set_snapshot(snapshot, "failed")
            return
        self.registry.forget_snapshot(snapshot)


def ended_note(ended: int) -> str:
    """What the owner's clients will have seen, said plainly."""
    if not ended:
        return ""
    return f" {ended} open session(s) on it were ended; reconnect to go on."
