"""What an order tells the manager's platform, and when.

Every order service calls `share_event` (or `share_document`) inside its
transaction: the payload is built here from the order as it stands after the
change (through the relay's pure `mapping`), and handed to the relay's outbox
as data. The relay delivers it in order, and when a person resends a refused
log after correcting the order, asks `rebuild_log` (registered in
`orders.apps`) for a fresh one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from orders.models import Document, Order, OrderEvent, Origin
from portal.models import Asset, Contract, ServiceCode
from portal.relay import mapping, outbox
from portal.relay.models import MessageKind, OutboxMessage

# What the platform itself told us (an order received, its lines, its edits or
# cancellation, applied with no person as actor) is not echoed back to it.
FROM_PLATFORM = {"received", "line_added", "edited", "address", "cancel"}

# What people say before the acknowledgement is not sent on its own (the order
# is still the manager's open/requested): these events' labels travel with the
# acknowledgement log, which also carries the order's snapshot (pilot, tags).
CARRIED_TO_ACKNOWLEDGEMENT = frozenset(
    {"assign", "edited", "note", "observation", "extension_requested", "extension_granted", "extension_refused"}
)

# Documents (intervention reports as PDF, requirement D10) are attached to the intervention.
DOCUMENT_ELEMENT_TYPE = "intervention"


def snapshot(order: Order) -> mapping.OrderSnapshot:
    pilot = order.pilot
    return mapping.OrderSnapshot(
        reference=order.reference,
        contract_reference=order.contract.reference,
        state=order.state,
        service_code=order.service_code.code if order.service_code is not None else "",
        work_type=order.work_type,
        critical_level=order.critical_level,
        asset_reference=order.asset.reference if order.asset is not None else "",
        appointment_at=order.appointment_at,
        planned_start=order.planned_start,
        planned_end=order.planned_end,
        actual_start=order.actual_start,
        actual_end=order.actual_end,
        progress=order.progress,
        lines=tuple(mapping.Line(reference, done) for reference, done in order.lines.values_list("reference", "done")),
        pilot=(
            mapping.Person(pilot.first_name, pilot.last_name, pilot.mobile, pilot.email) if pilot is not None else None
        ),
        reception_date=order.reception_date,
        invoice_date=order.invoice_date,
        invoice_number=order.invoice_number,
        suspend_reason=order.suspend_reason,
        close_outcome=order.close_outcome,
        cancel_reason=order.cancel_reason,
    )


def event_snapshot(event: OrderEvent) -> mapping.EventSnapshot:
    return mapping.EventSnapshot(kind=event.kind, label=event.label, at=event.at, data=event.data)


def build_log(
    order: Order,
    event: OrderEvent,
    *,
    logged_at: datetime,
    before_sequence: int | None = None,
    history: outbox.History | None = None,
) -> dict:
    """The intervention log telling `event`, after the order's logs (those before
    `before_sequence`): `history` when the caller has read them already."""
    if history is None:
        history = outbox.history(order.pk, MessageKind.INTERVENTION_LOG)
    return mapping.intervention_log(
        snapshot(order),
        event_snapshot(event),
        logged_at=logged_at,
        previous=history.previous_code(before_sequence=before_sequence),
    )


def share_event(order: Order, event: OrderEvent) -> OutboxMessage | None:
    """Record the log that tells the platform about `event` (inside the change's
    transaction), following the conventions of docs/platform.md: the contractor
    never sends the manager's codes (what changes before acknowledgement travels
    with the acknowledgement log), and an operation never gets two logs with the
    same (status, event, eventDate). Returns the message that carries the change,
    or None when nothing is sent for it now."""
    if order.origin == Origin.PLATFORM and event.actor_id is None and event.kind in FROM_PLATFORM:
        return None
    connection = outbox.connection_for_client(order.contract.client_id)
    if connection is None:
        return None
    history = outbox.history(order.pk, MessageKind.INTERVENTION_LOG)
    log = build_log(order, event, logged_at=event.recorded_at, history=history)
    if not mapping.sent_by_contractor(log):
        return None
    if event.kind == "acknowledge":
        log["description"] = mapping.LABEL_SEPARATOR.join([log["description"], *said_before(order, event)])
    # Received late (offline), a change is not dated before what the platform already has (docs/platform.md).
    floor = mapping.event_date_floor(history.codes_and_dates())
    log = mapping.not_before(log, event.kind, floor)
    same = history.with_key(log["status"], log["event"], log["eventDate"])
    if same:
        merged = merge_into_unsent(order, same[-1], log)
        if merged is not None:
            return merged
        # Already on its way: this change is carried by the next free second.
        log = mapping.at_a_free_second(log, history.event_dates_with_code(log["status"], log["event"]))
    return outbox.record(
        connection,
        order_id=order.pk,
        event_id=event.pk,
        kind=MessageKind.INTERVENTION_LOG,
        payload=log,
        changed_at=event.recorded_at,
    )


def said_before(order: Order, acknowledgement: OrderEvent) -> list[str]:
    """The labels of what people did on the order before its acknowledgement."""
    events = order.events.filter(
        pk__lt=acknowledgement.pk, actor__isnull=False, kind__in=CARRIED_TO_ACKNOWLEDGEMENT
    ).order_by("pk")
    return list(events.values_list("label", flat=True))


def merge_into_unsent(order: Order, message_id: int, log: dict[str, Any]) -> OutboxMessage | None:
    """Merge `log` into the earlier message with its (status, event, eventDate)
    while that one is the order's last message and no worker has taken it."""
    if outbox.last_message_id(order.pk) != message_id:
        return None
    if not outbox.amend_unsent(message_id, mapping.merged_log(outbox.payload_of(message_id), log)):
        return None
    return OutboxMessage.objects.get(pk=message_id)


