"""Celery tasks of the relay. Each takes ids, re-reads rows, and is safe to run
twice. This is the only module that queues deliveries (`queue_delivery`)."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.utils import timezone
from google.api_core import exceptions as google_errors

from portal.models import Contract
from portal.relay import catalogue, delivery, inbound, intent, pubsub, pull, watch
from portal.relay.models import Connection, ConnectionKind, InboundNotification, NotificationStatus

logger = logging.getLogger(__name__)

SWEEP_BATCH = 1000


def queue_delivery(message_id: int, *, also: list[int] | None = None) -> None:
    """Ask a worker to deliver now (with `also`, those messages in the same
    task); the sweep covers a broker that is down."""
    try:
        if also:
            deliver_message.delay(message_id, also=also)
        else:
            deliver_message.delay(message_id)
    except Exception:  # the broker is down or misconfigured: the sweep will send it
        logger.warning("Could not queue delivery of message %s; the sweep will.", message_id, exc_info=True)


@shared_task(ignore_result=True, acks_late=True, time_limit=120, soft_time_limit=100)
def deliver_message(message_id: int, also: list[int] | None = None) -> str | None:
    """Deliver the message (and those of `also`, handed over by another task)
    and those that follow them; queue what the delivery found due for other
    workers. Returns the first outcome."""
    result = delivery.deliver(message_id, also=also or ())
    for following in result.queue:
        queue_delivery(following)
    for group in result.handoff:
        queue_delivery(group[0], also=group[1:])
    return result.outcome


@shared_task(ignore_result=True, time_limit=60, soft_time_limit=50)
def sweep_outbox() -> int:
    """Queue what is due: retries whose time has come, claims that expired,
    and anything the broker lost (a task per batch: each goes on while
    messages are due; the next sweep, 5 s later, sees what is left)."""
    due = delivery.sweep(batch=SWEEP_BATCH)
    for message_id in due:
        queue_delivery(message_id)
    if delivery.failing_connections():
        # A platform is down: probe it every second until the next sweep, so
        # that its return is seen within a second, not up to 5.
        for seconds in range(1, PROBES_PER_SWEEP + 1):
            try:
                probe_outbox.apply_async(countdown=seconds, expires=seconds + 5)
            except Exception:  # the broker is down: the next sweep probes
                logger.warning("Could not queue a probe of the failing platforms.", exc_info=True)
                break
    return len(due)


# The sweep runs every 5 s: between two sweeps, a failing platform is probed every second.
PROBES_PER_SWEEP = 4


@shared_task(ignore_result=True, time_limit=60, soft_time_limit=50)
def probe_outbox() -> int:
    """Try one waiting message of each failing connection now (see
    `delivery.probe_failing`): its success brings the others back."""
    probed = delivery.probe_failing(timezone.now())
    if probed:
        delivery.mark_queued(probed)
    for message_id in probed:
        queue_delivery(message_id)
    return len(probed)


@shared_task(ignore_result=True, time_limit=60, soft_time_limit=50)
def watch_service_level() -> None:
    watch.check_service_level()


@shared_task(
    ignore_result=True,
    acks_late=True,
    time_limit=120,
    soft_time_limit=100,
    autoretry_for=(intent.TransientError,),
    retry_backoff=5,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=8,
)
def ingest_notification(notification_id: int) -> str:
    """Apply a stored notification; the platform being unreachable is retried
    with backoff, then left for `retry_notifications` to pick up."""
    return inbound.process_notification(notification_id)


@shared_task(ignore_result=True, time_limit=300, soft_time_limit=240)
def retry_notifications() -> int:
    """Notifications received but never applied (broker lost the task, platform was down)."""
    stale = InboundNotification.objects.filter(
        status=NotificationStatus.RECEIVED, received_at__lt=timezone.now() - timedelta(minutes=1)
    ).values_list("pk", flat=True)[:500]
    for notification_id in stale:
        ingest_notification.delay(notification_id)
    return len(stale)


@shared_task(ignore_result=True, time_limit=600, soft_time_limit=540)
def reconcile_operations() -> int:
    created = 0
    for connection in Connection.objects.filter(enabled=True, kind=ConnectionKind.INTENT):
        try:
            created += inbound.reconcile(connection)
        except intent.PlatformError:
            # The platform is unreachable or refuses: the next round tries again.
            continue
    return created


@shared_task(ignore_result=True, time_limit=600, soft_time_limit=540)
def sync_contracts() -> int:
    """Every night: each active contract's service codes from its client's platform."""
    synced = 0
    connections = Connection.objects.filter(enabled=True, kind=ConnectionKind.INTENT).select_related("client")
    for connection in connections:
        for contract in Contract.objects.filter(client=connection.client, active=True):
            try:
                catalogue.sync_contract(connection, contract)
            except intent.PlatformError:
                continue  # tried again tomorrow; the admin action says why
            synced += 1
    return synced


@shared_task(ignore_result=True, time_limit=120, soft_time_limit=110)
def pull_bus() -> int:
    """Every few seconds: Nexxio's messages waiting on each Pub/Sub connection's
    subscription, stored then applied (pull.py). Returns how many were new."""
    created = 0
    for connection in Connection.objects.filter(enabled=True, kind=ConnectionKind.PUBSUB).select_related("client"):
        if not connection.pubsub_subscription:
            continue
        try:
            created += len(pull.pull_connection(connection, budget_seconds=30.0).created)
        except (google_errors.GoogleAPICallError, pubsub.ConfigurationError) as error:
            # The bus is unreachable or refuses: the messages wait on it; the next round tries again.
            logger.warning("Pull from connection %s failed: %s", connection.pk, error)
    return created
