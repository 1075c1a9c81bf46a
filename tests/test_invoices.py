"""Invoices through their services: the §10.3 mentions checked before issue,
the gap-free numbering, the Factur-X PDF/A-3 read back (factur-x and pypdf),
totals equal to the pricing module's to the cent, immutability once issued,
credit notes, and the late-payment interest on hand-computed cases."""

from __future__ import annotations

import io
import threading
from datetime import date, timedelta
from decimal import Decimal

import facturx
import pytest
from django.db import IntegrityError, transaction
from django.db import connection as db_connection
from django.utils import timezone
from lxml import etree
from pypdf import PdfReader

from invoices import interest, payments, services
from invoices.models import ContractInvoicing, Frozen, Invoice, InvoiceLine, InvoiceNumber, IssuerDetails
from orders.states import State
from portal.errors import Refused
from portal.models import Company
from quotes import pricing
from tests import invoicing_cast as cast

pytestmark = pytest.mark.django_db

CII = {"ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"}


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def billing(contract):
    cast.make_issuer()
    return cast.make_billing(contract)


@pytest.fixture
def draft(billing, contract, office):
    return services.create_draft([cast.finished_order(contract, "BC-2026-001")], actor=office)


def year() -> int:
    return timezone.localdate().year


def pdf_bytes(invoice: Invoice) -> bytes:
    with invoice.pdf_file.open("rb") as stream:
        return stream.read()


# --- The mentions of §10.3 -------------------------------------------------------------


def _no_company_vat(**_):
    Company.objects.update(vat_number="")


MISSING = {
    "code service": (
        lambda contract: contract.billing_account.__class__.objects.update(service_code=""),
        "code service",
    ),
    "EJ": (lambda contract: ContractInvoicing.objects.update(commitment_number=""), "numéro d'engagement (EJ)"),
    "buyer SIRET": (
        lambda contract: (
            contract.billing_account.__class__.objects.update(siret=""),
            contract.client.__class__.objects.update(siret=""),
        ),
        "SIRET du destinataire",
    ),
    "seller VAT": (lambda contract: Company.objects.update(vat_number=""), "TVA intracommunautaire"),
    "seller address": (
        lambda contract: Company.objects.update(address="", postcode="", city=""),
        "adresse de l'entreprise",
    ),
    "buyer address": (
        lambda contract: (
            contract.billing_account.__class__.objects.update(address="", postcode="", city=""),
            contract.client.__class__.objects.update(address="", postcode="", city=""),
        ),
        "adresse du destinataire",
    ),
    "IBAN": (lambda contract: IssuerDetails.objects.update(iban=""), "IBAN"),
    "BIC": (lambda contract: IssuerDetails.objects.update(bic=""), "BIC"),
    "legal form": (lambda contract: IssuerDetails.objects.update(legal_form=""), "forme juridique"),
    "capital": (lambda contract: IssuerDetails.objects.update(share_capital=None), "capital social"),
    "RCS": (lambda contract: IssuerDetails.objects.update(registration=""), "RCS ou RM"),
    "execution date": (
        lambda contract: contract.orders.update(actual_end=None, actual_start=None),
        "6° la date d'exécution des prestations",
    ),
    "unit price": (
        lambda contract: contract.orders.first().lines.filter(position=1).update(unit_price=Decimal(0)),
        "8° le prix unitaire hors taxes manque (ligne « Dépannage chaudière",
    ),
}


@pytest.mark.parametrize("mention", list(MISSING))
def test_each_missing_mention_is_refused_with_its_message_and_consumes_no_number(mention, draft, contract, office):
    remove, message = MISSING[mention]
    remove(contract)
    with pytest.raises(Refused) as refused:
        services.issue(draft, actor=office)
    assert message in str(refused.value)
    draft.refresh_from_db()
    assert draft.number == ""
    assert not InvoiceNumber.objects.filter(last__gt=0).exists()


