"""Users, their passwords and roles, and the throttle on failed logins.

Two roles, after the seed's question "Are there super users?": an
``instructor`` acts on every database and manages users; a ``trainee`` acts
on their own databases only, up to a quota. Passwords are hashed with
Argon2id; generated ones are shown once and never stored in clear.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from dbwrapper.errors import (
    Forbidden,
    InvalidInput,
    NotFound,
    NotLoggedIn,
    Refused,
    TooManyAttempts,
)
from dbwrapper.names import name_owner, render_name
from dbwrapper.passwords import generate_password
from dbwrapper.registry import Registry, User
from dbwrapper.registry.models import ApiToken
from dbwrapper.servers import Servers

ROLES = ("instructor", "trainee")
USER_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
USER_NAME_RULE = "1 to 32 characters: lower-case letters a-z, digits and underscores, starting with a letter"
MIN_PASSWORD_LENGTH = 10

#: Failed logins allowed per user name and per client address in the window.
FAILURES_PER_NAME = 5
FAILURES_PER_ADDRESS = 50
FAILURE_WINDOW_SECONDS = 300

#: An API token: a prefix that tells it apart in a script or a leak report, then 32 random bytes.
TOKEN_PREFIX = "dbw_"
TOKEN = re.compile(r"dbw_[A-Za-z0-9_-]{43}")
TOKEN_NAME_LENGTH = 64


@dataclass(frozen=True)
class Actor:
    """Who is asking: a user, and how they came (``web`` or ``cli``), for the audit log."""

    user: User
    via: str = "web"

    @property
    def name(self) -> str:
        return self.user.name

    @property
    def label(self) -> str:
        """Who, as the audit log names them: ``alice (web)``."""
        return f"{self.name} ({self.via})"

    @property
    def is_instructor(self) -> bool:
        return self.user.role == "instructor"

    def require_instructor(self, action: str) -> None:
        if not self.is_instructor:
            raise Forbidden(f"Only an instructor may {action}.")


class LoginThrottle:
    """Counts recent failed logins per user name and per address; refuses past the limits.

    The failures are rows in the registry, so that every process serving it counts them
    together: a sixth guess on another process is refused as on this one.
    """

    def __init__(self, servers: Servers) -> None:
        self.servers = servers

    @staticmethod
    def _keys(name: str, address: str) -> list[str]:
        # Cut to fit their column: a user's name has at most 32 characters, an address fewer than 64.
        return [f"name:{name[:32]}", f"address:{address[:64]}"]

    @staticmethod
    def _window_start() -> datetime:
        return datetime.now(UTC) - timedelta(seconds=FAILURE_WINDOW_SECONDS)

    def check(self, name: str, address: str) -> None:
        by_name, by_address = keys = self._keys(name, address)
        recent = self.servers.registry.login_failures(keys, self._window_start())
        if recent.get(by_name, 0) >= FAILURES_PER_NAME or recent.get(by_address, 0) >= FAILURES_PER_ADDRESS:
            raise TooManyAttempts(
                "Too many failed logins; wait a few minutes before trying again."
            )

    def failed(self, name: str, address: str) -> None:
        self.servers.registry.record_login_failure(self._keys(name, address), datetime.now(UTC))

    def prune(self) -> int:
        """Forget the failures that no longer count (older than the window); how many."""
        return self.servers.registry.prune_login_failures(self._window_start())


class UserRequests:
    """How many requests each trainee has at work at once, in this process: at most ``limit``.

    A database server's gate (:mod:`dbwrapper.gates`) admits a bounded number
    of requests, shared by every user of that server; one trainee's programs,
    logged in many times over, must not fill it alone and leave the class
    with 503s. Past the limit, that trainee alone gets a 429. Instructors, who
    act for the whole class (and could destroy it anyway), have no such limit.

    Unlike sessions and failed logins, this count stays in each process's memory:
    the gates it protects are this process's own, so another ``dbwrapper serve``
    on the same registry lets the trainee have ``limit`` more at work in its own.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._at_work: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()

    def enter(self, name: str) -> None:
        with self._lock:
            if self._at_work[name] >= self.limit:
                raise TooManyAttempts(
                    f"{name} has {self.limit} requests at work already; wait for them to finish."
                )
            self._at_work[name] += 1

    def leave(self, name: str) -> None:
        with self._lock:
            self._at_work[name] -= 1
            if not self._at_work[name]:
                del self._at_work[name]


