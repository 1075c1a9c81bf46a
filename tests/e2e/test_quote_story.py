"""The whole story of a supplementary-works quote, in browsers against the live
server (sandbox included): the technician ticks "a quote is needed" in their
report (phone); the supervisor starts the quote from the request on the
overview, picks price items by searching as they type, sends it, and sees its
PDF; the manager accepts it on the sandbox's page; the order shows the new
lines. Screenshots under E2E_SCREENSHOTS (artifacts/screenshots)."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from orders.models import InterventionReport, Order
from orders.states import State
from portal.relay import inbound
from portal.relay.models import InboundNotification, NotificationStatus
from quotes import tasks
from quotes.models import Quote, QuoteState
from tests import factories
from tests.conftest import PASSWORD, SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET
from tests.e2e.helpers import Screens, drain

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("database_before_the_live_server")]

REQUEST = "Remplacer le siphon et le flexible d'alimentation"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def started(platform, connection, live_server, contract, asset, service_code, technician, price_item) -> Order:
    call_command(
        "sandbox_setup",
        f"--client-id={SANDBOX_CLIENT_ID}",
        f"--client-secret={SANDBOX_CLIENT_SECRET}",
        f"--webhook-url={live_server.url}{connection.webhook_path}",
        stdout=io.StringIO(),
    )
    factories.make_price_item(contract, code="PLB-020", label="Flexible d'alimentation inox", unit_price="14.90")
    order = factories.register_order(contract, asset=asset, service_code=service_code, technician=technician)
    order = factories.bring_to(order, State.IN_PROGRESS, technician)
    assert set(drain()) == {"delivered"}
    return order


def sign_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/connexion/")
    page.get_by_label("Identifiant").fill(username)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()


def test_a_quote_needed_becomes_a_quote_accepted_on_the_platform_and_lines_on_the_order(
    live_server, platform, started, technician, supervisor, browser, screenshots
):
    base = live_server.url

    # The technician, on their phone, writes the report and asks for a quote.
    phone = browser.new_context(viewport={"width": 390, "height": 844}, locale="fr-FR", timezone_id="Europe/Paris")
    page = phone.new_page()
    screens = Screens(page, screenshots)
    sign_in(page, base, technician.username)
    page.goto(f"{base}/commandes/{started.pk}/rapport/")
    page.get_by_label("Travaux réalisés").fill("Recherche de fuite : siphon fendu, flexible corrodé")
    page.get_by_label("Temps passé sur place (en minutes)").fill("40")
    page.get_by_role("radio", name="Occupant absent").check()
    page.get_by_label("Un devis est nécessaire").check()
    page.get_by_label("Travaux à chiffrer").fill(REQUEST)
    screens.check("60-quote-needed")
    page.get_by_role("button", name="Enregistrer le rapport").click()
    page.wait_for_url(f"{base}/commandes/{started.pk}/rapports/*/")
    report = InterventionReport.objects.get(order=started)
    assert report.quote_needed
    phone.close()

    # The supervisor finds the request on the overview and starts the quote.
    desktop = browser.new_context(viewport={"width": 1440, "height": 900}, locale="fr-FR", timezone_id="Europe/Paris")
    desktop.set_default_timeout(20_000)  # a shared, busy CI machine
    page = desktop.new_page()
    screens = Screens(page, screenshots)
    sign_in(page, base, supervisor.username)
    expect(page).to_have_url(f"{base}/pilotage/")
    requests = page.locator("#devis")
    expect(requests).to_contain_text(REQUEST)
    screens.check("61-overview-quote-request")
    requests.get_by_role("button", name="Faire le devis").click()
    quote = Quote.objects.get(report=report)
    expect(page).to_have_url(f"{base}/pilotage/devis/{quote.pk}/")
    expect(page.locator("h1")).to_have_text(f"Devis {quote.number}")

    # Price items found as one types; each added line redraws the lines and totals.
    page.get_by_label("Code ou libellé").fill("siphon")
    results = page.locator("#price-results")
    expect(results).to_contain_text("PLB-012")
    results.locator("form.add-item").first.get_by_role("button", name="Ajouter").click()
    expect(page.locator("#quote-lines tbody tr")).to_have_count(1)
    page.get_by_label("Code ou libellé").fill("flexible")
    expect(results).to_contain_text("PLB-020")
    row = results.locator("tr", has_text="PLB-020")
    row.get_by_label("Quantité pour PLB-020").fill("2")
    row.get_by_role("button", name="Ajouter").click()
    expect(page.locator("#quote-lines tbody tr")).to_have_count(2)
    # 48,50 (10 %) + 2 × 14,90 = 29,80 (10 %): 78,30 HT, 7,83 TVA, 86,13 TTC.
    expect(page.locator("[data-total=excl]")).to_have_text("78,30\u00a0€")
    expect(page.locator("[data-total=incl]")).to_contain_text("86,13\u00a0€")
    expect(page.locator("#head-totals")).to_have_text("78,30\u00a0€ · 86,13\u00a0€")
    # A quantity changed in place: the line and the totals follow (2 × 48,50 + 29,80 = 126,80).
    page.get_by_label("Quantité de Remplacement de siphon d'évier").fill("2")
    page.get_by_label("Quantité de Remplacement de siphon d'évier").press("Tab")
    expect(page.locator("[data-total=excl]")).to_have_text("126,80\u00a0€")
    screens.check("62-quote-editor")

    page.get_by_role("button", name="Envoyer le devis").click()
    expect(page.locator("#quote-pdf")).to_contain_text("PDF en cours de production")
    screens.check("63-quote-sent")
    quote.refresh_from_db()
    assert quote.state == QuoteState.SENT
    # No worker here: the test renders the PDF with the browser away (SQLite's one connection).
    page.goto("about:blank")
    assert tasks.render_quote_pdf.run(quote.pk) == "done"
    assert set(drain()) == {"delivered"}
    page.goto(f"{base}/pilotage/devis/{quote.pk}/")
    expect(page.get_by_role("link", name="Télécharger le PDF du devis")).to_be_visible()
    started.refresh_from_db()
    assert started.state == State.SUSPENDED  # the works wait for the quote

    # The manager, on the platform, sees the quote with its PDF and accepts it.
    manager = browser.new_context(viewport={"width": 1440, "height": 900}, locale="fr-FR")
    sandbox_page = manager.new_page()
    sandbox_screens = Screens(sandbox_page, screenshots)
    sandbox_page.goto(f"{base}/sandbox/")
    submitted = sandbox_page.locator("#devis-soumis")
    expect(submitted).to_contain_text(quote.number)
    expect(submitted.get_by_role("link", name=f"devis-{quote.number}.pdf")).to_be_visible()
    sandbox_screens.check("64-sandbox-quote-submitted")
    submitted.locator(f"[data-accept='{quote.number}']").click()
    expect(sandbox_page.locator(".message")).to_contain_text("Devis accepté")
    sandbox_page.goto("about:blank")
    manager.close()

    # The webhook was stored; a task applies it (called here), and the lines are relayed.
    page.goto("about:blank")
    notification = InboundNotification.objects.get(status=NotificationStatus.RECEIVED)
    assert inbound.process_notification(notification.pk) == NotificationStatus.PROCESSED
    assert set(drain()) == {"delivered"}

    page.goto(f"{base}/pilotage/commandes/{started.pk}/")
    expect(page.locator("#devis")).to_contain_text("Accepté")
    expect(page.locator("body")).to_contain_text("Flexible d'alimentation inox")
    screens.check("65-order-with-quote-lines")
    started.refresh_from_db()
    assert started.state == State.IN_PROGRESS
    assert started.lines.filter(reference__startswith=quote.number).count() == 2
    desktop.close()
