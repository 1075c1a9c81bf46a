"""Delivering outbox messages: claim, send outside any transaction, record.

A message is claimed with a lease (`lease_until`): while the lease runs no
other worker takes it; a worker killed mid-delivery simply lets it expire.
Because a claim may have sent the log before dying, every claim after the
first starts by reading the operation back, and skips the send when the
platform already has the log (the platform has no idempotency key).
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from portal.limits import SHARING_LIMIT
from portal.relay import intent, mapping, notify
from portal.relay.models import Breach, Connection, DeliveryAttempt, MessageKind, MessageStatus, OutboxMessage

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


def lease_for(connection: Connection) -> timedelta:
    if settings.RELAY_LEASE_SECONDS:
        return timedelta(seconds=settings.RELAY_LEASE_SECONDS)
    # Long enough for a read-back, a token renewal and the send, each with its timeout.
    return timedelta(seconds=connection.timeout_seconds * 4 + 30)


def requeue_after() -> timedelta:
    """A queued task not run by then was lost by the broker: queue it again."""
    return timedelta(seconds=settings.RELAY_REQUEUE_SECONDS)


def earlier_undelivered() -> Exists:
    return Exists(
        OutboxMessage.objects.filter(
            order=OuterRef("order"),
            sequence__lt=OuterRef("sequence"),
            status__in=[MessageStatus.PENDING, MessageStatus.REJECTED],
        )
    )


def due_messages(now: datetime | None = None):
    """Messages that can be sent now: pending, due, unclaimed, first of their order."""
    now = now or timezone.now()
    return (
        OutboxMessage.objects.filter(
            status=MessageStatus.PENDING,
            next_attempt_at__lte=now,
            connection__enabled=True,
            connection__kind="intent",
        )
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .filter(~earlier_undelivered())
    )


def claim(message_id: int) -> OutboxMessage | None:
    """Take the message for this worker, or None if it is not ours to send now."""
    now = timezone.now()
    with transaction.atomic():
        message = _lock_due(due_messages(now).filter(pk=message_id))
        return _take(message, now) if message is not None else None


def _lock_due(messages) -> OutboxMessage | None:
    return (
        messages.select_related("connection")  # not the order: the payload has what the send needs
        .select_for_update(skip_locked=True, of=("self",))
        .first()
    )


def _take(message: OutboxMessage, now: datetime) -> OutboxMessage:
    """Set the lease on a locked, due message (inside the caller's transaction)."""
    # Set by an earlier claim whose outcome is unknown (a timeout, or a
    # worker that died before recording anything).
    was_ambiguous = message.ambiguous
    message.lease_until = now + lease_for(message.connection)
    message.attempts += 1
    # Until we know better, a claimed message may have reached the platform.
    OutboxMessage.objects.filter(pk=message.pk).update(
        lease_until=message.lease_until, attempts=F("attempts") + 1, ambiguous=True
    )
    message.ambiguous = was_ambiguous
    return message


@dataclass
class Result:
    outcome: str
    status_code: int | None = None
    error: str = ""
    retry_after: float | None = None
    body: str = ""  # the platform's answer to a failed attempt (8 KB at most)
    reasons: tuple[str, ...] = ()  # the reasons read from it (intent.read_refusal)


def already_on_platform(client: intent.IntentClient, message: OutboxMessage) -> bool:
    payload = message.payload
    try:
        operation = client.get_operation(payload["reference"], payload["contractReference"])
    except intent.NotFound:
        return False
    return any(mapping.same_log(payload, log) for log in operation.get("logs") or [])


# The multipart fields of a document message (the rest of its payload says which file).
DOCUMENT_FIELDS = (
    "title",
    "description",
    "elementType",
    "elementReference",
    "intent_contractReference",
    "intent_documentType",
    "intent_documentFamily",
    "intent_creationDate",
)


def document_fields(payload: dict) -> dict[str, str]:
    return {name: str(payload[name]) for name in DOCUMENT_FIELDS if payload.get(name) is not None}


def document_file(message: OutboxMessage) -> tuple[str, bytes, str]:
    """(file name, bytes, MIME type) of a document message, read from the storage
    (the file the app named in `message.document` when it recorded the message)."""
    meta = message.payload.get("document") or {}
    if not message.document:
        raise intent.Rejection("Le document à transmettre n'existe plus.")
    try:
        with message.document.open("rb") as stream:
            content = stream.read()
    except FileNotFoundError as error:
        raise intent.Rejection(
            f"Le fichier du document est introuvable dans le stockage : {message.document.name}"
        ) from error
    except OSError as error:  # the storage (a network file system, object storage) did not answer
        raise intent.TransientError(f"Lecture du document impossible : {error!r}") from error
    if hashlib.sha256(content).hexdigest() != meta.get("sha256"):
        raise intent.Rejection("Le fichier du document a changé depuis son ajout : il n'est pas transmis.")
    return (
        meta.get("fileName") or (message.document.name or "document.pdf").rsplit("/", 1)[-1],
        content,
        meta.get("mime") or "application/pdf",
    )


# What identifies a document sent, and where a listing may show each of those
# fields: under the platform's own names or under the multipart field names it
# was sent with (`intent_creationDate`...); both shapes exist.
LISTED_AS = {
    "elementType": ("elementType", "intent_elementType"),
    "elementReference": ("elementReference", "intent_elementReference"),
    "intent_contractReference": ("contractReference", "intent_contractReference"),
    "intent_documentType": ("documentType", "intent_documentType"),
    "intent_documentFamily": ("documentFamily", "intent_documentFamily"),
}
CREATION_DATE_AS = ("creationDate", "intent_creationDate")


def _listed(found: dict, names: tuple[str, ...]) -> object:
    """The first of `names` the listing gives a value for, else None."""
    return next((found[name] for name in names if found.get(name) not in (None, "")), None)


def same_document(sent: dict, found: dict) -> bool:
    """Whether a document listed by the platform is the one we sent (after an
    ambiguous failure), whichever names the listing uses: same title and creation
    date; same element, contract, type and family when listed; same size and
    SHA-256 when listed."""
    if sent.get("title") != found.get("title"):
        return False
    for name, listed_as in LISTED_AS.items():
        listed = _listed(found, listed_as)
        if listed is not None and sent.get(name) is not None and str(listed) != str(sent[name]):
            return False
    meta = sent.get("document") or {}
    for name in ("size", "sha256"):
        listed, known = found.get(name), meta.get(name)
        if listed not in (None, "") and known not in (None, "") and str(listed).lower() != str(known).lower():
            return False
    try:
        return datetime.fromisoformat(str(sent["intent_creationDate"])) == datetime.fromisoformat(
            str(_listed(found, CREATION_DATE_AS))
        )
    except (KeyError, ValueError, TypeError):
        return False


def document_already_on_platform(client: intent.IntentClient, message: OutboxMessage) -> bool:
    payload = message.payload
    try:
        listing = client.list_documents(payload["elementType"], payload["elementReference"])
    except intent.NotFound:
        return False
    if isinstance(listing, dict):
        listing = (listing.get("_embedded") or {}).get("documents") or []
    return any(isinstance(found, dict) and same_document(payload, found) for found in listing or [])


def send(message: OutboxMessage, *, check_first: bool) -> Result:
    """Call the platform. No database transaction is open here."""
    client = intent.client_for(message.connection)
    try:
        if check_first and message.kind == MessageKind.INTERVENTION_LOG:
            try:
                if already_on_platform(client, message):
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
                if document_already_on_platform(client, message):
                    return Result(Outcome.ALREADY_THERE)
            except intent.TransientError as error:
                raise intent.AmbiguousError(
                    error.message, status_code=error.status_code, body=error.body, reasons=error.reasons
                ) from error
        if message.kind == MessageKind.INTERVENTION_LOG:
            client.post_log(message.payload)
        elif message.kind == MessageKind.QUOTATION_LOG:
            client.post_log(message.payload, element="quotations")
        elif message.kind == MessageKind.DOCUMENT:
            file_name, content, mime = document_file(message)
            client.upload_document(document_fields(message.payload), filename=file_name, content=content, mime=mime)
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


# A task that has delivered a message goes on with the next one of the same
# order (claimed in the transaction that records the outcome): one database
# round trip and no broker hop per message. The chain is bounded so that one
# busy order cannot hold a worker for long.
MAX_CHAIN = 50


@dataclass
class Delivery:
    """What a delivery task did: the first message's outcome (None when it was
    not ours to send) and the messages it found due that a task should take."""

    outcome: str | None
    queue: list[int] = field(default_factory=list)


def deliver(message_id: int) -> Delivery:
    """Claim, send and record one message, then the following ones of its order
    while they are due. The outcome is None when the message was not ours to
    send (delivered, claimed elsewhere, not due, or waiting for an earlier
    message of its order)."""
    message = claim(message_id)
    if message is None:
        return Delivery(None)
    first_outcome = None
    queue: list[int] = []
    for remaining in range(MAX_CHAIN - 1, -1, -1):
        started = timezone.now()
        clock = time.monotonic()
        result = send(message, check_first=message.ambiguous)
        duration_ms = int((time.monotonic() - clock) * 1000)
        finished = finish(message, result, started=started, duration_ms=duration_ms, take_next=remaining > 0)
        first_outcome = first_outcome or result.outcome
        queue += finished.queue
        if finished.following is None:
            break
        message = finished.following
    return Delivery(first_outcome, queue)


@dataclass
class Finished:
    following: OutboxMessage | None = None  # claimed, to send now in the same task
    queue: list[int] = field(default_factory=list)  # due now, for other tasks


def finish(
    message: OutboxMessage, result: Result, *, started: datetime, duration_ms: int, take_next: bool = False
) -> Finished:
    """Record the outcome (only while holding the lease). When the message was
    delivered and `take_next`, claim the order's next message in the same
    transaction and return it as `following`; otherwise return it to queue."""
    now = timezone.now()
    body = intent.bounded(result.body)
    changes: dict = {
        "lease_until": None,
        "last_status_code": result.status_code,
        "last_error": result.error,
        "last_response_body": body,
        "last_reasons": list(result.reasons),
    }
    delivered = result.outcome in (Outcome.DELIVERED, Outcome.ALREADY_THERE)
    if delivered:
        changes |= {
            "status": MessageStatus.DELIVERED,
            "delivered_at": now,
            "ambiguous": False,
            "last_error": "",
            "last_response_body": "",
            "last_reasons": [],
        }
    elif result.outcome == Outcome.REJECTED:
        changes |= {"status": MessageStatus.REJECTED, "rejected_at": now, "ambiguous": False}
    else:
        wait = backoff(message.attempts)
        if result.retry_after:
            wait = max(wait, timedelta(seconds=result.retry_after))
        # The task has run: nothing is queued any more, so the sweep queues the
        # retry as soon as it is due (not `requeue_after()` later).
        changes |= {
            "next_attempt_at": now + wait,
            "ambiguous": result.outcome == Outcome.AMBIGUOUS,
            "queued_at": None,
        }
    following = None
    recovered = 0
    with transaction.atomic():
        # Only the holder of the lease records an outcome.
        updated = OutboxMessage.objects.filter(pk=message.pk, lease_until=message.lease_until).update(**changes)
        if updated and delivered and message.connection.failing_since is not None:
            recovered = retry_now_after_recovery(message.connection, now)
        elif updated and result.outcome in (Outcome.RETRY, Outcome.AMBIGUOUS) and result.status_code != 429:
            Connection.objects.filter(pk=message.connection_id, failing_since__isnull=True).update(failing_since=now)
        DeliveryAttempt.objects.create(
            message=message,
            started_at=started,
            duration_ms=duration_ms,
            outcome=result.outcome,
            status_code=result.status_code,
            error=result.error[:5000],
            response_body=body,
            worker=WORKER,
        )
        if updated and delivered:
            record_breach_if_late(message, delivered_at=now)
            if take_next:
                following = _take_following(message, now)
    if not updated:
        logger.warning("Lease of message %s expired before its outcome was recorded.", message.pk)
        return Finished()
    if recovered:
        return Finished(following, sweep())
    if delivered and following is None:
        return Finished(None, [next_id] if (next_id := next_due(message)) else [])
    if result.outcome == Outcome.REJECTED:
        notify.message_rejected(message.pk)
    return Finished(following)


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


def _take_following(message: OutboxMessage, now: datetime) -> OutboxMessage | None:
    """Claim the order's next message if it is due (inside the transaction that
    recorded `message` delivered). `message` was the first undelivered one of its
    order, so the next undelivered one is now first: no need for the general
    (and costlier) `due_messages` query."""
    candidate = (
        OutboxMessage.objects.filter(
            order_id=message.order_id,
            sequence__gt=message.sequence,
            status__in=[MessageStatus.PENDING, MessageStatus.REJECTED],
        )
        .select_related("connection")
        .select_for_update(of=("self",))
        .order_by("sequence")
        .first()
    )
    if (
        candidate is None
        or candidate.status != MessageStatus.PENDING
        or candidate.next_attempt_at > now
        or (candidate.lease_until is not None and candidate.lease_until >= now)
        or not candidate.connection.delivers
    ):
        return None
    return _take(candidate, now)


def next_due(message: OutboxMessage) -> int | None:
    """The next message of the same order, which may go now (marked queued: the caller queues it)."""
    following = (
        OutboxMessage.objects.filter(
            order_id=message.order_id, status=MessageStatus.PENDING, sequence__gt=message.sequence
        )
        .order_by("sequence")
        .values_list("pk", flat=True)
        .first()
    )
    if following is not None:
        OutboxMessage.objects.filter(pk=following).update(queued_at=timezone.now())
    return following


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


def sweep(*, batch: int = 1000) -> list[int]:
    """Every message that is due and not recently queued, marked queued: the
    caller queues them."""
    now = timezone.now()
    ids = list(
        due_messages(now)
        .filter(Q(queued_at__isnull=True) | Q(queued_at__lt=now - requeue_after()))
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:batch]
    )
    if ids:
        OutboxMessage.objects.filter(pk__in=ids).update(queued_at=now)
    return ids
