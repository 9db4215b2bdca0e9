"""The SQL console's page and its JSON routes, as a trainee uses them: by the form without
JavaScript (Post/Redirect/Get), and by the script's calls to the API with the session."""

from __future__ import annotations

import html
import re
import threading
from dataclasses import replace

import pytest
import requests

from tests.conftest import Browser, wait_for
from tests.test_console import SLEEP

CONSOLE_LINK = re.compile(r'href="(/console/\?db_type=\w+&amp;name=\w+)"')


def open_console(alice: Browser, db_type: str) -> tuple[str, str]:
    """Create the trainee's database and follow the link to its console; the console's path and page."""
    made = alice.get("/dbi/create_my_db", params={"db_type": db_type})
    assert made.status_code == 200, made.text
    home = alice.get("/").text
    path = html.unescape(CONSOLE_LINK.search(home).group(1))
    page = alice.get(path)
    assert page.status_code == 200, page.text
    return path, page.text


def api_post(alice: Browser, path: str, body: dict, csrf: bool = True):
    """A POST of JSON as the console's script sends it: the session's cookie and, unless not,
    its CSRF token in a header (the Browser helper would add it to a form instead)."""
    headers = {"X-CSRF-Token": alice.csrf} if csrf else {}
    return requests.Session.request(alice, "POST", alice.base_url + path, json=body, headers=headers, timeout=60)


def test_the_form_runs_the_sql_and_a_reload_does_not_run_it_again(trainee, db_type):
    alice = trainee()
    path, page = open_console(alice, db_type)
    assert '<label for="console-sql">' in page
    query = dict(re.findall(r'name="(db_type|name)" value="(\w+)"', page))
    ran = alice.post("/console/run", data={**query, "sql": "SELECT 40 + 2 AS answer; SELECT '<b>x</b>' AS t"})
    assert ran.status_code == 200 and "/console/" in ran.url
    assert "<th>answer</th>" in ran.text and "<td>42</td>" in ran.text
    assert "&lt;b&gt;x&lt;/b&gt;" in ran.text and "<b>x</b>" not in ran.text
    assert "2 statements: 2 ran" in ran.text
    again = alice.get(ran.url.removeprefix(alice.base_url))
    assert "<td>42</td>" not in again.text, "the results are shown once"
    assert again.text.count("SELECT 40 + 2") == 2, "the editor and the one history entry: nothing ran twice"


def test_the_api_runs_cancels_and_lists_the_history_with_the_session(trainee, db_type):
    alice = trainee()
    _, page = open_console(alice, db_type)
    api = re.search(r'data-api="([^"]+)"', page).group(1)
    answer = api_post(alice, api, {"sql": "SELECT 1 AS one"})
    assert answer.status_code == 200, answer.text
    (result,) = answer.json()["results"]
    assert (result["columns"], result["rows"]) == (["one"], [["1"]])
    assert api_post(alice, api + "/cancel", {}).json() == {"cancelled": 0}
    assert alice.get(api + "/history").json()["runs"][0]["sql"] == "SELECT 1 AS one"
    assert api_post(alice, api, {"sql": "SELECT 1"}, csrf=False).status_code == 403, "without the CSRF token"


def test_a_result_downloads_as_csv(trainee, db_type):
    alice = trainee()
    _, page = open_console(alice, db_type)
    query = dict(re.findall(r'name="(db_type|name)" value="(\w+)"', page))
    download = alice.post("/console/csv", data={**query, "sql": "SELECT 'a' AS x UNION ALL SELECT 'b'"})
    assert download.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in download.headers["Content-Disposition"]
    assert download.text == "x\r\na\r\nb\r\n"


def test_another_trainees_console_is_closed(trainee, db_type):
    alice, bob = trainee(), trainee()
    path, _ = open_console(alice, db_type)
    assert bob.get(path).status_code == 403
    query = dict(re.findall(r"(db_type|name)=(\w+)", path.replace("&amp;", "&")))
    assert bob.post("/console/run", data={**query, "sql": "SELECT 1"}).status_code == 403


def test_an_instructor_makes_a_database_read_only_from_its_console(browser, trainee, db_type):
    alice = trainee()
    path, _ = open_console(alice, db_type)
    query = dict(re.findall(r"(db_type|name)=(\w+)", path.replace("&amp;", "&")))
    switched = browser.post("/console/read_only", data={**query, "on": "yes"})
    assert "is read-only now" in switched.text and "Let the trainee write again" in switched.text
    page = alice.get(path).text
    assert "This database is read-only" in page and "Make it read-only" not in page
    refused = alice.post("/console/read_only", data={**query, "on": "no"})
    assert refused.status_code == 403
    ran = alice.post("/console/run", data={**query, "sql": "CREATE TABLE t (v INTEGER)"})
    assert "1 failed" in ran.text
    back = browser.post("/console/read_only", data={**query, "on": "no"})
    assert "own login again" in back.text and "Make it read-only" in back.text


@pytest.mark.parametrize("way", ["api", "form"])
def test_the_browser_cancels_its_own_run_while_it_runs(trainee, runtime, db_type, monkeypatch, way):
    """The page's Cancel comes from the browser whose run it stops, in the same session: the run
    must not hold the session's lock meanwhile, or the Cancel would wait for the run to end.
    Both ways the page runs SQL: the script's API call, and the form without JavaScript."""
    unhurried = replace(runtime.console.limits, seconds=60)  # only the Cancel can end the run in time
    monkeypatch.setattr(runtime, "console", replace(runtime.console, limits=unhurried))
    alice = trainee()
    path, page = open_console(alice, db_type)
    query = dict(re.findall(r'name="(db_type|name)" value="(\w+)"', page))
    api = re.search(r'data-api="([^"]+)"', page).group(1)
    sleep = SLEEP[db_type].format(seconds=60)
    answers = []
    if way == "api":
        run = threading.Thread(target=lambda: answers.append(api_post(alice, api, {"sql": sleep}).json()))
    else:  # the browser leaves the run's page for the Cancel's: neither answer's redirect is followed
        run = threading.Thread(target=lambda: answers.append(
            alice.post("/console/run", data={**query, "sql": sleep}, allow_redirects=False)
        ))
    run.start()
    try:
        wait_until_running(runtime, db_type, query["name"])
        if way == "api":
            assert api_post(alice, api + "/cancel", {}).json() == {"cancelled": 1}
        else:
            assert alice.post("/console/cancel", data=query, allow_redirects=False).status_code == 303
    finally:
        run.join(timeout=30)
    assert not run.is_alive(), "the run went on after its Cancel"
    if way == "api":
        (result,) = answers[0]["results"]
        shown = result["error"] or f"<td>{result['rows'][0][0]}</td>"
    else:  # the console's next page says what the Cancel did and shows the run it ended
        shown = alice.get(path).text
        assert "Cancelled 1 running statement(s)." in shown
    assert STOPPED[db_type] in shown or (db_type == "mysql" and "<td>1</td>" in shown), shown


#: What a statement stopped by Cancel shows, never the timeout's words (MariaDB's SLEEP may
#: instead answer 1, when the cancel came while it slept).
STOPPED = {
    "postgres": "canceling statement due to user request",
    "mysql": "Query execution was interrupted (error 1317)",
}


def wait_until_running(runtime, db_type: str, name: str) -> None:
    """Wait until the database's console has a run at work on its server: a Cancel then has
    something to stop."""
    record = runtime.service.registry.database(db_type, name)
    running = wait_for(lambda: any(run.state == "running" for run in runtime.service.registry.console_runs(record)), 20)
    assert running, f"no console run of {name} began within 20 s"
