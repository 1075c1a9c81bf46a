"""The only code that changes orders.

One function per action. Each runs in one transaction: it asks the state
machine (`orders.states`) whether the action is allowed, applies the change
with a guarded update (so that of two concurrent requests exactly one wins),
appends an `OrderEvent` with a French label, and passes that event to
`orders.sharing`, the one place where the change is handed to the relay.
Reports and documents are in `orders.reports` and `orders.documents`, the
CCAG remedies (observations, extensions) in `orders.remedies`.

`at` is when the action happened, which may be earlier than now (a technician
acting offline); it defaults to now.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from orders import deadlines, sharing, states
from orders.formatting import describe, format_date, format_datetime, format_deadline, iso
from orders.models import Order, OrderEvent, OrderLine, Origin
from orders.states import Action, Facts, State
from portal import services as portal_services
from portal.errors import Refused
from portal.models import Asset, Contract, ServiceCode, User

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


def _by_whom(order: Order, kinds: Iterable[str], line: str = "") -> str:
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


# Order fields that describe the order (as opposed to its execution); they can
# be edited by office staff, and each edit is recorded in the history.
DETAIL_FIELDS = (
    "billing_account",
    "asset",
    "service_code",
    "work_type",
    "critical_level",
    "description",
    "occupant_name",
    "occupant_phone",
    "occupant_mobile",
    "occupant_email",
    "access_notes",
    "notified_at",
    "due_at",
)
LINE_FIELDS = ("reference", "label", "quantity", "unit", "unit_price", "vat_rate", "price_item", "position")


def compute_due_at(
    notified_at: datetime, contract: Contract, service_code: ServiceCode | None, postcode: str = ""
) -> datetime:
    """The end of the execution period from notification (CCAG §14.1.2, §3.2): the service code's
    delay in hours wins over the contract's in days; the department of the works' postcode
    (`Order.postcode`) says which holidays count."""
    hours = service_code.completion_delay_hours if service_code is not None else None
    return deadlines.execution_period(
        notified_at, days=contract.default_delay_days, hours=hours, department=deadlines.department_of(postcode)
    ).ends_at


def _postcode(asset: Asset | None, address: Mapping[str, str] | None) -> str:
    """The works' postcode before the order exists, as `Order.postcode` will read it."""
    if asset is not None and asset.full_address:
        return asset.postcode
    return (address or {}).get("postcode", "")


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


