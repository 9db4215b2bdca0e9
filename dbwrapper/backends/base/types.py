"""What the backends' parts hand each other and the service: logins, sources, catalog entries."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: How the service marks the databases it created, so that it never drops one it did not.
#: Each registry adds its own id (see :meth:`Backend.belong_to`), so that two services
#: sharing a server neither destroy nor adopt each other's databases.
MARKER = "created by dbwrapper"
INSTANCE_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class Login:
    """A database's own login: a PostgreSQL role or a MySQL user, with its password."""

    name: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class Source:
    """A database new ones are copied from (a course's master), and the login owning its content."""

    name: str
    owner: str


@dataclass(frozen=True)
class DatabaseEntry:
    """A database as the catalog names it, before sizes are added."""

    name: str
    #: ``True`` if this service created it; ``None`` when the server cannot record that.
    managed: bool | None


@dataclass(frozen=True)
class DatabaseInfo:
    """One database as a listing shows it."""

    name: str
    #: On-disk size in bytes; ``None`` when the server would not say.
    size_bytes: int | None
    #: ``True`` if this service created it; ``None`` when the server cannot record that.
    managed: bool | None
