"""Data builders for the invoices' tests and bench: the contractor's invoicing
mentions, a public buyer's billing account and commitment number, and finished
orders whose lines are done (written directly, as `factories.an_order` does, or
through the services)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from invoices.models import ContractInvoicing, IssuerDetails
from orders.models import Order, OrderLine
from orders.states import State
from portal.models import BillingAccount, Company, Contract
from tests import factories

IBAN = "FR7630006000011234567890189"
BIC = "AGRIFRPP"
# A 20 %, a 10 % and a 5.5 % line (label, quantity, unit, unit price, rate).
MIXED_LINES = (
    ("Dépannage chaudière (local commercial)", Decimal("1"), "u", Decimal("95.00"), Decimal("20.00")),
    ("Remplacement du siphon", Decimal("2"), "u", Decimal("48.35"), Decimal("10.00")),
    ("Isolation des combles", Decimal("12.5"), "m2", Decimal("23.17"), Decimal("5.50")),
)


def make_issuer(company: Company | None = None, **fields: Any) -> IssuerDetails:
    company = company or factories.make_company(
        address="12 rue des Artisans", vat_number="FR40832147656", email="compta@multitech.fr"
    )
    values = {
        "legal_form": "SARL",
        "share_capital": Decimal("20000.00"),
        "registration": "RCS Metz 832 147 656",
        "iban": IBAN,
        "bic": BIC,
        **fields,
    }
    return IssuerDetails.objects.create(company=company, **values)


def make_billing(contract: Contract, *, commitment_number: str = "4500123456", **fields: Any) -> BillingAccount:
    values = {
        "reference": "FACT-01",
        "label": "Service comptabilité fournisseurs",
        "siret": "26570013000013",
        "service_code": "UL1AVECEJ",
        "address": "10 rue du Pont",
        "postcode": "57000",
        "city": "Metz",
        **fields,
    }
    account = BillingAccount.objects.create(client=contract.client, **values)
    contract.billing_account = account
    contract.save(update_fields=["billing_account"])
    ContractInvoicing.objects.create(contract=contract, commitment_number=commitment_number)
    return account


def finished_order(
    contract: Contract,
    reference: str,
    *,
    lines: Iterable[tuple[str, Decimal, str, Decimal, Decimal]] = MIXED_LINES,
    ended: datetime | None = None,
    **fields: Any,
) -> Order:
    """A finished order written directly, its lines all done."""
    ended = ended or timezone.now() - timedelta(days=2)
    order = factories.build_order(
        contract, reference, state=State.FINISHED, actual_start=ended - timedelta(hours=2), actual_end=ended, **fields
    )
    order.progress = 100
    order.save()
    OrderLine.objects.bulk_create(
        OrderLine(
            order=order,
            position=position,
            reference=f"L{position}",
            label=label,
            quantity=quantity,
            unit=unit,
            unit_price=price,
            vat_rate=rate,
            done=True,
            done_at=ended,
        )
        for position, (label, quantity, unit, price, rate) in enumerate(lines, start=1)
    )
    return order
