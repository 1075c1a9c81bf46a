"""The only code that makes and issues invoices and credit notes.

A draft is made from finished (or received) orders of one billing account and
contract; it has no number. `issue` does everything that makes it an invoice in
one transaction: it copies the orders' done lines afresh, freezes both parties'
details, checks the mentions of CCAP §10.3 (`invoices.mentions`), takes the next
number of the year's series under the counter's row lock, renders the Factur-X
PDF, and moves each order to "facturé" through `orders.services.invoice_order`
(which relays the invoice date and number, D9), then records the PDF as the
order's next document message (D11, `invoices.sharing`). Any failure rolls all
of it back: the number is given back, so the series has no gap.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal

from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet, Sum
from django.utils import timezone

from invoices import mentions, pdf, sharing
from invoices.models import (
    ContractInvoicing,
    Invoice,
    InvoiceLine,
    InvoiceNumber,
    InvoiceState,
    IssuerDetails,
    Kind,
)
from orders import services as order_services
from orders.models import Order
from orders.states import State
from portal.errors import Refused
from portal.models import BillingAccount, Company, User
from quotes import pricing

logger = logging.getLogger(__name__)

SERIES = {Kind.INVOICE: "F", Kind.CREDIT_NOTE: "A"}
INVOICEABLE_STATES = (State.FINISHED, State.RECEIVED)
DEFAULT_PAYMENT_DAYS = 30


class InvoiceRefused(Refused):
    """An invoicing step refused for a reason people can fix; `str()` is French."""


def invoice_number(series: str, year: int, rank: int) -> str:
    """F2026-0042 (invoices), A2026-0003 (credit notes)."""
    return f"{series}{year}-{rank:04d}"


def allocate_number(series: str, year: int) -> int:
    """The next rank of the series in `year`, under the counter's row lock: call
    it inside the issuing transaction (a rollback gives the number back)."""
    InvoiceNumber.objects.bulk_create([InvoiceNumber(series=series, year=year)], ignore_conflicts=True)
    counter = InvoiceNumber.objects.select_for_update().get(series=series, year=year)
    counter.last += 1
    counter.save(update_fields=["last"])
    return counter.last


def billing_account_of(order: Order) -> BillingAccount | None:
    return order.billing_account or order.contract.billing_account


def to_invoice() -> QuerySet[Order]:
    """Finished or received orders with a billing account, in no invoice yet
    (neither a draft nor an issued one)."""
    taken = Invoice.objects.filter(kind=Kind.INVOICE)
    return (
        Order.objects.filter(state__in=INVOICEABLE_STATES)
        .filter(Q(billing_account__isnull=False) | Q(contract__billing_account__isnull=False))
        .exclude(invoices__in=taken)
        .select_related("contract__client", "billing_account", "contract__billing_account")
        .order_by("contract__client__name", "actual_end", "reference")
    )


FULL_CANCEL = "Annulation totale"


# --- Drafts -----------------------------------------------------------------


def _copy_order_lines(invoice: Invoice, orders: list[Order]) -> None:
    InvoiceLine.objects.filter(invoice=invoice).delete()
    position = 0
    new: list[InvoiceLine] = []
    for order in orders:
        for line in order.lines.filter(done=True).order_by("position", "pk"):
            position += 1
            new.append(
                InvoiceLine(
                    invoice=invoice,
                    position=position,
                    order_reference=order.reference,
                    reference=line.reference,
                    label=line.label,
                    quantity=line.quantity,
                    unit=line.unit,
                    unit_price=line.unit_price,
                    vat_rate=line.vat_rate,
                    amount_excl_vat=pricing.line_net_amount(
                        pricing.Line(line.quantity, line.unit_price, line.vat_rate)
                    ),
                )
            )
    InvoiceLine.objects.bulk_create(new)


def _apply_totals(invoice: Invoice, lines: Iterable[InvoiceLine]) -> pricing.Totals:
    totals = pricing.totals(pricing.Line(line.quantity, line.unit_price, line.vat_rate) for line in lines)
    invoice.total_excl_vat = totals.total_excl_vat
    invoice.total_vat = totals.total_vat
    invoice.total_incl_vat = totals.total_incl_vat
    invoice.vat_breakdown = [
        {"rate": str(entry.rate), "taxable_amount": str(entry.taxable_amount), "vat_amount": str(entry.vat_amount)}
        for entry in totals.vat
    ]
    return totals


@transaction.atomic
def create_draft(orders: Iterable[Order], *, actor: User | None) -> Invoice:
    """A draft invoice of `orders` (one order, or several of one billing account and contract)."""
    ids = sorted({order.pk for order in orders})
    if not ids:
        raise InvoiceRefused("Choisissez au moins une commande à facturer.")
    locked = list(
        Order.objects.select_for_update(of=("self",))
        .filter(pk__in=ids)
        .select_related("contract", "billing_account")
        .order_by("pk")
    )
    invoiceable = set(to_invoice().filter(pk__in=ids).values_list("pk", flat=True))
    for order in locked:
        if order.pk not in invoiceable:
            raise InvoiceRefused(
                f"La commande {order.reference} n'est pas à facturer (elle doit être terminée ou réceptionnée, "
                "avoir un compte de facturation et ne figurer sur aucune autre facture)."
            )
        if not order.lines.filter(done=True).exists():
            raise InvoiceRefused(f"La commande {order.reference} n'a aucune ligne réalisée à facturer.")
    accounts = {billing_account_of(order) for order in locked}
    contracts = {order.contract_id for order in locked}
    if len(accounts) != 1 or len(contracts) != 1:
        raise InvoiceRefused("Une facture regroupe des commandes d'un seul compte de facturation et d'un seul marché.")
    account = accounts.pop()
    assert account is not None
    invoice = Invoice.objects.create(
        kind=Kind.INVOICE, contract=locked[0].contract, billing_account=account, created_by=_person(actor)
    )
    invoice.orders.set(locked)
    _copy_order_lines(invoice, locked)
    _refresh(invoice, locked)
    invoice.save()
    return invoice


def _person(actor: User | None) -> User | None:
    return actor if actor is not None and actor.pk else None


def _refresh(invoice: Invoice, orders: list[Order]) -> mentions.Facts:
    """Copy today's references and parties onto the draft; the facts to check."""
    company = Company.objects.first()
    details = IssuerDetails.objects.filter(company=company).first() if company is not None else None
    terms = ContractInvoicing.objects.filter(contract_id=invoice.contract_id).first()
    account = invoice.billing_account
    client = account.client
    lines = list(invoice.lines.all())
    _apply_totals(invoice, lines)
    days = terms.payment_days if terms is not None else DEFAULT_PAYMENT_DAYS
    invoice.payment_days = days
    invoice.service_code = account.service_code.strip()
    invoice.buyer_siret = (account.siret or client.siret).replace(" ", "")
    if invoice.kind == Kind.INVOICE:
        invoice.commitment_number = terms.commitment_number.strip() if terms is not None else ""
        invoice.order_numbers = ", ".join(order.reference for order in orders)
        ends = [order.actual_end for order in orders if order.actual_end is not None]
        invoice.execution_date = timezone.localtime(max(ends)).date() if ends and len(ends) == len(orders) else None
    capital = details.share_capital if details is not None else None
    legal_form = details.legal_form if details is not None else ""
    registration = details.registration if details is not None else ""
    legal_info = ", ".join(
        part
        for part in (
            legal_form,
            f"au capital de {pricing.format_euros(capital)}" if capital is not None else "",
            registration,
        )
        if part
    )
    invoice.parties = {
        "seller": {
            "name": company.name if company else "",
            "address": company.address if company else "",
            "address_complement": company.address_complement if company else "",
            "postcode": company.postcode if company else "",
            "city": company.city if company else "",
            "siret": company.siret.replace(" ", "") if company else "",
            "vat_number": company.vat_number.replace(" ", "") if company else "",
            "phone": company.phone if company else "",
            "email": company.email if company else "",
            "legal_info": legal_info,
            "iban": details.iban if details is not None else "",
            "bic": details.bic if details is not None else "",
        },
        "buyer": {
            "name": f"{client.name} – {account.label}" if account.label else client.name,
            "address": account.address or client.address,
            "address_complement": account.address_complement if account.address else client.address_complement,
            "postcode": account.postcode if account.address else client.postcode,
            "city": account.city if account.address else client.city,
            "siret": invoice.buyer_siret,
        },
        "contract_reference": invoice.contract.reference,
        "payment_terms": (
            f"virement à {days} jours à compter de la réception de la facture (délai global de paiement, "
            "CCAP §10.4). Pas d'escompte pour paiement anticipé."
        ),
        "late_terms": (
            "En cas de retard de paiement : intérêts moratoires au taux de refinancement de la BCE en vigueur au "
            "premier jour du semestre, majoré de 8 points, et indemnité forfaitaire pour frais de recouvrement "
            "de 40 € (art. L2192-13 et D2192-35 du Code de la commande publique)."
        ),
        "notes": [],
    }
    seller = invoice.parties["seller"]
    buyer = invoice.parties["buyer"]
    invoice.parties["notes"] = [
        [f"{seller['name']}, {seller['legal_info']}", "REG"],
        [invoice.parties["late_terms"], "PMT"],
    ]
    return mentions.Facts(
        seller_name=seller["name"],
        seller_address=company.full_address if company else "",
        seller_siret=seller["siret"],
        seller_vat_number=seller["vat_number"],
        seller_legal_form=legal_form,
        seller_capital=capital,
        seller_registration=registration,
        seller_iban=seller["iban"],
        seller_bic=seller["bic"],
        buyer_name=buyer["name"],
        buyer_address=buyer["address"] and f"{buyer['postcode']} {buyer['city']}".strip(),
        buyer_siret=invoice.buyer_siret,
        public_buyer=terms.public_buyer if terms is not None else True,
        service_code=invoice.service_code,
        commitment_number=invoice.commitment_number,
        order_numbers=tuple(filter(None, invoice.order_numbers.split(", "))),
        execution_date=invoice.execution_date,
        lines=tuple(
            mentions.LineFacts(line.label, line.quantity, line.unit_price, line.order_reference) for line in lines
        ),
        credit_note=invoice.is_credit_note,
    )


