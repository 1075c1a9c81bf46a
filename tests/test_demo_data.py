"""`seed_demo`: a believable contractor, created once, whose logins work."""

from __future__ import annotations

import io
import re
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.core.management import call_command
from django.db import models, transaction
from django.test import override_settings
from django.utils import timezone

import orders
from orders.models import Order, OrderEvent
from orders.states import OPEN_STATES, State
from portal.models import Client, Company, Contract, User
from portal.relay.models import Breach

pytestmark = pytest.mark.django_db

LOGIN_LINE = re.compile(r"^(?P<label>[^:\n]+) : (?P<username>\S+) / (?P<password>\S+)$", re.MULTILINE)
HOMES = {
    "Technicien": "/mes-commandes/",
    "Conducteur de travaux": "/pilotage/",
    "Bureau (administration)": "/admin/",
}


def seed(*args: str) -> str:
    out = io.StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


@pytest.fixture(scope="module")
def seeded(django_db_setup, django_db_blocker):
    """Seed once for the module, in a transaction rolled back at its end; each
    test runs in a savepoint inside it. The clock stops meanwhile, so that the
    tests' "today" is the seed's, even when midnight passes between them."""
    with (
        time_machine.travel(timezone.now(), tick=False),
        override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]),
        django_db_blocker.unblock(),
        transaction.atomic(),
    ):
        yield seed()
        transaction.set_rollback(True)


@pytest.fixture
def output(seeded, db) -> str:
    return seeded


def test_the_command_creates_the_company_with_a_valid_siret(output):
    company = Company.objects.get()
    company.full_clean()
    assert company.city == "Metz"
    assert company.vat_number.startswith("FR")


def test_the_command_creates_two_clients_with_a_billing_account_each(output):
    assert Client.objects.count() == 2
    assert all(client.billing_accounts.exists() for client in Client.objects.all())


def test_the_command_creates_three_contracts_with_price_schedules_and_service_codes(output):
    contracts = Contract.objects.all()
    assert contracts.count() == 3
    for contract in contracts:
        assert 8 <= contract.price_items.count() <= 12
        assert 4 <= contract.service_codes.count() <= 6
        assert contract.billing_account is not None


def test_the_command_creates_each_clients_property_as_a_hierarchy(output):
    for client in Client.objects.all():
        assets = client.assets.all()
        assert assets.count() >= 14
        assert assets.filter(kind="dwelling", parent__kind="building", parent__parent__kind="site").exists()


def test_forty_orders_cover_every_state_at_least_twice(output):
    counts = Counter(Order.objects.values_list("state", flat=True))
    assert sum(counts.values()) == 40
    assert {state: counts[state] for state in State if counts[state] < 2} == {}


def test_every_order_has_lines_from_its_contracts_price_schedule(output):
    for order in Order.objects.prefetch_related("lines__price_item"):
        lines = list(order.lines.all())
        assert 1 <= len(lines) <= 4, order
        assert all(line.price_item.contract_id == order.contract_id for line in lines), order


def test_every_order_has_a_pilot_and_a_technician(output):
    assert not Order.objects.filter(pilot=None).exists()
    assert not Order.objects.filter(technician=None).exists()
    assert Order.objects.filter(technician__username="technicien").count() > 20


def test_every_history_starts_with_the_receipt_and_runs_in_chronological_order(output):
    for order in Order.objects.all():
        events = list(OrderEvent.objects.filter(order=order).order_by("pk"))
        assert events[0].label.startswith("Commande reçue"), order
        assert events[0].at == order.received_at, order
        times = [event.at for event in events]
        assert times == sorted(times), order
        assert times[-1] <= timezone.now(), order


def test_every_row_is_dated_when_it_happened_in_the_story_not_when_the_demo_was_made(output):
    for order in Order.objects.all():
        assert order.created_at == order.received_at, order
        assert order.received_at <= order.updated_at <= timezone.now() - timedelta(minutes=5), order
    assert not OrderEvent.objects.exclude(recorded_at=models.F("at")).exists()


