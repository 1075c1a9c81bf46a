"""A technician's day on one order, in a phone's browser against the live
server (sandbox included): sign in, acknowledge, plan, start, tick the lines,
set the progress, write the report with a photo and a signature, get its PDF,
finish. Then the relay delivers, and the platform has every change once, in
order, and the PDF.

Each screen is saved full-page in E2E_SCREENSHOTS (artifacts/screenshots by
default), and checked for a horizontal scroll and console errors."""

from __future__ import annotations

from datetime import timedelta
from http import HTTPStatus
from pathlib import Path

import httpx
import pytest
from django.utils import timezone
from PIL import Image, ImageDraw
from playwright.sync_api import Page, expect

from orders.models import InterventionReport, PdfStatus
from orders.tasks import render_report_pdf
from portal import moments
from portal.relay import intent
from portal.relay.models import Connection, MessageKind, MessageStatus
from tests.conftest import PARIS, PASSWORD
from tests.e2e.helpers import Screens, drain

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("database_before_the_live_server")]


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    # The live server runs in this process: it stores the photos and PDF here too.
    settings.MEDIA_ROOT = tmp_path / "media"


def photo_jpeg(path: Path) -> Path:
    image = Image.new("RGB", (1600, 1200), (200, 120, 40))
    ImageDraw.Draw(image).rectangle((0, 0, 800, 600), fill=(30, 60, 200))
    image.save(path, "JPEG", quality=85)
    return path


def draw_signature(page: Page) -> None:
    """One stroke with the mouse, one with a finger (touch events through the DevTools protocol)."""
    canvas = page.locator("canvas.signature-canvas")
    expect(canvas).to_be_visible()
    box = canvas.bounding_box()
    assert box is not None
    left, top, width, height = box["x"], box["y"], box["width"], box["height"]

    page.mouse.move(left + width * 0.1, top + height * 0.7)
    page.mouse.down()
    for step in range(1, 21):
        page.mouse.move(left + width * (0.1 + 0.02 * step), top + height * (0.7 - 0.025 * step))
    page.mouse.up()

    touch = page.context.new_cdp_session(page)
    points = [(left + width * (0.5 + 0.02 * step), top + height * (0.3 + 0.02 * step)) for step in range(20)]
    touch.send(
        "Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": points[0][0], "y": points[0][1]}]}
    )
    for x, y in points[1:]:
        touch.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
    touch.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    touch.detach()


