"""Browser tests: Playwright's sync API driving Debian's Chromium against `live_server`.

One browser per run of this package (starting Chromium is the slow part); every test gets
a fresh context (cookies, permissions) logged in as an agent, and a list of the console
errors and page errors it saw, which tests assert empty.
"""

import os
import time
from dataclasses import dataclass, field

import pytest
from django.conf import settings
from django.test import Client

from cards.models import CardInstance
from tests.factories import agent_user

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 900}


@pytest.fixture(scope="package")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    # The sync API runs an event loop in this thread, so Django would take the test's
    # (synchronous) ORM calls for calls from async code and refuse them. Only while this
    # package runs: the variable is read at every call.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@dataclass
class Session:
    """A logged-in browser tab and what went wrong in it."""

    page: object
    base_url: str
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def open(self, path: str) -> None:
        self.page.goto(self.base_url + path)


def _session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


@pytest.fixture
def login(browser, live_server, settings):
    """`login(user=None, viewport=None, color_scheme="light")` opens a logged-in tab (an
    agent by default), with reduced motion (screenshots and axe see no shimmer)."""
    # Long-polls that outlive a test hold live-server threads; keep them short.
    settings.CARDS_WAIT_SECONDS = 5
    contexts = []

    def open_session(user=None, *, viewport=None, color_scheme="light") -> Session:
        user = user or agent_user("browser-agent")
        context = browser.new_context(
            base_url=live_server.url,
            viewport=viewport or VIEWPORT,
            color_scheme=color_scheme,
            reduced_motion="reduce",
        )
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
        context.add_cookies(
            [
                {
                    "name": settings.SESSION_COOKIE_NAME,
                    "value": _session_cookie(user),
                    "url": live_server.url,
                }
            ]
        )
        contexts.append(context)
        page = context.new_page()
        session = Session(page=page, base_url=live_server.url)
        page.on(
            "console",
            lambda message: message.type == "error" and session.errors.append(message.text),
        )
        page.on("pageerror", lambda error: session.errors.append(str(error)))

        def on_dialog(dialog) -> None:
            session.dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)
        return session

    yield open_session
    for context in contexts:
        context.close()
    _wait_for_loads_to_finish()


def _wait_for_loads_to_finish(timeout: float = 10.0) -> None:
    """Let the server finish what the closed tab started before the database goes away.

    Loads started by the page run on the in-process pool, and a fragment's long-poll ends
    once its load is stored; both must be done before the test's data is flushed.
    """
    time.sleep(0.2)  # requests already sent reach their views
    deadline = time.monotonic() + timeout
    loading = CardInstance.objects.filter(state=CardInstance.State.LOADING)
    while loading.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # long-polls see the stored loads and answer
