"""Finishing means finished (issue 16, item 4), on a phone: the progress
follows the lines as they are ticked, « Terminer les travaux » says what is
missing before it is confirmed, and the report's PDF is rendered again when
the works end, with their end and the lines done with their quantities."""

from __future__ import annotations

import io

import pytest
from django.utils import timezone
from playwright.sync_api import expect
from pypdf import PdfReader

from orders import reports
from orders.models import InterventionReport, PdfStatus
from orders.states import State
from orders.tasks import render_report_pdf
from tests import factories
from tests.conftest import PASSWORD
from tests.e2e.helpers import Screens

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("database_before_the_live_server")]


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def pdf_text(document) -> str:
    with document.file.open("rb") as stream:
        reader = PdfReader(io.BytesIO(stream.read()))
    return " ".join(" ".join(page.extract_text().split()) for page in reader.pages)


def test_finishing_says_what_is_missing_and_the_pdf_follows_the_end(live_server, order, technician, phone, screenshots):
    started = factories.bring_to(order, State.IN_PROGRESS, technician)
    page = phone
    screens = Screens(page, screenshots)
    questions: list[str] = []

    def answer(dialog) -> None:
        questions.append(dialog.message)
        # The first time, with everything missing, the technician goes back to work.
        dialog.dismiss() if len(questions) == 1 else dialog.accept()

    page.on("dialog", answer)
    page.goto(f"{live_server.url}/connexion/?next=/commandes/{order.pk}/")
    page.get_by_label("Identifiant").fill(technician.username)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    panel = page.locator("#order-panel")
    expect(panel.locator("output.range-value")).to_have_text("0 %")

    # Finishing right after the start: what is missing, and nothing happens when refused.
    page.locator(".action-bar").get_by_role("button", name="Terminer les travaux").click()
    expect(panel.locator(".order-title .badge").first).to_have_text("En cours")
    assert questions == [
        "Attention : 2 lignes sur 2 ne sont pas réalisées (L1 Recherche de fuite, L2 Remplacement du siphon) "
        "et aucun rapport d'intervention n'est saisi. Terminer quand même les travaux ? "
        "La commande passera à « Terminé » et le client en sera informé."
    ]

    # The progress follows the lines.
    toggles = page.locator("button.line-toggle")
    toggles.nth(0).click()
    expect(toggles.nth(0)).to_have_attribute("aria-pressed", "true")
    expect(panel.locator("output.range-value")).to_have_text("50 %")
    expect(panel.locator("input[name=progress]")).to_have_value("50")
    screens.check("finish-01-one-line-done")
    toggles.nth(1).click()
    expect(toggles.nth(1)).to_have_attribute("aria-pressed", "true")
    expect(panel.locator("output.range-value")).to_have_text("100 %")
    started.refresh_from_db()
    assert started.progress == 100

    # A report, its PDF rendered before the end (no worker runs here).
    report = reports.submit_report(
        started,
        actor=technician,
        works_done="Siphon remplacé, essai en eau concluant",
        time_on_site_minutes=45,
        signature_status="absent",
    )
    page.goto("about:blank")
    assert render_report_pdf(report.pk) == "done"
    report.refresh_from_db()
    first_pdf = report.document
    assert "Fin des travaux —" in pdf_text(first_pdf)

    page.goto(f"{live_server.url}/commandes/{order.pk}/")
    expect(panel.locator("#lines-title")).to_contain_text("2 / 2 réalisées")
    screens.check("finish-02-ready")
    page.locator(".action-bar").get_by_role("button", name="Terminer les travaux").click()
    expect(panel).to_contain_text("Travaux terminés le")
    assert questions[1] == "Terminer les travaux ? La commande passera à « Terminé » et le client en sera informé."
    screens.check("finish-03-finished")

    # The PDF is asked again at the end, and shows it.
    report.refresh_from_db()
    assert report.pdf_status == PdfStatus.PENDING
    page.goto("about:blank")
    assert render_report_pdf(report.pk) == "done"
    report = InterventionReport.objects.select_related("document", "order").get(pk=report.pk)
    assert report.document_id != first_pdf.pk
    assert report.document.title.endswith("(mis à jour à la fin des travaux)")
    text = pdf_text(report.document)
    end = timezone.localtime(report.order.actual_end)
    assert f"Fin des travaux {end.day} " in text and f"{end:%H:%M}" in text
    assert "Prestations de la commande" in text
    assert f"L1 Recherche de fuite 1 u Oui, le {end.day} " in text and "L2 Remplacement du siphon 1 u Oui, le" in text
    assert text.count("Oui, le") == 2
