"""Delivery in batches: a task claims the due messages of several orders (one
per order, the first of each), sends them one after the other, and records
their outcomes and claims the next batch in one transaction. Against the
embedded sandbox over real HTTP; nothing of ours is mocked.

What must not change: each order's messages reach the platform once and in
order, a claim holds a lease, and an uncertain send is read back first.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from orders import services
from portal.relay import claims, delivery, outbox, tasks
from portal.relay.models import DeliveryAttempt, MessageKind, MessageStatus, OutboxMessage
from tests.test_relay_sandbox import (
    assert_on_platform_once_in_order,
    deliver_due,
    make_orders,
    set_behaviour,
)

pytestmark = pytest.mark.usefixtures("database_before_the_live_server")


@pytest.fixture
def connection(sandbox_connection):
    return sandbox_connection


def busy_orders(contract, service_code, asset, count: int, changes: int):
    """`count` acknowledged orders, each with `changes` more messages waiting
    (the works started, then progress): a backlog, queued a while ago (as after
    an outage: the tasks queued with each change have run)."""
    orders = make_orders(contract, service_code, asset, count, acknowledged=True)
    for order in orders:
        if changes:
            services.start_work(order, actor=None)
        for step in range(1, changes):
            services.set_progress(order, actor=None, progress=10 * step)
    OutboxMessage.objects.update(queued_at=timezone.now() - timedelta(minutes=1))
    return orders


def queued_here(monkeypatch) -> list[tuple[int, list[int] | None]]:
    """From now on, the deliveries the tasks queue (a message, and those handed
    over with it), kept here rather than sent to a broker (`run_queued` runs them)."""
    queued: list[tuple[int, list[int] | None]] = []
    monkeypatch.setattr(tasks, "queue_delivery", lambda message_id, also=None: queued.append((message_id, also)))
    return queued


def run_queued(queued: list[tuple[int, list[int] | None]]) -> None:
    """What the workers would do next: the queued tasks, then any message
    still due, until none is."""
    while queued or (due := list(claims.due_messages().values_list("pk", flat=True)[:1])):
        message_id, also = queued.pop() if queued else (due[0], None)
        tasks.deliver_message(message_id, also)


def transactions_in(queries: list[dict]) -> int:
    """Transactions opened (savepoints inside the test's own transaction)."""
    return sum(1 for query in queries if query["sql"].startswith("SAVEPOINT"))


def test_one_task_delivers_several_orders_recording_each_round_in_one_transaction(
    platform, connection, contract, service_code, asset, settings
):
    settings.RELAY_BATCH = 10
    orders = busy_orders(contract, service_code, asset, 4, changes=3)
    total = OutboxMessage.objects.count()
    rounds = max(order.outbox_messages.count() for order in orders)
    assert total >= 8 and rounds >= 2
    first = OutboxMessage.objects.order_by("pk").first()
    with CaptureQueriesContext(db_connection) as captured:
        assert tasks.deliver_message(first.pk) == "delivered"
    # Every message went, in rounds of one message per order: the claim, then
    # one transaction per round that records it and claims the next (plus the
    # token, fetched once). One message at a time would take one per message.
    assert OutboxMessage.objects.filter(status=MessageStatus.DELIVERED).count() == total
    assert transactions_in(captured.captured_queries) <= rounds + 1 + 2 < total
    for order in orders:
        assert_on_platform_once_in_order(platform, order)
    assert DeliveryAttempt.objects.count() == total


def test_the_batch_never_holds_two_messages_of_one_order(platform, connection, contract, service_code, asset):
    orders = busy_orders(contract, service_code, asset, 3, changes=2)
    batch = claims.claim_batch(OutboxMessage.objects.order_by("pk").first().pk, limit=20)
    assert sorted(message.order_id for message in batch) == sorted(order.pk for order in orders)
    assert all(message.sequence == 1 for message in batch)
    assert len({message.lease_until for message in batch}) == 1
    # While the lease runs, no other task takes any of them, nor what follows them.
    assert not claims.due_messages().exists()
    assert claims.claim_batch(batch[1].pk, limit=20) == []


def test_when_the_platform_fails_the_rest_of_the_batch_waits_untried_and_unchanged(
    platform, connection, contract, service_code, asset
):
    busy_orders(contract, service_code, asset, 3, changes=0)
    set_behaviour(platform, down=True)
    assert deliver_due() == ["retry"]
    failed, *others = OutboxMessage.objects.order_by("pk")
    assert (failed.attempts, failed.queued_at) == (1, None)
    for message in others:
        # Given back as they were: no attempt counted, no uncertainty, waiting as long.
        assert (message.attempts, message.ambiguous, message.lease_until) == (0, False, None)
        assert message.next_attempt_at == failed.next_attempt_at
    set_behaviour(platform, down=False)
    OutboxMessage.objects.update(next_attempt_at=timezone.now())
    assert deliver_due() == ["delivered"] * 3


def test_a_batch_that_could_outlive_its_lease_gives_the_rest_back_due_now(
    platform, connection, contract, service_code, asset
):
    orders = busy_orders(contract, service_code, asset, 3, changes=0)
    batch = claims.claim_batch(OutboxMessage.objects.order_by("pk").first().pk, limit=20)
    # The first send took so long that a second could end after the lease.
    near = timezone.now() + timedelta(seconds=1)
    OutboxMessage.objects.filter(pk__in=[message.pk for message in batch]).update(lease_until=near)
    for message in batch:
        message.lease_until = near
    sent = delivery.send_batch(batch)
    assert [item.result.outcome for item in sent] == ["delivered"]
    finished = delivery.record(sent, released=batch[1:], claim_next=True)
    # Given back due now, as they were, and a task queued at once to take them
    # (one task for a batch), not left for later.
    for message in OutboxMessage.objects.filter(pk__in=[message.pk for message in batch[1:]]):
        assert (message.status, message.attempts, message.lease_until) == (MessageStatus.PENDING, 0, None)
    assert finished.queue == [batch[1].pk]
    for message_id in finished.queue:
        tasks.deliver_message(message_id)
    for order in orders:
        assert_on_platform_once_in_order(platform, order)


def test_an_uncertain_message_in_a_batch_is_read_back_not_sent_twice(
    platform, connection, contract, service_code, asset
):
    busy_orders(contract, service_code, asset, 3, changes=0)
    set_behaviour(platform, timeout_after_store_rate=1)
    assert deliver_due() == ["ambiguous"]
    set_behaviour(platform, timeout_after_store_rate=0)
    OutboxMessage.objects.update(next_attempt_at=timezone.now())
    outcomes = deliver_due()
    assert sorted(outcomes) == ["already_there", "delivered", "delivered"]
    for order in {message.order for message in OutboxMessage.objects.select_related("order")}:
        assert_on_platform_once_in_order(platform, order)


# --- Streams: the ordering key is not always an order -------------------------------


def test_a_stream_without_an_order_is_delivered_in_order_and_shown_by_its_reference(
    connection, client, supervisor, order
):
    """What belongs to no order (a quote) names its own stream: its messages wait
    for one another like an order's, and the pages show the platform's reference."""
    payload = {"reference": "DEVIS-2026-0042", "contractReference": "MULTITECH-2024-07", "description": "Devis"}
    first = outbox.record(connection, stream="quote:42", kind=MessageKind.QUOTATION_LOG, payload=payload)
    second = outbox.record(connection, stream="quote:42", kind=MessageKind.QUOTATION_LOG, payload=payload)
    assert (first.order_id, first.sequence, second.sequence) == (None, 1, 2)
    assert first.pk in set(claims.due_messages().values_list("pk", flat=True))
    assert second.pk not in set(claims.due_messages().values_list("pk", flat=True))
    # An order's stream numbers its own messages from 1, whatever other streams hold.
    assert order.outbox_messages.order_by("sequence").values_list("stream", flat=True).first() in (
        None,
        f"order:{order.pk}",
    )
    OutboxMessage.objects.filter(pk=first.pk).update(
        status=MessageStatus.REJECTED, rejected_at=timezone.now(), last_error="Référence inconnue"
    )
    client.force_login(supervisor)
    page = client.get(reverse("relay:error_queue"))
    assert page.status_code == 200
    assert "DEVIS-2026-0042" in page.content.decode()


def test_the_sweep_probes_a_failing_platform_so_its_return_is_seen_at_once(
    platform, connection, contract, service_code, asset
):
    """After an outage every message waits out a backoff of up to 10 minutes: the
    sweep (every 5 s) makes one of them due now, whose success brings the others
    back at once."""
    orders = busy_orders(contract, service_code, asset, 3, changes=0)
    set_behaviour(platform, down=True)
    assert deliver_due() == ["retry"]
    OutboxMessage.objects.update(next_attempt_at=timezone.now() + timedelta(minutes=8))
    assert delivery.sweep() == [OutboxMessage.objects.order_by("pk").first().pk]  # the probe, still failing
    tasks.deliver_message(OutboxMessage.objects.order_by("pk").first().pk)
    assert OutboxMessage.objects.filter(status=MessageStatus.PENDING).count() == 3
    set_behaviour(platform, down=False)
    probe = delivery.sweep()
    assert len(probe) == 1
    tasks.deliver_message(probe[0])
    for message_id in delivery.sweep():  # what the recovery made due
        tasks.deliver_message(message_id)
    for order in orders:
        assert_on_platform_once_in_order(platform, order)


def test_a_failing_platform_is_probed_every_second_between_sweeps(
    platform, connection, contract, service_code, asset, monkeypatch
):
    """The sweep runs every 5 s; while a platform fails, it also queues a probe
    for each second until the next sweep, so that the platform's return is seen
    within a second. Nothing is probed while every platform answers."""
    orders = busy_orders(contract, service_code, asset, 2, changes=2)
    scheduled: list[dict] = []
    monkeypatch.setattr(tasks.probe_outbox, "apply_async", lambda **options: scheduled.append(options))
    monkeypatch.setattr(tasks, "queue_delivery", lambda message_id: None)  # the test delivers itself
    tasks.sweep_outbox()
    assert scheduled == []  # the platform is not known to fail

    set_behaviour(platform, down=True)
    assert deliver_due()[-1] == "retry"
    OutboxMessage.objects.update(next_attempt_at=timezone.now() + timedelta(minutes=8))
    tasks.sweep_outbox()
    assert [options["countdown"] for options in scheduled] == [1, 2, 3, 4]
    assert all(options["expires"] > options["countdown"] for options in scheduled)
    sweep_probe = OutboxMessage.objects.get(next_attempt_at__lte=timezone.now())
    assert delivery.probe_failing(timezone.now()) == [sweep_probe.pk]  # due, not tried yet: no second one
    assert deliver_due() == ["retry"]  # the sweep's probe: still down

    set_behaviour(platform, down=False)
    assert tasks.probe_outbox() == 1  # a second later: one waiting message, due now, queued
    probe = OutboxMessage.objects.get(next_attempt_at__lte=timezone.now(), status=MessageStatus.PENDING)
    assert probe.queued_at is not None
    tasks.deliver_message(probe.pk)
    # Its success brought every waiting message back: nothing waits out its backoff.
    assert not OutboxMessage.objects.filter(status=MessageStatus.PENDING, next_attempt_at__gt=timezone.now()).exists()
    assert tasks.probe_outbox() == 0  # the platform answers: nothing to probe
    for message_id in delivery.sweep():
        tasks.deliver_message(message_id)
    for order in orders:
        assert_on_platform_once_in_order(platform, order)


def test_a_task_hands_its_streams_over_to_one_task_when_its_share_is_done(
    platform, connection, contract, service_code, asset, settings, monkeypatch
):
    """A task stops after MAX_PER_TASK messages; the next messages of the
    streams it was delivering go to one task together (not a task each, most
    of which found their message taken by another's batch), which takes them
    all, in order."""
    settings.RELAY_BATCH = 3
    monkeypatch.setattr(delivery, "MAX_PER_TASK", 3)
    orders = busy_orders(contract, service_code, asset, 3, changes=3)
    queued = queued_here(monkeypatch)
    first = OutboxMessage.objects.order_by("pk").first()
    assert tasks.deliver_message(first.pk) == "delivered"
    assert OutboxMessage.objects.filter(status=MessageStatus.DELIVERED).count() == 3  # its share
    heads = sorted(
        OutboxMessage.objects.filter(stream=f"order:{order.pk}", sequence=2).values_list("pk", flat=True)[0]
        for order in orders
    )
    assert len(queued) == 1  # one task for the three streams
    message_id, also = queued[0]
    assert sorted([message_id, *(also or [])]) == heads
    # That task takes the three together, first its own, then those handed over.
    batch = claims.claim_batch(message_id, limit=3, also=also or [])
    assert sorted(message.pk for message in batch) == heads
    OutboxMessage.objects.filter(pk__in=heads).update(lease_until=None)  # given back: the task runs now
    run_queued(queued)
    for order in orders:
        assert_on_platform_once_in_order(platform, order)


def test_a_task_past_its_time_hands_its_streams_over_rather_than_going_on(
    platform, connection, contract, service_code, asset, settings, monkeypatch
):
    """A task also stops claiming once it has run TASK_SECONDS (a slow
    platform must not bring it near Celery's time limit, which would kill it
    mid-batch): what it holds is recorded, what follows goes to one task."""
    settings.RELAY_BATCH = 3
    monkeypatch.setattr(delivery, "TASK_SECONDS", 0.0)
    orders = busy_orders(contract, service_code, asset, 3, changes=2)
    queued = queued_here(monkeypatch)
    first = OutboxMessage.objects.order_by("pk").first()

    assert tasks.deliver_message(first.pk) == "delivered"

    assert OutboxMessage.objects.filter(status=MessageStatus.DELIVERED).count() == 3  # its first batch only
    assert len(queued) == 1
    message_id, also = queued[0]
    assert OutboxMessage.objects.filter(pk__in=[message_id, *(also or [])], sequence=2).count() == 3
    monkeypatch.setattr(delivery, "TASK_SECONDS", 20.0)
    run_queued(queued)
    for order in orders:
        assert_on_platform_once_in_order(platform, order)


def test_a_change_behind_an_undelivered_message_queues_no_task_and_follows_it(
    platform, connection, contract, service_code, asset, django_capture_on_commit_callbacks, monkeypatch
):
    """During an outage every change used to queue a task that only found its
    message waiting behind the order's first: thousands of broker round trips
    for nothing. A change behind an undelivered message is not queued; the task
    that delivers the first goes on with it."""
    queued: list[int] = []
    monkeypatch.setattr(tasks, "queue_delivery", lambda message_id, also=None: queued.append(message_id))
    (order,) = make_orders(contract, service_code, asset, 1, acknowledged=True)
    deliver_due()  # its acknowledgement
    assert not OutboxMessage.objects.filter(status=MessageStatus.PENDING).exists()
    queued.clear()
    set_behaviour(platform, down=True)
    start = timezone.now() - timedelta(seconds=10)
    with time_machine.travel(start), django_capture_on_commit_callbacks(execute=True):
        services.start_work(order, actor=None)
    assert len(queued) == 1  # the order's first undelivered message: queued
    for seconds, progress in ((2, 30), (4, 60)):  # seconds apart: not merged into the unsent message
        with time_machine.travel(start + timedelta(seconds=seconds)), django_capture_on_commit_callbacks(execute=True):
            services.set_progress(order, actor=None, progress=progress)
    assert len(queued) == 1  # behind it: not queued
    first_waiting, *behind = OutboxMessage.objects.filter(status=MessageStatus.PENDING).order_by("sequence")
    assert first_waiting.queued_at is not None and behind
    assert [message.queued_at for message in behind] == [None] * len(behind)
    set_behaviour(platform, down=False)
    assert tasks.deliver_message(first_waiting.pk) == "delivered"
    assert not OutboxMessage.objects.filter(status=MessageStatus.PENDING).exists()
    assert_on_platform_once_in_order(platform, order)


def test_a_bus_batch_is_leased_as_long_as_one_publish_an_http_batch_as_its_sends_one_after_the_other(db, monkeypatch):
    """Pub/Sub publishes a batch's messages all at once: a worker killed
    mid-batch must not hold them for the sum of 20 sends (7.5 minutes of the
    15); HTTP sends go one after the other, and their lease covers them all."""
    from portal.relay.models import ConnectionKind
    from tests import factories

    monkeypatch.setattr(tasks, "queue_delivery", lambda message_id, also=None: None)
    leases = {}
    for kind, fields in (
        (
            ConnectionKind.PUBSUB,
            {"pubsub_topic": "projects/p/topics/t", "pubsub_subscription": "projects/p/subscriptions/s"},
        ),
        (ConnectionKind.INTENT, {}),
    ):
        client = factories.make_client(name=f"Bailleur {kind}")
        connection = factories.make_connection(client, kind=kind, **fields)
        for number in range(3):
            outbox.record(
                connection, kind=MessageKind.INTERVENTION_LOG, payload={"n": number}, stream=f"{kind}:{number}"
            )
        # Queued a while ago (as after an outage): one task takes them together.
        OutboxMessage.objects.filter(connection=connection).update(queued_at=timezone.now() - timedelta(minutes=1))
        first = OutboxMessage.objects.filter(connection=connection).order_by("pk").first()
        started = timezone.now()
        batch = claims.claim_batch(first.pk, limit=20)
        assert len(batch) == 3
        leases[kind] = batch[0].lease_until - started
    one = claims.lease_for(connection)
    assert leases[ConnectionKind.PUBSUB] <= one + timedelta(seconds=5)
    assert leases[ConnectionKind.INTENT] >= one + 2 * claims.send_budget(batch[1])
