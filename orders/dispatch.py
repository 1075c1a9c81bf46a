"""Who does an order and when: the planning's change of technician and dates,
all or nothing, through the order services."""

from __future__ import annotations

import functools
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from orders import planning, services, tasks
from orders.durations import duration
from orders.models import DEFAULT_VISIT, Order, OrderEvent, OrderSeen
from orders.states import STATE_LABELS, Action, State
from portal.errors import Refused
from portal.models import User

# "Leave the technician as they are": None would take the order from them.
KEEP = object()


# What the planning may still move: works not begun (an order to acknowledge is
# acknowledged on the way). Begun, finished or ended, it stays where it is.
MOVABLE_STATES = frozenset({State.TO_ACKNOWLEDGE, State.ACKNOWLEDGED, State.PLANNED, State.SUSPENDED})


def not_movable(order: Order) -> str:
    """Why `order` cannot be given another time (French), or "" when it can."""
    if order.state in MOVABLE_STATES:
        return ""
    return (
        f"Elle est à l'état « {STATE_LABELS[State(order.state)]} » : "
        "une intervention commencée ou terminée ne se déplace plus."
    )


@transaction.atomic
def reschedule_order(
    order: Order,
    *,
    actor: User | None,
    technician: User | None | object = KEEP,
    appointment: datetime | None = None,
    planned_start: datetime | None = None,
    planned_end: datetime | None = None,
    visit_minutes: int | None = None,
    reason: str = "",
) -> list[OrderEvent]:
    """Reassign then reschedule in one transaction (an order still to be
    acknowledged is acknowledged first), with the visit's own duration when
    given: the events of what changed (none when nothing did). A refusal of
    any leaves all undone."""
    events: list[OrderEvent] = []
    if technician is not KEEP and order.technician_id != getattr(technician, "pk", None):
        assert technician is None or isinstance(technician, User)
        assigned = services.assign_order(order, actor=actor, technician=technician)
        if assigned is not None:
            events.append(assigned)
    if (appointment is not None or planned_start is not None) and order.state == State.TO_ACKNOWLEDGE:
        # Dispatching a new order onto a day takes it into account for the company.
        events.append(services.acknowledge_order(order, actor=actor))
    if visit_minutes is not None:
        changed = set_visit_length(order, actor=actor, minutes=visit_minutes)
        if changed is not None:
            events.append(changed)
    when = {"planned_start": planned_start, "planned_end": planned_end}
    if appointment is not None:
        when = {"appointment": appointment}
    if (appointment is not None or planned_start is not None) and planning.changes_date(order, **when):
        # A date moved needs its reason: `plan_order` refuses it without, and relays it.
        events.append(planning.plan_order(order, actor=actor, reason=reason, **when))
    if events and order.technician_id is not None and order.technician_id != getattr(actor, "pk", None):
        # Told once the change is saved; a broker that is down loses only the email.
        changes = [event.label for event in events]
        transaction.on_commit(functools.partial(tasks.tell_technician.delay, order.pk, changes), robust=True)
    return events


MIN_VISIT_MINUTES, MAX_VISIT_MINUTES = 5, 24 * 60


@transaction.atomic
def set_visit_length(order: Order, *, actor: User | None, minutes: int) -> OrderEvent | None:
    """How long `order`'s visit holds its technician on the planning, when it
    differs from its service code's duration (that duration again clears it):
    the event, or None when nothing changed."""
    if not MIN_VISIT_MINUTES <= minutes <= MAX_VISIT_MINUTES:
        raise Refused("La durée d'une visite va de 5 minutes à 24 heures.")
    locked = services.lock_for(order, Action.EDIT)
    code = locked.service_code
    usual = code.visit_minutes if code is not None else int(DEFAULT_VISIT.total_seconds() // 60)
    own = None if minutes == usual else minutes
    if locked.visit_minutes == own:
        return None
    Order.objects.filter(pk=locked.pk).update(visit_minutes=own, updated_at=timezone.now())
    order.refresh_from_db()
    label = f"Durée de la visite : {duration(order.visit_length)}"
    return services.record_event(order, kind="visit_length", label=label, actor=actor, data={"minutes": minutes})


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
