"""How a platform operation becomes an order.

The relay stores the platform's notifications and hands those about
interventions to `apply_notification` (registered in `orders.apps`): the
whole operation is read from the platform and the order created or brought up
to date through the order services. `reconcile` lists the platform's open
operations and brings in any order whose webhook never came.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.utils import timezone

from orders import receiving, services
from orders.models import CriticalLevel, Order, Origin, WorkType
from portal.models import Contract
from portal.relay import catalogue, inbound, intent, vcard
from portal.relay.inbound import IngestError
from portal.relay.models import Connection, NotificationStatus

logger = logging.getLogger(__name__)

ORDER_TYPES = {"operations:intervention:share", "operations:intervention:update"}
CANCELLED_STATUSES = {"denied", "canceled", "cancelled"}


def apply_notification(connection: Connection, summary: dict[str, Any]) -> int:
    """The relay's handler for ORDER_TYPES: the id of the order created or updated."""
    return apply_operation(connection, summary, operation_url=summary.get("operation_url")).pk


def apply_operation(connection: Connection, summary: dict[str, Any], *, operation_url: str | None = None) -> Order:
    """Read the whole operation from the platform and create or update its order."""
    reference = str(summary.get("reference") or "").strip()
    contract_reference = str(summary.get("contractReference") or "").strip()
    if not reference or not contract_reference:
        raise IngestError("Référence de l'opération ou du marché absente.")
    contract = Contract.objects.filter(client=connection.client, reference=contract_reference).first()
    if contract is None:
        raise IngestError(
            f"Marché inconnu : {contract_reference}. Créez-le dans l'administration (client "
            f"{connection.client}), puis relancez le traitement de cette notification."
        )
    carried = summary.get("operation")
    if isinstance(carried, dict):
        # A bus message (Nexxio) carries the whole operation: nothing to read back.
        return upsert_order(connection, contract, carried)
    client = intent.client_for(connection)
    # The link the notification gave, else the documented path: same operation.
    if operation_url:
        return upsert_order(connection, contract, client.get_url(operation_url))
    return upsert_order(connection, contract, client.get_operation(reference, contract_reference))


def _parse_datetime(value: Any) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(str(value))
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else timezone.make_aware(parsed)


def occupant_from(contacts: Any) -> dict[str, str]:
    cards = [vcard.read(text) for text in contacts or [] if isinstance(text, str)]
    cards = [card for card in cards if card.get("role", "").lower() != "pilote"]
    if not cards:
        return {}
    card = next((c for c in cards if c.get("role", "").lower() in ("locataire", "occupant")), cards[0])
    return {
        "occupant_name": card.get("name", "")[:200],
        "occupant_phone": card.get("phone", "")[:30],
        "occupant_mobile": card.get("mobile", "")[:30],
        "occupant_email": card.get("email", "")[:254] if "@" in card.get("email", "") else "",
    }


def _lines(operation: dict[str, Any]) -> list[dict[str, Any]]:
    lines = []
    for position, item in enumerate(operation.get("lines") or [], start=1):
        if not isinstance(item, dict):
            continue
        try:
            quantity = Decimal(str(item.get("quantity", 1)))
            unit_price = Decimal(str(item.get("unitPrice", item.get("unit_price", 0))))
        except InvalidOperation:
            quantity, unit_price = Decimal(1), Decimal(0)
        lines.append(
            {
                "position": position,
                "reference": str(item.get("reference") or f"L{position}")[:100],
                "label": str(item.get("label") or item.get("description") or "Ligne")[:300],
                "quantity": quantity if quantity > 0 else Decimal(1),
                "unit": str(item.get("unit") or "u")[:20],
                "unit_price": unit_price if unit_price >= 0 else Decimal(0),
            }
        )
    return lines


