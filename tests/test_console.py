"""The SQL console: what a trainee types runs in their database as its own login, statement by
statement, within the console's limits, and can be cancelled from anywhere.

These tests call the service as the pages and the API do, against real servers.
"""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import func, select, text

from dbwrapper.backends.base.console import Limits
from dbwrapper.console.results import csv_text
from dbwrapper.console.service import Console
from dbwrapper.errors import InvalidInput
from dbwrapper.registry.console import HISTORY_LENGTH, PRUNE_EVERY
from dbwrapper.registry.models import ConsoleRun
from tests.conftest import login_of

SLEEP = {"postgres": "SELECT pg_sleep({seconds})", "mysql": "SELECT SLEEP({seconds})"}
NO_TIMEOUT = {"postgres": "SET statement_timeout = 0", "mysql": "SET SESSION max_statement_time = 0"}
SESSION_ID = {"postgres": "SELECT pg_backend_pid()", "mysql": "SELECT CONNECTION_ID()"}
WHO = {"postgres": "SELECT current_user", "mysql": "SELECT SUBSTRING_INDEX(CURRENT_USER(), '@', 1)"}


def console(runtime, **limits: float) -> Console:
    """The service's console, with ``limits`` changed (seconds, rows, bytes)."""
    given = runtime.console.limits
    return Console(runtime.service, runtime.read_only, Limits(**{**given.__dict__, **limits}))


def test_statements_run_in_order_as_the_databases_own_login(runtime, instructor, db_type, managed_db):
    run = runtime.console.run(instructor, db_type, managed_db, f"""
        CREATE TABLE fruit (name VARCHAR(20) PRIMARY KEY, price INTEGER);
        INSERT INTO fruit VALUES ('apple', 3), ('pear', 5);
        SELECT name, price FROM fruit ORDER BY name;
        {WHO[db_type]};
    """)
    created, inserted, selected, who = run.results
    assert created.error == inserted.error == selected.error == ""
    assert "2" in inserted.status
    assert (selected.columns, selected.rows) == (["name", "price"], [["apple", "3"], ["pear", "5"]])
    assert who.rows == [[login_of(runtime, db_type, managed_db).name]]
    assert run.summary == "4 statements: 4 ran"


def test_the_first_error_stops_the_run_and_points_at_its_line(runtime, instructor, db_type, managed_db):
    run = runtime.console.run(instructor, db_type, managed_db, "SELECT 1;\nSELECT 2;\nSELECT * FORM nowhere;\nSELECT 4")
    first, second, failed = run.results
    assert failed.error and failed.error_line == 3, failed
    assert run.not_run == 1
    assert run.summary == "4 statements: 2 ran, 1 failed, 1 not run"


def test_the_login_reaches_nothing_beyond_its_database(runtime, instructor, db_type, managed_db):
    other = {"postgres": "SELECT rolpassword FROM pg_authid", "mysql": "SELECT * FROM mysql.user"}[db_type]
    (result,) = runtime.console.run(instructor, db_type, managed_db, other).results
    assert "denied" in result.error.lower(), result.error


def test_rows_past_the_cap_are_counted_not_shown(runtime, instructor, db_type, managed_db):
    values = ", ".join(f"({n})" for n in range(10))
    runtime.console.run(instructor, db_type, managed_db, f"CREATE TABLE n (v INTEGER); INSERT INTO n VALUES {values}")
    (result,) = console(runtime, rows=3).run(instructor, db_type, managed_db, "SELECT v FROM n ORDER BY v").results
    assert result.rows == [["0"], ["1"], ["2"]]
    assert result.more_rows == 7
    assert result.summary == "3 rows (7 more not shown: the console shows 3 rows)"


def test_a_runs_results_stop_at_the_byte_cap(runtime, instructor, db_type, managed_db):
    (result,) = console(runtime, bytes=100).run(
        instructor, db_type, managed_db, "SELECT 'x' AS a UNION ALL SELECT REPEAT('y', 200)"
    ).results
    assert result.rows == [["x"]]
    assert result.more_rows == 1 and "bytes" in result.cut


def test_a_statement_past_the_timeout_is_stopped_by_the_server(runtime, instructor, db_type, managed_db):
    started = time.monotonic()
    slow = SLEEP[db_type].format(seconds=30)
    run = console(runtime, seconds=1).run(instructor, db_type, managed_db, f"{slow}; SELECT 2")
    assert time.monotonic() - started < 10
    assert run.not_run == 1 or run.results[0].rows == [["1"]], run  # MariaDB's SLEEP answers 1 when stopped
    assert run.results[0].error or db_type == "mysql"


