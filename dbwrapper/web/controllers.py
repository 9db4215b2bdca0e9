"""The CherryPy handlers: read the request, call the service, render a page.

Handlers hold no SQL and no state of their own. Who is asking comes from the
login tool (``tools.dbw_login``); :func:`domain_errors` turns the service's
errors into HTTP errors, which the error page renders.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import replace
from typing import Any, NoReturn
from urllib.parse import urlencode

import cherrypy

from dbwrapper.accounts import Accounts, Actor
from dbwrapper.api.routing import PREFIX
from dbwrapper.auditing import AUDIT_PAGE, AuditFilter
from dbwrapper.backends import Backend
from dbwrapper.bulk import ACTIONS
from dbwrapper.console.results import csv_text
from dbwrapper.errors import DbWrapperError, InvalidInput, NotFound, NotLoggedIn
from dbwrapper.expiry import EXTENSION
from dbwrapper.formatting import Templates, credentials_sheet, human_expiry, utc_text
from dbwrapper.registry import DatabaseRecord, Snapshot
from dbwrapper.registry.models import Operation
from dbwrapper.rosters import check_names, read_roster
from dbwrapper.runtime import Runtime
from dbwrapper.service import Credentials, Outcome
from dbwrapper.snapshots import describe
from dbwrapper.web.api import ApiPages
from dbwrapper.web.auth import csrf_token, current_actor, log_in, log_out, safe_next
from dbwrapper.web.messages import Fragment, check_hand_over, handed_over, redirect, told
from dbwrapper.web.pages import (
    CREDENTIALS,
    Choice,
    Pages,
    credentials_shown,
    database_path,
    password_shown,
    token_shown,
)
from dbwrapper.web.sessions import unlocked

#: The session's key for a console run's results, until the page after the form shows them.
SESSION_RUN = "console_run"
#: Bytes of results a console run from the form (not the API) keeps: they wait in the session.
FORM_RESULT_BYTES = 32_000

#: How many expiring databases the home page shows.
EXPIRING_SHOWN = 10
EXPIRY_CHANGES = ("extend", "permanent", "mortal")
#: The audit page's last page number: past it, an offset the registry's integers may not hold.
AUDIT_PAGES = 1_000_000
#: A handler that asks first: its GET shows what it would do, and only its form's POST acts.
ASKS_FIRST = ("GET", "HEAD", "POST")


def domain_errors(handler: Callable[..., str]) -> Callable[..., str]:
    """Answer a :class:`DbWrapperError` with its status and message; refuse unknown parameters
    and parameters given twice.

    CherryPy would answer an unknown query parameter or path segment with a
    404; a 400 that names it tells the user what to fix.
    """
    accepted = set(inspect.signature(handler).parameters) - {"self"}

    @functools.wraps(handler)
    def wrapper(self: Any, *path: str, **params: Any) -> str:
        try:
            if path:
                raise InvalidInput(f"Unknown path: /{'/'.join(path)}.")
            unknown = sorted(set(params) - accepted)
            if unknown:
                raise InvalidInput(f"Unknown parameter(s): {', '.join(unknown)}.")
            # CherryPy hands a field sent twice over as a list, which no handler expects.
            if twice := sorted(name for name, value in params.items() if isinstance(value, list)):
                raise InvalidInput(f"Give {', '.join(twice)} once.")
            return handler(self, **params)
        except DbWrapperError as error:
            raise cherrypy.HTTPError(error.http_status, str(error)) from None

    return wrapper


def page(methods: tuple[str, ...] = ("GET", "HEAD")) -> Callable[[Callable[..., str]], Callable[..., str]]:
    """Expose a handler for ``methods``, with :func:`domain_errors`."""

    def decorate(handler: Callable[..., str]) -> Callable[..., str]:
        return cherrypy.expose(cherrypy.tools.allow(methods=list(methods))(domain_errors(handler)))

    return decorate


class Controller:
    """What every controller has: the runtime, the templates, and per-request pages."""

    def __init__(self, runtime: Runtime, templates: Templates) -> None:
        self.runtime = runtime
        self.service = runtime.service
        self.templates = templates

    def pages(self, actor: Actor | None = None) -> Pages:
        """The pages of this request; what a form told or handed over to it is shown once, here
        (a database's credentials as they are now, for ``actor``, if it is still theirs to see)."""
        shown: list[Fragment | Credentials] = []
        for fragment in handed_over():
            if fragment.template != CREDENTIALS:
                shown.append(fragment)
            elif actor is not None:
                backend = self.service.servers.backend(fragment.values["db_type"])
                record = self.service.authorize(actor, backend, fragment.values["name"])
                if record is not None:
                    shown.append(self.service.credentials(actor, record))
        return Pages(self.templates, actor, csrf_token(), told(), shown, base=cherrypy.request.base)

    @staticmethod
    def instructor(action: str) -> Actor:
        """The user asking, if an instructor; a 403 naming ``action`` otherwise."""
        actor = current_actor()
        actor.require_instructor(action)
        return actor


def posted() -> bool:
    """Whether this request is a form's POST: the one that acts, of a handler that :data:`ASKS_FIRST`."""
    return cherrypy.request.method == "POST"


def listing_url(db_type: str) -> str:
    return f"/dbi/list?{urlencode({'db_type': db_type})}"


def show_outcome(outcome: Outcome) -> NoReturn:
    """Send the browser to the server's listing, saying what a create, restore or destroy did,
    with how to connect to the database (its password included) shown there once."""
    credentials = outcome.credentials
    redirect(
        listing_url(outcome.backend.db_type), outcome.summary, "ok" if outcome.changed else "info",
        secret=credentials_shown(credentials) if credentials is not None else None,
    )


def whole_number(value: object, what: str) -> int:
    """A form's number, or a 400 for text that is not one."""
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise InvalidInput(f"{what} {value!r} is not a number.") from None


class DBInterface(Controller):
    """``/dbi/``: create, destroy and list databases."""

    @page()
    def create_my_db(
        self, db_type: str | None = None, name: str | None = None, course: str | None = None
    ) -> str:
        """Create the caller's database (with its own login, from a course if given) unless it
        exists, then go on to the listing, which shows how to connect once.

        A GET, for bookmarks (the seed's URL): asking twice makes nothing twice. The browser
        is sent on to the listing, so a reload does not even ask again.
        """
        show_outcome(self.service.create(current_actor(), db_type, name, course=course))

    @page(ASKS_FIRST)
    def destroy_my_db(self, db_type: str | None = None, name: str | None = None) -> str:
        """GET asks for confirmation; the confirmation form POSTs, and only a POST drops."""
        actor = current_actor()
        if posted():
            show_outcome(self.service.destroy(actor, db_type, name))
        backend, name = self.service.check_destroy(actor, db_type, name)
        return self.pages(actor).confirm(
            title=f"Destroy {name}?",
            explanation=f"This drops {name} on {backend.label} ({backend.where}) with everything in it and "
                        "its snapshots, and removes its login; its archives stay. Anyone still connected to it "
                        "is disconnected. This cannot be undone.",
            action="/dbi/destroy_my_db", fields={"db_type": backend.db_type, "name": name},
            choices=[Choice(f"Destroy {name}")], back="/",
        )

    @page(ASKS_FIRST)
    def reset_my_db(self, db_type: str | None = None, name: str | None = None) -> str:
        """Put a course's database back to the course's start: GET asks, the confirmation
        form POSTs, and only a POST resets (what it held is kept as a snapshot)."""
        actor = current_actor()
        snapshots = self.runtime.snapshots
        if posted():
            redirect("/", snapshots.reset(actor, db_type, name))
        backend, record, _ = snapshots.check_reset(actor, db_type, name)
        return self.pages(actor).confirm_reset(backend, record)

    @page()
    def database(self, db_type: str | None = None, name: str | None = None) -> str:
        """One managed database: how to connect, its snapshots and archives, what can be done to it."""
        actor = current_actor()
        record = self.service.database(actor, db_type, name)
        _, _, snapshots = self.runtime.snapshots.list(actor, record.db_type, record.name)
        archives = self.runtime.archives.list(actor, of=record)
        return self.pages(actor).database(
            record, self.service.credentials(actor, record), snapshots, archives, self.runtime.expiry.lifetime_days,
        )

    @page(("POST",))
    def expiry(self, db_type: str | None = None, name: str = "", change: str = "", next: str = "/") -> str:
        """Instructors: push a database's expiry back a week, keep it for ever, or let it expire
        again (in a new database's lifetime); then back to the page the form was on."""
        actor = current_actor()
        expiry = self.runtime.expiry
        if change == "extend":
            expires_at = expiry.extend(actor, db_type, name, EXTENSION)
        elif change == "permanent":
            expires_at = expiry.set(actor, db_type, name, None)
        elif change == "mortal":
            expires_at = expiry.make_mortal(actor, db_type, name)
        else:
            raise InvalidInput(f"Unknown change {change!r}; valid: {', '.join(EXPIRY_CHANGES)}.")
        if expires_at is None:
            redirect(safe_next(next), f"{name} is now permanent: it never expires.")
        redirect(safe_next(next), f"{name} now expires {human_expiry(expires_at)}.")

    @page()
    def list(self, db_type: str | None = None) -> str:
        """The server's databases (a trainee's own only), with owners and sizes."""
        actor = current_actor()
        listing = self.service.listing(actor, db_type)
        return self.pages(actor).listing(listing, mine=self.service.default_name(actor))


class UsersController(Controller):
    """``/users/``: the instructors' page for accounts."""

    @property
    def accounts(self) -> Accounts:
        return self.runtime.accounts

    @page()
    def index(self) -> str:
        actor = self.instructor("manage users")
        users = [
            (user, [f"{db.name} ({db.db_type})" for db in self.accounts.registry.databases(owner=user)])
            for user in self.accounts.users()
        ]
        return self.pages(actor).users(users, self.runtime.settings.default_quota)

    @page(("POST",))
    def add(self, name: str = "", role: str = "trainee", quota: str = "") -> str:
        """Add a user with a generated password, shown once on the Users page."""
        actor = self.instructor("manage users")
        check_hand_over("the new user's password")
        quota_value = whole_number(quota, "Quota") if quota else None
        user, password = self.accounts.add(name, role, quota=quota_value, by=actor.name)
        redirect("/users/", f"Added {user.role} {user.name}.", secret=password_shown(user.name, password))

    @page(ASKS_FIRST)
    def remove(self, name: str = "", databases: str = "") -> str:
        """GET asks first, naming the databases the user still owns and offering to archive and
        drop them or to destroy them (``databases``); only the POST removes."""
        actor = self.instructor("manage users")
        departures = self.runtime.departures
        if posted():
            redirect("/users/", departures.remove(actor, name, databases or None))
        user, owned = departures.check(actor, name)
        gone = (f"Then {user.name} ({user.role}) is removed: they can no longer log in, and their API "
                "tokens stop working at once. Their archives stay, for instructors to restore.")
        if not owned:
            return self.pages(actor).confirm(
                title=f"Remove {user.name}?", explanation=gone.removeprefix("Then "), action="/users/remove",
                fields={"name": user.name}, choices=[Choice(f"Remove {user.name}")], back="/users/",
            )
        return self.pages(actor).confirm(
            title=f"Remove {user.name} and their databases?",
            explanation=f"{user.name} still owns the databases below. Archiving one keeps its content on disk "
                        "(as the expiry job does), then drops it; destroying one drops it with nothing kept. "
                        + gone,
            listed=[f"{db.name} on {self.service.servers.backend(db.db_type).label}" for db in owned],
            action="/users/remove", fields={"name": user.name}, back="/users/",
            choices=[
                Choice(f"Archive and drop them, then remove {user.name}", ("databases", "archive"), danger=False),
                Choice(f"Destroy them, then remove {user.name}", ("databases", "destroy")),
            ],
        )

    @page(ASKS_FIRST)
    def set_password(self, name: str = "") -> str:
        """GET asks first; the POST issues a generated password, shown once on the Users page."""
        actor = self.instructor("manage users")
        if posted():
            check_hand_over("the new password")
            password = self.accounts.set_password(name, by=actor.name)
            redirect("/users/", f"Issued a new password for {name}; the old one no longer logs in.",
                     secret=password_shown(name, password))
        user = self.accounts.get(name)
        return self.pages(actor).confirm(
            title=f"A new password for {user.name}?",
            explanation=f"{user.name}'s password is replaced by a new, generated one, shown once on the next "
                        "page; the current one no longer logs in.",
            action="/users/set_password", fields={"name": user.name},
            choices=[Choice(f"Issue a new password for {user.name}")], back="/users/",
        )


class AccountController(Controller):
    """``/account/``: the logged-in user's own API tokens, for scripts (``Authorization: Bearer``)."""

    @page()
    def index(self) -> str:
        actor = current_actor()
        return self.pages(actor).account(self.runtime.accounts.tokens(actor, actor.name), cherrypy.request.base)

    @page(("POST",))
    def create_token(self, name: str = "") -> str:
        """Make a token; its secret is on the next page and never again."""
        actor = current_actor()
        token, secret = self.runtime.accounts.create_token(actor, actor.name, name)
        redirect("/account/", f"Made the token {token.name}.", secret=token_shown(secret, cherrypy.request.base))

    @page(ASKS_FIRST)
    def revoke_token(self, token: str = "") -> str:
        """GET asks first; only the POST revokes."""
        actor = current_actor()
        token_id = whole_number(token, "Token")
        if posted():
            revoked = self.runtime.accounts.revoke_token(actor, actor.name, token_id)
            redirect("/account/", f"Revoked the token {revoked.name}; it no longer works.")
        found = self.runtime.accounts.token(actor, actor.name, token_id)
        return self.pages(actor).confirm(
            title=f"Revoke the token {found.name}?",
            explanation=f"Scripts that send the token {found.name} (made {utc_text(found.created_at)}) "
                        "are refused from their next request on. This cannot be undone: make a new token to "
                        "replace it.",
            action="/account/revoke_token", fields={"token": str(found.id)},
            choices=[Choice(f"Revoke {found.name}")], back="/account/",
        )


class ArchivesController(Controller):
    """``/archives/``: archive databases to disk and restore them (owners and instructors)."""

    @page()
    def index(self) -> str:
        actor = current_actor()
        archives = self.runtime.archives
        return self.pages(actor).archives(archives.list(actor), self.service.managed_databases(actor), archives.quota)

    @page(("POST",))
    def create(
        self, db_type: str | None = None, name: str | None = None, database: str = "", drop: str = "",
    ) -> str:
        """Archive a database, named by ``db_type`` and ``name`` or as ``database``
        (``postgres:alice_7001``, the archive page's choice); with ``drop=yes``, drop it once
        its archive is verified."""
        actor = current_actor()
        if database:
            db_type, _, name = database.partition(":")
        if drop not in ("", "yes"):
            raise InvalidInput(f"drop is yes or nothing, not {drop!r}.")
        manifest = self.runtime.archives.archive(actor, db_type, name, drop=bool(drop))
        said = f"Archived {manifest.database} as {manifest.id}, all its tables in it."
        redirect("/archives/", f"{said} Dropped {manifest.database}." if drop else said)

    @page(("POST",))
    def restore(self, archive: str = "", into: str | None = None) -> str:
        """Restore, then go on to the listing, which shows how to connect once."""
        show_outcome(self.runtime.archives.restore(current_actor(), archive, into or None))

    @page(ASKS_FIRST)
    def delete(self, archive: str = "") -> str:
        """GET asks first; only the POST deletes."""
        actor = current_actor()
        if posted():
            deleted = self.runtime.archives.delete(actor, archive)
            redirect("/archives/", f"Deleted the archive {deleted.id}.")
        manifest = self.runtime.archives.owned(actor, archive)
        return self.pages(actor).confirm(
            title=f"Delete the archive {manifest.id}?",
            explanation=f"The archive of {manifest.database} ({manifest.owner}'s) is removed from the disk with "
                        "its manifest, and can no longer be restored. No database is touched. This cannot be "
                        "undone.",
            action="/archives/delete", fields={"archive": manifest.id},
            choices=[Choice("Delete the archive")], back="/archives/",
        )


class CoursesController(Controller):
    """``/courses/``: the instructors' page for courses and their warm pools."""

    @page()
    def index(self) -> str:
        actor = self.instructor("manage courses")
        courses = self.runtime.courses
        found = [(course, courses.ready_spares(course.name)) for course in courses.all()]
        # The instructor first: a form's select starts with its first choice.
        owners = sorted(self.runtime.accounts.users(), key=lambda user: user.name != actor.name)
        return self.pages(actor).courses(
            found, self.service.backends(), owners, self.runtime.operations.preparing(),
            self.runtime.settings.pool_size,
        )

    @page(("POST",))
    def add(
        self, name: str = "", description: str = "", postgres_sql: Any = None, postgres_from: str = "",
        mysql_sql: Any = None, mysql_from: str = "",
    ) -> str:
        actor = self.instructor("manage courses")
        uploads = (("postgres", postgres_sql), ("mysql", mysql_sql))
        files = {db_type: uploaded_text(upload) for db_type, upload in uploads
                 if upload is not None and getattr(upload, "filename", None)}
        databases = {db_type: db for db_type, db in (("postgres", postgres_from), ("mysql", mysql_from)) if db}
        course = self.runtime.courses.add_from(actor, name, description, files, databases)
        redirect("/courses/", f"Added the course {course.name}; its copies are made in the background.")

    @page(("POST",))
    def create(self, course: str = "", db_type: str = "", owner: str = "", name: str = "") -> str:
        """Make a database of ``course`` for ``owner`` (the instructor by default), named for them
        unless ``name`` is given; then its page, with how to connect."""
        actor = self.instructor("manage courses")
        user = self.runtime.accounts.get(owner) if owner else None
        outcome = self.service.create(actor, db_type, name or None, owner=user, course=course)
        redirect(database_path(outcome.backend.db_type, outcome.name), outcome.summary,
                 "ok" if outcome.changed else "info")

    @page(("POST",))
    def read_only(self, course: str = "", on: str = "") -> str:
        """Switch read-only mode for every database of ``course`` (``on``: ``yes`` or ``no``)."""
        if on not in ("yes", "no"):
            raise InvalidInput(f"Say on=yes or on=no, not {on!r}.")
        actor = self.instructor("switch read-only mode")
        redirect("/courses/", self.runtime.read_only.switch_course(actor, course, on == "yes"))

    @page(("POST",))
    def prepare(self, course: str = "", db_type: str = "", count: str = "") -> str:
        """Prepare ready copies before a class, in the background; the page shows them grow."""
        actor = self.instructor("manage courses")
        wanted = whole_number(count, "The number of copies")
        _, started = self.runtime.operations.start_preparation(actor, db_type, course, wanted)
        if started:
            said = f"Preparing {wanted} ready copies of {course} on {db_type}; reload to see them grow."
        else:
            said = f"Copies of {course} on {db_type} are being prepared already; nothing was changed."
        redirect("/courses/", said)


def uploaded_text(upload: Any) -> str:
    """An uploaded file's text, or a 400 saying why it is not UTF-8 text."""
    if not hasattr(upload, "file"):
        raise InvalidInput("Upload the file with the form (multipart/form-data).")
    try:
        return upload.file.read().decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"{upload.filename} is not UTF-8 text; save it as UTF-8.") from None


