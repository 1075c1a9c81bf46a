"""Portal data → Intent logs, tags and vCards. Pure functions, no Django, no I/O.

Every convention the platform's public documentation leaves open ([gap] in
docs/platform.md) lives here and nowhere else: the codes sent for the states
that have none, the tags that carry progress, planned dates, lines, reception
and invoice, and how the pilot travels as a vCard.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from portal.relay import vcard

PARIS = ZoneInfo("Europe/Paris")

StatusEvent = tuple[str, str]


@dataclass(frozen=True)
class Person:
    first_name: str
    last_name: str
    mobile: str = ""
    email: str = ""


@dataclass(frozen=True)
class Line:
    reference: str
    done: bool


@dataclass(frozen=True)
class OrderSnapshot:
    """What the platform needs to know of an order, at the moment of an event."""

    reference: str
    contract_reference: str
    state: str
    service_code: str = ""
    work_type: str = "corrective"
    critical_level: int = 0
    asset_reference: str = ""
    appointment_at: datetime | None = None
    planned_start: datetime | None = None
    planned_end: datetime | None = None
    actual_start: datetime | None = None
    actual_end: datetime | None = None
    progress: int = 0
    lines: tuple[Line, ...] = ()
    pilot: Person | None = None
    reception_date: date | None = None
    invoice_date: date | None = None
    invoice_number: str = ""
    suspend_reason: str = ""
    close_outcome: str = ""
    cancel_reason: str = ""


@dataclass(frozen=True)
class EventSnapshot:
    kind: str
    label: str
    at: datetime
    data: Mapping[str, Any] = field(default_factory=dict)


# The code each state shows on the platform when nothing more specific applies.
# Réceptionné and facturé have no code of their own [gap]: the order stays at
# pending/end and the reception or invoice travels in tags.
STATE_CODES: dict[str, StatusEvent] = {
    "to_acknowledge": ("open", "requested"),
    "acknowledged": ("open", "acknowledged"),
    "planned": ("open", "planned"),
    "in_progress": ("pending", "start"),
    "finished": ("pending", "end"),
    "received": ("pending", "end"),
    "invoiced": ("pending", "end"),
    "cancelled": ("denied", "canceled"),
}

# The codes a state may legitimately show; an earlier code outside this set is
# stale and the state's own code is sent instead.
ACCEPTED_CODES: dict[str, set[StatusEvent]] = {
    "planned": {("open", "planned"), ("pending", "replanned")},
    "suspended": {("hold", "occupant_absent"), ("hold", "quote_request")},
    "closed": {("closed", "done"), ("closed", "solved"), ("closed", "partial_repair"), ("closed", "occupant_absent")},
}

# Order events that change what the platform shows; the rest re-send the
# current code with the event's label and fresh tags.
TRANSITION_CODES: dict[str, StatusEvent] = {
    "received": ("open", "requested"),
    "acknowledge": ("open", "acknowledged"),
    "start": ("pending", "start"),
    "resume": ("pending", "start"),
    "finish": ("pending", "end"),
    "cancel": ("denied", "canceled"),
}


def state_code(order: OrderSnapshot) -> StatusEvent:
    if order.state == "suspended":
        return ("hold", order.suspend_reason or "occupant_absent")
    if order.state == "closed":
        return ("closed", order.close_outcome or "done")
    return STATE_CODES[order.state]


def status_event(order: OrderSnapshot, event: EventSnapshot, previous: StatusEvent | None = None) -> StatusEvent:
    """The Intent `status`/`event` pair for `event`, given the last pair sent for the order."""
    if event.kind == "plan":
        return ("pending", "replanned") if event.data.get("replanned") else ("open", "planned")
    if event.kind == "suspend":
        return ("hold", str(event.data.get("reason") or order.suspend_reason or "occupant_absent"))
    if event.kind == "close":
        return ("closed", str(event.data.get("outcome") or order.close_outcome or "done"))
    if event.kind in TRANSITION_CODES:
        return TRANSITION_CODES[event.kind]
    current = state_code(order)
    if previous is not None and tuple(previous) in ACCEPTED_CODES.get(order.state, {current}):
        return (previous[0], previous[1])
    return current


def event_date(order: OrderSnapshot, event: EventSnapshot) -> datetime:
    """When the step happens: for planning it is the appointment (maybe in the future)."""
    if event.kind == "plan":
        return order.appointment_at or order.planned_start or event.at
    if event.kind == "start" and order.actual_start:
        return order.actual_start
    if event.kind == "finish" and order.actual_end:
        return order.actual_end
    return event.at


def iso(value: datetime) -> str:
    """ISO 8601 in Paris time with an explicit offset: 2026-11-22T09:30:00+01:00."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: the platform needs an explicit offset")
    return value.astimezone(PARIS).isoformat(timespec="seconds")