def test_a_technician_goes_through_a_day_on_one_order_from_a_phone_and_the_platform_gets_it_all(
    live_server, platform, connection, order, technician, phone, screenshots, tmp_path
):
    page = phone
    screens = Screens(page, screenshots)
    page.on("dialog", lambda dialog: dialog.accept())  # "Terminer les travaux ?"
    base = live_server.url
    reference = order.reference

    # Signing in through the login page.
    page.goto(f"{base}/")
    expect(page).to_have_url(f"{base}/connexion/?next=/")
    screens.check("00-login")
    page.get_by_label("Identifiant").fill(technician.username)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    expect(page).to_have_url(f"{base}/mes-commandes/")

    # My orders, then the order.
    # On a phone the "Mes commandes" link is hidden by design: the brand leads there.
    expect(page.get_by_role("link", name="Mes commandes")).to_be_hidden()
    page.get_by_role("link", name="Portail prestataire").click()
    expect(page).to_have_url(f"{base}/mes-commandes/")
    expect(page.locator("#order-list")).to_contain_text(reference)
    screens.check("01-my-orders")
    page.locator("a.order-card", has_text=reference).click()
    expect(page).to_have_url(f"{base}/commandes/{order.pk}/")
    expect(page.locator("h1")).to_have_text(reference)
    screens.check("02-order")

    panel = page.locator("#order-panel")
    page.locator(".action-bar").get_by_role("button", name="Prendre en compte").click()
    expect(panel).to_contain_text("Commande prise en compte")
    screens.check("03-acknowledged")

    # The appointment: tomorrow at 14:30, Paris time.
    tomorrow = (timezone.now().astimezone(PARIS) + timedelta(days=1)).date()
    plan = page.locator("#action-plan")
    if plan.get_attribute("open") is None:
        plan.locator("summary").click()
    plan.locator("input[name=appointment]").fill(f"{tomorrow:%Y-%m-%d}T14:30")
    screens.check("04-appointment-form")
    plan.get_by_role("button", name="Fixer le rendez-vous").click()
    expect(panel).to_contain_text("Rendez-vous fixé le")
    expect(panel.locator(".order-title .badge").first).to_have_text("Planifié")
    screens.check("05-planned")

    page.locator(".action-bar").get_by_role("button", name="Démarrer les travaux").click()
    expect(panel).to_contain_text("Travaux démarrés le")
    screens.check("06-started")

    # Each line done; the panel is swapped after each one.
    toggles = page.locator("button.line-toggle")
    expect(toggles).to_have_count(2)
    for index in range(2):
        toggles.nth(index).click()
        expect(toggles.nth(index)).to_have_attribute("aria-pressed", "true")
    expect(panel.locator("#lines-title")).to_contain_text("2 / 2 réalisées")
    screens.check("07-lines-done")

    page.locator("input[name=progress]").fill("80")
    expect(page.locator("output.range-value")).to_have_text("80 %")
    page.get_by_role("button", name="Enregistrer l'avancement").click()
    expect(panel).to_contain_text("80 %")
    screens.check("08-progress")
    order.refresh_from_db()
    assert order.progress == 80
    assert list(order.lines.values_list("done", flat=True)) == [True, True]

    # The report.
    page.get_by_role("link", name="Saisir le rapport d'intervention").click()
    expect(page).to_have_url(f"{base}/commandes/{order.pk}/rapport/")
    screens.check("09-report-form")
    page.get_by_label("Travaux réalisés").fill("Remplacement du siphon d'évier et essai en eau")
    page.get_by_label("Temps passé sur place (en minutes)").fill("95")
    page.get_by_label("Choisir dans la galerie (après travaux)").set_input_files(photo_jpeg(tmp_path / "apres.jpg"))
    # Shrunk on the phone and sent at once (static/js/report-form.js).
    expect(page.locator("[data-photo-list=after] .photo-state")).to_have_text("Envoyée", timeout=15_000)
    page.get_by_role("radio", name="L'occupant signe").check()
    draw_signature(page)
    signature = page.locator("input[name=signature]").input_value()
    assert signature.startswith("data:image/png;base64,")
    page.get_by_label("Nom du signataire").fill("Claire Martin")
    screens.check("10-report-filled")
    page.get_by_role("button", name="Enregistrer le rapport").click()
    page.wait_for_url(f"{base}/commandes/{order.pk}/rapports/*/")
    report = InterventionReport.objects.get(order=order)
    report_url = f"{base}/commandes/{order.pk}/rapports/{report.pk}/"
    expect(page).to_have_url(report_url)
    expect(page.locator(f"#pdf-status-{report.pk}")).to_contain_text("PDF en cours de production…")
    screens.check("11-report-pending")
    assert (report.signature_status, report.signatory_name, report.photos.count()) == ("signed", "Claire Martin", 1)

    # No worker runs here: the test renders the PDF, the browser away so that
    # nothing polls the server (on SQLite they share one connection) meanwhile.
    page.goto("about:blank")
    assert render_report_pdf(report.pk) == "done"
    report.refresh_from_db()
    assert report.pdf_status == PdfStatus.DONE
    page.goto(report_url)
    expect(page.locator(f"#pdf-status-{report.pk}")).to_contain_text("PDF prêt")
    expect(page.locator(f'a[href="/documents/{report.document_id}/"]')).to_be_visible()
    screens.check("12-report-pdf-ready")

    page.get_by_role("link", name=f"← Commande {reference}").click()
    expect(page.locator("#documents").locator(f'a[href="/documents/{report.document_id}/"]')).to_be_visible()
    screens.check("13-order-with-pdf")

    page.locator(".action-bar").get_by_role("button", name="Terminer les travaux").click()
    expect(panel).to_contain_text("Travaux terminés le")
    expect(page.locator(".action-bar")).to_have_count(0)
    screens.check("14-finished")
    page.close()

    # The relay delivers; the platform has every change once, in order, and the PDF.
    outcomes = drain()
    assert outcomes and set(outcomes) == {"delivered"}, outcomes
    messages = order.outbox_messages.order_by("sequence")
    assert not messages.exclude(status=MessageStatus.DELIVERED).exists()
    sent_logs = [message.payload for message in messages.exclude(kind=MessageKind.DOCUMENT)]
    response = httpx.get(f"{platform}/logs.json", params={"reference": reference})
    assert response.status_code == HTTPStatus.OK
    received = [log for log in response.json()["logs"] if log["source"] == "api"]
    assert [log["raw"] for log in received] == sent_logs
    # Nothing before the acknowledgement (open/requested is the manager's); changes
    # made in the same second as the previous one are merged into its log (« ; »).
    changes = [(log["event"], label.split(" le ")[0]) for log in received for label in log["description"].split(" ; ")]
    assert changes == [
        ("acknowledged", "Commande prise en compte"),
        ("planned", "Rendez-vous fixé"),
        ("start", "Travaux démarrés"),
        ("start", "Ligne L1 réalisée : Recherche de fuite"),
        ("start", "Ligne L2 réalisée : Remplacement du siphon"),
        ("start", "Avancement : 80 %"),
        ("start", "Rapport d'intervention saisi"),
        ("end", "Travaux terminés"),
    ]
    planned = next(log for log in received if log["event"] == "planned")
    assert planned["description"] == f"Rendez-vous fixé le {moments.day(tomorrow)} à 14 h 30"
    # The PDF went between the report's log and the end, as the order's messages say.
    kinds = list(messages.values_list("kind", flat=True))
    assert kinds[-3:] == [MessageKind.INTERVENTION_LOG, MessageKind.DOCUMENT, MessageKind.INTERVENTION_LOG]

    client = intent.IntentClient(Connection.objects.get(pk=connection.pk))
    try:
        documents = client.list_documents("intervention", reference)["_embedded"]["documents"]
    finally:
        client.close()
    report.document.refresh_from_db()
    assert [(document["fileName"], document["contentType"], document["sha256"]) for document in documents] == [
        (report.document.file_name, "application/pdf", report.document.sha256)
    ]
