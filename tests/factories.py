"""Data builders shared by the tests and the benchmarks: people, clients,
contracts, service codes, price items, assets, platform connections, the
contractor's company, orders with their lines, intervention reports and their
PDFs.

`make_*` save one object and return it; `build_*` return it unsaved, for
`bulk_create`. Every value has a default from the tests' shared cast (a social
landlord of Metz, its multi-trade maintenance contract, a flat on rue des
Tilleuls, a leak under a sink) and can be overridden by keyword.

Orders come two ways: `register_order` and `bring_to` go through the
services, as the portal makes orders (events, outbox messages, deadlines);
`build_order` and `an_order` write them directly, for pages that only read
them, in whatever state a test or a benchmark needs.

The tests import this module (tests/conftest.py builds its fixtures with it);
the benchmarks import it once Django is set up (`from tests import factories`:
they run from the top folder, where `tests` is a package). Models come from
their apps' public `models` modules; the services are imported when called, by
module (`from orders import services`), so that a move of theirs is one import
here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.core.files.base import ContentFile
from django.utils import timezone

from orders.models import Document, DocumentKind, InterventionReport, Order, OrderLine, PdfStatus, SignatureStatus
from orders.states import State
from portal.models import Asset, Client, Company, Contract, PriceItem, Role, ServiceCode, User
from portal.relay.models import Connection

PARIS = ZoneInfo("Europe/Paris")
PASSWORD = "mot-de-passe-de-test-42"

# The lines of the shared cast's order, as `register_order` takes them.
ORDER_LINES: tuple[Mapping[str, Any], ...] = (
    {"reference": "L1", "label": "Recherche de fuite", "quantity": Decimal(1), "unit_price": Decimal("65.00")},
    {"reference": "L2", "label": "Remplacement du siphon", "quantity": Decimal(1), "unit_price": Decimal("48.50")},
)


# --- People ------------------------------------------------------------------------


def make_user(username: str, role: Role, *, password: str | None = PASSWORD, **fields: Any) -> User:
    """A user with `role`; `password=None` gives an unusable one (no hashing:
    the benchmarks sign people in by writing their sessions)."""
    fields.setdefault("email", f"{username}@example.fr")
    return User.objects.create_user(username=username, password=password, role=role, **fields)


# --- The client's side ---------------------------------------------------------------


def make_client(**fields: Any) -> Client:
    values = {"name": "Office Public de l'Habitat de Metz", "city": "Metz", "postcode": "57000", **fields}
    return Client.objects.create(**values)


def make_contract(client: Client, **fields: Any) -> Contract:
    values = {
        "reference": "MULTITECH-2024-07",
        "label": "Maintenance multitechnique",
        "starts_on": date(2024, 7, 1),
        "default_delay_days": 15,
        **fields,
    }
    return Contract.objects.create(client=client, **values)


def make_service_code(contract: Contract, **fields: Any) -> ServiceCode:
    values = {
        "code": "PLB-FUITE",
        "label": "Recherche et réparation de fuite",
        "intervention_delay_hours": 24,
        "completion_delay_hours": 72,
        **fields,
    }
    return ServiceCode.objects.create(contract=contract, **values)


def make_price_item(contract: Contract, **fields: Any) -> PriceItem:
    values = {
        "code": "PLB-012",
        "label": "Remplacement de siphon d'évier",
        "unit": "u",
        "unit_price": Decimal("48.50"),
        "vat_rate": Decimal("10.00"),
        **fields,
    }
    return PriceItem.objects.create(contract=contract, **values)


def build_asset(client: Client, **fields: Any) -> Asset:
    values = {
        "reference": "LGT-0412",
        "label": "Logement 12, bâtiment B",
        "address": "14 rue des Tilleuls",
        "postcode": "57000",
        "city": "Metz",
        **fields,
    }
    return Asset(client=client, **values)


def make_asset(client: Client, **fields: Any) -> Asset:
    asset = build_asset(client, **fields)
    asset.save()
    return asset


def make_connection(client: Client, *, secret: str | None = "s3cret", **fields: Any) -> Connection:
    """The client's platform connection: by default an Intent one at an address
    where nothing answers (the changes wait in the outbox). `secret` is the
    OAuth client secret, stored encrypted; None leaves it empty."""
    values = {
        "kind": "intent",
        "auth_base_url": "http://127.0.0.1:9/sandbox",
        "api_base_url": "http://127.0.0.1:9/sandbox/api",
        "oauth_client_id": "portail",
        **fields,
    }
    connection = Connection(client=client, **values)
    if secret is not None:
        connection.client_secret = secret
    connection.save()
    return connection


# --- The contractor ------------------------------------------------------------------


def make_company(*, logo: bytes | None = None, **fields: Any) -> Company:
    """The contractor's company, as its documents show it; `logo`: PNG bytes."""
    values = {"name": "Multitech Lorraine SARL", "siret": "83214765600017", "city": "Metz", "postcode": "57070"}
    company = Company(**{**values, **fields})
    if logo is not None:
        company.logo.save("logo.png", ContentFile(logo), save=False)
    company.save()
    return company


