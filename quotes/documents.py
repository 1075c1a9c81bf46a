"""A quote's PDF: its rendering state, the file kept, and its upload to the
platform as the quotation's document (after the quotation log, on the same
stream). The rendering itself is `quotes.pdf`, run by
`quotes.tasks.render_quote_pdf`.

A supplementary-works quote whose works wait for it puts its parent order on
hold (`hold`/`quote_request`) here, once its PDF has joined the log: on the
order's stream, the quote's log and PDF thus precede the order's hold log.
"""

from __future__ import annotations

import hashlib

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from orders import services as order_services
from orders.models import Order
from orders.states import State, SuspendReason
from portal.errors import Refused
from quotes import sharing
from quotes.events import record_event
from quotes.models import PDF_STALLED_AFTER, PdfStatus, Quote, QuoteState

# States whose PDF is the quote as sent (a draft's is only previewed as HTML).
PDF_STATES = (QuoteState.SENT, QuoteState.ACCEPTED, QuoteState.REFUSED, QuoteState.EXPIRED, QuoteState.SUPERSEDED)
HOLD_FROM = (State.PLANNED, State.IN_PROGRESS)


def wants_pdf(quote_id: int) -> bool:
    return Quote.objects.filter(pk=quote_id, state__in=PDF_STATES).exclude(pdf_status=PdfStatus.DONE).exists()


def record_pdf_error(quote_id: int, *, error: str, final: bool) -> None:
    Quote.objects.filter(pk=quote_id).exclude(pdf_status=PdfStatus.DONE).update(
        pdf_status=PdfStatus.FAILED if final else PdfStatus.PENDING, pdf_error=error[:5000]
    )


def ask_pdf_again(quote: Quote) -> bool:
    """A failed (or lost) render asked again by a person. False when there is nothing to redo."""
    return bool(
        Quote.objects.filter(pk=quote.pk, state__in=PDF_STATES)
        .exclude(pdf_status=PdfStatus.DONE)
        .update(pdf_status=PdfStatus.PENDING, pdf_error="", pdf_requested_at=timezone.now())
    )


def _hold_parent_order(quote: Quote) -> None:
    if quote.order_id is None or not quote.works_wait:
        return
    order = Order.objects.get(pk=quote.order_id)
    if order.state == State.SUSPENDED and order.suspend_reason == SuspendReason.QUOTE_REQUEST:
        return  # already waiting for a quote (an earlier version of this one)
    if order.state not in HOLD_FROM:
        record_event(
            quote,
            kind="order_not_held",
            label=f"Commande non suspendue : elle est « {order.get_state_display()} »",
            actor=None,
        )
        return
    try:
        order_services.suspend_work(
            order,
            actor=quote.sent_by,
            reason=SuspendReason.QUOTE_REQUEST,
            note=f"devis {quote.display_number}",
        )
    except Refused as error:
        record_event(quote, kind="order_not_held", label=f"Commande non suspendue : {error}", actor=None)


@transaction.atomic
def attach_quote_pdf(quote_id: int, *, content: bytes) -> bool:
    """Keep the rendered PDF, record its upload, and hold the parent order if
    the works wait for the quote. Of two renders, the first here wins."""
    quote = Quote.objects.select_for_update(of=("self",)).select_related("contract", "order").get(pk=quote_id)
    if quote.pdf_status == PdfStatus.DONE:
        return False
    quote.pdf_file.save(sharing.pdf_file_name(quote), ContentFile(content), save=False)
    quote.pdf_size = len(content)
    quote.pdf_sha256 = hashlib.sha256(content).hexdigest()
    quote.pdf_status = PdfStatus.DONE
    quote.pdf_error = ""
    quote.save(update_fields=["pdf_file", "pdf_size", "pdf_sha256", "pdf_status", "pdf_error"])
    now = timezone.now()
    record_event(quote, kind="pdf", label=f"PDF du devis produit ({len(content) // 1024} Ko)", actor=None, at=now)
    sharing.share_pdf(quote, created_at=now)
    if quote.state == QuoteState.SENT:
        _hold_parent_order(quote)
    return True


def stalled_pdfs() -> list[int]:
    """Quotes whose PDF task was lost (a broker down when it was queued)."""
    limit = timezone.now() - PDF_STALLED_AFTER
    return list(
        Quote.objects.filter(
            pdf_status=PdfStatus.PENDING, pdf_requested_at__lt=limit, state__in=PDF_STATES
        ).values_list("pk", flat=True)[:100]
    )
