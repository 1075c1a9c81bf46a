from __future__ import annotations

from celery import shared_task
from django.contrib.sessions.models import Session
from django.utils import timezone


@shared_task(ignore_result=True)
def clear_expired_sessions() -> int:
    deleted, _ = Session.objects.filter(expire_date__lt=timezone.now()).delete()
    return deleted


@shared_task(ignore_result=True, acks_late=True, time_limit=120, soft_time_limit=100)
def announce_new_orders() -> int:
    """Every minute: email the orders received since the last run (each once)."""
    from portal import notifications

    return notifications.announce_new_orders()


@shared_task(ignore_result=True, acks_late=True, time_limit=120, soft_time_limit=100)
def warn_orders_late_soon() -> int:
    """Every 15 minutes: email the orders that will be late within 48 hours (each once per due date)."""
    from portal import notifications

    return notifications.warn_late_soon()