class SnapshotsController(Controller):
    """``/snapshots/``: take, revert to and delete a database's snapshots (owners and instructors)."""

    @page()
    def index(self, db_type: str | None = None, name: str | None = None) -> str:
        actor = current_actor()
        backend, record, found = self.runtime.snapshots.list(actor, db_type, name)
        return self.pages(actor).snapshots(backend, record.name, found, self.runtime.snapshots.quota)

    def _listed(self, actor: Actor, db_type: str | None, name: str | None) -> str:
        """The snapshots page of the database ``name`` (the actor's own by default)."""
        backend, name = self.service.resolve(actor, db_type, name)
        return f"/snapshots/?{urlencode({'db_type': backend.db_type, 'name': name})}"

    @page(("POST",))
    def take(self, db_type: str | None = None, name: str | None = None, label: str = "") -> str:
        actor = current_actor()
        _, said = self.runtime.snapshots.take(actor, db_type, name, label)
        redirect(self._listed(actor, db_type, name), said)

    @page(ASKS_FIRST)
    def revert(self, db_type: str | None = None, name: str | None = None, snapshot: str = "") -> str:
        """GET asks first; only the POST reverts."""
        actor = current_actor()
        snapshots = self.runtime.snapshots
        if posted():
            redirect(self._listed(actor, db_type, name), snapshots.revert(actor, db_type, name, snapshot))
        found = backend, record, chosen = snapshots.find(actor, db_type, name, snapshot)
        return self._ask(
            actor, "revert", found, title=f"Revert {record.name} to the snapshot {describe(chosen)}?",
            explanation=f"{record.name} on {backend.label} gets back what it held then. What it holds now is "
                        "kept as a snapshot of its own, so nothing is lost. The sessions open on it are ended: "
                        "reconnect afterwards.",
            choice=Choice(f"Revert {record.name}", danger=False),
        )

    @page(ASKS_FIRST)
    def delete(self, db_type: str | None = None, name: str | None = None, snapshot: str = "") -> str:
        """GET asks first; only the POST deletes."""
        actor = current_actor()
        snapshots = self.runtime.snapshots
        if posted():
            redirect(self._listed(actor, db_type, name), snapshots.delete(actor, db_type, name, snapshot))
        found = backend, record, chosen = snapshots.find(actor, db_type, name, snapshot)
        return self._ask(
            actor, "delete", found, title=f"Delete the snapshot {describe(chosen)} of {record.name}?",
            explanation=f"The snapshot is dropped from {backend.label}, and {record.name} can no longer be "
                        f"reverted to it; {record.name} itself is not changed. This cannot be undone.",
            choice=Choice("Delete the snapshot"),
        )

    def _ask(
        self, actor: Actor, action: str, found: tuple[Backend, DatabaseRecord, Snapshot], *, title: str,
        explanation: str, choice: Choice,
    ) -> str:
        """The confirmation of ``action`` (``revert``, ``delete``) on the snapshot ``found``."""
        backend, record, chosen = found
        return self.pages(actor).confirm(
            title=title, explanation=explanation, action=f"/snapshots/{action}",
            fields={"db_type": backend.db_type, "name": record.name, "snapshot": str(chosen.id)},
            choices=[choice], back=self._listed(actor, backend.db_type, record.name),
        )


