"""Failed logins, one row each, kept in the registry so that the throttle
(:class:`dbwrapper.accounts.LoginThrottle`) counts those made on every process at once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select

from dbwrapper.registry.base import Store
from dbwrapper.registry.models import LoginFailure


class LoginFailureRecords(Store):
    """Failures by key (``name:alice``, ``address:10.0.0.5``) and when they happened."""

    def record_login_failure(self, keys: list[str], at: datetime) -> None:
        """One failed login, counted against each of ``keys``."""
        with self.session() as session:
            session.add_all(LoginFailure(key=key, at=at) for key in keys)

    def login_failures(self, keys: list[str], since: datetime) -> dict[str, int]:
        """How many failures each of ``keys`` has had after ``since`` (keys with none are left out)."""
        with self.session() as session:
            counted = session.execute(
                select(LoginFailure.key, func.count())
                .where(LoginFailure.key.in_(keys), LoginFailure.at > since)
                .group_by(LoginFailure.key)
            )
            return {key: count for key, count in counted}

    def prune_login_failures(self, before: datetime) -> int:
        """Forget the failures at or before ``before``; how many."""
        with self.session() as session:
            return session.execute(delete(LoginFailure).where(LoginFailure.at <= before)).rowcount  # type: ignore[attr-defined]
