"""The office's invoicing pages through the Django test client: outsiders get
404; orders to invoice by billing account; drafts made, issued in a batch (its
progress), downloaded; a credit note; the month's CSV and zip; the receipt, a
partial payment, the overdue list and the claim letter; the admin read-only."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import timedelta
from decimal import Decimal
from http import HTTPStatus

import pytest
from django.utils import timezone
from pypdf import PdfReader

from invoices import services, tasks
from invoices.models import EcbRate, Invoice, IssueBatch, Receipt
from orders.states import State
from portal.models import Role
from tests import invoicing_cast as cast
from tests.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def billing(contract):
    cast.make_issuer()
    return cast.make_billing(contract)


@pytest.fixture
def signed_in(client, office):
    client.force_login(office)
    return client


@pytest.fixture
def issued(billing, contract, office):
    draft = services.create_draft([cast.finished_order(contract, "BC-100")], actor=office)
    return services.issue(draft, actor=office)


def text(response) -> str:
    assert response.status_code == HTTPStatus.OK, response.status_code
    return response.content.decode()


def test_outsiders_get_404_on_every_invoice_page(client, issued, technician):
    base = f"/bureau/factures/{issued.pk}/"
    for person in (technician, make_user("x", Role.TECHNICIAN)):
        client.force_login(person)
        for url in (
            "/bureau/factures/",
            base,
            base + "apercu/",
            base + "pdf/",
            base + "reclamation.pdf",
            "/bureau/factures/export/?year=2026&month=1",
            "/bureau/factures/emission/1/",
        ):
            assert client.get(url).status_code == HTTPStatus.NOT_FOUND, url
        for url in (
            "/bureau/factures/brouillons/",
            "/bureau/factures/emettre/",
            base + "emettre/",
            base + "avoir/",
            base + "reception/",
            base + "paiement/",
            base + "supprimer/",
        ):
            assert client.post(url).status_code == HTTPStatus.NOT_FOUND, url
    client.logout()
    assert client.get("/bureau/factures/").url.startswith("/connexion/")


def test_the_office_issues_the_month_s_invoices_of_a_billing_account_and_downloads_them(
    signed_in, billing, contract, supervisor
):
    orders = [cast.finished_order(contract, f"BC-{n}") for n in (1, 2, 3)]
    page = text(signed_in.get("/bureau/factures/"))
    assert "Service comptabilité fournisseurs" in page and all(order.reference in page for order in orders)
    response = signed_in.post(
        "/bureau/factures/brouillons/", {"order": [o.pk for o in orders], "grouping": "each"}, follow=True
    )
    assert "3 brouillon(s)" in text(response)
    drafts = list(Invoice.objects.filter(state="draft").values_list("pk", flat=True))
    preview = text(signed_in.get(f"/bureau/factures/{drafts[0]}/apercu/"))
    assert "brouillon, sans numéro" in preview and "UL1AVECEJ" in preview and "<style nonce=" in preview
    assert "telle qu'elle sera imprimée" in text(signed_in.get(f"/bureau/factures/{drafts[0]}/"))
    response = signed_in.post("/bureau/factures/emettre/", {"invoice": drafts})
    batch = IssueBatch.objects.get()
    assert response.url == f"/bureau/factures/emission/{batch.pk}/"
    assert "Émission en cours : 0 sur 3" in text(signed_in.get(response.url))
    tasks.run_batch(batch.pk)  # what the worker does
    page = text(signed_in.get(response.url, headers={"HX-Request": "true"}))
    assert "Émission terminée : 3 facture(s) émise(s) sur 3" in page
    year = timezone.localdate().year
    for rank, invoice in enumerate(Invoice.objects.order_by("number"), start=1):
        assert invoice.number == f"F{year}-{rank:04d}"
        download = signed_in.get(f"/bureau/factures/{invoice.pk}/pdf/")
        assert download["Content-Disposition"] == f'attachment; filename="Facture-{invoice.number}.pdf"'
        content = b"".join(download.streaming_content)
        assert "factur-x.xml" in PdfReader(io.BytesIO(content)).attachments
    assert {o.state for o in contract.orders.all()} == {State.INVOICED}
    # The month's export: a CSV row per invoice with totals per rate, and a zip with the PDFs.
    today = timezone.localdate()
    response = signed_in.get(f"/bureau/factures/export/?year={today.year}&month={today.month}&format=csv")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig")), delimiter=";"))
    assert len(rows) == 4 and rows[1][1] == f"F{year}-0001"
    header = rows[0]
    assert rows[1][header.index("Base HT 20 %")] == "95,00" and rows[1][header.index("TVA 5,5 %")] == "15,93"
    assert rows[1][header.index("Total TTC")] == "525,93"
    response = signed_in.get(f"/bureau/factures/export/?year={today.year}&month={today.month}&format=zip")
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert sorted(archive.namelist()) == sorted(
        [f"factures-{today.year}-{today.month:02d}.csv"] + [f"F{year}-{rank:04d}.pdf" for rank in (1, 2, 3)]
    )
    assert "Choisissez un mois valide" in text(signed_in.get("/bureau/factures/export/?year=x&month=13", follow=True))


def test_a_refused_issue_shows_its_reason_in_french(signed_in, billing, contract, office):
    draft = services.create_draft([cast.finished_order(contract, "BC-7")], actor=office)
    billing.service_code = ""
    billing.save()
    page = text(signed_in.get(f"/bureau/factures/{draft.pk}/"))
    assert "code service" in page
    response = signed_in.post(f"/bureau/factures/{draft.pk}/emettre/", follow=True)
    assert "Facture incomplète" in text(response) and Invoice.objects.get(pk=draft.pk).number == ""


def test_a_credit_note_receipt_payment_and_claim_letter(signed_in, issued):
    base = f"/bureau/factures/{issued.pk}/"
    response = signed_in.post(
        base + "avoir/",
        {"reason": "Erreur de quantité", "scope": "partial", f"line-{issued.lines.first().pk}": "1"},
        follow=True,
    )
    note = Invoice.objects.get(kind="credit_note")
    assert response.redirect_chain[-1][0] == f"/bureau/factures/{note.pk}/"
    signed_in.post(f"/bureau/factures/{note.pk}/emettre/")
    assert Invoice.objects.get(pk=note.pk).total_incl_vat == Decimal("114.00")  # 95.00 + 20 %
    assert "saisissez un nombre" in text(
        signed_in.post(
            base + "avoir/", {"reason": "x", "scope": "partial", f"line-{issued.lines.first().pk}": "abc"}, follow=True
        )
    )
    today = timezone.localdate()
    EcbRate.objects.create(valid_from=today.replace(month=1, day=1) - timedelta(days=400), rate=Decimal("2.00"))
    # Received today; to see a late payment, the receipt is moved back (the office's correction).
    signed_in.post(base + "reception/", {"received_on": today.isoformat()})
    Receipt.objects.filter(invoice=issued).update(received_on=today - timedelta(days=45))
    Invoice.objects.filter(pk=issued.pk)  # untouched: the receipt is its own row
    response = signed_in.post(base + "paiement/", {"paid_on": today.isoformat(), "amount": "100,00"}, follow=True)
    assert "Paiement enregistré" in text(response)
    assert "Le montant doit être" in text(
        signed_in.post(base + "paiement/", {"paid_on": today.isoformat(), "amount": "-3"}, follow=True)
    )
    assert "saisissez une date" in text(
        signed_in.post(base + "paiement/", {"paid_on": "hier", "amount": "3"}, follow=True)
    )
    page = text(signed_in.get(base))
    assert "Lettre de réclamation" in page
    overview = text(signed_in.get("/bureau/factures/"))
    assert issued.number in overview.split("Paiements en retard")[1]
    letter = signed_in.get(base + "reclamation.pdf")
    assert letter["Content-Type"] == "application/pdf"
    content = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(letter.content)).pages)
    assert "intérêts moratoires" in content and "40,00" in content


def test_the_admin_shows_an_issued_invoice_read_only(client, office, issued):
    client.force_login(office)
    url = f"/admin/invoices/invoice/{issued.pk}/change/"
    page = text(client.get(url))
    assert issued.number in page and 'name="total_incl_vat"' not in page
    response = client.post(url, {"total_incl_vat": "1.00"})
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert (
        client.post(f"/admin/invoices/invoice/{issued.pk}/delete/", {"post": "yes"}).status_code == HTTPStatus.FORBIDDEN
    )
    assert Invoice.objects.get(pk=issued.pk).total_incl_vat == Decimal("525.93")


def test_the_overview_shows_the_orders_to_invoice_the_overdue_invoices_and_the_interest_owed(
    client, supervisor, issued, contract, office
):
    from invoices import payments

    cast.finished_order(contract, "BC-101")
    EcbRate.objects.create(valid_from=timezone.localdate() - timedelta(days=800), rate=Decimal("2.00"))
    payments.record_receipt(issued, received_on=timezone.localdate(), actor=office)
    Receipt.objects.filter(invoice=issued).update(received_on=timezone.localdate() - timedelta(days=40))
    client.force_login(supervisor)
    assert 'data-hx-get="/bureau/factures/pilotage/"' in text(client.get("/pilotage/"))
    panel = text(client.get("/bureau/factures/pilotage/"))
    assert "1 commande à facturer" in panel
    assert "1 facture en retard de paiement (525,93" in panel
    # 525.93 × 10 % × 10 / 365 = 1.44 € of interest, and the 40 € indemnity.
    assert "41,44" in panel and issued.number in panel
