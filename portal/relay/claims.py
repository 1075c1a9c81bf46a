"""Claiming outbox messages for delivery: which are due, and taking them with a lease.

A stream's messages go in order: a message is due when it is pending, its time
has come, no worker holds its lease, its connection delivers, and no earlier
message of its stream is undelivered. A claim locks due messages (one per
stream), sets one lease on them (`take`), and the delivery sends them outside
any transaction (portal/relay/delivery.py). The streams' heads and successors
are found through the stream and undelivered indexes, not by checking every
pending message.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, Max, Min, OuterRef, Q, QuerySet
from django.utils import timezone

from portal.relay.models import (
    DELIVERING_KINDS,
    UNDELIVERED,
    Connection,
    ConnectionKind,
    MessageStatus,
    OutboxMessage,
)


def lease_for(connection: Connection) -> timedelta:
    if settings.RELAY_LEASE_SECONDS:
        return timedelta(seconds=settings.RELAY_LEASE_SECONDS)
    # Long enough for a read-back, a token renewal and the send, each with its timeout.
    return timedelta(seconds=connection.timeout_seconds * 4 + 30)


def earlier_undelivered() -> Exists:
    return Exists(
        OutboxMessage.objects.filter(
            stream=OuterRef("stream"), sequence__lt=OuterRef("sequence"), status__in=UNDELIVERED
        )
    )


def due_messages(now: datetime | None = None) -> QuerySet[OutboxMessage]:
    """Messages that can be sent now: pending, due, unclaimed, first of their stream."""
    now = now or timezone.now()
    return (
        OutboxMessage.objects.filter(
            status=MessageStatus.PENDING,
            next_attempt_at__lte=now,
            connection__enabled=True,
            connection__kind__in=DELIVERING_KINDS,
        )
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .filter(~earlier_undelivered())
    )


# A message queued less than this ago has a task on its way to a worker.
FRESH = timedelta(seconds=1)


def batch_size() -> int:
    return max(1, settings.RELAY_BATCH)


def claim(message_id: int) -> OutboxMessage | None:
    """Take the message for this worker, or None if it is not ours to send now."""
    batch = claim_batch(message_id, limit=1)
    return batch[0] if batch else None


def claim_batch(message_id: int, *, limit: int, also: Sequence[int] = ()) -> list[OutboxMessage]:
    """Take the message, and with it up to `limit - 1` other due messages (each
    the first of its stream, so one per stream), in one transaction: first
    those of `also` (the messages a task handed over with this one), then
    others. Empty when neither the message nor those of `also` are ours to
    send now (delivered, claimed elsewhere, not due, or waiting for an earlier
    message of their stream)."""
    now = timezone.now()
    if not also and not _may_be_due(message_id, now):
        # Taken by another task's batch meanwhile (common under load, where a
        # running task takes what is due): said without a transaction or a lock.
        return []
    with transaction.atomic():
        first = list(_locked(due_messages(now).filter(pk=message_id))[:1])
        if also:
            first += _lock_ids(now, [pk for pk in also if pk != message_id], limit - len(first))
        if not first:
            return []
        # Not those queued a moment ago: their own tasks are on their way to
        # workers that may be idle, and would wait here behind this one's send.
        return take([*first, *more_due(now, limit - len(first), taken=first, skip_fresh=True)], now)


def _may_be_due(message_id: int, now: datetime) -> bool:
    """Whether the message may be due (pending, unleased, its time come), read
    without locking; the claim then checks for sure."""
    row = OutboxMessage.objects.filter(pk=message_id).values_list("status", "lease_until", "next_attempt_at").first()
    if row is None:
        return False
    status, lease_until, next_attempt_at = row
    return status == MessageStatus.PENDING and next_attempt_at <= now and (lease_until is None or lease_until < now)


def _locked(messages: QuerySet[OutboxMessage]) -> QuerySet[OutboxMessage]:
    # Not the order: the payload has what the send needs.
    return messages.select_related("connection").select_for_update(skip_locked=True, of=("self",))


# How many streams' first messages a claim considers per message it wants: a
# few more than needed, since some are leased elsewhere or waiting a backoff.
CANDIDATES = 4


def more_due(now: datetime, count: int, *, taken: list[OutboxMessage], skip_fresh: bool = False) -> list[OutboxMessage]:
    """Up to `count` more due messages, locked, none of a stream already taken
    (a stream has one due message at a time, but the caller may hold one it
    has not recorded yet).

    After an outage the undelivered messages are mostly second or later in
    their stream; finding the first ones by checking each for an earlier one
    cost 130 ms for a backlog of 10,000. So the first undelivered message of
    each stream comes from the undelivered index, grouped by stream (the
    streams waiting longest first), and only those are checked and locked."""
    if count <= 0:
        return []
    heads = (
        OutboxMessage.objects.filter(status__in=UNDELIVERED)
        .exclude(stream__in=[message.stream for message in taken])
        .values("stream")
        .annotate(first=Min("sequence"), oldest=Min("pk"))
    )
    if skip_fresh:
        # A stream's undelivered messages behind its first are never queued
        # (`outbox.record`): the latest queued time is the first's. Streams whose
        # first was queued a moment ago are left out here, not after locking
        # them: under a steady 50 changes/s most streams are such, and locking
        # them to let them go again cost two queries per message and took rows
        # their own tasks were about to claim.
        heads = heads.annotate(last_queued=Max("queued_at")).filter(
            Q(last_queued__isnull=True) | Q(last_queued__lt=now - FRESH)
        )
    heads = heads.order_by("oldest")[: count * CANDIDATES]
    return _lock_due(now, [(head["stream"], head["first"]) for head in heads], count, skip_fresh=skip_fresh)


def successors(now: datetime, delivered: list[OutboxMessage], count: int) -> list[OutboxMessage]:
    """The next message of each stream just delivered, those due, locked (up to
    `count`). While a backlog drains, a task goes on with the streams it has:
    their next messages are found through the stream index, where looking
    for the first message of every stream means reading the whole backlog."""
    return _lock_due(now, [(message.stream, message.sequence + 1) for message in delivered], count)


def _lock_due(
    now: datetime, places: list[tuple[str, int]], count: int, *, skip_fresh: bool = False
) -> list[OutboxMessage]:
    """Lock up to `count` due messages among those at these (stream, sequence)
    places, oldest due first; with `skip_fresh`, not those queued less than
    `FRESH` ago.

    The places are found by the stream index (`stream IN … AND sequence IN …`,
    then the exact pairs) and locked by primary key alone; whether each is
    due is then checked on the locked rows, and whether its stream has an
    earlier undelivered message by the undelivered index. Asked in one query
    (an OR of pairs, or the primary keys with the due conditions), PostgreSQL's
    planner, with the statistics of an outbox that grew by thousands in a
    minute, scanned the whole due index: 7 to 19 ms a claim instead of 2."""
    if not places:
        return []
    wanted = set(places)
    candidates = OutboxMessage.objects.filter(
        stream__in={stream for stream, _ in wanted},
        sequence__in={sequence for _, sequence in wanted},
        status=MessageStatus.PENDING,
    ).values_list("pk", "stream", "sequence")
    ids = [pk for pk, stream, sequence in candidates if (stream, sequence) in wanted]
    return _lock_ids(now, ids, count, skip_fresh=skip_fresh)


def _lock_ids(now: datetime, ids: Sequence[int], count: int, *, skip_fresh: bool = False) -> list[OutboxMessage]:
    """Lock up to `count` of these messages that are due and first of their
    stream (see `_lock_due`)."""
    if not ids or count <= 0:
        return []
    locked = [
        message
        for message in _locked(OutboxMessage.objects.filter(pk__in=ids)).order_by("next_attempt_at", "pk")
        if _due(message, now) and not (skip_fresh and message.queued_at and message.queued_at >= now - FRESH)
    ]
    if not locked:
        return []
    # The undelivered messages before the last one locked, in these streams:
    # usually none (a backlog's streams move together), never many.
    earlier = OutboxMessage.objects.filter(
        stream__in={message.stream for message in locked},
        status__in=UNDELIVERED,
        sequence__lt=max(message.sequence for message in locked),
    ).values_list("stream", "sequence")
    blocked: dict[str, int] = {}
    for stream, sequence in earlier:
        blocked[stream] = min(sequence, blocked.get(stream, sequence))
    return [message for message in locked if blocked.get(message.stream, message.sequence) >= message.sequence][:count]


def _due(message: OutboxMessage, now: datetime) -> bool:
    """What `due_messages` asks, but the stream's order, of a row in hand."""
    return (
        message.status == MessageStatus.PENDING
        and message.next_attempt_at <= now
        and (message.lease_until is None or message.lease_until < now)
        and message.connection.enabled
        and message.connection.kind in DELIVERING_KINDS
    )


