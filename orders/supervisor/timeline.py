"""An order's timeline for the supervisor: its events merged with what the relay
did with each of them (portal.relay: OutboxMessage, DeliveryAttempt,
MessageAudit). For every change: when it happened, when it reached the
client's platform and how long it took, or that it still waits (and for
what), or that the platform refused it, with its message.

Built with a fixed number of queries (events, messages, their attempts and
their audits, the connection), whatever the length of the order's history.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Prefetch

from orders.durations import duration
from orders.models import Order, OrderEvent, UnappliedAction
from orders.sharing import FROM_PLATFORM
from portal.limits import SHARING_LIMIT
from portal.models import User
from portal.relay.mapping import LABEL_SEPARATOR
from portal.relay.models import (
    Connection,
    ConnectionKind,
    DeliveryAttempt,
    MessageAudit,
    MessageKind,
    MessageStatus,
    OutboxMessage,
)


@dataclass(frozen=True)
class Transmission:
    """One message to the platform and what became of it."""

    message: OutboxMessage
    now: datetime
    # The rejected message of the same order that this one waits behind.
    blocked_by: OutboxMessage | None = None
    attempts: tuple[DeliveryAttempt, ...] = ()
    audits: tuple[MessageAudit, ...] = ()

    @property
    def status(self) -> str:
        return self.message.status

    @property
    def took(self) -> timedelta | None:
        if self.message.delivered_at is None:
            return None
        return self.message.delivered_at - self.message.created_at

    @property
    def took_text(self) -> str:
        return duration(self.took, seconds=True) if self.took is not None else ""

    @property
    def waiting(self) -> timedelta:
        return self.now - self.message.created_at

    @property
    def waiting_text(self) -> str:
        return duration(self.waiting, seconds=True)

    @property
    def late(self) -> bool:
        """Past the 15 minutes the contract allows (delivered late, or still waiting past them)."""
        if self.status == MessageStatus.DELIVERED:
            return self.took is not None and self.took > SHARING_LIMIT
        return self.status in (MessageStatus.PENDING, MessageStatus.REJECTED) and self.waiting > SHARING_LIMIT

    @property
    def rebuilt_on_resend(self) -> bool:
        """A log is rebuilt from the order as it is when resent; a document is sent as it was kept."""
        return self.message.kind != MessageKind.DOCUMENT and self.message.event_id is not None


# Why an event has no message.
NO_PLATFORM = "no_platform"  # the client has no connection (or is served through its platform's screens)
FROM_THE_PLATFORM = "from_platform"  # the platform told us: nothing to echo back
NOT_SHARED = "not_shared"  # e.g. recorded before the connection existed
# The contractor never speaks before acknowledging (docs/platform.md): what is
# done before travels with the acknowledgement's log.
UNTIL_ACKNOWLEDGEMENT = "until_acknowledgement"
WITH_ACKNOWLEDGEMENT = "with_acknowledgement"
MERGED = "merged"  # carried by another log of the same second (docs/platform.md)


@dataclass(frozen=True)
class Entry:
    at: datetime
    label: str
    actor: User | None = None
    event: OrderEvent | None = None
    transmissions: tuple[Transmission, ...] = ()
    silence: str = ""  # why there is no transmission (one of the constants above)
    # A technician's action that was not applied (orders.conflicts): at the time they took it.
    unapplied: UnappliedAction | None = None


@dataclass(frozen=True)
class Timeline:
    entries: list[Entry] = field(default_factory=list)
    delivered: int = 0
    pending: int = 0
    rejected: int = 0
    cancelled: int = 0
    connection: Connection | None = None

    @property
    def shared(self) -> bool:
        return self.connection is not None and self.connection.kind != ConnectionKind.NONE


def _messages(order: Order) -> list[OutboxMessage]:
    return list(
        OutboxMessage.objects.filter(order=order)
        .order_by("sequence")
        .prefetch_related(
            Prefetch("attempts_log", queryset=DeliveryAttempt.objects.order_by("started_at", "pk")),
            Prefetch("audits", queryset=MessageAudit.objects.select_related("actor").order_by("at", "pk")),
        )
        .select_related("resolved_by")
    )


def _transmissions(messages: list[OutboxMessage], now: datetime) -> list[Transmission]:
    """In sequence order: a message that waits behind a rejected one says which."""
    result = []
    blocking: OutboxMessage | None = None
    for message in messages:
        blocked_by = blocking if message.status == MessageStatus.PENDING else None
        result.append(
            Transmission(
                message=message,
                now=now,
                blocked_by=blocked_by,
                attempts=tuple(message.attempts_log.all()),
                audits=tuple(message.audits.all()),
            )
        )
        if blocking is None and message.status == MessageStatus.REJECTED:
            blocking = message
    return result


def _silence(
    order: Order,
    event: OrderEvent,
    connection: Connection | None,
    *,
    acknowledgement: OrderEvent | None,
    carried_labels: set[str],
) -> str:
    if order.origin == "platform" and event.actor_id is None and event.kind in FROM_PLATFORM:
        return FROM_THE_PLATFORM
    if connection is None or connection.kind == ConnectionKind.NONE:
        return NO_PLATFORM
    # Before the acknowledgement nothing is sent on its own: the acknowledgement's
    # log carries the order as it then is (and the labels of what people did).
    if acknowledgement is None:
        return UNTIL_ACKNOWLEDGEMENT if order.is_open else NOT_SHARED
    if event.pk < acknowledgement.pk:
        return WITH_ACKNOWLEDGEMENT
    if event.label in carried_labels:
        return MERGED
    return NOT_SHARED


def build(order: Order, *, now: datetime) -> Timeline:
    """The order's timeline, newest first."""
    connection = Connection.objects.filter(client_id=order.contract.client_id).first()
    events = list(order.events.select_related("actor").order_by("at", "pk"))
    transmissions = _transmissions(_messages(order), now)
    by_event: dict[int | None, list[Transmission]] = defaultdict(list)
    for transmission in transmissions:
        by_event[transmission.message.event_id].append(transmission)
    acknowledgement = next((event for event in events if event.kind == "acknowledge"), None)
    # The labels each log carries (one log may carry several changes of one second).
    carried_labels = {
        label
        for transmission in transmissions
        for label in str((transmission.message.payload or {}).get("description", "")).split(LABEL_SEPARATOR)
    }
    entries = []
    for event in events:
        sent = tuple(by_event.pop(event.pk, ()))
        entries.append(
            Entry(
                at=event.at,
                label=event.label,
                actor=event.actor,
                event=event,
                transmissions=sent,
                silence=""
                if sent
                else _silence(order, event, connection, acknowledgement=acknowledgement, carried_labels=carried_labels),
            )
        )
    # Messages whose event is gone (or never was): shown on their own.
    for orphan in by_event.values():
        for transmission in orphan:
            payload = transmission.message.payload or {}
            label = payload.get("description") or payload.get("title") or transmission.message.get_kind_display()
            entries.append(Entry(at=transmission.message.created_at, label=str(label), transmissions=(transmission,)))
    # What technicians did without network that was not applied: where it happened, never relayed.
    for unapplied in order.unapplied_actions.select_related("user"):
        entries.append(Entry(at=unapplied.acted_at, label=unapplied.label, actor=unapplied.user, unapplied=unapplied))
    # Newest first; of two entries at the same instant, the one recorded last first.
    entries.sort(key=lambda entry: entry.at)
    entries.reverse()
    count = defaultdict(int)
    for transmission in transmissions:
        count[transmission.status] += 1
    return Timeline(
        entries=entries,
        delivered=count[MessageStatus.DELIVERED],
        pending=count[MessageStatus.PENDING],
        rejected=count[MessageStatus.REJECTED],
        cancelled=count[MessageStatus.CANCELLED],
        connection=connection,
    )