class ConsoleController(Controller):
    """``/console/``: a database's SQL console, for its owner and instructors.

    Without JavaScript the form posts here, and the answer is a redirect to the
    console showing the run's results once (Post/Redirect/Get): they wait in the
    session meanwhile, so the form's runs keep at most :data:`FORM_RESULT_BYTES` of
    results (a session row must stay small; the JSON API's runs have the full cap).
    With JavaScript, ``console.js`` runs and cancels through the JSON API instead.
    """

    def _where(self, db_type: str | None, name: str | None) -> str:
        return "/console/?" + urlencode({"db_type": db_type or "", "name": name or ""})

    @page()
    def index(self, db_type: str | None = None, name: str | None = None, run: str = "") -> str:
        actor = current_actor()
        backend, record = self.service.managed(actor, db_type, name)
        history = self.runtime.console.history(actor, backend.db_type, record.name)
        shown = cherrypy.session.pop(SESSION_RUN, None) if hasattr(cherrypy.serving, "session") else None
        if shown is not None and shown.get("where") != [backend.db_type, record.name]:
            shown = None
        wanted = whole_number(run, "The run") if run else (shown["run"]["id"] if shown else None)
        sql = next((entry.sql for entry in history if entry.id == wanted), "")
        api = f"{PREFIX}/databases/{backend.db_type}/{record.name}/console"
        return self.pages(actor).console(
            backend, record, self.runtime.console.limits, sql, shown["run"] if shown else None, history, api,
            self.runtime.read_only.console_login(backend, record, to_run=False).name,
            self.runtime.read_only.applies(record),
        )

    @page(("POST",))
    def run(self, db_type: str | None = None, name: str | None = None, sql: str = "") -> str:
        actor = current_actor()
        limits = self.runtime.console.limits
        console = replace(self.runtime.console, limits=replace(limits, bytes=min(limits.bytes, FORM_RESULT_BYTES)))
        backend, record = self.service.managed(actor, db_type, name)
        with unlocked():  # the browser's Cancel is served while this runs
            done = console.run(actor, backend.db_type, record.name, sql)
        if hasattr(cherrypy.serving, "session"):
            cherrypy.session[SESSION_RUN] = {"where": [backend.db_type, record.name], "run": done.json()}
        redirect(self._where(backend.db_type, record.name) + f"&run={done.id}")

    @page(("POST",))
    def read_only(self, db_type: str | None = None, name: str | None = None, on: str = "") -> str:
        """Instructors: switch the database's read-only mode (``on``: ``yes`` or ``no``)."""
        if on not in ("yes", "no"):
            raise InvalidInput(f"Say on=yes or on=no, not {on!r}.")
        actor = self.instructor("switch read-only mode")
        redirect(self._where(db_type, name), self.runtime.read_only.switch_database(actor, db_type, name, on == "yes"))

    @page(("POST",))
    def cancel(self, db_type: str | None = None, name: str | None = None) -> str:
        actor = current_actor()
        stopped = self.runtime.console.cancel(actor, db_type, name)
        said = f"Cancelled {stopped} running statement(s)." if stopped else "Nothing was running in this console."
        redirect(self._where(db_type, name), said, "ok" if stopped else "info")

    @page(("POST",))
    def csv(self, db_type: str | None = None, name: str | None = None, sql: str = "") -> str:
        """One statement run again, its rows as a CSV download (up to the console's caps)."""
        actor = current_actor()
        with unlocked():  # as a run: the browser's Cancel is served meanwhile
            result = self.runtime.console.statement(actor, db_type, name, sql)
        if result.error:
            raise InvalidInput(f"The statement failed: {result.error}")
        cherrypy.response.headers["Content-Type"] = "text/csv; charset=utf-8"
        cherrypy.response.headers["Content-Disposition"] = f'attachment; filename="{name or "result"}.csv"'
        return csv_text(result)


