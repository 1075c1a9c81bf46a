"""Offline conflicts: what becomes of a technician's action that the server does
not apply when it arrives (taken without network and sent later by the phone's
queue, or sent from a page that was out of date).

Nothing is dropped without a trace. Each such action is kept as an
`UnappliedAction` (what, when the technician did it, when it arrived, why it was
not applied), shown on the order's timeline to supervisors and office staff and
in the admin, and emailed to those who want it (orders.notifications). The
technician's phone gets the reason and what to do next, in French.

Why an action is not applied (`UnappliedReason`):
- refused: the order changed state meanwhile (cancelled, suspended...); the
  state machine's sentence, with who changed it and when;
- reassigned: the order was given to someone else (the phone then forgets it);
- line_removed: the line was removed from the order (the office is told when
  the tick said it had been done);
- superseded: an older value than the one set meanwhile (the progress, a line's
  mark, the appointment: the newest by the time it was given wins, in
  orders.services and orders.planning); the server's value stays;
- invalid: what was sent cannot be read.

Not relayed to the client's platform: nothing happened to the order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import IntegrityError, transaction
from django.utils import timezone

from orders.formatting import format_datetime
from orders.models import Order, OrderEvent, UnappliedAction, UnappliedReason
from orders.services import Superseded
from orders.states import STATE_LABELS, Action, State
from portal.errors import Refused
from portal.models import User

# Labels longer than this are shortened (a note).
LABEL_LENGTH = 300


@dataclass(frozen=True)
class Refusal:
    """Why an action was not applied and what to do next, as the phone shows it."""

    kind: UnappliedReason
    reason: str
    advice: str
    # The order is no longer the technician's: the phone forgets it.
    gone: bool = False

    def answer(self) -> dict[str, Any]:
        """The JSON a replay gets with its 409 (static/js/queue.js reads it)."""
        return {
            "status": "refused",
            "kind": self.kind.value,
            "errors": [self.reason],
            "reason": self.reason,
            "advice": self.advice,
            "gone": self.gone,
        }


def _person(user: User | None) -> str:
    return (user.get_full_name() or str(user)) if user is not None else ""


def supervisor_of(order: Order) -> str:
    """« votre conducteur de travaux (Claire Dubois, 06 12 34 56 78) »: the order's pilot."""
    pilot = order.pilot
    if pilot is None:
        return "votre conducteur de travaux"
    details = ", ".join(part for part in (_person(pilot), pilot.mobile) if part)
    return f"votre conducteur de travaux ({details})"


def call_supervisor(order: Order) -> str:
    return f"Appelez {supervisor_of(order)}."


def _by(event: OrderEvent) -> str:
    who = f" par {_person(event.actor)}" if event.actor_id else ""
    return f"{who} le {format_datetime(event.at)}"


# --- Why, in French --------------------------------------------------------------


def state_change_since(order: Order, acted_at: datetime) -> OrderEvent | None:
    """The change that put the order in its current state, if it reached the
    server after the technician acted (else the refusal is not news)."""
    event = (
        order.events.filter(state_after=order.state).exclude(state_after="").select_related("actor").order_by("-pk")
    ).first()
    if event is None or event.recorded_at < acted_at:
        return None
    return event


def refused(order: Order, error: Refused, acted_at: datetime) -> Refusal:
    """A refusal by the services: a newer value kept, or the state machine's."""
    if isinstance(error, Superseded):
        return Refusal(
            UnappliedReason.SUPERSEDED,
            str(error),
            "Rien à refaire : la valeur la plus récente est gardée. Si elle est fausse, "
            f"appelez {supervisor_of(order)}.",
        )
    order.refresh_from_db()
    change = state_change_since(order, acted_at)
    if order.state == State.CANCELLED:
        who = _by(change) if change is not None else ""
        motive = f" (motif : {order.cancel_reason})" if order.cancel_reason else ""
        return Refusal(
            UnappliedReason.REFUSED,
            f"La commande {order.reference} a été annulée{who}{motive} : votre action n'a pas été appliquée.",
            "N'engagez plus rien sur cette commande. " + call_supervisor(order),
        )
    if change is not None:
        state = STATE_LABELS[State(order.state)]
        reason = f"La commande {order.reference} est passée à « {state} »{_by(change)} ({change.label}). {error}"
    else:
        reason = str(error)
    return Refusal(UnappliedReason.REFUSED, reason, call_supervisor(order))


