"""PostgreSQL: one small class per part (creation, logins, catalog, client, errors)."""

from dbwrapper.backends.postgresql.backend import CATALOG_SEARCH_PATH, PostgreSQLBackend
from dbwrapper.backends.postgresql.creation import CLONE_STRATEGY
from dbwrapper.backends.postgresql.logins import scram_sha_256

__all__ = ["CATALOG_SEARCH_PATH", "CLONE_STRATEGY", "PostgreSQLBackend", "scram_sha_256"]
