"""The audit log, in the registry."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from dbwrapper.registry.base import Store
from dbwrapper.registry.models import AuditEntry

AUDIT_DETAIL_LENGTH = 500

class AuditLog(Store):
    """Who did or tried what, on what, and how it ended."""

    def audit(self, actor: str, action: str, target: str, outcome: str, detail: str = "") -> None:
        self.add_audit(AuditEntry.new(actor, action, target, outcome=outcome, detail=detail))

    def add_audit(self, entry: AuditEntry) -> None:
        entry.detail = (entry.detail or "")[:AUDIT_DETAIL_LENGTH]
        with self.session() as session:
            session.add(entry)

    def audit_entries(
        self, limit: int = 200, *, actor: str | None = None, target: str | None = None, action: str | None = None,
        since: datetime | None = None, until: datetime | None = None, before_id: int | None = None,
        offset: int = 0,
    ) -> list[AuditEntry]:
        """The newest entries first, filtered; ``before_id`` pages on from the last one seen
        (the API), ``offset`` skips as many newer ones (a page number on the audit page).

        ``actor`` is a user name (entries say ``alice (web)``); ``target`` matches a
        whole target (``postgres:alice_7001``) or a name in it (``alice_7001``).
        """
        query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit).offset(offset)
        if actor is not None:
            by_name = AuditEntry.actor.startswith(f"{actor} (", autoescape=True)
            query = query.where((AuditEntry.actor == actor) | by_name)
        if target is not None:
            by_database = AuditEntry.target.endswith(f":{target}", autoescape=True)
            query = query.where((AuditEntry.target == target) | by_database)
        if action is not None:
            query = query.where(AuditEntry.action == action)
        if since is not None:
            query = query.where(AuditEntry.at >= since)
        if until is not None:
            query = query.where(AuditEntry.at < until)
        if before_id is not None:
            query = query.where(AuditEntry.id < before_id)
        with self.session() as session:
            return list(session.scalars(query))