def tags(order: OrderSnapshot) -> dict[str, str]:
    """Progress, planned period, lines, reception and invoice, as string tags [gap]."""
    result = {"progress_percent": str(int(order.progress))}
    if order.appointment_at is None and order.planned_start and order.planned_end:
        result["planned_start"] = iso(order.planned_start)
        result["planned_end"] = iso(order.planned_end)
    if order.lines:
        done = sum(1 for line in order.lines if line.done)
        result["lines_done"] = f"{done}/{len(order.lines)}"
        for line in order.lines:
            result[f"line_{line.reference}"] = "done" if line.done else "not_done"
    if order.reception_date:
        result["reception_date"] = order.reception_date.isoformat()
    if order.invoice_date:
        result["invoice_date"] = order.invoice_date.isoformat()
    if order.invoice_number:
        result["invoice_number"] = order.invoice_number
    return result


def pilot_vcard(person: Person) -> str:
    """The pilot as a vCard 3.0 with ROLE:Pilote and TEL;TYPE=CELL (requirement D2)."""
    return vcard.write(
        first_name=person.first_name,
        last_name=person.last_name,
        mobile=person.mobile,
        email=person.email,
        role="Pilote",
    )


def technical_reason(order: OrderSnapshot, event: EventSnapshot) -> str:
    if event.kind == "cancel":
        return order.cancel_reason
    if event.kind == "close":
        return order.close_outcome
    if event.kind == "suspend":
        return str(event.data.get("note") or "")
    return ""


def intervention_log(
    order: OrderSnapshot, event: EventSnapshot, *, logged_at: datetime, previous: StatusEvent | None = None
) -> dict[str, Any]:
    """The log to POST to /operations/v2/interventions/logs for `event`."""
    status, code = status_event(order, event, previous)
    log: dict[str, Any] = {
        "reference": order.reference,
        "contractReference": order.contract_reference,
        "status": status,
        "event": code,
        "eventDate": iso(event_date(order, event)),
        "logDate": iso(logged_at),
        "description": event.label,
        "serviceCode": order.service_code,
        "workType": order.work_type,
        "criticalLevel": int(order.critical_level),
        "location": {"assetReference": order.asset_reference},
        "tags": tags(order),
    }
    if order.pilot is not None:
        log["contacts"] = [pilot_vcard(order.pilot)]
    reason = technical_reason(order, event)
    if reason:
        log["technicalReason"] = reason
    return log


# The manager's own codes: the platform writes them, the contractor never sends
# them. What changes on an order before its acknowledgement is not sent as a log
# of its own; it travels with the acknowledgement log, since every log carries
# the order's current snapshot (pilot vCard, details, tags).
MANAGER_CODES: frozenset[StatusEvent] = frozenset({("open", "requested")})

# Joins the labels of changes merged into one log.
LABEL_SEPARATOR = " ; "


def sent_by_contractor(log: Mapping[str, Any]) -> bool:
    """Whether the contractor may send `log` at all (not one of the manager's codes)."""
    return (str(log.get("status", "")), str(log.get("event", ""))) not in MANAGER_CODES


