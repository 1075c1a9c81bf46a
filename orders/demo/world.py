"""What the demo's orders happen in, made from the tables of `orders.demo.data`
and `orders.demo.contracts`: the contractor, its people, the clients with their
billing accounts and property, the contracts with their service codes and price
schedules; and, once the orders are told, the first client's platform
connection with the changes it received late."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from http import HTTPStatus

from django.utils import timezone

from orders import admission, buyer, sharing
from orders.demo import contracts, data
from orders.models import AdmissionKind, AdmissionStep, Order, OrderEvent
from orders.states import State
from portal.models import (
    Asset,
    AssetKind,
    BillingAccount,
    Client,
    Company,
    Contract,
    PriceItem,
    Role,
    ServiceCode,
    User,
)
from portal.relay.delivery import record_breach_if_late
from portal.relay.models import (
    Breach,
    Connection,
    ConnectionKind,
    DeliveryAttempt,
    MessageKind,
    MessageStatus,
    OutboxMessage,
)
from portal.roles import sync_office_group


@dataclass
class World:
    """What the stories need, found by the tables' keys."""

    company: Company
    users: dict[str, User]  # by username
    contracts: dict[str, Contract]  # by reference
    service_codes: dict[tuple[str, str], ServiceCode]  # by contract reference, code
    price_items: dict[tuple[str, str], PriceItem]  # by contract reference, code
    assets: dict[str, Asset]  # by reference


def create_world() -> World:
    company = Company(**data.COMPANY)
    company.full_clean()
    company.save()
    world = World(company=company, users=_create_users(), contracts={}, service_codes={}, price_items={}, assets={})
    accounts = {}
    for key, fields in data.CLIENTS.items():
        fields = dict(fields)
        billing = fields.pop("billing")
        client = Client(**fields)
        client.full_clean()
        client.save()
        account = BillingAccount(client=client, **billing)
        account.full_clean()
        account.save()
        accounts[key] = account
        world.assets.update(_create_assets(key, client))
    for table in contracts.CONTRACTS:
        _create_contract(world, table, accounts[table["client"]])
    return world


def _create_users() -> dict[str, User]:
    office_group = sync_office_group()
    users = {}
    for username, role, first_name, last_name, mobile in data.USERS:
        user = User(
            username=username,
            role=role,
            first_name=first_name,
            last_name=last_name,
            mobile=mobile,
            email=f"{first_name[0].lower()}.{last_name.lower()}@multitech-lorraine.fr",
            is_staff=role == Role.OFFICE,
        )
        user.set_password(data.PASSWORD)
        user.full_clean()
        user.save()
        if role == Role.OFFICE:
            user.groups.add(office_group)
        users[username] = user
    return users


def _create_contract(world: World, table: dict, account: BillingAccount) -> None:
    contract = Contract.objects.create(
        client=account.client,
        billing_account=account,
        **{name: table[name] for name in ("reference", "label", "starts_on", "ends_on", "default_delay_days")},
        **table.get("penalty_terms", {}),
    )
    world.contracts[contract.reference] = contract
    for code, label, intervention, completion in table["service_codes"]:
        world.service_codes[contract.reference, code] = ServiceCode.objects.create(
            contract=contract,
            code=code,
            label=label,
            intervention_delay_hours=intervention,
            completion_delay_hours=completion,
        )
    for code, label, unit, unit_price, vat_rate in table["price_items"]:
        world.price_items[contract.reference, code] = PriceItem.objects.create(
            contract=contract,
            code=code,
            label=label,
            unit=unit,
            unit_price=Decimal(unit_price),
            vat_rate=Decimal(vat_rate),
        )


def _create_assets(key: str, client: Client) -> dict[str, Asset]:
    assets: dict[str, Asset] = {}

    def add(reference: str, label: str, kind: str, parent: Asset | None, **address: str) -> Asset:
        assets[reference] = Asset.objects.create(
            client=client, reference=reference, label=label, kind=kind, parent=parent, **address
        )
        return assets[reference]

    for site_ref, site_label, street, postcode, city, buildings in data.SITES[key]:
        site = add(site_ref, site_label, AssetKind.SITE, None, address=street, postcode=postcode, city=city)
        for building_ref, letter, address, dwellings in buildings:
            building = add(
                building_ref,
                f"{site_label}, bâtiment {letter}",
                AssetKind.BUILDING,
                site,
                address=address,
                address_complement=f"Bâtiment {letter}",
                postcode=postcode,
                city=city,
            )
            for reference, number, floor, kind in dwellings:
                level = "rez-de-chaussée" if floor == 0 else "1er étage" if floor == 1 else f"{floor}e étage"
                add(
                    reference,
                    f"Logement {kind} n° {number}, bâtiment {letter}",
                    AssetKind.DWELLING,
                    building,
                    address=address,
                    address_complement=f"Bâtiment {letter}, {level}, porte {number}",
                    postcode=postcode,
                    city=city,
                )
    for reference, label, parent in data.EQUIPMENT.get(key, []):
        parent_asset = assets[parent]
        add(
            reference,
            label,
            AssetKind.EQUIPMENT,
            parent_asset,
            address=parent_asset.address,
            address_complement="Sous-sol",
            postcode=parent_asset.postcode,
            city=parent_asset.city,
        )
    return assets


