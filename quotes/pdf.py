"""The quote as PDF: WeasyPrint, from `templates/pdf/quote.html` and its print
stylesheet `templates/pdf/quote.css` (A4, page numbers, the lines' table
header repeated on every page). Run by `quotes.tasks.render_quote_pdf`, never
in a request or a transaction; the logo is read beforehand and nothing is
fetched while rendering (orders.pdf's memory fetcher)."""

from __future__ import annotations

import functools

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import translation
from weasyprint import CSS, HTML

from orders.pdf import DOCUMENT_STYLESHEET, MemoryFetcher
from quotes import printing
from quotes.models import Quote

# The shared page and masthead, then the quote's own rules.
STYLESHEETS = (DOCUMENT_STYLESHEET, settings.BASE_DIR / "templates" / "pdf" / "quote.css")


@functools.cache
def stylesheets() -> list[CSS]:
    return [CSS(filename=str(path)) for path in STYLESHEETS]


def render_quote(quote: Quote) -> bytes:
    """The quote's PDF (A4, French), as bytes."""
    quote = printing.load(quote.pk)
    context, resources = printing.quote_context(quote)
    with translation.override("fr"):
        html = render_to_string("pdf/quote.html", context)
    document = HTML(string=html, base_url=f"{printing.SCHEME}:/", url_fetcher=MemoryFetcher(resources))
    return document.write_pdf(stylesheets=stylesheets())
