"""Receiving and describing orders: an order recorded as the client sent it
(`register_order`, from the platform or typed in by office staff), what
describes it corrected (`update_order_details`) or brought up to date by the
platform (`update_order_from_platform`), where its works are (`place_works`),
and its lines. Built on the core of `orders.services`, as every change is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from orders import deadlines, sharing
from orders.formatting import describe, format_deadline, iso
from orders.models import Order, OrderEvent, OrderLine, Origin
from orders.services import ServiceError, assign_order, lock_for, record_event, reload
from orders.states import Action, State
from portal import services as portal_services
from portal.models import Asset, Contract, ServiceCode, User

# Order fields that describe the order (as opposed to its execution); they can
# be edited by office staff, and each edit is recorded in the history.
DETAIL_FIELDS = (
    "billing_account",
    "asset",
    "service_code",
    "work_type",
    "critical_level",
    "description",
    "occupant_name",
    "occupant_phone",
    "occupant_mobile",
    "occupant_email",
    "access_notes",
    "notified_at",
    "due_at",
)
LINE_FIELDS = ("reference", "label", "quantity", "unit", "unit_price", "vat_rate", "price_item", "position")


def compute_due_at(
    notified_at: datetime, contract: Contract, service_code: ServiceCode | None, postcode: str = ""
) -> datetime:
    """The end of the execution period from notification (CCAG §14.1.2, §3.2): the service code's
    delay in hours wins over the contract's in days; the department of the works' postcode
    (`Order.postcode`) says which holidays count."""
    hours = service_code.completion_delay_hours if service_code is not None else None
    return deadlines.execution_period(
        notified_at, days=contract.default_delay_days, hours=hours, department=deadlines.department_of(postcode)
    ).ends_at


def _postcode(asset: Asset | None, address: Mapping[str, str] | None) -> str:
    """The works' postcode before the order exists, as `Order.postcode` will read it."""
    if asset is not None and asset.full_address:
        return asset.postcode
    return (address or {}).get("postcode", "")


@transaction.atomic
def register_order(
    *,
    contract: Contract,
    reference: str,
    actor: User | None,
    notified_at: datetime | None = None,
    received_at: datetime | None = None,
    lines: Iterable[Mapping[str, Any]] = (),
    technician: User | None = None,
    pilot: User | None = None,
    origin: str = "manual",
    address: Mapping[str, str] | None = None,
    **details: Any,
) -> Order:
    """Record an order the client sent (from the platform or typed in by office
    staff). `address` is the street address the platform gave for the works
    (`address`, `postcode`, `city`): the asset's when the order names one, else
    the order's own (see `place_works`)."""
    unknown = set(details) - set(DETAIL_FIELDS)
    if unknown:
        raise TypeError(f"Unknown order fields: {sorted(unknown)}")
    reference = reference.strip()
    if not reference:
        raise ServiceError("La référence de la commande est obligatoire.")
    now = timezone.now()
    received_at = received_at or now
    notified_at = notified_at or received_at
    asset = details.get("asset")
    _check_belongs_to_client(contract, asset, details.get("service_code"))
    if origin == Origin.MANUAL:
        _check_complete(contract, asset, details.get("service_code"))
    site: dict[str, str] = {}
    if address is not None and asset is not None:
        details["asset"] = portal_services.set_asset_address(asset, **address)
    elif address is not None:
        site = _site_fields(address)
    if details.get("due_at") is None:
        postcode = _postcode(details.get("asset"), address)
        details["due_at"] = compute_due_at(notified_at, contract, details.get("service_code"), postcode)
    try:
        with transaction.atomic():
            order = Order.objects.create(
                contract=contract,
                reference=reference,
                received_at=received_at,
                notified_at=notified_at,
                state=State.TO_ACKNOWLEDGE,
                origin=origin,
                **details,
                **site,
            )
    except IntegrityError as error:
        if Order.objects.filter(contract=contract, reference=reference).exists():
            raise ServiceError(f"Une commande {reference} existe déjà sur le marché {contract.reference}.") from error
        raise
    record_event(
        order,
        kind="received",
        label=f"Commande reçue, échéance le {format_deadline(details['due_at'])}",
        actor=actor,
        at=received_at,
        after=State.TO_ACKNOWLEDGE,
        data={"due_at": iso(order.due_at)},
    )
    for position, line in enumerate(lines, start=1):
        add_line(order, actor=actor, at=received_at, **{"position": position, **line})
    if technician is not None or pilot is not None:
        assign_order(order, actor=actor, technician=technician, pilot=pilot, at=received_at)
    return order


