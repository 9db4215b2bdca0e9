"""Snapshots: a database as it was at one moment, kept on its server, to revert to.

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
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass

from dbwrapper.accounts import Actor
from dbwrapper.backends import Backend
from dbwrapper.errors import DbWrapperError, InvalidInput
from dbwrapper.names import RESERVED_PREFIX
from dbwrapper.quotas import Quota
from dbwrapper.registry import DatabaseRecord, Registry, Snapshot, User
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
    stamp = f"{snapshot.taken_at:%Y-%m-%d %H:%M:%S} UTC"
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
        backend, record = self.service.managed(actor, db_type, name)
        chosen = self._find(record, snapshot_id)
        with self.service.audited(actor, "revert", f"{backend.db_type}:{record.name}") as entry:
            entry.detail = f"to {audit_name(chosen)}"
            self.service.check_idle(backend, record)
            owner = self._owner(record)
            # What the database holds is kept past the quota, once: a revert is not refused
            # for want of room, but reverting again and again does not fill the server.
            with self._room_for(actor, owner, room=1):
                before = self.registry.add_snapshot(Snapshot(
                    database_id=record.id, name=snapshot_name(), state="reverting",
                    label=f"before reverting to the snapshot of {chosen.taken_at:%Y-%m-%d %H:%M:%S}",
                ))
            try:
                ended = backend.creation.revert_database(record.name, chosen.name, before.name, record.login)
            except DbWrapperError:
                self._after_failed_revert(backend, before)
                raise
            self.registry.set_snapshot(before, "ready", backend.catalog.database_size(before.name), audit=entry)
        return (f"Reverted {record.name} to {describe(chosen)}. What it held before is kept as the "
                f"snapshot {describe(before)}.{ended_note(ended)}")

    def delete(self, actor: Actor, db_type: object, name: str | None, snapshot_id: object) -> str:
        backend, record = self.service.managed(actor, db_type, name)
        chosen = self._find(record, snapshot_id)
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
