"""The report's supplies and its time on site (issue 16, item 7) in the
browsers: the technician, on a phone, picks two supplies from the contract's
price schedule (a third row added) and leaves the time to be counted; the
supervisor, at 1440 px, sees them with their prices and the time counted, and
adds them to the order's lines. Put in a quote the manager refuses on the
sandbox's page, they come back to the supervisor, to take up again."""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import expect

from orders import reports, services
from orders.materials import MaterialUse
from orders.models import InterventionReport, MaterialDestination
from orders.states import State
from portal.relay import inbound
from portal.relay.models import InboundNotification, NotificationStatus
from quotes.models import Quote, QuoteState
from tests import factories
from tests.conftest import PASSWORD, SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET
from tests.e2e.helpers import Screens, drain

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("database_before_the_live_server")]


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def sign_in(page, live_server, user, next_url):
    page.goto(f"{live_server.url}/connexion/?next={next_url}")
    page.get_by_label("Identifiant").fill(user.username)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()


def test_supplies_from_the_schedule_and_the_time_counted_reach_the_supervisor(
    live_server, order, contract, price_item, technician, supervisor, phone, desktop, screenshots
):
    factories.make_price_item(contract, code="PLB-020", label="Joint fibre 15x21", unit_price=Decimal("3.20"))
    factories.make_price_item(contract, code="PLB-031", label="Flexible inox 50 cm", unit_price=Decimal("12.90"))
    started = factories.bring_to(order, State.IN_PROGRESS, technician, at=timezone.now() - timedelta(minutes=95))

    page = phone
    screens = Screens(page, screenshots)
    sign_in(page, live_server, technician, f"/commandes/{started.pk}/rapport/")
    page.get_by_label("Travaux réalisés").fill("Siphon et flexible remplacés, joints refaits")
    expect(page.locator("#fournitures")).to_contain_text("Fournitures du bordereau")
    time_help = page.locator(".field", has=page.get_by_label("Temps passé sur place (en minutes)"))
    expect(time_help).to_contain_text("Laissez vide : calculé d'après le début, la fin et les suspensions")
    expect(time_help).to_contain_text("1 h 35 à cette heure")
    codes = page.locator("#fournitures").get_by_label("Code du bordereau")
    quantities = page.locator("#fournitures").get_by_label("Quantité")
    codes.nth(0).fill("PLB-012")
    quantities.nth(0).fill("1")
    codes.nth(1).fill("plb-020")
    quantities.nth(1).fill("4")
    codes.nth(2).fill("PLB-031")
    quantities.nth(2).fill("1")
    page.get_by_role("button", name="Ajouter une fourniture").click()
    expect(codes).to_have_count(4)
    expect(codes.nth(3)).to_be_focused()
    codes.nth(3).fill("PLB-999")
    quantities.nth(3).fill("1")
    page.get_by_label("Occupant absent").check()
    screens.check("materials-01-report-form-phone")
    page.get_by_role("button", name="Enregistrer le rapport").click()
    # An unknown code: said beside it, the rest kept.
    expect(page.locator("#fournitures")).to_contain_text("« PLB-999 » n'est pas au bordereau du marché")
    expect(codes.nth(1)).to_have_value("plb-020")
    screens.errors.clear()  # the form shown again comes with a 400, which the console reports
    codes.nth(3).fill("")
    quantities.nth(3).fill("")
    page.get_by_label("Occupant absent").check()
    page.get_by_role("button", name="Enregistrer le rapport").click()
    expect(page.locator("h1")).to_have_text("Rapport d'intervention")
    expect(page.locator("main")).to_contain_text("PLB-020 – Joint fibre 15x21 × 4 u")
    expect(page.locator("main")).to_contain_text("(calculé d'après le début, la fin et les suspensions des travaux")
    screens.check("materials-02-report-saved-phone")
    report = InterventionReport.objects.get()
    assert report.time_on_site_minutes is None and report.materials.count() == 3

    services.finish_work(started, actor=technician)
    page = desktop
    screens = Screens(page, screenshots)
    sign_in(page, live_server, supervisor, f"/pilotage/commandes/{started.pk}/")
    expect(page.locator("dl.facts").first).to_contain_text("1 h 35 (début, fin et suspensions)")
    supplies = page.locator("#fournitures")
    expect(supplies).to_contain_text("3 à reprendre")
    expect(supplies).to_contain_text("12,80")
    expect(supplies).to_contain_text("74,20")  # 48.50 + 12.80 + 12.90
    expect(page.locator("#devis")).to_contain_text("Devis avec les fournitures des rapports (3)")
    supplies.scroll_into_view_if_needed()
    screens.check("materials-03-supervisor-desktop")
    supplies.get_by_role("button", name="Ajouter aux lignes de la commande (3)").click()
    expect(page.locator("#lignes")).to_contain_text("PLB-031")
    expect(supplies).to_contain_text("0 à reprendre")
    expect(supplies).to_contain_text("Ligne PLB-020 de la commande")
    screens.check("materials-04-added-to-the-lines")
    assert {material.destination for material in report.materials.all()} == {MaterialDestination.ORDER}
    assert started.lines.filter(reference="PLB-020", done=True, unit_price=Decimal("3.20")).exists()


