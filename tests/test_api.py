"""The JSON API, used as a script author would: a token, JSON in and out, problems for errors,
safe retries with Idempotency-Key, ETags, batches and operations to follow."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from dbwrapper.accounts import Actor
from dbwrapper.api.idempotency import Idempotency, fingerprint
from dbwrapper.api.problems import Problem
from dbwrapper.api.routing import Call, Reply
from dbwrapper.runtime import Runtime
from tests.conftest import INSTRUCTOR, audit_of, remove_users

PROBLEM = "application/problem+json"


class Client(requests.Session):
    """A script on the API: its token on every request, paths below /api/v1, and a check that
    every error is a problem document."""

    def __init__(self, base_url: str, token: str | None) -> None:
        super().__init__()
        self.base = base_url + "/api/v1"
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        response = super().request(method, self.base + url, *args, timeout=60, **kwargs)
        if response.status_code >= 400:
            assert response.headers["Content-Type"] == PROBLEM, response.text
            problem = response.json()
            assert problem["status"] == response.status_code and problem["detail"], problem
        return response

    def follow(self, response: requests.Response, within: float = 120) -> dict[str, Any]:
        """The operation a 202 started, followed until it ends."""
        assert response.status_code == 202, response.text
        location = response.headers["Location"].removeprefix("/api/v1")
        deadline = time.monotonic() + within
        while True:
            operation = self.get(location).json()
            if operation["state"] != "running" or time.monotonic() > deadline:
                return operation
            time.sleep(0.1)


def token_for(runtime: Runtime, name: str) -> str:
    actor = Actor(runtime.accounts.get(name), via="tests")
    return runtime.accounts.create_token(actor, name, f"tests {uuid.uuid4().hex[:8]}")[1]


@pytest.fixture
def api(base_url: str, runtime: Runtime) -> Iterator[Client]:
    """The first instructor's script."""
    with Client(base_url, token_for(runtime, INSTRUCTOR)) as client:
        yield client


@pytest.fixture
def trainee_api(base_url: str, runtime: Runtime, trainee: Callable[..., Any]) -> Iterator[Client]:
    """A new trainee's script (the trainee and their databases are removed afterwards)."""
    browser = trainee()
    with Client(base_url, token_for(runtime, browser.user_name)) as client:
        client.user_name = browser.user_name  # type: ignore[attr-defined]
        yield client


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


# -- errors are problems ---------------------------------------------------------------------


def test_without_a_token_the_api_answers_401_with_a_problem_never_a_login_page(base_url):
    with Client(base_url, None) as nobody:
        answer = nobody.get("/databases")
        assert answer.status_code == 401
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    with Client(base_url, "dbw_not-a-token") as stranger:
        assert stranger.get("/databases").status_code == 401


def test_unknown_paths_wrong_methods_bad_json_and_wrong_types_are_problems(api):
    assert api.get("/nothing/here").status_code == 404
    for wrong in (api.put("/databases", json={}), api.put("/databases")):
        assert wrong.status_code == 405 and wrong.headers["Allow"] == "GET, HEAD, POST"
    bad = api.post("/databases", data=b"{not json", headers={"Content-Type": "application/json"})
    assert bad.status_code == 400 and "JSON" in bad.json()["detail"]
    form = api.post("/databases", data={"db_type": "postgres"})
    assert form.status_code == 415
    outside = requests.get(api.base.removesuffix("/v1") + "/nothing", timeout=10)
    assert outside.status_code == 404 and outside.headers["Content-Type"] == PROBLEM


def test_a_bad_field_is_a_400_that_names_it(api):
    answer = api.post("/databases", json={"db_type": "oracle"})
    assert answer.status_code == 400 and answer.json()["field"] == "db_type"
    typo = api.post("/databases", json={"db_type": "postgres", "nmae": "x"})
    assert typo.status_code == 400 and typo.json()["field"] == "nmae"
    query = api.get("/databases?db_tpye=postgres")
    assert query.status_code == 400 and query.json()["field"] == "db_tpye"
    assert api.post("/batch", json=[1, 2]).status_code == 400
    csv = api.post("/databases", data="postgres\n", headers={"Content-Type": "text/csv"})
    assert csv.status_code == 415


def test_a_trainee_may_not_read_what_is_an_instructors(trainee_api):
    assert trainee_api.get("/users").status_code == 403
    assert trainee_api.get("/audit").status_code == 403


