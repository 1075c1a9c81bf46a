"""The platform's answers to quotes (docs/platform.md, Quotes and Webhooks).

The relay stores the platform's notifications and hands those about quotations
to `apply_notification` (registered in `quotes.apps`). A quotation's answer is
read from the notification's status and event (`closed`/`accepted`,
`denied`/`refused`, the portal's reading of a [gap]) and, when they say
nothing, from the quotation itself on the platform. `reconcile` asks the
platform about every quote still waiting for an answer, in case a webhook was
lost.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.utils import timezone

from portal.relay import intent
from portal.relay.inbound import IngestError
from portal.relay.models import Connection
from quotes import decisions, sharing
from quotes.models import Quote, QuoteState

logger = logging.getLogger(__name__)

QUOTE_TYPES = {"operations:quotation:update", "operations:quotation:share"}
UPDATE_TYPES = {"operations:intervention:update"}
ELEMENT_TYPE = sharing.ELEMENT_TYPE


def _decision(status: Any, event: Any) -> bool | None:
    """True for an acceptance, False for a refusal, None for anything else."""
    pair = (str(status or "").lower(), str(event or "").lower())
    if pair == sharing.ACCEPTED:
        return True
    if pair == sharing.REFUSED:
        return False
    return None


def _parse(value: Any) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(str(value))
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else timezone.make_aware(parsed)


def _quote_for(connection: Connection, reference: str, contract_reference: str) -> Quote:
    """The latest version of the quote numbered `reference` on that contract
    that the platform has seen (a new version still a draft is not the one answered)."""
    quote = (
        Quote.objects.filter(
            contract__client=connection.client, contract__reference=contract_reference, number=reference
        )
        .exclude(state__in=(QuoteState.DRAFT, QuoteState.CANCELLED))
        .order_by("-version")
        .first()
    )
    if quote is None:
        raise IngestError(f"Devis inconnu : {reference} (marché {contract_reference}).")
    return quote


def decision_in(quotation: dict[str, Any]) -> tuple[bool, datetime | None] | None:
    """The last answer in a quotation's history (its `logs`), if any."""
    for log in reversed(quotation.get("logs") or []):
        if not isinstance(log, dict):
            continue
        decided = _decision(log.get("status"), log.get("event"))
        if decided is not None:
            return decided, _parse(log.get("eventDate"))
    decided = _decision(quotation.get("status"), quotation.get("event"))
    return (decided, None) if decided is not None else None


def read_quotation(connection: Connection, reference: str, contract_reference: str) -> dict[str, Any]:
    body = intent.client_for(connection).get_quotation(reference, contract_reference)
    return body if isinstance(body, dict) else {}


def apply_notification(connection: Connection, summary: dict[str, Any]) -> int | None:
    """The relay's handler for QUOTE_TYPES: the id of the parent order touched, if any."""
    reference = str(summary.get("reference") or "").strip()
    contract_reference = str(summary.get("contractReference") or "").strip()
    if not reference or not contract_reference:
        raise IngestError("Référence du devis ou du marché absente.")
    quote = _quote_for(connection, reference, contract_reference)
    found: tuple[bool, datetime | None] | None = None
    decided = _decision(summary.get("status"), summary.get("event"))
    if decided is not None:
        found = (decided, None)
    elif isinstance(summary.get("operation"), dict):
        found = decision_in(summary["operation"])  # a bus message (Nexxio) carries the quotation
    else:
        found = decision_in(read_quotation(connection, reference, contract_reference))
    if found is None:
        return quote.order_id  # not an answer (e.g. the manager commented): nothing to apply
    accepted, at = found
    decisions.record_decision(quote, accepted=accepted, at=at)
    return quote.order_id


def reconcile(connection: Connection) -> int:
    """Apply the answers the platform holds for the quotes still waiting for one."""
    applied = 0
    waiting = Quote.objects.filter(contract__client=connection.client, state=QuoteState.SENT).select_related("contract")
    for quote in waiting:
        try:
            found = decision_in(read_quotation(connection, quote.number, quote.contract.reference))
        except intent.Rejection as error:
            logger.info("Quotation %s not readable on the platform: %s", quote.number, error.message)
            continue
        if found is not None:
            decisions.record_decision(quote, accepted=found[0], at=found[1])
            applied += 1
    return applied
