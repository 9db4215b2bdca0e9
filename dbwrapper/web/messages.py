"""One-time messages: what a form did, said once on the page it redirects to.

Every form that changes something answers with a 303 to a page (Post/Redirect/Get),
so that reloading that page shows it again without acting again. What the form did
travels in the session until the next page is rendered, and is shown there once, in
the layout's live region (``role="status"``), where a screen reader reads it out.

A request that came with an API token has no session: its messages are not kept.
"""

from __future__ import annotations

from typing import Literal, NoReturn

import cherrypy
from cherrypy.lib.sessions import Session

#: The session's key for the messages not shown yet.
SESSION_MESSAGES = "messages"

Kind = Literal["ok", "info", "error"]


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


def redirect(to: str, text: str | None = None, kind: Kind = "ok") -> NoReturn:
    """End a form's handler: say ``text`` on the page ``to``, and send the browser there."""
    if text:
        tell(text, kind)
    raise cherrypy.HTTPRedirect(to, 303)
