"""Feedback where the thumb is (issue 16, item 5): after an action low on a
long page, the page stays where it was and the confirmation is in view,
above the action bar; a refusal shows the action again with its reason."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from orders.states import State
from tests import factories
from tests.conftest import PASSWORD
from tests.e2e.helpers import Screens

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("database_before_the_live_server")]

IN_VIEW = """(element) => {
  const box = element.getBoundingClientRect();
  return box.top >= 0 && box.bottom <= window.innerHeight && box.height > 0;
}"""


def test_a_line_ticked_low_on_the_page_is_confirmed_in_view(live_server, order, technician, phone, screenshots):
    factories.bring_to(order, State.IN_PROGRESS, technician)
    page = phone
    screens = Screens(page, screenshots)
    page.goto(f"{live_server.url}/connexion/?next=/commandes/{order.pk}/")
    page.get_by_label("Identifiant").fill(technician.username)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()

    toggle = page.locator("button.line-toggle").nth(1)
    toggle.scroll_into_view_if_needed()
    scrolled = page.evaluate("window.scrollY")
    assert scrolled > 400
    toggle.click()
    expect(page.locator("button.line-toggle").nth(1)).to_have_attribute("aria-pressed", "true")
    toast = page.locator("#order-panel [role=status].toast")
    expect(toast).to_have_text("Ligne L2 réalisée : Remplacement du siphon")
    assert toast.evaluate(IN_VIEW), "the confirmation is out of view"
    # Above the action bar, not under it.
    assert toast.bounding_box()["y"] + toast.bounding_box()["height"] <= page.locator(".action-bar").bounding_box()["y"]
    assert page.evaluate("window.scrollY") > 400, "the page jumped back to the top"
    page.screenshot(path=screenshots / "feedback-01-line-ticked.png")
    screens.check("feedback-01-line-ticked-full")
