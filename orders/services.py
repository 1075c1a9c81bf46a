"""The core of every change to an order, and the actions of the state machine.

One function per action. Each runs in one transaction: it asks the state
machine (`orders.states`) whether the action is allowed, applies the change
with a guarded update (so that of two concurrent requests exactly one wins),
appends an `OrderEvent` with a French label, and passes that event to
`orders.sharing`, the one place where the change is handed to the relay.
Receiving and describing orders (their details, lines, where the works are)
is in `orders.receiving`, planning them and moving a date in
`orders.planning`, both built on the core here (the errors, `record_event`,
`transition`, `lock_for`, `reload`). Reports and documents are in
`orders.reports` and `orders.documents`, the CCAG remedies (observations,
extensions) in `orders.remedies`.

`at` is when the action happened, which may be earlier than now (a technician
acting offline); it defaults to now.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from orders import sharing, states
from orders.formatting import format_date, format_datetime, iso
from orders.models import Order, OrderEvent, OrderLine
from orders.states import Action, Facts, State
from portal.errors import Refused
from portal.models import User

logger = logging.getLogger(__name__)


class ServiceError(Refused):
    """A change refused for a reason people can fix; `str()` is French."""


class ConcurrentChange(ServiceError):
    def __init__(self, order: Order, current_state: str | None) -> None:
        label = states.STATE_LABELS.get(State(current_state)) if current_state else None
        detail = f" (elle est maintenant « {label} »)" if label else ""
        super().__init__(
            f"La commande {order.reference} a été modifiée entre-temps{detail}. Rechargez la page et recommencez."
        )


class Superseded(ServiceError):
    """An action older than the value set meanwhile by someone else (a technician's
    action taken offline, arriving late): the newer value stays, and this one is
    recorded as a conflict (orders.conflicts). `str()` says which value was kept,
    set by whom and when."""


def by_whom(order: Order, kinds: Iterable[str], line: str = "") -> str:
    """« par Claire Dubois le mar. 24 nov. à 11 h 28 »: who made the latest change
    of one of `kinds` on `order` (of the line `line`), and when."""
    events = order.events.filter(kind__in=list(kinds)).select_related("actor").order_by("-at", "-pk")
    if line:
        events = events.filter(data__line=line)
    event = events.first()
    if event is None:
        return ""
    who = f"par {event.actor.get_full_name() or event.actor} " if event.actor else ""
    return f"{who}le {format_datetime(event.at)}"


# What changes an order's progress (its latest time is `Order.progress_at`).
PROGRESS_KINDS = (Action.SET_PROGRESS.value, Action.MARK_LINE.value, Action.FINISH.value)


def record_event(
    order: Order,
    *,
    kind: str,
    label: str,
    actor: User | None,
    at: datetime | None = None,
    before: str = "",
    after: str = "",
    data: Mapping[str, Any] | None = None,
) -> OrderEvent:
    event = OrderEvent.objects.create(
        order=order,
        at=at or timezone.now(),
        kind=kind,
        label=label,
        state_before=before,
        state_after=after,
        actor=actor if actor is not None and actor.pk else None,
        data=dict(data or {}),
    )
    # The seam with the relay: every change to an order passes here, inside the
    # service's transaction, so the message that tells the client's platform is
    # recorded atomically with the change itself.
    sharing.share_event(order, event)
    return event


def transition(
    order: Order,
    action: Action,
    facts: Facts,
    *,
    actor: User | None,
    at: datetime,
    label: str,
    changes: Mapping[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
) -> OrderEvent:
    """Check `action` against the state machine and apply it to the row only if
    the order is still in the state we checked against."""
    before = order.state
    after = states.apply(before, action, facts)
    changes = dict(changes or {})
    updated = Order.objects.filter(pk=order.pk, state=before).update(state=after, updated_at=timezone.now(), **changes)
    if updated != 1:
        current = Order.objects.filter(pk=order.pk).values_list("state", flat=True).first()
        raise ConcurrentChange(order, current)
    reload(order)
    return record_event(
        order, kind=action.value, label=label, actor=actor, at=at, before=before, after=after, data=data
    )


# What the log of a change reads of the order besides its own row (orders/sharing.py `snapshot`).
SHARED_RELATIONS = ("contract", "service_code", "asset", "pilot")


def reload(order: Order) -> None:
    """The order as the change left it, with what its log reads of it: one query
    (a plain refresh, then the relations one by one, took five)."""
    order.refresh_from_db(from_queryset=Order.objects.select_related(*SHARED_RELATIONS))


def lock_for(order: Order, action: Action) -> Order:
    """For updates that keep the state: lock the row, then check the action is
    allowed in the state it is really in."""
    locked = Order.objects.select_for_update().get(pk=order.pk)
    if not states.is_allowed(locked.state, action):
        raise states.IllegalTransition(State(locked.state), action)
    return locked


# --- The actions of the state machine -------------------------------------


@transaction.atomic
def acknowledge_order(order: Order, *, actor: User | None, at: datetime | None = None) -> OrderEvent:
    return transition(
        order, Action.ACKNOWLEDGE, Facts(), actor=actor, at=at or timezone.now(), label="Commande prise en compte"
    )


@transaction.atomic
def start_work(order: Order, *, actor: User | None, at: datetime | None = None) -> OrderEvent:
    at = at or timezone.now()
    return transition(
        order,
        Action.START,
        Facts(at=at),
        actor=actor,
        at=at,
        label=f"Travaux démarrés le {format_datetime(at)}",
        changes={"actual_start": at},
    )


@transaction.atomic
def suspend_work(
    order: Order, *, actor: User | None, reason: str, note: str = "", at: datetime | None = None
) -> OrderEvent:
    reason_label = states.SUSPEND_REASON_LABELS.get(reason, "")  # type: ignore[call-overload]
    label = f"Intervention suspendue : {reason_label.lower()}" + (f" ({note.strip()})" if note.strip() else "")
    return transition(
        order,
        Action.SUSPEND,
        Facts(reason=reason),
        actor=actor,
        at=at or timezone.now(),
        label=label,
        changes={"suspend_reason": reason},
        data={"reason": reason, "note": note.strip()},
    )


@transaction.atomic
def resume_work(order: Order, *, actor: User | None, at: datetime | None = None) -> OrderEvent:
    at = at or timezone.now()
    changes: dict[str, Any] = {"suspend_reason": ""}
    if order.actual_start is None:
        changes["actual_start"] = at
    return transition(order, Action.RESUME, Facts(at=at), actor=actor, at=at, label="Travaux repris", changes=changes)


@transaction.atomic
def finish_work(order: Order, *, actor: User | None, at: datetime | None = None) -> OrderEvent:
    at = at or timezone.now()
    return transition(
        order,
        Action.FINISH,
        Facts(at=at, actual_start=order.actual_start),
        actor=actor,
        at=at,
        label=f"Travaux terminés le {format_datetime(at)}",
        changes={"actual_end": at, "progress": 100, "progress_at": at},
    )


@transaction.atomic
def record_reception(
    order: Order, *, actor: User | None, reception_date: date, at: datetime | None = None
) -> OrderEvent:
    return transition(
        order,
        Action.RECORD_RECEPTION,
        Facts(reception_date=reception_date),
        actor=actor,
        at=at or timezone.now(),
        label=f"Travaux réceptionnés le {format_date(reception_date)}",
        changes={"reception_date": reception_date},
        data={"reception_date": iso(reception_date)},
    )


@transaction.atomic
def invoice_order(
    order: Order, *, actor: User | None, invoice_date: date, invoice_number: str, at: datetime | None = None
) -> OrderEvent:
    invoice_number = invoice_number.strip()
    return transition(
        order,
        Action.INVOICE,
        Facts(invoice_date=invoice_date, invoice_number=invoice_number),
        actor=actor,
        at=at or timezone.now(),
        label=f"Facture {invoice_number} émise le {format_date(invoice_date)}",
        changes={"invoice_date": invoice_date, "invoice_number": invoice_number},
        data={"invoice_date": iso(invoice_date), "invoice_number": invoice_number},
    )


@transaction.atomic
def close_order(order: Order, *, actor: User | None, outcome: str, at: datetime | None = None) -> OrderEvent:
    outcome_label = states.CLOSE_OUTCOME_LABELS.get(outcome, "")  # type: ignore[call-overload]
    return transition(
        order,
        Action.CLOSE,
        Facts(outcome=outcome),
        actor=actor,
        at=at or timezone.now(),
        label=f"Commande clôturée : {outcome_label.lower()}",
        changes={"close_outcome": outcome},
        data={"outcome": outcome},
    )


@transaction.atomic
def cancel_order(order: Order, *, actor: User | None, reason: str, at: datetime | None = None) -> OrderEvent:
    reason = reason.strip()
    return transition(
        order,
        Action.CANCEL,
        Facts(reason=reason),
        actor=actor,
        at=at or timezone.now(),
        label=f"Commande annulée : {reason}",
        changes={"cancel_reason": reason},
        data={"reason": reason},
    )


# --- Updates that keep the state ------------------------------------------


@transaction.atomic
def set_progress(order: Order, *, actor: User | None, progress: int, at: datetime | None = None) -> OrderEvent | None:
    """Set the progress as of `at` (when the person gave it). The newest value by
    that time wins: one given before the current value was (an action taken
    offline, arriving after someone else's) is refused with `Superseded`."""
    at = at or timezone.now()
    states.apply(order.state, Action.SET_PROGRESS, Facts(progress=progress))
    locked = lock_for(order, Action.SET_PROGRESS)
    if locked.progress == progress:
        return None
    newer = locked.progress_at is not None and locked.progress_at > at
    # Guarded: applied only while no newer value is there (we hold the row's lock too).
    if newer or not Order.objects.filter(pk=locked.pk).filter(
        Q(progress_at__isnull=True) | Q(progress_at__lte=at)
    ).update(progress=progress, progress_at=at, updated_at=timezone.now()):
        raise Superseded(
            f"L'avancement a été mis à {locked.progress} % {by_whom(locked, PROGRESS_KINDS)}, après votre saisie "
            f"de {progress} % ({format_datetime(at)}) : c'est {locked.progress} %, la valeur la plus récente, "
            "qui est gardé."
        )
    reload(order)
    return record_event(
        order,
        kind=Action.SET_PROGRESS.value,
        label=f"Avancement : {progress} %",
        actor=actor,
        at=at,
        data={"progress": progress, "previous": locked.progress},
    )


NOTE_LABEL_LENGTH = 300


@transaction.atomic
def add_note(order: Order, *, actor: User | None, text: str, at: datetime | None = None) -> OrderEvent:
    """A note on an open order (what was seen, what is missing): an event of its
    history, relayed to the platform with the text as its label."""
    text = " ".join(text.split())
    if not text:
        raise ServiceError("Écrivez la note avant de l'enregistrer.")
    locked = Order.objects.select_for_update().get(pk=order.pk)
    if not locked.is_open:
        raise ServiceError(f"La commande est « {locked.state_label} » : on n'y ajoute plus de note.")
    label = f"Note : {text}"
    if len(label) > NOTE_LABEL_LENGTH:
        label = label[: NOTE_LABEL_LENGTH - 1] + "…"
    return record_event(order, kind="note", label=label, actor=actor, at=at, data={"text": text})


@transaction.atomic
def mark_line(line: OrderLine, *, actor: User | None, done: bool, at: datetime | None = None) -> OrderEvent | None:
    """Mark a line done or not done as of `at`; marking it as it already is
    changes nothing. The newest mark by that time wins: a mark older than the
    line's current one (offline, arriving late) is refused with `Superseded`.
    The progress follows the lines, unless it was given after this mark."""
    order = lock_for(line.order, Action.MARK_LINE)
    at = at or timezone.now()
    current = OrderLine.objects.filter(pk=line.pk, order=order).first()
    if current is None or current.done == done:
        return None
    if (
        not OrderLine.objects.filter(pk=line.pk, order=order, done=not done)
        .filter(Q(marked_at__isnull=True) | Q(marked_at__lte=at))
        .update(done=done, done_at=at if done else None, marked_at=at)
    ):
        state = "réalisée" if current.done else "non réalisée"
        raise Superseded(
            f"La ligne {current.reference} a été marquée « {state} » "
            f"{by_whom(order, [Action.MARK_LINE.value], current.reference)}, après votre saisie "
            f"({format_datetime(at)}) : c'est ce marquage, le plus récent, qui est gardé."
        )
    line.refresh_from_db()
    Order.objects.filter(pk=order.pk).filter(Q(progress_at__isnull=True) | Q(progress_at__lte=at)).update(
        progress=order.progress_from_lines(), progress_at=at, updated_at=timezone.now()
    )
    reload(order)  # its progress follows the lines
    return record_event(
        order,
        kind=Action.MARK_LINE.value,
        label=f"Ligne {line.reference} {'réalisée' if done else 'non réalisée'} : {line.label}",
        actor=actor,
        at=at,
        data={"line": line.reference, "done": done},
    )


_UNSET: Any = object()


@transaction.atomic
def assign_order(
    order: Order,
    *,
    actor: User | None,
    technician: User | None = _UNSET,
    pilot: User | None = _UNSET,
    at: datetime | None = None,
) -> OrderEvent | None:
    """Give the order to a technician and/or a pilot (None takes it away): one
    action, one event whose label names every change (None when nothing changed)."""
    locked = lock_for(order, Action.ASSIGN)
    changes: dict[str, User | None] = {}
    labels: list[str] = []
    data: dict[str, Any] = {}
    for field, person, noun in (("technician", technician, "Technicien"), ("pilot", pilot, "Pilote")):
        if person is _UNSET or getattr(locked, f"{field}_id") == (person.pk if person else None):
            continue
        if person is not None and not person.is_active:
            raise ServiceError(f"{person} n'est plus actif : choisissez une autre personne.")
        if field == "technician" and person is not None and not person.is_technician:
            raise ServiceError(f"{person} n'est pas technicien.")
        changes[field] = person
        labels.append(f"{noun} : {person}" if person else f"{noun} retiré")
        data[field] = person.pk if person else None
        if field == "pilot" and person is not None:
            data["pilot_name"] = person.get_full_name()
            data["pilot_mobile"] = person.mobile
    if not changes:
        return None
    Order.objects.filter(pk=locked.pk).update(**changes, updated_at=timezone.now())
    reload(order)
    return record_event(order, kind=Action.ASSIGN.value, label=" ; ".join(labels), actor=actor, at=at, data=data)
