"""Whole pages for one request, built from templates with every value escaped.

A :class:`Pages` is made per request for the user asking (or nobody, on the
login page), so the layout can show who is logged in and every form can carry
the session's CSRF token. Templates are filled by markupsafe (see
:mod:`dbwrapper.formatting`): a value is escaped unless it is :class:`Markup`,
which is what a rendered template or fragment is.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from markupsafe import Markup, escape

from dbwrapper.accounts import Actor
from dbwrapper.api.routing import PREFIX, Route
from dbwrapper.archives import Manifest
from dbwrapper.auditing import AuditFilter
from dbwrapper.backends import Backend
from dbwrapper.backends.base.console import Limits
from dbwrapper.bulk import ACTIONS, BulkReport
from dbwrapper.classes import ClassReport
from dbwrapper.embedded import EmbeddedPostgres
from dbwrapper.formatting import NEVER_EXPIRES, Templates, human_size, in_utc, template, time_left, utc_text
from dbwrapper.reach import browser_host, from_elsewhere
from dbwrapper.registry import AuditEntry, Course, DatabaseRecord, Snapshot, User
from dbwrapper.registry.console import HISTORY_LENGTH
from dbwrapper.registry.models import ApiToken, ConsoleRun, Operation
from dbwrapper.rosters import Roster
from dbwrapper.service import Credentials, Listed, Listing
from dbwrapper.snapshots import describe
from dbwrapper.web.messages import Fragment, Kind

CLIENTS = {"postgres": "psql", "mysql": "mysql"}
#: What the command does about the password, per engine: said exactly, as it is (the
#: command never holds the password; see BaseClient.command).
PASSWORD_HELP = {
    "postgres": "The command holds no password: psql asks for it (the one below) because the server checks "
                "every login's password, as dbwrapper needs (the embedded PostgreSQL does, on TCP and on its "
                "socket). If PGPASSWORD is set, or ~/.pgpass has a line for this database, psql uses that "
                "instead and does not ask.",
    "mysql": "The command holds no password: its -p makes mysql ask for it (the one below).",
}
DEFAULT_PORTS = {"postgres": 5432, "mysql": 3306}

# Every form that changes something carries the session's CSRF token (web/auth.py checks it).
# The field is written here once and put after the opening tag of every POST form of a page;
# values on a page are escaped, so such a tag can only come from a template.
POST_FORM = re.compile(r'<form method="post"[^>]*>')
CSRF_FIELD = template('<input type="hidden" name="csrf_token" value="%(csrf)s">')

# One-line fragments, beside the code that uses them.
MESSAGE = template('<p class="message %(kind)s">%(text)s</p>')
OPTION = template('<option value="%(value)s">%(text)s</option>')
TIME = template('<time datetime="%(iso)s">%(text)s</time>')
BADGE = Markup('<span class="badge">dbwrapper</span>')
INSTRUCTOR_LINKS = Markup(
    '<a href="/users/">Users</a>\n<a href="/courses/">Courses</a>\n'
    '<a href="/archives/">Archives</a>\n<a href="/audit">Audit log</a>'
)
NO_EXPIRY = Markup('<tr><td colspan="4">No database is set to expire.</td></tr>')
NO_PERMANENT = Markup('<tr><td colspan="3">No database is kept for ever.</td></tr>')
NO_SNAPSHOT_ITEM = Markup("<li>No snapshots.</li>")
NO_ARCHIVE_ITEM = Markup("<li>No archives.</li>")
ITEM = template("<li>%(text)s</li>")
DATABASE_LINK = template('<a href="%(href)s"><code>%(name)s</code></a>')
# A listing row's actions; each names its row, for a screen reader that reads the buttons alone.
OPEN_LINK = template('<a class="button" href="%(href)s" aria-label="Open %(name)s">Open</a>')
# One for every place a database can be destroyed from (a listing row, a trainee at the quota).
DESTROY_LINK = template(
    '<a class="button danger" href="/dbi/destroy_my_db?db_type=%(db_type)s&amp;name=%(name)s" '
    'aria-label="Destroy %(name)s…">Destroy %(name)s…</a>'
)
CODE = template("<code>%(text)s</code>")
SERVERS_OWN = Markup('<span class="role">the server\'s</span>')
#: The expiry form's buttons, by the ``change`` each asks ``/dbi/expiry`` for.
EXPIRY_BUTTONS = {
    "extend": template('<button type="submit" name="change" value="extend" class="link" '
                       'aria-label="+7 days for %(name)s">+7 days</button>'),
    "permanent": template('<button type="submit" name="change" value="permanent" class="link" '
                          'aria-label="Keep for ever: %(name)s">Keep for ever</button>'),
    "mortal": template('<button type="submit" name="change" value="mortal" class="link" '
                       'aria-label="Expire in %(days)s days: %(name)s">Expire in %(days)s days</button>'),
}
EXPIRY_HEADING = Markup("<h2>Expiry</h2>")
AUDIT_PAGE_LINK = template('<a href="/audit?%(query)s" rel="%(rel)s">%(text)s</a>')
NO_SNAPSHOTS = Markup('<tr><td colspan="5">No snapshots yet.</td></tr>')
READ_ONLY_NOTE = ("This database is read-only: the console runs as its reader, a login that can only read it, "
                  "and its trainee is shown that login.")
READ_ONLY_SWITCH = template(
    '<form method="post" action="/console/read_only" class="inline"><input type="hidden" name="db_type" '
    'value="%(db_type)s"><input type="hidden" name="name" value="%(name)s"><input type="hidden" name="on" '
    'value="%(on)s"><button type="submit">%(text)s</button></form>'
)
NO_HISTORY = Markup('<li class="note">Nothing run here yet.</li>')
COLUMN = template("<th>%(name)s</th>")
ROW = template("<tr>%(cells)s</tr>")
CELL = template("<td>%(value)s</td>")
NULL_CELL = Markup('<td class="null">NULL</td>')
#: Characters of a run's text its history entry shows.
HISTORY_SHOWN = 300
NO_TOKENS = Markup('<tr><td colspan="4">No API tokens yet.</td></tr>')
NO_DATABASE = Markup('<p class="message info">You have no database yet.</p>')
CREATE_LINK = template(
    '<a class="button" href="/dbi/create_my_db?db_type=%(db_type)s">Create my %(label)s database</a>'
)
#: Instead of create buttons that would lead to a 409: what a trainee at their quota can do.
AT_QUOTA = template(
    '<span class="message info">You have %(count)s of %(quota)s database(s): to make another, destroy one '
    "(archive it first, with <em>Archive now</em> beside its credentials, to keep what it holds; "
    'restore it later from <a href="/archives/">Archives</a>).</span> %(destroy)s'
)
COURSE_LINK = template(
    '<a class="button" href="/dbi/create_my_db?db_type=%(db_type)s&amp;course=%(course)s">'
    "%(label)s database for the %(course)s course</a>"
)
RESET_LINK = template(
    '<a href="/dbi/reset_my_db?db_type=%(db_type)s&amp;name=%(name)s">Reset to the course %(course)s…</a>'
)
ONLY_THERE_SOCKET = template(
    '<p class="note">This command and the URL reach the database server through a socket on '
    '<code>%(machine)s</code>, the service\'s machine: they work there only, not on your own machine.</p>'
)
ONLY_THERE_TCP = template(
    '<p class="note">The database server listens on <code>%(host)s</code> of <code>%(machine)s</code>, the '
    "service's machine, so this command and the URL work there only. From your own machine, if you have an "
    "account on it, first open a tunnel and leave it open:</p>\n"
    '<pre>ssh -N -L %(port)s:%(host)s:%(port)s %(machine)s</pre>\n'
    '<p class="note">then run the same command in another terminal: it reaches the server through the tunnel. '
    "Or ask your instructor for a server address your machine can reach.</p>"
)
CLASS_ROW = template('<tr class="%(row_class)s"><td><code>%(user)s</code></td><td>%(note)s</td></tr>')
ROSTER_NAME = template("<li><code>%(name)s</code></li>")
SKIPPED_ROW = template('<tr><td class="num">%(row)s</td><td>%(reason)s</td><td>%(text)s</td></tr>')
CANCEL_CLASS = template(
    '<form method="post" action="/classes/cancel" class="inline"><input type="hidden" name="job" value="%(job)s">'
    '<button type="submit">Cancel the rest</button></form>'
)
# The confirmation page's parts (see Pages.confirm).
HIDDEN = template('<input type="hidden" name="%(name)s" value="%(value)s">')
BUTTON = template('<button type="submit" class="%(style)s">%(label)s</button>')
CHOICE = template('<button type="submit" class="%(style)s" name="%(name)s" value="%(value)s">%(label)s</button>')
LISTED = template('<ul class="listed">%(items)s</ul>')
ITEM = template("<li>%(text)s</li>")
#: What the class page says of a class that did not end well, or is being stopped.
CLASS_ENDINGS: dict[str, tuple[str, Kind]] = {
    "failed": ("The provisioning stopped: {error}", "error"),
    "cancelled": ("The provisioning was {error}; what was made stays.", "error"),
    "interrupted": ("The provisioning was {error}. What was made stays: provision the same roster "
                    "again to finish it, nothing is made twice.", "error"),
}
#: Likewise of an action over a class's databases.
BULK_ENDINGS: dict[str, tuple[str, Kind]] = {
    "failed": ("The action stopped: {error}", "error"),
    "cancelled": ("The action was {error}; what was done stays.", "error"),
    "interrupted": ("The action was {error}. What was done stays: start it again from the class's page "
                    "for the databases left.", "error"),
}
#: The class page's buttons for actions over its databases (see dbwrapper.bulk), each asking first.
BULK_BUTTONS = {"extend": "Extend", "reset": "Reset to the course", "archive": "Archive and drop"}
BULK_SECTION = template(
    "<h2>The class's databases</h2>\n<p>Each of these acts on the databases this class made that still exist, "
    'and asks first.</p>\n<p class="actions">%(buttons)s</p>'
)
BULK_BUTTON = template(
    '<a class="button" href="/classes/act?job=%(job)s&amp;action=%(action)s">%(text)s all %(count)s…</a>'
)


def database_path(db_type: str, name: str) -> str:
    """The page of a managed database."""
    return f"/dbi/database?{urlencode({'db_type': db_type, 'name': name})}"


#: Fragments one after the other; a part that is not :class:`Markup` is escaped.
join = Markup("").join


@dataclass(frozen=True)
class Choice:
    """One answer to a confirmation: a button, and the ``field`` (name, value) it sends when
    the page offers more than one."""

    label: str
    field: tuple[str, str] | None = None
    danger: bool = True


def curl_example(base_url: str, token: str) -> str:
    """How a script sends a token, to the service as the browser reached it."""
    return f'curl -H "Authorization: Bearer {token}" {base_url}/api/v1/databases'


# -- secrets shown once, on the page a form redirects to (see web/messages.py) -------------------


def credentials_shown(credentials: Credentials) -> Fragment:
    """Which database's credentials the next page shows: only its place travels, and the page
    builds the block from the registry (:data:`CREDENTIALS`), so the password is never kept twice."""
    return Fragment(CREDENTIALS, {"db_type": credentials.backend.db_type, "name": credentials.name})


def token_shown(secret: str, base_url: str) -> Fragment:
    """A new API token's secret, and how a script sends it."""
    return Fragment("token_secret.html", {"secret": secret, "example": curl_example(base_url, secret)})