def test_a_complete_draft_lacks_nothing_and_gets_the_first_number_of_the_year(draft, office):
    assert services.check(draft) == []
    invoice = services.issue(draft, actor=office)
    assert invoice.number == f"F{year()}-0001"
    assert invoice.issue_date == timezone.localdate()
    assert invoice.order_numbers == "BC-2026-001"
    assert (invoice.service_code, invoice.commitment_number, invoice.buyer_siret) == (
        "UL1AVECEJ",
        "4500123456",
        "26570013000013",
    )


def test_a_failed_issue_after_the_number_was_taken_gives_it_back(draft, contract, office):
    # An invoice typed in before the portal holds the number the draft would take.
    legacy = Invoice(contract=contract, billing_account=contract.billing_account)
    legacy.save()
    Invoice.objects.filter(pk=legacy.pk).update(
        state="issued", number=f"F{year()}-0001", issue_date=timezone.localdate(), pdf_file="legacy.pdf"
    )
    with pytest.raises(Refused, match="aucun numéro n'a été consommé"):
        services.issue(draft, actor=office)
    assert not InvoiceNumber.objects.filter(series="F", last__gt=0).exists()
    assert Invoice.objects.get(pk=draft.pk).state == "draft"
    assert contract.orders.get().state == State.FINISHED


# --- Factur-X -----------------------------------------------------------------------


def test_the_facturx_pdf_is_pdfa3_with_the_xml_attached_valid_and_its_totals_are_pricing_s(draft, office):
    invoice = services.issue(draft, actor=office)
    content = pdf_bytes(invoice)
    # factur-x finds the XML, and the XML validates against the EN 16931 schema.
    name, xml = facturx.get_facturx_xml_from_pdf(content, check_xsd=True)
    assert name == "factur-x.xml"
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931") is True
    assert facturx.get_level(etree.fromstring(xml)) == "en16931"
    # pypdf reads the same attachment back, and the XMP metadata says PDF/A-3.
    reader = PdfReader(io.BytesIO(content))
    assert reader.attachments["factur-x.xml"] == [xml]
    metadata = reader.trailer["/Root"]["/Metadata"].get_object().get_data().decode()
    assert "<pdfaid:part>3</pdfaid:part>" in metadata
    assert "fx:ConformanceLevel" in metadata and "EN 16931" in metadata
    # The amounts: the pricing module's, to the cent, in the XML, the model and the PDF's text.
    expected = pricing.totals(pricing.Line(q, p, r) for _, q, _, p, r in cast.MIXED_LINES)
    assert expected.total_excl_vat == Decimal("481.33")  # 95.00 + 96.70 + 289.63 (12.5 × 23.17 = 289.625)
    assert expected.total_incl_vat == Decimal("525.93")  # VAT 19.00 + 9.67 + 15.93 (289.63 × 5.5 % = 15.929)
    assert [(e.rate, e.vat_amount) for e in expected.vat] == [
        (Decimal("20.00"), Decimal("19.00")),
        (Decimal("10.00"), Decimal("9.67")),
        (Decimal("5.50"), Decimal("15.93")),
    ]
    tree = etree.fromstring(xml)
    summation = tree.find(".//ram:SpecifiedTradeSettlementHeaderMonetarySummation", CII)
    assert Decimal(summation.findtext("ram:TaxBasisTotalAmount", namespaces=CII)) == expected.total_excl_vat
    assert Decimal(summation.findtext("ram:TaxTotalAmount", namespaces=CII)) == expected.total_vat
    assert Decimal(summation.findtext("ram:GrandTotalAmount", namespaces=CII)) == expected.total_incl_vat
    taxes = tree.findall(".//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax", CII)
    assert [
        (
            Decimal(t.findtext("ram:RateApplicablePercent", namespaces=CII)),
            Decimal(t.findtext("ram:CalculatedAmount", namespaces=CII)),
        )
        for t in taxes
    ] == [(e.rate, e.vat_amount) for e in expected.vat]
    assert (invoice.total_excl_vat, invoice.total_vat, invoice.total_incl_vat) == (
        expected.total_excl_vat,
        expected.total_vat,
        expected.total_incl_vat,
    )
    assert tree.findtext(".//ram:BuyerReference", namespaces=CII) == "UL1AVECEJ"
    assert tree.findtext(".//ram:BuyerOrderReferencedDocument/ram:IssuerAssignedID", namespaces=CII) == "4500123456"
    text = " ".join(page.extract_text() for page in reader.pages)
    for amount in (expected.total_excl_vat, expected.total_vat, expected.total_incl_vat):
        assert pricing.format_euros(amount).replace("\u202f", " ").replace("\u00a0", " ") in text.replace(
            "\u202f", " "
        ).replace("\u00a0", " ")
    assert invoice.number in text and "UL1AVECEJ" in text and "4500123456" in text


