"""The pages in a real browser: Playwright driving the machine's Chromium.

Playwright's own browser download needs a network these machines do not have, so the tests
drive Debian's ``chromium`` (``scripts/test`` installs it). A browser that cannot start fails
the test, never skips it: a run without one has not tested the pages.

Each test gets fresh browser contexts (no cookies, no cache) at one of :data:`VIEWPORTS`, on
the service the tests' ``runtime`` serves in this process, and walks its flow in
:class:`Steps`: a screenshot after each step, named in the failure when one fails. The flow
helpers below find what a person finds, by role and label, so that they read as the page does.
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from playwright.sync_api import Error as PlaywrightError

CHROMIUM = "/usr/bin/chromium"
#: The machine's network is closed: without these, Chromium waits on connections of its own
#: (updates, sync, QUIC probes) and a launch or a page can hang. No sandbox: the tests run as root.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
#: What Playwright waits at most for a page or an element, in milliseconds (as it counts): the
#: pages answer in well under a second; a wait for slow work says so with its own.
TIMEOUT_MS = 15_000
LAUNCH_TIMEOUT_MS = 30_000


class Steps:
    """``with steps("Log in"): ...``: one step of a flow, photographed when it ends.

    The screenshots go to the test's own directory, numbered; when a step fails, the error
    names all of them, the failed step's last, so the failure shows what the person saw.
    A test that passes keeps none.
    """

    def __init__(self, directory: Path, logged: pytest.LogCaptureFixture) -> None:
        self.directory = directory
        #: The log this test captured: a failed step names the errors the service logged in it.
        self.logged = logged
        self.page: Page | None = None
        self.taken: list[Path] = []
        self.failed = False

    @contextmanager
    def __call__(self, what: str, page: Page | None = None) -> Iterator[None]:
        self.page = page or self.page
        try:
            yield
        except BaseException as error:
            self.failed = True
            self._shoot(what)
            if errors := [record.getMessage() for record in self.logged.records if record.levelno >= logging.ERROR]:
                # A page says only "something went wrong"; what went wrong is in the log.
                error.add_note("The service logged, during this test:\n" + "\n".join(errors))
            error.add_note("Screenshots of each step, the failed one last:\n" + "\n".join(map(str, self.taken)))
            raise
        self._shoot(what)

    def _shoot(self, what: str) -> None:
        if self.page is None or self.page.is_closed():
            return
        slug = re.sub(r"[^a-z0-9]+", "-", what.lower()).strip("-")[:60]
        path = self.directory / f"{len(self.taken) + 1:02d}-{slug}.png"
        # What the window shows (a whole audit log is too long a picture). Chromium refuses a
        # capture now and then while a page is still being drawn after a navigation: the
        # picture is the test's record, never its outcome, so one refusal is tried again and
        # a second only said.
        for attempt in range(2):
            try:
                self.page.screenshot(path=path)
                self.taken.append(path)
                return
            except PlaywrightError as error:
                if attempt:
                    print(f"No screenshot of the step {what!r}: {error.message.splitlines()[0]}")
                else:
                    self.page.wait_for_timeout(500)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """The machine's Chromium, started once per module of browser tests and stopped after it,
    so that Playwright's event loop is gone before other modules' tests run."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=LAUNCH_TIMEOUT_MS,
        )
        yield browser
        browser.close()


@pytest.fixture(params=sorted(VIEWPORTS))
def viewport(request: pytest.FixtureRequest) -> str:
    """Run the test on a desktop's screen and on a phone's."""
    return request.param


@pytest.fixture
def open_page(chromium: Browser, base_url: str, viewport: str) -> Iterator[Callable[..., Page]]:
    """``open_page(**context_options)``: a page in a browser context of its own (a person of
    their own: no cookies, nothing cached), at the test's viewport; closed afterwards."""
    contexts = []

    def make(**options: Any) -> Page:
        context = chromium.new_context(base_url=base_url, viewport=VIEWPORTS[viewport], **options)  # type: ignore[arg-type]
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(open_page: Callable[..., Page]) -> Page:
    """A page nobody has logged in with yet."""
    return open_page()


@pytest.fixture
def steps(
    page: Page, tmp_path: Path, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture,
) -> Iterator[Steps]:
    """The flow's :class:`Steps`, photographing ``page`` unless a step names another. The
    screenshots are kept when the test failed (in a step or between them), else removed."""
    directory = tmp_path / "screenshots"
    directory.mkdir()
    recorder = Steps(directory, caplog)
    recorder.page = page
    failed_before = request.session.testsfailed
    yield recorder
    # The test's own outcome is counted before its fixtures are torn down.
    if not recorder.failed and request.session.testsfailed == failed_before:
        shutil.rmtree(directory)


# -- what a person does ----------------------------------------------------------------


def log_in(page: Page, name: str, password: str) -> None:
    """Open the login page (the only address typed) and log in."""
    page.goto("/login")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def log_out(page: Page) -> None:
    page.get_by_role("button", name="Log out").click()


# -- what a page must be, for every person ---------------------------------------------------

#: Inputs a person fills in or chooses from, and the name each is announced by (its
#: ``aria-label``, ``aria-labelledby``, a ``<label>``, or a ``title``): those with none.
UNNAMED_FIELDS = """() => [...document.querySelectorAll("input, select, textarea")]
  .filter((field) => field.type !== "hidden")
  .filter((field) => !(field.getAttribute("aria-label") || "").trim()
    && !field.getAttribute("aria-labelledby")
    && !(field.labels && [...field.labels].some((label) => label.textContent.trim()))
    && !(field.getAttribute("title") || "").trim())
  .map((field) => field.outerHTML)"""

#: Buttons announced by the same name as another on the page ("Delete", "Delete"...): which
#: row's a button acts on is only known to who sees the row.
SAME_NAMED_BUTTONS = """() => {
  const names = [...document.querySelectorAll("button, input[type=submit]")]
    .map((button) => (button.getAttribute("aria-label") || button.textContent || button.value).trim());
  return [...new Set(names.filter((name, i) => names.indexOf(name) !== i))];
}"""

#: How much wider than the window the page is, sideways (0: it fits).
OVERFLOW = "() => document.documentElement.scrollWidth - window.innerWidth"


def problems(page: Page) -> list[str]:
    """What keeps someone from using the page now shown: it scrolls sideways, a field has no
    name, or buttons share one."""
    found = []
    if (wider := page.evaluate(OVERFLOW)) > 0:
        found.append(f"it is {wider} px wider than the window")
    found += [f"this field has no name: {field}" for field in page.evaluate(UNNAMED_FIELDS)]
    found += [f"several buttons are named {name!r}" for name in page.evaluate(SAME_NAMED_BUTTONS)]
    return found
