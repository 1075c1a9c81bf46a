"""The office's month-end invoicing, in a desktop browser against the live
server: the orders to invoice grouped by billing account, one account's orders
ticked and prepared as drafts, issued in one batch (the progress shown while
the worker renders, here run by the test as the worker would), then each
invoice downloaded and read back (PDF/A-3 with its Factur-X XML).

Each screen is saved full-page in E2E_SCREENSHOTS (artifacts/screenshots)."""

from __future__ import annotations

import io

import pytest
from django.utils import timezone
from playwright.sync_api import expect
from pypdf import PdfReader

from invoices import tasks
from invoices.models import Invoice, IssueBatch
from orders.states import State
from tests import factories
from tests import invoicing_cast as cast
from tests.conftest import PASSWORD
from tests.e2e.helpers import Screens

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("database_before_the_live_server")]


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def test_the_office_issues_the_month_s_invoices_of_one_billing_account_and_downloads_them(
    live_server, office, client_org, contract, desktop, screenshots
):
    cast.make_issuer()
    cast.make_billing(contract)
    ours = [cast.finished_order(contract, f"OPH57_2611{n:02d}") for n in (3, 7, 12)]
    other_contract = factories.make_contract(
        factories.make_client(name="Foncière Lorraine Gestion"), reference="FLG-24"
    )
    cast.make_billing(other_contract, reference="FLG-FACT", label="Foncière Lorraine – fournisseurs")
    theirs = cast.finished_order(other_contract, "FLG-0042")
    page = desktop
    screens = Screens(page, screenshots)
    base = live_server.url

    page.goto(f"{base}/bureau/factures/")
    page.get_by_label("Identifiant").fill(office.username)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    expect(page.locator("h1")).to_have_text("Factures")
    account = page.locator("fieldset", has_text="Service comptabilité fournisseurs")
    expect(account.locator("tbody tr")).to_have_count(3)
    expect(page.locator("fieldset", has_text="Foncière Lorraine – fournisseurs")).to_contain_text(theirs.reference)
    screens.check("invoices-1-to-invoice")

    for order in ours:
        account.get_by_label(order.reference).check()
    page.get_by_label("Une facture par commande").check()
    page.get_by_role("button", name="Préparer les factures").click()
    expect(page.locator(".messages")).to_contain_text("3 brouillon(s)")
    expect(page.locator("#drafts tbody tr")).to_have_count(3)
    screens.check("invoices-2-drafts")

    page.get_by_role("button", name="Émettre les brouillons cochés").click()
    expect(page.locator("h1")).to_have_text("Émission des factures")
    expect(page.get_by_role("status")).to_contain_text("Émission en cours : 0 sur 3")
    screens.check("invoices-3-batch-running")
    tasks.run_batch(IssueBatch.objects.get().pk)  # the worker's part
    expect(page.get_by_role("status")).to_contain_text("Émission terminée : 3 facture(s) émise(s) sur 3")
    screens.check("invoices-4-batch-done")

    year = timezone.localdate().year
    numbers = [f"F{year}-{rank:04d}" for rank in (1, 2, 3)]
    for number in numbers:
        with page.expect_download() as info:
            page.get_by_role("link", name=f"Télécharger {number}").click()
        download = info.value
        assert download.suggested_filename == f"Facture-{number}.pdf"
        target = screenshots / f"invoices-{number}.pdf"
        download.save_as(target)
        reader = PdfReader(io.BytesIO(target.read_bytes()))
        assert "factur-x.xml" in reader.attachments
        assert number in reader.pages[0].extract_text()
    assert {o.state for o in contract.orders.all()} == {State.INVOICED}
    theirs.refresh_from_db()
    assert theirs.state == State.FINISHED
    assert sorted(Invoice.objects.values_list("number", flat=True)) == numbers

    page.goto(f"{base}/bureau/factures/")
    expect(page.locator("#issued tbody tr")).to_have_count(3)
    expect(page.locator("#to-invoice")).not_to_contain_text("OPH57_")
    screens.check("invoices-5-issued")

    page.get_by_role("link", name=f"Facture {numbers[0]}", exact=True).click()
    expect(page.locator("h1")).to_have_text(f"Facture {numbers[0]}")
    screens.check("invoices-6-detail")
    page.goto(f"{base}/bureau/factures/{Invoice.objects.get(number=numbers[0]).pk}/apercu/")
    expect(page.locator(".reference")).to_have_text(f"N° {numbers[0]}")
    screens.check("invoices-7-preview")
