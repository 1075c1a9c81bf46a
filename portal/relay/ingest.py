"""Inbound: from the platform's notifications and operations to orders.

The webhook stores each notification raw and at once; `process_notification`
then reads the full operation and creates or updates the order through the
order services. `reconcile` lists the platform's open operations and fetches
any order whose webhook never came. Nothing unknown is dropped: a notification
that cannot be applied stays in the database, failed, with its reason, for
office staff to see and retry.
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

from orders import services
from orders.models import CriticalLevel, Order, Origin, WorkType
from portal.models import Asset, AssetKind, Contract, ServiceCode
from portal.relay import intent
from portal.relay.delivery import client_for
from portal.relay.models import Connection, InboundNotification, NotificationStatus

logger = logging.getLogger(__name__)

ORDER_TYPES = {"operations:intervention:share", "operations:intervention:update"}
CANCELLED_STATUSES = {"denied", "canceled", "cancelled"}


class IngestError(Exception):
    """The notification cannot be applied until a person does something (French)."""


# --- Storing notifications --------------------------------------------------


def notification_id(item: Any) -> str:
    if isinstance(item, dict) and isinstance(item.get("id"), str | int) and str(item["id"]).strip():
        return str(item["id"]).strip()[:200]
    # No id: the content itself identifies the notification, so a repeat is still a no-op.
    digest = hashlib.sha256(json.dumps(item, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    return f"sans-id:{digest}"


def store_notifications(connection: Connection, items: list[Any]) -> tuple[list[int], int]:
    """Store each notification once. Returns the ids of the new ones and the count of repeats."""
    created, repeats = [], 0
    with transaction.atomic():
        for item in items:
            kind = item.get("type", "") if isinstance(item, dict) else ""
            notification, is_new = InboundNotification.objects.get_or_create(
                connection=connection,
                notification_id=notification_id(item),
                defaults={"type": str(kind)[:100], "body": item if isinstance(item, dict) else {"value": item}},
            )
            if is_new:
                created.append(notification.pk)
            else:
                repeats += 1
    return created, repeats


def store_unreadable(connection: Connection, raw: bytes, reason: str) -> InboundNotification:
    """Keep a body we could not read, so that nothing the platform sent is lost."""
    digest = hashlib.sha256(raw).hexdigest()
    notification, _ = InboundNotification.objects.get_or_create(
        connection=connection,
        notification_id=f"illisible:{digest}",
        defaults={
            "type": "",
            "body": {"raw": raw[:100_000].decode("utf-8", "replace")},
            "status": NotificationStatus.FAILED,
            "error": reason,
        },
    )
    return notification


# --- Applying them ----------------------------------------------------------


def process_notification(notification_pk: int) -> str:
    """Apply one stored notification. Safe to run twice. Returns its new status.
    Raises intent.TransientError when the platform could not be read (retry later)."""
    notification = InboundNotification.objects.select_related("connection__client").get(pk=notification_pk)
    if notification.status in (NotificationStatus.PROCESSED, NotificationStatus.IGNORED):
        return notification.status
    InboundNotification.objects.filter(pk=notification.pk).update(attempts=notification.attempts + 1)
    body = notification.body
    kind = body.get("type") if isinstance(body, dict) else None
    if kind not in ORDER_TYPES:
        return _conclude(notification, NotificationStatus.IGNORED, f"Type de notification non pris en charge : {kind}")
    try:
        summary = body["event"]["body"]
        if not isinstance(summary, dict):
            raise TypeError
    except (KeyError, TypeError):
        return _conclude(notification, NotificationStatus.FAILED, "Notification sans « event.body » lisible.")
    try:
        order = apply_operation(notification.connection, summary, operation_url=summary.get("operation_url"))
    except IngestError as error:
        return _conclude(notification, NotificationStatus.FAILED, str(error))
    except (services.ServiceError, services.TransitionError) as error:
        # The order cannot take the change (e.g. cancelled on the platform after the
        # work was finished): kept failed with the French reason, for a person to decide.
        return _conclude(notification, NotificationStatus.FAILED, str(error))
    except intent.Rejection as error:
        return _conclude(notification, NotificationStatus.FAILED, f"Lecture de l'opération refusée : {error.message}")
    return _conclude(notification, NotificationStatus.PROCESSED, "", order=order)


def _conclude(notification: InboundNotification, status: str, error: str, *, order: Order | None = None) -> str:
    InboundNotification.objects.filter(pk=notification.pk).update(
        status=status,
        error=error,
        processed_at=timezone.now() if status == NotificationStatus.PROCESSED else None,
        order=order,
    )
    return status


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
    client = client_for(connection)
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


def parse_vcard(text: str) -> dict[str, str]:
    """The few vCard 3.0 fields the portal uses: name, phones, email, role."""
    card: dict[str, str] = {}
    for raw_line in str(text).replace("\r\n ", "").splitlines():
        if ":" not in raw_line:
            continue
        key, value = raw_line.split(":", 1)
        name, *params = key.upper().split(";")
        value = value.replace("\\,", ",").replace("\\;", ";").strip()
        if name == "FN":
            card["name"] = value
        elif name == "TEL":
            types = ",".join(params)
            field = "mobile" if "CELL" in types else "phone"
            card.setdefault(field, value)
        elif name == "EMAIL":
            card.setdefault("email", value)
        elif name == "ROLE":
            card["role"] = value
    return card


def occupant_from(contacts: Any) -> dict[str, str]:
    cards = [parse_vcard(text) for text in contacts or [] if isinstance(text, str)]
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


def _hours(sla: Any, key: str) -> int | None:
    try:
        item = sla[key]
        value, unit = int(item["value"]), str(item.get("unit", "hour"))
    except (KeyError, TypeError, ValueError):
        return None
    return value * 24 if unit.startswith("day") else value


def service_code_for(contract: Contract, service: Any, code: str) -> ServiceCode | None:
    """The contract's service code, created from the platform's catalogue entry when new."""
    code = (code or (service or {}).get("code") or "").strip()
    if not code:
        return None
    service = service if isinstance(service, dict) else {}
    sla = service.get("sla") or {}
    found, _ = ServiceCode.objects.get_or_create(
        contract=contract,
        code=code[:50],
        defaults={
            "label": str(service.get("label") or code)[:200],
            "intervention_delay_hours": _hours(sla, "maxTimeToIntervention"),
            "completion_delay_hours": _hours(sla, "maxTimeToRecovery"),
        },
    )
    return found


def asset_for(connection: Connection, contract: Contract, location: Any) -> Asset | None:
    """The client's asset; a new one is read from the platform's estate, or
    made from the operation's location when the platform cannot say more."""
    location = location if isinstance(location, dict) else {}
    reference = str(location.get("assetReference") or "").strip()
    if not reference:
        return None
    known = Asset.objects.filter(client=contract.client, reference=reference[:100]).first()
    if known is not None:
        return known
    try:
        return sync_asset(connection, contract, reference[:100])
    except intent.Rejection:
        pass  # unknown to the asset API: the location is all there is
    address = location.get("address") if isinstance(location.get("address"), dict) else {}
    found, _ = Asset.objects.get_or_create(
        client=contract.client,
        reference=reference[:100],
        defaults={
            "label": str(address.get("complement") or address.get("way") or reference)[:200],
            "kind": AssetKind.DWELLING,
            "address": str(address.get("way") or "")[:200],
            "address_complement": str(address.get("complement") or "")[:200],
            "postcode": str(address.get("zip") or "")[:10],
            "city": str(address.get("city") or "")[:100],
        },
    )
    return found


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
        "asset": asset_for(connection, contract, location),
        "service_code": service_code_for(contract, operation.get("service"), str(operation.get("serviceCode") or "")),
        "access_notes": str((address or {}).get("complement") or "")[:300],
        **occupant_from(operation.get("contacts")),
    }
    with transaction.atomic():
        order = Order.objects.select_for_update().filter(contract=contract, reference=reference).first()
        if order is None:
            created = _parse_datetime(operation.get("creationDate")) or timezone.now()
            return services.register_order(
                contract=contract,
                reference=reference,
                actor=None,
                origin=Origin.PLATFORM,
                notified_at=created,
                received_at=timezone.now(),
                lines=_lines(operation),
                **details,
            )
        if order.is_open:
            services.update_order_details(order, actor=None, changes=details)
            if str(operation.get("status") or "") in CANCELLED_STATUSES:
                reason = _platform_cancel_reason(operation)
                services.cancel_order(order, actor=None, reason=reason)
        return order