def claim_more(count: int, *, wait: timedelta) -> list[OutboxMessage]:
    """Take up to `count` due messages (one per stream) in a transaction of
    their own, leased `wait` longer: they are sent after a batch in hand."""
    now = timezone.now()
    with transaction.atomic():
        return take(more_due(now, count, taken=[], skip_fresh=True), now, wait=wait)


def take(messages: list[OutboxMessage], now: datetime, *, wait: timedelta = timedelta()) -> list[OutboxMessage]:
    """Set one lease on locked, due messages (inside the caller's transaction).
    Their sends run one after the other, so the lease covers the first as a
    single message's, plus the longest each of the others may take, after
    `wait` (a batch sent before them)."""
    if not messages:
        return []
    lease_until = now + wait + max(lease_for(message.connection) for message in messages)
    # A bus's publishes are all in flight at once (`send_batch`): they add
    # nothing; the HTTP sends, one after the other, add their longest each.
    # (Summed for a bus, a worker killed mid-batch held 20 messages 7.5 min.)
    lease_until += sum(
        (send_budget(message) for message in messages[1:] if message.connection.kind != ConnectionKind.PUBSUB),
        timedelta(),
    )
    # Until we know better, a claimed message may have reached the platform.
    OutboxMessage.objects.filter(pk__in=[message.pk for message in messages]).update(
        lease_until=lease_until, attempts=F("attempts") + 1, ambiguous=True
    )
    for message in messages:
        # `ambiguous` stays what it was before the claim: set by an earlier claim
        # whose outcome is unknown (a timeout, or a worker that died before
        # recording anything), it asks for a read-back before sending.
        message.lease_until = lease_until
        message.attempts += 1
    return messages