# --- The platform's bad day -------------------------------------------------


def record_late_deliveries(now: datetime) -> list[Breach]:
    """The first client (the one `sandbox_connect_demo` links to the sandbox)
    gets its platform connection here, disabled until that command sets it up,
    with the record of its orders' latest changes that reached the platform
    late (`data.LATE_DELIVERIES`): this month's changes when the month has any,
    so that the overview shows them among this month's breaches."""
    client = Client.objects.filter(contracts__isnull=False).order_by("pk").first()
    connection = Connection.objects.create(client=client, kind=ConnectionKind.INTENT, enabled=False)
    month_start = timezone.localtime(now).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    latest: dict[int, OrderEvent] = {}
    for event in OrderEvent.objects.filter(order__contract__client=client).select_related("order").order_by("at"):
        latest[event.order_id] = event  # a message is the order's last one: its log shows the order as it is
    candidates = sorted(
        (event for event in latest.values() if event.actor_id is not None),
        key=lambda event: (event.at >= month_start, event.at),
        reverse=True,
    )
    breaches = []
    for delay, failures in data.LATE_DELIVERIES:
        event = next((e for e in candidates if e.recorded_at + delay <= now - timedelta(minutes=5)), None)
        if event is None:
            break
        candidates.remove(event)
        breaches.append(_late_delivery(connection, event, delay, failures))
    return breaches


def _late_delivery(connection: Connection, event: OrderEvent, delay: timedelta, failures: tuple[int, ...]) -> Breach:
    """A message delivered `delay` after the change, after failed attempts
    spread over that time; the breach is recorded as the relay records it."""
    changed_at, delivered_at = event.recorded_at, event.recorded_at + delay
    message = OutboxMessage.objects.create(
        connection=connection,
        order=event.order,
        event=event,
        sequence=1,
        kind=MessageKind.INTERVENTION_LOG,
        payload=sharing.build_log(event.order, event, logged_at=changed_at),
        status=MessageStatus.DELIVERED,
        created_at=changed_at,
        next_attempt_at=delivered_at,
        queued_at=changed_at,
        attempts=len(failures) + 1,
        delivered_at=delivered_at,
        last_status_code=204,
    )
    spacing = delay / (len(failures) + 1)
    for index, status in enumerate(failures):
        DeliveryAttempt.objects.create(
            message=message,
            started_at=changed_at + spacing * index + timedelta(seconds=2),
            duration_ms=30_000 if status == 504 else 120,
            outcome=DeliveryAttempt.Outcome.RETRY,
            status_code=status,
            error=f"HTTP {status} : {HTTPStatus(status).phrase}",
            worker="demo",
        )
    DeliveryAttempt.objects.create(
        message=message,
        started_at=delivered_at - timedelta(milliseconds=240),
        duration_ms=240,
        outcome=DeliveryAttempt.Outcome.DELIVERED,
        status_code=204,
        worker="demo",
    )
    record_breach_if_late(message, delivered_at=delivered_at)
    # The relay stamps `recorded_at` with the clock: in the story it was noted on delivery.
    breaches = Breach.objects.filter(message=message)
    breaches.update(recorded_at=delivered_at)
    return breaches.get()


def record_admissions(now: datetime) -> list[AdmissionStep]:
    """The buyer's decisions on the works finished lately, as the office records
    them (CCAG-MI §34): the latest one adjourned the day after it ended, the one
    before admitted; one finished longer ago than its 7 days of verification
    stays without a decision, and is admitted tacitly (the overview says so)."""
    office = User.objects.get(username=data.OFFICE)
    today = timezone.localdate(now)
    recent = [
        order
        for order in Order.objects.filter(state=State.FINISHED, actual_end__isnull=False).order_by("-actual_end")
        if buyer.status_of(order, today).status == admission.Status.VERIFYING
    ]
    steps = []
    for order, kind in zip(recent, (AdmissionKind.ADJOURNED, AdmissionKind.ADMITTED), strict=False):
        on = min(timezone.localdate(order.actual_end) + timedelta(days=1), today)
        note = "Joints à reprendre avant admission" if kind == AdmissionKind.ADJOURNED else ""
        steps.append(buyer.record_admission_step(order, actor=office, kind=kind, on=on, note=note, at=now))
    return steps
