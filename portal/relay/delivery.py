"""Delivering outbox messages: claim (portal/relay/claims.py), send outside any
transaction, record.

A message is claimed with a lease (`lease_until`): while the lease runs no
other worker takes it; a worker killed mid-delivery simply lets it expire.
Because a claim may have sent the log before dying, every claim after the
first starts by reading the operation back, and skips the send when the
platform already has the log (the platform has no idempotency key).
"""

from __future__ import annotations

import logging
import os
import random
import socket
import sys
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from portal.limits import SHARING_LIMIT
from portal.relay import claims, intent, notify, pubsub, readback
from portal.relay.models import (
    DELIVERING_KINDS,
    Breach,
    Connection,
    ConnectionKind,
    DeliveryAttempt,
    MessageKind,
    MessageStatus,
    OutboxMessage,
)

logger = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(minutes=10)
BASE_BACKOFF = timedelta(seconds=2)
WORKER = f"{socket.gethostname()}:{os.getpid()}"

Outcome = DeliveryAttempt.Outcome


def backoff(attempts: int, *, rng: random.Random | None = None) -> timedelta:
    """Exponential backoff with jitter: half the delay fixed, half random, capped
    so that a waiting message is tried at least every 10 minutes."""
    uniform = rng.uniform if rng is not None else random.uniform
    delay = min(MAX_BACKOFF.total_seconds(), BASE_BACKOFF.total_seconds() * 2 ** max(attempts - 1, 0))
    return timedelta(seconds=delay / 2 + uniform(0, delay / 2))


def requeue_after() -> timedelta:
    """A queued task not run by then was lost by the broker: queue it again."""
    return timedelta(seconds=settings.RELAY_REQUEUE_SECONDS)


@dataclass
class Result:
    outcome: str
    status_code: int | None = None
    error: str = ""
    retry_after: float | None = None
    body: str = ""  # the platform's answer to a failed attempt (8 KB at most)
    reasons: tuple[str, ...] = ()  # the reasons read from it (intent.read_refusal)
    bus_id: str = ""  # Pub/Sub: the bus's id of the message published


def from_bus(published: pubsub.Published) -> Result:
    return Result(published.outcome, error=published.error, retry_after=published.retry_after, bus_id=published.bus_id)


def send(message: OutboxMessage, *, check_first: bool, bearer: str | None = None) -> Result:
    """Call the platform. No database transaction is open here. With `bearer`
    (a log only, not read back first), the call uses that token and touches no
    database; a 401 then raises `intent.TokenRejected`."""
    if message.connection.kind == ConnectionKind.PUBSUB:
        # A message published twice carries the same messageId: no read-back.
        return from_bus(pubsub.publish(message))
    client = intent.client_for(message.connection)
    try:
        if check_first and message.kind in (MessageKind.INTERVENTION_LOG, MessageKind.QUOTATION_LOG):
            try:
                if readback.already_on_platform(client, message):
                    return Result(Outcome.ALREADY_THERE)
            except intent.TransientError as error:
                # The earlier send may have reached the platform and we still cannot
                # tell: stay uncertain, so that the next try reads back again rather
                # than posting a second copy.
                raise intent.AmbiguousError(
                    error.message, status_code=error.status_code, body=error.body, reasons=error.reasons
                ) from error
        if check_first and message.kind == MessageKind.DOCUMENT:
            try:
                if readback.document_already_on_platform(client, message):
                    return Result(Outcome.ALREADY_THERE)
            except intent.TransientError as error:
                raise intent.AmbiguousError(
                    error.message, status_code=error.status_code, body=error.body, reasons=error.reasons
                ) from error
        if message.kind == MessageKind.INTERVENTION_LOG:
            client.post_log(message.payload, bearer=bearer)
        elif message.kind == MessageKind.QUOTATION_LOG:
            client.post_log(message.payload, element="quotations", bearer=bearer)
        elif message.kind == MessageKind.DOCUMENT:
            file_name, content, mime = readback.document_file(message)
            client.upload_document(
                readback.document_fields(message.payload), filename=file_name, content=content, mime=mime
            )
        else:
            raise intent.Rejection(f"Nature de message inconnue : {message.kind}")
    except intent.AmbiguousError as error:
        # A timeout, or a gateway's 502/504 that may have come after the platform stored it.
        return Result(Outcome.AMBIGUOUS, error.status_code, error.message, body=error.body, reasons=error.reasons)
    except intent.TransientError as error:
        retry_after = None
        if error.status_code == 429:
            retry_after = 1.0
        return Result(
            Outcome.RETRY, error.status_code, error.message, retry_after, body=error.body, reasons=error.reasons
        )
    except intent.Rejection as error:
        return Result(Outcome.REJECTED, error.status_code, error.message, body=error.body, reasons=error.reasons)
    return Result(Outcome.DELIVERED, 201 if message.kind == MessageKind.DOCUMENT else 204)


