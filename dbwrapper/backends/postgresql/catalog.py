"""PostgreSQL's catalog: pg_database with its comments as markers, sizes, a database's tables."""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, text

from dbwrapper.backends.base.catalog import BaseCatalog
from dbwrapper.backends.base.types import DatabaseEntry


class PostgreSQLCatalog(BaseCatalog):
    """pg_catalog, every name in it qualified."""

    def entries(self, connection: Connection, name: str | None) -> list[DatabaseEntry]:
        # A join on pg_shdescription rather than shobj_description(), which looks
        # the comment up once per row: this query runs on every listing.
        condition = "WHERE NOT d.datistemplate ORDER BY d.datname" if name is None else "WHERE d.datname = :name"
        rows = connection.execute(
            text(
                "SELECT d.datname, s.description = :marker FROM pg_catalog.pg_database d "
                "LEFT JOIN pg_catalog.pg_shdescription s ON s.objoid = d.oid "
                f"AND s.classoid = 'pg_catalog.pg_database'::regclass {condition}"
            ),
            {"marker": self.backend.marker, "name": name},
        )
        return [DatabaseEntry(found, bool(managed)) for found, managed in rows]

    def sizes(self, connection: Connection, names: set[str]) -> dict[str, int | None]:
        rows = connection.execute(
            text(
                # pg_database_size() fails on databases we may not connect to.
                "SELECT datname, CASE WHEN has_database_privilege(oid, 'CONNECT') "
                "THEN pg_catalog.pg_database_size(oid) END "
                "FROM pg_catalog.pg_database WHERE datname IN :names"
            ).bindparams(bindparam("names", expanding=True)),
            {"names": sorted(names)},
        )
        sizes: dict[str, int | None] = dict.fromkeys(names)  # dropped meanwhile: no size
        sizes.update({name: size for name, size in rows})
        return sizes

    def tables(self, connection: Connection) -> list[str]:
        # Tables outside the public schema would need schema-qualified names; a
        # trainee's database keeps its tables in public.
        query = text("SELECT tablename FROM pg_catalog.pg_tables WHERE schemaname = 'public' ORDER BY 1")
        return list(connection.execute(query).scalars())

    def count_statement(self, connection: Connection, table: str) -> str:
        quoted = connection.dialect.identifier_preparer.quote_identifier(table)  # a catalog name
        return f"SELECT pg_catalog.count(*) FROM public.{quoted}"
