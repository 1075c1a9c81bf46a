"""Recording what to tell the platform, inside the transaction of the change.

`record(order, event)` is called by every order service (through
`orders.services._share`). It builds the platform payload from the order as
it stands after the change, stores it as the order's next `OutboxMessage`,
and asks for a delivery once the transaction commits. If the broker is
unreachable at that moment nothing is lost: the periodic sweep finds the
message in the database.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from portal.relay import mapping
from portal.relay.models import Connection, MessageKind, MessageStatus, OutboxMessage

if TYPE_CHECKING:
    from orders.models import Document, Order, OrderEvent

logger = logging.getLogger(__name__)

# What the platform itself told us (an order received, its lines, its edits or
# cancellation, applied with no person as actor) is not echoed back to it.
FROM_PLATFORM = {"received", "line_added", "edited", "cancel"}


def connection_for(order: Order) -> Connection | None:
    return Connection.objects.filter(client_id=order.contract.client_id).first()


def snapshot(order: Order) -> mapping.OrderSnapshot:
    pilot = order.pilot
    return mapping.OrderSnapshot(
        reference=order.reference,
        contract_reference=order.contract.reference,
        state=order.state,
        service_code=order.service_code.code if order.service_code_id else "",
        work_type=order.work_type,
        critical_level=order.critical_level,
        asset_reference=order.asset.reference if order.asset_id else "",
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
    messages = OutboxMessage.objects.filter(order=order, kind=MessageKind.INTERVENTION_LOG)
    if before_sequence is not None:
        messages = messages.filter(sequence__lt=before_sequence)
    payload = messages.order_by("-sequence").values_list("payload", flat=True).first()
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


def record(order: Order, event: OrderEvent) -> OutboxMessage | None:
    """Store the message that tells the platform about `event`. Call it inside
    the transaction that made the change (the services do)."""
    if order.origin == "platform" and event.actor_id is None and event.kind in FROM_PLATFORM:
        return None
    connection = connection_for(order)
    if connection is None or connection.kind == "none":
        return None
    now = timezone.now()
    last = OutboxMessage.objects.filter(order=order).aggregate(last=Max("sequence"))["last"] or 0
    message = OutboxMessage.objects.create(
        connection=connection,
        order=order,
        event=event,
        sequence=last + 1,
        kind=MessageKind.INTERVENTION_LOG,
        payload=build_log(order, event, logged_at=now),
        created_at=event.recorded_at or now,
        next_attempt_at=now,
        queued_at=now if connection.delivers else None,
    )
    if connection.delivers:
        transaction.on_commit(lambda: queue_delivery(message.pk))
    return message


def queue_delivery(message_id: int) -> None:
    """Ask a worker to deliver now; the sweep covers a broker that is down."""
    from portal.relay.tasks import deliver_message

    try:
        deliver_message.delay(message_id)
    except Exception:  # the broker is down or misconfigured: the sweep will send it
        logger.warning("Could not queue delivery of message %s; the sweep will.", message_id, exc_info=True)


def pending_count(connection: Connection) -> int:
    return connection.messages.filter(status=MessageStatus.PENDING).count()


# Documents (intervention reports as PDF, requirement D10)

DOCUMENT_ELEMENT_TYPE = "intervention"


def document_payload(order: Order, event: OrderEvent, document: Document, connection: Connection) -> dict:
    """The multipart fields of POST /documents/v1/documents (docs/platform.md),
    and under `document` which file to send: the file stays in the storage and
    is read at delivery, so the payload remains small, plain JSON."""
    return {
        "title": document.title,
        "description": f"{event.label} ({document.get_kind_display().lower()})",
        "elementType": DOCUMENT_ELEMENT_TYPE,
        "elementReference": order.reference,
        "intent_contractReference": order.contract.reference,
        "intent_documentType": connection.document_type,
        "intent_documentFamily": connection.document_family,
        "intent_creationDate": mapping.iso(document.created_at),
        "document": {
            "id": document.pk,
            "fileName": document.file_name,
            "mime": document.mime,
            "size": document.size,
            "sha256": document.sha256,
        },
    }


def record_document(order: Order, event: OrderEvent, document: Document) -> OutboxMessage | None:
    """Store the message that uploads `document` to the platform, as the order's
    next message: it goes after every earlier log of the order, and before any
    later one. Call it inside the transaction that attached the document."""
    connection = connection_for(order)
    if connection is None or connection.kind == "none":
        return None
    now = timezone.now()
    last = OutboxMessage.objects.filter(order=order).aggregate(last=Max("sequence"))["last"] or 0
    message = OutboxMessage.objects.create(
        connection=connection,
        order=order,
        event=event,
        sequence=last + 1,
        kind=MessageKind.DOCUMENT,
        payload=document_payload(order, event, document, connection),
        created_at=event.recorded_at or now,
        next_attempt_at=now,
        queued_at=now if connection.delivers else None,
    )
    if connection.delivers:
        transaction.on_commit(lambda: queue_delivery(message.pk))
    return message