def test_a_partial_credit_note_refers_to_its_invoice_and_its_totals_are_pricing_s(draft, office):
    invoice = services.issue(draft, actor=office)
    siphon = invoice.lines.get(label="Remplacement du siphon")
    insulation = invoice.lines.get(label="Isolation des combles")
    note = services.create_credit_note(
        invoice,
        actor=office,
        reason="Siphon facturé deux fois, surface des combles corrigée",
        quantities={siphon.pk: Decimal(1), insulation.pk: Decimal("2.5")},
    )
    issued = services.issue(note, actor=office)
    assert issued.number == f"A{year()}-0001"
    expected = pricing.totals(
        [
            pricing.Line(Decimal(1), Decimal("48.35"), Decimal("10.00")),
            pricing.Line(Decimal("2.5"), Decimal("23.17"), Decimal("5.50")),
        ]
    )
    assert (issued.total_excl_vat, issued.total_vat, issued.total_incl_vat) == (
        expected.total_excl_vat,
        expected.total_vat,
        expected.total_incl_vat,
    )
    assert issued.total_incl_vat == Decimal(
        "114.31"
    )  # 48.35 + 57.93 = 106.28 HT; VAT 4.84 + 3.19 = 8.03, TTC 114.31 (4.835 → 4.84; 3.186 → 3.19)
    name, xml = facturx.get_facturx_xml_from_pdf(pdf_bytes(issued), check_xsd=True)
    tree = etree.fromstring(xml)
    assert tree.findtext(".//{*}ExchangedDocument/ram:TypeCode", namespaces=CII) == "381"
    assert tree.findtext(".//ram:InvoiceReferencedDocument/ram:IssuerAssignedID", namespaces=CII) == invoice.number
    assert Decimal(tree.findtext(".//ram:GrandTotalAmount", namespaces=CII)) == expected.total_incl_vat
    assert payments.amount_due(invoice) == invoice.total_incl_vat - Decimal("114.31")
    # No more than what is left of the invoice can be credited.
    with pytest.raises(Refused, match="dépasse ce qui reste"):
        services.create_credit_note(invoice, actor=office, reason="Annulation")


# --- Immutability -------------------------------------------------------------------


def test_an_issued_invoice_cannot_be_changed_by_a_raw_save_an_update_or_the_services(draft, office):
    invoice = services.issue(draft, actor=office)
    invoice.total_incl_vat = Decimal("1.00")
    with pytest.raises(Frozen):
        invoice.save()
    with pytest.raises(Frozen):
        invoice.delete()
    line = invoice.lines.first()
    line.unit_price = Decimal("1.00")
    with pytest.raises(Frozen):
        line.save()
    # The database refuses what bypasses the model.
    with pytest.raises(IntegrityError), transaction.atomic():
        Invoice.objects.filter(pk=invoice.pk).update(total_incl_vat=Decimal("1.00"))
    with pytest.raises(IntegrityError), transaction.atomic():
        InvoiceLine.objects.filter(invoice=invoice).update(quantity=Decimal(9))
    with pytest.raises(IntegrityError), transaction.atomic():
        InvoiceLine.objects.bulk_create(
            [InvoiceLine(invoice=invoice, label="Ajout", quantity=1, unit_price=Decimal(1), vat_rate=Decimal(20))]
        )
    with pytest.raises(Refused, match="déjà émise"):
        services.issue(invoice, actor=office)
    with pytest.raises(Refused, match="ne se supprime pas"):
        services.discard_draft(invoice, actor=office)
    fresh = Invoice.objects.get(pk=invoice.pk)
    assert fresh.total_incl_vat == Decimal("525.93") and fresh.lines.count() == 3


