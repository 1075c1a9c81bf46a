"""Celery tasks of the quotes. Each takes ids, re-reads rows, and is safe to run twice."""

from __future__ import annotations

import logging

from celery import shared_task

from orders.tasks import MAX_RETRIES, TRANSIENT_ERRORS, retry_delay
from quotes import decisions, documents
from quotes.models import Quote

logger = logging.getLogger(__name__)


@shared_task(
    bind=True, ignore_result=True, acks_late=True, time_limit=180, soft_time_limit=150, max_retries=MAX_RETRIES
)
def render_quote_pdf(self, quote_id: int) -> str:
    """Render a sent quote's PDF (outside any transaction), keep it and record
    its upload to the platform."""
    if not documents.wants_pdf(quote_id):
        return "nothing to do"
    try:
        # Imported here: WeasyPrint takes seconds to load; only the worker that renders pays it.
        from quotes import pdf

        content = pdf.render_quote(Quote.objects.get(pk=quote_id))
    except TRANSIENT_ERRORS as error:
        final = self.request.retries >= self.max_retries
        documents.record_pdf_error(quote_id, error=f"{type(error).__name__} : {error}", final=final)
        if final:
            return "failed"
        raise self.retry(exc=error, countdown=retry_delay(self.request.retries)) from error
    except Exception as error:
        # A permanent error (a template's): kept for a person, who asks again once fixed.
        documents.record_pdf_error(quote_id, error=f"{type(error).__name__} : {error}", final=True)
        logger.exception("PDF of quote %s failed", quote_id)
        return "failed"
    return "done" if documents.attach_quote_pdf(quote_id, content=content) else "already done"


@shared_task(ignore_result=True)
def sweep_quote_pdfs() -> int:
    """Every few minutes: a quote's PDF whose task was lost is asked again."""
    stalled = documents.stalled_pdfs()
    for quote_id in stalled:
        render_quote_pdf.delay(quote_id)
    return len(stalled)


@shared_task(ignore_result=True, acks_late=True, time_limit=120, soft_time_limit=100)
def expire_quotes() -> int:
    """Every hour: the sent quotes past their validity expire."""
    return decisions.expire_quotes()
