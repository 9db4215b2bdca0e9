"""What the service does, with no HTTP in it.

The web controllers, the command line and (later) a JSON API call these
functions and only render what they return. Every function takes the
:class:`~dbwrapper.accounts.Actor` asking, checks what that actor may do,
validates its input before any SQL runs, records what happened in the audit
log, and raises only :mod:`dbwrapper.errors`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from dbwrapper.accounts import Actor, generate_password
from dbwrapper.backends import Backend, DatabaseInfo
from dbwrapper.backends.base import SIZE_CACHE_SECONDS, Login
from dbwrapper.config import CONTROL_DATABASE, Settings
from dbwrapper.copies import CourseCopies
from dbwrapper.engines import Engines
from dbwrapper.errors import DatabaseBusy, DbWrapperError, Forbidden, InvalidInput, Refused
from dbwrapper.names import RESERVED_PREFIX, name_owner, render_name, validate_user_database
from dbwrapper.registry import AuditEntry, DatabaseRecord, Registry, User


@dataclass(frozen=True)
class Listed:
    """One database in a listing, with its owner when this service made it."""

    info: DatabaseInfo
    owner: str | None

    @property
    def name(self) -> str:
        return self.info.name


@dataclass(frozen=True)
class Listing:
    """A server's databases as the asking actor may see them."""

    backend: Backend
    databases: list[Listed]


@dataclass(frozen=True)
class Credentials:
    """How the owner connects to their database."""

    backend: Backend
    name: str
    login: Login
    #: When the expiry job purges it; ``None``: never.
    expires_at: datetime | None = None

    @property
    def url(self) -> str:
        """A SQLAlchemy URL, password included: it is the owner's to use."""
        return self.backend.client_database_url(self.name, self.login).render_as_string(hide_password=False)

    @property
    def command(self) -> str:
        return self.backend.client.command(self.name, self.login)


@dataclass(frozen=True)
class Outcome:
    """What a create or destroy did, and the server's databases afterwards."""

    name: str
    #: ``True`` if the call changed something; ``False`` if there was nothing to do.
    changed: bool
    #: One sentence saying what happened, the same on a page and on the command line.
    summary: str
    listing: Listing
    #: For a database the actor owns, how to connect to it.
    credentials: Credentials | None = None

    @property
    def backend(self) -> Backend:
        return self.listing.backend


#: The most copies of a course prepared in one go: a class, not a server's worth of disk.
MAX_PREPARED_COPIES = 200