# -- databases, with replays and preconditions -----------------------------------------------


def test_a_trainee_creates_reads_and_destroys_their_database(trainee_api, db_type, runtime, catalog):
    made = trainee_api.post("/databases", json={"db_type": db_type}, headers=key())
    assert made.status_code == 201, made.text
    database = made.json()
    assert made.headers["Location"] == database["links"]["self"]
    assert database["owner"] == trainee_api.user_name and database["credentials"]["password"]
    assert database["name"] in catalog(db_type)
    path = made.headers["Location"].removeprefix("/api/v1")
    read = trainee_api.get(path)
    assert read.status_code == 200 and read.json()["name"] == database["name"]
    assert trainee_api.get("/databases").json()["databases"] == [read.json()]
    assert trainee_api.delete(path).status_code == 204
    assert database["name"] not in catalog(db_type)
    assert trainee_api.get(path).status_code == 404


def test_a_retry_with_the_same_key_gets_the_first_answer_and_acts_once(trainee_api, db_type, runtime):
    sent = key()
    first = trainee_api.post("/databases", json={"db_type": db_type}, headers=sent)
    again = trainee_api.post("/databases", json={"db_type": db_type}, headers=sent)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    target = f"{db_type}:{first.json()['name']}"
    assert [entry.action for entry in audit_of(runtime, target)] == ["create"]
    other = trainee_api.post("/databases", json={"db_type": db_type, "name": "something_else"}, headers=sent)
    assert other.status_code == 422 and other.json()["field"] == "Idempotency-Key"


def test_an_error_is_kept_for_its_key_too(trainee_api):
    sent = key()
    first = trainee_api.post("/databases", json={"db_type": "oracle"}, headers=sent)
    again = trainee_api.post("/databases", json={"db_type": "oracle"}, headers=sent)
    assert first.status_code == again.status_code == 400
    assert again.headers["Idempotent-Replayed"] == "true" and again.json() == first.json()


def test_etags_answer_304_when_nothing_changed_and_412_when_something_did(api, trainee_api, db_type):
    made = trainee_api.post("/databases", json={"db_type": db_type})
    path = made.headers["Location"].removeprefix("/api/v1")
    read = api.get(path)
    etag = read.headers["ETag"]
    assert api.get(path, headers={"If-None-Match": etag}).status_code == 304
    moved = api.patch(path, json={"expires_at": "2030-01-01T00:00:00Z"}, headers={"If-Match": etag})
    assert moved.status_code == 200 and moved.json()["expires_at"] == "2030-01-01T00:00:00Z"
    assert moved.headers.get("ETag") is None or moved.headers["ETag"] != etag
    stale = api.delete(path, headers={"If-Match": etag})
    assert stale.status_code == 412 and stale.json()["etag"] != etag
    assert api.get(path).status_code == 200  # the stale delete dropped nothing
    current = api.get(path).headers["ETag"]
    assert api.delete(path, headers={"If-Match": current}).status_code == 204


def test_an_instructor_makes_a_database_for_a_trainee_who_then_sees_its_credentials(
    api, trainee_api, db_type, settings,
):
    name = f"{trainee_api.user_name}_{settings.port}"
    made = api.post("/databases", json={"db_type": db_type, "name": name, "owner": trainee_api.user_name})
    assert made.status_code == 201 and made.json()["owner"] == trainee_api.user_name
    mine = trainee_api.get(made.headers["Location"].removeprefix("/api/v1")).json()
    assert mine["credentials"]["login"] == made.json()["credentials"]["login"]
    again = api.post("/databases", json={"db_type": db_type, "name": name, "owner": trainee_api.user_name})
    assert again.status_code == 200 and "nothing was changed" in again.json()["summary"]


# -- operations: snapshots, reverts, archives, restores -----------------------------------------


