"""MySQL's catalog: information_schema's schemas (MariaDB's comments as markers), sizes, tables."""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, text

from dbwrapper.backends.base.catalog import BaseCatalog
from dbwrapper.backends.base.types import DatabaseEntry

#: MariaDB stores a schema comment from this version on; MySQL does not at all.
MARIADB_SCHEMA_COMMENTS = (10, 5)


def has_schema_comments(connection: Connection) -> bool:
    """Whether the server keeps a schema's comment, where dbwrapper's marker goes."""
    dialect = connection.dialect
    version = dialect.server_version_info or ()
    return bool(getattr(dialect, "is_mariadb", False)) and version >= MARIADB_SCHEMA_COMMENTS


def tables_and_views(connection: Connection, schema: str) -> tuple[list[str], list[str]]:
    """``schema``'s base tables and views, by name, in one catalog query."""
    rows = connection.execute(text(
        "SELECT TABLE_NAME, TABLE_TYPE = 'VIEW' FROM information_schema.TABLES "
        "WHERE TABLE_SCHEMA = :schema AND TABLE_TYPE IN ('BASE TABLE', 'VIEW') ORDER BY 1"
    ), {"schema": schema}).all()
    return [name for name, view in rows if not view], [name for name, view in rows if view]


class MySQLCatalog(BaseCatalog):
    """information_schema, asked about user schemas only where it is slow."""

    def entries(self, connection: Connection, name: str | None) -> list[DatabaseEntry]:
        managed = "SCHEMA_COMMENT = :marker" if has_schema_comments(connection) else "NULL"
        condition = "ORDER BY SCHEMA_NAME" if name is None else "WHERE SCHEMA_NAME = :name"
        rows = connection.execute(
            text(f"SELECT SCHEMA_NAME, {managed} FROM information_schema.SCHEMATA {condition}"),
            {"marker": self.backend.marker, "name": name},
        )
        return [DatabaseEntry(found, None if flag is None else bool(flag)) for found, flag in rows]

    def sizes(self, connection: Connection, names: set[str]) -> dict[str, int | None]:
        # information_schema.TABLES is slow over the server's own schemas (hundreds
        # of tables, 30x slower even behind a join), so it is asked about the user
        # schemas only; the server's own show no size.
        system = self.backend.system_databases
        user_schemas = sorted(names - system)
        measured: dict[str, int] = {}
        if user_schemas:
            rows = connection.execute(
                text(
                    "SELECT TABLE_SCHEMA, SUM(DATA_LENGTH + INDEX_LENGTH) FROM information_schema.TABLES "
                    "WHERE TABLE_SCHEMA IN :names GROUP BY TABLE_SCHEMA"
                ).bindparams(bindparam("names", expanding=True)),
                {"names": user_schemas},
            )
            measured = {name: int(size or 0) for name, size in rows}
        # A schema without tables has no rows above: its size is 0, not unknown.
        return {name: None if name in system else measured.get(name, 0) for name in names}

    def tables(self, connection: Connection) -> list[str]:
        query = text(
            "SELECT TABLE_NAME FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1"
        )
        return list(connection.execute(query).scalars())

    def count_statement(self, connection: Connection, table: str) -> str:
        return f"SELECT COUNT(*) FROM {connection.dialect.identifier_preparer.quote_identifier(table)}"