def password_shown(user: str, password: str) -> Fragment:
    """A user's new password."""
    return Fragment("user_password.html", {"name": user, "password": password})


#: The hand-over of a database's credentials (see :func:`credentials_shown`).
CREDENTIALS = "credentials"


def shown_time(moment: datetime, *, seconds: bool = False) -> Markup:
    """A time on a page: in UTC, as everywhere, and in ISO 8601 for static/time.js, which adds
    the viewer's own time beside it when their zone is another."""
    return TIME % {"iso": in_utc(moment).isoformat(), "text": utc_text(moment, seconds=seconds)}


def shown_expiry(moment: datetime | None) -> Markup:
    """:func:`~dbwrapper.formatting.human_expiry` on a page: its time is a :func:`shown_time`."""
    if moment is None:
        return escape(NEVER_EXPIRES)
    return Markup("%s (%s)") % (shown_time(moment), time_left(moment))


def report_rows(done: Sequence[tuple[str, str]], failed: Sequence[tuple[str, str]]) -> Markup:
    """A class's or a class action's report, a row per name: what was done, then what failed and why."""
    return join([
        *(CLASS_ROW % {"row_class": "", "user": name, "note": note} for name, note in done),
        *(CLASS_ROW % {"row_class": "failed", "user": name, "note": reason} for name, reason in failed),
    ])


