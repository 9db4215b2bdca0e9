"""What every engine shares: the workflows, and the hooks each engine's parts implement."""

from dbwrapper.backends.base.backend import Backend
from dbwrapper.backends.base.catalog import LISTING_CACHE_SECONDS, SIZE_CACHE_SECONDS, BaseCatalog, SizeCache
from dbwrapper.backends.base.client import BaseClient
from dbwrapper.backends.base.creation import BUSY_RETRY_SECONDS, BaseCreation
from dbwrapper.backends.base.errors import DatabaseErrors
from dbwrapper.backends.base.logins import BaseLogins
from dbwrapper.backends.base.types import MARKER, DatabaseEntry, DatabaseInfo, Login, Source

__all__ = [
    "BUSY_RETRY_SECONDS", "LISTING_CACHE_SECONDS", "MARKER", "SIZE_CACHE_SECONDS", "Backend", "BaseCatalog",
    "BaseClient", "BaseCreation", "BaseLogins", "DatabaseEntry", "DatabaseErrors", "DatabaseInfo", "Login",
    "SizeCache", "Source",
]
