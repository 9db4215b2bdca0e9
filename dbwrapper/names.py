"""Database names: the allow-list every name passes before it reaches SQL.

The allow-list is deliberately narrower than what either engine accepts: lower
case ASCII letters, digits and underscores, starting with a letter or an
underscore, at most 63 characters (PostgreSQL's limit; MySQL allows 64). Such
a name means the same thing on both engines, needs no case folding, and is
quoted by the dialect's identifier preparer anyway, so that a mistake here
still cannot become an injection.
"""

import re
from collections.abc import Iterable

from dbwrapper.errors import InvalidInput

MAX_LENGTH = 63
_ALLOWED = re.compile(r"[a-z_][a-z0-9_]*")
#: Databases whose names start with this are dbwrapper's own (course masters, spares,
#: snapshots): listings leave them out and users cannot ask for such a name.
RESERVED_PREFIX = "_dbw_"


def validate_name(name: object) -> str:
    """Return ``name`` unchanged if it is an acceptable database name, else raise.

    >>> validate_name("cwcuser_7001")
    'cwcuser_7001'
    """
    if not isinstance(name, str):
        raise InvalidInput("Give the database name once, as text.")
    if not name:
        raise InvalidInput("A database name is required.")
    if len(name) > MAX_LENGTH:
        raise InvalidInput(
            f"Database name is {len(name)} characters long; the limit is {MAX_LENGTH}."
        )
    if not _ALLOWED.fullmatch(name):
        raise InvalidInput(
            f"Database name {name!r} is not allowed: use lower-case letters a-z, digits and "
            "underscores, starting with a letter or an underscore."
        )
    return name


def render_name(template: str, *, user: str, port: int) -> str:
    """Fill the configured name template (``%(user)s``, ``%(port)s``) and validate the result.

    >>> render_name("%(user)s_%(port)s", user="cwcuser", port=7001)
    'cwcuser_7001'
    """
    try:
        name = template % {"user": user, "port": port}
    except (KeyError, ValueError, TypeError) as error:
        raise InvalidInput(
            f"The name template {template!r} is not valid: {error}. It may use %(user)s and %(port)s."
        ) from error
    return validate_name(name)


def validate_user_database(name: object) -> str:
    """:func:`validate_name`, and not a name dbwrapper keeps for its own copies."""
    name = validate_name(name)
    if name.startswith(RESERVED_PREFIX):
        raise InvalidInput(
            f"Database names starting with {RESERVED_PREFIX} are dbwrapper's own copies "
            "(course masters, spares, snapshots); choose another name."
        )
    return name


def name_owner(name: str, users: Iterable[str], template: str, port: int) -> str | None:
    """The user whose own name ``name`` is, if any: the one the template names a database
    so, or else the one whose prefix (``alice_``) it starts with, the longest prefix
    winning, so that ``zed_x_7001`` is trainee zed_x's and not trainee zed's.

    >>> name_owner("zed_x_7001", ["zed", "zed_x"], "%(user)s_%(port)s", 7001)
    'zed_x'
    >>> name_owner("zed_notes", ["zed", "zed_x"], "%(user)s_%(port)s", 7001)
    'zed'
    >>> name_owner("demo", ["zed"], "%(user)s_%(port)s", 7001) is None
    True
    """
    candidates = list(users)
    for user in candidates:
        if template % {"user": user, "port": port} == name:
            return user
    return max((user for user in candidates if name.startswith(f"{user}_")), key=len, default=None)