def upsert_order(connection: Connection, contract: Contract, operation: dict[str, Any]) -> Order:
    reference = str(operation.get("reference") or "").strip()
    if not reference:
        raise IngestError("Opération sans référence.")
    location = operation.get("location") or {}
    address = location.get("address") if isinstance(location, dict) else None
    try:
        critical = int(operation.get("criticalLevel") or 0)
    except (TypeError, ValueError):
        critical = 0
    work_type = operation.get("workType")
    details: dict[str, Any] = {
        "description": str(operation.get("description") or "")[:5000],
        "work_type": work_type if work_type in WorkType.values else WorkType.CORRECTIVE,
        "critical_level": critical if critical in CriticalLevel.values else 0,
        "asset": catalogue.asset_for(connection, contract, location),
        "service_code": catalogue.service_code_for(
            contract, operation.get("service"), str(operation.get("serviceCode") or "")
        ),
        "access_notes": str((address or {}).get("complement") or "")[:300],
        **occupant_from(operation.get("contacts")),
    }
    with transaction.atomic():
        order = Order.objects.select_for_update().filter(contract=contract, reference=reference).first()
        if order is None:
            created = _parse_datetime(operation.get("creationDate")) or timezone.now()
            return receiving.register_order(
                contract=contract,
                reference=reference,
                actor=None,
                origin=Origin.PLATFORM,
                notified_at=created,
                received_at=timezone.now(),
                lines=_lines(operation),
                address=catalogue.street_address(location),
                **details,
            )
        if order.is_open:
            receiving.update_order_from_platform(order, changes=details, address=catalogue.street_address(location))
            if str(operation.get("status") or "") in CANCELLED_STATUSES:
                reason = _platform_cancel_reason(operation)
                services.cancel_order(order, actor=None, reason=reason)
        return order


def _platform_cancel_reason(operation: dict[str, Any]) -> str:
    logs = operation.get("logs") or []
    last = logs[-1] if logs and isinstance(logs[-1], dict) else {}
    return str(last.get("description") or last.get("technicalReason") or "Annulée par le gestionnaire")[:500]


# --- Reconciliation ---------------------------------------------------------


# The platform's statuses of an operation still under way; "denied" is one it cancelled.
ACTIVE_STATUSES = ("open", "pending", "hold")
LISTED_STATUSES = (*ACTIVE_STATUSES, "denied")


def reconcile(connection: Connection) -> int:
    """Bring the portal up to date with the platform, for what its webhooks
    missed: every active operation with no order here is created; every order
    here still open whose operation changed on the platform since it was last
    read (its `lastUpdateDate`) is updated from it, cancellations included.
    Each is stored as a notification first, like a webhook's (so a change is
    read once, and what cannot be applied stays for a person). Returns how
    many orders were created or updated."""
    client = intent.client_for(connection)
    contracts = {c.reference: c for c in Contract.objects.filter(client=connection.client)}
    applied = 0
    for status in LISTED_STATUSES:
        for summary in client.list_operations(status=status):
            if not isinstance(summary, dict) or summary.get("type", "intervention") != "intervention":
                continue
            item = _reconciliation_item(summary, contracts, active=status in ACTIVE_STATUSES)
            if item is None:
                continue
            new, _ = inbound.store_notifications(connection, [item])
            if new and inbound.process_notification(new[0]) == NotificationStatus.PROCESSED:
                applied += 1
    return applied


def _reconciliation_item(summary: dict[str, Any], contracts: dict[str, Contract], *, active: bool) -> dict | None:
    """The notification to store for a listed operation, or None when the
    portal has nothing to do with it."""
    reference = str(summary.get("reference") or "")
    contract_reference = str(summary.get("contractReference") or (summary.get("contract") or {}).get("reference") or "")
    contract = contracts.get(contract_reference)
    order = Order.objects.filter(contract=contract, reference=reference).first() if contract else None
    body = {**summary, "contractReference": contract_reference}
    if order is None and not active:
        return None  # cancelled before it ever reached the portal
    if order is not None and not order.is_open:
        return None
    # One notification per version of the listed operation (its lastUpdateDate,
    # status and details: two changes in one second differ by their content), so
    # that an operation is read again only when it changed.
    version = hashlib.sha256(json.dumps(summary, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return {
        "id": f"reconciliation:{contract_reference}:{reference}:{version}",
        "type": "operations:intervention:share" if order is None else "operations:intervention:update",
        "event": {"type": "operations", "body": body},
    }
