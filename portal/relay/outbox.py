"""Recording what to tell the platform, inside the transaction of the change.

The relay takes what it sends as data: the app that made the change (orders,
later quotes) builds the payload and calls `record(...)` inside its
transaction; the message is stored as the next of its order, and a delivery is
asked for once the transaction commits. If the broker is unreachable at that
moment nothing is lost: the periodic sweep finds the message in the database.

The relay imports no module of the apps above it. What it needs from them (a
rejected payload rebuilt from the corrected data) they register here when
Django starts (`AppConfig.ready`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Count, Max, Q
from django.utils import timezone

from portal.relay import tasks
from portal.relay.models import UNDELIVERED, Connection, ConnectionKind, MessageKind, MessageStatus, OutboxMessage

# kind -> function(message, logged_at) -> the payload to send now, rebuilt from the data as it is.
Rebuilder = Callable[[OutboxMessage, datetime], dict[str, Any] | None]
_rebuilders: dict[str, Rebuilder] = {}


def register_rebuilder(kind: MessageKind, rebuild: Rebuilder) -> None:
    _rebuilders[kind] = rebuild


def rebuilt_payload(message: OutboxMessage, *, logged_at: datetime) -> dict[str, Any]:
    """The payload to resend: rebuilt by the app that owns the message's kind, else unchanged."""
    rebuild = _rebuilders.get(message.kind)
    payload = rebuild(message, logged_at) if rebuild is not None else None
    return payload if payload is not None else message.payload


def connection_for_client(client_id: int) -> Connection | None:
    """The client's platform connection, if its changes are relayed at all."""
    connection = Connection.objects.filter(client_id=client_id).first()
    if connection is None or connection.kind == ConnectionKind.NONE:
        return None
    return connection


def order_stream(order_id: int) -> str:
    return f"order:{order_id}"


def record(
    connection: Connection,
    *,
    kind: MessageKind,
    payload: dict[str, Any],
    order_id: int | None = None,
    stream: str | None = None,
    changed_at: datetime | None = None,
    event_id: int | None = None,
    document_name: str = "",
) -> OutboxMessage:
    """Store `payload` as the next message of its stream to `connection`, and ask
    for its delivery when the transaction commits. Call it inside the transaction
    that made the change, holding a lock on what the stream is about (the order's
    row), so that two changes of one stream never take the same place.

    `stream` is the ordering key: its messages reach the platform strictly in
    the order recorded. It defaults to the order's ("order:<order_id>"); what
    belongs to no order names its own ("quote:<id>"). `order_id` also shows the
    message on that order's pages. `changed_at` (the change, default now) starts
    the 15 minutes; `document_name` is a file in the media storage to upload."""
    if stream is None:
        if order_id is None:
            raise ValueError("record() needs an order_id or a stream")
        stream = order_stream(order_id)
    now = timezone.now()
    place = OutboxMessage.objects.filter(stream=stream).aggregate(
        last=Max("sequence"), waiting=Count("pk", filter=Q(status__in=UNDELIVERED))
    )
    last = place["last"] or 0
    # Behind an undelivered message of its stream, it cannot go now: the task
    # that delivers that one goes on with it (or hands it over), and the sweep
    # covers the rest. A task queued for it now would only find it waiting (a
    # task per change made during an outage: thousands, each a broker round
    # trip and a claim for nothing).
    queue_now = connection.delivers and not place["waiting"]
    message = OutboxMessage.objects.create(
        connection=connection,
        stream=stream,
        order_id=order_id,
        event_id=event_id,
        sequence=last + 1,
        kind=kind,
        payload=payload,
        document=document_name,
        created_at=changed_at or now,
        next_attempt_at=now,
        queued_at=now if queue_now else None,
    )
    if queue_now:
        transaction.on_commit(lambda: tasks.queue_delivery(message.pk))
    return message


@dataclass(frozen=True)
class Logged:
    """One message of an order's history, as a change's payload is built from it."""

    pk: int
    sequence: int
    cancelled: bool
    status: str
    event: str
    event_date: str


@dataclass(frozen=True)
class History:
    """An order's messages of one kind, in sequence order, read once per change:
    what `share_event` asks of them (the last code, the eventDates that are
    taken, those of the same key) is worked out here rather than asked of the
    database three times (an order has tens of messages, not thousands)."""

    logged: tuple[Logged, ...]

    def previous_code(self, *, before_sequence: int | None = None) -> tuple[str, str] | None:
        """The (status, event) of the last message (before `before_sequence`), abandoned ones included."""
        earlier = [item for item in self.logged if before_sequence is None or item.sequence < before_sequence]
        return (earlier[-1].status, earlier[-1].event) if earlier else None

    def live(self) -> list[Logged]:
        """Those that may have reached the platform (abandoned ones aside)."""
        return [item for item in self.logged if not item.cancelled]

    def codes_and_dates(self) -> list[tuple[str, str, str]]:
        return [(item.status, item.event, item.event_date) for item in self.live()]

    def with_key(self, status: str, event: str, event_date: str) -> list[int]:
        """The ids of those with this (status, event, eventDate), in sequence order."""
        return [
            item.pk for item in self.live() if (item.status, item.event, item.event_date) == (status, event, event_date)
        ]

    def event_dates_with_code(self, status: str, event: str) -> list[str]:
        return [
            item.event_date for item in self.live() if (item.status, item.event) == (status, event) and item.event_date
        ]


def history(order_id: int, kind: MessageKind) -> History:
    """The order's messages of `kind`, in one query (see `History`)."""
    rows = (
        OutboxMessage.objects.filter(order_id=order_id, kind=kind)
        .order_by("sequence")
        .values_list("pk", "sequence", "status", "payload__status", "payload__event", "payload__eventDate")
    )
    return History(
        tuple(
            Logged(pk, sequence, status == MessageStatus.CANCELLED, str(code or ""), str(event or ""), str(date or ""))
            for pk, sequence, status, code, event, date in rows
        )
    )


def payload_of(message_id: int) -> dict[str, Any]:
    return OutboxMessage.objects.values_list("payload", flat=True).get(pk=message_id)


def last_message_id(order_id: int) -> int | None:
    return (
        OutboxMessage.objects.filter(stream=order_stream(order_id))
        .order_by("-sequence")
        .values_list("pk", flat=True)
        .first()
    )


def amend_unsent(message_id: int, payload: dict[str, Any]) -> bool:
    """Replace the payload of a message no worker has taken yet (guarded: of an
    amendment and a claim, exactly one wins). False when it is already taken."""
    return bool(
        OutboxMessage.objects.filter(
            pk=message_id, status=MessageStatus.PENDING, attempts=0, lease_until__isnull=True
        ).update(payload=payload)
    )
