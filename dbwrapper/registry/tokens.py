"""Personal API tokens in the registry: only each token's SHA-256 is kept (see
:class:`~dbwrapper.registry.models.ApiToken`), so a token is found by its hash."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update

from dbwrapper.errors import InvalidInput
from dbwrapper.registry.base import Store, as_utc
from dbwrapper.registry.models import ApiToken, User, utc_now

#: How stale a token's ``last_used_at`` may get before a use writes it again: a
#: script calling every second would otherwise make every request a write.
LAST_USED_PRECISION = timedelta(minutes=1)


class TokenRecords(Store):
    """Who holds which API tokens, and when each was last used."""

    def add_token(self, user: User, name: str, token_hash: str) -> ApiToken:
        """Record a token of ``user``'s; a name they already gave a token is a 400."""
        with self.session() as session:
            taken = select(ApiToken.id).where(ApiToken.user_id == user.id, ApiToken.name == name)
            if session.scalar(taken) is not None:
                raise InvalidInput(f"{user.name} already has a token named {name!r}; choose another name.")
            token = ApiToken(user_id=user.id, name=name, token_hash=token_hash)
            session.add(token)
        return token

    def token_user(self, token_hash: str, now: datetime | None = None) -> User | None:
        """The user holding the token with this hash, or ``None``; the token's
        ``last_used_at`` moves to ``now`` unless it moved within :data:`LAST_USED_PRECISION`.

        Not cached: a revoked token must stop working at once.
        """
        now = now or utc_now()
        with self.session() as session:
            found = session.execute(
                select(ApiToken.id, ApiToken.last_used_at, User)
                .join(User, User.id == ApiToken.user_id)
                .where(ApiToken.token_hash == token_hash)
            ).one_or_none()
            if found is None:
                return None
            token_id, last_used_at, user = found
            last_used = as_utc(last_used_at)
            if last_used is None or now - last_used >= LAST_USED_PRECISION:
                session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now))
        return user

    def tokens(self, user: User) -> list[ApiToken]:
        """``user``'s tokens, oldest first."""
        with self.session() as session:
            return list(session.scalars(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id)))

    def remove_token(self, user: User, token_id: int) -> ApiToken | None:
        """Delete ``user``'s token ``token_id``; ``None`` if they have no such token
        (another user's token id is no token of theirs)."""
        with self.session() as session:
            token = session.scalar(select(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == user.id))
            if token is not None:
                session.delete(token)
        return token
