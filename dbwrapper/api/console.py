"""A database's SQL console as resources: a run (its results), the runs at work to cancel,
and the history. The console page's script uses these with its session."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dbwrapper.api import fields
from dbwrapper.api.fields import iso
from dbwrapper.api.replies import ok
from dbwrapper.api.routing import Call, Reply, Route
from dbwrapper.registry.models import ConsoleRun

if TYPE_CHECKING:
    from dbwrapper.api.handling import Api


def run_sql(api: Api, call: Call, db_type: str, name: str) -> Reply:
    """Run ``sql``'s statements; every statement's result, in order."""
    run = api.runtime.console.run(call.actor, db_type, name, fields.text(call.fields(), "sql"))
    return ok(run.json())


def cancel_runs(api: Api, call: Call, db_type: str, name: str) -> Reply:
    return ok({"cancelled": api.runtime.console.cancel(call.actor, db_type, name)})


def history_json(run: ConsoleRun) -> dict[str, Any]:
    return {"id": run.id, "sql": run.sql, "actor": run.actor, "state": run.state, "summary": run.summary,
            "started_at": iso(run.started_at)}


def console_history(api: Api, call: Call, db_type: str, name: str) -> Reply:
    return ok({"runs": [history_json(run) for run in api.runtime.console.history(call.actor, db_type, name)]})


CONSOLE = "/databases/{db_type}/{name}/console"
ROUTES = [
    Route("POST", CONSOLE, run_sql, "Run SQL as the database's own login: each statement's result, in order",
          request="ConsoleRunCreate", response="ConsoleRun", errors=(403, 404)),
    Route("POST", CONSOLE + "/cancel", cancel_runs, "Cancel the statements running in the database's console",
          request="Empty", response="ConsoleCancel", errors=(403, 404)),
    Route("GET", CONSOLE + "/history", console_history, "The database's last 50 console runs, newest first",
          response="ConsoleHistory", errors=(403, 404)),
]
