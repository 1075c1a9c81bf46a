"""Who does an order and when: the planning's change of technician and dates,
all or nothing, through the order services."""

from __future__ import annotations

import functools
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from orders import services, tasks
from orders.models import Order, OrderEvent, OrderSeen
from orders.states import State
from portal.models import User

# "Leave the technician as they are": None would take the order from them.
KEEP = object()


def _same_minute(first: datetime | None, second: datetime | None) -> bool:
    if first is None or second is None:
        return first is second
    return first.replace(second=0, microsecond=0) == second.replace(second=0, microsecond=0)


@transaction.atomic
def reschedule_order(
    order: Order,
    *,
    actor: User | None,
    technician: User | None | object = KEEP,
    appointment: datetime | None = None,
    planned_start: datetime | None = None,
    planned_end: datetime | None = None,
) -> list[OrderEvent]:
    """Reassign then reschedule in one transaction (an order still to be
    acknowledged is acknowledged first): the events of what changed (none when
    nothing did). A refusal of either leaves both undone."""
    events: list[OrderEvent] = []
    if technician is not KEEP and order.technician_id != getattr(technician, "pk", None):
        assert technician is None or isinstance(technician, User)
        assigned = services.assign_order(order, actor=actor, technician=technician)
        if assigned is not None:
            events.append(assigned)
    if (appointment is not None or planned_start is not None) and order.state == State.TO_ACKNOWLEDGE:
        # Dispatching a new order onto a day takes it into account for the company.
        events.append(services.acknowledge_order(order, actor=actor))
    if appointment is not None:
        if not (_same_minute(order.appointment_at, appointment) and order.planned_start is None):
            events.append(services.plan_order(order, actor=actor, appointment=appointment))
    elif planned_start is not None and not (
        order.appointment_at is None
        and _same_minute(order.planned_start, planned_start)
        and _same_minute(order.planned_end, planned_end)
    ):
        events.append(services.plan_order(order, actor=actor, planned_start=planned_start, planned_end=planned_end))
    if events and order.technician_id is not None and order.technician_id != getattr(actor, "pk", None):
        # Told once the change is saved; a broker that is down loses only the email.
        changes = [event.label for event in events]
        transaction.on_commit(functools.partial(tasks.tell_technician.delay, order.pk, changes), robust=True)
    return events


def mark_seen(order: Order, user: User) -> None:
    """`user` (a technician) opened `order`'s page now: what was given or moved
    to them before is no longer news on their list."""
    if user.is_technician:
        # One statement whether or not it was seen before (INSERT ... ON CONFLICT DO UPDATE).
        OrderSeen.objects.bulk_create(
            [OrderSeen(user=user, order=order, seen_at=timezone.now())],
            update_conflicts=True,
            unique_fields=["user", "order"],
            update_fields=["seen_at"],
        )