def test_switching_the_servers_timeout_off_does_not_outlast_the_deadline(runtime, instructor, db_type, managed_db):
    started = time.monotonic()
    run = console(runtime, seconds=1).run(
        instructor, db_type, managed_db, f"{NO_TIMEOUT[db_type]}; {SLEEP[db_type].format(seconds=30)}"
    )
    assert time.monotonic() - started < 10
    assert "was cancelled" in run.results[-1].error, run


def test_cancel_stops_a_running_statement_from_another_request(runtime, instructor, db_type, managed_db):
    slow = console(runtime, seconds=60)
    runs = []
    worker = threading.Thread(
        target=lambda: runs.append(slow.run(instructor, db_type, managed_db, SLEEP[db_type].format(seconds=60)))
    )
    started = time.monotonic()
    worker.start()
    cancelled = 0
    while not cancelled and time.monotonic() - started < 20:
        time.sleep(0.2)
        cancelled = runtime.console.cancel(instructor, db_type, managed_db)
    worker.join(timeout=30)
    assert cancelled == 1
    assert time.monotonic() - started < 20
    (run,) = runs
    assert run.results[0].error or run.results[0].rows == [["1"]], run  # MariaDB's SLEEP answers 1 when stopped


def test_a_transaction_left_open_is_rolled_back_and_said(runtime, instructor, db_type, managed_db):
    runtime.console.run(instructor, db_type, managed_db, "CREATE TABLE t (v INTEGER)")
    run = runtime.console.run(instructor, db_type, managed_db, "BEGIN; INSERT INTO t VALUES (1)")
    assert "rolled back" in run.note
    (count,) = runtime.console.run(instructor, db_type, managed_db, "SELECT COUNT(*) FROM t").results
    assert count.rows == [["0"]]


def test_the_history_keeps_the_last_runs_newest_first(runtime, instructor, db_type, managed_db):
    runs = HISTORY_LENGTH + 2 * PRUNE_EVERY
    for n in range(runs):
        runtime.console.run(instructor, db_type, managed_db, f"SELECT {n}")
    history = runtime.console.history(instructor, db_type, managed_db)
    assert len(history) == HISTORY_LENGTH
    assert history[0].sql == f"SELECT {runs - 1}" and history[-1].sql == f"SELECT {runs - HISTORY_LENGTH}"
    assert history[0].summary == "1 statement: 1 ran"
    record = runtime.service.registry.database(db_type, managed_db)
    with runtime.service.registry.session() as session:
        kept = session.scalar(select(func.count()).where(ConsoleRun.database_id == record.id))
    assert kept < HISTORY_LENGTH + PRUNE_EVERY, "older runs are forgotten, not only hidden"


def test_a_result_downloads_as_csv(runtime, instructor, db_type, managed_db):
    result = runtime.console.statement(instructor, db_type, managed_db, "SELECT 'a,b' AS x, NULL AS y")
    assert csv_text(result) == 'x,y\r\n"a,b",\r\n'
    with pytest.raises(InvalidInput, match="one statement"):
        runtime.console.statement(instructor, db_type, managed_db, "SELECT 1; SELECT 2")


def test_a_trainee_runs_sql_only_in_their_own_databases(runtime, trainee, db_type, managed_db):
    from dbwrapper.accounts import Actor
    from dbwrapper.errors import Forbidden

    alice = Actor(runtime.accounts.get(trainee().user_name), via="tests")
    with pytest.raises(Forbidden):
        runtime.console.run(alice, db_type, managed_db, "SELECT 1")
    with pytest.raises(Forbidden):
        runtime.console.cancel(alice, db_type, managed_db)


def test_a_cancel_for_a_session_that_has_ended_stops_nothing(runtime, instructor, db_type, managed_db, admin):
    """A run's session may end between the registry's answer and the cancel (the run finished,
    its connection was closed), and the server may have given its id to another login's session:
    either way there is nothing of this login's to stop, and the cancel says so, not a 500."""
    backend = runtime.servers.backend(db_type)
    login = login_of(runtime, db_type, managed_db)
    with admin[db_type].connect() as connection:  # a session of another login, the super-user's
        others = connection.execute(text(SESSION_ID[db_type])).scalar_one()
        assert backend.console.cancel(managed_db, login, others) is False
    assert backend.console.cancel(managed_db, login, 2**31 - 1) is False  # no such session
    record = runtime.service.registry.database(db_type, managed_db)
    runtime.service.registry.start_run(record, "tests", "SELECT 1", runtime.service.process, 2**31 - 1)
    assert runtime.console.cancel(instructor, db_type, managed_db) == 0