def check(invoice: Invoice) -> list[str]:
    """What the draft lacks to be issued (French messages), without changing it."""
    with transaction.atomic():
        draft = Invoice.objects.get(pk=invoice.pk)
        orders = list(draft.orders.order_by("pk"))
        if draft.kind == Kind.INVOICE:
            _copy_order_lines(draft, orders)
        found = mentions.missing(_refresh(draft, orders))
        transaction.set_rollback(True)
    return found


@transaction.atomic
def discard_draft(invoice: Invoice, *, actor: User | None) -> None:
    locked = Invoice.objects.select_for_update().get(pk=invoice.pk)
    if locked.is_issued:
        raise InvoiceRefused(f"{locked} est émise : elle ne se supprime pas (faites un avoir).")
    locked.delete()


# --- Issuing ----------------------------------------------------------------


def issue(invoice: Invoice, *, actor: User | None) -> Invoice:
    """Number, freeze, render and relay the draft `invoice` (see the module's docstring)."""
    try:
        return _issue(invoice, actor=actor)
    except IntegrityError as error:
        # Rolled back: the number taken is given back.
        logger.warning("Issuing invoice %s failed: %s", invoice.pk, error)
        raise InvoiceRefused(
            "L'émission a échoué (un numéro de facture existe déjà ou la facture a changé) : rien n'a été émis, "
            "aucun numéro n'a été consommé. Rechargez la page et recommencez."
        ) from error