def _check_complete(contract: Contract, asset: Asset | None, service_code: ServiceCode | None) -> None:
    if reason := sharing.incomplete_for_platform(contract, asset, service_code):
        raise ServiceError(reason)


def _check_belongs_to_client(contract: Contract, asset: Asset | None, service_code: ServiceCode | None) -> None:
    if asset is not None and asset.client_id != contract.client_id:
        raise ServiceError("Cet élément de patrimoine n'appartient pas au client du marché.")
    if service_code is not None and service_code.contract_id != contract.pk:
        raise ServiceError("Ce code prestation n'appartient pas au marché de la commande.")


def _field_name(model: type[Order] | type[OrderLine], name: str) -> str:
    return str(getattr(model._meta.get_field(name), "verbose_name", name))


@transaction.atomic
def update_order_details(
    order: Order, *, actor: User | None, changes: Mapping[str, Any], at: datetime | None = None
) -> OrderEvent | None:
    """Correct what describes the order (asset, contacts, description...)."""
    unknown = set(changes) - set(DETAIL_FIELDS)
    if unknown:
        raise TypeError(f"Not editable here: {sorted(unknown)}")
    locked = lock_for(order, Action.EDIT)
    changed = {name: value for name, value in changes.items() if getattr(locked, name) != value}
    if not changed:
        return None
    asset, service_code = changed.get("asset", locked.asset), changed.get("service_code", locked.service_code)
    _check_belongs_to_client(locked.contract, asset, service_code)
    if {"asset", "service_code"} & {name for name, value in changed.items() if value is None}:
        _check_complete(locked.contract, asset, service_code)
    if "notified_at" in changed and "due_at" not in changes:
        postcode = asset.postcode if asset is not None and asset.full_address else locked.site_postcode
        changed["due_at"] = compute_due_at(
            changed["notified_at"], locked.contract, changed.get("service_code", locked.service_code), postcode
        )
    before = {name: describe(getattr(locked, name)) for name in changed}
    Order.objects.filter(pk=locked.pk).update(updated_at=timezone.now(), **changed)
    reload(order)
    names = ", ".join(_field_name(Order, name) for name in changed)
    return record_event(
        order,
        kind="edited",
        label=f"Commande modifiée : {names}",
        actor=actor,
        at=at,
        data={name: {"avant": before[name], "après": describe(getattr(order, name))} for name in changed},
    )


# --- Where the works are ------------------------------------------------------

ADDRESS_UNKNOWN = "non renseignée"


def _site_fields(address: Mapping[str, str]) -> dict[str, str]:
    return {
        "site_address": str(address.get("address") or "")[:200],
        "site_postcode": str(address.get("postcode") or "")[:10],
        "site_city": str(address.get("city") or "")[:100],
    }


def place_works(order: Order, address: Mapping[str, str]) -> None:
    """Put the street address the platform gives for the works where it belongs:
    on the order's asset (the orders of one dwelling share it, and the
    platform's latest word wins), or on the order itself when it names no asset
    (an asset reference is never made up: the platform would get it back in
    every log). Writes only what changed; records nothing (see the callers)."""
    if order.asset_id is not None and order.asset is not None:
        portal_services.set_asset_address(order.asset, **address)
        return
    fields = _site_fields(address)
    changed = {name: value for name, value in fields.items() if getattr(order, name) != value}
    if changed:
        Order.objects.filter(pk=order.pk).update(updated_at=timezone.now(), **changed)


def address_change_label(before: str, after: str) -> str:
    """« Adresse modifiée par le gestionnaire : avant → après », within an event's label."""
    room = (300 - len("Adresse modifiée par le gestionnaire :  → ")) // 2

    def short(address: str) -> str:
        address = address or ADDRESS_UNKNOWN
        return address if len(address) <= room else address[: room - 1] + "…"

    return f"Adresse modifiée par le gestionnaire : {short(before)} → {short(after)}"


