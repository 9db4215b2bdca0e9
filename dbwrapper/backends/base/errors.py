"""One translation of driver errors into dbwrapper's own, like Django's ``DatabaseErrorWrapper``.

Every part of a backend raises what the driver raised (``DBAPIError``) and
lets this class say what it means: a server that cannot be reached or missed a
deadline (503), one busy with another session (409), a name taken (409), or a
refusal in the server's own words. Each engine says only how its driver names
an error (:meth:`DatabaseErrors.error_code`) and which codes mean "exists
already" and "busy".
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import DBAPIError

from dbwrapper.config import env_var
from dbwrapper.db import missed_deadline
from dbwrapper.errors import BackendUnavailable, DatabaseBusy, DbWrapperError, Refused

if TYPE_CHECKING:
    from dbwrapper.backends.base.backend import Backend


class DatabaseErrors(ABC):
    """What one server's driver errors mean, as dbwrapper's errors with messages that say what to do."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    # -- what the engine's driver says -------------------------------------------

    @abstractmethod
    def error_code(self, error: DBAPIError) -> Any:
        """The driver's error code (SQLSTATE or errno) of ``error``."""

    @abstractmethod
    def is_duplicate(self, error: DBAPIError) -> bool:
        """Whether ``error`` says the database already exists."""

    def is_busy(self, error: DBAPIError) -> bool:
        """Whether ``error`` says another session holds what we need; worth retrying."""
        return False

    def is_disconnect(self, error: DBAPIError) -> bool:
        """Whether ``error`` means the server went away mid-statement."""
        return self.backend.dialect.is_disconnect(error.orig, None, None)  # type: ignore[arg-type]

    # -- what dbwrapper says -----------------------------------------------------------

    @staticmethod
    def server_message(error: DBAPIError) -> str:
        """The first line of what the server said, without SQLAlchemy's decoration."""
        text = str(error.orig).strip()
        line = text.splitlines()[0] if text else type(error.orig).__name__
        return line.rstrip(".") + "."

    def login_taken(self, login: str) -> Refused:
        """The refusal to make ``login`` where the server has one of that name already: it is
        someone else's, and never taken over."""
        backend = self.backend
        return Refused(
            f"A {backend.login_kind} named {login} exists already on the {backend.server}, and the new "
            "database's login would be named so too, and take it over. Choose another name; nothing was made."
        )

    def unavailable(self, error: DBAPIError) -> BackendUnavailable:
        """A server that cannot be reached, went away, or missed a deadline: a 503 that names it."""
        backend = self.backend
        if (seconds := missed_deadline(error.orig)) is not None:
            return backend.gate.missed(seconds)
        return BackendUnavailable(
            f"The {backend.server} cannot be reached: "
            f"{self.server_message(error)} Check that the server is running and that "
            f"{env_var(backend.db_type)} or {backend.db_type}_url in app.conf points at it; "
            "the service uses it again as soon as it answers."
        )

    def refused(self, action: str, error: DBAPIError) -> DbWrapperError:
        """The server refused ``action``, in its own words."""
        return DbWrapperError(f"{self.backend.label} refused to {action}: {self.server_message(error)}")

    def busy(self, action: str, error: DBAPIError, advice: str) -> DatabaseBusy:
        """Another session holds what ``action`` needs (a 409), and ``advice`` says what to do."""
        return DatabaseBusy(f"{self.backend.label} could not {action}: {self.server_message(error)} {advice}")

    def translated_error(self, action: str, error: DBAPIError, advice: str) -> DbWrapperError:
        """``error``, met while trying ``action``, as busy (with ``advice``) or refused."""
        if self.is_busy(error):
            return self.busy(action, error, advice)
        return self.refused(action, error)

    @contextmanager
    def translated(
        self, action: str, advice: str = "A session is still using it; try again in a moment."
    ) -> Iterator[None]:
        """The server's refusals of ``action`` in the block as this service's errors: busy (409) or refused."""
        try:
            yield
        except DBAPIError as error:
            raise self.translated_error(action, error, advice) from error
