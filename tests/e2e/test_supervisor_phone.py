"""The supervisor's pages on a phone (issue 16, item 10): the overview, the
order list and an order fit 390 px without scrolling sideways; and Back keeps
the list's filter form in step with the list shown."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from orders.models import Order
from orders.states import State
from tests import factories
from tests.conftest import PASSWORD
from tests.e2e.helpers import Screens

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("database_before_the_live_server")]


# The elements that reach past the screen's right edge, outside any box that scrolls sideways.
WIDER_THAN_THE_SCREEN = """
(width) => {
  const scrolls = (element) => {
    for (let box = element.parentElement; box; box = box.parentElement) {
      const style = getComputedStyle(box);
      if (['auto', 'scroll'].includes(style.overflowX) && box.getBoundingClientRect().right <= width + 1) return true;
    }
    return false;
  };
  return [...document.querySelectorAll('body *')]
    .filter((element) => element.getBoundingClientRect().right > width + 1 && !scrolls(element))
    .filter((element) => !element.parentElement || element.parentElement.getBoundingClientRect().right <= width + 1)
    .map((element) => element.tagName.toLowerCase()
      + (element.className ? '.' + String(element.className).split(' ').join('.') : '')
      + ' ' + Math.round(element.getBoundingClientRect().right));
}
"""


@pytest.fixture
def busy_day(contract, asset, service_code, technician, other_technician):
    """A few orders in different states, one late, one without a technician."""
    now = timezone.now()
    orders = []
    for number, (state, who) in enumerate(
        [
            (State.TO_ACKNOWLEDGE, None),
            (State.ACKNOWLEDGED, technician),
            (State.PLANNED, technician),
            (State.IN_PROGRESS, other_technician),
            (State.SUSPENDED, other_technician),
        ]
    ):
        order = factories.register_order(
            contract,
            reference=f"OPH57_2612050900{number:02d}",
            asset=asset,
            service_code=service_code,
            technician=who,
            description="Fuite sous l'évier de la cuisine, le siphon est fendu",
        )
        if who is not None:
            factories.bring_to(order, state, who)
        orders.append(order)
    Order.objects.filter(pk=orders[1].pk).update(due_at=now - timedelta(hours=5))
    return orders


def test_the_supervisors_pages_fit_a_phone(live_server, busy_day, supervisor, phone, screenshots):
    page = phone
    screens = Screens(page, screenshots)
    base = live_server.url
    page.goto(f"{base}/connexion/?next=/pilotage/")
    page.get_by_label("Identifiant").fill(supervisor.username)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    expect(page).to_have_url(f"{base}/pilotage/")
    for name, path in (
        ("phone-supervisor-01-overview", "/pilotage/"),
        ("phone-supervisor-02-orders", "/pilotage/commandes/"),
        ("phone-supervisor-03-order", f"/pilotage/commandes/{busy_day[3].pk}/"),
    ):
        page.goto(f"{base}{path}")
        # A phone's browser widens its layout to fit what overflows: measure against the screen's 390 px.
        wide = page.evaluate(WIDER_THAN_THE_SCREEN, 390)
        assert wide == [], f"{path}: wider than the screen: {wide}"
        screens.check(name)


def test_back_keeps_the_filter_form_in_step_with_the_list(live_server, busy_day, supervisor, desktop, screenshots):
    page = desktop
    base = live_server.url
    page.goto(f"{base}/connexion/?next=/pilotage/commandes/")
    page.get_by_label("Identifiant").fill(supervisor.username)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    expect(page).to_have_url(f"{base}/pilotage/commandes/")
    rows = page.locator("table.order-list-table tbody tr")
    expect(rows).to_have_count(5)
    search = page.locator("input[name=q]")
    search.fill("OPH57_261205090003")
    search.press("Enter")
    expect(rows).to_have_count(1)
    page.go_back()
    expect(rows).to_have_count(5)
    expect(search).to_have_value("")
    page.go_forward()
    expect(rows).to_have_count(1)
    expect(search).to_have_value("OPH57_261205090003")


@pytest.mark.parametrize("path", ["/admin/orders/order/", "/admin/portal/priceitem/"])
def test_the_admin_tables_fit_1440_px(live_server, busy_day, price_item, office, desktop, screenshots, path):
    page = desktop
    page.goto(f"{live_server.url}/connexion/?next={path}")
    page.get_by_label("Identifiant").fill(office.username)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    expect(page).to_have_url(f"{live_server.url}{path}")
    width = page.evaluate("document.documentElement.scrollWidth")
    page.screenshot(path=screenshots / f"admin-1440{path.replace('/', '-').rstrip('-')}.png", full_page=True)
    assert width <= 1440, f"{path}: {width} px wide"
