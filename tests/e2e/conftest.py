"""Browser tests: Debian's Chromium driven by Playwright's sync API (the PyPI
package, whose wheel bundles its driver; Playwright's own browser download is
not used), against pytest-django's live server.

Chromium is /usr/bin/chromium. Where it is missing the tests are skipped,
except in CI (CI set), where that is an error: .ci/run installs it."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest

from portal.relay.models import Connection
from tests.e2e.axe import AxeAudit
from tests.e2e.helpers import phone_page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REPO = Path(__file__).resolve().parents[2]


def pytest_configure(config: pytest.Config) -> None:
    # Registered here rather than in pyproject.toml: the marker belongs to this folder.
    config.addinivalue_line("markers", "e2e: drives a real browser against the live server (runs by default)")


class OneRequestAtATime:
    """The live server's portal requests, one at a time, as they share one connection.

    On SQLite the test database is in memory, and pytest-django's live server
    hands that one connection (one Django `DatabaseWrapper`, with its transaction
    state) to every thread of its threaded server: two requests at once (a
    page's two photo lanes, the page and its service worker) interleave their
    transactions on it and fail as no server would ("cannot open savepoint - SQL
    statements in progress", a transaction broken by the other request's error),
    a 500 that production never gives. There, each request has its own
    connection and SQLite queues writers (IMMEDIATE transactions). Here each
    portal request (its body streamed out included: a CSV reads as it goes)
    holds the connection alone. The sandbox's requests are left concurrent: it
    calls the portal back (webhooks) while answering."""

    def __init__(self, app: Callable) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith("/sandbox/"):
            return self.app(environ, start_response)
        with self.lock:
            result = self.app(environ, start_response)
            try:
                return [b"".join(result)]
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()


@pytest.fixture(autouse=True)
def one_request_at_a_time(request: pytest.FixtureRequest) -> None:
    """Where a test uses the live server on in-memory SQLite: see OneRequestAtATime."""
    if "live_server" not in request.fixturenames:
        return
    from django.db import connection

    server = request.getfixturevalue("live_server")
    if not (connection.vendor == "sqlite" and connection.is_in_memory_db()):
        return
    httpd = server.thread.httpd
    if not isinstance(httpd.get_app(), OneRequestAtATime):
        httpd.set_app(OneRequestAtATime(httpd.get_app()))


@pytest.fixture
def screenshots() -> Path:
    """The folder for the screenshots (E2E_SCREENSHOTS, relative to the repository)."""
    folder = REPO / os.environ.get("E2E_SCREENSHOTS", "artifacts/screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Fails a browser test whose pages axe-core found violations on (see axe.py),
    once its own body has passed."""
    result = yield
    audit: AxeAudit | None = getattr(item, "axe_audit", None)
    if audit is not None:
        audit.flush()
        if audit.violations:
            pytest.fail(audit.report(), pytrace=False)
    return result


@pytest.fixture
def axe_audit(request: pytest.FixtureRequest) -> AxeAudit:
    """What axe-core finds on the pages of this test (every browser test has it)."""
    audit = AxeAudit()
    request.node.axe_audit = audit
    return audit


@pytest.fixture
def browser(axe_audit: AxeAudit) -> Iterator:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: CI must install Debian's chromium (see .ci/run).")
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium) to run it.")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio loop in this thread, so Django's
    # async-unsafe guard refuses ORM calls from the test while it runs: the
    # documented workaround, limited to the browser's lifetime rather than set
    # for the whole session.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            # In French, date pickers included: they follow the browser's own
            # language, which needs Debian's chromium-l10n and these settings.
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM),
                args=[*CHROMIUM_ARGS, "--lang=fr-FR"],
                env={**os.environ, "LANG": "fr_FR.UTF-8", "LANGUAGE": "fr"},
            )
            axe_audit.watch_browser(browser)
            yield browser
            browser.close()


@pytest.fixture
def phone(browser) -> Iterator:
    """A page on a common phone (390 × 844)."""
    with phone_page(browser) as page:
        yield page


@pytest.fixture
def desktop(browser) -> Iterator:
    """A page in a desktop-sized context (a supervisor's screen), in French and in Paris time."""
    context = browser.new_context(
        viewport={"width": 1440, "height": 900},
        locale="fr-FR",
        timezone_id="Europe/Paris",
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def connection(sandbox_connection) -> Connection:
    return sandbox_connection
