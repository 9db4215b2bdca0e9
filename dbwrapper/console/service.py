"""The SQL console's service: run a text's statements in a database as its own login, keep
its history, cancel what runs. No HTTP here: the pages and the JSON API call it."""

from __future__ import annotations

from dataclasses import dataclass

from dbwrapper.accounts import Actor
from dbwrapper.backends.base.console import Budget, Limits
from dbwrapper.console.results import Result, Run
from dbwrapper.console.statements import split
from dbwrapper.errors import InvalidInput
from dbwrapper.readonly import ReadOnly
from dbwrapper.registry.models import ConsoleRun
from dbwrapper.service import DatabaseService

#: The longest text the console runs at once, in characters.
TEXT_LIMIT = 100_000


def clean_sql(sql: object) -> str:
    """The console's text as given, or a 400 saying what is wrong with it."""
    if not isinstance(sql, str):
        raise InvalidInput("Give the SQL to run once, as text.")
    if len(sql) > TEXT_LIMIT:
        raise InvalidInput(f"The console runs at most {TEXT_LIMIT:,} characters at once; run it in parts.")
    if "\x00" in sql:
        raise InvalidInput("The SQL holds a NUL character, which no server accepts; remove it.")
    return sql


@dataclass(frozen=True)
class Console:
    """Each managed database's SQL console, for its owner and for instructors."""

    service: DatabaseService
    #: Read-only mode: a database in it is run as its reader, not its owner.
    read_only: ReadOnly
    limits: Limits

    def run(self, actor: Actor, db_type: object, name: str | None, sql: object) -> Run:
        """Run the statements of ``sql`` in order, stopping at the first that fails.

        They run in one session of the database's own login, so a transaction
        may span them; one the text leaves open is rolled back when the session
        closes at the end of the run, and the run says so.
        """
        backend, record = self.service.managed(actor, db_type, name)
        text = clean_sql(sql)
        statements = split(text, backend.console.lexicon)
        if not statements:
            raise InvalidInput("There is no SQL statement to run: type one, and run it.")
        registry = self.service.registry
        login = self.read_only.console_login(backend, record)
        budget = Budget(self.limits.bytes)
        with backend.console.session(record.name, login, self.limits) as session:
            run = Run(registry.start_run(record, actor.label, text, self.service.process, session.id))
            try:
                for index, statement in enumerate(statements):
                    result = backend.console.run(session, statement, text, self.limits, budget, login, record.name)
                    run.results.append(result)
                    if result.error:
                        run.not_run = len(statements) - index - 1
                        break
                if backend.console.in_transaction(session.dbapi):
                    run.note = ("The text began a transaction and did not end it: it was rolled back. "
                                "End it with COMMIT in the same run to keep what it did.")
            finally:
                registry.finish_run(record, run.id, run.summary)
        return run

    def statement(self, actor: Actor, db_type: object, name: str | None, sql: object) -> Result:
        """Run one statement, for its rows as a CSV download; a text of several is a 400."""
        backend, _ = self.service.managed(actor, db_type, name)
        if len(split(clean_sql(sql), backend.console.lexicon)) != 1:
            raise InvalidInput("A CSV download runs one statement: give only the one whose rows you want.")
        (result,) = self.run(actor, db_type, name, sql).results
        return result

    def cancel(self, actor: Actor, db_type: object, name: str | None) -> int:
        """Stop the statements running in the database's console now, from any process; how many."""
        backend, record = self.service.managed(actor, db_type, name)
        login = self.read_only.console_login(backend, record, to_run=False)
        running = [run for run in self.service.registry.console_runs(record) if run.state == "running"]
        return sum(
            backend.console.cancel(record.name, login, run.session_id) for run in running if run.session_id
        )

    def history(self, actor: Actor, db_type: object, name: str | None) -> list[ConsoleRun]:
        """The database's last runs, newest first."""
        _, record = self.service.managed(actor, db_type, name)
        return self.service.registry.console_runs(record)