# A delivery task claims its message and other due ones of other streams, sends
# them one after the other outside any transaction, then records their outcomes
# together and claims the next batch (the following messages of the streams it
# delivered among them) in one transaction: the bookkeeping of a backlog costs
# one transaction per batch, not one per message. The task stops after
# MAX_PER_TASK messages or TASK_SECONDS, whichever comes first, so that one
# worker never holds a backlog for long (nor nears the task's time limit).
#
# While a backlog drains, a task holds two batches of different streams: one is
# sent (by the process's sender thread) while the other's outcomes are recorded
# and its streams' next messages claimed, so the platform never waits for the
# bookkeeping. One request is in flight at a time, as before, and a stream's
# next message is still claimed only once its predecessor's outcome is recorded.
MAX_PER_TASK = 1000
TASK_SECONDS = 20.0


@dataclass
class Delivery:
    """What a delivery task did: the first message's outcome (None when it was
    not ours to send) and the messages it found due that a task should take."""

    outcome: str | None
    queue: list[int] = field(default_factory=list)
    # The next messages of the streams the task delivered last, in groups, one
    # task for each group (its first message, the others `also`).
    handoff: list[list[int]] = field(default_factory=list)


@dataclass
class Sent:
    message: OutboxMessage
    result: Result
    started: datetime
    duration_ms: int


def deliver(message_id: int, *, also: Sequence[int] = ()) -> Delivery:
    """Claim, send and record the message (and those of `also`), and the batch
    claimed with it, then the following batches while messages are due. The
    outcome is the first message's, None when it was not ours to send."""
    size = claims.batch_size()
    deadline = time.monotonic() + TASK_SECONDS
    batch = claims.claim_batch(message_id, limit=size, also=also)
    if not batch:
        return Delivery(None)
    waiting: deque[list[OutboxMessage]] = deque([batch])
    overlap = records_while_sending()
    # A full batch of logs: a backlog. A second one, of other streams, is sent while the first is recorded.
    if (
        overlap
        and len(batch) == size
        and plain_logs(batch)
        and (second := claims.claim_more(size, wait=claims.batch_budget(batch)))
    ):
        waiting.append(second)
    delivery = Delivery(None)
    handled = 0
    flight: Flight | None = None
    while waiting or flight:
        flight = flight or Flight.launch(waiting.popleft(), threaded=overlap)
        sent, sending = flight.land(), flight.batch
        flight = None
        trouble = sent[-1].result.outcome in TROUBLE
        released = sending[len(sent) :]
        if trouble:  # the platform is in trouble: the waiting batches wait with the rest
            released += [message for batch in waiting for message in batch]
            waiting.clear()
        elif waiting:
            flight = Flight.launch(waiting.popleft(), threaded=overlap)
        handled += len(sending)
        in_flight = flight.batch if flight else []
        finished = record(
            sent,
            released=released,
            claim_next=handled + len(in_flight) < MAX_PER_TASK and time.monotonic() < deadline,
            wait=claims.batch_budget(in_flight),
        )
        delivery.outcome = delivery.outcome or sent[0].result.outcome
        delivery.queue += finished.queue
        if finished.handoff:
            delivery.handoff.append(finished.handoff)
        if finished.following:
            waiting.append(finished.following)
    return delivery


