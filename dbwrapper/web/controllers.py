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
from typing import Any
from urllib.parse import urlencode

import cherrypy

from dbwrapper.accounts import Accounts, Actor
from dbwrapper.api.routing import PREFIX
from dbwrapper.auditing import AUDIT_PAGE, AuditFilter
from dbwrapper.bulk import ACTIONS
from dbwrapper.console.results import csv_text
from dbwrapper.errors import DbWrapperError, InvalidInput, NotFound, NotLoggedIn
from dbwrapper.expiry import EXTENSION
from dbwrapper.formatting import Templates, credentials_sheet, human_expiry
from dbwrapper.registry.models import Operation
from dbwrapper.rosters import check_names, read_roster
from dbwrapper.runtime import Runtime
from dbwrapper.web.api import ApiPages
from dbwrapper.web.auth import csrf_token, current_actor, log_in, log_out, safe_next
from dbwrapper.web.messages import redirect, told
from dbwrapper.web.pages import Pages, database_path

#: The session's key for a console run's results, until the page after the form shows them.
SESSION_RUN = "console_run"
#: Bytes of results a console run from the form (not the API) keeps: they wait in the session.
FORM_RESULT_BYTES = 32_000

#: How many expiring databases the home page shows.
EXPIRING_SHOWN = 10
EXPIRY_CHANGES = ("extend", "permanent", "mortal")
#: The audit page's last page number: past it, an offset the registry's integers may not hold.
AUDIT_PAGES = 1_000_000


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
        return Pages(self.templates, actor, csrf_token(), told(), base=cherrypy.request.base)

    @staticmethod
    def instructor(action: str) -> Actor:
        """The user asking, if an instructor; a 403 naming ``action`` otherwise."""
        actor = current_actor()
        actor.require_instructor(action)
        return actor


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
        """Create the caller's database (with its own login, from a course if given) unless it exists."""
        actor = current_actor()
        outcome = self.service.create(actor, db_type, name, course=course)
        return self.pages(actor).created(outcome, self.service.listing(actor, outcome.backend.db_type))

    @page(("GET", "HEAD", "POST"))
    def destroy_my_db(self, db_type: str | None = None, name: str | None = None) -> str:
        """GET asks for confirmation; the confirmation form POSTs, and only a POST drops."""
        actor = current_actor()
        if cherrypy.request.method == "POST":
            outcome = self.service.destroy(actor, db_type, name)
            return self.pages(actor).destroyed(outcome, self.service.listing(actor, outcome.backend.db_type))
        return self.pages(actor).confirm_destroy(*self.service.check_destroy(actor, db_type, name))

    @page(("GET", "HEAD", "POST"))
    def reset_my_db(self, db_type: str | None = None, name: str | None = None) -> str:
        """Put a course's database back to the course's start: GET asks, the confirmation
        form POSTs, and only a POST resets (what it held is kept as a snapshot)."""
        actor = current_actor()
        snapshots = self.runtime.snapshots
        if cherrypy.request.method == "POST":
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

    def _page(self, actor: Actor, message: str | None = None) -> str:
        users = [
            (user, [f"{db.name} ({db.db_type})" for db in self.accounts.registry.databases(owner=user)])
            for user in self.accounts.users()
        ]
        return self.pages(actor).users(users, self.runtime.settings.default_quota, message)

    @page()
    def index(self) -> str:
        return self._page(self.instructor("manage users"))

    @page(("POST",))
    def add(self, name: str = "", role: str = "trainee", quota: str = "") -> str:
        actor = self.instructor("manage users")
        quota_value = whole_number(quota, "Quota") if quota else None
        user, password = self.accounts.add(name, role, quota=quota_value, by=actor.name)
        return self._page(actor, f"Added {user.role} {user.name} with password {password} (shown once).")

    @page(("POST",))
    def remove(self, name: str = "") -> str:
        actor = self.instructor("manage users")
        self.accounts.remove(name, by=actor.name)
        return self._page(actor, f"Removed {name}.")

    @page(("POST",))
    def set_password(self, name: str = "") -> str:
        actor = self.instructor("manage users")
        password = self.accounts.set_password(name, by=actor.name)
        return self._page(actor, f"New password for {name}: {password} (shown once).")