def test_the_first_clients_platform_received_two_changes_late(output):
    breaches = list(Breach.objects.select_related("message__event", "connection"))
    assert len(breaches) == 2
    for breach in breaches:
        assert breach.delay_seconds > 15 * 60
        assert breach.changed_at == breach.message.event.recorded_at == breach.message.created_at
        assert breach.recorded_at == breach.delivered_at <= timezone.now()
        assert not breach.connection.enabled


def test_the_demo_does_not_patch_the_clock():
    """The stories are dated with the services' `at=`, not by mocking `timezone.now`."""
    sources = Path(orders.__file__).parent.rglob("*.py")
    mocks = re.compile(r"^\s*(?:from|import)\s+(?:unittest|mock)\b", re.MULTILINE)
    assert [str(path) for path in sources if mocks.search(path.read_text())] == []


def test_the_last_state_change_of_every_history_is_the_orders_state(output):
    for order in Order.objects.all():
        last = OrderEvent.objects.filter(order=order).exclude(state_after="").order_by("at", "pk").last()
        assert last.state_after == order.state, order


def test_invoice_numbers_follow_one_another_in_the_order_the_invoices_were_issued(output):
    events = OrderEvent.objects.filter(kind="invoice").order_by("at", "pk")
    numbers = [int(event.data["invoice_number"].rsplit("-", 1)[1]) for event in events]
    assert len(numbers) >= 6
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))


def test_the_demo_technician_has_an_appointment_today_and_tomorrow(output):
    today = timezone.localdate()
    mine = Order.objects.filter(technician__username="technicien", state=State.PLANNED)
    assert mine.filter(appointment_at__date=today).exists()
    assert mine.filter(appointment_at__date=today + timezone.timedelta(days=1)).exists()


def test_some_appointments_are_in_the_coming_days(output):
    tomorrow = timezone.localdate() + timezone.timedelta(days=1)
    assert Order.objects.filter(appointment_at__date__gt=tomorrow, state=State.PLANNED).exists()


def test_some_open_orders_are_late(output):
    late = Order.objects.filter(state__in=OPEN_STATES, due_at__lt=timezone.now())
    assert late.count() >= 2
    assert late.count() < Order.objects.filter(state__in=OPEN_STATES).count()


def test_running_it_twice_creates_nothing_more(output):
    counts = (Order.objects.count(), OrderEvent.objects.count(), User.objects.count(), Client.objects.count())
    again = seed()
    assert "Données de démonstration déjà présentes" in again
    assert (Order.objects.count(), OrderEvent.objects.count(), User.objects.count(), Client.objects.count()) == counts


def test_it_prints_the_three_logins(output):
    assert "Portail : http://127.0.0.1:8000/connexion/" in output
    assert "Technicien : technicien / demo1234" in output
    assert "Conducteur de travaux : conducteur / demo1234" in output
    assert "Bureau (administration) : bureau / demo1234" in output


def test_print_logins_only_prints_the_logins(db):
    counts = (User.objects.count(), Client.objects.count(), Order.objects.count())
    output = seed("--print-logins")
    assert "Technicien : technicien / demo1234" in output
    assert "Données de démonstration" not in output
    assert (User.objects.count(), Client.objects.count(), Order.objects.count()) == counts


@pytest.mark.parametrize("label", HOMES)
def test_each_printed_login_signs_in_and_lands_on_its_roles_home(output, client, label):
    logins = {match["label"]: match for match in LOGIN_LINE.finditer(output)}
    login = logins[label]
    response = client.post("/connexion/", {"username": login["username"], "password": login["password"]})
    assert response.status_code == 302
    home = client.get("/")
    assert home.status_code == 302
    assert home.url == HOMES[label]
    assert client.get(home.url).status_code == 200
