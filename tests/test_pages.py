"""Pages: every value escaped once, a ``%`` anywhere harmless, every POST form with its CSRF token.

The templates are ``%(name)s`` files filled by markupsafe (``dbwrapper/formatting.py``).
Database names cannot hold markup, quotes or ``%``; what users type elsewhere can: a
course's description, a snapshot's label, a user name that is refused, a roster's line.
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests
from markupsafe import Markup, escape

from dbwrapper.classes import ClassReport
from dbwrapper.formatting import Templates, credentials_sheet, human_expiry, human_size
from dbwrapper.web.pages import shown_expiry, shown_time
from tests.test_api import token_for

#: Markup, both quotes, a lone ``%``, and what ``%`` formatting would read as a placeholder.
NASTY = """<script>alert("x")</script> 'q' 100% %(user)s %s"""
SHOWN = str(escape(NASTY))


def shows_nasty_escaped(html: str) -> bool:
    """The page shows NASTY as text: escaped, never as markup, never formatted again."""
    return SHOWN in html and "<script>" not in html


def test_what_nasty_looks_like_on_a_page():
    assert SHOWN == "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &#39;q&#39; 100% %(user)s %s"


# -- the templates, without a server ------------------------------------------------------------


def test_a_literal_percent_in_a_template_is_text_and_a_value_is_formatted_once(tmp_path):
    (tmp_path / "page.html").write_text("<style>p { width: 100% }</style>\n<p>%(value)s, 5%</p>\n")
    page = Templates(tmp_path).render("page.html", value=NASTY)
    assert page == f"<style>p {{ width: 100% }}</style>\n<p>{SHOWN}, 5%</p>\n"


def test_a_placeholder_other_than_name_s_is_refused_when_the_templates_are_read(tmp_path):
    (tmp_path / "page.html").write_text("<p>fine</p>\n<p>%(quota)d left</p>\n")
    with pytest.raises(ValueError, match=r"page\.html, line 2: only %\(name\)s placeholders .*%\(quota\)d"):
        Templates(tmp_path)


def test_the_shipped_templates_write_no_csrf_field_of_their_own():
    templates = Templates()
    assert not [path.name for path in templates.directory.glob("*.html") if "csrf" in path.read_text()]


def test_markup_goes_in_as_it_is_and_text_is_escaped_once(tmp_path):
    (tmp_path / "outer.html").write_text("<div>%(inner)s|%(text)s</div>")
    (tmp_path / "inner.html").write_text("<b>%(text)s</b>")
    templates = Templates(tmp_path)
    inner = templates.render("inner.html", text="a & b")
    assert isinstance(inner, Markup)
    outer = templates.render("outer.html", inner=inner, text="<i>&amp;</i>")
    assert outer == "<div><b>a &amp; b</b>|&lt;i&gt;&amp;amp;&lt;/i&gt;</div>"


def test_the_credentials_sheet_escapes_a_failed_roster_line():
    report = ClassReport("franchise", "postgres", failed=[(NASTY, f"{NASTY} is not a valid user name")])
    for standalone in (False, True):  # the page, and the command line's file with its style inside
        sheet = credentials_sheet(Templates(), report, "PostgreSQL", "http://127.0.0.1:7001", standalone=standalone)
        assert shows_nasty_escaped(sheet) and f"{SHOWN} is not a valid user name" in sheet


def test_sizes_are_in_the_binary_units_they_are_counted_in():
    sizes = [None, 512, 8192, 5 * 1024**2 + 1024**2 // 2, 3 * 1024**4]
    assert [human_size(size) for size in sizes] == ["–", "512 bytes", "8.0 KiB", "5.5 MiB", "3.0 TiB"]


def test_a_time_is_shown_in_utc_and_given_in_iso_for_the_viewer_s_own():
    moment = datetime(2026, 12, 11, 0, 30, 5, tzinfo=ZoneInfo("Europe/Paris"))  # 23:30:05 UTC the day before
    assert shown_time(moment) == '<time datetime="2026-12-10T23:30:05+00:00">2026-12-10 23:30 UTC</time>'
    assert shown_time(moment, seconds=True).endswith(">2026-12-10 23:30:05 UTC</time>")
    assert human_expiry(moment, now=moment - timedelta(days=14, seconds=1)) == "2026-12-10 23:30 UTC (in 14 days)"
    assert shown_expiry(None) == human_expiry(None) == "never (permanent)"


def test_the_command_line_formats_without_the_web_layer():
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, dbwrapper.cli; print(sorted(m for m in sys.modules if 'dbwrapper' in m))"],
        capture_output=True, text=True, check=True,
    ).stdout
    assert "dbwrapper.formatting" in loaded and "dbwrapper.web" not in loaded


# -- real pages ------------------------------------------------------------------------------


def post_forms_and_tokens(html: str) -> tuple[int, list[str]]:
    forms = re.findall(r'<form method="post"[^>]*>(<input type="hidden" name="csrf_token" value="([^"]*)">)?', html)
    return len(forms), [token for field, token in forms if field]


def test_every_post_form_of_every_page_carries_the_sessions_token(browser, trainee, db_type):
    alice = trainee()
    made = alice.get("/dbi/create_my_db", params={"db_type": db_type})
    assert made.status_code == 200
    name = re.search(r'name="name" value="([a-z0-9_]+)"', made.text)[1]
    pages = {
        "trainee's new database": (alice, made.text),
        "trainee's home": (alice, alice.get("/").text),
        "confirm destroy": (alice, alice.get("/dbi/destroy_my_db", params={"db_type": db_type, "name": name}).text),
        "snapshots": (alice, alice.get("/snapshots/", params={"db_type": db_type, "name": name}).text),
        "instructor's home": (browser, browser.get("/").text),
        "users": (browser, browser.get("/users/").text),
        "courses": (browser, browser.get("/courses/").text),
        "archives": (browser, browser.get("/archives/").text),
    }
    for what, (session, html) in pages.items():
        forms, tokens = post_forms_and_tokens(html)
        assert forms >= 1, what
        assert tokens == [session.csrf] * forms, what
    with type(browser)(browser.base_url) as anonymous:
        login = anonymous.get("/login").text
        assert post_forms_and_tokens(login) == (1, [anonymous.csrf]) and anonymous.csrf


def test_an_unknown_user_name_shows_escaped_on_the_error_page(browser):
    # The error reaches the page through CherryPy's error handling, which formats with % too.
    refused = browser.post("/users/remove", data={"name": NASTY})
    assert refused.status_code == 400
    assert f"There is no user named {escape(repr(NASTY))}." in refused.text and "<script>" not in refused.text


def test_an_unknown_value_in_a_query_shows_escaped(browser):
    refused = browser.get("/dbi/list", params={"db_type": NASTY})
    assert refused.status_code == 400
    assert escape(repr(NASTY)) in refused.text and "<script>" not in refused.text


def test_a_failed_login_as_anyone_shows_escaped_in_the_audit_log(browser, anonymous):
    name = f"""<i>"{uuid.uuid4().hex[:4]}"</i> 'q' 5% %(user)s"""  # the log keeps 32 characters of it
    assert anonymous.log_in(name, "wrong").status_code == 401
    audit = browser.get("/audit")
    assert audit.status_code == 200
    assert escape(name) in audit.text and "<i>" not in audit.text


def test_a_snapshot_label_shows_escaped(trainee):
    alice = trainee()
    made = alice.get("/dbi/create_my_db", params={"db_type": "postgres"})
    name = re.search(r'name="name" value="([a-z0-9_]+)"', made.text)[1]
    taken = alice.post("/snapshots/take", data={"db_type": "postgres", "name": name, "label": NASTY})
    assert taken.status_code == 200, taken.text
    assert shows_nasty_escaped(taken.text)
    assert shows_nasty_escaped(alice.get("/snapshots/", params={"db_type": "postgres", "name": name}).text)


def test_a_course_description_shows_escaped(browser):
    course = f"t_{uuid.uuid4().hex[:8]}"
    added = browser.post("/courses/add", data={"name": course, "description": NASTY},
                         files={"postgres_sql": ("c.sql", b"CREATE TABLE boxes (n INTEGER);\n")})
    assert added.status_code == 200, added.text
    assert shows_nasty_escaped(added.text)
    assert shows_nasty_escaped(browser.get("/courses/").text)


def test_a_roster_line_shows_escaped_on_the_class_pages(browser):
    # As a header, on the confirmation page (as the rows left out, and as the column read).
    asked = browser.read_roster(f"{NASTY}\nnobody_made\n", db_type="postgres")
    assert asked.status_code == 200 and "Provision this trainee" in asked.text
    assert shows_nasty_escaped(asked.text)
    # As a trainee's name: the roster is refused, saying which row.
    refused = browser.read_roster(f"name\n{NASTY}\n", db_type="postgres")
    assert refused.status_code == 400 and shows_nasty_escaped(refused.text)


# -- a trainee's home: no dead ends ------------------------------------------------------------


def test_a_trainee_at_their_quota_is_shown_how_to_make_room_not_buttons_that_refuse(trainee, db_type):
    alice = trainee(quota=1)
    home = alice.get("/").text
    assert "/dbi/create_my_db?db_type=" in home and "You have 0 of" not in home
    made = alice.get("/dbi/create_my_db", params={"db_type": db_type})
    name = re.search(r'name="name" value="([a-z0-9_]+)"', made.text)[1]

    home = alice.get("/").text
    assert "/dbi/create_my_db" not in home  # every such link would be a 409
    assert "You have 1 of 1 database(s): to make another, destroy one" in home
    destroy = re.findall(r'href="(/dbi/destroy_my_db\?[^"]+)"', home)
    assert destroy and all(name in link for link in destroy)
    asked = alice.get(destroy[0].replace("&amp;", "&"))
    assert asked.status_code == 200 and f"Destroy {name}" in asked.text
    assert 'href="/archives/"' in home


def test_a_trainee_with_no_database_sees_their_archives_and_restores_one(trainee, db_type):
    alice = trainee(quota=1)
    made = alice.get("/dbi/create_my_db", params={"db_type": db_type})
    name = re.search(r'name="name" value="([a-z0-9_]+)"', made.text)[1]
    assert "Your archives" not in alice.get("/").text  # a database to work in: no archives here
    archived = alice.post("/archives/create", data={"db_type": db_type, "name": name})
    assert archived.status_code == 200, archived.text
    assert alice.post("/dbi/destroy_my_db", data={"db_type": db_type, "name": name}).status_code == 200

    home = alice.get("/").text
    assert "Your archives" in home and f"Restore to {name}" in home
    # The new name's field is labelled, and its placeholder reads as an example, not a value.
    field = re.search(r"<label>Or into a new database named\s*<input ([^>]*)></label>", home)
    assert field and f'placeholder="e.g. {name}_2"' in field[1] and "value=" not in field[1]
    archive = re.search(r'name="archive" value="([^"]+)"', home)[1]
    restored = alice.post("/archives/restore", data={"archive": archive})
    assert restored.status_code == 200, restored.text
    assert "Your archives" not in alice.get("/").text and f"<code>{name}</code>" in alice.get("/").text


def test_the_connection_help_says_what_the_command_does_and_where_it_works(trainee, db_type, runtime, base_url):
    alice = trainee()
    alice.get("/dbi/create_my_db", params={"db_type": db_type})
    here = alice.get("/").text
    said = {"postgres": "psql asks for it (the one below)", "mysql": "its -p makes mysql ask for it"}[db_type]
    assert "The command holds no password" in here and said in here
    assert "ssh -N -L" not in here  # on the service's own machine, the command works as it is

    # The same page read on another machine: the server listens on a loopback address only.
    # (With the trainee's token: the session's cookie is for this machine's name.)
    token = token_for(runtime, alice.user_name)
    there = requests.get(base_url + "/", timeout=60, allow_redirects=False,
                         headers={"Host": "classroom.example:7001", "Authorization": f"Bearer {token}"}).text
    command = re.search(r"<pre>((?:psql|mysql) [^<]*)</pre>", there)[1]
    port = re.search(r"(?:-p|-P) (\d+)", command)[1]
    assert "works there only" in there or "work there only" in there
    assert f"ssh -N -L {port}:127.0.0.1:{port} classroom.example" in there


def test_every_template_closes_the_blocks_it_opens():
    """A merge once left a table's scrolling box open, so that the rest of the page scrolled
    inside it: each template closes every div, table, form, list and section it opens."""
    from dbwrapper.formatting import templates_dir

    for path in sorted(templates_dir().glob("*.html")):
        text = path.read_text()
        for tag in ("div", "table", "tr", "form", "ul", "ol", "section", "article"):
            opened = len(re.findall(rf"<{tag}[\s>]", text))
            assert opened == text.count(f"</{tag}>"), f"{path.name}: <{tag}> opened {opened} times, closed otherwise"
