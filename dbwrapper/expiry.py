"""The expiry job: expired databases are archived (where configured), then dropped.

It runs in the background as a CherryPy ``Monitor``, which quits on its
first exception; so :meth:`Purger.run_once` catches everything, logs it with
its traceback, audits it, and goes on with the next database. A database
whose archive fails is never dropped: it is purged on a later run, once the
archive can be made.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial

from dbwrapper.accounts import Actor
from dbwrapper.archives import Archives
from dbwrapper.errors import InvalidInput
from dbwrapper.joblog import log as job_log
from dbwrapper.registry import DatabaseRecord, User
from dbwrapper.service import DatabaseService

#: This job's lines in the log.
log = partial(job_log, "EXPIRY")

#: How far "+7 days" moves an expiry.
EXTENSION = timedelta(days=7)

#: Who the audit log says purged a database.
EXPIRY_ACTOR = Actor(User(id=0, name="dbwrapper", role="instructor", quota=0), via="expiry")


class Expiry:
    """When databases expire: listed soonest first, moved, made permanent or mortal again by
    instructors."""

    def __init__(self, service: DatabaseService) -> None:
        self.service = service

    @property
    def lifetime_days(self) -> float:
        """How many days a new database lives (0: for ever), which :meth:`make_mortal` gives one."""
        return self.service.settings.lifetime_hours / 24

    def set(self, actor: Actor, db_type: object, name: str, expires_at: datetime | None) -> datetime | None:
        """Move a database's expiry (``None``: make it permanent); instructors only. Returns it."""
        actor.require_instructor("change when a database expires")
        backend, name = self.service.resolve(actor, db_type, name)
        with self.service.audited(actor, "expiry", f"{backend.db_type}:{name}") as entry:
            _, record = self.service.managed(actor, backend.db_type, name)
            entry.detail = expires_at.isoformat(timespec="minutes") if expires_at else "permanent"
            self.service.registry.set_expiry(record, expires_at, audit=entry)
        return expires_at

    def extend(self, actor: Actor, db_type: object, name: str, by: timedelta) -> datetime | None:
        """Push an expiry back by ``by``, from now if it is already due or the database is permanent."""
        backend, name = self.service.resolve(actor, db_type, name)
        record = self.service.registry.database(backend.db_type, name)
        now = datetime.now(UTC)
        start = max(record.expires_at, now) if record is not None and record.expires_at else now
        return self.set(actor, backend.db_type, name, start + by)

    def make_mortal(self, actor: Actor, db_type: object, name: str) -> datetime | None:
        """Give a database the lifetime a new one gets (``lifetime_hours``), from now: a permanent
        one expires again. Refused where databases are made permanent (a lifetime of 0)."""
        expires_at = self.service.new_expiry()
        if expires_at is None:
            raise InvalidInput("Databases here have no lifetime (lifetime_hours is 0): none expires.")
        return self.set(actor, db_type, name, expires_at)

    def expiring(self, limit: int | None = None) -> list[DatabaseRecord]:
        """Databases that will expire, soonest first (those already due come first)."""
        dated = [db for db in self.service.registry.databases() if db.expires_at is not None and db.ready]
        return sorted(dated, key=lambda db: db.expires_at or datetime.max.replace(tzinfo=UTC))[:limit]

    def permanent(self) -> list[DatabaseRecord]:
        """Databases kept for ever (they never expire), by server and name."""
        return [db for db in self.service.registry.databases() if db.expires_at is None and db.ready]


class Purger:
    """Finds expired databases and purges them, one at a time, surviving every failure."""

    def __init__(
        self, service: DatabaseService, expiry: Expiry, archives: Archives, *, archive_first: bool = True,
    ) -> None:
        self.service = service
        self.expiry = expiry
        self.archives = archives
        self.archive_first = archive_first

    def due(self, now: datetime | None = None) -> list[str]:
        """``backend:name`` of every database past its expiry."""
        now = now or datetime.now(UTC)
        return [
            f"{db.db_type}:{db.name}" for db in self.expiry.expiring()
            if db.expires_at is not None and db.expires_at <= now
        ]

    def run_once(self, now: datetime | None = None) -> list[str]:
        """Purge what is due; returns what was purged. Never raises."""
        purged: list[str] = []
        try:
            due = self.due(now)
        except Exception:  # the registry is down: try again next time
            log("The expiry job could not read the registry", failed=True)
            return purged
        for target in due:
            db_type, name = target.split(":", 1)
            try:
                if self.archive_first:
                    self.archives.archive(EXPIRY_ACTOR, db_type, name, drop=True)
                else:
                    self.service.destroy(EXPIRY_ACTOR, db_type, name)
                purged.append(target)
                log(f"Purged expired database {target}")
            except Exception:  # audited by the service; keep the database, go on with the next
                log(f"The expiry job could not purge {target}; it is kept", failed=True)
        return purged
