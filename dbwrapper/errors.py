"""Domain errors: what went wrong, in words a user can act on.

The service raises these and nothing else; the web layer maps each to an HTTP
status and the command line to an exit code, so neither needs to know about
SQLAlchemy or driver exceptions.
"""


class DbWrapperError(Exception):
    """Base class. ``str(error)`` is a complete sentence fit for a page."""

    #: The HTTP status the web layer answers with.
    http_status = 500
    #: The command line's exit code.
    exit_code = 1


class InvalidInput(DbWrapperError):
    """The request itself is wrong (a bad name, a missing parameter); ``field`` names the
    parameter when one is to blame, for the API's problem details."""

    http_status = 400
    exit_code = 2

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFound(InvalidInput):
    """What the request names does not exist, or is not the asker's to see."""

    http_status = 404


class UnknownBackend(InvalidInput):
    """The ``db_type`` names no configured backend."""

    def __init__(self, db_type: object, configured: list[str]) -> None:
        valid = ", ".join(configured) if configured else "none are configured"
        super().__init__(f"Unknown or unconfigured db_type {db_type!r}; valid values: {valid}.", "db_type")
        self.configured = configured


class Refused(DbWrapperError):
    """The request is understood but would destroy something that must stay."""

    http_status = 409
    exit_code = 4


class DatabaseBusy(DbWrapperError):
    """The server kept refusing because another session holds what we need."""

    http_status = 409
    exit_code = 5


class RegistryInUse(DbWrapperError):
    """Another dbwrapper process is at work on the registry, so reconciling must wait."""

    http_status = 409
    exit_code = 7


class BackendUnavailable(DbWrapperError):
    """The database server cannot be reached; the service itself is fine."""

    http_status = 503
    exit_code = 3


class NotLoggedIn(DbWrapperError):
    """The action needs a logged-in user; the web layer sends them to the login page."""

    http_status = 401
    exit_code = 6


class Forbidden(DbWrapperError):
    """The user is known but may not do this."""

    http_status = 403
    exit_code = 6


class TooManyAttempts(DbWrapperError):
    """Too many failed logins lately, or requests at once from one user; wait before trying again."""

    http_status = 429
    exit_code = 6
