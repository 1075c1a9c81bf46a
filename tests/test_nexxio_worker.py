"""Nexxio with a real Celery worker: SIGKILLed while it publishes a stream of
changes to Google's Pub/Sub emulator, then restarted. Nothing may be lost,
each order's messages must be read on the bus in order, and a message may be
read twice only with the same `messageId` (the convention's, by which the
manager drops the copy): the test counts those copies and says how many.

The worker is the one of tests/test_relay_worker.py (`celery -A portal worker
--beat`, prefork, its own process group, a Redis database of its own, the
test database), delivering to a Nexxio connection on the emulator; the test
reads the topic as the manager would, from its own subscription.

PostgreSQL only: the worker is another process, and on SQLite the test
database lives in this process's memory, where no other process can reach it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from orders import planning, services
from orders.models import Order
from portal.celery import app as celery_app
from portal.models import User
from portal.relay import pubsub
from portal.relay.models import Connection, DeliveryAttempt, MessageStatus, OutboxMessage
from tests import factories
from tests.pubsub_emulator import PROJECT, Bus, Emulator, start_or_skip
from tests.test_relay_worker import LEASE_SECONDS, REQUEUE_SECONDS, Workers, broker_url, database_url  # noqa: F401

pytestmark = [
    pytest.mark.postgres(reason="the worker is another process; SQLite's test database is in this one's memory"),
    pytest.mark.django_db(transaction=True),
]

ORDERS = 10
WORKER = f"relay-test-1@{socket.gethostname()}"  # the first worker Workers starts
PROGRESS = (10, 20, 30, 40, 50, 60, 70)  # with acknowledge, plan and start: 10 changes an order


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    bus = start_or_skip()
    yield bus
    pubsub.forget_clients()
    bus.close()


@pytest.fixture
def workers(broker_url, transactional_db, tmp_path) -> Iterator[Workers]:  # noqa: F811
    # After the database: stopped before its tables are emptied.
    environment = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": broker_url,
        "DEBUG": "1",
        "PYTHONUNBUFFERED": "1",
        "RELAY_LEASE_SECONDS": LEASE_SECONDS,
        "RELAY_REQUEUE_SECONDS": REQUEUE_SECONDS,
    }
    pool = Workers(environment, tmp_path)
    yield pool
    pool.stop_all()


def make_orders(contract, asset, service_code, technician: User) -> list[Order]:
    return [
        factories.register_order(
            contract,
            reference=f"OPH57_NX{number:02d}",
            asset=asset,
            service_code=service_code,
            technician=technician,
        )
        for number in range(1, ORDERS + 1)
    ]


def make_changes(orders: list[Order], technician: User) -> None:
    """Ten changes on each order, the orders in turn (acknowledged, planned,
    started, then seven steps of progress), each at its own second: changes of
    one order in the same second with the same code would travel as one log."""
    moment = timezone.now() - timedelta(minutes=5)
    steps: list[Any] = [
        lambda order, at: services.acknowledge_order(order, actor=technician, at=at),
        lambda order, at: planning.plan_order(
            order, actor=technician, appointment=timezone.now() + timedelta(days=1), at=at
        ),
        lambda order, at: services.start_work(order, actor=technician, at=at),
        *[
            lambda order, at, progress=progress: services.set_progress(
                order, actor=technician, progress=progress, at=at
            )
            for progress in PROGRESS
        ],
    ]
    for step in steps:
        for order in orders:
            moment += timedelta(seconds=1)
            step(order, moment)


class Manager:
    """The manager reading the topic as a subscriber would (a streaming pull,
    each message acknowledged), keeping what it reads in the order received;
    `on_first` runs as soon as the first message arrives."""

    def __init__(self, bus: Bus, on_first: Callable[[], None]) -> None:
        self.received: list[Any] = []
        self.lock = threading.Lock()
        self.on_first: Callable[[], None] | None = on_first
        path = f"projects/{PROJECT}/subscriptions/{bus.manager_subscription}"
        self.future = bus.subscriber.subscribe(path, self._receive)

    def _receive(self, message: Any) -> None:
        with self.lock:
            self.received.append(message)
            if self.on_first is not None:
                self.on_first()
                self.on_first = None
        message.ack()

    def read(self) -> list[Any]:
        with self.lock:
            return list(self.received)

    def stop(self) -> None:
        self.future.cancel()
        with contextlib.suppress(Exception):
            self.future.result(timeout=10)


def pool_processes(worker: str) -> list[int]:
    """The pids of the worker's pool processes (those that deliver)."""
    stats = celery_app.control.inspect(destination=[worker], timeout=5).stats() or {}
    return list(stats[worker]["pool"]["processes"])


