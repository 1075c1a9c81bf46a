"""The outbox: every change to an order is recorded, in the same transaction, in order."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.db import transaction
from django.utils import timezone

from orders import planning, receiving, services
from orders.models import Order
from portal.relay import claims, delivery, watch
from portal.relay.models import Breach, Connection, MessageStatus, OutboxMessage, ServiceLevelWarning
from tests.conftest import PARIS


@pytest.fixture
def connection(outbox_connection) -> Connection:
    return outbox_connection


def messages_of(order: Order) -> list[OutboxMessage]:
    return list(order.outbox_messages.order_by("sequence"))


def test_without_a_connection_nothing_is_recorded(order, technician):
    services.acknowledge_order(order, actor=technician)
    assert not OutboxMessage.objects.exists()


def test_every_change_is_recorded_with_the_next_sequence_number(connection, order, technician, supervisor):
    moment = timezone.now().replace(microsecond=0)
    services.acknowledge_order(order, actor=technician, at=moment)
    services.assign_order(order, actor=supervisor, pilot=supervisor, at=moment)
    planning.plan_order(order, actor=technician, appointment=moment + timedelta(days=1), at=moment)
    services.set_progress(order, actor=technician, progress=20, at=moment)
    recorded = messages_of(order)
    # register_order's own events (received, lines, technician) are not sent: before the
    # acknowledgement the order is the manager's open/requested, never sent by the contractor.
    assert [m.sequence for m in recorded] == list(range(1, len(recorded) + 1))
    assert [(m.payload["status"], m.payload["event"], m.payload["description"]) for m in recorded] == [
        # the pilot, in the same second, is merged into the acknowledgement still waiting
        ("open", "acknowledged", "Commande prise en compte ; Pilote : Sophie Lambert"),
        ("open", "planned", recorded[-2].event.label),
        ("open", "planned", "Avancement : 20 %"),
    ]
    assert recorded[-1].payload["tags"]["progress_percent"] == "20"
    assert "ROLE:Pilote" in recorded[0].payload["contacts"][0]
    assert "ROLE:Pilote" in recorded[-1].payload["contacts"][0]
    assert all(m.status == MessageStatus.PENDING for m in recorded)


def test_the_message_and_the_change_commit_or_roll_back_together(connection, order, technician):
    before = OutboxMessage.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        services.acknowledge_order(order, actor=technician)
        raise RuntimeError("the request failed after the service")
    order.refresh_from_db()
    assert order.state == "to_acknowledge"
    assert OutboxMessage.objects.count() == before


def test_what_came_from_the_platform_is_not_echoed_back(connection, contract, technician):
    order = receiving.register_order(
        contract=contract,
        reference="PF-1",
        actor=None,
        origin="platform",
        lines=[{"reference": "L1", "label": "Recherche de fuite"}],
    )
    assert not order.outbox_messages.exists()
    services.acknowledge_order(order, actor=technician)
    assert [m.payload["event"] for m in messages_of(order)] == ["acknowledged"]


def test_a_delivery_is_queued_only_after_commit(connection, order, technician, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        services.acknowledge_order(order, actor=technician)
    assert len(callbacks) == 1


def test_a_disabled_connection_records_but_does_not_queue(
    connection, order, technician, django_capture_on_commit_callbacks
):
    Connection.objects.filter(pk=connection.pk).update(enabled=False)
    with django_capture_on_commit_callbacks() as callbacks:
        services.acknowledge_order(order, actor=technician)
    assert callbacks == []
    assert order.outbox_messages.filter(payload__event="acknowledged").exists()
    assert not claims.due_messages().exists()


def test_only_the_first_undelivered_message_of_an_order_is_due(connection, order, technician):
    services.acknowledge_order(order, actor=technician)
    first, *rest = messages_of(order)
    assert list(claims.due_messages().filter(order=order)) == [first]
    OutboxMessage.objects.filter(pk=first.pk).update(status=MessageStatus.REJECTED)
    assert not claims.due_messages().filter(order=order).exists()  # blocked until a person resolves it


def test_backoff_doubles_with_jitter_and_never_exceeds_ten_minutes():
    rng = random.Random(7)
    waits = [delivery.backoff(attempt, rng=rng).total_seconds() for attempt in range(1, 30)]
    assert 1 <= waits[0] <= 2
    assert 4 <= waits[2] <= 8
    assert max(waits) <= 600
    assert min(waits[12:]) >= 300


def test_secrets_are_encrypted_at_rest(connection):
    stored = Connection.objects.values_list("client_secret_encrypted", flat=True).get(pk=connection.pk)
    assert "s3cret" not in stored
    assert Connection.objects.get(pk=connection.pk).client_secret == "s3cret"


# --- The service-level watch --------------------------------------------------


def age(message: OutboxMessage, minutes: int) -> None:
    OutboxMessage.objects.filter(pk=message.pk).update(created_at=timezone.now() - timedelta(minutes=minutes))


def test_the_watch_emails_supervisors_and_office_once_at_five_minutes(
    connection, order, technician, supervisor, office
):
    services.acknowledge_order(order, actor=technician)
    oldest = messages_of(order)[0]
    age(oldest, 4)
    watch.check_service_level()
    assert mail.outbox == []
    age(oldest, 6)
    watch.check_service_level()
    watch.check_service_level()
    # Once, one email per person (colleagues do not see each other's addresses).
    assert sorted(email.to for email in mail.outbox) == sorted([[supervisor.email], [office.email]])
    assert "depuis 6 minutes" in mail.outbox[0].body
    assert ServiceLevelWarning.objects.count() == 1


@pytest.fixture
def mid_month():
    """Mid-month: a change 20 minutes ago is this month's breach (at 00:10 on
    the 1st, Paris time, it would be last month's)."""
    with time_machine.travel(datetime(2026, 12, 15, 10, 0, tzinfo=PARIS), tick=False):
        yield


def test_a_message_waiting_past_fifteen_minutes_is_a_breach_that_grows(mid_month, connection, order, technician):
    services.acknowledge_order(order, actor=technician)
    oldest = messages_of(order)[0]
    age(oldest, 20)
    watch.check_service_level()
    breach = Breach.objects.get(message=oldest)
    assert breach.delivered_at is None
    assert 19 * 60 <= breach.delay_seconds <= 21 * 60
    assert watch.health()[0].breaches_this_month == 1


def test_a_late_delivery_records_its_delay(connection, order, technician):
    services.acknowledge_order(order, actor=technician)
    planning.plan_order(order, actor=technician, appointment=timezone.now() + timedelta(days=1))
    message = messages_of(order)[0]
    age(message, 16)
    message.refresh_from_db()
    delivery.record_breach_if_late(message, delivered_at=timezone.now())
    assert Breach.objects.get(message=message).delivered_at is not None
    on_time = messages_of(order)[1]
    delivery.record_breach_if_late(on_time, delivered_at=timezone.now())
    assert not Breach.objects.filter(message=on_time).exists()
