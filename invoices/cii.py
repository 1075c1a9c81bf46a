"""The invoice as EN 16931 CII XML (Factur-X profile EN 16931), built with
drafthorse from the invoice as issued (its lines, totals and frozen parties).

Where the public buyer's references go (as Chorus Pro reads them):
- BT-10 buyer reference: the paying service's code (*code service*);
- BT-13 purchase order reference: the commitment number (*numéro d'engagement*, EJ);
- BT-12 contract reference: the contract (*marché*);
- BT-17 / line notes: the orders (*bons de commande*) each line comes from;
- BT-30 / BT-47 legal registration: SIRET, scheme 0009; BT-31 VAT number;
- BT-25 preceding invoice on a credit note (type 381).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from drafthorse.models.accounting import ApplicableTradeTax
from drafthorse.models.document import Document
from drafthorse.models.note import IncludedNote
from drafthorse.models.party import TaxRegistration
from drafthorse.models.payment import PaymentMeans, PaymentTerms
from drafthorse.models.references import AdditionalReferencedDocument
from drafthorse.models.tradelines import LineItem

if TYPE_CHECKING:
    from invoices.models import Invoice, InvoiceLine

GUIDELINE_EN16931 = "urn:cen.eu:en16931:2017"
TYPE_INVOICE = "380"
TYPE_CREDIT_NOTE = "381"
SIRET_SCHEME = "0009"  # ISO 6523 ICD of the SIRET
SEPA_CREDIT_TRANSFER = "58"

# UN/ECE Recommendation 20 codes for the units an order line uses.
UNIT_CODES = {
    "u": "C62",
    "": "C62",
    "unité": "C62",
    "ens": "C62",
    "forfait": "C62",
    "ft": "C62",
    "h": "HUR",
    "heure": "HUR",
    "j": "DAY",
    "jour": "DAY",
    "m": "MTR",
    "ml": "MTR",
    "m2": "MTK",
    "m²": "MTK",
    "m3": "MTQ",
    "m³": "MTQ",
    "kg": "KGM",
    "l": "LTR",
}


def unit_code(unit: str) -> str:
    return UNIT_CODES.get(unit.strip().lower(), "C62")


def _party(party: Any, data: dict[str, Any], *, with_vat: bool) -> None:
    party.name = data.get("name", "")
    if data.get("siret"):
        party.legal_organization.id = (SIRET_SCHEME, data["siret"])
    if data.get("legal_info"):
        party.description = data["legal_info"]
    party.address.line_one = data.get("address", "") or None
    if data.get("address_complement"):
        party.address.line_two = data["address_complement"]
    party.address.postcode = data.get("postcode", "") or None
    party.address.city_name = data.get("city", "") or None
    party.address.country_id = "FR"
    if with_vat and data.get("vat_number"):
        registration = TaxRegistration()
        registration.id = ("VA", data["vat_number"])
        party.tax_registrations.add(registration)


def build(invoice: Invoice, lines: Sequence[InvoiceLine], *, credited: tuple[str, date | None] | None = None) -> bytes:
    """The CII XML of `invoice` (numbered, with its totals), as UTF-8 bytes."""
    seller = invoice.parties.get("seller", {})
    buyer = invoice.parties.get("buyer", {})
    doc = Document()
    doc.context.guideline_parameter.id = GUIDELINE_EN16931
    doc.header.id = invoice.number
    doc.header.type_code = TYPE_CREDIT_NOTE if invoice.is_credit_note else TYPE_INVOICE
    doc.header.issue_date_time = invoice.issue_date
    for text, code in invoice.parties.get("notes", []):
        note = IncludedNote()
        note.content = text
        if code:
            note.subject_code = code
        doc.header.notes.add(note)

    agreement = doc.trade.agreement
    if invoice.service_code:
        agreement.buyer_reference = invoice.service_code
    _party(agreement.seller, seller, with_vat=True)
    _party(agreement.buyer, buyer, with_vat=False)
    if invoice.commitment_number:
        agreement.buyer_order.issuer_assigned_id = invoice.commitment_number
    if invoice.parties.get("contract_reference"):
        agreement.contract.issuer_assigned_id = invoice.parties["contract_reference"]
    for reference in filter(None, invoice.order_numbers.split(", ")):
        document = AdditionalReferencedDocument()
        document.issuer_assigned_id = reference
        document.type_code = "130"  # the invoiced object: the order (bon de commande)
        agreement.additional_references.add(document)

    if invoice.execution_date:
        doc.trade.delivery.event.occurrence = invoice.execution_date

    settlement = doc.trade.settlement
    settlement.currency_code = "EUR"
    if invoice.number:
        settlement.payment_reference = invoice.number
    if seller.get("iban"):
        means = PaymentMeans()
        means.type_code = SEPA_CREDIT_TRANSFER
        means.payee_account.iban = seller["iban"]
        if seller.get("bic"):
            means.payee_institution.bic = seller["bic"]
        settlement.payment_means.add(means)
    for entry in invoice.vat_breakdown:
        tax = ApplicableTradeTax()
        tax.calculated_amount = Decimal(entry["vat_amount"])
        tax.type_code = "VAT"
        tax.basis_amount = Decimal(entry["taxable_amount"])
        tax.category_code = "S" if Decimal(entry["rate"]) > 0 else "Z"
        tax.rate_applicable_percent = Decimal(entry["rate"])
        settlement.trade_tax.add(tax)
    if not invoice.is_credit_note:
        terms = PaymentTerms()
        terms.description = invoice.parties.get("payment_terms", "")
        settlement.terms.add(terms)
    summation = settlement.monetary_summation
    summation.line_total = invoice.total_excl_vat
    summation.tax_basis_total = invoice.total_excl_vat
    summation.tax_total = (invoice.total_vat, "EUR")
    summation.grand_total = invoice.total_incl_vat
    summation.due_amount = invoice.total_incl_vat
    if credited is not None:
        settlement.invoice_referenced_document.issuer_assigned_id = credited[0]
        if credited[1] is not None:
            settlement.invoice_referenced_document.issue_date_time = credited[1]

    for index, line in enumerate(lines, start=1):
        item = LineItem()
        item.document.line_id = str(index)
        if line.order_reference:
            note = IncludedNote()
            note.content = f"Bon de commande {line.order_reference}"
            item.document.notes.add(note)
        if line.reference:
            item.product.seller_assigned_id = line.reference
        item.product.name = line.label
        item.agreement.net.amount = line.unit_price
        item.delivery.billed_quantity = (line.quantity, unit_code(line.unit))
        item.settlement.trade_tax.type_code = "VAT"
        item.settlement.trade_tax.category_code = "S" if line.vat_rate > 0 else "Z"
        item.settlement.trade_tax.rate_applicable_percent = line.vat_rate
        item.settlement.monetary_summation.total_amount = line.amount_excl_vat
        doc.trade.items.add(item)
    return doc.serialize(schema="FACTUR-X_EN16931")
