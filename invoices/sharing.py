"""The invoice PDF as a document on the order's stream (annex item D11 of seed
000: optional, so only when the connection's invoicing settings say so).

Called inside the issuing transaction, right after `orders.services.invoice_order`
recorded the order's "facturé" log (D9: invoice date and number as tags), holding
the order's row: the document is the order's next message and reaches the
platform after that log."""

from __future__ import annotations

from typing import Any

from invoices.models import ConnectionInvoicing, Invoice
from orders.models import Order, OrderEvent
from portal.relay import mapping, outbox
from portal.relay.models import MessageKind, OutboxMessage

ELEMENT_TYPE = "intervention"


def document_payload(order: Order, invoice: Invoice, settings: ConnectionInvoicing) -> dict[str, Any]:
    file_name = f"{invoice.get_kind_display()} {invoice.number}.pdf".replace(" ", "_")
    return {
        "title": f"{invoice.get_kind_display()} {invoice.number}",
        "description": f"{invoice.get_kind_display()} {invoice.number} du {invoice.issue_date:%d/%m/%Y}",
        "elementType": ELEMENT_TYPE,
        "elementReference": order.reference,
        "intent_contractReference": order.contract.reference,
        "intent_documentType": settings.document_type,
        "intent_documentFamily": settings.document_family,
        "intent_creationDate": mapping.iso(invoice.issued_at or invoice.created_at),
        "document": {
            "id": invoice.pk,
            "fileName": file_name,
            "mime": "application/pdf",
            "size": invoice.pdf_file.size,
            "sha256": invoice.pdf_sha256,
        },
    }


def share_pdf(order: Order, event: OrderEvent, invoice: Invoice) -> OutboxMessage | None:
    connection = outbox.connection_for_client(order.contract.client_id)
    if connection is None:
        return None
    settings = ConnectionInvoicing.objects.filter(connection=connection).first()
    if settings is None or not settings.share_pdf:
        return None
    return outbox.record(
        connection,
        order_id=order.pk,
        event_id=event.pk,
        kind=MessageKind.DOCUMENT,
        payload=document_payload(order, invoice, settings),
        changed_at=event.recorded_at,
        document_name=invoice.pdf_file.name or "",
    )