class ClassesController(Controller):
    """``/classes/``: provision a class from an uploaded roster, and follow its progress."""

    @page(("POST",))
    def provision(self, roster: Any = None, course: str = "", db_type: str = "") -> str:
        """Read the uploaded roster and show what it names, for confirmation: nothing is made
        here. The confirmation form carries the names to :meth:`start`, so that the page holds
        everything it acts on (no state kept between the two), and they are checked again there."""
        actor = current_actor()
        backend = self.runtime.classes.check(actor, course, db_type)
        if roster is None or not hasattr(roster, "file"):
            raise InvalidInput("Choose a roster file (CSV, one trainee user name per row).")
        return self.pages(actor).confirm_class(read_roster(uploaded_text(roster)), course, backend)

    @page(("POST",))
    def start(self, trainees: str = "", course: str = "", db_type: str = "") -> str:
        """Provision the confirmed names (``trainees``, separated by spaces), then follow the progress."""
        actor = current_actor()
        names = check_names(trainees.split())
        operation = self.runtime.operations.start_class(actor, names, course, db_type)
        redirect(f"/classes/status?job={operation.id}", f"Provisioning {len(names)} trainee(s) for {course}.", "info")

    def _class(self, job: str, *, or_action: bool = False) -> tuple[Actor, Operation]:
        """The instructor asking, and the class operation ``job`` (or, ``or_action``, an action
        over a class: :mod:`dbwrapper.bulk`), from any process."""
        actor = self.instructor("follow a class provisioning")
        found = self.runtime.operations.get(actor, job)
        if found.kind != "class" and not (or_action and found.kind.startswith("bulk ")):
            raise NotFound("There is no such class.")
        return actor, found

    @page()
    def status(self, job: str = "") -> str:
        """The progress bar; the page reloads itself every second until the work is done. A
        class that ended offers actions over its databases."""
        actor, found = self._class(job, or_action=True)
        operations = self.runtime.operations
        if found.state == "running":
            cherrypy.response.headers["Refresh"] = "1"
        if found.kind != "class":
            return self.pages(actor).bulk_status(found, operations.bulk_report(found))
        report = operations.class_report(found)
        count = len(operations.class_databases(actor, found.id)[1]) if report and found.state != "running" else 0
        return self.pages(actor).class_status(found, report, count)

    @page(("POST",))
    def cancel(self, job: str = "") -> str:
        """Stop the work after the trainee (or database) at work; what was done stays."""
        actor, found = self._class(job, or_action=True)
        self.runtime.operations.cancel(actor, found.id)
        raise cherrypy.HTTPRedirect(f"/classes/status?job={found.id}", 303)

    @page(ASKS_FIRST)
    def act(self, job: str = "", action: str = "") -> str:
        """An action over every database of a class (see :mod:`dbwrapper.bulk`): GET asks, naming
        how many databases it touches; the confirmation form POSTs, which starts it."""
        actor = self.instructor("act on a whole class")
        operations = self.runtime.operations
        if posted():
            started = operations.start_bulk(actor, job, action)
            redirect(f"/classes/status?job={started.id}",
                     f"Started, for each of {started.total} database(s) of the class: {ACTIONS[action]}.")
        action = self.runtime.class_actions.check(actor, action)
        found, records = operations.class_databases(actor, job)
        return self.pages(actor).confirm_bulk(found, action, records)

    @page()
    def sheet(self, job: str = "") -> str:
        """The printable credentials sheet of a class that ended (cut short: what it made)."""
        _, found = self._class(job)
        report = self.runtime.operations.class_report(found)
        if report is None:
            raise InvalidInput("That class is not provisioned yet.")
        label = self.service.servers.backend(report.db_type).label
        return credentials_sheet(self.templates, report, label, cherrypy.request.base)


