"""Celery tasks of the orders. Each takes ids, re-reads rows, and is safe to run twice."""

from __future__ import annotations

import logging
import random

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from orders import documents, erasure, notifications, report_photos, reversibility
from orders.models import InterventionReport, Letter, LetterPdf, PdfStatus

logger = logging.getLogger(__name__)

# What may go better on a later try: the storage (a network file system or
# object storage) or the database not answering. Anything else (a template
# error, an image WeasyPrint cannot use) would fail the same way again.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (OSError, OperationalError)
try:
    from botocore.exceptions import BotoCoreError  # S3 storage, when configured
except ImportError:  # pragma: no cover
    pass
else:
    TRANSIENT_ERRORS += (BotoCoreError,)

MAX_RETRIES = 4


def retry_delay(retries: int) -> float:
    """20 s, 40 s, 80 s, 160 s, each with up to half again of jitter.

    Written out rather than Celery's `autoretry_for`/`retry_backoff` (which the
    relay's ingestion uses): each failure is recorded on the report, and the last
    one as final for a person to see, which needs the task to know which try it is."""
    delay = 20 * 2**retries
    return delay + random.uniform(0, delay / 2)


@shared_task(
    bind=True, ignore_result=True, acks_late=True, time_limit=180, soft_time_limit=150, max_retries=MAX_RETRIES
)
def render_report_pdf(self, report_id: int) -> str:
    """Render the report's PDF (outside any transaction) and keep it as the
    order's document, which also has it sent to the client's platform."""
    report = InterventionReport.objects.filter(pk=report_id).first()
    if report is None or report.pdf_status == PdfStatus.DONE:
        return "nothing to do"
    if not documents.start_report_pdf(report_id):
        return "nothing to do"
    try:
        # Imported here: WeasyPrint takes seconds to load, which every web and
        # test process would pay at start; only the worker that renders does.
        from orders import pdf

        content = pdf.render_report(report)
    except TRANSIENT_ERRORS as error:
        final = self.request.retries >= self.max_retries
        documents.record_report_pdf_error(report_id, error=f"{type(error).__name__} : {error}", final=final)
        if final:
            logger.warning("PDF of report %s failed after %s tries: %r", report_id, self.request.retries + 1, error)
            return "failed"
        raise self.retry(exc=error, countdown=retry_delay(self.request.retries)) from error
    except Exception as error:
        # A permanent error: recorded for a person (the page offers « Relancer »
        # once it is fixed), not retried on its own.
        documents.record_report_pdf_error(report_id, error=f"{type(error).__name__} : {error}", final=True)
        logger.exception("PDF of report %s failed", report_id)
        return "failed"
    document = documents.attach_report_pdf(report, content=content)
    return "done" if document is not None else "already done"


@shared_task(bind=True, ignore_result=True, acks_late=True, time_limit=120, soft_time_limit=100, max_retries=3)
def render_letter_pdf(self, letter_id: int) -> str:
    """Render a letter to the buyer (outside any transaction) and keep it."""
    # Imported here: WeasyPrint takes seconds to load (see render_report_pdf).
    from orders import pdf

    if not Letter.objects.filter(pk=letter_id).exclude(pdf_status=LetterPdf.DONE).exists():
        return "nothing to do"
    try:
        content = pdf.render_letter(letter_id)
    except TRANSIENT_ERRORS as error:
        if self.request.retries >= self.max_retries:
            documents.record_letter_pdf_failure(letter_id)
            return "failed"
        raise self.retry(exc=error, countdown=retry_delay(self.request.retries)) from error
    except Exception:
        documents.record_letter_pdf_failure(letter_id)
        logger.exception("PDF of letter %s failed", letter_id)
        return "failed"
    return "done" if documents.keep_letter_pdf(letter_id, content) is not None else "already done"


@shared_task(ignore_result=True)
def sweep_report_pdfs() -> str:
    """Every few minutes: a report's PDF whose task was lost is asked again."""
    requeued, given_up = documents.ask_stalled_report_pdfs_again()
    for report_id in requeued:
        render_report_pdf.delay_on_commit(report_id)
    if requeued or given_up:
        logger.info("Report PDFs: %s asked again, %s given up", len(requeued), given_up)
    return f"{len(requeued)} asked again, {given_up} given up"


@shared_task(ignore_result=True, acks_late=True, time_limit=300, soft_time_limit=240)
def forget_stale_photos() -> int:
    """Every night: the photos sent ahead of a report that no report took within two weeks."""
    return report_photos.forget_stale_uploads(timezone.now())


@shared_task(ignore_result=True, acks_late=True, time_limit=120, soft_time_limit=100)
def announce_new_orders() -> int:
    """Every minute: email the orders received since the last run (each once)."""
    return notifications.announce_new_orders()


@shared_task(ignore_result=True, acks_late=True, time_limit=120, soft_time_limit=100)
def warn_orders_late_soon() -> int:
    """Every 15 minutes: email the orders that will be late within 48 hours (each once per due date)."""
    return notifications.warn_late_soon()


@shared_task(ignore_result=True, acks_late=True, time_limit=120, soft_time_limit=100)
def tell_unapplied_actions() -> int:
    """Every minute: email the technicians' actions the server did not apply (each once)."""
    return notifications.tell_unapplied_actions()


@shared_task(ignore_result=True, acks_late=True, time_limit=120, soft_time_limit=100)
def tell_technician(order_id: int, changes: list[str]) -> int:
    """After the planning gave or moved an order: email its technician."""
    return notifications.tell_technician(order_id, changes)


@shared_task(ignore_result=True, acks_late=True, time_limit=1800, soft_time_limit=1700)
def erase_ended_contracts() -> dict[str, dict[str, int]]:
    """Every night: the occupants' personal data of the contracts whose end and
    retention period have passed (orders.erasure)."""
    return erasure.erase_due_contracts()


@shared_task(ignore_result=True, acks_late=True, time_limit=3600, soft_time_limit=3500)
def build_reversibility_export(export_id: int) -> str:
    """A client's or a contract's reversibility zip (orders.reversibility)."""
    return reversibility.build_export(export_id)