@pytest.mark.parametrize("killed", ["the whole worker", "its pool processes"])
def test_a_worker_killed_mid_publish_loses_nothing_and_keeps_each_orders_order(
    killed, emulator, workers, client_org, contract, asset, service_code, technician
):
    bus = Bus(emulator)
    bus.create()
    orders = make_orders(contract, asset, service_code, technician)
    # After the orders: only the changes below are relayed.
    factories.make_connection(
        client_org,
        secret=None,
        kind="pubsub",
        auth_base_url="",
        api_base_url="",
        oauth_client_id="",
        gcp_project=PROJECT,
        pubsub_topic=bus.out_topic,
        pubsub_subscription=bus.portal_subscription,
        pubsub_emulator_host=emulator.host,
        # Short, for a short lease (tests/test_relay_worker.py's 8 s, plus each
        # further message of the batch's send budget, twice this): the killed
        # worker's messages are taken again about 26 s after their claim.
        timeout_seconds=1,
    )
    first = workers.start()
    pool = pool_processes(WORKER)
    killed_at = threading.Event()

    def kill() -> None:  # as soon as the first message is read: the worker is publishing
        if killed == "the whole worker":
            os.killpg(first.pid, signal.SIGKILL)
        else:
            for pid in pool:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        killed_at.set()

    manager = Manager(bus, kill)
    # The changes committed together: their tasks reach the worker at once,
    # which then publishes the hundred messages, ten orders at a time.
    with transaction.atomic():
        make_changes(orders, technician)
    messages = list(OutboxMessage.objects.order_by("pk"))
    assert len(messages) == ORDERS * (3 + len(PROGRESS))
    by_id = {pubsub.bus_message_id(message): message for message in messages}
    clock = time.monotonic()
    try:
        assert killed_at.wait(60), workers.logs()
        kill_at = time.monotonic() - clock
        if killed == "the whole worker":
            first.wait(timeout=10)
        read_at_kill = len(manager.read())
        delivered_at_kill = set(
            OutboxMessage.objects.filter(status=MessageStatus.DELIVERED).values_list("pk", flat=True)
        )
        assert len(delivered_at_kill) < len(messages), "the worker published everything before the kill"
        if killed == "the whole worker":
            workers.start()  # the pool's processes are replaced by the worker itself

        deadline = time.monotonic() + 90
        while OutboxMessage.objects.exclude(status=MessageStatus.DELIVERED).exists() or set(by_id) - {
            item.attributes["messageId"] for item in manager.read()
        }:
            assert time.monotonic() < deadline, f"not all delivered and read within 90 s\n{workers.logs()}"
            time.sleep(0.2)
        recovered = time.monotonic() - clock
        time.sleep(1)  # any copy behind
    finally:
        manager.stop()
    received = manager.read()

    # Each message on the bus at least once; a copy only under the same
    # messageId, with the same content (the manager drops it by that id).
    copies = Counter(item.attributes["messageId"] for item in received)
    duplicates = {message_id: count - 1 for message_id, count in copies.items() if count > 1}
    print(
        f"\n{killed} killed after {read_at_kill} message(s) read, {len(delivered_at_kill)} recorded as"
        f" delivered; {len(received)} read in all for {len(messages)} messages:"
        f" {sum(duplicates.values())} duplicate(s), each with its original's messageId;"
        f" killed {kill_at:.1f} s after the changes, all read {recovered:.1f} s after"
    )
    assert set(copies) == set(by_id)
    for item in received:
        message = by_id[item.attributes["messageId"]]
        assert item.ordering_key == message.stream
        assert pubsub.message_data(message) == item.data
        assert dict(item.attributes) == pubsub.attributes(message)
    # Only a message the killed worker had taken and not recorded is published again.
    for message_id in duplicates:
        assert by_id[message_id].pk not in delivered_at_kill
    # Each order's messages in order: never an earlier one after a later one.
    read_sequences: dict[str, list[int]] = defaultdict(list)
    for item in received:
        read_sequences[item.ordering_key].append(by_id[item.attributes["messageId"]].sequence)
    for order in orders:
        sequences = read_sequences[f"order:{order.pk}"]
        assert sequences == sorted(sequences), (order.reference, sequences)
        expected = order.outbox_messages.order_by("sequence").values_list("sequence", flat=True)
        assert sorted(set(sequences)) == list(expected)
    # One delivery recorded per message, with the bus's id of a copy read.
    for message in messages:
        attempts = DeliveryAttempt.objects.filter(message=message, outcome=DeliveryAttempt.Outcome.DELIVERED)
        assert attempts.count() == 1
        copies_read = [item for item in received if item.attributes["messageId"] == pubsub.bus_message_id(message)]
        assert attempts.get().bus_message_id in {item.message_id for item in copies_read}
    assert Connection.objects.get().failing_since is None