def merged_log(earlier: Mapping[str, Any], later: Mapping[str, Any]) -> dict[str, Any]:
    """One log for two changes with the same key: the later one's snapshot (tags,
    contacts, details, log date), both labels; a technical reason either gave."""
    merged = dict(later)
    labels = [str(earlier.get("description") or ""), str(later.get("description") or "")]
    merged["description"] = LABEL_SEPARATOR.join(
        label for index, label in enumerate(labels) if label and label not in labels[:index]
    )
    if not merged.get("technicalReason") and earlier.get("technicalReason"):
        merged["technicalReason"] = earlier["technicalReason"]
    return merged


def at_a_free_second(log: Mapping[str, Any], taken: Iterable[str]) -> dict[str, Any]:
    """`log` dated the first second from its own that no log in `taken` (the
    eventDate of the operation's logs with its status and event) uses: how a
    change is kept apart from a log already sent with the same key (docs/platform.md)."""
    used = set()
    for value in taken:
        try:
            used.add(datetime.fromisoformat(value).replace(microsecond=0))
        except ValueError:
            continue
    moment = datetime.fromisoformat(str(log["eventDate"])).replace(microsecond=0)
    while moment in used:
        moment += timedelta(seconds=1)
    return {**log, "eventDate": iso(moment)}


def same_log(sent: Mapping[str, Any], found: Mapping[str, Any]) -> bool:
    """Whether a log read back from the platform is the one we sent (after an
    ambiguous failure): same status, event, description and event date."""
    keys = ("status", "event", "description")
    if tuple(sent.get(key) for key in keys) != tuple(found.get(key) for key in keys):
        return False
    try:
        return datetime.fromisoformat(str(sent["eventDate"])) == datetime.fromisoformat(str(found["eventDate"]))
    except (KeyError, ValueError):
        return False


# --- eventDate never goes back for what is not a step of the order's life [gap] ---------

# The steps of an order's life: their eventDate is their own date (the appointment,
# the actual start or end, the moment of a suspension...), sent as it is even when
# earlier than a log already sent (a step taken offline and received late).
STEP_KINDS = frozenset(
    {
        "received",
        "acknowledge",
        "plan",
        "start",
        "suspend",
        "resume",
        "finish",
        "record_reception",
        "invoice",
        "close",
        "cancel",
    }
)
# Logs dated by an appointment (possibly in the future): no floor for the others.
APPOINTMENT_CODES: frozenset[StatusEvent] = frozenset({("open", "planned"), ("pending", "replanned")})
# The tag that carries the time a change was really made, when its eventDate had to be later.
ACTION_DATE_TAG = "action_date"


def event_date_floor(sent: Iterable[tuple[str, str, str]]) -> datetime | None:
    """The latest eventDate among an operation's logs already recorded, given as
    (status, event, eventDate); appointments aside (a future date is no floor)."""
    latest = None
    for status, event, value in sent:
        if (status, event) in APPOINTMENT_CODES or not value:
            continue
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            continue
        if latest is None or moment > latest:
            latest = moment
    return latest


def not_before(log: Mapping[str, Any], kind: str, floor: datetime | None) -> dict[str, Any]:
    """The portal's convention (docs/platform.md): along an operation, eventDate
    never goes back, except for the steps of its life (STEP_KINDS). A change made
    before the latest log's eventDate but received after it (a technician's
    progress, line or note taken offline) is dated that eventDate, and its real
    time travels in the tag `action_date`."""
    result = dict(log)
    if floor is None or kind in STEP_KINDS:
        return result
    moment = datetime.fromisoformat(str(log["eventDate"]))
    if moment >= floor:
        return result
    result["tags"] = {**dict(log.get("tags") or {}), ACTION_DATE_TAG: iso(moment)}
    result["eventDate"] = iso(floor)
    return result