class Accounts:
    """Adding, removing and authenticating users, recorded in the registry."""

    def __init__(self, servers: Servers) -> None:
        self.servers = servers
        self.settings = servers.settings
        self.hasher = PasswordHasher()
        self.throttle = LoginThrottle(servers)
        self.requests = UserRequests(self.settings.requests_per_user)

    @property
    def registry(self) -> Registry:
        return self.servers.registry

    def users(self) -> list[User]:
        return self.registry.users()

    def validate_user_name(self, name: object) -> str:
        """A user name that also makes a valid database name from the template."""
        if not isinstance(name, str) or not USER_NAME.fullmatch(name):
            raise InvalidInput(f"A user name is {USER_NAME_RULE}.")
        try:
            render_name(self.settings.name_template, user=name, port=self.settings.port)
        except InvalidInput as error:
            raise InvalidInput(f"User name {name!r} cannot name a database: {error}") from error
        return name

    def _check_password(self, password: str) -> str:
        if len(password) < MIN_PASSWORD_LENGTH:
            raise InvalidInput(f"A password needs at least {MIN_PASSWORD_LENGTH} characters.")
        return password

    def add(
        self, name: str, role: str, password: str | None = None, quota: int | None = None, *, by: str,
        shown: bool = True,
    ) -> tuple[User, str]:
        """Add a user; returns it and its password (generated when none is given).

        ``shown=False`` says nobody has seen the password yet (a class's sheet is
        still to come): see :meth:`Registry.mark_passwords_shown`.
        """
        name = self.validate_user_name(name)
        if role not in ROLES:
            raise InvalidInput(f"Unknown role {role!r}; valid roles: {', '.join(ROLES)}.")
        quota = self.settings.default_quota if quota is None else quota
        if not 0 <= quota <= 100:
            raise InvalidInput("A quota is between 0 and 100 databases.")
        password = self._check_password(password) if password else generate_password()
        self._check_names_free(name)
        user = self.registry.add_user(name, role, self.hasher.hash(password), quota, shown=shown)
        self.registry.audit(by, "user add", name, "ok", f"{role}, quota {quota}")
        return user, password

    def _check_names_free(self, name: str) -> None:
        """Refuse a new user whose own names (see :func:`name_owner`) another user's databases
        already have: they would be locked out of their own database, and a class's sheet
        would hand them someone else's."""
        users = [user.name for user in self.registry.users() if user.name != name] + [name]
        template, port = self.settings.name_template, self.settings.port
        for db in self.registry.databases():
            if db.owner != name and name_owner(db.name, users, template, port) == name:
                raise InvalidInput(
                    f"A user named {name} would own {db.name} by its name, which belongs to {db.owner}; "
                    "choose another name."
                )

    def get(self, name: str) -> User:
        user = self.registry.user(name)
        if user is None:
            raise InvalidInput(f"There is no user named {name!r}.")
        return user

    def check_remove(self, name: str) -> User:
        """The user ``name``, if they may be removed once they own nothing: never the last instructor."""
        user = self.get(name)
        instructors = [u for u in self.registry.users() if u.role == "instructor"]
        if user.role == "instructor" and len(instructors) == 1:
            raise Refused(f"{name} is the last instructor; add another before removing this one.")
        return user

    def remove(self, name: str, *, by: str) -> User:
        """Remove a user who owns no databases (nothing is dropped by accident: to remove one who
        does, see :class:`~dbwrapper.departures.Departures`)."""
        user = self.check_remove(name)
        self.registry.refresh()  # another process may have given them a database a moment ago
        owned = self.registry.databases(owner=user)
        if owned or self.registry.owns_any(user):
            names = ", ".join(f"{db.name} ({db.db_type})" for db in owned)
            raise Refused(f"{name} still owns {names}; archive or destroy those first.")
        self.registry.remove_user(user)
        self.registry.audit(by, "user remove", name, "ok")
        return user

    def set_password(self, name: str, password: str | None = None, *, by: str, shown: bool = True) -> str:
        """Set (or generate) a user's password; returns it (``shown`` as in :meth:`add`)."""
        user = self.get(name)
        password = self._check_password(password) if password else generate_password()
        self.registry.set_password_hash(user, self.hasher.hash(password), shown=shown)
        self.registry.audit(by, "user set-password", name, "ok")
        return password

    def authenticate(self, name: str, password: str, address: str) -> User:
        """The user with this name and password, or an error that does not say which was wrong."""
        self.throttle.check(name, address)
        user = self.registry.user(name) if USER_NAME.fullmatch(name or "") else None
        try:
            if user is None:
                # Spend the same time as a real check, so timing does not reveal names.
                self.hasher.hash(password or "x")
                raise VerificationError
            self.hasher.verify(user.password_hash, password)
        except (VerificationError, InvalidHashError):
            self.throttle.failed(name, address)
            self.registry.audit(f"{name[:32]} ({address})", "login", name[:32], "failed")
            raise NotLoggedIn("Unknown user name or wrong password.") from None
        self.registry.audit(f"{name} ({address})", "login", name, "ok")
        return user

    # -- API tokens -------------------------------------------------------------------

    def _token_holder(self, actor: Actor, user_name: str, action: str) -> User:
        """The user whose tokens ``actor`` asks about: a trainee's own only (refused before
        the name is looked up, so that a trainee learns nothing of other users)."""
        if not actor.is_instructor and user_name != actor.name:
            raise Forbidden(f"A trainee may {action} their own API tokens only.")
        return self.get(user_name)

    def create_token(self, actor: Actor, user_name: str, token_name: str) -> tuple[ApiToken, str]:
        """A new API token for ``user_name``, and its secret, which is shown this once:
        the registry keeps only its SHA-256.

        A token cannot make tokens (``actor.via == "api"``): a leaked token could mint
        its own replacement, and revoking it would not shut its holder out.
        """
        if actor.via == "api":
            raise Forbidden("An API token cannot make API tokens; log in to make one.")
        user = self._token_holder(actor, user_name, "make")
        if not (
            isinstance(token_name, str) and 0 < len(token_name) <= TOKEN_NAME_LENGTH
            and token_name.isprintable() and token_name.strip()
        ):
            raise InvalidInput(f"A token's name is 1 to {TOKEN_NAME_LENGTH} printable characters.")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = self.registry.add_token(user, token_name, token_digest(secret))
        self.registry.audit(actor.label, "token create", user.name, "ok", f"token {token.id} ({token_name})")
        return token, secret

    def tokens(self, actor: Actor, user_name: str) -> list[ApiToken]:
        return self.registry.tokens(self._token_holder(actor, user_name, "list"))

    def token(self, actor: Actor, user_name: str, token_id: int) -> ApiToken:
        """One of ``user_name``'s tokens, as :meth:`revoke_token` would find it (for a confirmation page)."""
        for token in self.tokens(actor, user_name):
            if token.id == token_id:
                return token
        raise NotFound(f"{user_name} has no API token {token_id}.")

    def revoke_token(self, actor: Actor, user_name: str, token_id: int) -> ApiToken:
        """Delete one of ``user_name``'s tokens; it stops working with the next request."""
        user = self._token_holder(actor, user_name, "revoke")
        token = self.registry.remove_token(user, token_id)
        if token is None:
            raise NotFound(f"{user.name} has no API token {token_id}.")
        self.registry.audit(actor.label, "token revoke", user.name, "ok", f"token {token.id} ({token.name})")
        return token

    def authenticate_token(self, secret: str) -> User:
        """The user holding the token ``secret``; one message for a malformed token and an
        unknown one. Found by its hash, so no secret is ever compared (nor kept)."""
        user = self.registry.token_user(token_digest(secret)) if TOKEN.fullmatch(secret) else None
        if user is None:
            raise NotLoggedIn("This API token is not valid: it is mistyped, revoked or was never made.")
        return user

    def bootstrap(self, environ_password: str | None) -> str | None:
        """Make the first instructor if there is none; returns the password to show once."""
        if self.registry.has_instructor():
            return None
        _, password = self.add(
            self.settings.first_instructor, "instructor", environ_password or None, by="first start"
        )
        return None if environ_password else password


def token_digest(secret: str) -> str:
    """What the registry keeps of a token: a token is 32 random bytes, so a plain SHA-256
    is as strong as a slow hash would be, and costs nothing per request."""
    return hashlib.sha256(secret.encode()).hexdigest()
