"""The audit log, in the registry."""

from __future__ import annotations

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

    def audit_entries(self, limit: int = 200) -> list[AuditEntry]:
        with self.session() as session:
            return list(session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)))