class AccountController(Controller):
    """``/account/``: the logged-in user's own API tokens, for scripts (``Authorization: Bearer``)."""

    def _page(self, actor: Actor, message: str | None = None, secret: str | None = None) -> str:
        tokens = self.runtime.accounts.tokens(actor, actor.name)
        return self.pages(actor).account(tokens, cherrypy.request.base, message, secret)

    @page()
    def index(self) -> str:
        return self._page(current_actor())

    @page(("POST",))
    def create_token(self, name: str = "") -> str:
        """Make a token; its secret is on this answer and never again."""
        actor = current_actor()
        token, secret = self.runtime.accounts.create_token(actor, actor.name, name)
        return self._page(actor, f"Made the token {token.name}.", secret)

    @page(("POST",))
    def revoke_token(self, token: str = "") -> str:
        actor = current_actor()
        revoked = self.runtime.accounts.revoke_token(actor, actor.name, whole_number(token, "Token"))
        return self._page(actor, f"Revoked the token {revoked.name}; it no longer works.")


class ArchivesController(Controller):
    """``/archives/``: archive databases to disk and restore them (owners and instructors)."""

    def _page(self, actor: Actor, message: str | None = None) -> str:
        archives = self.runtime.archives
        databases = self.service.managed_databases(actor)
        return self.pages(actor).archives(archives.list(actor), databases, archives.quota, message)

    @page()
    def index(self) -> str:
        return self._page(current_actor())

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
        actor = current_actor()
        outcome = self.runtime.archives.restore(actor, archive, into or None)
        return self.pages(actor).created(outcome, self.service.listing(actor, outcome.backend.db_type))

    @page(("POST",))
    def delete(self, archive: str = "") -> str:
        actor = current_actor()
        manifest = self.runtime.archives.delete(actor, archive)
        return self._page(actor, f"Deleted the archive {manifest.id}.")


class CoursesController(Controller):
    """``/courses/``: the instructors' page for courses and their warm pools."""

    def _page(self, actor: Actor, message: str | None = None) -> str:
        courses = self.runtime.courses
        found = [(course, courses.ready_spares(course.name)) for course in courses.all()]
        # The instructor first: a form's select starts with its first choice.
        owners = sorted(self.runtime.accounts.users(), key=lambda user: user.name != actor.name)
        return self.pages(actor).courses(
            found, self.service.backends(), owners, self.runtime.operations.preparing(),
            self.runtime.settings.pool_size, message,
        )

    @page()
    def index(self) -> str:
        return self._page(self.instructor("manage courses"))

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
        return self._page(actor, f"Added the course {course.name}; its copies are made in the background.")

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
    def prepare(self, course: str = "", db_type: str = "", count: str = "") -> str:
        """Prepare ready copies before a class, in the background; the page shows them grow."""
        actor = self.instructor("manage courses")
        wanted = whole_number(count, "The number of copies")
        _, started = self.runtime.operations.start_preparation(actor, db_type, course, wanted)
        if started:
            said = f"Preparing {wanted} ready copies of {course} on {db_type}; reload to see them grow."
        else:
            said = f"Copies of {course} on {db_type} are being prepared already; nothing was changed."
        return self._page(actor, said)


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

    def _page(self, actor: Actor, db_type: str | None, name: str | None, message: str | None = None) -> str:
        backend, record, found = self.runtime.snapshots.list(actor, db_type, name)
        return self.pages(actor).snapshots(backend, record.name, found, self.runtime.snapshots.quota, message)

    @page()
    def index(self, db_type: str | None = None, name: str | None = None) -> str:
        return self._page(current_actor(), db_type, name)

    @page(("POST",))
    def take(self, db_type: str | None = None, name: str | None = None, label: str = "") -> str:
        actor = current_actor()
        _, said = self.runtime.snapshots.take(actor, db_type, name, label)
        return self._page(actor, db_type, name, said)

    @page(("POST",))
    def revert(self, db_type: str | None = None, name: str | None = None, snapshot: str = "") -> str:
        actor = current_actor()
        return self._page(actor, db_type, name, self.runtime.snapshots.revert(actor, db_type, name, snapshot))

    @page(("POST",))
    def delete(self, db_type: str | None = None, name: str | None = None, snapshot: str = "") -> str:
        actor = current_actor()
        return self._page(actor, db_type, name, self.runtime.snapshots.delete(actor, db_type, name, snapshot))


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

    @page(("GET", "HEAD", "POST"))
    def act(self, job: str = "", action: str = "") -> str:
        """An action over every database of a class (see :mod:`dbwrapper.bulk`): GET asks, naming
        how many databases it touches; the confirmation form POSTs, which starts it."""
        actor = self.instructor("act on a whole class")
        operations = self.runtime.operations
        if cherrypy.request.method == "POST":
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
