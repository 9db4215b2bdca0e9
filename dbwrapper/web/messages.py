"""One-time messages: what a form did, said once on the page it redirects to.

Every form that changes something answers with a 303 to a page (Post/Redirect/Get),
so that reloading that page shows it again without acting again. What the form did
travels in the session until the next page is rendered, and is shown there once, in
the layout's live region (``role="status"``), where a screen reader reads it out.

A secret that is shown once (a new user's password, a new API token, a restored
database's credentials) is handed over the same way, as a :class:`Fragment`: a
template's name and its values, rendered (and escaped) by the next page, below the
messages. It is kept in the session, never in a URL, and gone once that page is
rendered. The session is a row in the registry, which also holds the session ids
themselves: whoever can read it can take over any session already, so a secret kept
there for the length of one redirect gives them nothing more.

A request that came with an API token has no session: its messages are not kept, and
a form that hands a secret over refuses it before acting (:func:`check_hand_over`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NoReturn

import cherrypy
from cherrypy.lib.sessions import Session

from dbwrapper.errors import Refused

#: The session's keys for the messages and the fragments not shown yet.
SESSION_MESSAGES = "messages"
SESSION_FRAGMENTS = "handed_over"

Kind = Literal["ok", "info", "error"]


@dataclass(frozen=True)
class Fragment:
    """A part of the next page: a template of ``templates/`` and its values, as text (the
    page escapes them when it renders the template)."""

    template: str
    values: dict[str, str]


def _session() -> Session | None:
    """This request's session; none for a request that came with an API token."""
    return getattr(cherrypy.serving, "session", None)


def tell(text: str, kind: Kind = "ok") -> None:
    """Keep ``text`` for the next page this session sees."""
    session = _session()
    if session is not None:
        session[SESSION_MESSAGES] = [*session.get(SESSION_MESSAGES, []), [kind, text]]


def told() -> list[tuple[Kind, str]]:
    """The messages kept for this page, taken out of the session: they are shown once."""
    session = _session()
    if session is None or SESSION_MESSAGES not in session:
        return []
    return [(kind, text) for kind, text in session.pop(SESSION_MESSAGES)]


def check_hand_over(what: str) -> None:
    """Refuse, before anything is done, a form that would hand ``what`` over to the next page
    when this request has no session to carry it (it came with an API token): it would be lost."""
    if _session() is None:
        raise Refused(f"This page would show {what} on the next page, which a request with an API "
                      "token has no session for; use the JSON API (/api/v1/), which answers with it.")


def hand_over(fragment: Fragment) -> None:
    """Keep ``fragment`` (a secret shown once) for the next page this session sees."""
    session = _session()
    if session is not None:
        session[SESSION_FRAGMENTS] = [
            *session.get(SESSION_FRAGMENTS, []), [fragment.template, fragment.values],
        ]


def handed_over() -> list[Fragment]:
    """The fragments kept for this page, taken out of the session: they are shown once."""
    session = _session()
    if session is None or SESSION_FRAGMENTS not in session:
        return []
    return [Fragment(template, values) for template, values in session.pop(SESSION_FRAGMENTS)]


def redirect(to: str, text: str | None = None, kind: Kind = "ok", *, secret: Fragment | None = None) -> NoReturn:
    """End a form's handler: say ``text`` on the page ``to`` (and show ``secret`` there, once),
    and send the browser there."""
    if text:
        tell(text, kind)
    if secret is not None:
        hand_over(secret)
    raise cherrypy.HTTPRedirect(to, 303)