def batch_budget(batch: Sequence[OutboxMessage]) -> timedelta:
    """The longest a batch's sends may take, one after the other (a bus's
    publishes are all in flight at once: one send's)."""
    on_bus = [message for message in batch if message.connection.kind == ConnectionKind.PUBSUB]
    return sum(
        (send_budget(message) for message in batch if message.connection.kind != ConnectionKind.PUBSUB),
        send_budget(on_bus[0]) if on_bus else timedelta(),
    )


def send_budget(message: OutboxMessage) -> timedelta:
    """The longest one send may take: a read-back first when the message may
    already be there, a token renewal, the send, each with its timeout."""
    calls = 3 if message.ambiguous else 2
    return timedelta(seconds=message.connection.timeout_seconds * calls)


def next_due_of(messages: list[OutboxMessage]) -> list[int]:
    """The next pending message of each of these messages' streams (marked
    queued: the caller queues them)."""
    if not messages:
        return []
    # Two queries for the lot, not one per stream: each stream's first pending
    # message after the one delivered, then their ids by the stream index.
    after = {message.stream: message.sequence for message in messages}
    firsts = (
        OutboxMessage.objects.filter(
            stream__in=list(after), status=MessageStatus.PENDING, sequence__gt=min(after.values())
        )
        .values("stream")
        .annotate(first=Min("sequence"))
        .values_list("stream", "first")
    )
    places = {(stream, first) for stream, first in firsts if first > after[stream]}
    if not places:
        return []
    following = [
        pk
        for pk, stream, sequence in OutboxMessage.objects.filter(
            stream__in={stream for stream, _ in places}, sequence__in={sequence for _, sequence in places}
        ).values_list("pk", "stream", "sequence")
        if (stream, sequence) in places
    ]
    if following:
        OutboxMessage.objects.filter(pk__in=following).update(queued_at=timezone.now())
    return following


def next_due(message: OutboxMessage) -> int | None:
    """The next message of the same stream, which may go now (marked queued: the caller queues it)."""
    following = next_due_of([message])
    return following[0] if following else None