# Outcomes that say the platform is in trouble (not the message): the rest of
# the batch is not tried now.
TROUBLE = (Outcome.RETRY, Outcome.AMBIGUOUS)


def send_batch(
    batch: list[OutboxMessage], *, bearers: dict[int, str] | None = None, sent: list[Sent] | None = None
) -> list[Sent]:
    """Send the messages one after the other. Stop after the first that meets
    trouble, and before a send that could outlive the lease (the messages not
    sent are given back by `record`). Pub/Sub messages (one per stream, so one
    per ordering key) are all handed to the publisher first and their answers
    awaited in turn; one given back after trouble may be published again later,
    with the same messageId. With `bearers` (a token per connection), the sends
    touch no database (`Flight`); the outcomes are added to `sent`, also when a
    token is refused (`intent.TokenRejected`, raised)."""
    sent = [] if sent is None else sent
    started_at, clock_at = timezone.now(), time.monotonic()
    on_bus = {
        message.pk: pubsub.start(message) for message in batch if message.connection.kind == ConnectionKind.PUBSUB
    }
    for message in batch:
        lease_until = message.lease_until or timezone.now()
        if sent and message.pk not in on_bus and timezone.now() + claims.send_budget(message) > lease_until:
            break  # (a bus's message is already published: its answer is awaited)
        started = timezone.now()
        clock = time.monotonic()
        if message.pk in on_bus:
            started, clock = started_at, clock_at
            result = from_bus(pubsub.finish(on_bus[message.pk]))
        else:
            bearer = bearers.get(message.connection_id) if bearers else None
            result = send(message, check_first=message.ambiguous, bearer=bearer)
        sent.append(Sent(message, result, started, int((time.monotonic() - clock) * 1000)))
        if result.outcome in TROUBLE:
            break
    return sent


class Flight:
    """A batch on its way: sent by the process's sender thread when its sends
    need no database (logs to an Intent platform, none to read back first, a
    token at hand), so that the batch before is recorded meanwhile; else sent
    here when it lands, after that record. `land` returns its outcomes."""

    def __init__(self, batch: list[OutboxMessage]) -> None:
        self.batch = batch
        self.sent: list[Sent] = []
        self.future: Future[None] | None = None
        self.refused = False  # the sender thread's token was refused midway

    @classmethod
    def launch(cls, batch: list[OutboxMessage], *, threaded: bool) -> Flight:
        flight = cls(batch)
        bearers = _bearers(batch) if threaded else None
        if bearers is not None:
            flight.future = _sender().submit(flight._send, bearers)
        return flight

    def _send(self, bearers: dict[int, str]) -> None:
        try:
            send_batch(self.batch, bearers=bearers, sent=self.sent)
        except intent.TokenRejected:
            self.refused = True

    def land(self) -> list[Sent]:
        """Once: the outcomes of the batch's sends."""
        if self.future is None:
            return send_batch(self.batch, sent=self.sent)
        self.future.result()
        if self.refused:
            # The token expired or was revoked midway: the rest here, where it is renewed.
            self.refused = False
            send_batch(self.batch[len(self.sent) :], sent=self.sent)
        return self.sent


def records_while_sending() -> bool:
    """Whether a batch is recorded while the next is sent: on PostgreSQL. On
    SQLite (one writer: the embedded default, whose sandbox writes to the same
    file) the record would only wait for the sandbox's write, and the test
    suite's live server shares the test's connection: one after the other."""
    return transaction.get_connection().features.has_select_for_update


