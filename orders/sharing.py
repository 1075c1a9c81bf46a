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
from portal.relay import mapping, outbox
from portal.relay.models import MessageKind, OutboxMessage

# What the platform itself told us (an order received, its lines, its edits or
# cancellation, applied with no person as actor) is not echoed back to it.
FROM_PLATFORM = {"received", "line_added", "edited", "cancel"}

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


def previous_code(order: Order, before_sequence: int | None = None) -> mapping.StatusEvent | None:
    """The status/event pair of the order's last intervention log."""
    payload = outbox.last_payload(order.pk, MessageKind.INTERVENTION_LOG, before_sequence=before_sequence)
    if not payload:
        return None
    return (payload.get("status", ""), payload.get("event", ""))


def build_log(order: Order, event: OrderEvent, *, logged_at: datetime, before_sequence: int | None = None) -> dict:
    return mapping.intervention_log(
        snapshot(order),
        event_snapshot(event),
        logged_at=logged_at,
        previous=previous_code(order, before_sequence),
    )


def share_event(order: Order, event: OrderEvent) -> OutboxMessage | None:
    """Record the log that tells the platform about `event` (inside the change's transaction)."""
    if order.origin == Origin.PLATFORM and event.actor_id is None and event.kind in FROM_PLATFORM:
        return None
    connection = outbox.connection_for_client(order.contract.client_id)
    if connection is None:
        return None
    return outbox.record(
        connection,
        order_id=order.pk,
        event_id=event.pk,
        kind=MessageKind.INTERVENTION_LOG,
        payload=build_log(order, event, logged_at=event.recorded_at),
        changed_at=event.recorded_at,
    )


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
    return build_log(event.order, event, logged_at=logged_at, before_sequence=message.sequence)
