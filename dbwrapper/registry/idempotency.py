"""Idempotency keys: the first response to a request, kept for its retries (see
:mod:`dbwrapper.api.idempotency`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from dbwrapper.registry.base import Store, as_utc
from dbwrapper.registry.models import IdempotencyRecord


class IdempotencyRecords(Store):
    """One row per (user, key): the request's fingerprint, and its response once there is one."""

    def claim_key(
        self, user_id: int, key: str, fingerprint: str, expires_at: datetime, process: str,
    ) -> IdempotencyRecord | None:
        """Record that a request with this key is at work in ``process``; ``None`` if the key
        has a row already."""
        record = IdempotencyRecord(
            user_id=user_id, key=key, fingerprint=fingerprint, status=None, process=process, body=None,
            headers="{}", expires_at=expires_at,
        )
        try:
            with self.session() as session:
                session.add(record)
        except IntegrityError:
            return None
        return record

    def idempotency_record(self, user_id: int, key: str) -> IdempotencyRecord | None:
        with self.session() as session:
            record = session.scalar(
                select(IdempotencyRecord).where(IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key)
            )
        if record is not None:
            record.expires_at = as_utc(record.expires_at)  # type: ignore[assignment]
            record.created_at = as_utc(record.created_at)  # type: ignore[assignment]
        return record

    def keep_response(self, record: IdempotencyRecord, status: int, body: str, headers: str) -> None:
        with self.session() as session:
            session.execute(
                update(IdempotencyRecord).where(IdempotencyRecord.id == record.id)
                .values(status=status, body=body, headers=headers)
            )

    def forget_key(self, record: IdempotencyRecord) -> None:
        with self.session() as session:
            session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == record.id))

    def prune_keys(self, now: datetime) -> int:
        """Forget the keys past their expiry; how many."""
        with self.session() as session:
            expired = delete(IdempotencyRecord).where(IdempotencyRecord.expires_at < now)
            return session.execute(expired).rowcount  # type: ignore[attr-defined]
