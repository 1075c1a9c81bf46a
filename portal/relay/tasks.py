"""Celery tasks of the relay. Each takes ids, re-reads rows, and is safe to run twice."""

from __future__ import annotations

from celery import shared_task

from portal.relay import delivery, watch


@shared_task(ignore_result=True, acks_late=True, time_limit=120, soft_time_limit=100)
def deliver_message(message_id: int) -> str | None:
    return delivery.deliver(message_id)


@shared_task(ignore_result=True, time_limit=60, soft_time_limit=50)
def sweep_outbox() -> int:
    """Queue what is due: retries whose time has come, claims that expired,
    and anything the broker lost. A full batch means more is waiting: go on."""
    queued = delivery.sweep()
    if queued >= 1000:
        sweep_outbox.delay()
    return queued


@shared_task(ignore_result=True, time_limit=60, soft_time_limit=50)
def watch_service_level() -> None:
    watch.check_service_level()


@shared_task(bind=True, ignore_result=True, acks_late=True, time_limit=120, soft_time_limit=100, max_retries=8)
def ingest_notification(self, notification_id: int) -> str:
    """Apply a stored notification; the platform being unreachable is retried
    with backoff, then left for `retry_notifications` to pick up."""
    from portal.relay import ingest, intent

    try:
        return ingest.process_notification(notification_id)
    except intent.TransientError as error:
        raise self.retry(exc=error, countdown=min(600, 5 * 2**self.request.retries)) from error


@shared_task(ignore_result=True, time_limit=300, soft_time_limit=240)
def retry_notifications() -> int:
    """Notifications received but never applied (broker lost the task, platform was down)."""
    from datetime import timedelta

    from django.utils import timezone

    from portal.relay.models import InboundNotification, NotificationStatus

    stale = InboundNotification.objects.filter(
        status=NotificationStatus.RECEIVED, received_at__lt=timezone.now() - timedelta(minutes=1)
    ).values_list("pk", flat=True)[:500]
    for notification_id in stale:
        ingest_notification.delay(notification_id)
    return len(stale)


@shared_task(ignore_result=True, time_limit=600, soft_time_limit=540)
def reconcile_operations() -> int:
    from portal.relay import ingest, intent
    from portal.relay.models import Connection

    created = 0
    for connection in Connection.objects.filter(enabled=True, kind="intent"):
        try:
            created += ingest.reconcile(connection)
        except intent.PlatformError:
            # The platform is unreachable or refuses: the next round tries again.
            continue
    return created


@shared_task(ignore_result=True, time_limit=600, soft_time_limit=540)
def sync_contracts() -> int:
    """Every night: each active contract's service codes from its client's platform."""
    from portal.models import Contract
    from portal.relay import ingest, intent
    from portal.relay.models import Connection

    synced = 0
    for connection in Connection.objects.filter(enabled=True, kind="intent").select_related("client"):
        for contract in Contract.objects.filter(client=connection.client, active=True):
            try:
                ingest.sync_contract(connection, contract)
            except intent.PlatformError:
                continue  # tried again tomorrow; the admin action says why
            synced += 1
    return synced
