"""What the command line and the pages both show: sizes, times, expiry times, the credentials sheet.

Pages are plain ``%(name)s`` HTML templates, filled by markupsafe:
``Markup(template) % values`` escapes every value (quotes too) unless it is
already :class:`~markupsafe.Markup`, and ``Markup("").join(parts)`` escapes every
part that is not. So HTML built from a template stays marked as HTML, and
nothing is escaped by hand or twice.

In a template only ``%(name)s`` is a placeholder; every other ``%`` is a
percent sign (``width: 100%``), never a format character that would fail the
page. A ``%(`` that is not a placeholder is a mistake, refused when the
templates are read.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from markupsafe import Markup

from dbwrapper.classes import Access, ClassReport

PACKAGE_DIR = Path(__file__).resolve().parent
_UNITS = ("bytes", "KiB", "MiB", "GiB", "TiB")
NEVER_EXPIRES = "never (permanent)"

#: A ``%`` that does not start a ``%(name)s``, and a ``%(`` that is not one.
_LITERAL_PERCENT = re.compile(r"%(?!\([a-z_]+\)s)")
_BAD_PLACEHOLDER = re.compile(r"%\((?![a-z_]+\)s)")


def in_utc(moment: datetime) -> datetime:
    """``moment`` in UTC. A naive one (SQLite hands datetimes back so) is UTC already: every
    time dbwrapper keeps is, and ``astimezone`` would take it for the machine's local time."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def utc_text(moment: datetime, *, seconds: bool = False) -> str:
    """``2026-12-10 23:30 UTC``: how a time is shown everywhere, to the minute (``seconds``:
    to the second, as snapshots, named by their time, are)."""
    return f"{in_utc(moment):%Y-%m-%d %H:%M{':%S' if seconds else ''}} UTC"


def time_left(moment: datetime, now: datetime | None = None) -> str:
    """``in 14 days``, ``in 3 h``, ``due now``: how far off ``moment`` is."""
    left = moment - (now or datetime.now(UTC))
    # Rounded, not truncated: a database made for 14 days a second ago expires "in 14 days".
    days, hours = round(left / timedelta(days=1)), round(left / timedelta(hours=1))
    if left.total_seconds() <= 0:
        return "due now"
    if days >= 1:
        return f"in {days} day{'s' if days != 1 else ''}"
    return f"in {max(1, hours)} h"


def human_expiry(moment: datetime | None, now: datetime | None = None) -> str:
    """``2026-12-10 23:30 UTC (in 14 days)``; ``never`` for a permanent database."""
    if moment is None:
        return NEVER_EXPIRES
    return f"{utc_text(moment)} ({time_left(moment, now)})"


def human_size(size: int | None) -> str:
    """``8192`` → ``8.0 KiB``: binary units, as it divides by 1024; ``None`` (the server would
    not say) → ``–``."""
    if size is None:
        return "–"
    value = float(size)
    for unit in _UNITS:
        if value < 1024 or unit == _UNITS[-1]:
            return f"{size} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def template(text: str, where: str = "a template") -> Markup:
    """``text`` ready for ``% values``: its ``%(name)s`` are holes, its other ``%`` text.

    Raises :class:`ValueError` for a ``%(`` that opens no ``%(name)s`` (say
    ``%(quota)d``), naming ``where`` and the line.
    """
    if bad := _BAD_PLACEHOLDER.search(text):
        line = text.count("\n", 0, bad.start()) + 1
        found = text[bad.start():bad.start() + 20]
        raise ValueError(f"{where}, line {line}: only %(name)s placeholders are filled, not {found!r}")
    return Markup(_LITERAL_PERCENT.sub("%%", text))


def templates_dir() -> Path:
    """Where the templates are: inside the installed package, or at the top of a checkout."""
    installed = PACKAGE_DIR / "templates"
    return installed if installed.is_dir() else PACKAGE_DIR.parent / "templates"


class Templates:
    """The templates of one directory, read once at start-up."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or templates_dir()
        self._templates = {
            path.name: template(path.read_text(encoding="utf-8"), str(path))
            for path in self.directory.glob("*.html")
        }

    @property
    def static_dir(self) -> Path:
        """The stylesheet and other files served as they are under ``/static``."""
        return self.directory / "static"

    def render(self, name: str, /, **values: object) -> Markup:
        """Fill the template ``name``; every value is escaped unless it is :class:`Markup`."""
        return self._templates[name] % values


SHEET_FAILURE = template('<p class="failed"><strong>%(user)s</strong> was not provisioned: %(reason)s</p>')
SHEET_PASSWORD = template('<code class="secret">%(password)s</code>')
SHEET_UNCHANGED = Markup("<em>unchanged: the one given to you before</em>")
SHEET_NO_DATABASE = Markup("<p>Your database: on your page, once you have logged in.</p>")
#: The sheet's own stylesheet: linked on the service's page, copied into a file the command line writes.
SHEET_STYLE = "sheet.css"
SHEET_LINK = Markup(f'<link rel="stylesheet" href="/static/{SHEET_STYLE}">')
SHEET_INLINE = template("<style>\n%(css)s</style>")


def credentials_sheet(
    templates: Templates, report: ClassReport, label: str, address: str, *, standalone: bool = False,
) -> Markup:
    """A printable page with one card per provisioned trainee, and the rows that failed.

    ``address`` is where trainees open the service. A ``standalone`` sheet (a file, opened
    from the disk) carries its stylesheet inside; the service's page links it, as its
    Content-Security-Policy allows no inline style.
    """
    def database(access: Access | None) -> Markup:
        if access is None:
            return SHEET_NO_DATABASE
        return templates.render(
            "sheet_database.html", label=label, database=access.database, login=access.login,
            db_password=access.login_password, expires=human_expiry(access.expires_at),
            command=access.command, url=access.url,
        )

    cards = Markup("").join(
        templates.render(
            "sheet_card.html", user=done.user, address=address, database=database(done.access),
            password=SHEET_PASSWORD % {"password": done.password} if done.password else SHEET_UNCHANGED,
        )
        for done in report.done
    )
    failures = Markup("").join(SHEET_FAILURE % {"user": user, "reason": reason} for user, reason in report.failed)
    style = SHEET_LINK
    if standalone:
        css = (templates.static_dir / SHEET_STYLE).read_text(encoding="utf-8")
        style = SHEET_INLINE % {"css": Markup(css)}  # dbwrapper's own file, and <style> decodes no entities
    return templates.render(
        "credentials_sheet.html", course=report.course, label=label, address=address, cards=cards,
        failures=failures, style=style,
    )