# --- Orders through the services -------------------------------------------------------


def register_order(contract: Contract, **fields: Any) -> Order:
    """The shared cast's order as the platform sends it (a leak, two lines,
    notified on Friday 20 November 2026 at 9:30), through the services."""
    from orders import receiving

    values = {
        "reference": "OPH57_241122093015",
        "actor": None,
        "notified_at": datetime(2026, 11, 20, 9, 30, tzinfo=PARIS),
        "description": "Fuite sous l'évier de la cuisine",
        "occupant_name": "Mme Claire Martin",
        "occupant_mobile": "06 12 34 56 78",
        "lines": [dict(line) for line in ORDER_LINES],
        **fields,
    }
    return receiving.register_order(contract=contract, **values)


def bring_to(
    order: Order,
    state: State,
    actor: User,
    *,
    at: datetime | None = None,
    appointment: datetime | None = None,
    reason: str = "occupant_absent",
) -> Order:
    """Walks `order` through the services up to `state` (acknowledged, planned
    with an `appointment`, in progress, suspended for `reason`, finished), each
    step by `actor` at `at` (now when None). The appointment defaults to three
    hours after `at`. Returns the order read again."""
    from orders import planning, services

    when = at or timezone.now()
    appointment = appointment or when + timedelta(hours=3)
    acknowledge = [lambda: services.acknowledge_order(order, actor=actor, at=at)]
    plan = [*acknowledge, lambda: planning.plan_order(order, actor=actor, appointment=appointment, at=at)]
    start = [*plan, lambda: services.start_work(order, actor=actor, at=at)]
    routes = {
        State.TO_ACKNOWLEDGE: [],
        State.ACKNOWLEDGED: acknowledge,
        State.PLANNED: plan,
        State.IN_PROGRESS: start,
        State.SUSPENDED: [*start, lambda: services.suspend_work(order, actor=actor, reason=reason, at=at)],
        State.FINISHED: [*start, lambda: services.finish_work(order, actor=actor, at=at)],
    }
    for step in routes[state]:
        step()
    order.refresh_from_db()
    return order


# --- Orders written directly -----------------------------------------------------------


def build_order(contract: Contract, reference: str, *, now: datetime | None = None, **fields: Any) -> Order:
    """An unsaved order received three days before `now` (the current time when
    None) and due five days after it; `fields` set the rest (state, people,
    dates)."""
    now = now or timezone.now()
    values = {
        "received_at": now - timedelta(days=3),
        "notified_at": now - timedelta(days=3),
        "due_at": now + timedelta(days=5),
        **fields,
    }
    return Order(contract=contract, reference=reference, **values)


def build_line(order: Order, position: int = 1, **fields: Any) -> OrderLine:
    values = {
        "reference": f"L{position}",
        "label": "Prestation",
        "quantity": Decimal(1),
        "unit_price": Decimal("48.50"),
        **fields,
    }
    return OrderLine(order=order, position=position, **values)


def an_order(
    contract: Contract, reference: str, *, lines: Iterable[tuple[object, object]] = (), **fields: Any
) -> Order:
    """`build_order` saved, with `lines` as (quantity, unit price) pairs."""
    order = build_order(contract, reference, **fields)
    order.save()
    for position, (quantity, unit_price) in enumerate(lines, start=1):
        build_line(order, position, quantity=Decimal(quantity), unit_price=Decimal(unit_price)).save()
    return order


# --- Intervention reports --------------------------------------------------------------


def build_report(order: Order, **fields: Any) -> InterventionReport:
    """An unsaved intervention report, unsigned, with no PDF yet."""
    values = {
        "works_done": "Siphon remplacé",
        "time_on_site_minutes": 45,
        "signature_status": SignatureStatus.ABSENT,
        **fields,
    }
    return InterventionReport(order=order, **values)


def build_report_pdf(order: Order, *, by: User | None, at: datetime, size: int = 400_000, **fields: Any) -> Document:
    """An unsaved document as the render task attaches a report's PDF, with no
    file behind it (for pages that list documents)."""
    values = {
        "kind": DocumentKind.GENERATED_REPORT,
        "title": f"Rapport d'intervention {order.reference}",
        "file": f"documents/generated/{order.reference}.pdf",
        "file_name": f"rapport-{order.reference}.pdf",
        "size": size,
        "sha256": "0" * 64,
        "created_by": by,
        "created_at": at,
        **fields,
    }
    return Document(order=order, **values)


def build_rendered_report(document: Document, **fields: Any) -> InterventionReport:
    """An unsaved report whose PDF is `document` (saved), made by the same
    person at the same time."""
    values = {
        "pdf_status": PdfStatus.DONE,
        "document": document,
        "created_by": document.created_by,
        "created_at": document.created_at,
        **fields,
    }
    return build_report(document.order, **values)
