"""The accessibility audit itself (tests/e2e/axe.py): it runs on each page a
browser test visits, after htmx swaps and before leaving a page, and names what
it finds. Here a page is spoiled on purpose, then the findings are cleared so
that this test passes."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("database_before_the_live_server")]

# What a careless template could bring: a field without a label whose
# aria-describedby names nothing, and a grey count (#aab2bd: 2.1:1 on white, 1.97:1 on the page).
SPOIL = """() => {
  const part = document.createElement("div");
  part.innerHTML = '<input name="quantite" aria-describedby="nulle-part"><span class="zero">0</span>';
  part.querySelector(".zero").style.color = "#aab2bd";
  document.querySelector("main").append(part);
  part.dispatchEvent(new Event("htmx:afterSettle", {bubbles: true}));  // as htmx does after a swap
}"""


def test_a_swap_that_spoils_the_page_is_reported_with_what_to_fix(live_server, phone, axe_audit):
    page = phone
    page.goto(f"{live_server.url}/connexion/")
    expect(page.get_by_role("heading", name="Connexion")).to_be_visible()
    assert axe_audit.audited == ["/connexion/"]  # audited on load, before the assertion
    assert axe_audit.violations == {}

    page.evaluate(SPOIL)
    page.get_by_label("Identifiant").fill("quelqu'un")  # the next action audits the swapped page first

    rules = {rule for _, rule in axe_audit.violations}
    assert {"label", "color-contrast", "idref-exists"} <= rules, axe_audit.report()
    report = axe_audit.report()
    assert "/connexion/  (first seen on /connexion/)" in report
    assert "label [critical]: Form elements must have labels" in report
    assert 'aria-describedby names "nulle-part": no element has that id' in report
    assert "insufficient color contrast of 1.97" in report  # a lone "0" is text like any other
    axe_audit.clear()


def test_a_page_left_without_any_action_is_audited_all_the_same(live_server, phone, axe_audit):
    page = phone
    page.goto(f"{live_server.url}/connexion/")
    page.evaluate(SPOIL)
    page.goto(f"{live_server.url}/mot-de-passe/oubli/")  # audited before leaving
    assert axe_audit.audited[:1] == ["/connexion/"]
    assert ("/connexion/", "label") in axe_audit.violations
    axe_audit.clear()
