"""The technician's screens on the narrowest phone we support (360 px wide,
touch): nothing scrolls sideways, and everything a finger must hit is at least
44 px high and wide (links inside a sentence aside, which follow its text).

The order page is seen in each state that has actions, with every panel opened,
and the report and upload forms too."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import Page

from orders import planning, receiving, services
from tests.conftest import PASSWORD
from tests.e2e.helpers import phone_page

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("database_before_the_live_server")]

MIN_TARGET = 44  # px, CSS pixels

# Every visible element a finger may have to hit; a link or label inside running
# text is measured by its line, which is the text's business, not a target's.
TARGETS_TOO_SMALL = """
(minimum) => {
  const selector = 'a[href], button, input:not([type=hidden]), select, textarea, summary, [role=button]';
  const inText = (element) => {
    const parent = element.parentElement;
    if (!parent || !['A', 'LABEL'].includes(element.tagName)) return false;
    return ['P', 'LI', 'SMALL', 'SPAN', 'TD', 'DD'].includes(parent.tagName)
      && parent.textContent.trim() !== element.textContent.trim();
  };
  const target = (element) => {
    // A radio or checkbox is hit through its label, which wraps it.
    const label = element.closest('label');
    return (['radio', 'checkbox'].includes(element.type) && label) ? label : element;
  };
  const small = [];
  for (const element of document.querySelectorAll(selector)) {
    const style = getComputedStyle(element);
    if (style.visibility === 'hidden' || style.display === 'none') continue;
    if (element.closest('[hidden], details:not([open]) > :not(summary)')) continue;
    const box = target(element).getBoundingClientRect();
    if (box.width === 0 && box.height === 0) continue;
    if (inText(element)) continue;
    if (box.height < minimum || box.width < minimum) {
      const name = (element.getAttribute('aria-label') || element.textContent || element.name || element.type || '')
        .trim().replace(/\\s+/g, ' ').slice(0, 40);
      small.push(`${element.tagName.toLowerCase()} "${name}" ${Math.round(box.width)}x${Math.round(box.height)}`);
    }
  }
  return small;
}
"""


@pytest.fixture
def narrow_phone(browser) -> Iterator[Page]:
    with phone_page(browser, width=360, height=640) as page:
        yield page


def sign_in(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/connexion/")
    page.get_by_label("Identifiant").fill(username)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(f"{base}/mes-commandes/")


def check(page: Page, name: str) -> None:
    page.wait_for_load_state("load")
    # Every folded panel opened: its fields are targets too.
    page.evaluate("document.querySelectorAll('details').forEach((details) => { details.open = true; })")
    scroll_width, inner_width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert scroll_width <= inner_width, f"{name}: scrolls sideways at 360 px ({scroll_width} > {inner_width} px)"
    too_small = page.evaluate(TARGETS_TOO_SMALL, MIN_TARGET)
    assert too_small == [], f"{name}: tap targets under {MIN_TARGET} px: {too_small}"


def test_every_technician_screen_fits_360_px_with_44_px_tap_targets(
    live_server, contract, asset, service_code, technician, narrow_phone
):
    now = timezone.now()
    orders = {}
    for state in ("to_acknowledge", "acknowledged", "planned", "in_progress", "suspended", "finished"):
        orders[state] = order = receiving.register_order(
            contract=contract,
            reference=f"OPH57_{state.upper()}",
            actor=None,
            notified_at=now - timedelta(days=1),
            asset=asset,
            service_code=service_code,
            description="Fuite sous l'évier de la cuisine, à voir avec le gardien avant toute intervention",
            occupant_name="Mme Marie-Thérèse de La Rochefoucauld-Montbrison",
            occupant_mobile="06 12 34 56 78",
            lines=[{"reference": "L1", "label": "Fuite", "quantity": Decimal(1), "unit_price": Decimal("65.00")}],
            technician=technician,
        )
        if state == "to_acknowledge":
            continue
        services.acknowledge_order(order, actor=technician)
        if state == "acknowledged":
            continue
        planning.plan_order(order, actor=technician, appointment=now + timedelta(hours=2))
        if state == "planned":
            continue
        services.start_work(order, actor=technician)
        if state == "suspended":
            services.suspend_work(order, actor=technician, reason="occupant_absent")
        elif state == "finished":
            services.finish_work(order, actor=technician)

    page = narrow_phone
    base = live_server.url
    sign_in(page, base, technician.username)
    check(page, "my orders")

    page.goto(f"{base}/mes-commandes/?q=OPH57")
    check(page, "my orders, searched")

    for state, order in orders.items():
        page.goto(f"{base}/commandes/{order.pk}/")
        check(page, f"order {state}")

    in_progress = orders["in_progress"]
    page.goto(f"{base}/commandes/{in_progress.pk}/rapport/")
    check(page, "report form")
    page.goto(f"{base}/commandes/{in_progress.pk}/documents/deposer/")
    check(page, "report upload")
