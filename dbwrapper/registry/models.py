"""The registry's tables, as SQLAlchemy ORM classes.

The schema is created and changed only by the Alembic migrations in
``dbwrapper/migrations``; these classes must match the latest one.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utc_now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class User(Base):
    """Someone who logs in: an instructor (acts on everything) or a trainee (their own only)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(32), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    #: How many databases a trainee may own at once.
    quota: Mapped[int] = mapped_column(Integer, default=1)
    #: ``False`` while nobody has been shown the password: an account a class made, until
    #: its credentials sheet is done. Running the roster again then gives it a new one.
    password_shown: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)

    # passive_deletes: deleting a user must never quietly orphan their databases; the
    # foreign key refuses it instead (Accounts.remove checks first).
    databases: Mapped[list[ManagedDatabase]] = relationship(back_populates="owner", passive_deletes="all")


class ManagedDatabase(Base):
    """A database this service created, with the login it created for it."""

    __tablename__ = "managed_databases"
    __table_args__ = (UniqueConstraint("backend", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: ``postgres`` or ``mysql`` (a column still named ``backend``, as migration 0001 made it).
    db_type: Mapped[str] = mapped_column("backend", String(16))
    name: Mapped[str] = mapped_column(String(64))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    #: The database's own login (a PostgreSQL role or a MySQL user) and its password.
    #: The password is kept so the trainee can see how to connect again later;
    #: it opens this one throwaway database and nothing else.
    login: Mapped[str] = mapped_column(String(64))
    password: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    #: When the expiry job purges it; ``None``: never.
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: The course whose content it started with, if any.
    course: Mapped[str | None] = mapped_column(String(32), nullable=True)
    #: ``False`` from just before it is made until it is complete: a crash in between
    #: leaves this record, and reconciling removes what was half-made.
    ready: Mapped[bool] = mapped_column(Boolean, default=True)
    #: The process that recorded it (see :mod:`dbwrapper.settle`): once that process has
    #: ended, a record still not ready is what it left half-made. ``None`` on records made
    #: before migration 0010, which only reconciling settles.
    process: Mapped[str | None] = mapped_column(String(32), nullable=True)

    owner: Mapped[User] = relationship(back_populates="databases")


class AuditEntry(Base):
    """One thing someone did or tried: who, what, on what, when, and how it ended."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(String(500), default="")

    @classmethod
    def new(cls, actor: str, action: str, target: str, *, outcome: str = "ok", detail: str = "") -> AuditEntry:
        """An entry with every field set (the constructor leaves unnamed ones ``None`` until it
        is written): ``outcome`` is ``ok`` unless the work says otherwise."""
        return cls(actor=actor, action=action, target=target, outcome=outcome, detail=detail)


class Instance(Base):
    """This registry's id (one row), carried in the marker of every database it makes."""

    __tablename__ = "instance"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(32))


class Course(Base):
    """A course: what every database made for it starts with, per engine (SQL run by its login)."""

    __tablename__ = "courses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(32), unique=True)
    description: Mapped[str] = mapped_column(String(200), default="")
    postgres_sql: Mapped[str | None] = mapped_column(Text, nullable=True)
    mysql_sql: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    #: Its databases are read-only (see :mod:`dbwrapper.readonly`).
    read_only: Mapped[bool] = mapped_column(Boolean, default=False)

    def sql(self, db_type: str) -> str | None:
        """The course's SQL for ``db_type``, or ``None`` when it has none for it."""
        return {"postgres": self.postgres_sql, "mysql": self.mysql_sql}.get(db_type)


class CourseCopy(Base):
    """A database holding a course's content that is nobody's yet.

    ``master``: the course loaded once from its SQL, the source every copy is
    cloned from. ``spare``: a clone made ahead of time (the warm pool), handed to
    a trainee by renaming it; ``spent`` once handed out, until what is left of it
    is dropped. Both are named ``_dbw_<kind>_<id>``, a prefix users
    cannot choose, and their login (a role or user) has the same name. A row is
    written before its database is made and marked ``ready`` after, so a crash in
    between leaves a row that says what to clean up.
    """

    __tablename__ = "course_copies"
    __table_args__ = (UniqueConstraint("backend", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: ``postgres`` or ``mysql`` (a column still named ``backend``, as migration 0001 made it).
    db_type: Mapped[str] = mapped_column("backend", String(16))
    course: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(64))
    password: Mapped[str] = mapped_column(String(128))
    ready: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class Snapshot(Base):
    """A copy of a managed database at one moment, on the same server, to revert to.

    Its database is named ``_dbw_snap_<hex>`` and belongs to the server's
    super-user (the trainee cannot change it); its content stays the owner's.
    ``state`` says how far making it got, for reconciling after a crash:
    ``taking`` (being copied), ``failed`` (a copy that failed and could not be
    dropped then, for reconciling to drop), ``reverting`` (the working database's state set
    aside by a revert that has not finished), ``interrupted`` (set aside by a revert that
    failed and could not put it back: the next work on the database does) or ``ready``.
    """

    __tablename__ = "snapshots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    database_id: Mapped[int] = mapped_column(ForeignKey("managed_databases.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(80))
    taken_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    state: Mapped[str] = mapped_column(String(16))


class ApiToken(Base):
    """A personal API token: ``Authorization: Bearer <token>`` acts as its user.

    Only a SHA-256 of the token is kept (a token is 32 random bytes, so a slow
    hash adds nothing); the token itself is shown once, when it is made.
    """

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class IdempotencyRecord(Base):
    """The first response to a request sent with an ``Idempotency-Key``, for its retries.

    ``status`` is ``None`` while the first request is still at work (a retry then
    is a 409, unless ``process``, the one at work on it, has ended); ``fingerprint``
    is a hash of the request, so that the same key with another request is told
    apart (a 422).
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: The process answering the first request (until it has answered).
    process: Mapped[str | None] = mapped_column(String(32), nullable=True)
    #: The response's JSON body and its headers (``Location``, ``ETag``) as JSON.
    body: Mapped[str | None] = mapped_column(Text, nullable=True)
    headers: Mapped[str] = mapped_column(Text, default="{}")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class Operation(Base):
    """Work that outlives its request (a class, prepared copies, an archive...), as every
    process sees it: how far it got, and how it ended.

    ``state``: ``running``, then ``succeeded``, ``failed``, ``cancelled`` or
    ``interrupted`` (its process ended first). ``heartbeat_at`` is moved on by
    the process at work; one that stops moving belongs to a process that died.
    """

    __tablename__ = "operations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16), index=True)
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    current: Mapped[str] = mapped_column(String(128), default="")
    #: What it made, as JSON, once it ended; or why it failed.
    result: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    started_by: Mapped[str] = mapped_column(String(64))
    #: The id of the process at work on it.
    process: Mapped[str] = mapped_column(String(32))
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class WebSession(Base):
    """A browser's session (who is logged in, the CSRF token), seen by every process."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: The session's values, as JSON.
    data: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class LoginFailure(Base):
    """One failed login, by user name (``name:alice``) or client address (``address:10.0.0.5``)."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(80), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now, index=True)


class ConsoleRun(Base):
    """What someone ran in a database's SQL console: the text, and how it went.

    ``state`` is ``running`` while it runs, with ``session_id`` the server's id
    of the session running it (PostgreSQL's backend pid, MySQL's connection id),
    so that a cancel from any process finds it; then ``done``. A run whose
    process ended first stays ``running`` with that process named: the cancel
    that finds it only asks the server to stop a session that is gone.
    """

    __tablename__ = "console_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    database_id: Mapped[int] = mapped_column(ForeignKey("managed_databases.id", ondelete="CASCADE"), index=True)
    actor: Mapped[str] = mapped_column(String(64))
    sql: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="running")
    #: ``3 statements: 2 ran, 1 failed``.
    summary: Mapped[str] = mapped_column(String(255), default="")
    session_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    process: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class Reader(Base):
    """A database's reader: a login that may only read it, made the first time an instructor
    switches the database (or its course) to read-only; ``read_only`` is this database's switch."""

    __tablename__ = "readers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    database_id: Mapped[int] = mapped_column(
        ForeignKey("managed_databases.id", ondelete="CASCADE"), unique=True
    )
    login: Mapped[str] = mapped_column(String(64), unique=True)
    password: Mapped[str] = mapped_column(String(255))
    read_only: Mapped[bool] = mapped_column(Boolean, default=False)
