"""Operations: work that outlives its request, recorded in the registry, so that any process
on it reports how far the work got and how it ended, and a process that died leaves its
work reported as interrupted."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

import dbwrapper.operations
from dbwrapper.accounts import Actor
from dbwrapper.classes import Provisioned
from dbwrapper.config import Settings
from dbwrapper.errors import NotFound
from dbwrapper.operations import STALE_SECONDS, Step
from dbwrapper.registry import Registry
from dbwrapper.registry.models import Operation
from dbwrapper.runtime import Runtime
from tests.conftest import INSTRUCTOR_PASSWORD
from tests.test_copies import copies  # noqa: F401 (a fixture: the spares made are dropped afterwards)


def until(check: Callable[[], Operation], wanted: Callable[[Operation], bool], within: float = 30) -> Operation:
    """``check()`` once ``wanted`` of it, read again and again for at most ``within`` seconds."""
    deadline = time.monotonic() + within
    while not wanted(found := check()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return found


def ended(operation: Operation) -> bool:
    return operation.state != "running"


@pytest.fixture
def other_process(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    """A second service on the same registry and servers, as another ``dbwrapper serve`` is."""
    monkeypatch.setenv("DBWRAPPER_INSTRUCTOR_PASSWORD", INSTRUCTOR_PASSWORD)
    other = Runtime(settings)
    other.start()
    yield other
    other.stop()


@pytest.fixture
def gone_process(runtime: Runtime) -> Callable[..., Operation]:
    """``gone_process(kind, done=, total=)``: the record of a running operation whose process died
    a minute ago, its heartbeat stopped since."""

    def record(kind: str, *, done: int, total: int) -> Operation:
        a_minute_ago = datetime.now(UTC) - timedelta(minutes=1)
        return runtime.servers.registry.add_operation(Operation(
            id=f"gone{time.monotonic_ns()}", kind=kind, target="postgres:franchise", state="running",
            done=done, total=total, current="someone", started_by="cwcuser", process="a process that died",
            cancel_requested=False, created_at=a_minute_ago, heartbeat_at=a_minute_ago,
        ))

    return record


def test_an_operation_s_progress_and_result_are_seen_from_another_process(runtime, other_process, instructor):
    halfway = threading.Event()

    def work(step: Step) -> object:
        step.advance(1, "the first half")
        halfway.wait(30)
        step.advance(2, "the second half")
        return {"answer": 42}

    started = runtime.operations.start(instructor, "test", "anything", 2, work)
    assert (started.state, started.started_by, started.total) == ("running", instructor.name, 2)

    def seen() -> Operation:
        return other_process.operations.get(instructor, started.id)

    running = until(seen, lambda found: found.done == 1)
    assert (running.state, running.done, running.current) == ("running", 1, "the first half")
    assert [found.id for found in other_process.operations.list(instructor, kind="test", limit=1)] == [started.id]

    halfway.set()
    finished = until(seen, ended)
    assert (finished.state, finished.done, finished.error) == ("succeeded", 2, None)
    assert json.loads(finished.result) == {"answer": 42}
    assert finished.finished_at is not None


def test_a_cancel_stops_the_work_at_its_next_step_and_keeps_what_it_did(runtime, other_process, instructor):
    def work(step: Step) -> object:
        made: list[int] = []
        step.partial = lambda: {"made": made}
        for number in range(100):
            step.advance(number, f"item {number}")
            made.append(number)
            time.sleep(0.05)
        return {"made": made}

    started = runtime.operations.start(instructor, "test", "anything", 100, work)
    until(lambda: runtime.operations.get(instructor, started.id), lambda found: found.done >= 3)
    asked = other_process.operations.cancel(instructor, started.id)  # from any process
    assert asked.cancel_requested and asked.state == "running"

    cancelled = until(lambda: runtime.operations.get(instructor, started.id), ended)
    assert cancelled.state == "cancelled"
    assert 3 <= cancelled.done < 100
    assert cancelled.error == f"cancelled after {cancelled.done} of 100"
    assert json.loads(cancelled.result) == {"made": list(range(cancelled.done))}
    assert runtime.operations.cancel(instructor, started.id).state == "cancelled"  # too late: no change


def test_an_operation_whose_process_died_is_reported_interrupted_with_what_it_did(
    runtime, instructor, gone_process, browser,
):
    gone = gone_process("class", done=7, total=30)
    assert STALE_SECONDS < 60

    found = runtime.operations.get(instructor, gone.id)
    assert (found.state, found.done, found.total) == ("interrupted", 7, 30)
    assert found.error == "interrupted after 7 of 30: its process ended"
    assert runtime.servers.registry.operation(gone.id).state == "interrupted"  # recorded, not only said

    page = browser.get("/classes/status", params={"job": gone.id})
    assert page.status_code == 200 and "Refresh" not in page.headers
    assert "interrupted after 7 of 30: its process ended" in page.text
    assert "provision the same roster again to finish it" in page.text


def test_a_listing_reports_a_dead_process_s_operation_interrupted(runtime, instructor, gone_process):
    gone = gone_process("test", done=1, total=2)
    listed = {found.id: found for found in runtime.operations.list(instructor, kind="test")}
    assert listed[gone.id].state == "interrupted"
    assert gone.id not in {found.id for found in runtime.operations.list(instructor, state="running")}


def test_a_process_alone_on_its_registry_marks_every_running_operation_interrupted(
    server_urls, tmp_path, monkeypatch,
):
    # Its own registry, so that it is alone on it (the tests' service holds the shared one).
    control_url = f"sqlite:///{tmp_path / 'registry.sqlite'}"
    registry = Registry(control_url)
    registry.upgrade()
    registry.add_operation(Operation(
        id="left_running", kind="class", target="postgres:franchise", state="running", done=3, total=9,
        current="", started_by="cwcuser", process="the process before", cancel_requested=False,
    ))  # its heartbeat is fresh: only the process's start tells it is gone
    monkeypatch.setenv("DBWRAPPER_INSTRUCTOR_PASSWORD", INSTRUCTOR_PASSWORD)
    alone = Runtime(Settings(backend_urls=server_urls, embedded=False, archive_dir=tmp_path / "archives",
                             control_url=control_url))
    alone.start()
    try:
        found = registry.operation("left_running")
        assert (found.state, found.done, found.error) == (
            "interrupted", 3, "interrupted after 3 of 9: its process ended")
    finally:
        alone.stop()
        registry.dispose()


@pytest.mark.usefixtures("copies")
def test_a_preparation_asked_for_twice_is_one_operation(runtime, other_process, instructor, db_type):
    first, started = runtime.operations.start_preparation(instructor, db_type, "franchise", 2)
    again, started_again = other_process.operations.start_preparation(instructor, db_type, "franchise", 2)
    assert (started, started_again) == (True, False)
    assert again.id == first.id
    assert (first.kind, first.target, first.total) == ("prepare", f"{db_type}:franchise", 2)
    assert (db_type, "franchise") in other_process.operations.preparing()

    done = until(lambda: runtime.operations.get(instructor, first.id), ended, within=120)
    assert (done.state, done.done) == ("succeeded", 2), done.error
    assert json.loads(done.result)["made"] <= 2
    assert (db_type, "franchise") not in runtime.operations.preparing()


def test_a_trainee_sees_only_the_operations_they_started(runtime, instructor, trainee):
    alice, bob = (Actor(runtime.accounts.get(trainee().user_name)) for _ in range(2))
    theirs = runtime.operations.start(alice, "test", "anything", 1, lambda step: None)

    assert runtime.operations.get(alice, theirs.id).id == theirs.id
    assert runtime.operations.get(instructor, theirs.id).id == theirs.id
    for asking in (lambda: runtime.operations.get(bob, theirs.id), lambda: runtime.operations.cancel(bob, theirs.id),
                   lambda: runtime.operations.get(bob, "no such operation")):
        with pytest.raises(NotFound, match="There is no such operation"):
            asking()
    assert theirs.id not in {found.id for found in runtime.operations.list(bob)}
    assert runtime.operations.list(bob, started_by=alice.name) == []
    assert theirs.id in {found.id for found in runtime.operations.list(alice)}


def test_a_class_cancelled_from_its_page_keeps_what_it_made_on_the_sheet(browser, runtime, instructor, monkeypatch):
    # The rows are stand-ins: the second one waits until the cancel was asked for.
    monkeypatch.setattr(dbwrapper.operations, "CANCEL_CHECK_SECONDS", 0)
    asked = threading.Event()

    def one(actor: Actor, name: str, course: str, db_type: str) -> Provisioned:
        if name == "second":
            asked.wait(30)
        return Provisioned(name, f"password of {name}", None, "new")

    monkeypatch.setattr(runtime.classes, "_one", one)
    started = browser.start_class("first\nsecond\nthird\n", db_type="postgres")
    job = started.url.partition("job=")[2]
    assert 'action="/classes/cancel"' in started.text
    assert browser.post("/classes/cancel", data={"job": job}).status_code == 200
    assert runtime.operations.get(instructor, job).cancel_requested
    asked.set()

    found = until(lambda: runtime.operations.get(instructor, job), ended)
    assert (found.state, found.error) == ("cancelled", "cancelled after 2 of 3")
    page = browser.get("/classes/status", params={"job": job})
    assert "Refresh" not in page.headers
    assert "The provisioning was cancelled after 2 of 3; what was made stays." in page.text
    assert "2 provisioned, 0 failed." in page.text
    assert 'action="/classes/cancel"' not in page.text
    sheet = browser.get("/classes/sheet", params={"job": job}).text
    assert "password of first" in sheet and "password of second" in sheet and "third" not in sheet