PLAIN_LOGS = (MessageKind.INTERVENTION_LOG, MessageKind.QUOTATION_LOG)


def plain_logs(batch: list[OutboxMessage]) -> bool:
    """Whether every message is a log to an Intent platform that needs no
    read-back: sent with a token, and nothing else (a bus's publishes are all
    in flight at once already)."""
    return all(
        message.connection.kind == ConnectionKind.INTENT and message.kind in PLAIN_LOGS and not message.ambiguous
        for message in batch
    )


def _bearers(batch: list[OutboxMessage]) -> dict[int, str] | None:
    """A token for each connection of the batch, when its messages are
    `plain_logs`; None otherwise (or when a token cannot be had now: the sends
    here say why, message by message)."""
    if not plain_logs(batch):
        return None
    bearers = {}
    try:
        for message in batch:
            if message.connection_id not in bearers:
                bearers[message.connection_id] = intent.client_for(message.connection).token()
    except intent.PlatformError:
        return None
    return bearers


_sender_pool: tuple[int, ThreadPoolExecutor] | None = None
SWITCH_INTERVAL = 0.0005  # seconds


def _sender() -> ThreadPoolExecutor:
    """The process's sender thread (one: a request in flight at a time), made
    again in a forked child (Celery's pool)."""
    global _sender_pool
    if _sender_pool is None or _sender_pool[0] != os.getpid():
        _sender_pool = (os.getpid(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="relay-sender"))
        # The platform's answer is taken up at once: with Python's default (5 ms)
        # the sender waited for the recording thread to let go of the interpreter.
        sys.setswitchinterval(SWITCH_INTERVAL)
    return _sender_pool[1]


@dataclass
class Finished:
    following: list[OutboxMessage] = field(default_factory=list)  # claimed, to send now in the same task
    queue: list[int] = field(default_factory=list)  # due now, for other tasks
    handoff: list[int] = field(default_factory=list)  # due now, for one task together


def finish(
    message: OutboxMessage, result: Result, *, started: datetime, duration_ms: int, take_next: bool = False
) -> Finished:
    """Record one message's outcome (only while holding the lease)."""
    return record([Sent(message, result, started, duration_ms)], claim_next=take_next)


def _changes(sent: Sent, now: datetime) -> dict[str, Any]:
    result = sent.result
    changes: dict[str, Any] = {
        "lease_until": None,
        "last_status_code": result.status_code,
        "last_error": result.error,
        "last_response_body": intent.bounded(result.body),
        "last_reasons": list(result.reasons),
    }
    if result.outcome in DELIVERED:
        return changes | {
            "status": MessageStatus.DELIVERED,
            "delivered_at": now,
            "ambiguous": False,
            "last_error": "",
            "last_response_body": "",
            "last_reasons": [],
        }
    if result.outcome == Outcome.REJECTED:
        return changes | {"status": MessageStatus.REJECTED, "rejected_at": now, "ambiguous": False}
    wait = backoff(sent.message.attempts)
    if result.retry_after:
        wait = max(wait, timedelta(seconds=result.retry_after))
    # The task has run: nothing is queued any more, so the sweep queues the
    # retry as soon as it is due (not `requeue_after()` later).
    return changes | {
        "next_attempt_at": now + wait,
        "ambiguous": result.outcome == Outcome.AMBIGUOUS,
        "queued_at": None,
    }


DELIVERED = (Outcome.DELIVERED, Outcome.ALREADY_THERE)