class Pages:
    """The pages one request can answer with."""

    def __init__(
        self, templates: Templates, actor: Actor | None, csrf: str, told: list[tuple[Kind, str]] | None = None,
        handed_over: list[Fragment | Credentials] | None = None, base: str = "",
    ) -> None:
        self.templates = templates
        self.actor = actor
        self.csrf = csrf
        self.told = told or []
        #: The service's address as the browser reached it (``http://host:7001``), if known.
        self.base = base
        #: Secrets a form handed over to this page, shown once (see web/messages.py).
        self.handed_over = handed_over or []

    def _page(self, template: str, *, title: str, **values: object) -> str:
        account = Markup()
        if self.actor is not None:
            account = self.templates.render(
                "account.html", name=self.actor.name, role=self.actor.user.role,
                instructor_links=INSTRUCTOR_LINKS if self.actor.is_instructor else Markup(),
            )
        body = self.templates.render(template, title=title, **values)
        messages = join(self._message(text, kind) for kind, text in self.told)
        shown = join(
            self._credentials(f) if isinstance(f, Credentials) else self.templates.render(f.template, **f.values)
            for f in self.handed_over
        )
        page = self.templates.render(
            "layout.html", title=title, account=account, messages=messages, handed_over=shown, body=body,
        )
        field = CSRF_FIELD % {"csrf": self.csrf}
        return POST_FORM.sub(lambda form: f"{form[0]}{field}", page)

    def _message(self, text: str, kind: Kind = "info") -> Markup:
        return MESSAGE % {"kind": kind, "text": text}

    # -- logging in ---------------------------------------------------------------

    def login(self, next_path: str, message: str | None = None) -> str:
        return self._page(
            "login.html", title="Log in", next=next_path,
            message=self._message(message, "error") if message else Markup(),
        )

    # -- home pages -----------------------------------------------------------------

    def instructor_home(
        self, backends: list[Backend], default_name: str, embedded: EmbeddedPostgres | None,
        expiring: list[DatabaseRecord], permanent: list[DatabaseRecord], lifetime_days: float, courses: list[str],
    ) -> str:
        """The servers, a class's form, and when databases expire: soonest first, then those
        kept for ever (a new database's lifetime, ``lifetime_days``, makes them expire again)."""
        rows = join(
            self.templates.render("backend_row.html", db_type=b.db_type, label=b.label, where=b.where)
            for b in backends
        )
        note = self._embedded_note(embedded) if embedded else Markup()
        expiry_rows = join(
            self.templates.render(
                "expiry_row.html", database=self._database_link(db.db_type, db.name),
                db_type=db.db_type, owner=db.owner, expires=shown_expiry(db.expires_at),
                form=self._expiry_form(db, "/", ("extend", "permanent"), lifetime_days),
            )
            for db in expiring
        ) or NO_EXPIRY
        mortal = ("mortal",) if lifetime_days > 0 else ()
        permanent_rows = join(
            self.templates.render(
                "permanent_row.html", database=self._database_link(db.db_type, db.name),
                db_type=db.db_type, owner=db.owner, form=self._expiry_form(db, "/", mortal, lifetime_days),
            )
            for db in permanent
        ) or NO_PERMANENT
        class_form = self.templates.render(
            "class_form.html",
            course_options=join(OPTION % {"value": c, "text": c} for c in courses),
            backend_options=self._backend_options(backends),
        ) if courses else Markup()
        return self._page(
            "index.html", title="Databases for trainees", default_name=default_name,
            backend_rows=rows, embedded_note=note, expiry_rows=expiry_rows, class_form=class_form,
            permanent_rows=permanent_rows,
            lifetime=f"{lifetime_days:g} days" if lifetime_days > 0 else "for ever too (lifetime_hours is 0)",
        )

    @staticmethod
    def _database_link(db_type: str, name: str) -> Markup:
        return DATABASE_LINK % {"href": database_path(db_type, name), "name": name}

    def _expiry_form(
        self, db: DatabaseRecord, back_to: str, changes: tuple[str, ...], lifetime_days: float,
    ) -> Markup:
        """The buttons that change ``db``'s expiry, a form that comes back to ``back_to``."""
        if not changes:
            return Markup()
        buttons = join(EXPIRY_BUTTONS[change] % {"name": db.name, "days": f"{lifetime_days:g}"} for change in changes)
        return self.templates.render(
            "expiry_form.html", db_type=db.db_type, name=db.name, next=back_to, buttons=buttons,
        )

    @staticmethod
    def _backend_options(backends: list[Backend]) -> Markup:
        return join(OPTION % {"value": b.db_type, "text": b.label} for b in backends)

    def _embedded_note(self, embedded: EmbeddedPostgres) -> Markup:
        client = embedded.client_url
        reach = (
            "from this machine only; to let trainees' own machines in, run dbwrapper serve --host 0.0.0.0"
            if embedded.local_only else "from other machines too"
        )
        return self.templates.render(
            "embedded_note.html", data_dir=embedded.data_dir, password_file=embedded.password_file,
            address=f"{client.host}:{client.port}", reach=reach,
        )

    def trainee_home(
        self, backends: list[Backend], mine: list[Credentials], default_name: str, courses: list[str],
        archives: list[Manifest],
    ) -> str:
        """A trainee's databases, how to make more (or, at their quota, how to make room), their
        archives when they have no database to restore over, and the same from a script (at
        :attr:`base`)."""
        assert self.actor is not None
        quota = self.actor.user.quota
        databases = join(self._credentials(c) for c in mine) or NO_DATABASE
        if len(mine) >= quota:
            links = AT_QUOTA % {
                "count": len(mine), "quota": quota,
                "destroy": join(DESTROY_LINK % {"db_type": c.backend.db_type, "name": c.name} for c in mine),
            }
        else:
            links = join([
                *(CREATE_LINK % {"db_type": b.db_type, "label": b.label} for b in backends),
                *(COURSE_LINK % {"db_type": b.db_type, "label": b.label, "course": course}
                  for course in courses for b in backends),
            ])
        kept = Markup()
        if not mine and archives:
            kept = self.templates.render("trainee_archives.html", table=self._archive_table(archives))
        return self._page(
            "trainee_home.html", title=f"{self.actor.name}'s databases", databases=databases,
            create_links=links, archives=kept, quota=quota, default_name=default_name, base=self.base,
            first_db_type=backends[0].db_type if backends else "postgres",
            first_label=backends[0].label if backends else "",
        )

    def _credentials(self, credentials: Credentials) -> Markup:
        backend = credentials.backend
        course = credentials.course
        return self.templates.render(
            "credentials.html", name=credentials.name, label=backend.label, db_type=backend.db_type,
            client=CLIENTS[backend.db_type], password_help=PASSWORD_HELP[backend.db_type],
            command=credentials.command, elsewhere=self._elsewhere(credentials),
            password=credentials.login.password, url=credentials.url,
            expires=shown_expiry(credentials.expires_at),
            reset=RESET_LINK % {"db_type": backend.db_type, "name": credentials.name, "course": course}
            if course else Markup(),
        )

    def _elsewhere(self, credentials: Credentials) -> Markup:
        """What a trainee who reads the page on another machine types there, when the command
        reaches the server on the service's machine only (see :mod:`dbwrapper.reach`)."""
        client = credentials.backend.client
        host = client.host
        if not from_elsewhere(self.base, host):
            return Markup()
        machine = browser_host(self.base)
        if host.startswith("/") or (host == "localhost" and credentials.backend.db_type == "mysql"):
            return ONLY_THERE_SOCKET % {"machine": machine}  # mysql's localhost is its socket
        port = credentials.backend.client_url.port or DEFAULT_PORTS[credentials.backend.db_type]
        return ONLY_THERE_TCP % {"host": host, "machine": machine, "port": port}

    # -- databases ------------------------------------------------------------------

    def listing(self, listing: Listing, *, mine: str) -> str:
        backend = listing.backend
        rows = join(self._row(db, backend.db_type, mine) for db in listing.databases)
        return self._page(
            "databases.html", title=f"{backend.label} databases", where=backend.where, db_type=backend.db_type,
            rows=rows,
        )

    def _row(self, db: Listed, db_type: str, mine: str) -> Markup:
        """A database of a listing, with what can be done to it: a registered one opens on its
        page, one this service made can be destroyed; the server's own are left alone."""
        opened = {"href": database_path(db_type, db.name), "name": db.name}
        actions = join([
            *([OPEN_LINK % opened] if db.owner is not None else []),
            *([DESTROY_LINK % {"db_type": db_type, "name": db.name}] if db.info.managed else []),
        ]) or SERVERS_OWN
        name = self._database_link(db_type, db.name) if db.owner is not None else CODE % {"text": db.name}
        return self.templates.render(
            "database_row.html", row_class="mine" if db.name == mine else "", name=name,
            owner=db.owner or "", size=human_size(db.info.size_bytes), badge=BADGE if db.info.managed else Markup(),
            actions=actions,
        )

    def database(
        self, record: DatabaseRecord, credentials: Credentials, snapshots: list[Snapshot],
        archives: list[Manifest], lifetime_days: float,
    ) -> str:
        """A managed database: how to connect, its snapshots and archives, and (instructors)
        when it expires."""
        assert self.actor is not None
        backend = credentials.backend
        expiry = Markup()
        if self.actor.is_instructor:
            changes = ("extend", "permanent") if record.expires_at else ("mortal",) if lifetime_days > 0 else ()
            expiry = EXPIRY_HEADING + self._expiry_form(
                record, database_path(record.db_type, record.name), changes, lifetime_days,
            )
        return self._page(
            "database.html", title=f"{record.name} on {backend.label}", name=record.name,
            db_type=record.db_type, owner=record.owner, credentials=self._credentials(credentials),
            expiry_form=expiry,
            snapshots=join(ITEM % {"text": describe(s)} for s in snapshots) or NO_SNAPSHOT_ITEM,
            archives=join(
                ITEM % {"text": f"{m.id} ({human_size(m.size_bytes)})"} for m in archives
            ) or NO_ARCHIVE_ITEM,
        )

    def confirm(
        self, *, title: str, explanation: str, action: str, fields: dict[str, str], choices: Sequence[Choice],
        back: str, listed: Sequence[str] = (),
    ) -> str:
        """Ask before acting: what ``action`` will do, the ``listed`` things it acts on, a button
        per choice; only the form's POST acts. Every destructive or password action asks here."""
        return self._page(
            "confirm.html", title=title, explanation=explanation, action=action, back=back,
            buttons=join(self._button(choice) for choice in choices),
            fields=join(HIDDEN % {"name": name, "value": value} for name, value in fields.items()),
            listed=LISTED % {"items": join(ITEM % {"text": text} for text in listed)} if listed else Markup(),
        )

    def confirm_reset(self, backend: Backend, record: DatabaseRecord) -> str:
        return self._page(
            "confirm_reset.html", title=f"Reset {record.name} to the course?", name=record.name,
            db_type=backend.db_type, label=backend.label, course=record.course,
        )

    @staticmethod
    def _button(choice: Choice) -> Markup:
        style = "danger" if choice.danger else ""
        if choice.field is None:
            return BUTTON % {"label": choice.label, "style": style}
        name, value = choice.field
        return CHOICE % {"name": name, "value": value, "label": choice.label, "style": style}

    # -- the SQL console -------------------------------------------------------------------

    def console(
        self, backend: Backend, record: DatabaseRecord, limits: Limits, sql: str, run: dict[str, Any] | None,
        history: list[ConsoleRun], api: str, runs_as: str, read_only: bool,
    ) -> str:
        """A database's console: the editor (holding ``sql``), the results of the ``run`` just
        made (as :meth:`Run.json` gave them), the history, and the login it runs as (``runs_as``,
        the reader when ``read_only``)."""
        where = {"db_type": backend.db_type, "name": record.name}
        results = Markup()
        if run is not None:
            results = join(self._console_result(number, result, where)
                           for number, result in enumerate(run["results"], 1))
            said = [run["summary"] + "."] + ([run["note"]] if run["note"] else [])
            results = self._message(" ".join(said), "error" if run["not_run"] or run["note"] else "ok") + results
        entries = join(
            self.templates.render(
                "console_entry.html", **where, id=entry.id, at=shown_time(entry.started_at, seconds=True),
                actor=entry.actor, summary=entry.summary or "running",
                sql=entry.sql if len(entry.sql) <= HISTORY_SHOWN else entry.sql[:HISTORY_SHOWN] + " …",
            )
            for entry in history
        ) or NO_HISTORY
        mode = self._message(READ_ONLY_NOTE, "info") if read_only else Markup()
        if self.actor is not None and self.actor.is_instructor:
            mode += READ_ONLY_SWITCH % {**where, "on": "no" if read_only else "yes",
                                        "text": "Let the trainee write again" if read_only else "Make it read-only"}
        return self._page(
            "console.html", title=f"SQL console: {record.name}", **where, label=backend.label, login=runs_as,
            mode=mode,
            seconds=f"{limits.seconds:g}", rows=f"{limits.rows:,}", sql=sql, results=results, history=entries,
            history_length=HISTORY_LENGTH, api=api,
        )

    def _console_result(self, number: int, result: dict[str, Any], where: dict[str, str]) -> Markup:
        if result["error"]:
            at = f" (line {result['error_line']}, column {result['error_column']})" if result["error_line"] else ""
            body, kind = self._message(f"{result['error']}{at}", "error"), "failed"
        elif result["columns"]:
            head = join(COLUMN % {"name": column} for column in result["columns"])
            rows = join(
                ROW % {"cells": join(NULL_CELL if value is None else CELL % {"value": value} for value in row)}
                for row in result["rows"]
            )
            body = self.templates.render(
                "console_rows.html", **where, head=head, rows=rows, summary=result["summary"],
                statement=result["statement"], number=number,
            )
            kind = "rows"
        else:
            body, kind = self._message(result["status"] or "Done.", "ok"), "done"
        return self.templates.render(
            "console_result.html", kind=kind, number=number, line=result["line"], seconds=f"{result['seconds']:.3f}",
            statement=result["statement"], body=body,
        )

    # -- the user's own account ------------------------------------------------------------

    def account(self, tokens: list[ApiToken], base_url: str) -> str:
        """The user's API tokens (a token just made is handed over to this page: see :func:`token_shown`)."""
        rows = join(
            self.templates.render(
                "token_row.html", id=t.id, name=t.name, created=shown_time(t.created_at),
                last_used=shown_time(t.last_used_at) if t.last_used_at else "never",
            )
            for t in tokens
        ) or NO_TOKENS
        example = curl_example(base_url, "<token>")
        return self._page("account_tokens.html", title="API tokens", rows=rows, example=example)

    # -- instructors' pages ---------------------------------------------------------------

    def users(self, users: list[tuple[User, list[str]]], default_quota: int) -> str:
        rows = join(
            self.templates.render(
                "user_row.html", name=user.name, role=user.role, quota=user.quota,
                databases=", ".join(owned) or "–",
            )
            for user, owned in users
        )
        return self._page("users.html", title="Users", rows=rows, default_quota=default_quota)

    def archives(
        self, manifests: list[Manifest], databases: list[DatabaseRecord], quota: int,
    ) -> str:
        """The archives, and a form that archives (and drops) one of ``databases``."""
        options = join(
            OPTION % {"value": f"{db.db_type}:{db.name}", "text": f"{db.name} ({db.db_type}, {db.owner})"}
            for db in databases
        )
        return self._page(
            "archives.html", title="Archives", table=self._archive_table(manifests), quota=quota,
            database_options=options,
        )

    def _archive_table(self, manifests: list[Manifest]) -> Markup:
        """The archives as a table, the same on the Archives page and a trainee's home."""
        rows = join(
            self.templates.render(
                "archive_row.html", id=m.id, owner=m.owner, size=human_size(m.size_bytes), database=m.database,
                tables=", ".join(f"{table} ({rows})" for table, rows in sorted(m.tables.items())) or "–",
            )
            for m in manifests
        )
        return self.templates.render("archive_table.html", rows=rows)

    def snapshots(self, backend: Backend, name: str, snapshots: list[Snapshot], quota: int) -> str:
        rows = join(
            self.templates.render(
                "snapshot_row.html", id=s.id, taken=shown_time(s.taken_at, seconds=True), label=s.label,
                size=human_size(s.size_bytes), db_type=backend.db_type, name=name,
            )
            for s in snapshots
        ) or NO_SNAPSHOTS
        return self._page(
            "snapshots.html", title=f"Snapshots of {name}", name=name, label=backend.label,
            db_type=backend.db_type, rows=rows, quota=quota,
        )

    def courses(
        self, courses: list[tuple[Course, dict[str, int]]], backends: list[Backend], owners: list[User],
        preparing: set[tuple[str, str]], pool_size: int,
    ) -> str:
        """The courses, each with a form that makes a database of it for one of ``owners``."""
        def servers(course: Course, spares: dict[str, int]) -> str:
            return ", ".join(
                f"{db_type} ({ready}{', preparing more' if (db_type, course.name) in preparing else ''})"
                for db_type, ready in spares.items()
            ) or "–"

        owner_options = join(OPTION % {"value": user.name, "text": f"{user.name} ({user.role})"} for user in owners)
        rows = join(
            self.templates.render(
                "course_row.html", name=course.name, description=course.description or "–",
                servers=servers(course, spares), owner_options=owner_options,
                read_only_next="no" if course.read_only else "yes",
                read_only_label="Let them be written again" if course.read_only else "Make them read-only",
                backend_options=join(
                    OPTION % {"value": b.db_type, "text": b.label} for b in backends if course.sql(b.db_type)
                ),
            )
            for course, spares in courses
        )
        return self._page(
            "courses.html", title="Courses", rows=rows, pool_size=pool_size,
            course_options=join(OPTION % {"value": c.name, "text": c.name} for c, _ in courses),
            backend_options=self._backend_options(backends),
        )

    def confirm_class(self, roster: Roster, course: str, backend: Backend) -> str:
        """What a roster names and leaves out, and the button that provisions it."""
        skipped = Markup()
        if roster.skipped:
            skipped = self.templates.render(
                "class_skipped.html", count=len(roster.skipped),
                rows=join(SKIPPED_ROW % {"row": s.row, "reason": s.reason, "text": s.text} for s in roster.skipped),
            )
        return self._page(
            "class_confirm.html", title=f"Provision {len(roster.names)} trainee(s) for {course} on {backend.label}?",
            count=len(roster.names), column=roster.column, course=course, label=backend.label, where=backend.where,
            db_type=backend.db_type, names=join(ROSTER_NAME % {"name": name} for name in roster.names),
            skipped=skipped, trainees=" ".join(roster.names),
            these=f"these {len(roster.names)} trainees" if len(roster.names) > 1 else "this trainee",
        )

    def class_status(self, operation: Operation, report: ClassReport | None, databases: int) -> str:
        """A class's progress, from its operation's record; once it ended, its report (what
        it made, if it was cut short), how it ended if not well, and the actions over the
        ``databases`` of it that still exist."""
        outcome = Markup()
        if report is not None:
            rows = report_rows([(done.user, done.note) for done in report.done], report.failed)
            outcome = self.templates.render(
                "class_report.html", kind="error" if report.failed else "ok", rows=rows, job=operation.id,
                summary=f"{len(report.done)} provisioned, {len(report.failed)} failed.",
                actions=BULK_SECTION % {"buttons": join(
                    BULK_BUTTON % {"job": operation.id, "action": action, "text": text, "count": databases}
                    for action, text in BULK_BUTTONS.items()
                )} if databases else Markup(),
            )
        db_type, _, course = operation.target.partition(":")
        return self._progress(operation, CLASS_ENDINGS, f"Class for {course} on {db_type}", outcome)

    def bulk_status(self, operation: Operation, report: BulkReport | None) -> str:
        """An action over a class's databases: the same progress bar, then what it did to each."""
        action = operation.kind.removeprefix("bulk ")
        outcome = Markup()
        if report is not None:
            rows = report_rows(report.done, report.failed)
            outcome = self.templates.render(
                "bulk_report.html", kind="error" if report.failed else "ok", rows=rows, job=operation.target,
                summary=f"{len(report.done)} done, {len(report.failed)} failed.",
            )
        title = f"{BULK_BUTTONS.get(action, action)}: the class's databases"
        return self._progress(operation, BULK_ENDINGS, title, outcome)

    def _progress(
        self, operation: Operation, endings: dict[str, tuple[str, Kind]], title: str, outcome: Markup,
    ) -> str:
        """The progress bar of ``operation``, how it ended if not well (``endings``), then ``outcome``."""
        running = operation.state == "running"
        ending, cancel = Markup(), Markup()
        if operation.state in endings:
            text, kind = endings[operation.state]
            ending = self._message(text.format(error=operation.error), kind)
        elif running and operation.cancel_requested:
            ending = self._message("Cancelling: the one at work is the last one.", "info")
        elif running:
            cancel = CANCEL_CLASS % {"job": operation.id}
        return self._page(
            "class_status.html", title=title, done=operation.done, total=operation.total,
            current=operation.current if running else "", outcome=ending + outcome, cancel=cancel,
        )

    def confirm_bulk(self, operation: Operation, action: str, databases: list[DatabaseRecord]) -> str:
        """Before an action over a class: what it does, and to how many databases, by name."""
        return self._page(
            "confirm_bulk.html", title=f"{BULK_BUTTONS[action]} {len(databases)} database(s)?",
            what=ACTIONS[action], count=len(databases), job=operation.id, action=action,
            names=", ".join(db.name for db in databases) or "none", button=BULK_BUTTONS[action],
        )

    def audit(self, entries: list[AuditEntry], filters: AuditFilter, page: int, *, older: bool) -> str:
        """Page ``page`` of the audit log as ``filters`` filter it, with links to the pages
        beside it that keep the filters."""
        rows = join(
            self.templates.render(
                "audit_row.html", at=shown_time(entry.at, seconds=True), actor=entry.actor,
                action=entry.action, target=entry.target, outcome=entry.outcome, detail=entry.detail,
            )
            for entry in entries
        )
        kept = {name: value for name, value in filters.texts().items() if value}

        def link(to: int, rel: str, text: str) -> Markup:
            return AUDIT_PAGE_LINK % {"query": urlencode({**kept, "page": to}), "rel": rel, "text": text}

        links = join([
            *([link(page - 1, "prev", "Newer entries")] if page > 1 else []),
            *([link(page + 1, "next", "Older entries")] if older else []),
        ])
        return self._page(
            "audit.html", title="Audit log", rows=rows, count=len(entries), page=page, links=links,
            **filters.texts(),
        )

    def error(self, status: str, message: str) -> str:
        return self._page("error.html", title=status, message=message)

    # -- the API ------------------------------------------------------------------

    def api(self, routes: list[Route], base: str) -> str:
        """The JSON API for a person: how to use it, and every path."""
        rows = join(
            self.templates.render("api_row.html", method=route.method, path=PREFIX + route.pattern,
                                  summary=route.summary)
            for route in routes
        )
        return self._page("api.html", title="The JSON API", rows=rows, base=base)