@transaction.atomic
def _issue(invoice: Invoice, *, actor: User | None) -> Invoice:
    locked = (
        Invoice.objects.select_for_update()
        .select_related("contract__client", "billing_account__client")
        .get(pk=invoice.pk)
    )
    if locked.is_issued:
        raise InvoiceRefused(f"{locked} est déjà émise.")
    orders = list(locked.orders.select_for_update().order_by("pk"))
    credited = None
    if locked.kind == Kind.INVOICE:
        for order in orders:
            if order.state not in INVOICEABLE_STATES:
                raise InvoiceRefused(
                    f"La commande {order.reference} est « {order.get_state_display()} » : elle n'est plus à facturer."
                )
        _copy_order_lines(locked, orders)
    else:
        credited = Invoice.objects.select_for_update().get(pk=locked.credited_id or 0)
        _check_credit(locked, credited)
    facts = _refresh(locked, orders)
    missing = mentions.missing(facts)
    if missing:
        raise InvoiceRefused("Facture incomplète : " + " ".join(missing))
    series = SERIES[Kind(locked.kind)]
    rank = allocate_number(series, timezone.localdate().year)
    locked.issue_date = timezone.localdate()
    locked.number = invoice_number(series, locked.issue_date.year, rank)
    locked.issued_at = timezone.now()
    locked.issued_by = _person(actor)
    lines = list(locked.lines.all())
    content = pdf.render(locked, lines, credited=credited)
    locked.pdf_file.save(f"{locked.number}.pdf", ContentFile(content), save=False)
    try:
        locked.pdf_sha256 = hashlib.sha256(content).hexdigest()
        locked.state = InvoiceState.ISSUED
        locked.save()
        for order in orders if locked.kind == Kind.INVOICE else []:
            event = order_services.invoice_order(
                order, actor=actor, invoice_date=locked.issue_date, invoice_number=locked.number
            )
            sharing.share_pdf(order, event, locked)
    except BaseException:
        locked.pdf_file.storage.delete(locked.pdf_file.name or "")
        raise
    return locked


