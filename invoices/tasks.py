"""Celery tasks of the invoices: a batch of drafts issued one by one, each in
its own transaction, its progress kept on the batch for the page to show."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db.models import F

from invoices import services
from invoices.models import BatchState, Invoice, IssueBatch
from portal.errors import Refused

logger = logging.getLogger(__name__)


def run_batch(batch_id: int) -> IssueBatch:
    """Issue the batch's drafts still to issue (safe to run twice: an issued one is skipped)."""
    batch = IssueBatch.objects.select_related("created_by").get(pk=batch_id)
    for invoice_id in batch.invoice_ids:
        invoice = Invoice.objects.filter(pk=invoice_id).first()
        if invoice is None or invoice.is_issued:
            continue
        try:
            services.issue(invoice, actor=batch.created_by)
        except Refused as error:
            batch.failures.append([invoice_id, str(error)])
            IssueBatch.objects.filter(pk=batch_id).update(failures=batch.failures)
            continue
        except Exception as error:
            logger.exception("Issuing invoice %s failed", invoice_id)
            batch.failures.append([invoice_id, f"Erreur inattendue : {type(error).__name__}"])
            IssueBatch.objects.filter(pk=batch_id).update(failures=batch.failures)
            continue
        IssueBatch.objects.filter(pk=batch_id).update(done=F("done") + 1)
    IssueBatch.objects.filter(pk=batch_id).update(state=BatchState.DONE)
    batch.refresh_from_db()
    return batch


@shared_task(ignore_result=True, acks_late=True, time_limit=3600, soft_time_limit=3500)
def issue_batch(batch_id: int) -> str:
    batch = run_batch(batch_id)
    return f"{batch.done} issued, {len(batch.failures)} refused"