def record(
    sent: list[Sent],
    *,
    released: Sequence[OutboxMessage] = (),
    claim_next: bool = False,
    wait: timedelta = timedelta(),
) -> Finished:
    """Record the outcomes of a batch in one transaction, for the messages whose
    lease this worker still holds; give back `released` (claimed, not sent: the
    platform was in trouble) to wait as long as the trouble's retry; and when
    `claim_next`, claim the next batch in the same transaction, leased `wait`
    longer (the time the batch in flight may take before its turn comes)."""
    now = timezone.now()
    rejected: list[int] = []
    recovered = 0
    following: list[OutboxMessage] = []
    with transaction.atomic():
        ids = [item.message.pk for item in sent]
        held = set(
            OutboxMessage.objects.filter(pk__in=ids, lease_until=sent[0].message.lease_until)
            .select_for_update()
            .values_list("pk", flat=True)
        )
        delivered = [item for item in sent if item.message.pk in held and item.result.outcome in DELIVERED]
        if delivered:
            # The common case, in one statement: the same changes for every delivered message.
            OutboxMessage.objects.filter(pk__in=[item.message.pk for item in delivered]).update(
                **_changes(delivered[0], now)
            )
        changes = {item.message.pk: _changes(item, now) for item in sent if item.result.outcome not in DELIVERED}
        for message_id, change in changes.items():
            if message_id in held:
                OutboxMessage.objects.filter(pk=message_id).update(**change)
        DeliveryAttempt.objects.bulk_create(
            DeliveryAttempt(
                message=item.message,
                started_at=item.started,
                duration_ms=item.duration_ms,
                outcome=item.result.outcome,
                status_code=item.result.status_code,
                error=item.result.error[:5000],
                response_body=intent.bounded(item.result.body),
                worker=WORKER,
                bus_message_id=item.result.bus_id,
            )
            for item in sent
        )
        trouble = sent[-1].result.outcome in TROUBLE
        if released:
            _release(released, changes[sent[-1].message.pk]["next_attempt_at"] if trouble else now)
        for connection in {item.message.connection_id: item.message.connection for item in delivered}.values():
            if connection.failing_since is not None:
                recovered += retry_now_after_recovery(connection, now)
        for item in sent:
            if item.message.pk in held and item.result.outcome in TROUBLE and item.result.status_code != 429:
                Connection.objects.filter(pk=item.message.connection_id, failing_since__isnull=True).update(
                    failing_since=now
                )
        for item in delivered:
            record_breach_if_late(item.message, delivered_at=now)
        rejected = [
            item.message.pk for item in sent if item.message.pk in held and item.result.outcome == Outcome.REJECTED
        ]
        if claim_next and delivered and not released:
            # The streams just delivered first (cheap to find), then others.
            following = claims.successors(now, [item.message for item in delivered], claims.batch_size())
            following += claims.more_due(now, claims.batch_size() - len(following), taken=following)
            following = claims.take(following, now, wait=wait)
    for message_id in set(ids) - held:
        logger.warning("Lease of message %s expired before its outcome was recorded.", message_id)
    for message_id in rejected:
        notify.message_rejected(message_id)
    if recovered:
        return Finished(following, sweep())
    if released and not trouble:  # out of time, not of luck: other tasks take them now
        return Finished(following, sweep())
    if following or not delivered:
        return Finished(following)
    # Not going on (the task's share is done): the following messages of the
    # streams just delivered go to one other task, together (a task each cost
    # a broker round trip each, and most of them found their message already
    # taken by another's batch: 12 % of the workers' time during a drain).
    return Finished([], handoff=claims.next_due_of([item.message for item in delivered]))


def _release(messages: Sequence[OutboxMessage], due_at: datetime) -> None:
    """Give back claimed messages that were not sent, as they were before the
    claim, due at `due_at`: as late as the message that met trouble (the
    platform's recovery brings them back at once), else now."""
    for message in messages:
        OutboxMessage.objects.filter(pk=message.pk, lease_until=message.lease_until).update(
            lease_until=None,
            attempts=F("attempts") - 1,
            ambiguous=message.ambiguous,
            next_attempt_at=due_at,
            queued_at=None,
        )