def test_snapshot_and_revert_are_operations_to_follow_and_a_retry_starts_none(trainee_api, db_type, as_owner):
    made = trainee_api.post("/databases", json={"db_type": db_type}).json()
    name, path = made["name"], made["links"]["self"].removeprefix("/api/v1")
    with as_owner(db_type, name) as connection:
        connection.exec_driver_sql("CREATE TABLE kept (n INT)")
        connection.exec_driver_sql("INSERT INTO kept VALUES (1)")
    sent = key()
    started = trainee_api.post(path + "/snapshots", json={"label": "one row"}, headers=sent)
    taken = trainee_api.follow(started)
    assert taken["state"] == "succeeded", taken
    replay = trainee_api.post(path + "/snapshots", json={"label": "one row"}, headers=sent)
    assert replay.headers["Location"] == started.headers["Location"]
    snapshots = trainee_api.get(path + "/snapshots").json()["snapshots"]
    assert [s["label"] for s in snapshots] == ["one row"]
    with as_owner(db_type, name) as connection:
        connection.exec_driver_sql("INSERT INTO kept VALUES (2)")
    revert = snapshots[0]["links"]["revert"].removeprefix("/api/v1")
    reverted = trainee_api.follow(trainee_api.post(revert, json={}, headers=key()))
    assert reverted["state"] == "succeeded", reverted
    with as_owner(db_type, name) as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM kept").scalar() == 1


def test_archive_and_restore_are_operations(trainee_api, db_type, as_owner):
    made = trainee_api.post("/databases", json={"db_type": db_type}).json()
    name = made["name"]
    with as_owner(db_type, name) as connection:
        connection.exec_driver_sql("CREATE TABLE kept (n INT)")
        connection.exec_driver_sql("INSERT INTO kept VALUES (1), (2)")
    archived = trainee_api.follow(trainee_api.post("/archives", json={"db_type": db_type, "name": name, "drop": True},
                                                   headers=key()))
    assert archived["state"] == "succeeded", archived
    archive = archived["result"]["archive"]
    assert archive["tables"] == {"kept": 2}
    assert trainee_api.get(made["links"]["self"].removeprefix("/api/v1")).status_code == 404
    restore = archive["links"]["restore"].removeprefix("/api/v1")
    restored = trainee_api.follow(trainee_api.post(restore, json={}, headers=key()))
    assert restored["state"] == "succeeded", restored
    with as_owner(db_type, name) as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM kept").scalar() == 2
    assert trainee_api.delete(archive["links"]["self"].removeprefix("/api/v1")).status_code == 204


def test_a_trainee_cannot_follow_another_ones_operation(trainee_api, api, db_type):
    made = api.post("/databases", json={"db_type": db_type, "name": f"op_{uuid.uuid4().hex[:8]}"}).json()
    try:
        started = api.post(made["links"]["self"].removeprefix("/api/v1") + "/snapshots", json={})
        api.follow(started)
        assert trainee_api.get(started.headers["Location"].removeprefix("/api/v1")).status_code == 404
    finally:
        api.delete(made["links"]["self"].removeprefix("/api/v1"))


# -- batches ---------------------------------------------------------------------------------


def test_a_batch_applies_each_operation_and_sending_it_twice_changes_nothing(trainee_api, db_type, runtime):
    operations = [
        {"method": "POST", "path": "/api/v1/databases", "body": {"db_type": db_type},
         "headers": {"Idempotency-Key": str(uuid.uuid4())}},
        {"method": "POST", "path": "/api/v1/databases", "body": {"db_type": "oracle"},
         "headers": {"Idempotency-Key": str(uuid.uuid4())}},
        {"method": "GET", "path": f"/api/v1/databases?db_type={db_type}"},
    ]
    first = trainee_api.post("/batch", json={"operations": operations})
    assert first.status_code == 200, first.text
    statuses = [result["status"] for result in first.json()["results"]]
    assert statuses == [201, 400, 200]
    name = first.json()["results"][0]["body"]["name"]
    assert [db["name"] for db in first.json()["results"][2]["body"]["databases"]] == [name]
    second = trainee_api.post("/batch", json={"operations": operations}).json()["results"]
    assert [result["status"] for result in second] == [201, 400, 200]
    assert second[0]["headers"]["Idempotent-Replayed"] == "true"
    assert [entry.action for entry in audit_of(runtime, f"{db_type}:{name}")] == ["create"]


def test_a_batch_is_bounded_and_holds_no_batch(api, settings):
    too_many = [{"method": "GET", "path": "/api/v1/me"}] * (settings.batch_limit + 1)
    assert api.post("/batch", json={"operations": too_many}).json()["field"] == "operations"
    nested = [{"method": "POST", "path": "/api/v1/batch", "body": {"operations": []}}]
    assert api.post("/batch", json={"operations": nested}).status_code == 400


# -- classes ---------------------------------------------------------------------------------


