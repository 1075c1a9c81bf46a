"""Nexxio's incoming messages: pulled from the connection's subscription,
stored first as inbound notifications (the webhook's table, the same
processing), acknowledged only once stored, then applied in the order pulled.

The pull runs as a periodic Celery task (`tasks.pull_bus`, every few seconds,
each run pulling until the subscription is empty or its time is up): the
worker and its beat already run everywhere the portal does, so Nexxio adds no
process to deploy, and a few seconds' delay is nothing next to the 15 minutes.

De-duplication: a message's `messageId` attribute (the convention's, the
same on a republish) is the notification's id, so a message delivered twice
(a worker killed before its ack, a redelivery) is stored and applied once. A
message that cannot be read (not JSON, no reference) is kept raw, failed with
its French reason, and acknowledged: shown to the office, never redelivered
forever.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import DatabaseError, transaction
from django.db.models import Q
from django.utils import timezone

from portal.relay import inbound, pubsub
from portal.relay.models import Connection, InboundNotification, NotificationStatus

logger = logging.getLogger(__name__)

# The convention's incoming kinds -> the webhook's notification types.
TYPES = {
    "intervention": "operations:intervention:share",
    "intervention_log": "operations:intervention:share",
    "quotation": "operations:quotation:update",
    "quotation_log": "operations:quotation:update",
}


@dataclass
class Pulled:
    received: int = 0
    created: list[int] = field(default_factory=list)
    repeats: int = 0
    unreadable: int = 0
    not_stored: int = 0
    to_apply: list[int] = field(default_factory=list)


def notification_from(received: Any) -> tuple[str, dict[str, Any]] | str:
    """(notification id, body in the webhook's shape) from a received message,
    or the French reason it cannot be read."""
    message = received.message
    attributes = dict(message.attributes)
    try:
        data = json.loads(bytes(message.data).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return "Données du message illisibles (JSON UTF-8 attendu)."
    if not isinstance(data, dict):
        return "Données du message illisibles (objet JSON attendu)."
    kind = str(attributes.get("kind") or data.get("kind") or "")
    if kind not in TYPES:
        return f"Nature de message inconnue : « {kind} »."
    reference = str(data.get("reference") or attributes.get("reference") or "").strip()
    contract = str(data.get("contractReference") or attributes.get("contractReference") or "").strip()
    if not reference or not contract:
        return "Référence de l'opération ou du marché absente."
    reason = inbound.unreadable_reason(data)
    if reason:
        return f"Données du message illisibles : {reason}."
    identifier = str(attributes.get("messageId") or f"pubsub:{message.message_id}")[:200]
    summary = {
        "reference": reference,
        "contractReference": contract,
        "status": data.get("status"),
        "event": data.get("event"),
        "type": "quotation" if TYPES[kind].startswith("operations:quotation") else "intervention",
        # The whole operation travels in the message: nothing to read back.
        "operation": data,
    }
    body = {
        "id": identifier,
        "type": TYPES[kind],
        "event": {"body": summary},
        "bus": {
            "messageId": message.message_id,
            "publishTime": message.publish_time.isoformat() if message.publish_time else None,
            "orderingKey": message.ordering_key,
            "attributes": attributes,
        },
    }
    return identifier, body


def store(connection: Connection, messages: list[Any]) -> tuple[Pulled, list[str]]:
    """Store each message once (each in its own transaction). Returns what was
    stored and the ack ids of the messages now safe in the database."""
    pulled = Pulled(received=len(messages))
    safe: list[str] = []
    for received in messages:
        found = notification_from(received)
        try:
            with transaction.atomic():
                if isinstance(found, str):
                    raw = bytes(received.message.data)
                    note = f"Message Pub/Sub {received.message.message_id} illisible, conservé brut : {found}"
                    inbound.store_unreadable(connection, raw, note)
                    pulled.unreadable += 1
                else:
                    identifier, body = found
                    notification, is_new = InboundNotification.objects.get_or_create(
                        connection=connection, notification_id=identifier, defaults={"type": body["type"], "body": body}
                    )
                    if is_new:
                        pulled.created.append(notification.pk)
                    else:
                        pulled.repeats += 1
                    if notification.status == NotificationStatus.RECEIVED:
                        # New, or stored by a pull that died before applying it: applied now.
                        pulled.to_apply.append(notification.pk)
        except DatabaseError:
            logger.warning("Pub/Sub message %s not stored: left for redelivery", received.message.message_id)
            pulled.not_stored += 1
            continue
        safe.append(received.ack_id)
    return pulled, safe


def apply(notification_ids: list[int]) -> None:
    """Apply the stored notifications in the order pulled; one that fails stays
    received (retried by `tasks.retry_notifications`) or failed with its reason."""
    for notification_id in notification_ids:
        try:
            inbound.process_notification(notification_id)
        except Exception:
            logger.warning("Notification %s not applied now; retried later", notification_id, exc_info=True)


def hold(connection: Connection, seconds: float) -> bool:
    """Take the connection's pull lease (False when another pull holds it)."""
    now = timezone.now()
    return bool(
        Connection.objects.filter(pk=connection.pk)
        .filter(Q(pull_lease_until__isnull=True) | Q(pull_lease_until__lt=now))
        .update(pull_lease_until=now + timedelta(seconds=seconds))
    )


def release(connection: Connection) -> None:
    Connection.objects.filter(pk=connection.pk).update(pull_lease_until=None)


def pull_connection(connection: Connection, *, budget_seconds: float = 40.0, batch: int = 100) -> Pulled:
    """Pull, store, acknowledge, apply, until the subscription is empty or the
    budget is spent; nothing when another pull of the connection is under way.
    Raises google's errors when the bus cannot be reached."""
    # The lease outlives the budget by the longest last round (a pull, the applying).
    if not hold(connection, budget_seconds + 60):
        return Pulled()
    try:
        return _pull(connection, budget_seconds=budget_seconds, batch=batch)
    finally:
        release(connection)


def _pull(connection: Connection, *, budget_seconds: float, batch: int) -> Pulled:
    total = Pulled()
    deadline = time.monotonic() + budget_seconds
    while time.monotonic() < deadline:
        messages = pubsub.pull(connection, max_messages=batch)
        if not messages:
            break
        pulled, safe = store(connection, messages)
        # Acknowledged once stored: a crash before this line means a redelivery,
        # which the messageId turns into a repeat.
        pubsub.acknowledge(connection, safe)
        apply(pulled.to_apply)
        total.received += pulled.received
        total.created += pulled.created
        total.repeats += pulled.repeats
        total.unreadable += pulled.unreadable
        total.not_stored += pulled.not_stored
    return total