def _platform_cancel_reason(operation: dict[str, Any]) -> str:
    logs = operation.get("logs") or []
    last = logs[-1] if logs and isinstance(logs[-1], dict) else {}
    return str(last.get("description") or last.get("technicalReason") or "Annulée par le gestionnaire")[:500]


# --- Reconciliation and synchronisation --------------------------------------


def reconcile(connection: Connection) -> int:
    """Create every open operation of the platform that has no order here. Returns how many."""
    client = client_for(connection)
    contracts = {c.reference: c for c in Contract.objects.filter(client=connection.client)}
    created = 0
    for summary in client.list_operations(status="open"):
        if not isinstance(summary, dict) or summary.get("type", "intervention") != "intervention":
            continue
        reference = str(summary.get("reference") or "")
        contract_reference = str(
            summary.get("contractReference") or (summary.get("contract") or {}).get("reference") or ""
        )
        contract = contracts.get(contract_reference)
        if contract is not None and Order.objects.filter(contract=contract, reference=reference).exists():
            continue
        item = {
            "id": f"reconciliation:{contract_reference}:{reference}",
            "type": "operations:intervention:share",
            "event": {"type": "operations", "body": {**summary, "contractReference": contract_reference}},
        }
        new, _ = store_notifications(connection, [item])
        if new and process_notification(new[0]) == NotificationStatus.PROCESSED:
            created += 1
    return created


