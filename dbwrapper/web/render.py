"""Pages from plain ``%(name)s`` Python templates, with every value HTML-escaped.

No template engine: a template is an HTML file with ``%(name)s`` holes, filled
by Python's ``%`` operator. The one rule that keeps this safe is that every
value is escaped on the way in unless it is :class:`Markup`, which only code in
this package creates, for HTML it built itself from escaped parts.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent


class Markup(str):
    """HTML that this code built itself, from escaped values; inserted as it is."""


def escape(value: object) -> Markup:
    """``value`` as HTML text: markup stays, everything else is escaped (quotes too)."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape("" if value is None else str(value), quote=True))


def join(parts: Iterable[Markup]) -> Markup:
    """Concatenate rendered fragments."""
    return Markup("".join(escape(part) for part in parts))


def templates_dir() -> Path:
    """Where the templates are: inside the installed package, or at the top of a checkout."""
    installed = PACKAGE_DIR / "templates"
    return installed if installed.is_dir() else PACKAGE_DIR.parent / "templates"


class Templates:
    """The templates of one directory, read once at start-up."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or templates_dir()
        self._texts = {path.name: path.read_text(encoding="utf-8") for path in self.directory.glob("*.html")}

    @property
    def static_dir(self) -> Path:
        """The stylesheet and other files served as they are under ``/static``."""
        return self.directory / "static"

    def render(self, template: str, /, **values: object) -> Markup:
        """Fill ``template``; every value is escaped unless it is :class:`Markup`."""
        return Markup(self._texts[template] % {key: escape(value) for key, value in values.items()})

