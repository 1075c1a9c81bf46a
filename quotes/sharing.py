"""What a quote tells the manager's platform (docs/platform.md, Quotes).

Sending a quote records, inside its transaction, a quotation log
(`open`/`proposed`, with `parentReference` for a supplementary-works quote and
the tags `quote_reference`, `quote_amount_excl_vat`, `quote_amount_incl_vat`);
its PDF follows as a document with `elementType=quotation` once rendered. Both
go to the relay's outbox as data, on one stream so that they arrive in order:
a supplementary quote's on its parent order's stream (its log and PDF precede
the order's hold log), any other on the quote's own stream.

A revision is a new log on the same platform reference (the quote's number),
with its own eventDate and the tag `quote_version`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from orders.models import Order
from portal.relay import mapping, outbox
from portal.relay.models import Connection, MessageKind, OutboxMessage
from quotes.models import Quote
from quotes.pricing import Totals

ELEMENT_TYPE = "quotation"
PROPOSED = ("open", "proposed")
# How the platform answers (docs/platform.md [gap]: the portal's reading).
ACCEPTED = ("closed", "accepted")
REFUSED = ("denied", "refused")
QUOTE_DOCUMENT_TYPE = "devis"
QUOTE_DOCUMENT_FAMILY = "devis"


def connection_for(quote: Quote) -> Connection | None:
    return outbox.connection_for_client(quote.contract.client_id)


def stream_key(quote: Quote) -> str | None:
    """The ordering key: None for a supplementary quote (its parent order's
    stream), else one per quote, shared by its versions."""
    if quote.order_id is not None:
        return None
    first = Quote.objects.filter(number=quote.number, version=1).values_list("pk", flat=True).first()
    return f"quote:{first or quote.pk}"


def amount(value: Any) -> str:
    return f"{value:.2f}"


def quotation_log(quote: Quote, totals: Totals, *, logged_at: datetime) -> dict[str, Any]:
    """The log to POST to /operations/v2/quotations/logs when `quote` is sent."""
    assert quote.sent_at is not None
    status, event = PROPOSED
    order = quote.order
    service_code = quote.service_code or (order.service_code if order is not None else None)
    asset = quote.asset or (order.asset if order is not None else None)
    description = f"Devis {quote.display_number} : {quote.title}"
    if quote.version > 1:
        description += f" (version {quote.version}, remplace la précédente)"
    log: dict[str, Any] = {
        "reference": quote.number,
        "contractReference": quote.contract.reference,
        "status": status,
        "event": event,
        "eventDate": mapping.iso(quote.sent_at),
        "logDate": mapping.iso(logged_at),
        "description": description[:1000],
        "serviceCode": service_code.code if service_code is not None else "",
        "workType": order.work_type if order is not None else "corrective",
        "location": {"assetReference": asset.reference if asset is not None else ""},
        "tags": {
            "quote_reference": quote.number,
            "quote_version": str(quote.version),
            "quote_amount_excl_vat": amount(totals.total_excl_vat),
            "quote_amount_vat": amount(totals.total_vat),
            "quote_amount_incl_vat": amount(totals.total_incl_vat),
            "quote_valid_until": quote.valid_until.isoformat(),
        },
    }
    if order is not None:
        log["parentReference"] = order.reference
    return log


def _record(connection: Connection, quote: Quote, **fields: Any) -> OutboxMessage:
    """Record on the quote's stream; a supplementary quote's on its parent
    order's, holding the order's row (as the order services do), so that no two
    messages of that stream take the same place."""
    stream = stream_key(quote)
    if stream is None:
        assert quote.order_id is not None
        Order.objects.select_for_update().filter(pk=quote.order_id).first()
        return outbox.record(connection, order_id=quote.order_id, **fields)
    return outbox.record(connection, order_id=None, stream=stream, **fields)


def share_sent(quote: Quote, totals: Totals) -> OutboxMessage | None:
    """Record the quotation log of a quote just sent (inside its transaction)."""
    connection = connection_for(quote)
    if connection is None:
        return None
    assert quote.sent_at is not None
    return _record(
        connection,
        quote,
        kind=MessageKind.QUOTATION_LOG,
        payload=quotation_log(quote, totals, logged_at=quote.sent_at),
        changed_at=quote.sent_at,
    )


def document_payload(quote: Quote, *, created_at: datetime) -> dict[str, Any]:
    """The multipart fields of POST /documents/v1/documents for the quote's PDF
    (the file itself is read from the storage at delivery)."""
    return {
        "title": f"Devis {quote.display_number}",
        "description": f"PDF du devis {quote.display_number} : {quote.title}"[:1000],
        "elementType": ELEMENT_TYPE,
        "elementReference": quote.number,
        "intent_contractReference": quote.contract.reference,
        "intent_documentType": QUOTE_DOCUMENT_TYPE,
        "intent_documentFamily": QUOTE_DOCUMENT_FAMILY,
        "intent_creationDate": mapping.iso(created_at),
        "document": {
            "quote": quote.pk,
            "fileName": pdf_file_name(quote),
            "mime": "application/pdf",
            "size": quote.pdf_size,
            "sha256": quote.pdf_sha256,
        },
    }


def pdf_file_name(quote: Quote) -> str:
    suffix = f"-v{quote.version}" if quote.version > 1 else ""
    return f"devis-{quote.number}{suffix}.pdf"


def share_pdf(quote: Quote, *, created_at: datetime) -> OutboxMessage | None:
    """Record the upload of the quote's PDF, after its log on the same stream."""
    connection = connection_for(quote)
    if connection is None:
        return None
    return _record(
        connection,
        quote,
        kind=MessageKind.DOCUMENT,
        payload=document_payload(quote, created_at=created_at),
        changed_at=created_at,
        document_name=quote.pdf_file.name or "",
    )


def rebuild_log(message: OutboxMessage, logged_at: datetime) -> dict[str, Any] | None:
    """A refused quotation log rebuilt from the quote as it is now (after a
    person corrected, say, its asset or service code)."""
    payload = message.payload
    tags = payload.get("tags") or {}
    quote = (
        Quote.objects.select_related("contract", "order__service_code", "order__asset", "asset", "service_code")
        .filter(
            number=payload.get("reference"),
            contract__reference=payload.get("contractReference"),
            version=int(tags.get("quote_version") or 1),
        )
        .first()
    )
    if quote is None or quote.sent_at is None:
        return None
    rebuilt = quotation_log(quote, quote.totals(), logged_at=logged_at)
    for name in ("eventDate", "description"):
        if payload.get(name):
            rebuilt[name] = payload[name]
    return rebuilt


WITHDRAWN = ("denied", "canceled")


def share_withdrawn(quote: Quote, *, at: datetime) -> OutboxMessage | None:
    """A sent quote the contractor withdraws: `denied`/`canceled` with the
    reason in `description` (as a cancelled order is sent, docs/platform.md)."""
    connection = connection_for(quote)
    if connection is None or quote.sent_at is None:
        return None
    log = quotation_log(quote, quote.totals(), logged_at=at)
    log["status"], log["event"] = WITHDRAWN
    log["eventDate"] = mapping.iso(at)
    log["description"] = f"Devis {quote.display_number} retiré : {quote.cancel_reason}"[:1000]
    log["technicalReason"] = quote.cancel_reason[:500]
    return _record(connection, quote, kind=MessageKind.QUOTATION_LOG, payload=log, changed_at=at)
