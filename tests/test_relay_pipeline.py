"""A backlog drains with two batches per task: one is sent (by the process's
sender thread) while the other's outcomes are recorded and its streams' next
messages claimed. Against the embedded sandbox over real HTTP, on PostgreSQL
(on SQLite the batches go one after the other: `delivery.records_while_sending`).

What must not change: each order's messages reach the platform once and in
order, one request is in flight at a time, a stream's next message is claimed
only once its predecessor's outcome is recorded, and trouble stops the lot.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.utils import timezone

from portal.relay import claims, delivery, intent, tasks
from portal.relay.models import DeliveryAttempt, MessageStatus, OutboxMessage
from portal.sandbox.models import AccessToken
from tests.test_relay_batches import busy_orders, queued_here, run_queued
from tests.test_relay_sandbox import assert_on_platform_once_in_order, set_behaviour

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("database_before_the_live_server")]


@pytest.fixture
def connection(sandbox_connection):
    return sandbox_connection


@dataclass
class Span:
    what: str
    thread: str
    start: float
    end: float
    streams: tuple[str, ...]


@pytest.fixture
def spans(monkeypatch) -> list[Span]:
    """When each send and each record ran, and on which thread (the real
    functions, watched)."""
    seen: list[Span] = []
    send, record = delivery.send, delivery.record

    def watched_send(message, **options):
        start = time.monotonic()
        try:
            return send(message, **options)
        finally:
            seen.append(Span("send", threading.current_thread().name, start, time.monotonic(), (message.stream,)))

    def watched_record(sent, **options):
        start = time.monotonic()
        try:
            return record(sent, **options)
        finally:
            streams = tuple(item.message.stream for item in sent)
            seen.append(Span("record", threading.current_thread().name, start, time.monotonic(), streams))

    monkeypatch.setattr(delivery, "send", watched_send)
    monkeypatch.setattr(delivery, "record", watched_record)
    return seen


def overlaps(first: Span, second: Span) -> bool:
    return first.start < second.end and second.start < first.end


def test_a_backlog_is_sent_while_the_batch_before_is_recorded(
    platform, connection, contract, service_code, asset, settings, spans
):
    settings.RELAY_BATCH = 3
    orders = busy_orders(contract, service_code, asset, 9, changes=3)
    # Each answer takes a moment: a send is still out while the batch before is recorded.
    set_behaviour(platform, delay_ms=40)
    total = OutboxMessage.objects.count()
    first = OutboxMessage.objects.order_by("pk").first()

    assert tasks.deliver_message(first.pk) == "delivered"

    assert OutboxMessage.objects.filter(status=MessageStatus.DELIVERED).count() == total
    for order in orders:
        assert_on_platform_once_in_order(platform, order)
    sends = [span for span in spans if span.what == "send"]
    records = [span for span in spans if span.what == "record"]
    assert len(sends) == total == DeliveryAttempt.objects.count()
    # The logs went from the sender thread, one at a time.
    assert {span.thread for span in sends} == {"relay-sender_0"}
    ordered = sorted(sends, key=lambda span: span.start)
    assert all(before.end <= after.start for before, after in zip(ordered, ordered[1:], strict=False))
    # The records ran here, each while a send of other streams was out.
    assert {span.thread for span in records} == {threading.current_thread().name}
    assert sum(any(overlaps(record, send) for send in sends) for record in records) >= len(records) - 2
    for record in records:
        during = [send for send in sends if overlaps(record, send)]
        assert not set(record.streams) & {stream for send in during for stream in send.streams}


def test_a_stream_next_message_is_claimed_only_once_its_predecessor_is_recorded(
    platform, connection, contract, service_code, asset, settings, spans
):
    settings.RELAY_BATCH = 2
    busy_orders(contract, service_code, asset, 4, changes=4)
    first = OutboxMessage.objects.order_by("pk").first()

    assert tasks.deliver_message(first.pk) == "delivered"

    # For each message, its send began after the record of its stream's
    # message before it had ended.
    recorded_at = {}
    for span in sorted(spans, key=lambda span: span.end):
        if span.what == "record":
            for stream in span.streams:
                recorded_at.setdefault(stream, []).append(span.end)
    for stream in recorded_at:
        stream_sends = sorted(
            (span for span in spans if span.what == "send" and span.streams == (stream,)), key=lambda s: s.start
        )
        for number, send in enumerate(stream_sends[1:]):
            assert send.start >= recorded_at[stream][number]


def test_the_second_batch_is_leased_for_the_first_batch_sends_too(
    platform, connection, contract, service_code, asset, settings
):
    settings.RELAY_BATCH = 3
    busy_orders(contract, service_code, asset, 6, changes=0)
    batch = claims.claim_batch(OutboxMessage.objects.order_by("pk").first().pk, limit=3)
    second = claims.claim_more(3, wait=claims.batch_budget(batch))
    assert len(second) == 3
    assert not {message.stream for message in batch} & {message.stream for message in second}
    # Sent after the first batch, the second's lease covers that batch's sends too.
    assert second[0].lease_until - batch[0].lease_until >= claims.batch_budget(batch) > timedelta(0)
    assert not claims.due_messages().exists()


def test_when_the_platform_fails_the_batch_waiting_its_turn_goes_back_untried(
    platform, connection, contract, service_code, asset, settings
):
    settings.RELAY_BATCH = 3
    orders = busy_orders(contract, service_code, asset, 6, changes=0)
    set_behaviour(platform, down=True)
    first = OutboxMessage.objects.order_by("pk").first()

    assert tasks.deliver_message(first.pk) == "retry"

    failed = OutboxMessage.objects.get(pk=first.pk)
    others = OutboxMessage.objects.exclude(pk=first.pk)
    assert others.count() == 5
    for message in others:
        # Given back as they were: no attempt counted, no uncertainty, waiting as long.
        assert (message.attempts, message.ambiguous, message.lease_until) == (0, False, None)
        assert message.next_attempt_at == failed.next_attempt_at
    assert DeliveryAttempt.objects.count() == 1
    set_behaviour(platform, down=False)
    OutboxMessage.objects.update(next_attempt_at=timezone.now())
    while due := list(claims.due_messages().values_list("pk", flat=True)[:1]):
        tasks.deliver_message(due[0])
    for order in orders:
        assert_on_platform_once_in_order(platform, order)


def test_a_token_refused_midway_is_renewed_and_the_rest_sent_once_in_order(
    platform, connection, contract, service_code, asset, settings
):
    settings.RELAY_BATCH = 3
    orders = busy_orders(contract, service_code, asset, 6, changes=2)
    first, *_ = OutboxMessage.objects.order_by("pk")
    # The worker holds a token the platform has forgotten (revoked, or the
    # platform restarted): the sender thread's first post meets a 401.
    intent.client_for(first.connection).token()
    AccessToken.objects.all().delete()

    assert tasks.deliver_message(first.pk) == "delivered"

    assert not OutboxMessage.objects.filter(status=MessageStatus.PENDING).exists()
    for order in orders:
        assert_on_platform_once_in_order(platform, order)
    assert AccessToken.objects.count() == 1  # renewed once, here
    assert set(DeliveryAttempt.objects.values_list("outcome", flat=True)) == {"delivered"}


def test_a_task_that_has_done_its_share_hands_each_batch_streams_over_to_one_task(
    platform, connection, contract, service_code, asset, settings, monkeypatch
):
    settings.RELAY_BATCH = 3
    monkeypatch.setattr(delivery, "MAX_PER_TASK", 6)
    orders = busy_orders(contract, service_code, asset, 6, changes=3)
    queued = queued_here(monkeypatch)
    first = OutboxMessage.objects.order_by("pk").first()

    assert tasks.deliver_message(first.pk) == "delivered"

    assert OutboxMessage.objects.filter(status=MessageStatus.DELIVERED).count() == 6  # its share: two batches
    # Two tasks, one for each batch's streams, each taking its three next messages.
    assert len(queued) == 2
    seconds = set(OutboxMessage.objects.filter(sequence=2).values_list("pk", flat=True))
    assert {pk for message_id, also in queued for pk in [message_id, *(also or [])]} == seconds
    for message_id, also in queued:
        assert len([message_id, *(also or [])]) == 3
    run_queued(queued)
    for order in orders:
        assert_on_platform_once_in_order(platform, order)
