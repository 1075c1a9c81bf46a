"""The contract's service codes and the client's assets, read from the platform
(contracts and assets APIs) and kept in the shared core through its services."""

from __future__ import annotations

from typing import Any

from portal import services
from portal.models import Asset, Contract, ServiceCode
from portal.relay import intent
from portal.relay.models import Connection, ConnectionKind


def hours(sla: Any, key: str) -> int | None:
    """An SLA delay (`{"value": 3, "unit": "day"}`) in hours."""
    try:
        item = sla[key]
        value, unit = int(item["value"]), str(item.get("unit", "hour"))
    except (KeyError, TypeError, ValueError):
        return None
    return value * 24 if unit.startswith("day") else value


def _service_code(contract: Contract, service: dict[str, Any], code: str, *, overwrite: bool) -> ServiceCode:
    sla = service.get("sla") or {}
    return services.upsert_service_code(
        contract,
        code=code,
        label=str(service.get("label") or code),
        intervention_delay_hours=hours(sla, "maxTimeToIntervention"),
        completion_delay_hours=hours(sla, "maxTimeToRecovery"),
        overwrite=overwrite,
    )


def service_code_for(contract: Contract, service: Any, code: str) -> ServiceCode | None:
    """The contract's service code named by an operation, created from the
    platform's catalogue entry when new (an existing one is left as it is)."""
    service = service if isinstance(service, dict) else {}
    code = (code or service.get("code") or "").strip()
    if not code:
        return None
    return _service_code(contract, service, code, overwrite=False)


def sync_contract(connection: Connection, contract: Contract) -> int:
    """Bring the contract's service codes (and their SLA delays) in line with the platform's catalogue."""
    body = intent.client_for(connection).get_contract(contract.reference)
    count = 0
    for service in body.get("serviceCodes") or []:
        if not isinstance(service, dict) or not service.get("code"):
            continue
        _service_code(contract, service, str(service["code"]), overwrite=True)
        count += 1
    return count


def sync_asset(connection: Connection, contract: Contract, code: str) -> Asset:
    """The asset `code` as the platform's estate describes it."""
    body = intent.client_for(connection).get_asset(code)
    address: dict[str, Any] = body["address"] if isinstance(body.get("address"), dict) else {}
    parent = None
    parent_reference = body.get("parentReference")
    if parent_reference:
        parent = Asset.objects.filter(client=contract.client, reference=parent_reference).first()
    return services.upsert_asset(
        contract.client_id,
        reference=code,
        label=str(body.get("label") or code),
        kind=str(body.get("type") or ""),
        parent=parent,
        address=str(address.get("way") or ""),
        address_complement=str(address.get("complement") or ""),
        postcode=str(address.get("zip") or ""),
        city=str(address.get("city") or ""),
    )


def street_address(location: Any) -> dict[str, str] | None:
    """The street address an operation's `location.address` gives (way, zip,
    city), or None when it gives none (absent, or a complement alone)."""
    address = location.get("address") if isinstance(location, dict) else None
    if not isinstance(address, dict):
        return None
    fields = {
        "address": str(address.get("way") or "").strip(),
        "postcode": str(address.get("zip") or "").strip(),
        "city": str(address.get("city") or "").strip(),
    }
    return fields if any(fields.values()) else None


def asset_for(connection: Connection, contract: Contract, location: Any) -> Asset | None:
    """The client's asset named by an operation; a new one is read from the
    platform's estate, or made from the operation's location when the platform
    cannot say more. None when the operation names no asset: no reference is
    made up (the platform would get it back in every log). The operation's
    street address is the platform's latest word on where the work is: the
    order services give it to the asset, or to an order without one
    (`orders.receiving.place_works`, which records its change); the operation's
    complement (floor, door) is the order's access notes (orders.inbound)."""
    location = location if isinstance(location, dict) else {}
    reference = str(location.get("assetReference") or "").strip()[:100]
    if not reference:
        return None
    asset = Asset.objects.filter(client=contract.client, reference=reference).first()
    if asset is None and connection.kind == ConnectionKind.INTENT:  # a bus (Nexxio) has no estate to read
        try:
            asset = sync_asset(connection, contract, reference)
        except intent.Rejection:
            asset = None  # unknown to the asset API: the location is all there is
    if asset is None:
        address = location.get("address") if isinstance(location.get("address"), dict) else {}
        return services.upsert_asset(
            contract.client_id,
            reference=reference,
            label=str(address.get("complement") or address.get("way") or reference),
            address=str(address.get("way") or ""),
            address_complement=str(address.get("complement") or ""),
            postcode=str(address.get("zip") or ""),
            city=str(address.get("city") or ""),
            overwrite=False,
        )
    return asset
