"""Reconciliation brings existing orders up to date (issue 14, finding 2): a
change or a cancellation whose webhook was lost reaches the order at the next
reconciliation, and an unchanged operation is not read again. Over real HTTP
with the sandbox, which has no webhook target here (every webhook is lost)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from orders import inbound as orders_inbound
from orders import services
from orders.models import Order
from portal.relay.models import Connection, InboundNotification, NotificationStatus
from portal.sandbox.models import Operation, WebhookDelivery
from tests.test_relay_sandbox import drain, seeded, the_manager_cancels, the_manager_requests  # noqa: F401


@pytest.fixture
def connection(sandbox_connection) -> Connection:
    return sandbox_connection


@pytest.fixture
def brought_in(platform, connection, contract, seeded, client, live_server) -> tuple[Operation, Order]:  # noqa: F811
    operation = the_manager_requests(client, live_server)
    assert "Aucune cible de webhook active" in WebhookDelivery.objects.get().error
    assert orders_inbound.reconcile(connection) == 1
    return operation, Order.objects.get()


def test_an_unchanged_operation_is_not_read_again(connection, brought_in):
    assert orders_inbound.reconcile(connection) == 0
    assert InboundNotification.objects.count() == 1


def test_a_change_whose_webhook_was_lost_reaches_the_order(connection, brought_in):
    operation, order = brought_in
    Operation.objects.filter(pk=operation.pk).update(
        description="Fuite importante, eau au plafond du voisin",
        critical_level=3,
        last_update_date=timezone.now() + timedelta(seconds=1),
    )

    assert orders_inbound.reconcile(connection) == 1

    order.refresh_from_db()
    assert (order.description, order.critical_level) == ("Fuite importante, eau au plafond du voisin", 3)
    assert orders_inbound.reconcile(connection) == 0


def test_a_cancellation_whose_webhook_was_lost_cancels_the_order(connection, brought_in, technician, platform):
    operation, order = brought_in
    services.acknowledge_order(order, actor=technician)
    drain()  # the platform now lists the operation as under way ("pending")

    the_manager_cancels(operation, "Doublon de la demande OPH57_241120", platform)
    assert orders_inbound.reconcile(connection) == 1

    order.refresh_from_db()
    assert (order.state, order.cancel_reason) == ("cancelled", "Doublon de la demande OPH57_241120")
    update = InboundNotification.objects.filter(type="operations:intervention:update").latest("pk")
    assert update.status == NotificationStatus.PROCESSED
    # Cancelled here too: nothing more to read.
    assert orders_inbound.reconcile(connection) == 0