def test_a_class_from_a_json_roster_is_an_operation_with_every_trainees_credentials(api, db_type, runtime):
    names = [f"api{uuid.uuid4().hex[:6]}_{i}" for i in range(2)]
    try:
        started = api.post("/classes", json={"course": "franchise", "db_type": db_type, "trainees": names},
                           headers=key())
        assert started.headers["Location"].startswith("/api/v1/operations/")
        done = api.follow(started)
        assert done["state"] == "succeeded", done
        assert done["progress"]["done"] == done["progress"]["total"] == 2
        assert sorted(row["user"] for row in done["result"]["done"]) == sorted(names)
        assert api.get(f"/classes/{done['id']}").json()["id"] == done["id"]
    finally:
        remove_users(runtime, names)


def test_a_csv_roster_needs_its_course_and_server_in_the_query(api):
    answer = api.post("/classes", data="name\nbob\n", headers={"Content-Type": "text/csv"})
    assert answer.status_code == 400 and answer.json()["field"] == "course"


# -- the document ----------------------------------------------------------------------------


def test_the_openapi_document_is_valid_and_public(base_url):
    from openapi_spec_validator import validate

    document = requests.get(base_url + "/api/v1/openapi.json", timeout=10)
    assert document.status_code == 200
    validate(document.json())
    page = requests.get(base_url + "/api/", timeout=10)
    assert page.status_code == 200 and "/api/v1/databases/{db_type}/{name}/snapshots" in page.text


# -- idempotency keys, in time -----------------------------------------------------------------


def test_a_key_is_kept_for_its_time_then_pruned_and_a_retry_at_work_is_a_409(runtime, instructor):
    now = [datetime.now(UTC)]
    keys = Idempotency(runtime.servers.registry, 1, runtime.process, ended=lambda process: False,
                       clock=lambda: now[0])
    call = Call(instructor, "POST", "/databases", body={"db_type": "postgres"})
    acted: list[int] = []

    def act() -> Reply:
        acted.append(1)
        return Reply(201, {"acted": len(acted)})

    sent = str(uuid.uuid4())
    assert keys.once(call, sent, act).body == {"acted": 1}
    assert keys.once(call, sent, act).body == {"acted": 1}

    def retried_meanwhile() -> Reply:
        with pytest.raises(Problem) as retry:
            keys.once(call, sent_meanwhile, act)
        assert retry.value.status == 409
        return act()

    sent_meanwhile = str(uuid.uuid4())
    keys.once(call, sent_meanwhile, retried_meanwhile)
    now[0] += timedelta(hours=2)
    assert keys.prune() >= 2
    assert keys.once(call, sent, act).body == {"acted": 3}  # its time was up: a new request


def test_a_key_left_at_work_by_a_process_that_ended_is_taken_over_and_never_while_it_lives(runtime, instructor):
    call = Call(instructor, "POST", "/databases", body={"db_type": "postgres"})
    sent = str(uuid.uuid4())
    expires = datetime.now(UTC) + timedelta(hours=1)
    runtime.servers.registry.claim_key(instructor.user.id, sent, fingerprint(call), expires, "otherprocess")

    def act() -> Reply:
        return Reply(201, {"acted": True})

    alive = Idempotency(runtime.servers.registry, 1, runtime.process, ended=lambda process: False)
    with pytest.raises(Problem) as at_work:
        alive.once(call, sent, act)
    assert at_work.value.status == 409
    ended = Idempotency(runtime.servers.registry, 1, runtime.process, ended=lambda process: process == "otherprocess")
    assert ended.once(call, sent, act).body == {"acted": True}


# -- what an adversarial review found -----------------------------------------------------------


def test_a_secret_shown_once_is_not_kept_for_a_replay(api, runtime):
    name = f"sec{uuid.uuid4().hex[:8]}"
    sent = key()
    try:
        first = api.post("/users", json={"name": name}, headers=sent)
        assert first.status_code == 201 and first.json()["password"]
        again = api.post("/users", json={"name": name}, headers=sent)
        assert again.headers["Idempotent-Replayed"] == "true" and again.json()["password"] is None
        kept = runtime.servers.registry.idempotency_record(api_user(runtime).id, sent["Idempotency-Key"])
        assert kept is not None and first.json()["password"] not in (kept.body or "")
    finally:
        remove_users(runtime, [name])


def api_user(runtime: Runtime) -> Any:
    return runtime.accounts.get(INSTRUCTOR)


