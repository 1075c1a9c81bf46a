"""Getting paid: the buyer's receipt date, payments (partial ones too), and
where each invoice stands (`invoices.interest`), for the pages and the overview."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.db.models import DecimalField, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from invoices import interest
from invoices.models import EcbRate, Invoice, InvoiceState, Kind, Payment, Receipt
from invoices.services import InvoiceRefused, credited_so_far, to_invoice
from portal.models import User


def _issued_invoice(invoice: Invoice) -> Invoice:
    locked = Invoice.objects.select_for_update().get(pk=invoice.pk)
    if not locked.is_issued or locked.is_credit_note:
        raise InvoiceRefused("Seule une facture émise se suit jusqu'à son paiement.")
    return locked


@transaction.atomic
def record_receipt(invoice: Invoice, *, received_on: date, actor: User | None, source: str = "saisie") -> Receipt:
    locked = _issued_invoice(invoice)
    if locked.issue_date and received_on < locked.issue_date:
        raise InvoiceRefused("La facture ne peut pas avoir été reçue avant son émission.")
    if received_on > timezone.localdate():
        raise InvoiceRefused("La date de réception ne peut pas être dans le futur.")
    receipt, _ = Receipt.objects.update_or_create(
        invoice=locked,
        defaults={"received_on": received_on, "source": source, "recorded_by": actor if actor and actor.pk else None},
    )
    return receipt


def parse_amount(value: object) -> Decimal:
    try:
        amount = Decimal(str(value).replace(",", ".").replace("\u202f", "").replace(" ", "").strip())
    except InvalidOperation:
        raise InvoiceRefused("Le montant doit être un nombre, par exemple 1250,40.") from None
    if not amount.is_finite() or amount <= 0 or amount != amount.quantize(Decimal("0.01")):
        raise InvoiceRefused("Le montant doit être positif, au centime près.")
    return amount


@transaction.atomic
def record_payment(invoice: Invoice, *, paid_on: date, amount: Decimal, actor: User | None, note: str = "") -> Payment:
    locked = _issued_invoice(invoice)
    if paid_on > timezone.localdate():
        raise InvoiceRefused("La date du paiement ne peut pas être dans le futur.")
    left = amount_due(locked) - sum((p.amount for p in locked.payments.all()), Decimal(0))
    if amount > left:
        raise InvoiceRefused(f"Le paiement dépasse le reste dû ({left} €).")
    return Payment.objects.create(
        invoice=locked, paid_on=paid_on, amount=amount, note=note.strip(), recorded_by=actor if actor else None
    )


def amount_due(invoice: Invoice) -> Decimal:
    """The invoice's total less its issued credit notes."""
    return invoice.total_incl_vat - credited_so_far(invoice)


def rates() -> list[tuple[date, Decimal]]:
    return list(EcbRate.objects.values_list("valid_from", "rate"))


def situation(invoice: Invoice, *, today: date | None = None) -> interest.Situation | None:
    """Where `invoice` stands (None until the buyer's receipt date is known)."""
    receipt = Receipt.objects.filter(invoice=invoice).first()
    if receipt is None:
        return None
    return interest.situation(
        amount_due(invoice),
        received_on=receipt.received_on,
        payment_days=invoice.payment_days,
        payments=[(payment.paid_on, payment.amount) for payment in invoice.payments.all()],
        today=today or timezone.localdate(),
        rates=rates(),
    )


def follow_up(*, today: date | None = None) -> list[tuple[Invoice, interest.Situation]]:
    """Issued invoices with a receipt date that are overdue or owe interest."""
    today = today or timezone.localdate()
    table = rates()
    found: list[tuple[Invoice, interest.Situation]] = []
    credited = (
        Invoice.objects.filter(credited=OuterRef("pk"), state=InvoiceState.ISSUED)
        .values("credited")
        .annotate(total=Sum("total_incl_vat"))
        .values("total")
    )
    invoices = (
        Invoice.objects.filter(state=InvoiceState.ISSUED, kind=Kind.INVOICE, receipt__isnull=False)
        .select_related("receipt", "billing_account__client")
        .prefetch_related("payments")
        .annotate(credited_total=Coalesce(Subquery(credited), Value(Decimal(0)), output_field=DecimalField()))
        .order_by("issue_date", "number")
    )
    for invoice in invoices:
        current = interest.situation(
            invoice.total_incl_vat - invoice.credited_total,
            received_on=invoice.receipt.received_on,
            payment_days=invoice.payment_days,
            payments=[(payment.paid_on, payment.amount) for payment in invoice.payments.all()],
            today=today,
            rates=table,
        )
        if current.overdue or current.owed > 0:
            found.append((invoice, current))
    return found


def overview_figures() -> dict[str, object]:
    """The invoices' card of the supervisors' overview."""
    found = follow_up()
    overdue = [situation for _, situation in found if situation.overdue]
    return {
        "to_invoice": to_invoice().count(),
        "follow_up": found[:8],
        "overdue_count": len(overdue),
        "outstanding": sum((situation.outstanding for situation in overdue), Decimal(0)),
        "owed": sum((situation.owed for _, situation in found), Decimal(0)),
    }
