"""The shared cast: two technicians, a supervisor and office staff (the
second technician and the signed-out visitor are the outsiders of each test),
plus a client with a contract, an asset, a service code and a price schedule."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from orders import services
from portal.models import Asset, Client, Contract, PriceItem, Role, ServiceCode, User

PARIS = ZoneInfo("Europe/Paris")
SANDBOX_CLIENT_ID = "multiservices-metz"
SANDBOX_CLIENT_SECRET = "secret-du-bac-a-sable-42"
PASSWORD = "mot-de-passe-de-test-42"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # The production hasher is slow on purpose; tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session", autouse=True)
def no_stray_connections_at_the_end(django_db_setup, django_db_blocker):
    """On PostgreSQL, the test database is dropped at the end, which fails while
    another session uses it. The browser tests leave one behind, opened while
    Playwright's sync API ran its event loop (Django keeps connections per
    context), which the teardown's context never closes. Ended here, before the
    drop (this fixture depends on the database's, so it is torn down first)."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    connection.close()


@pytest.fixture
def database_before_the_live_server(django_db_setup) -> None:
    """For files that use the live server: the test database exists before the
    session's live server starts, so that on SQLite the server thread shares the
    in-memory connection instead of opening its own and never closing it."""


@pytest.fixture
def platform(live_server, database_before_the_live_server) -> str:
    """The embedded sandbox over real HTTP, reset, with our API client: its base URL (the auth base)."""
    import io

    import httpx
    from django.core.management import call_command

    call_command(
        "sandbox_setup",
        f"--client-id={SANDBOX_CLIENT_ID}",
        f"--client-secret={SANDBOX_CLIENT_SECRET}",
        "--label=Multiservices Metz",
        stdout=io.StringIO(),
    )
    response = httpx.post(f"{live_server.url}/sandbox/reset.json")
    assert response.status_code == 200
    return f"{live_server.url}/sandbox"


def make_user(username: str, role: Role, **extra) -> User:
    return User.objects.create_user(
        username=username,
        password=PASSWORD,
        role=role,
        email=f"{username}@example.fr",
        **extra,
    )


@pytest.fixture
def technician(db) -> User:
    return make_user("karim", Role.TECHNICIAN, first_name="Karim", last_name="Haddad", mobile="06 98 76 54 32")


@pytest.fixture
def other_technician(db) -> User:
    return make_user("lucie", Role.TECHNICIAN, first_name="Lucie", last_name="Moreau", mobile="06 11 22 33 44")


@pytest.fixture
def supervisor(db) -> User:
    return make_user("sophie", Role.SUPERVISOR, first_name="Sophie", last_name="Lambert", mobile="06 55 44 33 22")


@pytest.fixture
def office(db) -> User:
    from portal.roles import sync_office_group

    user = make_user("nadia", Role.OFFICE, first_name="Nadia", last_name="Petit", is_staff=True)
    user.groups.add(sync_office_group())
    return user


@pytest.fixture
def client_org(db) -> Client:
    return Client.objects.create(name="Office Public de l'Habitat de Metz", city="Metz", postcode="57000")


@pytest.fixture
def contract(client_org) -> Contract:
    return Contract.objects.create(
        client=client_org,
        reference="MULTITECH-2024-07",
        label="Maintenance multitechnique",
        starts_on=date(2024, 7, 1),
        default_delay_days=15,
    )


@pytest.fixture
def service_code(contract) -> ServiceCode:
    return ServiceCode.objects.create(
        contract=contract,
        code="PLB-FUITE",
        label="Recherche et réparation de fuite",
        intervention_delay_hours=24,
        completion_delay_hours=72,
    )


@pytest.fixture
def price_item(contract) -> PriceItem:
    return PriceItem.objects.create(
        contract=contract,
        code="PLB-012",
        label="Remplacement de siphon d'évier",
        unit="u",
        unit_price=Decimal("48.50"),
        vat_rate=Decimal("10.00"),
    )


@pytest.fixture
def asset(client_org) -> Asset:
    return Asset.objects.create(
        client=client_org,
        reference="LGT-0412",
        label="Logement 12, bâtiment B",
        address="14 rue des Tilleuls",
        postcode="57000",
        city="Metz",
    )


@pytest.fixture
def order(contract, asset, service_code, technician):
    return services.register_order(
        contract=contract,
        reference="OPH57_241122093015",
        actor=None,
        notified_at=datetime(2026, 11, 20, 9, 30, tzinfo=PARIS),
        asset=asset,
        service_code=service_code,
        description="Fuite sous l'évier de la cuisine",
        occupant_name="Mme Claire Martin",
        occupant_mobile="06 12 34 56 78",
        lines=[
            {"reference": "L1", "label": "Recherche de fuite", "quantity": Decimal(1), "unit_price": Decimal("65.00")},
            {
                "reference": "L2",
                "label": "Remplacement du siphon",
                "quantity": Decimal(1),
                "unit_price": Decimal("48.50"),
            },
        ],
        technician=technician,
    )


@pytest.fixture
def outbox_connection(client_org):
    """The client's platform connection, at an address where nothing answers:
    the orders' changes go to the outbox, and no test here delivers them."""
    from portal.relay.models import Connection

    connection = Connection(
        client=client_org,
        kind="intent",
        auth_base_url="http://127.0.0.1:9/sandbox",
        api_base_url="http://127.0.0.1:9/sandbox/api",
        oauth_client_id="portail",
        timeout_seconds=1,
    )
    connection.client_secret = "s3cret"
    connection.save()
    return connection


@pytest.fixture
def sandbox_connection(platform, client_org):
    """The client's platform connection to the sandbox over live HTTP."""
    from portal.relay import intent
    from portal.relay.models import Connection

    connection = Connection(
        client=client_org,
        kind="intent",
        auth_base_url=platform,
        api_base_url=f"{platform}/api",
        oauth_client_id=SANDBOX_CLIENT_ID,
        timeout_seconds=5,
    )
    connection.client_secret = SANDBOX_CLIENT_SECRET
    connection.save()
    yield connection
    # The delivery keeps one HTTP client per connection; let it go with the test.
    intent.client_for(Connection.objects.get(pk=connection.pk)).close()


def pytest_collection_modifyitems(config, items):
    """Tests marked `postgres` need PostgreSQL: skipped on SQLite, except where
    REQUIRE_POSTGRES is set (CI), where running them elsewhere is an error."""
    import os

    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        return
    if os.environ.get("REQUIRE_POSTGRES"):
        raise pytest.UsageError("REQUIRE_POSTGRES is set but DATABASE_URL does not point at PostgreSQL.")
    skip = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)
