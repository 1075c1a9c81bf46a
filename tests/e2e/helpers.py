"""What the browser tests share: a phone-sized page, delivering the outbox as
the workers would, and the screenshots with their checks."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.utils import timezone
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page

from portal.relay import claims, tasks
from portal.relay.models import DeliveryAttempt, MessageStatus, OutboxMessage


@contextmanager
def phone_page(browser, width: int = 390, height: int = 844) -> Iterator:
    """A page in a phone-sized context (touch), in French and in Paris time."""
    context = browser.new_context(
        viewport={"width": width, "height": height},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="fr-FR",
        timezone_id="Europe/Paris",
    )
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def drain(*, rounds: int = 50, seconds: float = 30) -> list[str]:
    """Deliver every due message, round after round, as the workers would,
    skipping the backoff waits (as tests/test_relay_sandbox.py's drain)."""
    deadline = time.monotonic() + seconds
    first = (DeliveryAttempt.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1
    for _ in range(rounds):
        OutboxMessage.objects.filter(status=MessageStatus.PENDING).update(next_attempt_at=timezone.now())
        due = list(claims.due_messages().order_by("pk").values_list("pk", flat=True))
        if not due:
            break
        for message_id in due:
            tasks.deliver_message(message_id)
        assert time.monotonic() < deadline, "still delivering after 30 s"
    return [str(outcome) for outcome in DeliveryAttempt.objects.filter(pk__gte=first).values_list("outcome", flat=True)]


class Screens:
    """Saves each screen under its step's name and checks what every screen must:
    no horizontal scroll, and no console error (a missing /favicon.ico included)."""

    def __init__(self, page: Page, folder: Path) -> None:
        self.page = page
        self.folder = folder
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))

    def _console(self, message) -> None:
        if message.type != "error":
            return
        self.errors.append(f"{message.text} ({(message.location or {}).get('url', '')})")

    def check(self, name: str) -> None:
        self.page.wait_for_load_state("load")
        self.page.screenshot(path=self.folder / f"{name}.png", full_page=True)
        scroll_width, inner_width = self.page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert scroll_width <= inner_width, f"{name}: scrolls sideways ({scroll_width} > {inner_width} px)"
        assert self.errors == [], f"{name}: console errors {self.errors}"


# Read straight from IndexedDB: the sign-in page has no static/js/queue.js. A
# database not made yet is not made here (the upgrade is aborted): nothing waits.
READ_STORE = """([name, user]) => new Promise((resolve, reject) => {
  const opening = indexedDB.open("portal-offline");
  opening.onupgradeneeded = () => opening.transaction.abort();
  opening.onerror = () => resolve([]);
  opening.onsuccess = () => {
    const base = opening.result;
    const reading = base.transaction(name).objectStore(name).index("user").getAll(user);
    reading.onsuccess = () => { base.close(); resolve(reading.result.sort((a, b) => a.seq - b.seq)); };
    reading.onerror = () => reject(reading.error);
  };
})"""


def queued(page: Page, user_pk: int) -> list[dict]:
    """The actions waiting on the phone for `user_pk` (static/js/queue.js, IndexedDB)."""
    return page.evaluate(READ_STORE, ["queue", str(user_pk)])


def refused_on_phone(page: Page, user_pk: int) -> list[dict]:
    """The refusals the phone keeps until the technician has read them."""
    return page.evaluate(READ_STORE, ["refused", str(user_pk)])


def wait_until_sent(page: Page, user_pk: int, seconds: float = 15) -> None:
    """Polled: wait_for_function does not wait for a promise."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if not queued(page, user_pk):
                return
        except PlaywrightError:  # the page reloads once the queue is sent
            page.wait_for_load_state("load")
        assert time.monotonic() < deadline, "the queue is still waiting on the phone"
        page.wait_for_timeout(100)
