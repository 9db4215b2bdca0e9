"""What the service does, with no HTTP in it.

The web controllers, the command line and (later) a JSON API call these
functions and only render what they return. Every function takes the
:class:`~dbwrapper.accounts.Actor` asking, checks what that actor may do,
validates its input before any SQL runs, records what happened in the audit
log, and raises only :mod:`dbwrapper.errors`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from dbwrapper.accounts import Actor
from dbwrapper.backends import Backend, DatabaseInfo
from dbwrapper.backends.base import Login
from dbwrapper.config import CONTROL_DATABASE, Settings
from dbwrapper.copies import CourseCopies
from dbwrapper.errors import DatabaseBusy, DbWrapperError, Forbidden, InvalidInput, NotFound, Refused
from dbwrapper.names import RESERVED_PREFIX, name_owner, render_name, validate_user_database
from dbwrapper.passwords import generate_password
from dbwrapper.quotas import Quota, Quotas
from dbwrapper.registry import AuditEntry, DatabaseRecord, Registry, User
from dbwrapper.servers import Servers


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
    #: The course it was made for, which a reset gives it again; ``None``: none.
    course: str | None = None

    @property
    def url(self) -> str:
        """A SQLAlchemy URL, password included: it is the owner's to use."""
        return self.backend.client_database_url(self.name, self.login).render_as_string(hide_password=False)

    @property
    def command(self) -> str:
        return self.backend.client.command(self.name, self.login)


@dataclass(frozen=True)
class Outcome:
    """What a create or destroy did."""

    backend: Backend
    name: str
    #: ``True`` if the call changed something; ``False`` if there was nothing to do.
    changed: bool
    #: One sentence saying what happened, the same on a page and on the command line.
    summary: str
    #: For a database the actor owns, how to connect to it.
    credentials: Credentials | None = None


def owners_login(actor: Actor, record: DatabaseRecord) -> Login:
    """A database's own login, as its owner and instructors are shown it."""
    return Login(record.login, record.password)


#: A trainee's databases; the limit is each user's own (``User.quota``).
DATABASES = Quota("database", "destroy one first or ask an instructor")