def issue_many(invoices: Iterable[Invoice], *, actor: User | None) -> tuple[list[Invoice], list[tuple[int, str]]]:
    """Each draft in its own transaction: what was issued, and why the others were not."""
    issued: list[Invoice] = []
    failures: list[tuple[int, str]] = []
    for invoice in invoices:
        try:
            issued.append(issue(invoice, actor=actor))
        except Refused as error:
            failures.append((invoice.pk, str(error)))
    return issued, failures


# --- Credit notes -----------------------------------------------------------


def credited_so_far(invoice: Invoice, *, excluding: int | None = None) -> Decimal:
    notes = invoice.credit_notes.filter(state=InvoiceState.ISSUED)
    if excluding is not None:
        notes = notes.exclude(pk=excluding)
    return notes.aggregate(total=Sum("total_incl_vat"))["total"] or Decimal(0)


def _check_credit(note: Invoice, credited: Invoice) -> None:
    if not credited.is_issued or credited.is_credit_note:
        raise InvoiceRefused("Un avoir se rapporte à une facture émise.")
    _apply_totals(note, note.lines.all())
    left = credited.total_incl_vat - credited_so_far(credited, excluding=note.pk)
    if note.total_incl_vat > left:
        raise InvoiceRefused(
            f"L'avoir ({pricing.format_euros(note.total_incl_vat)}) dépasse ce qui reste de la facture "
            f"{credited.number} ({pricing.format_euros(left)})."
        )


@transaction.atomic
def create_credit_note(
    invoice: Invoice, *, actor: User | None, reason: str, quantities: Mapping[int, Decimal] | None = None
) -> Invoice:
    """A draft credit note of `invoice`: in whole (`quantities` None), or of the
    given quantity of some of its lines (line id -> quantity to credit)."""
    credited = Invoice.objects.select_for_update().get(pk=invoice.pk)
    if not credited.is_issued or credited.is_credit_note:
        raise InvoiceRefused("Un avoir se rapporte à une facture émise.")
    reason = reason.strip()
    whole = quantities is None
    if not reason:
        raise InvoiceRefused("Indiquez le motif de l'avoir.")
    note = Invoice.objects.create(
        kind=Kind.CREDIT_NOTE,
        contract=credited.contract,
        billing_account=credited.billing_account,
        credited=credited,
        reason=f"{FULL_CANCEL} : {reason}" if whole else reason,
        service_code=credited.service_code,
        commitment_number=credited.commitment_number,
        order_numbers=credited.order_numbers,
        execution_date=credited.execution_date,
        created_by=_person(actor),
    )
    new: list[InvoiceLine] = []
    for line in credited.lines.all():
        quantity = line.quantity if whole else (quantities or {}).get(line.pk)
        if quantity is None or quantity == 0:
            continue
        if quantity < 0 or quantity > line.quantity:
            raise InvoiceRefused(f"La quantité à créditer de « {line.label} » va de 0 à {line.quantity}.")
        new.append(
            InvoiceLine(
                invoice=note,
                position=line.position,
                order_reference=line.order_reference,
                reference=line.reference,
                label=line.label,
                quantity=quantity,
                unit=line.unit,
                unit_price=line.unit_price,
                vat_rate=line.vat_rate,
                amount_excl_vat=pricing.line_net_amount(pricing.Line(quantity, line.unit_price, line.vat_rate)),
            )
        )
    if not new:
        raise InvoiceRefused("Choisissez au moins une ligne à créditer.")
    InvoiceLine.objects.bulk_create(new)
    _check_credit(note, credited)
    note.save()
    note.orders.set(credited.orders.all())
    return note


def issued_on(day: date) -> QuerySet[Invoice]:
    return Invoice.objects.filter(state=InvoiceState.ISSUED, issue_date=day)