class Root(Controller):
    """``/``: the home page, logging in and out, the audit log."""

    def __init__(self, runtime: Runtime, templates: Templates) -> None:
        super().__init__(runtime, templates)
        self.dbi = DBInterface(runtime, templates)
        self.users = UsersController(runtime, templates)
        self.account = AccountController(runtime, templates)
        self.archives = ArchivesController(runtime, templates)
        self.snapshots = SnapshotsController(runtime, templates)
        self.courses = CoursesController(runtime, templates)
        self.classes = ClassesController(runtime, templates)
        self.console = ConsoleController(runtime, templates)
        self.api = ApiPages(runtime, templates)

    @page()
    def index(self) -> str:
        """Instructors: the backends and actions. Trainees: their databases and how to connect."""
        actor = current_actor()
        backends = self.service.backends()
        default_name = self.service.default_name(actor)
        if actor.is_instructor:
            embedded = self.service.servers.embedded
            expiry = self.runtime.expiry
            expiring = expiry.expiring(limit=EXPIRING_SHOWN)
            courses = [course.name for course in self.runtime.courses.all()]
            return self.pages(actor).instructor_home(
                backends, default_name, embedded, expiring, expiry.permanent(), expiry.lifetime_days, courses,
            )
        courses = [course.name for course in self.runtime.courses.all()]
        mine = self.service.my_databases(actor)
        archives = [] if mine else self.runtime.archives.list(actor)  # shown only to restore from
        return self.pages(actor).trainee_home(backends, mine, default_name, courses, archives)

    @page(("GET", "HEAD", "POST"))
    def login(self, name: str = "", password: str = "", next: str = "/") -> str:
        """The login form; a successful POST goes on to where the user was going."""
        target = safe_next(next)
        if cherrypy.request.method != "POST":
            return self.pages().login(target)
        address = cherrypy.request.remote.ip or "unknown"
        try:
            user = self.runtime.accounts.authenticate(name, password, address)
        except NotLoggedIn as error:
            cherrypy.response.status = 401
            return self.pages().login(target, str(error))
        log_in(user)
        raise cherrypy.HTTPRedirect(target, 303)

    @page(("POST",))
    def logout(self) -> str:
        log_out()
        raise cherrypy.HTTPRedirect("/login", 303)

    @page()
    def audit(
        self, actor: str = "", target: str = "", action: str = "", since: str = "", until: str = "", page: str = "1",
    ) -> str:
        """A page of the audit log, newest first, filtered by who, on what, which action and when."""
        reader = self.instructor("read the audit log")
        filters = AuditFilter.typed(actor=actor, target=target, action=action, since=since, until=until)
        number = whole_number(page, "The page")
        if not 1 <= number <= AUDIT_PAGES:
            raise InvalidInput(f"The page is from 1 to {AUDIT_PAGES}, not {number}.")
        # One more than a page: whether there is an older page to link to.
        entries = self.runtime.accounts.registry.audit_entries(
            AUDIT_PAGE + 1, offset=(number - 1) * AUDIT_PAGE, **filters.criteria(),
        )
        return self.pages(reader).audit(entries[:AUDIT_PAGE], filters, number, older=len(entries) > AUDIT_PAGE)