def test_supplies_in_a_quote_the_manager_refuses_come_back_to_the_supervisor(
    live_server,
    platform,
    connection,
    order,
    contract,
    price_item,
    technician,
    supervisor,
    desktop,
    browser,
    screenshots,
):
    call_command(
        "sandbox_setup",
        f"--client-id={SANDBOX_CLIENT_ID}",
        f"--client-secret={SANDBOX_CLIENT_SECRET}",
        f"--webhook-url={live_server.url}{connection.webhook_path}",
        stdout=io.StringIO(),
    )
    joints = factories.make_price_item(contract, code="PLB-020", label="Joint fibre 15x21", unit_price=Decimal("3.20"))
    started = factories.bring_to(order, State.IN_PROGRESS, technician)
    report = reports.submit_report(
        started,
        actor=technician,
        works_done="Siphon remplacé, joints refaits",
        time_on_site_minutes=40,
        signature_status="absent",
        materials=[MaterialUse(price_item, Decimal(1)), MaterialUse(joints, Decimal(4))],
    )
    assert set(drain()) == {"delivered"}

    page = desktop
    screens = Screens(page, screenshots)
    sign_in(page, live_server, supervisor, f"/pilotage/commandes/{started.pk}/")
    page.locator("#devis").get_by_role("button", name="Devis avec les fournitures des rapports (2)").click()
    quote = Quote.objects.get()
    expect(page).to_have_url(f"{live_server.url}/pilotage/devis/{quote.pk}/")
    page.get_by_role("button", name="Envoyer le devis").click()
    expect(page.locator("#quote-pdf")).to_contain_text("PDF en cours de production")
    page.goto("about:blank")  # SQLite's one connection: the browser away while the relay delivers
    assert "delivered" in drain()

    # The manager refuses it on the platform; the webhook is applied as the worker would.
    manager = browser.new_context(viewport={"width": 1440, "height": 900}, locale="fr-FR")
    sandbox_page = manager.new_page()
    sandbox_page.goto(f"{live_server.url}/sandbox/")
    sandbox_page.locator(f"[data-refuse='{quote.number}']").click()
    expect(sandbox_page.locator(".message")).to_contain_text("refusé")
    manager.close()
    notification = InboundNotification.objects.get(status=NotificationStatus.RECEIVED)
    assert inbound.process_notification(notification.pk) == NotificationStatus.PROCESSED
    quote.refresh_from_db()
    assert quote.state == QuoteState.REFUSED

    page.goto(f"{live_server.url}/pilotage/commandes/{started.pk}/")
    supplies = page.locator("#fournitures")
    expect(supplies).to_contain_text("2 à reprendre")
    expect(page.locator("body")).to_contain_text(
        f"Fournitures revenues à reprendre après le refus du devis {quote.number}"
    )
    supplies.scroll_into_view_if_needed()
    screens.check("materials-05-back-after-refusal")
    supplies.get_by_role("button", name="Ajouter aux lignes de la commande (2)").click()
    expect(supplies).to_contain_text("0 à reprendre")
    assert {material.destination for material in report.materials.all()} == {MaterialDestination.ORDER}