def test_later_edits_to_the_order_never_change_the_issued_invoice(draft, contract, office):
    invoice = services.issue(draft, actor=office)
    order = contract.orders.get()
    assert order.state == State.INVOICED
    assert (order.invoice_number, order.invoice_date) == (invoice.number, invoice.issue_date)
    order.lines.update(unit_price=Decimal("999.00"))
    assert Invoice.objects.get(pk=invoice.pk).total_incl_vat == Decimal("525.93")
    assert services.to_invoice().filter(pk=order.pk).count() == 0


def test_a_draft_takes_orders_of_one_billing_account_and_contract_only(billing, contract, client_org, office):
    from tests import factories

    other = factories.make_contract(client_org, reference="AUTRE-2025")
    cast.make_billing(other, reference="FACT-02")
    first = cast.finished_order(contract, "BC-1")
    second = cast.finished_order(other, "BC-2")
    with pytest.raises(Refused, match="un seul compte de facturation"):
        services.create_draft([first, second], actor=office)
    together = services.create_draft([first, cast.finished_order(contract, "BC-3")], actor=office)
    assert together.order_numbers == "BC-1, BC-3"
    with pytest.raises(Refused, match="n'est pas à facturer"):
        services.create_draft([first], actor=office)


# --- Numbering on PostgreSQL -----------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_issues_give_consecutive_numbers_without_gap_or_duplicate(billing, contract, office):
    drafts = [
        services.create_draft(
            [cast.finished_order(contract, f"BC-{index:02d}", lines=cast.MIXED_LINES[:1])], actor=office
        )
        for index in range(12)
    ]
    # One draft is refused at issue (its commitment number removed in between): it takes no number.
    refused = drafts.pop()
    refused.orders.update(actual_end=None, actual_start=None)
    numbers: list[str] = []
    errors: list[str] = []
    barrier = threading.Barrier(4)

    def issue_some(batch: list[Invoice]) -> None:
        try:
            barrier.wait()
            for invoice in batch:
                try:
                    numbers.append(services.issue(invoice, actor=office).number)
                except Refused as error:
                    errors.append(str(error))
        finally:
            db_connection.close()

    batches = [drafts[index::4] for index in range(4)]
    batches[0].append(refused)
    threads = [threading.Thread(target=issue_some, args=(batch,)) for batch in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(errors) == 1 and "date d'exécution" in errors[0]
    assert sorted(numbers) == [f"F{year()}-{rank:04d}" for rank in range(1, 12)]
    # Chronological: the numbers follow the order of issue.
    by_time = list(
        Invoice.objects.filter(state="issued").order_by("issued_at", "number").values_list("number", flat=True)
    )
    assert by_time == sorted(by_time)
    assert InvoiceNumber.objects.get(series="F", year=year()).last == 11


# --- Late payment --------------------------------------------------------------------

RATES = [(date(2024, 12, 18), Decimal("3.15")), (date(2025, 6, 11), Decimal("2.15"))]


def test_a_payment_17_days_late_across_a_half_year_change_keeps_the_rate_of_the_half_year_it_started():
    # Received 26 May 2025: due 25 June; interest runs from 26 June (first half-year:
    # the rate in force on 1 January 2025, 3.15 %, + 8 = 11.15 %) to 12 July inclusive, 17 days.
    result = interest.situation(
        Decimal("1200.00"),
        received_on=date(2025, 5, 26),
        payment_days=30,
        payments=[(date(2025, 7, 12), Decimal("1200.00"))],
        today=date(2025, 8, 1),
        rates=RATES,
    )
    assert result.due_on == date(2025, 6, 25)
    [late] = result.late
    assert (late.start, late.days, late.rate) == (date(2025, 6, 26), 17, Decimal("11.15"))
    # 1200 × 11.15 % × 17 / 365 = 6.2317… → 6.23 €
    assert late.interest == Decimal("6.23")
    assert result.indemnity == Decimal("40.00")
    assert result.owed == Decimal("46.23")
    assert not result.overdue


def test_a_partial_payment_stops_the_interest_on_its_own_amount_only():
    # 1000 € received 1 September 2025, due 1 October; 400 € paid on time, 600 € on
    # 31 October: 30 days late at 2.15 + 8 = 10.15 % (rate in force on 1 July 2025).
    payments_made = [(date(2025, 9, 20), Decimal("400.00")), (date(2025, 10, 31), Decimal("600.00"))]
    result = interest.situation(
        Decimal("1000.00"),
        received_on=date(2025, 9, 1),
        payment_days=30,
        payments=payments_made,
        today=date(2025, 11, 15),
        rates=RATES,
    )
    [late] = result.late
    assert (late.amount, late.days, late.rate) == (Decimal("600.00"), 30, Decimal("10.15"))
    assert late.interest == Decimal("5.01")  # 600 × 10.15 % × 30 / 365 = 5.0055 → 5.01
    assert result.owed == Decimal("45.01")
    # Halfway: on 15 October, 600 € still due for 14 days: 2.3359 → 2.34 €, overdue.
    halfway = interest.situation(
        Decimal("1000.00"),
        received_on=date(2025, 9, 1),
        payment_days=30,
        payments=payments_made[:1],
        today=date(2025, 10, 15),
        rates=RATES,
    )
    assert halfway.overdue and halfway.outstanding == Decimal("600.00")
    assert halfway.interest == Decimal("2.34") and halfway.indemnity == Decimal("40.00")


def test_without_the_half_year_s_rate_the_indemnity_is_still_owed():
    result = interest.situation(
        Decimal("500.00"),
        received_on=date(2025, 3, 3),
        payment_days=30,
        payments=[(date(2025, 4, 10), Decimal("500.00"))],
        today=date(2025, 5, 1),
        rates=[],
    )
    assert result.rate is None and result.interest == Decimal("0.00") and result.indemnity == Decimal("40.00")


def test_paid_on_time_owes_nothing():
    result = interest.situation(
        Decimal("500.00"),
        received_on=date(2025, 3, 3),
        payment_days=30,
        payments=[(date(2025, 4, 2), Decimal("500.00"))],
        today=date(2025, 5, 1),
        rates=RATES,
    )
    assert result.late == () and result.owed == Decimal("0.00") and not result.overdue


def test_the_office_records_receipt_and_payments_and_the_follow_up_shows_the_interest(draft, office):
    from invoices.models import EcbRate

    EcbRate.objects.create(valid_from=date(2020, 1, 1), rate=Decimal("2.00"))
    invoice = services.issue(draft, actor=office)
    today = timezone.localdate()
    with pytest.raises(Refused, match="avant son émission"):
        payments.record_receipt(invoice, received_on=today - timedelta(days=1), actor=office)
    payments.record_receipt(invoice, received_on=today, actor=office)
    payments.record_payment(invoice, paid_on=today, amount=Decimal("100.00"), actor=office)
    with pytest.raises(Refused, match="dépasse le reste dû"):
        payments.record_payment(invoice, paid_on=today, amount=Decimal("500.00"), actor=office)
    situation = payments.situation(invoice, today=today + timedelta(days=40))
    assert situation.outstanding == Decimal("425.93") and situation.overdue
    # 425.93 × 10 % × 10 / 365 = 1.1669 → 1.17
    assert situation.interest == Decimal("1.17") and situation.indemnity == Decimal("40.00")
    [(found, _)] = payments.follow_up(today=today + timedelta(days=40))
    assert found == invoice
