"""Emails about orders to supervisors and office staff: a new order arrived,
an order will be late within 48 hours, a technician's offline work was not applied.

Sent by beat jobs rather than from the services: a job that runs every minute
finds the orders received since it last ran (those not announced yet) and
announces them in one email, and every 15 minutes another warns about the
orders that will be late within 48 hours. Each order is recorded
(`OrderNotification`) before its email goes, so that it goes once whatever
runs twice; if the mail server is down the record is dropped again and the
next run tries once more.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.urls import reverse
from django.utils import timezone

from orders.models import Order, UnappliedAction
from orders.states import State
from portal import emails
from portal.models import NotificationKind, OrderNotification

logger = logging.getLogger(__name__)

# An order received longer ago than this is no news: not announced (a job that
# was down for a day, the demo data, the orders already there when this began).
NEW_ORDER_LOOKBACK = timedelta(hours=24)
# Orders listed in one email at most; the rest go with the next run.
MAX_ORDERS_PER_EMAIL = 100


def _order_link(order: Order) -> str:
    return settings.SITE_URL + reverse("orders:supervisor_order", args=[order.pk])


def _claim(order: Order, kind: NotificationKind) -> OrderNotification | None:
    """Record that `order` is being notified; None if it already was (another
    run got there first: the unique constraints decide)."""
    due_at = order.due_at if kind == NotificationKind.LATE_SOON else None
    try:
        with transaction.atomic():
            return OrderNotification.objects.create(order=order, kind=kind, due_at=due_at)
    except IntegrityError:
        return None


def _notify_orders(kind: NotificationKind, orders: QuerySet[Order], template: str, now: datetime) -> int:
    """Claim each order, then send one email listing the claimed ones to whoever
    wants `kind`. The number of orders notified."""
    candidates = list(
        orders.select_related("contract__client", "asset", "service_code", "technician")[:MAX_ORDERS_PER_EMAIL]
    )
    claimed = [(order, notice) for order in candidates if (notice := _claim(order, kind)) is not None]
    if not claimed:
        return 0
    notice_ids = [notice.pk for _, notice in claimed]
    to = emails.recipients(kind)
    items = [{"order": order, "url": _order_link(order)} for order, _ in claimed]
    try:
        emails.send(template, {"items": items, "count": len(items), "now": now}, to)
    except OSError:
        # The mail server is down: forget the claims, the next run tries again.
        OrderNotification.objects.filter(pk__in=notice_ids).delete()
        logger.exception("Could not send the %s email for %s orders", kind, len(items))
        return 0
    OrderNotification.objects.filter(pk__in=notice_ids).update(sent_at=timezone.now(), recipients=len(to))
    return len(items)


def announce_new_orders(now: datetime | None = None) -> int:
    """(a) The orders received in the last 24 hours not announced yet, oldest first."""
    now = now or timezone.now()
    announced = OrderNotification.objects.filter(order=OuterRef("pk"), kind=NotificationKind.NEW_ORDER)
    orders = (
        Order.objects.filter(received_at__gte=now - NEW_ORDER_LOOKBACK)
        .exclude(state=State.CANCELLED)
        .exclude(Exists(announced))
        .order_by("received_at", "pk")
    )
    return _notify_orders(NotificationKind.NEW_ORDER, orders, "new_orders", now)


def warn_late_soon(now: datetime | None = None) -> int:
    """(b) The orders that will be late within 48 hours, each once per due date,
    the most urgent first."""
    now = now or timezone.now()
    warned = OrderNotification.objects.filter(
        order=OuterRef("pk"), kind=NotificationKind.LATE_SOON, due_at=OuterRef("due_at")
    )
    orders = Order.objects.due_soon(now).exclude(Exists(warned)).order_by("due_at", "pk")
    return _notify_orders(NotificationKind.LATE_SOON, orders, "late_soon", now)


def tell_technician(order_id: int, changes: list[str]) -> int:
    """The technician an order was given or moved to by someone else (the
    planning, orders.dispatch): what changed, and the link to the order."""
    order = Order.objects.select_related("technician", "asset", "service_code", "contract__client").get(pk=order_id)
    technician = order.technician
    if technician is None or not technician.is_active or not technician.email:
        return 0
    url = settings.SITE_URL + reverse("orders:detail", args=[order.pk])
    try:
        return emails.send("dispatched", {"order": order, "changes": changes, "url": url}, [technician.email])
    except OSError:  # the mail server is down: their list marks it « nouveau » or « modifié » all the same
        logger.exception("Could not tell %s about order %s", technician, order.pk)
        return 0


# Actions listed in one email at most; the rest go with the next run.
MAX_UNAPPLIED_PER_EMAIL = 50


def tell_unapplied_actions(now: datetime | None = None) -> int:
    """Every minute: the technicians' actions not applied since the last run
    (orders.conflicts), in one email to whoever wants them (the supervisors, and
    office staff, by default). Each is claimed (`notified_at`, a guarded update)
    before the email goes, so that it goes once; if the mail server is down the
    claims are dropped and the next run tries again. The number of actions told."""
    now = now or timezone.now()
    candidates = list(
        UnappliedAction.objects.filter(notified_at__isnull=True)
        .order_by("received_at", "pk")
        .values_list("pk", flat=True)[:MAX_UNAPPLIED_PER_EMAIL]
    )
    claimed = [
        pk
        for pk in candidates
        if UnappliedAction.objects.filter(pk=pk, notified_at__isnull=True).update(notified_at=now)
    ]
    if not claimed:
        return 0
    unapplied = list(
        UnappliedAction.objects.filter(pk__in=claimed)
        .select_related("order__contract__client", "order__pilot", "user")
        .order_by("order_id", "acted_at", "pk")
    )
    to = emails.recipients(NotificationKind.OFFLINE_UNAPPLIED)
    items = [{"action": action, "url": f"{_order_link(action.order)}#non-applique-{action.pk}"} for action in unapplied]
    try:
        emails.send("offline_unapplied", {"items": items, "count": len(items), "now": now}, to)
    except OSError:
        UnappliedAction.objects.filter(pk__in=claimed).update(notified_at=None)
        logger.exception("Could not send the email about %s actions not applied", len(items))
        return 0
    UnappliedAction.objects.filter(pk__in=claimed).update(notified_to=len(to))
    return len(items)