class DatabaseService:
    """Create, list and destroy per-user databases on the configured backends."""

    def __init__(self, servers: Servers, process: str) -> None:
        self.servers = servers
        #: This process, as the records of the databases it is making name it, so that once
        #: it has ended another process can settle what it left (see :mod:`dbwrapper.settle`).
        self.process = process
        self.copies = CourseCopies(servers, servers.settings.pool_size)
        self.quotas = Quotas(lambda user: self.registry.holding(user))
        #: The login ``actor`` is shown for a database: its own, unless read-only mode shows its
        #: reader (the runtime sets :meth:`dbwrapper.readonly.ReadOnly.shown_login` here).
        self.shown_login: Callable[[Actor, DatabaseRecord], Login] = owners_login

    @property
    def settings(self) -> Settings:
        return self.servers.settings

    @property
    def registry(self) -> Registry:
        return self.servers.registry

    def backends(self) -> list[Backend]:
        """The configured backends, in a stable order."""
        return [self.servers.backend(db_type) for db_type in self.servers.db_types]

    def default_name(self, actor: Actor) -> str:
        """The actor's database name, from the configured template (``alice_7001``)."""
        return render_name(self.settings.name_template, user=actor.name, port=self.settings.port)

    def resolve(self, actor: Actor, db_type: object, name: str | None) -> tuple[Backend, str]:
        """The backend of ``db_type`` and a valid name (the actor's own when ``None``), or a 400."""
        name = self.default_name(actor) if name is None else validate_user_database(name)
        return self.servers.backend(db_type), name

    @contextmanager
    def audited(self, actor: Actor, action: str, target: str) -> Iterator[AuditEntry]:
        """Record the action's outcome, success or failure, with who and what.

        The block may set the entry's outcome, or write it itself in the same
        transaction as the registry change it describes.
        """
        entry = AuditEntry.new(actor.label, action, target)
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

    def managed(self, actor: Actor, db_type: object, name: str | None) -> tuple[Backend, DatabaseRecord]:
        """The database ``name`` (the actor's own by default) that dbwrapper manages, if the
        actor may use it: what snapshots, archives and expiry changes act on."""
        backend, name = self.resolve(actor, db_type, name)
        record = self.authorize(actor, backend, name)
        if record is None:
            raise InvalidInput(f"{name} is not a database dbwrapper manages on {backend.label}.")
        return backend, record

    def check_destroy(self, actor: Actor, db_type: object, name: str | None) -> tuple[Backend, str]:
        """What a destroy would act on, checked as the destroy itself checks, for a confirmation page."""
        backend, name = self.resolve(actor, db_type, name)
        self.authorize(actor, backend, name)
        return backend, name

    def listing(self, actor: Actor, db_type: object) -> Listing:
        """The server's databases for an instructor; their own for a trainee."""
        backend = self.servers.backend(db_type)
        owners = {db.name: db.owner for db in self.registry.databases(backend.db_type)}
        # Course masters, spares and snapshots are dbwrapper's, not anybody's working databases.
        infos = [info for info in backend.list_databases() if not info.name.startswith(RESERVED_PREFIX)]
        listed = [Listed(info, owners.get(info.name)) for info in infos]
        if not actor.is_instructor:
            listed = [db for db in listed if db.owner == actor.name]
        return Listing(backend, listed)

    def my_databases(self, actor: Actor) -> list[Credentials]:
        """Every database the actor owns, with how to connect."""
        return [self.credentials(actor, db) for db in self.managed_databases(actor) if db.owner_id == actor.user.id]

    def managed_databases(self, actor: Actor) -> list[DatabaseRecord]:
        """The managed databases the actor may act on (archive, snapshot, open): every one for an
        instructor, their own for a trainee; on the configured servers, and made."""
        owner = None if actor.is_instructor else actor.user
        return [db for db in self.registry.databases(owner=owner) if db.db_type in self.servers.db_types and db.ready]

    def credentials(self, actor: Actor, record: DatabaseRecord) -> Credentials:
        """How to connect to ``record``, with the login ``actor`` is shown (:attr:`shown_login`)."""
        return Credentials(
            self.servers.backend(record.db_type), record.name, self.shown_login(actor, record), record.expires_at,
            record.course,
        )

    def database(self, actor: Actor, db_type: object, name: str | None) -> DatabaseRecord:
        """The managed database ``name``, for its page: its owner's or an instructor's to see
        (403 otherwise), a 404 if dbwrapper manages no such database."""
        backend, name = self.resolve(actor, db_type, name)
        record = self.authorize(actor, backend, name)
        if record is None or not record.ready:
            raise NotFound(f"dbwrapper manages no database named {name} on {backend.label}.")
        return record

    def create(
        self, actor: Actor, db_type: object, name: str | None = None, owner: User | None = None,
        course: str | None = None,
    ) -> Outcome:
        """Create the database with its own login unless it exists; asking twice changes nothing.

        It belongs to ``actor``, or to ``owner`` when an instructor makes it for someone; without
        a ``name``, it is named for whoever it belongs to (``alice_7001``).
        With ``course``, it starts with that course's content (see :mod:`dbwrapper.copies`),
        owned by its own login; if that fails, the database and its login are removed again.
        Three steps: :meth:`_claim` the name in the registry, :meth:`_build` the database on
        its server, :meth:`_finish` by marking it ready.
        """
        if name is None and owner is not None:
            name = self.default_name(Actor(owner))
        backend, name = self.resolve(actor, db_type, name)
        sql = self.course_sql(course, backend) if course is not None else None
        if owner is not None and owner.id != actor.user.id:
            actor.require_instructor("create databases for someone else")
        owner = owner or actor.user
        with self.audited(actor, "create", f"{backend.db_type}:{name}") as entry:
            existing = self._check_create(actor, backend, name, owner)
            if existing is not None:
                login = self.shown_login(Actor(owner), existing)  # how the owner connects
                return self._unchanged(entry, backend, name, "already exists", login)
            claim = self._claim(actor, backend, name, owner, course)
            if claim is None:
                return self._unchanged(entry, backend, name, "is being created already")
            made = self._build(backend, claim, course, sql)
            if made is None:
                return self._unchanged(entry, backend, name, "already exists")
            entry.detail = made
            self._finish(backend, claim, entry)
            summary = f"Created {name} on {backend.label}" + (f" for the course {course}." if course else ".")
            # How the owner connects: a class's sheet hands it to them, read-only mode included.
            return self._outcome(backend, name, True, summary, self.shown_login(Actor(owner), claim))

    def _check_create(self, actor: Actor, backend: Backend, name: str, owner: User) -> DatabaseRecord | None:
        """The record of ``name`` if it exists already and may be shown to ``actor``; refuse a
        name that is not ``owner``'s to have."""
        record = self.authorize(actor, backend, name)
        if record is not None and record.owner_id != owner.id and owner.id != actor.user.id:
            # Made for someone (a class): never hand them someone else's database.
            raise Refused(f"{name} already exists and belongs to {record.owner}, not {owner.name}.")
        if record is None and actor.is_instructor and (own := self.name_owner(name)) not in (None, owner.name):
            raise Refused(f"{name} is {own}'s own name; a database named so is theirs to make.")
        return record

    def _claim(
        self, actor: Actor, backend: Backend, name: str, owner: User, course: str | None,
    ) -> DatabaseRecord | None:
        """Record ``name`` as being made for ``owner``, within their quota, with a new login;
        ``None`` if another request claimed it first.

        Recorded before it is made, naming this process: a crash while making it leaves a
        record that another process settles once this one has ended (or reconciling finds),
        never a half-made database that nobody knows of.
        """
        def kept() -> int:
            return self.registry.databases_owned(owner)  # not the cache: another process may have made one

        with self.quotas.room_for(actor, owner, DATABASES, owner.quota, kept):
            return self.registry.record_database(
                backend.db_type, name, owner, name, generate_password(), None,
                expires_at=self.new_expiry(), course=course, ready=False, process=self.process,
            )

    def _build(self, backend: Backend, claim: DatabaseRecord, course: str | None, sql: str | None) -> str | None:
        """Make the claimed database on its server: how (``empty``, or how the course's copy
        was made), or ``None`` if the server has a database of that name already. Whatever
        it does not make, it forgets from the registry."""
        login = Login(claim.login, claim.password)
        try:
            if course is not None and sql is not None:
                made = self.copies.provision(backend, course, sql, claim.name, login)
            else:
                made = "empty" if backend.create_database(claim.name, login) else None
        except BaseException:
            # Nothing was made; if even the registry fails now, the record stays not
            # ready and reconciling removes it: the error to report is the first one.
            with suppress(DbWrapperError):
                self.registry.forget_database(claim, None)
            raise
        if made is None:
            self.registry.forget_database(claim, None)
        return made

    def _finish(self, backend: Backend, claim: DatabaseRecord, entry: AuditEntry) -> None:
        """Mark the built database ready, with its audit entry; if the registry refuses, drop it:
        not ready in the registry means nobody is ever shown it."""
        try:
            self.registry.mark_database_ready(claim, audit=entry)
        except DbWrapperError:
            backend.drop_database(claim.name, claim.login, registered=True)
            raise

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
                return Outcome(backend, name, False, summary)
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
            return Outcome(backend, name, dropped, summary)

    def check_writable(self, actor: Actor, record: DatabaseRecord) -> None:
        """Refuse (409) a trainee's change to the content of a database in read-only mode (a
        revert, a reset, a restore over it): the mode keeps them to reading, whatever the path."""
        if not actor.is_instructor and record.id in self.registry.read_only_ids():
            raise Refused(f"{record.name} is read-only: an instructor has switched writing to it off; "
                          "ask them to switch it back on.")

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
        reader = self.registry.reader(record)
        for snapshot in snapshots:
            backend.drop_database(snapshot.name, registered=True)
        dropped = backend.drop_database(record.name, record.login, registered=True)
        if reader is not None:  # read-only mode's login goes with the database it reads
            backend.logins.remove_login(reader.name)
        self.registry.forget_database(record, audit=audit)
        return dropped, len(snapshots)

    def new_expiry(self) -> datetime | None:
        """When a database made now expires: ``lifetime_hours`` from now; ``None`` (never) when 0."""
        hours = self.settings.lifetime_hours
        return datetime.now(UTC) + timedelta(hours=hours) if hours > 0 else None

    def describe(self, actor: Actor, backend: Backend, name: str, summary: str) -> Outcome:
        """An outcome for something done to ``name`` elsewhere (a restore), with its credentials."""
        record = self.authorize(actor, backend, name)
        login = self.shown_login(actor, record) if record else None
        return self._outcome(backend, name, True, summary, login)

    def _unchanged(
        self, entry: AuditEntry, backend: Backend, name: str, why: str, login: Login | None = None,
    ) -> Outcome:
        """A create that found nothing to do because ``name`` ``why`` (``already exists``)."""
        entry.outcome = "unchanged"
        return self._outcome(backend, name, False, f"{name} {why} on {backend.label}; nothing was changed.", login)

    def _outcome(
        self, backend: Backend, name: str, changed: bool, summary: str, login: Login | None = None,
    ) -> Outcome:
        record = self.registry.database(backend.db_type, name)
        expires_at, course = (record.expires_at, record.course) if record else (None, None)
        credentials = Credentials(backend, name, login, expires_at, course) if login else None
        return Outcome(backend, name, changed, summary, credentials)