def document_payload(order: Order, event: OrderEvent, document: Document, document_type: str, family: str) -> dict:
    """The multipart fields of POST /documents/v1/documents (docs/platform.md),
    and under `document` which file to send: the file stays in the storage and
    is read at delivery, so the payload remains small, plain JSON."""
    return {
        "title": document.title,
        "description": f"{event.label} ({document.get_kind_display().lower()})",
        "elementType": DOCUMENT_ELEMENT_TYPE,
        "elementReference": order.reference,
        "intent_contractReference": order.contract.reference,
        "intent_documentType": document_type,
        "intent_documentFamily": family,
        "intent_creationDate": mapping.iso(document.created_at),
        "document": {
            "id": document.pk,
            "fileName": document.file_name,
            "mime": document.mime,
            "size": document.size,
            "sha256": document.sha256,
        },
    }


def share_document(order: Order, event: OrderEvent, document: Document) -> OutboxMessage | None:
    """Record the message that uploads `document`, as the order's next message: it
    goes after every earlier log of the order, and before any later one. Call it
    inside the transaction that attached the document."""
    connection = outbox.connection_for_client(order.contract.client_id)
    if connection is None:
        return None
    payload = document_payload(order, event, document, connection.document_type, connection.document_family)
    return outbox.record(
        connection,
        order_id=order.pk,
        event_id=event.pk,
        kind=MessageKind.DOCUMENT,
        payload=payload,
        changed_at=event.recorded_at,
        document_name=document.file.name or "",
    )


def rebuild_log(message: OutboxMessage, logged_at: datetime) -> dict[str, Any] | None:
    """A refused log rebuilt from the order as it is now (after a person corrected it)."""
    if message.event_id is None:
        return None
    event = OrderEvent.objects.select_related("order__contract").get(pk=message.event_id)
    rebuilt = build_log(event.order, event, logged_at=logged_at, before_sequence=message.sequence)
    # What the log said of its changes stays: the labels merged into it, and the
    # date that keeps it apart from the operation's other logs (docs/platform.md).
    for name in ("eventDate", "description"):
        if message.payload.get(name):
            rebuilt[name] = message.payload[name]
    return rebuilt


# --- What the platform requires of an order ------------------------------------------

# What the client's platform refuses an order's logs without (location.assetReference, serviceCode).
PLATFORM_REQUIRED = {"asset": "élément de patrimoine", "service_code": "code prestation"}


def missing_for_platform(contract: Contract, asset: Asset | None, service_code: ServiceCode | None) -> list[str]:
    """The fields of PLATFORM_REQUIRED an order of `contract` lacks, when its
    client's changes are relayed to a platform (none otherwise). Office staff
    cannot save such an order: the platform would refuse its first log."""
    if outbox.connection_for_client(contract.client_id) is None:
        return []
    values = {"asset": asset, "service_code": service_code}
    return [name for name in PLATFORM_REQUIRED if values[name] is None]


def platform_requirement_message(contract: Contract, name: str) -> str:
    """The form's error on the missing field `name` (see missing_for_platform)."""
    platform = f"la plateforme du client (marché {contract.reference})"
    return f"Obligatoire : {platform} refuse une commande sans {PLATFORM_REQUIRED[name]}."


def incomplete_for_platform(contract: Contract, asset: Asset | None, service_code: ServiceCode | None) -> str:
    """Why the client's platform would refuse such an order (French), or ""."""
    missing = missing_for_platform(contract, asset, service_code)
    if not missing:
        return ""
    names = " ni ".join(PLATFORM_REQUIRED[name] for name in missing)
    return (
        f"La plateforme du client (marché {contract.reference}) refuse une commande sans {names} : "
        "complétez la commande."
    )
