"""The invoice as a Factur-X PDF: WeasyPrint renders `templates/pdf/invoice.html`
as PDF/A-3b, then factur-x attaches the CII XML (`invoices.cii`), checks it
against the EN 16931 schema, and writes the Factur-X XMP metadata.

Unlike a report, the invoice is rendered inside the issuing transaction: the
file is the invoice, and an issue whose PDF fails consumes no number. Nothing
is fetched while rendering (the logo is read beforehand)."""

from __future__ import annotations

import functools
import logging
import mimetypes
import warnings
from typing import Any

import facturx
from django.conf import settings
from django.template.loader import render_to_string
from django.utils import translation
from weasyprint import CSS, HTML

from invoices import cii
from invoices.models import Invoice, InvoiceLine
from orders.pdf import DOCUMENT_STYLESHEET, SCHEME, MemoryFetcher
from portal.models import Company
from quotes import pricing

# factur-x logs every step at INFO for every invoice: noise in the workers' logs.
logging.getLogger("factur-x").setLevel(logging.WARNING)

# The shared page and masthead, then the invoice's own rules.
STYLESHEETS = (DOCUMENT_STYLESHEET, settings.BASE_DIR / "templates" / "pdf" / "invoice.css")


@functools.cache
def stylesheets() -> list[CSS]:
    return [CSS(filename=str(path)) for path in STYLESHEETS]


def _amount(value: Any) -> str:
    return pricing.format_euros(pricing.to_cent(value if not isinstance(value, str) else pricing.Decimal(value)))


def context(invoice: Invoice, lines: list[InvoiceLine], *, credited: Invoice | None = None) -> dict[str, Any]:
    """What the template shows; the same for the HTML preview and the PDF."""
    return {
        "invoice": invoice,
        "title": "Avoir" if invoice.is_credit_note else "Facture",
        "seller": invoice.parties.get("seller", {}),
        "buyer": invoice.parties.get("buyer", {}),
        "contract_reference": invoice.parties.get("contract_reference", ""),
        "payment_terms": invoice.parties.get("payment_terms", ""),
        "late_terms": invoice.parties.get("late_terms", ""),
        "credited": credited,
        "rows": [
            {
                "line": line,
                "quantity": f"{line.quantity.normalize():f}".replace(".", ","),
                "unit_price": pricing.format_euros(line.unit_price),
                "rate": pricing.format_rate(line.vat_rate),
                "amount": pricing.format_euros(line.amount_excl_vat),
            }
            for line in lines
        ],
        "vat": [
            {
                "rate": pricing.format_rate(pricing.Decimal(entry["rate"])),
                "base": _amount(entry["taxable_amount"]),
                "amount": _amount(entry["vat_amount"]),
            }
            for entry in invoice.vat_breakdown
        ],
        "total_excl_vat": pricing.format_euros(invoice.total_excl_vat),
        "total_vat": pricing.format_euros(invoice.total_vat),
        "total_incl_vat": pricing.format_euros(invoice.total_incl_vat),
    }


def html(invoice: Invoice, lines: list[InvoiceLine], *, credited: Invoice | None = None, logo_url: str = "") -> str:
    with translation.override("fr"):
        return render_to_string(
            "pdf/invoice.html", {**context(invoice, lines, credited=credited), "logo_url": logo_url}
        )


def _logo() -> tuple[str, dict[str, tuple[bytes, str]]]:
    company = Company.objects.first()
    if company is None or not company.logo:
        return "", {}
    try:
        with company.logo.open("rb") as stream:
            content = stream.read()
    except OSError:
        return "", {}
    url = f"{SCHEME}:logo"
    return url, {url: (content, mimetypes.guess_type(company.logo.name)[0] or "image/png")}


def render(invoice: Invoice, lines: list[InvoiceLine], *, credited: Invoice | None = None) -> bytes:
    """The Factur-X PDF/A-3 of a numbered invoice, as bytes."""
    logo_url, resources = _logo()
    document = HTML(
        string=html(invoice, lines, credited=credited, logo_url=logo_url),
        base_url=f"{SCHEME}:/",
        url_fetcher=MemoryFetcher(resources),
    )
    with warnings.catch_warnings():
        # WeasyPrint opens its sRGB profile for PDF/A's output intent and leaves
        # the file to the garbage collector (a ResourceWarning, nothing lost).
        warnings.simplefilter("ignore", ResourceWarning)
        plain = document.write_pdf(stylesheets=stylesheets(), pdf_variant="pdf/a-3b")
    xml = cii.build(invoice, lines, credited=(credited.number, credited.issue_date) if credited is not None else None)
    seller = invoice.parties.get("seller", {})
    return facturx.generate_from_binary(
        plain,
        xml,
        flavor="factur-x",
        level="en16931",
        check_xsd=True,
        lang="fr-FR",
        pdf_metadata={
            "author": seller.get("name", ""),
            "keywords": "Factur-X, facture",
            "title": f"{'Avoir' if invoice.is_credit_note else 'Facture'} {invoice.number}",
            "subject": f"{'Avoir' if invoice.is_credit_note else 'Facture'} {invoice.number} "
            f"de {seller.get('name', '')}",
        },
    )