class DatabaseService:
    """Create, list and destroy per-user databases on the configured backends."""

    def __init__(self, engines: Engines) -> None:
        self.engines = engines
        self.copies = CourseCopies(engines, engines.settings.pool_size)
        self._sizes_recorded_at: dict[str, float] = {}
        self._user_locks: dict[int, threading.Lock] = {}
        self._sizes_lock = threading.Lock()  # also guards _user_locks

    @property
    def settings(self) -> Settings:
        return self.engines.settings

    @property
    def registry(self) -> Registry:
        return self.engines.registry

    def backends(self) -> list[Backend]:
        """The configured backends, in a stable order."""
        return [self.engines.backend(kind) for kind in self.engines.kinds]

    def default_name(self, actor: Actor) -> str:
        """The actor's database name, from the configured template (``alice_7001``)."""
        return render_name(self.settings.name_template, user=actor.name, port=self.settings.port)

    def resolve(self, actor: Actor, db_type: object, name: str | None) -> tuple[Backend, str]:
        """The backend of ``db_type`` and a valid name (the actor's own when ``None``), or a 400."""
        name = self.default_name(actor) if name is None else validate_user_database(name)
        return self.engines.backend(db_type), name

    @contextmanager
    def audited(self, actor: Actor, action: str, target: str) -> Iterator[AuditEntry]:
        """Record the action's outcome, success or failure, with who and what.

        The block may set the entry's outcome, or write it itself in the same
        transaction as the registry change it describes.
        """
        entry = AuditEntry(actor=f"{actor.name} ({actor.via})", action=action, target=target,
                           outcome="ok", detail="")
        try:
            yield entry
        except DbWrapperError as error:
            entry.outcome = "refused" if isinstance(error, (Forbidden, Refused)) else "failed"
            entry.detail = str(error)
            self.registry.add_audit(entry)
            raise
        if entry.id is None:  # not yet written with a registry change
            self.registry.add_audit(entry)

    def authorize(self, actor: Actor, backend: Backend, name: str) -> DatabaseRecord | None:
        """The registry's record of ``name``; a trainee may touch only their own, and make only
        databases whose name is their own (see :meth:`name_owner`)."""
        record = self.registry.database(backend.db_type, name)
        if actor.is_instructor:
            return record
        if record is not None and record.owner_id != actor.user.id:
            raise Forbidden(f"{name} belongs to someone else.")
        if record is None and (owner := self.name_owner(name)) != actor.name:
            if owner is not None:
                raise Forbidden(f"{name} is {owner}'s own name (it starts with {owner}_); choose another.")
            raise Forbidden(f"Trainees may only use databases named {actor.name}_…; {name} is not theirs.")
        return record

    def name_owner(self, name: str) -> str | None:
        """The user whose own name ``name`` is: their database's by the template, or one with
        their prefix (:func:`~dbwrapper.names.name_owner`)."""
        users = (user.name for user in self.registry.users())
        return name_owner(name, users, self.settings.name_template, self.settings.port)

    def check_destroy(self, actor: Actor, db_type: object, name: str | None) -> tuple[Backend, str]:
        """What a destroy would act on, checked as the destroy itself checks, for a confirmation page."""
        backend, name = self.resolve(actor, db_type, name)
        self.authorize(actor, backend, name)
        return backend, name

    def listing(self, actor: Actor, db_type: object) -> Listing:
        """The server's databases for an instructor; their own for a trainee."""
        backend = self.engines.backend(db_type)
        owners = {db.name: db.owner for db in self.registry.databases(backend.db_type)}
        # Course masters, spares and snapshots are dbwrapper's, not anybody's working databases.
        infos = [info for info in backend.list_databases() if not info.name.startswith(RESERVED_PREFIX)]
        self._record_sizes(backend, {info.name: info.size_bytes for info in infos if info.name in owners})
        listed = [Listed(info, owners.get(info.name)) for info in infos]
        if not actor.is_instructor:
            listed = [db for db in listed if db.owner == actor.name]
        return Listing(backend, listed)

    def user_lock(self, user: User) -> threading.Lock:
        """Held while checking a quota of ``user``'s and using it, so two requests cannot both pass."""
        with self._sizes_lock:
            return self._user_locks.setdefault(user.id, threading.Lock())

    def _record_sizes(self, backend: Backend, sizes: dict[str, int | None]) -> None:
        """Keep the registry's "size when last seen", at most once per size measurement."""
        now = time.monotonic()
        with self._sizes_lock:
            if now - self._sizes_recorded_at.get(backend.db_type, float("-inf")) < SIZE_CACHE_SECONDS:
                return
            self._sizes_recorded_at[backend.db_type] = now
        try:
            self.registry.record_sizes(backend.db_type, sizes)
        except DbWrapperError:
            pass  # only a note for the registry: the listing itself must not fail for it

    def my_databases(self, actor: Actor) -> list[Credentials]:
        """Every database the actor owns, with how to connect."""
        return [
            Credentials(
                self.engines.backend(db.backend), db.name, Login(db.login, db.password), db.expires_at
            )
            for db in self.registry.databases(owner=actor.user)
            if db.backend in self.engines.kinds and db.ready
        ]

    def create(
        self, actor: Actor, db_type: object, name: str | None = None, owner: User | None = None,
        course: str | None = None,
    ) -> Outcome:
        """Create the database with its own login unless it exists; asking twice changes nothing.

        It belongs to ``actor``, or to ``owner`` when an instructor makes it for someone.
        With ``course``, it starts with that course's content (see :mod:`dbwrapper.copies`),
        owned by its own login; if that fails, the database and its login are removed again.
        """
        backend, name = self.resolve(actor, db_type, name)
        sql = self.course_sql(course, backend) if course is not None else None
        if owner is not None and owner.id != actor.user.id:
            actor.require_instructor("create databases for someone else")
        owner = owner or actor.user
        with self.audited(actor, "create", f"{backend.db_type}:{name}") as entry:
            record = self.authorize(actor, backend, name)
            if record is not None and record.owner_id != owner.id and owner.id != actor.user.id:
                # Made for someone (a class): never hand them someone else's database.
                raise Refused(f"{name} already exists and belongs to {record.owner}, not {owner.name}.")
            if record is None and actor.is_instructor and (own := self.name_owner(name)) not in (None, owner.name):
                raise Refused(f"{name} is {own}'s own name; a database named so is theirs to make.")
            if record is not None:
                entry.outcome = "unchanged"
                summary = f"{name} already exists on {backend.label}; nothing was changed."
                login = Login(record.login, record.password)
                return self._outcome(actor, backend, name, False, summary, login)
            login = Login(name, generate_password())
            # One create at a time per user, so that two at once cannot both pass the quota.
            with self.user_lock(owner):
                owned = len(self.registry.databases(owner=owner))
                if not actor.is_instructor and owned >= owner.quota:
                    raise Refused(
                        f"{owner.name} already has {owner.quota} database(s), their quota; "
                        "destroy one first or ask an instructor."
                    )
                # Recorded before it is made: a crash while making it leaves a record that
                # reconciling finds, never a half-made database that nobody knows of.
                pending = self.registry.record_database(
                    backend.db_type, name, owner, login.name, login.password, None,
                    expires_at=self._new_expiry(), course=course, ready=False,
                )
            if pending is None:
                entry.outcome = "unchanged"
                summary = f"{name} is being created on {backend.label} already; nothing was changed."
                return self._outcome(actor, backend, name, False, summary)
            try:
                if course is not None and sql is not None:
                    made = self.copies.provision(backend, course, sql, name, login)
                else:
                    made = "empty" if backend.create_database(name, login) else None
            except BaseException:
                # Nothing was made; if even the registry fails now, the record stays not
                # ready and reconciling removes it: the error to report is the first one.
                with suppress(DbWrapperError):
                    self.registry.forget_database(pending, None)
                raise
            if made is None:
                self.registry.forget_database(pending, None)
                entry.outcome = "unchanged"
                summary = f"{name} already exists on {backend.label}; nothing was changed."
                return self._outcome(actor, backend, name, False, summary)
            entry.detail = made
            try:
                self.registry.mark_database_ready(pending, audit=entry)
            except DbWrapperError:
                # Not ready in the registry means nobody is shown it: undo.
                backend.drop_database(name, login.name, registered=True)
                raise
            summary = f"Created {name} on {backend.label}" + (f" for the course {course}." if course else ".")
            return self._outcome(actor, backend, name, True, summary, login)

    def prepare_copies(
        self, actor: Actor, db_type: object, course: str, count: object,
        progress: Callable[[int, int], None] = lambda done, total: None,
    ) -> int:
        """Make the pool hold ``count`` ready copies of ``course`` now, before a class, so that
        every trainee's database is then a rename; how many were made. Instructors only.

        The pool's job keeps ``pool_size`` of them; copies beyond that stay until used.
        """
        backend, sql = self.check_preparation(actor, db_type, course, count)
        assert isinstance(count, int)
        with self.audited(actor, "prepare copies", f"{backend.db_type}:{course}") as entry:
            if not self.copies.copyable(backend, self.copies.master(backend, course, sql)):
                raise Refused(f"The course {course} is loaded from its SQL on {backend.label} each time "
                              "(it holds what a copy on the server cannot carry, such as events); "
                              "copies cannot be prepared.")
            made = self.copies.top_up(backend, course, sql, progress, size=count)
            entry.detail = f"{made} made, {count} ready"
        return made

    def check_preparation(self, actor: Actor, db_type: object, course: str, count: object) -> tuple[Backend, str]:
        """The backend and course SQL :meth:`prepare_copies` would use, its input checked first."""
        actor.require_instructor("prepare copies of a course")
        backend = self.engines.backend(db_type)
        sql = self.course_sql(course, backend)
        if not isinstance(count, int) or not 1 <= count <= MAX_PREPARED_COPIES:
            raise InvalidInput(f"Prepare from 1 to {MAX_PREPARED_COPIES} copies at a time.")
        return backend, sql

    def course_sql(self, course: str, backend: Backend) -> str:
        """The course's SQL for ``backend``; a 400 naming the courses if there is none."""
        found = self.registry.course(course) if isinstance(course, str) else None
        if found is None:
            known = ", ".join(c.name for c in self.registry.courses()) or "none yet"
            raise InvalidInput(f"There is no course {course!r}; the courses are: {known}.")
        sql = found.sql(backend.db_type)
        if not sql:
            raise InvalidInput(f"The course {course} has no content for {backend.label}.")
        return sql

    def destroy(self, actor: Actor, db_type: object, name: str | None = None) -> Outcome:
        """Drop a database this service created, and its login, ending the sessions still on it.

        The server's own databases and the registry's are refused here, and
        databases the server says this service did not create are refused by
        the backend: a typo must never drop someone's data.
        """
        backend, name = self.resolve(actor, db_type, name)
        with self.audited(actor, "destroy", f"{backend.db_type}:{name}") as entry:
            if name in backend.system_databases or name == CONTROL_DATABASE:
                raise Refused(
                    f"{name} belongs to the {backend.label} server or to dbwrapper; it is never dropped."
                )
            record = self.authorize(actor, backend, name)
            if record is None and not actor.is_instructor:
                entry.outcome = "unchanged"
                summary = f"You have no database named {name} on {backend.label}; nothing was changed."
                return Outcome(name, False, summary, self.listing(actor, backend.db_type))
            if record is None:
                dropped, snapshots = backend.drop_database(name, registered=False), 0
            else:
                self.check_idle(backend, record)
                dropped, snapshots = self.remove(backend, record, entry)
            if not dropped:
                entry.outcome = "unchanged"
                summary = f"{name} does not exist on {backend.label}; nothing was changed."
            else:
                summary = f"Dropped {name} from {backend.label}."
            if snapshots:
                summary += f" Its {snapshots} snapshot(s) were dropped with it."
            return Outcome(name, dropped, summary, self.listing(actor, backend.db_type))

    def check_idle(self, backend: Backend, record: DatabaseRecord) -> None:
        """Refuse (409) to touch a database a snapshot or a revert is at work on, in this process
        or another: mid-revert it holds nothing (what it held is set aside as a snapshot being
        made), and archiving or destroying it then would lose that. A revert that failed and
        could not put back what it had set aside (``interrupted``) is put back first."""
        snapshots = self.registry.snapshots(record)
        for interrupted in (s for s in snapshots if s.state == "interrupted"):
            backend.creation.undo_revert(record.name, interrupted.name, record.login)
            self.registry.forget_snapshot(interrupted)
        states = {snapshot.state for snapshot in snapshots}
        if "reverting" in states:
            raise DatabaseBusy(
                f"A revert of {record.name} is under way, or did not finish (then reconciling, at the "
                "service's next start or with dbwrapper reconcile, puts back what it held); nothing was changed."
            )
        if "taking" in states:
            raise DatabaseBusy(f"A snapshot of {record.name} is under way; try again once it ends.")

    def remove(self, backend: Backend, record: DatabaseRecord, audit: AuditEntry | None) -> tuple[bool, int]:
        """Drop a managed database with its snapshots and its login, and forget it.

        Returns whether the database was there, and how many snapshots it had.
        The snapshots go first: on PostgreSQL their content belongs to the login,
        which cannot be dropped while they exist. Were the process to die half-way,
        reconciling forgets the snapshots that are gone and finishes the rest.
        """
        snapshots = self.registry.snapshots(record)
        for snapshot in snapshots:
            backend.drop_database(snapshot.name, registered=True)
        dropped = backend.drop_database(record.name, record.login, registered=True)
        self.registry.forget_database(record, audit=audit)
        return dropped, len(snapshots)

    def _new_expiry(self) -> datetime | None:
        hours = self.settings.lifetime_hours
        return datetime.now(UTC) + timedelta(hours=hours) if hours > 0 else None

    def set_expiry(self, actor: Actor, db_type: object, name: str, expires_at: datetime | None) -> None:
        """Move a database's expiry (``None``: make it permanent); instructors only."""
        actor.require_instructor("change when a database expires")
        backend, name = self.resolve(actor, db_type, name)
        with self.audited(actor, "expiry", f"{backend.db_type}:{name}") as entry:
            record = self.registry.database(backend.db_type, name)
            if record is None:
                raise InvalidInput(f"{name} is not a database dbwrapper manages on {backend.label}.")
            entry.detail = expires_at.isoformat(timespec="minutes") if expires_at else "permanent"
            self.registry.set_expiry(record, expires_at, audit=entry)

    def extend_expiry(self, actor: Actor, db_type: object, name: str, by: timedelta) -> None:
        """Push an expiry back by ``by``, from now if it is already due or the database is permanent."""
        backend, name = self.resolve(actor, db_type, name)
        record = self.registry.database(backend.db_type, name)
        now = datetime.now(UTC)
        start = max(record.expires_at, now) if record is not None and record.expires_at else now
        self.set_expiry(actor, backend.db_type, name, start + by)

    def expiring(self, limit: int | None = None) -> list[DatabaseRecord]:
        """Databases that will expire, soonest first (those already due come first)."""
        dated = [db for db in self.registry.databases() if db.expires_at is not None and db.ready]
        return sorted(dated, key=lambda db: db.expires_at or datetime.max.replace(tzinfo=UTC))[:limit]

    def describe(self, actor: Actor, backend: Backend, name: str, summary: str) -> Outcome:
        """An outcome for something done to ``name`` elsewhere (a restore), with its credentials."""
        record = self.authorize(actor, backend, name)
        login = Login(record.login, record.password) if record else None
        return self._outcome(actor, backend, name, True, summary, login)

    def _outcome(
        self, actor: Actor, backend: Backend, name: str, changed: bool, summary: str,
        login: Login | None = None,
    ) -> Outcome:
        record = self.registry.database(backend.db_type, name)
        expires_at = record.expires_at if record else None
        credentials = Credentials(backend, name, login, expires_at) if login else None
        return Outcome(name, changed, summary, self.listing(actor, backend.db_type), credentials)