def _transition(
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


# --- Receiving and describing orders --------------------------------------


@transaction.atomic
def register_order(
    *,
    contract: Contract,
    reference: str,
    actor: User | None,
    notified_at: datetime | None = None,
    received_at: datetime | None = None,
    lines: Iterable[Mapping[str, Any]] = (),
    technician: User | None = None,
    pilot: User | None = None,
    origin: str = "manual",
    address: Mapping[str, str] | None = None,
    **details: Any,
) -> Order:
    """Record an order the client sent (from the platform or typed in by office
    staff). `address` is the street address the platform gave for the works
    (`address`, `postcode`, `city`): the asset's when the order names one, else
    the order's own (see `place_works`)."""
    unknown = set(details) - set(DETAIL_FIELDS)
    if unknown:
        raise TypeError(f"Unknown order fields: {sorted(unknown)}")
    reference = reference.strip()
    if not reference:
        raise ServiceError("La référence de la commande est obligatoire.")
    now = timezone.now()
    received_at = received_at or now
    notified_at = notified_at or received_at
    asset = details.get("asset")
    _check_belongs_to_client(contract, asset, details.get("service_code"))
    if origin == Origin.MANUAL:
        _check_complete(contract, asset, details.get("service_code"))
    site: dict[str, str] = {}
    if address is not None and asset is not None:
        details["asset"] = portal_services.set_asset_address(asset, **address)
    elif address is not None:
        site = _site_fields(address)
    if details.get("due_at") is None:
        postcode = _postcode(details.get("asset"), address)
        details["due_at"] = compute_due_at(notified_at, contract, details.get("service_code"), postcode)
    try:
        with transaction.atomic():
            order = Order.objects.create(
                contract=contract,
                reference=reference,
                received_at=received_at,
                notified_at=notified_at,
                state=State.TO_ACKNOWLEDGE,
                origin=origin,
                **details,
                **site,
            )
    except IntegrityError as error:
        if Order.objects.filter(contract=contract, reference=reference).exists():
            raise ServiceError(f"Une commande {reference} existe déjà sur le marché {contract.reference}.") from error
        raise
    record_event(
        order,
        kind="received",
        label=f"Commande reçue, échéance le {format_deadline(details['due_at'])}",
        actor=actor,
        at=received_at,
        after=State.TO_ACKNOWLEDGE,
        data={"due_at": iso(order.due_at)},
    )
    for position, line in enumerate(lines, start=1):
        add_line(order, actor=actor, at=received_at, **{"position": position, **line})
    if technician is not None or pilot is not None:
        assign_order(order, actor=actor, technician=technician, pilot=pilot, at=received_at)
    return order


def _check_complete(contract: Contract, asset: Asset | None, service_code: ServiceCode | None) -> None:
    if reason := sharing.incomplete_for_platform(contract, asset, service_code):
        raise ServiceError(reason)


def _check_belongs_to_client(contract: Contract, asset: Asset | None, service_code: ServiceCode | None) -> None:
    if asset is not None and asset.client_id != contract.client_id:
        raise ServiceError("Cet élément de patrimoine n'appartient pas au client du marché.")
    if service_code is not None and service_code.contract_id != contract.pk:
        raise ServiceError("Ce code prestation n'appartient pas au marché de la commande.")


def _field_name(model: type[Order] | type[OrderLine], name: str) -> str:
    return str(getattr(model._meta.get_field(name), "verbose_name", name))


@transaction.atomic
def update_order_details(
    order: Order, *, actor: User | None, changes: Mapping[str, Any], at: datetime | None = None
) -> OrderEvent | None:
    """Correct what describes the order (asset, contacts, description...)."""
    unknown = set(changes) - set(DETAIL_FIELDS)
    if unknown:
        raise TypeError(f"Not editable here: {sorted(unknown)}")
    locked = lock_for(order, Action.EDIT)
    changed = {name: value for name, value in changes.items() if getattr(locked, name) != value}
    if not changed:
        return None
    asset, service_code = changed.get("asset", locked.asset), changed.get("service_code", locked.service_code)
    _check_belongs_to_client(locked.contract, asset, service_code)
    if {"asset", "service_code"} & {name for name, value in changed.items() if value is None}:
        _check_complete(locked.contract, asset, service_code)
    if "notified_at" in changed and "due_at" not in changes:
        postcode = asset.postcode if asset is not None and asset.full_address else locked.site_postcode
        changed["due_at"] = compute_due_at(
            changed["notified_at"], locked.contract, changed.get("service_code", locked.service_code), postcode
        )
    before = {name: describe(getattr(locked, name)) for name in changed}
    Order.objects.filter(pk=locked.pk).update(updated_at=timezone.now(), **changed)
    reload(order)
    names = ", ".join(_field_name(Order, name) for name in changed)
    return record_event(
        order,
        kind="edited",
        label=f"Commande modifiée : {names}",
        actor=actor,
        at=at,
        data={name: {"avant": before[name], "après": describe(getattr(order, name))} for name in changed},
    )


# --- Where the works are ------------------------------------------------------

ADDRESS_UNKNOWN = "non renseignée"


def _site_fields(address: Mapping[str, str]) -> dict[str, str]:
    return {
        "site_address": str(address.get("address") or "")[:200],
        "site_postcode": str(address.get("postcode") or "")[:10],
        "site_city": str(address.get("city") or "")[:100],
    }


def place_works(order: Order, address: Mapping[str, str]) -> None:
    """Put the street address the platform gives for the works where it belongs:
    on the order's asset (the orders of one dwelling share it, and the
    platform's latest word wins), or on the order itself when it names no asset
    (an asset reference is never made up: the platform would get it back in
    every log). Writes only what changed; records nothing (see the callers)."""
    if order.asset_id is not None and order.asset is not None:
        portal_services.set_asset_address(order.asset, **address)
        return
    fields = _site_fields(address)
    changed = {name: value for name, value in fields.items() if getattr(order, name) != value}
    if changed:
        Order.objects.filter(pk=order.pk).update(updated_at=timezone.now(), **changed)


def address_change_label(before: str, after: str) -> str:
    """« Adresse modifiée par le gestionnaire : avant → après », within an event's label."""
    room = (300 - len("Adresse modifiée par le gestionnaire :  → ")) // 2

    def short(address: str) -> str:
        address = address or ADDRESS_UNKNOWN
        return address if len(address) <= room else address[: room - 1] + "…"

    return f"Adresse modifiée par le gestionnaire : {short(before)} → {short(after)}"


@transaction.atomic
def update_order_from_platform(
    order: Order,
    *,
    changes: Mapping[str, Any],
    address: Mapping[str, str] | None,
    at: datetime | None = None,
) -> list[OrderEvent]:
    """The platform's latest word on an order it sent (its operation changed):
    the details as `update_order_details` records them, then where the works
    are (`place_works`, when the operation gives a street address). A change of
    the address as people read it (`Order.full_address`: the asset's, or the
    order's own) is an event of its own, « Adresse modifiée par le gestionnaire :
    avant → après ». Nothing of it is sent back (`sharing.FROM_PLATFORM`)."""
    locked = lock_for(order, Action.EDIT)
    before = locked.full_address
    events = []
    edited = update_order_details(order, actor=None, changes=changes, at=at)
    if edited is not None:
        events.append(edited)
    if address is not None:
        place_works(order, address)
    reload(order)
    after = order.full_address
    if after != before:
        events.append(
            record_event(
                order,
                kind="address",
                label=address_change_label(before, after),
                actor=None,
                at=at,
                data={"avant": before, "après": after},
            )
        )
    return events


@transaction.atomic
def add_line(order: Order, *, actor: User | None, at: datetime | None = None, **fields: Any) -> OrderLine:
    lock_for(order, Action.EDIT)
    fields = _line_fields(order, fields)
    if order.lines.filter(reference=fields["reference"]).exists():
        raise ServiceError(f"La commande a déjà une ligne {fields['reference']}.")
    line = OrderLine.objects.create(order=order, **fields)
    record_event(
        order,
        kind="line_added",
        label=f"Ligne ajoutée : {line.reference} – {line.label} ({line.quantity} {line.unit})",
        actor=actor,
        at=at,
        data={"line": line.reference},
    )
    return line


def _line_fields(order: Order, fields: Mapping[str, Any]) -> dict[str, Any]:
    fields = {name: value for name, value in fields.items() if name in LINE_FIELDS}
    price_item = fields.get("price_item")
    if price_item is not None:
        if price_item.contract_id != order.contract_id:
            raise ServiceError("Ce prix n'appartient pas au bordereau du marché de la commande.")
        # A line from the price schedule takes its label, unit and prices unless given.
        fields.setdefault("label", price_item.label)
        fields.setdefault("unit", price_item.unit)
        fields.setdefault("unit_price", price_item.unit_price)
        fields.setdefault("vat_rate", price_item.vat_rate)
        fields.setdefault("reference", price_item.code)
    if not str(fields.get("reference") or "").strip():
        fields["reference"] = f"L{order.lines.count() + 1}"
    if not str(fields.get("label") or "").strip():
        raise ServiceError("Une ligne de commande doit avoir un libellé.")
    if "quantity" in fields and Decimal(fields["quantity"]) <= 0:
        raise ServiceError("La quantité d'une ligne doit être positive.")
    return fields


@transaction.atomic
def update_line(line: OrderLine, *, actor: User | None, changes: Mapping[str, Any]) -> OrderEvent | None:
    order = lock_for(line.order, Action.EDIT)
    changes = _line_fields(order, {**{name: getattr(line, name) for name in LINE_FIELDS}, **changes})
    current = OrderLine.objects.get(pk=line.pk)
    changed = {name: value for name, value in changes.items() if getattr(current, name) != value}
    if not changed:
        return None
    OrderLine.objects.filter(pk=line.pk).update(**changed)
    line.refresh_from_db()
    names = ", ".join(_field_name(OrderLine, name) for name in changed)
    return record_event(
        order,
        kind="line_changed",
        label=f"Ligne {line.reference} modifiée : {names}",
        actor=actor,
        data={"line": line.reference},
    )


@transaction.atomic
def remove_line(line: OrderLine, *, actor: User | None) -> OrderEvent:
    order = lock_for(line.order, Action.EDIT)
    reference, label = line.reference, line.label
    # Guarded: a line ticked meanwhile is not removed.
    deleted, _ = OrderLine.objects.filter(pk=line.pk, done=False).delete()
    if not deleted:
        raise ServiceError(f"La ligne {line.reference} est réalisée : elle ne peut plus être retirée.")
    return record_event(
        order,
        kind="line_removed",
        label=f"Ligne retirée : {reference} – {label}",
        actor=actor,
        # Its id too: a technician's tick on it, sent from a phone later, is told what became of it.
        data={"line": reference, "line_id": line.pk, "label": label},
    )


# --- The actions of the state machine -------------------------------------


@transaction.atomic
def acknowledge_order(order: Order, *, actor: User | None, at: datetime | None = None) -> OrderEvent:
    return _transition(
        order, Action.ACKNOWLEDGE, Facts(), actor=actor, at=at or timezone.now(), label="Commande prise en compte"
    )


# --- Planning, and moving a date --------------------------------------------

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
    return _transition(
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
        f"Le rendez-vous a été changé {_by_whom(locked, [Action.PLAN.value])}, après votre saisie "
        f"({format_datetime(at)}) : c'est ce rendez-vous{kept}, le plus récent, qui est gardé."
    )


@transaction.atomic
def start_work(order: Order, *, actor: User | None, at: datetime | None = None) -> OrderEvent:
    at = at or timezone.now()
    return _transition(
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
    return _transition(
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
    return _transition(order, Action.RESUME, Facts(at=at), actor=actor, at=at, label="Travaux repris", changes=changes)


@transaction.atomic
def finish_work(order: Order, *, actor: User | None, at: datetime | None = None) -> OrderEvent:
    at = at or timezone.now()
    return _transition(
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
    return _transition(
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
    return _transition(
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
    return _transition(
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
    return _transition(
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
            f"L'avancement a été mis à {locked.progress} % {_by_whom(locked, PROGRESS_KINDS)}, après votre saisie "
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
            f"{_by_whom(order, [Action.MARK_LINE.value], current.reference)}, après votre saisie "
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