def invalid(order: Order, errors: list[str]) -> Refusal:
    return Refusal(
        UnappliedReason.INVALID,
        " ".join(errors) or "Action illisible par le serveur.",
        "Refaites l'action depuis la commande, avec du réseau. " + call_supervisor(order),
    )


def was_assigned(order_id: int, user: User) -> Order | None:
    """The order `order_id`, if it was given to `user` once and is no longer
    theirs; None otherwise (never theirs: the usual 404, telling nothing)."""
    if not getattr(user, "is_technician", False):
        return None
    order = Order.objects.select_related("pilot", "technician").filter(pk=order_id).first()
    if order is None or order.technician_id == user.pk:
        return None
    if not order.events.filter(kind=Action.ASSIGN.value, data__technician=user.pk).exists():
        return None
    return order


def reassigned(order: Order, user: User, *, acted: bool = True) -> Refusal:
    """The order was given to someone else (or taken back); `acted`: an action was sent."""
    event = (
        order.events.filter(kind=Action.ASSIGN.value, data__has_key="technician")
        .select_related("actor")
        .order_by("-pk")
        .first()
    )
    given = f"confiée à {_person(order.technician)}" if order.technician_id else "retirée de votre liste"
    how = _by(event) if event is not None else ""
    return Refusal(
        UnappliedReason.REASSIGNED,
        f"La commande {order.reference} ne vous est plus attribuée : elle a été {given}{how}."
        + (" Votre action n'a pas été appliquée." if acted else ""),
        "Elle n'est plus sur votre téléphone. " + call_supervisor(order),
        gone=True,
    )


def line_removed(order: Order, line_id: int | None, *, done: bool) -> Refusal:
    event = (
        order.events.filter(kind="line_removed", data__line_id=line_id).select_related("actor").first()
        if line_id is not None
        else None
    )
    what = "Cette ligne a été retirée de la commande"
    if event is not None:
        what = f"La ligne {event.data.get('line', '')} ({event.data.get('label', '')}) a été retirée de la commande"
        what += _by(event)
    told = " Le bureau est prévenu qu'elle avait été réalisée." if done else ""
    return Refusal(
        UnappliedReason.LINE_REMOVED,
        f"{what} : votre marquage n'a pas été appliqué.{told}",
        "Rien à refaire sur le téléphone. " + call_supervisor(order),
    )


def removed_line_reference(order: Order, line_id: int | None) -> str:
    if line_id is None:
        return ""
    event = order.events.filter(kind="line_removed", data__line_id=line_id).first()
    return str(event.data.get("line", "")) if event is not None else ""


# --- What was not applied, kept ---------------------------------------------------


def describe(action: str, data: Mapping[str, Any], *, button: str = "", line: str = "") -> str:
    """The action as the supervisor reads it: « Avancement : 40 % », « Ligne L2 réalisée »."""
    if action == "progress" and data.get("progress") not in (None, ""):
        return f"Avancement : {data['progress']} %"
    if action == "line":
        return f"Ligne {line or '?'} {'réalisée' if data.get('done') else 'non réalisée'}"
    if action == "note":
        text = " ".join(str(data.get("text", "")).split())
        label = f"Note : {text}"
        return label if len(label) <= LABEL_LENGTH else label[: LABEL_LENGTH - 1] + "…"
    if action == "plan" and data.get("appointment"):
        return f"{button} ({data['appointment']})"[:LABEL_LENGTH]
    return button or action


@transaction.atomic
def record_unapplied(
    order: Order,
    *,
    actor: User,
    refusal: Refusal,
    action: str,
    label: str,
    acted_at: datetime,
    key: UUID | None = None,
    data: Mapping[str, Any] | None = None,
    line_reference: str = "",
) -> UnappliedAction:
    """Keep `actor`'s action that was not applied (once per key: a replay whose
    answer was lost and that comes again is the same action)."""
    if key is not None and (seen := UnappliedAction.objects.filter(key=key).first()) is not None:
        return seen
    fields = {
        "order": order,
        "user": actor,
        "key": key,
        "action": action,
        "label": label[:LABEL_LENGTH],
        "line_reference": line_reference,
        "data": dict(data or {}),
        "acted_at": acted_at,
        "received_at": timezone.now(),
        "kind": refusal.kind,
        "reason": refusal.reason,
        "advice": refusal.advice[:300],
    }
    try:
        with transaction.atomic():
            return UnappliedAction.objects.create(**fields)
    except IntegrityError:
        # The same key at once: the other request kept it.
        return UnappliedAction.objects.get(key=key)
