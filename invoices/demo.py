"""Demo invoicing for `make run` (`manage.py seed_demo_invoices`, after
`seed_demo_quotes`): the company's legal mentions and bank account, each
contract's invoicing terms (the social landlord OPH is a public buyer: code
service and commitment number; the private property manager is not), the
invoice PDF shared with the connected platform (D11), the ECB rates since 2023,
and two invoices issued for finished orders of the client that is not
connected (one with its receipt date and a partial payment). The connected
client's finished orders stay to invoice, for the office to try the whole
story: issue, open the PDF, see the order "facturé" in the sandbox with the
invoice attached."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from invoices import payments, services
from invoices.models import ConnectionInvoicing, ContractInvoicing, EcbRate, Invoice, IssuerDetails
from portal.models import Company, Contract, Role, User
from portal.relay import outbox
from portal.relay.models import Connection, ConnectionKind

# The ECB's main refinancing operations rate, as published (the office adds the next ones).
ECB_RATES = [
    (date(2023, 9, 20), Decimal("4.50")),
    (date(2024, 6, 12), Decimal("4.25")),
    (date(2024, 9, 18), Decimal("3.65")),
    (date(2024, 10, 23), Decimal("3.40")),
    (date(2024, 12, 18), Decimal("3.15")),
    (date(2025, 2, 5), Decimal("2.90")),
    (date(2025, 3, 12), Decimal("2.65")),
    (date(2025, 4, 23), Decimal("2.40")),
    (date(2025, 6, 11), Decimal("2.15")),
]


def _settings(company: Company) -> None:
    IssuerDetails.objects.get_or_create(
        company=company,
        defaults={
            "legal_form": "SARL",
            "share_capital": Decimal("50000.00"),
            "registration": "RCS Metz 832 147 656",
            "iban": "FR7630006000011234567890189",
            "bic": "AGRIFRPP",
        },
    )
    for rank, contract in enumerate(Contract.objects.select_related("client").order_by("pk"), start=1):
        public = "habitat" in contract.client.name.lower() or contract.client.name.lower().startswith("office public")
        ContractInvoicing.objects.get_or_create(
            contract=contract,
            defaults={"public_buyer": public, "commitment_number": f"4500{120000 + rank * 137:06d}" if public else ""},
        )
    for connection in Connection.objects.exclude(kind=ConnectionKind.NONE):
        ConnectionInvoicing.objects.get_or_create(connection=connection, defaults={"share_pdf": True})
    for valid_from, rate in ECB_RATES:
        EcbRate.objects.get_or_create(valid_from=valid_from, defaults={"rate": rate})


@transaction.atomic
def create_demo_invoices() -> list[str]:
    """Returns what it made (French), or [] when there is nothing to do."""
    company = Company.objects.first()
    office = User.objects.filter(role=Role.OFFICE, is_active=True).order_by("pk").first()
    if company is None or office is None or Invoice.objects.exists():
        return []
    _settings(company)
    made = ["mentions de l'entreprise, facturation des marchés, taux BCE"]
    ready = [order for order in services.to_invoice() if order.lines.filter(done=True).exists()]
    elsewhere = [order for order in ready if outbox.connection_for_client(order.contract.client_id) is None]
    today = timezone.localdate()
    for index, order in enumerate(elsewhere[:2]):
        try:
            invoice = services.issue(services.create_draft([order], actor=office), actor=office)
        except services.InvoiceRefused as error:
            made.append(f"commande {order.reference} non facturée : {error}")
            continue
        made.append(f"facture {invoice.number} émise pour la commande {order.reference}")
        if index == 0:
            payments.record_receipt(invoice, received_on=today, actor=office, source="Chorus Pro")
            half = (invoice.total_incl_vat / 2).quantize(Decimal("0.01"))
            payments.record_payment(invoice, paid_on=today, amount=half, actor=office, note="acompte")
            made.append(f"  reçue aujourd'hui, payée en partie ({half} €)")
    connected = len(ready) - len(elsewhere)
    made.append(f"{connected} commande(s) du client relié au bac à sable à facturer")
    return made