@transaction.atomic
def update_order_from_platform(
    order: Order,
    *,
    changes: Mapping[str, Any],
    address: Mapping[str, str] | None,
    at: datetime | None = None,
) -> list[OrderEvent]:
    """The platform's latest word on an order it sent (its operation changed):
    the details as `update_order_details` records them, then where the works
    are (`place_works`, when the operation gives a street address). A change of
    the address as people read it (`Order.full_address`: the asset's, or the
    order's own) is an event of its own, « Adresse modifiée par le gestionnaire :
    avant → après ». Nothing of it is sent back (`sharing.FROM_PLATFORM`)."""
    locked = lock_for(order, Action.EDIT)
    before = locked.full_address
    events = []
    edited = update_order_details(order, actor=None, changes=changes, at=at)
    if edited is not None:
        events.append(edited)
    if address is not None:
        place_works(order, address)
    reload(order)
    after = order.full_address
    if after != before:
        events.append(
            record_event(
                order,
                kind="address",
                label=address_change_label(before, after),
                actor=None,
                at=at,
                data={"avant": before, "après": after},
            )
        )
    return events


@transaction.atomic
def add_line(order: Order, *, actor: User | None, at: datetime | None = None, **fields: Any) -> OrderLine:
    lock_for(order, Action.EDIT)
    fields = _line_fields(order, fields)
    if order.lines.filter(reference=fields["reference"]).exists():
        raise ServiceError(f"La commande a déjà une ligne {fields['reference']}.")
    line = OrderLine.objects.create(order=order, **fields)
    record_event(
        order,
        kind="line_added",
        label=f"Ligne ajoutée : {line.reference} – {line.label} ({line.quantity} {line.unit})",
        actor=actor,
        at=at,
        data={"line": line.reference},
    )
    return line


def _line_fields(order: Order, fields: Mapping[str, Any]) -> dict[str, Any]:
    fields = {name: value for name, value in fields.items() if name in LINE_FIELDS}
    price_item = fields.get("price_item")
    if price_item is not None:
        if price_item.contract_id != order.contract_id:
            raise ServiceError("Ce prix n'appartient pas au bordereau du marché de la commande.")
        # A line from the price schedule takes its label, unit and prices unless given.
        fields.setdefault("label", price_item.label)
        fields.setdefault("unit", price_item.unit)
        fields.setdefault("unit_price", price_item.unit_price)
        fields.setdefault("vat_rate", price_item.vat_rate)
        fields.setdefault("reference", price_item.code)
    if not str(fields.get("reference") or "").strip():
        fields["reference"] = f"L{order.lines.count() + 1}"
    if not str(fields.get("label") or "").strip():
        raise ServiceError("Une ligne de commande doit avoir un libellé.")
    if "quantity" in fields and Decimal(fields["quantity"]) <= 0:
        raise ServiceError("La quantité d'une ligne doit être positive.")
    return fields


@transaction.atomic
def update_line(line: OrderLine, *, actor: User | None, changes: Mapping[str, Any]) -> OrderEvent | None:
    order = lock_for(line.order, Action.EDIT)
    changes = _line_fields(order, {**{name: getattr(line, name) for name in LINE_FIELDS}, **changes})
    current = OrderLine.objects.get(pk=line.pk)
    changed = {name: value for name, value in changes.items() if getattr(current, name) != value}
    if not changed:
        return None
    OrderLine.objects.filter(pk=line.pk).update(**changed)
    line.refresh_from_db()
    names = ", ".join(_field_name(OrderLine, name) for name in changed)
    return record_event(
        order,
        kind="line_changed",
        label=f"Ligne {line.reference} modifiée : {names}",
        actor=actor,
        data={"line": line.reference},
    )


@transaction.atomic
def remove_line(line: OrderLine, *, actor: User | None) -> OrderEvent:
    order = lock_for(line.order, Action.EDIT)
    reference, label = line.reference, line.label
    # Guarded: a line ticked meanwhile is not removed.
    deleted, _ = OrderLine.objects.filter(pk=line.pk, done=False).delete()
    if not deleted:
        raise ServiceError(f"La ligne {line.reference} est réalisée : elle ne peut plus être retirée.")
    return record_event(
        order,
        kind="line_removed",
        label=f"Ligne retirée : {reference} – {label}",
        actor=actor,
        # Its id too: a technician's tick on it, sent from a phone later, is told what became of it.
        data={"line": reference, "line_id": line.pk, "label": label},
    )