def test_a_batch_sent_twice_does_not_drop_what_it_made_again(trainee_api, db_type, catalog):
    made = trainee_api.post("/databases", json={"db_type": db_type}).json()
    operations = [
        {"method": "DELETE", "path": made["links"]["self"], "headers": {"Idempotency-Key": str(uuid.uuid4())}},
        {"method": "POST", "path": "/api/v1/databases", "body": {"db_type": db_type},
         "headers": {"Idempotency-Key": str(uuid.uuid4())}},
    ]
    for _ in range(2):
        statuses = [r["status"] for r in trainee_api.post("/batch", json={"operations": operations}).json()["results"]]
        assert statuses == [204, 201]
    assert made["name"] in catalog(db_type)  # the second DELETE was a replay: it dropped nothing


def test_a_bug_in_one_operation_of_a_batch_is_its_own_500(runtime, instructor):
    from dbwrapper.api import batch
    from dbwrapper.api.handling import Api
    from dbwrapper.api.routing import Route

    def boom(api: Api, call: Call) -> Reply:
        raise RuntimeError("a bug")

    def fine(api: Api, call: Call) -> Reply:
        return Reply(200, {"fine": True})

    api = Api(runtime, [Route("GET", "/boom", boom, "a bug"), Route("GET", "/fine", fine, "fine"), *batch.ROUTES])
    operations = [{"method": "GET", "path": "/api/v1/boom"}, {"method": "GET", "path": "/api/v1/fine"}]
    reply = api.handle(Call(instructor, "POST", "/batch", body={"operations": operations}))
    assert [result["status"] for result in reply.body["results"]] == [500, 200]
    assert "server log" in reply.body["results"][0]["body"]["detail"]


def test_text_no_database_can_hold_and_odd_numbers_are_400s_not_500s(api, trainee_api):
    assert api.get("/courses/a%00").status_code == 400
    assert trainee_api.post("/databases", json={"db_type": "postgres", "course": "a\u0000"}).status_code == 400
    assert trainee_api.delete("/me/tokens/%C2%B2").status_code == 404
    assert api.get("/audit?limit=%C2%B2").status_code == 400
    far = trainee_api.patch("/databases/postgres/x", json={"expires_at": "0001-01-01T00:00:00+14:00"})
    assert far.status_code == 400 and far.json()["field"] == "expires_at"
    deep = trainee_api.post("/databases", data=b"[" * 200_000, headers={"Content-Type": "application/json"})
    assert deep.status_code == 400
    huge = trainee_api.post("/databases", data=b" " * (5 * 2**20), headers={"Content-Type": "application/json"})
    assert huge.status_code == 413


def test_if_match_is_strong_and_holds_for_actions_too(trainee_api, db_type):
    made = trainee_api.post("/databases", json={"db_type": db_type}).json()
    path = made["links"]["self"].removeprefix("/api/v1")
    etag = trainee_api.get(path).headers["ETag"]
    assert trainee_api.delete(path, headers={"If-Match": f"W/{etag}"}).status_code == 412
    stale = trainee_api.post(path + "/snapshots", json={}, headers={"If-Match": '"stale"'})
    assert stale.status_code == 412
    assert trainee_api.get(path + "/snapshots").json()["snapshots"] == []
    # A POST to a collection compares the collection; an action (revert) the item it acts on.
    listed = trainee_api.get(path + "/snapshots").headers["ETag"]
    current = trainee_api.follow(trainee_api.post(path + "/snapshots", json={}, headers={"If-Match": listed}))
    assert current["state"] == "succeeded"
    snapshot = current["result"]["snapshot"]["links"]
    revert = snapshot["revert"].removeprefix("/api/v1")
    assert trainee_api.post(revert, json={}, headers={"If-Match": etag}).status_code == 412
    seen = trainee_api.get(snapshot["self"].removeprefix("/api/v1")).headers["ETag"]
    assert trainee_api.follow(trainee_api.post(revert, json={}, headers={"If-Match": seen}))["state"] == "succeeded"


def test_a_trainee_learns_neither_who_exists_nor_the_servers_super_user(trainee_api):
    for owner in ("nosuchuser", INSTRUCTOR):
        answer = trainee_api.post("/databases", json={"db_type": "postgres", "owner": owner})
        assert answer.status_code == 403
    assert all(server["where"] is None for server in trainee_api.get("/servers").json()["servers"])
