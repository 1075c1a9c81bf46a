"""Writes to the shared core's data that other layers need: the contract's
service codes and the client's assets, as the platform describes them."""

from __future__ import annotations

from collections.abc import Mapping

from django.db import transaction

from portal.models import Asset, AssetKind, Contract, NotificationKind, NotificationPreference, ServiceCode, User


@transaction.atomic
def upsert_service_code(
    contract: Contract,
    *,
    code: str,
    label: str,
    intervention_delay_hours: int | None,
    completion_delay_hours: int | None,
    overwrite: bool = True,
) -> ServiceCode:
    """The contract's service code `code`, created when new; an existing one is
    brought up to date only when `overwrite` (the catalogue's nightly sync), not
    when an operation merely mentions it."""
    fields = {
        "label": label[:200],
        "intervention_delay_hours": intervention_delay_hours,
        "completion_delay_hours": completion_delay_hours,
    }
    if overwrite:
        service_code, _ = ServiceCode.objects.update_or_create(contract=contract, code=code[:50], defaults=fields)
    else:
        service_code, _ = ServiceCode.objects.get_or_create(contract=contract, code=code[:50], defaults=fields)
    return service_code


@transaction.atomic
def upsert_asset(
    client_id: int,
    *,
    reference: str,
    label: str,
    kind: str = AssetKind.DWELLING,
    parent: Asset | None = None,
    address: str = "",
    address_complement: str = "",
    postcode: str = "",
    city: str = "",
    overwrite: bool = True,
) -> Asset:
    """The client's asset `reference`, created when new; updated when `overwrite`."""
    fields = {
        "label": label[:200],
        "kind": kind if kind in AssetKind.values else AssetKind.DWELLING,
        "address": address[:200],
        "address_complement": address_complement[:200],
        "postcode": postcode[:10],
        "city": city[:100],
    }
    if overwrite:
        asset, _ = Asset.objects.update_or_create(
            client_id=client_id, reference=reference[:100], defaults={**fields, "parent": parent}
        )
    else:
        asset, _ = Asset.objects.get_or_create(client_id=client_id, reference=reference[:100], defaults=fields)
    return asset


def set_asset_address(asset: Asset, *, address: str, postcode: str, city: str) -> Asset:
    """The asset's street address as the platform gives it now (its complement,
    label, kind and parent stay as they are). Writes only when it changed."""
    fields = {"address": address[:200], "postcode": postcode[:10], "city": city[:100]}
    changed = {name: value for name, value in fields.items() if getattr(asset, name) != value}
    if changed:
        Asset.objects.filter(pk=asset.pk).update(**changed)
        for name, value in changed.items():
            setattr(asset, name, value)
    return asset


@transaction.atomic
def save_notification_preferences(user: User, *, email: str, choices: Mapping[str, bool]) -> NotificationPreference:
    """The person's address and which kinds of email they want."""
    email = email.strip()
    if email != user.email:
        user.email = email
        user.save(update_fields=["email"])
    preference, _ = NotificationPreference.objects.update_or_create(
        user=user, defaults={kind: bool(choices.get(kind)) for kind in NotificationKind.values}
    )
    return preference
