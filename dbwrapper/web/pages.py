"""The fragments the pages are built from: rows, messages, badges.

Kept apart from the controllers so that handlers stay a few lines each and
every piece of HTML the code builds comes from a template, escaped.
"""

from __future__ import annotations

from pathlib import Path

from dbwrapper.backends import Backend, DatabaseInfo
from dbwrapper.service import Listing, Outcome
from dbwrapper.web.render import Markup, Templates, join

_UNITS = ("bytes", "kB", "MB", "GB", "TB")


def human_size(size: int | None) -> str:
    """``8192`` → ``8.0 kB``; ``None`` (the server would not say) → ``–``."""
    if size is None:
        return "–"
    value = float(size)
    for unit in _UNITS:
        if value < 1024 or unit == _UNITS[-1]:
            return f"{size} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


class Pages:
    """Whole pages for the controllers, from :class:`Templates`."""

    def __init__(self, templates: Templates) -> None:
        self.templates = templates

    def index(self, backends: list[Backend], default_name: str, embedded_dir: Path | None) -> str:
        rows = join(
            self.templates.render("backend_row.html", kind=b.kind, label=b.label, where=b.where)
            for b in backends
        )
        note = (
            self.templates.render("embedded_note.html", data_dir=embedded_dir)
            if embedded_dir
            else Markup()
        )
        return self.templates.page(
            "index.html",
            title="Databases for trainees",
            default_name=default_name,
            backend_rows=rows,
            embedded_note=note,
        )

    def listing(self, listing: Listing, *, mine: str, message: Markup | None = None) -> str:
        backend = listing.backend
        rows = join(self._row(db, mine) for db in listing.databases)
        return self.templates.page(
            "databases.html",
            title=f"{backend.label} databases",
            message=message or Markup(),
            where=backend.where,
            kind=backend.kind,
            rows=rows,
        )

    def _row(self, db: DatabaseInfo, mine: str) -> Markup:
        badge = self.templates.render("badge.html", text="dbwrapper") if db.managed else Markup()
        return self.templates.render(
            "database_row.html",
            row_class="mine" if db.name == mine else "",
            name=db.name,
            size=human_size(db.size_bytes),
            badge=badge,
        )

    def created(self, outcome: Outcome) -> str:
        backend = outcome.backend
        message = join(
            [
                self._summary(outcome),
                self.templates.render(
                    "connect.html",
                    command=backend.client_command(outcome.name),
                    url=backend.display_url(outcome.name),
                ),
            ]
        )
        return self.listing(outcome.listing, mine=outcome.name, message=message)

    def destroyed(self, outcome: Outcome) -> str:
        return self.listing(outcome.listing, mine=outcome.name, message=self._summary(outcome))

    def _summary(self, outcome: Outcome) -> Markup:
        kind = "ok" if outcome.changed else "info"
        return self.templates.render("message.html", kind=kind, text=outcome.summary)

    def confirm_destroy(self, backend: Backend, name: str) -> str:
        return self.templates.page(
            "confirm_destroy.html",
            title=f"Destroy {name}?",
            name=name,
            kind=backend.kind,
            label=backend.label,
            where=backend.where,
        )

    def error(self, status: Markup, message: Markup) -> str:
        return self.templates.page("error.html", title=status, message=message)
