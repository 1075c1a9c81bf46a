"""The shared cast: two technicians, a supervisor and office staff (the
second technician and the signed-out visitor are the outsiders of each test),
plus a client with a contract, an asset, a service code and a price schedule.
The objects are made by tests/factories.py, which the benchmarks use too."""

from __future__ import annotations

import pytest

from portal.models import Asset, Client, Contract, PriceItem, Role, ServiceCode, User
from tests import factories

# Test files import these from here.
from tests.factories import PARIS, PASSWORD, make_user  # noqa: F401

SANDBOX_CLIENT_ID = "multiservices-metz"
SANDBOX_CLIENT_SECRET = "secret-du-bac-a-sable-42"


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
    return factories.make_client()


@pytest.fixture
def contract(client_org) -> Contract:
    return factories.make_contract(client_org)


@pytest.fixture
def service_code(contract) -> ServiceCode:
    return factories.make_service_code(contract)


@pytest.fixture
def price_item(contract) -> PriceItem:
    return factories.make_price_item(contract)


@pytest.fixture
def asset(client_org) -> Asset:
    return factories.make_asset(client_org)


@pytest.fixture
def order(contract, asset, service_code, technician):
    return factories.register_order(contract, asset=asset, service_code=service_code, technician=technician)


@pytest.fixture
def outbox_connection(client_org):
    """The client's platform connection, at an address where nothing answers:
    the orders' changes go to the outbox, and no test here delivers them."""
    return factories.make_connection(client_org, timeout_seconds=1)


@pytest.fixture
def sandbox_connection(platform, client_org):
    """The client's platform connection to the sandbox over live HTTP."""
    from portal.relay import intent
    from portal.relay.models import Connection

    connection = factories.make_connection(
        client_org,
        secret=SANDBOX_CLIENT_SECRET,
        auth_base_url=platform,
        api_base_url=f"{platform}/api",
        oauth_client_id=SANDBOX_CLIENT_ID,
        timeout_seconds=5,
    )
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
    for item in items:
        marker = item.get_closest_marker("postgres")
        if marker is not None:
            why = marker.kwargs.get("reason")
            reason = "needs PostgreSQL (set DATABASE_URL)" + (f": {why}" if why else "")
            item.add_marker(pytest.mark.skip(reason=reason))


def pytest_terminal_summary(terminalreporter):
    """Say whether the Nexxio tests ran against Google's Pub/Sub emulator (.ci/run shows it)."""
    ran, skipped = 0, set()
    for status in ("passed", "failed", "error", "skipped"):
        for report in terminalreporter.stats.get(status, []):
            if "test_nexxio" not in getattr(report, "nodeid", "") or report.when not in ("call", "setup"):
                continue
            if status == "skipped":
                skipped.add(str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else str(report.longrepr))
            elif report.when == "call":
                ran += 1
    if ran or skipped:
        verdict = f"{ran} ran" + (f"; skipped: {' / '.join(sorted(skipped))}" if skipped else "")
        terminalreporter.write_line(f"Nexxio tests against Google's Pub/Sub emulator: {verdict}")
