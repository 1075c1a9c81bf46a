"""Planning an order, and moving its date: the appointment or the period of
works (`plan_order`), and what a reschedule is for every page that plans
(`is_replanning`): a move needs its reason (`ReasonNeeded`), relayed to the
platform with the new date. Built on the core of `orders.services`.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from orders import states
from orders.formatting import format_datetime, iso
from orders.models import Order, OrderEvent
from orders.services import ServiceError, Superseded, by_whom, transition
from orders.states import Action, Facts, State
from portal.models import User

# Planned in these states, an order gets its first date; in the others, a date
# moves the one it had: a reschedule, « reporté », `pending`/`replanned` on the platform.
FIRST_PLAN_STATES = frozenset({State.TO_ACKNOWLEDGE, State.ACKNOWLEDGED})

# The platform tells the occupant the new date with the log's description: a
# reschedule says why (the planning pages put this on their reason field).
REASON_NEEDED = "Indiquez le motif du report : il est transmis au client avec le nouveau rendez-vous."
REASON_NEEDED_FOR_WORKS = "Indiquez le motif du report : il est transmis au client avec les nouvelles dates."


class ReasonNeeded(ServiceError):
    """A reschedule without its reason. `field` names the forms' field it is about."""

    field = "reason"


def plans_again(order: Order) -> bool:
    """Whether a date given to `order` now replaces one it was given before
    (a reschedule, whose reason is asked), rather than being its first."""
    return order.state not in FIRST_PLAN_STATES


def _same_minute(first: datetime | None, second: datetime | None) -> bool:
    if first is None or second is None:
        return first is second
    return first.replace(second=0, microsecond=0) == second.replace(second=0, microsecond=0)


def changes_date(
    order: Order,
    *,
    appointment: datetime | None = None,
    planned_start: datetime | None = None,
    planned_end: datetime | None = None,
) -> bool:
    """Whether this appointment (or, without one, this period of works) differs
    from what `order` has, to the minute."""
    if appointment is not None:
        return not (_same_minute(order.appointment_at, appointment) and order.planned_start is None)
    return not (
        order.appointment_at is None
        and _same_minute(order.planned_start, planned_start)
        and _same_minute(order.planned_end, planned_end)
    )


def is_replanning(
    order: Order,
    *,
    appointment: datetime | None = None,
    planned_start: datetime | None = None,
    planned_end: datetime | None = None,
) -> bool:
    """Whether giving `order` this appointment (or this period of works) moves
    the date it had: the one rule of every page that plans. Its reason is then
    required (`plan_order`), and relayed to the platform with the new date.
    The same minute again moves nothing, and no date at all is no plan."""
    if not plans_again(order) or (appointment is None and planned_start is None):
        return False
    return changes_date(order, appointment=appointment, planned_start=planned_start, planned_end=planned_end)


@transaction.atomic
def plan_order(
    order: Order,
    *,
    actor: User | None,
    appointment: datetime | None = None,
    planned_start: datetime | None = None,
    planned_end: datetime | None = None,
    reason: str = "",
    at: datetime | None = None,
) -> OrderEvent:
    """Set the appointment, or the planned period; again, a replanning. One
    that moves the date (`is_replanning`) needs its `reason`, put in the label
    (the platform's log description) and refused in French without it."""
    replanning, at, reason = plans_again(order), at or timezone.now(), " ".join(reason.split())
    if replanning:
        _check_newest_plan(order, at)
    facts = Facts(appointment=appointment, planned_start=planned_start, planned_end=planned_end, at=at)
    if not reason and is_replanning(
        order, appointment=appointment, planned_start=planned_start, planned_end=planned_end
    ):
        states.apply(order.state, Action.PLAN, facts)  # what the state machine refuses is said first
        raise ReasonNeeded(REASON_NEEDED if appointment is not None else REASON_NEEDED_FOR_WORKS)
    when = {"appointment": appointment, "planned_start": planned_start, "planned_end": planned_end}
    if appointment is not None:
        label = f"Rendez-vous {'reporté au' if replanning else 'fixé le'} {format_datetime(appointment)}"
    elif planned_start is not None and planned_end is not None:
        label = (
            f"Travaux {'replanifiés' if replanning else 'planifiés'} du {format_datetime(planned_start)} "
            f"au {format_datetime(planned_end)}"
        )
    else:
        label = "Planification"
    return transition(
        order,
        Action.PLAN,
        facts,
        actor=actor,
        at=at,
        label=f"{label} (motif : {reason})" if reason else label,
        changes={
            "appointment_at": appointment,
            "planned_start": planned_start,
            "planned_end": planned_end,
            "suspend_reason": "",
        },
        data={"replanned": replanning, "reason": reason, **{name: iso(value) for name, value in when.items()}},
    )


def _check_newest_plan(order: Order, at: datetime) -> None:
    """The appointment set last (by the time it was set) stays: a replanning
    made before it, arriving later (offline), is refused with `Superseded`."""
    locked = Order.objects.select_for_update().get(pk=order.pk)
    latest = locked.events.filter(kind=Action.PLAN.value).order_by("-at", "-pk").first()
    if latest is None or latest.at <= at:
        return
    when = locked.appointment_at or locked.planned_start
    kept = f" ({format_datetime(when)})" if when else ""
    raise Superseded(
        f"Le rendez-vous a été changé {by_whom(locked, [Action.PLAN.value])}, après votre saisie "
        f"({format_datetime(at)}) : c'est ce rendez-vous{kept}, le plus récent, qui est gardé."
    )