def retry_now_after_recovery(connection: Connection, now: datetime) -> int:
    """The platform answers again: its messages waiting out a backoff (up to 10
    minutes) are due now rather than later, since the 15 minutes run for them
    too. Those the platform itself asked to slow down (429) keep their wait.
    Inside the transaction that records the delivery; returns how many."""
    if not Connection.objects.filter(pk=connection.pk, failing_since__isnull=False).update(failing_since=None):
        return 0  # another worker saw the recovery first
    connection.failing_since = None
    waiting = OutboxMessage.objects.filter(
        connection_id=connection.pk, status=MessageStatus.PENDING, next_attempt_at__gt=now
    ).exclude(last_status_code=429)
    count = waiting.update(next_attempt_at=now)
    if count:
        logger.info("Connection %s answers again: %s waiting message(s) retried now.", connection.pk, count)
    return count


def record_breach_if_late(message: OutboxMessage, *, delivered_at: datetime) -> None:
    delay = delivered_at - message.created_at
    if delay <= SHARING_LIMIT:
        return
    Breach.objects.update_or_create(
        message=message,
        defaults={
            "connection_id": message.connection_id,
            "changed_at": message.created_at,
            "delivered_at": delivered_at,
            "delay_seconds": int(delay.total_seconds()),
        },
    )


def probe_failing(now: datetime) -> list[int]:
    """For each connection that is failing, make its first waiting message due
    now: one try tells whether the platform answers again, and its first
    success brings every waiting message back at once
    (`retry_now_after_recovery`), rather than waiting for a backoff of up to 10
    minutes to run out. Those the platform slowed down (429) keep their wait.
    A connection with a message due already keeps it as its probe. Returns the
    probes (the sweep queues them with the rest of what is due; the probes
    between sweeps, `tasks.probe_outbox`, queue them themselves)."""
    probed = []
    failing = Connection.objects.filter(failing_since__isnull=False, enabled=True, kind__in=DELIVERING_KINDS)
    for connection_id in failing.values_list("pk", flat=True):
        due = (
            claims.due_messages(now)
            .filter(connection_id=connection_id)
            .order_by("next_attempt_at", "pk")
            .values_list("pk")
        )
        if (already := due.first()) is not None:
            # A message is due already (its backoff has run out, or an earlier
            # probe not tried yet): it is the probe.
            probed.append(already[0])
            continue
        waiting = OutboxMessage.objects.filter(connection_id=connection_id, status=MessageStatus.PENDING)
        first = (
            waiting.filter(next_attempt_at__gt=now)
            .exclude(last_status_code=429)
            .filter(~claims.earlier_undelivered())
            .order_by("next_attempt_at", "pk")
            .values_list("pk", flat=True)
            .first()
        )
        if first is not None and OutboxMessage.objects.filter(pk=first).update(next_attempt_at=now):
            probed.append(first)
    return probed


def mark_queued(message_ids: list[int]) -> None:
    """These messages have a task on its way (the sweep leaves them alone a while)."""
    OutboxMessage.objects.filter(pk__in=message_ids).update(queued_at=timezone.now())


def failing_connections() -> bool:
    return Connection.objects.filter(failing_since__isnull=False, enabled=True, kind__in=DELIVERING_KINDS).exists()


def sweep(*, batch: int = 1000) -> list[int]:
    """What to queue for the messages that are due and not recently queued: one
    message in `RELAY_BATCH`, marked queued, for the caller to queue. Each such
    task claims the others with its own (they are not "fresh"), and goes on
    while messages are due; a task per message would mostly find its message
    sent by another's batch, and cost a broker round trip for nothing (half
    the workers' time while a backlog of 10,000 drained). What no task took is
    swept again. A failing connection gets one message due now, as a probe."""
    now = timezone.now()
    probe_failing(now)
    ids = list(
        claims.due_messages(now)
        .filter(Q(queued_at__isnull=True) | Q(queued_at__lt=now - requeue_after()))
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:batch]
    )
    kicks = ids[:: claims.batch_size()]
    if kicks:
        OutboxMessage.objects.filter(pk__in=kicks).update(queued_at=now)
    return kicks
