"""The month's export for the accountant: a CSV of the invoices and credit
notes issued in the month (one row each, totals per VAT rate; credit notes
negative), and a zip of their Factur-X PDFs with the CSV inside."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Iterator
from datetime import date
from decimal import Decimal
from typing import IO

from django.db.models import QuerySet

from invoices.models import Invoice, InvoiceState, Kind
from quotes import pricing

RATES = (Decimal("20.00"), Decimal("10.00"), Decimal("5.50"), Decimal("0.00"))


def month_bounds(year: int, month: int) -> tuple[date, date]:
    start = date(year, month, 1)
    end = date(year + (month == 12), month % 12 + 1, 1)
    return start, end


def of_month(year: int, month: int) -> QuerySet[Invoice]:
    start, end = month_bounds(year, month)
    return (
        Invoice.objects.filter(state=InvoiceState.ISSUED, issue_date__gte=start, issue_date__lt=end)
        .select_related("billing_account__client", "credited")
        .order_by("number")
    )


def _french(amount: Decimal) -> str:
    return f"{pricing.to_cent(amount):.2f}".replace(".", ",")


HEADER = [
    "Nature",
    "Numéro",
    "Date",
    "Facture d'origine",
    "Client",
    "Compte de facturation",
    "SIRET acheteur",
    "Code service",
    "Numéro d'engagement",
    "Bons de commande",
    *[f"{label} {pricing.format_rate(rate).replace(chr(160), ' ')}" for rate in RATES for label in ("Base HT", "TVA")],
    "Total HT",
    "Total TVA",
    "Total TTC",
]


def rows(invoices: Iterable[Invoice]) -> Iterator[list[str]]:
    yield HEADER
    for invoice in invoices:
        sign = Decimal(-1) if invoice.kind == Kind.CREDIT_NOTE else Decimal(1)
        by_rate = {Decimal(entry["rate"]): entry for entry in invoice.vat_breakdown}
        per_rate: list[str] = []
        for rate in RATES:
            entry = by_rate.get(rate)
            base = Decimal(entry["taxable_amount"]) if entry else Decimal(0)
            vat = Decimal(entry["vat_amount"]) if entry else Decimal(0)
            per_rate += [_french(sign * base), _french(sign * vat)]
        yield [
            invoice.get_kind_display(),
            invoice.number,
            f"{invoice.issue_date:%d/%m/%Y}",
            invoice.credited.number if invoice.credited else "",
            invoice.billing_account.client.name,
            invoice.billing_account.label,
            invoice.buyer_siret,
            invoice.service_code,
            invoice.commitment_number,
            invoice.order_numbers,
            *per_rate,
            _french(sign * invoice.total_excl_vat),
            _french(sign * invoice.total_vat),
            _french(sign * invoice.total_incl_vat),
        ]


def csv_bytes(invoices: Iterable[Invoice]) -> bytes:
    """Semicolons and decimal commas, UTF-8 with a BOM: what a French spreadsheet opens as is."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerows(rows(invoices))
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def write_zip(target: IO[bytes], year: int, month: int) -> int:
    """The month's PDFs and CSV into `target`; the number of documents."""
    invoices = list(of_month(year, month))
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(f"factures-{year}-{month:02d}.csv", csv_bytes(invoices))
        for invoice in invoices:
            with invoice.pdf_file.open("rb") as stream:
                archive.writestr(f"{invoice.number}.pdf", stream.read())
    return len(invoices)
