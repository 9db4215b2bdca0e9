"""Browsers' sessions (who is logged in, the CSRF token), kept in the registry rather than in
one process's memory, so that every ``dbwrapper serve`` on this registry knows every login
(see :mod:`dbwrapper.web.sessions`, which stores them here)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert, select, update

from dbwrapper.registry.base import Store, as_utc
from dbwrapper.registry.models import WebSession


class SessionRecords(Store):
    """One row per session: its values as JSON text, and when it expires."""

    def web_session(self, id: str, now: datetime) -> tuple[str, datetime] | None:
        """The session's JSON and expiry, if it exists and has not expired by ``now``."""
        with self.session() as session:
            row = session.execute(
                select(WebSession.data, WebSession.expires_at).where(WebSession.id == id)
            ).one_or_none()
        if row is None or (expires_at := as_utc(row.expires_at)) is None or expires_at <= now:
            return None
        return row.data, expires_at

    def save_web_session(self, id: str, data: str, expires_at: datetime, *, new: bool) -> None:
        """Write a session: insert it if it is ``new``, else update it only if it still exists,
        so that a request that began before a logout elsewhere never brings it back."""
        with self.session() as session:
            if new:
                session.execute(insert(WebSession).values(id=id, data=data, expires_at=expires_at))
            else:
                session.execute(update(WebSession).where(WebSession.id == id).values(data=data, expires_at=expires_at))

    def touch_web_session(self, id: str, expires_at: datetime) -> None:
        """Move a session's expiry, leaving its values as they are now: a request that changed
        nothing must not write back the values it read, which another request of the same
        browser may have changed meanwhile."""
        with self.session() as session:
            session.execute(update(WebSession).where(WebSession.id == id).values(expires_at=expires_at))

    def delete_web_session(self, id: str) -> None:
        with self.session() as session:
            session.execute(delete(WebSession).where(WebSession.id == id))

    def prune_web_sessions(self, now: datetime) -> int:
        """Forget the sessions past their expiry; how many."""
        with self.session() as session:
            return session.execute(delete(WebSession).where(WebSession.expires_at <= now)).rowcount  # type: ignore[attr-defined]
