"""Creating, listing and destroying databases from the browser, on both engines."""

from __future__ import annotations

import re
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import requests
from sqlalchemy import create_engine, select, text

from dbwrapper.backends import BACKEND_CLASSES
from dbwrapper.registry import ManagedDatabase


def test_start_page_names_the_backends_and_links_the_actions(browser):
    page = browser.get("/")
    assert page.status_code == 200
    for kind in ("postgres", "mysql"):
        assert f"/dbi/create_my_db?db_type={kind}" in page.text
        assert f"/dbi/list?db_type={kind}" in page.text


def test_the_stylesheet_is_served(browser):
    response = browser.get("/static/style.css")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/css")


def test_create_my_db_creates_the_callers_database_and_lists_it(browser, db_type, my_name, catalog):
    try:
        page = browser.get("/dbi/create_my_db", params={"db_type": db_type})
        assert page.status_code == 200
        assert page.url == f"{browser.base_url}/dbi/list?db_type={db_type}"  # where a reload asks nothing
        assert f"Created {my_name}" in page.text
        assert my_name in catalog(db_type)
        assert f"<code>{my_name}</code>" in page.text
    finally:
        browser.post("/dbi/destroy_my_db", data={"db_type": db_type})
    assert my_name not in catalog(db_type)


def test_creating_twice_says_it_exists_and_changes_nothing(browser, db_type, db_name, catalog):
    first = browser.get("/dbi/create_my_db", params={"db_type": db_type, "name": db_name})
    before = catalog(db_type)
    second = browser.get("/dbi/create_my_db", params={"db_type": db_type, "name": db_name})
    assert first.status_code == second.status_code == 200
    assert f"{db_name} already exists" in second.text
    assert catalog(db_type) == before


def test_the_list_marks_our_databases_and_shows_sizes(browser, db_type, db_name):
    browser.get("/dbi/create_my_db", params={"db_type": db_type, "name": db_name})
    page = browser.get("/dbi/list", params={"db_type": db_type})
    assert page.status_code == 200
    row = page.text.split(f"<code>{db_name}</code>", 1)[1].split("</tr>", 1)[0]
    assert 'class="badge">dbwrapper' in row
    assert re.search(r"<td class=\"num\">\d+(\.\d)? (bytes|KiB|MiB|GiB)</td>", row), row


def test_destroy_asks_first_and_only_a_post_drops(browser, db_type, db_name, catalog):
    browser.get("/dbi/create_my_db", params={"db_type": db_type, "name": db_name})
    confirm = browser.get("/dbi/destroy_my_db", params={"db_type": db_type, "name": db_name})
    assert confirm.status_code == 200
    assert '<form method="post" action="/dbi/destroy_my_db">' in confirm.text
    assert db_name in catalog(db_type)

    done = browser.post("/dbi/destroy_my_db", data={"db_type": db_type, "name": db_name})
    assert done.status_code == 200
    assert f"Dropped {db_name}" in done.text
    assert db_name not in catalog(db_type)


def test_destroying_a_missing_database_says_so(browser, db_type, db_name):
    page = browser.post("/dbi/destroy_my_db", data={"db_type": db_type, "name": db_name})
    assert page.status_code == 200
    assert f"{db_name} does not exist" in page.text


def test_destroy_ends_a_session_still_connected_to_the_database(
    browser, db_type, db_name, server_url, catalog
):
    browser.get("/dbi/create_my_db", params={"db_type": db_type, "name": db_name})
    backend = BACKEND_CLASSES[db_type]
    trainee = create_engine(backend.normalize_url(server_url).set(database=db_name))
    connection = trainee.connect()
    try:
        # An open transaction that has touched a table holds locks a plain DROP would wait on.
        connection.execute(text("CREATE TABLE boxes (id INTEGER PRIMARY KEY)"))
        connection.commit()
        connection.execute(text("SELECT * FROM boxes")).all()

        done = browser.post("/dbi/destroy_my_db", data={"db_type": db_type, "name": db_name})
        assert done.status_code == 200
        assert db_name not in catalog(db_type)
    finally:
        connection.invalidate()
        trainee.dispose()


def test_concurrent_creates_of_one_name_make_one_database(browser, base_url, db_type, db_name, catalog):
    results: list[requests.Response] = []
    barrier = threading.Barrier(8)

    def create() -> None:
        barrier.wait()
        results.append(
            requests.get(f"{base_url}/dbi/create_my_db", cookies=browser.cookies,
                         params={"db_type": db_type, "name": db_name}, timeout=60)
        )

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [r.status_code for r in results] == [200] * 8
    # One browser (one session): each create's message is shown once, on one of its pages.
    assert sum(f"Created {db_name}" in r.text for r in results) == 1
    assert db_name in catalog(db_type)


def test_a_class_creating_its_databases_at_once_gets_every_one(browser, base_url, db_type, db_name, catalog):
    names = [f"{db_name}_{i}" for i in range(8)]
    barrier = threading.Barrier(len(names))

    def create(name: str) -> requests.Response:
        barrier.wait()
        return requests.get(f"{base_url}/dbi/create_my_db", cookies=browser.cookies,
                            params={"db_type": db_type, "name": name}, timeout=60)

    with ThreadPoolExecutor(max_workers=len(names)) as trainees:
        results = list(trainees.map(create, names))
    try:
        assert [r.status_code for r in results] == [200] * len(names)
        # One browser (one session): each create's message is shown once, on one of its pages.
        assert all(sum(f"Created {name}" in r.text for r in results) == 1 for name in names)
        assert set(names) <= catalog(db_type)
    finally:
        for name in names:
            browser.post("/dbi/destroy_my_db", data={"db_type": db_type, "name": name})


def raw_answer(base_url: str, method: str, path: str, cookies: requests.cookies.RequestsCookieJar) -> bytes:
    """Everything the service sends back to one request, read off the socket until it closes:
    requests (and http.client) never read a body after HEAD, so they cannot tell if one came."""
    url = urlsplit(base_url)
    cookie = "; ".join(f"{c.name}={c.value}" for c in cookies)
    request = f"{method} {path} HTTP/1.1\r\nHost: {url.netloc}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
    with socket.create_connection((url.hostname, url.port), timeout=30) as connection:
        connection.sendall(request.encode())
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


def test_head_requests_are_answered_without_a_body(browser, db_type, base_url):
    path = f"/dbi/list?db_type={db_type}"
    got = raw_answer(base_url, "GET", path, browser.cookies)
    head = raw_answer(base_url, "HEAD", path, browser.cookies)
    got_headers, _, page = got.partition(b"\r\n\r\n")
    head_headers, _, body = head.partition(b"\r\n\r\n")
    assert got_headers.startswith(b"HTTP/1.1 200") and page.strip(), got_headers  # GET gets the page
    assert head_headers.startswith(b"HTTP/1.1 200"), head_headers
    assert body == b"", body[:200]


def test_the_registry_remembers_each_databases_owner(browser, db_type, db_name, runtime):
    browser.get("/dbi/create_my_db", params={"db_type": db_type, "name": db_name})
    with runtime.servers.registry.session() as session:
        record = session.scalar(select(ManagedDatabase).where(ManagedDatabase.name == db_name))
        assert record.owner.name == "cwcuser"  # the ORM model, read directly
        assert record.db_type == db_type
