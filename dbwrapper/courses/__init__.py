"""Courses: what every database made for a course starts with.

A course is a name and, per engine, the SQL its databases start with: given as
a file, or read from an existing database when the course is defined. The SQL
is loaded once per engine into the course's master by the master's own login
(see :mod:`dbwrapper.copies`), and every database for the course is a copy of
that, owned by the trainee's login. One sample course ships
with dbwrapper: ``franchise``, a small inventory of office-supply stores (the
seed's "boxes of paper clips"), the same data on both engines.
"""

from __future__ import annotations

import re
from pathlib import Path

from dbwrapper.accounts import Actor
from dbwrapper.backends.base import Login
from dbwrapper.errors import InvalidInput
from dbwrapper.names import validate_name
from dbwrapper.registry import AuditEntry, Course, Registry
from dbwrapper.servers import Servers
from dbwrapper.tools import ToolFailed, find_tool, run_tool

SAMPLES = Path(__file__).resolve().parent
COURSE_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")


def sample_courses() -> list[Course]:
    """The courses shipped in this package: a folder each, with description.txt, postgres.sql
    and mysql.sql."""
    return [
        Course(
            name=folder.name,
            description=(folder / "description.txt").read_text(encoding="utf-8").strip(),
            postgres_sql=(folder / "postgres.sql").read_text(encoding="utf-8"),
            mysql_sql=(folder / "mysql.sql").read_text(encoding="utf-8"),
        )
        for folder in sorted(SAMPLES.iterdir())
        if (folder / "postgres.sql").is_file()
    ]


class Courses:
    """The registry's courses, and adding new ones (instructors only)."""

    def __init__(self, servers: Servers) -> None:
        self.servers = servers

    @property
    def registry(self) -> Registry:
        return self.servers.registry

    def all(self) -> list[Course]:
        return self.registry.courses()

    def add(self, actor: Actor, name: str, description: str, sql: dict[str, str]) -> Course:
        """Define a course from SQL per engine (``postgres``, ``mysql``; at least one)."""
        actor.require_instructor("define courses")
        if not isinstance(name, str) or not COURSE_NAME.fullmatch(name):
            raise InvalidInput("A course name is 1 to 32 lower-case letters, digits and underscores.")
        if not isinstance(description, str):
            raise InvalidInput("Give a course's description once, as text.")
        if not any(sql.values()):
            raise InvalidInput("A course needs the SQL its databases start with, for at least one engine.")
        course = Course(
            name=name, description=description[:200], postgres_sql=sql.get("postgres"),
            mysql_sql=sql.get("mysql"),
        )
        self.registry.add_course(course, audit=AuditEntry.new(actor.label, "course add", name))
        return course

    def add_from(
        self, actor: Actor, name: str, description: str, files: dict[str, str], databases: dict[str, str]
    ) -> Course:
        """Define a course per engine from SQL text (``files``) or an existing database (``databases``)."""
        actor.require_instructor("define courses")
        if both := sorted(files.keys() & databases.keys()):
            raise InvalidInput(f"Give {', '.join(both)} either SQL or a database to start from, not both.")
        sql = {**files, **{db_type: self.content_of(actor, db_type, db) for db_type, db in databases.items()}}
        return self.add(actor, name, description, sql)

    def ready_spares(self, course: str) -> dict[str, int]:
        """How many ready copies the pool holds of ``course``, per engine it has content for."""
        found = self.registry.course(course)
        return {
            db_type: sum(1 for copy in self.registry.copies(db_type, course, "spare") if copy.ready)
            for db_type in self.servers.db_types if found is not None and found.sql(db_type)
        }

    def content_of(self, actor: Actor, db_type: object, database: str) -> str:
        """The content of a database dbwrapper manages, as SQL its course's logins can load.

        Taken now: a course made from a database starts with what it holds when
        the course is defined, whatever happens to it afterwards. Read as that
        database's own login, like every work on a database's content, and only
        from a database dbwrapper manages: never the server's own (``mysql``,
        ``postgres``) or the registry, whose content a course would hand to
        every trainee.
        """
        actor.require_instructor("define courses")
        backend = self.servers.backend(db_type)
        record = self.registry.database(backend.db_type, validate_name(database))
        if record is None or not record.ready:
            raise InvalidInput(
                f"{database} is not a database dbwrapper manages on {backend.label}; make one "
                "(create_my_db), prepare the course's content in it, and start the course from that."
            )
        tool = find_tool(backend.client.dump_tool, self.servers.settings.tools)
        if tool is None:
            raise ToolFailed(f"{backend.client.dump_tool} was not found to read {database}: install it, "
                             f"or set {backend.client.dump_tool} = \"/path\" in app.conf.")
        login = Login(record.login, record.password)
        backend.logins.renew_password(login)
        return run_tool(backend.client.sql_dump_command(tool, record.name, login), backend.client.tool_env(login),
                        timeout=backend.deadlines.long)

    def add_samples(self) -> None:
        """Make the shipped courses known, once (they can be replaced under another name)."""
        known = {course.name for course in self.all()}
        for sample in sample_courses():
            if sample.name not in known:
                entry = AuditEntry.new("first start", "course add", sample.name, detail="sample")
                self.registry.add_course(sample, audit=entry)
