"""The service-level watch: the contract wants every change on the platform
within 15 minutes. Every minute, per connection: the age of the oldest
undelivered message; an email at 5 minutes; a breach recorded past 15."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Count, Min, Q
from django.utils import timezone

from portal import emails
from portal.limits import SHARING_LIMIT
from portal.models import NotificationKind
from portal.relay.models import Breach, Connection, MessageStatus, OutboxMessage, ServiceLevelWarning

logger = logging.getLogger(__name__)

WARN_AFTER = timedelta(minutes=5)
UNDELIVERED = [MessageStatus.PENDING, MessageStatus.REJECTED]


@dataclass(frozen=True)
class Health:
    connection: Connection
    waiting: int
    rejected: int
    oldest_at: datetime | None
    breaches_this_month: int

    @property
    def oldest_age(self) -> timedelta | None:
        return timezone.now() - self.oldest_at if self.oldest_at else None


def month_start(now: datetime) -> datetime:
    """Midnight on the first of the month, Paris time: where "this month's breaches" begin."""
    return timezone.localtime(now).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def health(now: datetime | None = None) -> list[Health]:
    """The relay's health per connection, counted from the undelivered messages
    alone: the status index finds the few waiting or refused ones, however many
    were delivered over the years (a join with every message grows with the
    relay's whole history: figures in bench/README.md)."""
    now = now or timezone.now()
    undelivered = {
        row["connection"]: row
        for row in OutboxMessage.objects.filter(status__in=UNDELIVERED)
        .order_by()
        .values("connection")
        .annotate(
            waiting=Count("pk", filter=Q(status=MessageStatus.PENDING)),
            rejected=Count("pk", filter=Q(status=MessageStatus.REJECTED)),
            oldest_at=Min("created_at"),
        )
    }
    breaches = dict(
        Breach.objects.filter(changed_at__gte=month_start(now))
        .order_by()
        .values_list("connection")
        .annotate(n=Count("pk"))
        .values_list("connection", "n")
    )
    report = []
    for connection in Connection.objects.select_related("client").order_by("pk"):
        counts = undelivered.get(connection.pk, {})
        report.append(
            Health(
                connection,
                counts.get("waiting", 0),
                counts.get("rejected", 0),
                counts.get("oldest_at"),
                breaches.get(connection.pk, 0),
            )
        )
    return report


def check_service_level(now: datetime | None = None) -> list[Health]:
    now = now or timezone.now()
    report = health(now)
    for item in report:
        if item.oldest_at is None:
            continue
        _record_waiting_breaches(item.connection, now)
        if now - item.oldest_at >= WARN_AFTER:
            _warn(item, now)
    return report


def _record_waiting_breaches(connection: Connection, now: datetime) -> None:
    """Messages still waiting past 15 minutes are breaches already; their delay
    grows until they are delivered."""
    late = OutboxMessage.objects.filter(
        connection=connection, status__in=UNDELIVERED, created_at__lt=now - SHARING_LIMIT
    ).values_list("pk", "created_at")
    for message_id, created_at in late:
        Breach.objects.update_or_create(
            message_id=message_id,
            defaults={
                "connection": connection,
                "changed_at": created_at,
                "delivered_at": None,
                "delay_seconds": int((now - created_at).total_seconds()),
            },
        )


def _warn(item: Health, now: datetime) -> None:
    oldest = (
        OutboxMessage.objects.filter(connection=item.connection, status__in=UNDELIVERED)
        .order_by("created_at", "pk")
        .first()
    )
    if oldest is None:
        return
    age = now - oldest.created_at
    try:
        with transaction.atomic():
            ServiceLevelWarning.objects.create(
                connection=item.connection, oldest_message=oldest, age_seconds=int(age.total_seconds())
            )
    except IntegrityError:
        return  # already warned about this message
    try:
        emails.send(
            "relay_late",
            {
                "connection": item.connection,
                "age_minutes": int(age.total_seconds() // 60),
                "waiting": item.waiting,
                "rejected": item.rejected,
                "oldest": oldest,
            },
            emails.recipients(NotificationKind.RELAY_LATE),
        )
    except OSError:
        logger.exception("Could not send the relay warning for %s", item.connection)
