"""What the quote's PDF (and its HTML preview in the editor) shows: the
template's context, built once for both. No WeasyPrint here (see quotes.pdf)."""

from __future__ import annotations

import mimetypes
from typing import Any

from django.db.models.fields.files import FieldFile
from django.utils import timezone

from portal.models import Company
from quotes import pricing
from quotes.models import PartSupplier, Quote

SCHEME = "portal"


def _read(file: FieldFile) -> bytes:
    with file.open("rb") as stream:
        return stream.read()


def load(quote_id: int) -> Quote:
    return Quote.objects.select_related(
        "contract__client",
        "asset",
        "service_code",
        "order__asset",
        "order__service_code",
        "sent_by",
        "created_by",
        "report",
    ).get(pk=quote_id)


def quote_context(quote: Quote, *, with_images: bool = True) -> tuple[dict[str, Any], dict[str, tuple[bytes, str]]]:
    """The template's context, and the images it refers to by `portal:` URL
    (none with `with_images=False`: the editor's HTML preview)."""
    resources: dict[str, tuple[bytes, str]] = {}
    company = Company.objects.first()
    logo_url = ""
    if with_images and company is not None and company.logo:
        logo_url = f"{SCHEME}:logo"
        mime = mimetypes.guess_type(company.logo.name)[0] or "image/png"
        resources[logo_url] = (_read(company.logo), mime)
    photos = []
    if with_images and quote.report is not None:
        # The technician's photos of what needs the works, from the report the quote was made from.
        for number, photo in enumerate(quote.report.photos.all(), start=1):
            url = f"{SCHEME}:photo/{photo.pk}"
            resources[url] = (_read(photo.image), "image/jpeg")
            photos.append({"url": url, "caption": f"{photo.get_kind_display()} – photo {number}"})
    lines = list(quote.lines.all())
    totals = pricing.totals(line.pricing_line() for line in lines)
    parts = list(quote.parts.all())
    order = quote.order
    context = {
        "quote": quote,
        "company": company,
        "logo_url": logo_url,
        "client": quote.contract.client,
        "contract": quote.contract,
        "order": order,
        "asset": quote.asset or (order.asset if order is not None else None),
        "service_code": quote.service_code or (order.service_code if order is not None else None),
        "rows": [
            {
                "line": line,
                "amount": pricing.format_euros(amount),
                "rate": pricing.format_rate(line.vat_rate),
                "unit_price": pricing.format_euros(line.unit_price),
                "quantity": f"{line.quantity.normalize():f}".replace(".", ","),
            }
            for line, amount in zip(lines, totals.line_amounts, strict=True)
        ],
        "out_of_schedule": [line for line in lines if line.out_of_schedule],
        "vat": [
            {
                "rate": pricing.format_rate(entry.rate),
                "base": pricing.format_euros(entry.taxable_amount),
                "amount": pricing.format_euros(entry.vat_amount),
            }
            for entry in totals.vat
        ],
        "total_excl_vat": pricing.format_euros(totals.total_excl_vat),
        "total_vat": pricing.format_euros(totals.total_vat),
        "total_incl_vat": pricing.format_euros(totals.total_incl_vat),
        "contractor_parts": [part for part in parts if part.supplied_by == PartSupplier.CONTRACTOR],
        "buyer_parts": [part for part in parts if part.supplied_by == PartSupplier.BUYER],
        "photos": photos,
        "dated": quote.sent_at or quote.created_at,
        "generated_at": timezone.now(),
    }
    return context, resources