def sync_contract(connection: Connection, contract: Contract) -> int:
    """Bring the contract's service codes (and their SLA delays) in line with the platform's catalogue."""
    body = client_for(connection).get_contract(contract.reference)
    count = 0
    for service in body.get("serviceCodes") or []:
        if not isinstance(service, dict) or not service.get("code"):
            continue
        sla = service.get("sla") or {}
        ServiceCode.objects.update_or_create(
            contract=contract,
            code=str(service["code"])[:50],
            defaults={
                "label": str(service.get("label") or service["code"])[:200],
                "intervention_delay_hours": _hours(sla, "maxTimeToIntervention"),
                "completion_delay_hours": _hours(sla, "maxTimeToRecovery"),
            },
        )
        count += 1
    return count


def sync_asset(connection: Connection, contract: Contract, code: str) -> Asset:
    body = client_for(connection).get_asset(code)
    address = body.get("address") if isinstance(body.get("address"), dict) else {}
    parent = None
    parent_reference = body.get("parentReference")
    if parent_reference:
        parent = Asset.objects.filter(client=contract.client, reference=parent_reference).first()
    kind = body.get("type") if body.get("type") in AssetKind.values else AssetKind.DWELLING
    asset, _ = Asset.objects.update_or_create(
        client=contract.client,
        reference=code,
        defaults={
            "label": str(body.get("label") or code)[:200],
            "kind": kind,
            "parent": parent,
            "address": str(address.get("way") or "")[:200],
            "address_complement": str(address.get("complement") or "")[:200],
            "postcode": str(address.get("zip") or "")[:10],
            "city": str(address.get("city") or "")[:100],
        },
    )
    return asset
