"""Inbound: the platform's notifications, stored raw and exactly once, then
applied by the app that handles their type.

The webhook stores each notification at once (`store_notifications`);
`process_notification` then hands it to the handler registered for its type
(orders register theirs when Django starts: the relay imports none of them).
Nothing unknown is dropped: a notification that cannot be applied stays in the
database, failed, with its French reason, for office staff to see and retry.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import DatabaseError, transaction
from django.db.models import F
from django.utils import timezone

from portal.errors import Refused
from portal.relay import intent
from portal.relay.models import Connection, InboundNotification, NotificationStatus

logger = logging.getLogger(__name__)


class IngestError(Refused):
    """The notification cannot be applied until a person does something (French)."""


# type -> function(connection, the notification's event body) -> the id of the order it touched.
Handler = Callable[[Connection, dict[str, Any]], int | None]
# function(connection) -> how many operations it brought in
Reconciler = Callable[[Connection], int]
_handlers: dict[str, Handler] = {}
# (type, the body's element type) -> handler: e.g. a quotation's answer sent as
# an "operations:intervention:update" whose body says `"type": "quotation"`.
_element_handlers: dict[tuple[str, str], Handler] = {}
_reconcilers: list[Reconciler] = []


def register_handler(types: set[str], handler: Handler, *, element_type: str | None = None) -> None:
    """`handler` applies the notifications of `types`; with `element_type`, only
    those whose body's `type` is that element (they win over the type's handler)."""
    for kind in types:
        if element_type:
            _element_handlers[(kind, element_type)] = handler
        else:
            _handlers[kind] = handler


def handler_for(kind: object, summary: object) -> Handler | None:
    if not isinstance(kind, str):
        return None
    element = summary.get("type") if isinstance(summary, dict) else None
    if isinstance(element, str) and (kind, element) in _element_handlers:
        return _element_handlers[(kind, element)]
    return _handlers.get(kind)


def register_reconciler(reconciler: Reconciler) -> None:
    if reconciler not in _reconcilers:
        _reconcilers.append(reconciler)


# --- Storing notifications --------------------------------------------------


def notification_id(item: Any) -> str:
    if isinstance(item, dict) and isinstance(item.get("id"), str | int) and str(item["id"]).strip():
        return str(item["id"]).strip()[:200]
    # No id: the content itself identifies the notification, so a repeat is still a no-op.
    digest = hashlib.sha256(json.dumps(item, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    return f"sans-id:{digest}"


# Deeper than this, a notification is not the platform's (its bodies are three
# levels deep): kept raw instead, before anything recurses into it.
MAX_DEPTH = 32


def unreadable_reason(item: Any) -> str:
    """Why `item` cannot be stored as JSON in the database (French), or "".

    json.loads accepts NaN and Infinity, which PostgreSQL's jsonb and SQLite's
    JSON check refuse, and so are a NUL character or a lone surrogate in a
    string; depth is measured without recursion, so that nothing overflows."""
    stack = [(item, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"imbrication de plus de {MAX_DEPTH} niveaux"
        if isinstance(value, dict):
            stack.extend((child, depth + 1) for child in value.values())
            stack.extend((key, depth + 1) for key in value)
        elif isinstance(value, list):
            stack.extend((child, depth + 1) for child in value)
    try:
        text = json.dumps(item, allow_nan=False, ensure_ascii=False)
        text.encode("utf-8")
    except ValueError:  # UnicodeEncodeError is one
        return "nombre non représentable (NaN, Infinity) ou caractère invalide"
    if "\\u0000" in text or "\x00" in text:
        return "caractère nul dans un texte"
    return ""


@dataclass
class Batch:
    """What became of each notification of a webhook call."""

    created: list[int] = field(default_factory=list)
    repeats: int = 0
    unreadable: list[int] = field(default_factory=list)  # positions in the batch (1-based), kept raw
    failed: list[int] = field(default_factory=list)  # positions not stored at all: the platform must resend


def store_batch(connection: Connection, items: list[Any], raw: bytes) -> Batch:
    """Store each readable notification once, each in its own savepoint (one the
    database refuses does not lose the others), and the raw body once if any
    notification of it cannot be read."""
    batch = Batch()
    reasons = []
    for position, item in enumerate(items, start=1):
        reason = unreadable_reason(item)
        if reason:
            batch.unreadable.append(position)
            reasons.append(f"n° {position} : {reason}")
            continue
        try:
            with transaction.atomic():
                notification, is_new = _store_one(connection, item)
        except DatabaseError:
            logger.warning("Notification %s of a batch could not be stored", position, exc_info=True)
            batch.failed.append(position)
            continue
        if is_new:
            batch.created.append(notification.pk)
        else:
            batch.repeats += 1
    if reasons:
        store_unreadable(connection, raw, "Notifications illisibles, conservées brutes : " + " ; ".join(reasons))
    return batch


def _store_one(connection: Connection, item: Any) -> tuple[InboundNotification, bool]:
    kind = item.get("type", "") if isinstance(item, dict) else ""
    return InboundNotification.objects.get_or_create(
        connection=connection,
        notification_id=notification_id(item),
        defaults={"type": str(kind)[:100], "body": item if isinstance(item, dict) else {"value": item}},
    )


def store_notifications(connection: Connection, items: list[Any]) -> tuple[list[int], int]:
    """Store each notification once. Returns the ids of the new ones and the count of repeats."""
    created, repeats = [], 0
    with transaction.atomic():
        for item in items:
            notification, is_new = _store_one(connection, item)
            if is_new:
                created.append(notification.pk)
            else:
                repeats += 1
    return created, repeats


def store_unreadable(connection: Connection, raw: bytes, reason: str) -> InboundNotification:
    """Keep a body we could not read, so that nothing the platform sent is lost."""
    digest = hashlib.sha256(raw).hexdigest()
    # Neither PostgreSQL's text nor its jsonb takes a NUL character.
    text = raw[:100_000].decode("utf-8", "replace").replace("\x00", "\ufffd")
    notification, _ = InboundNotification.objects.get_or_create(
        connection=connection,
        notification_id=f"illisible:{digest}",
        defaults={"type": "", "body": {"raw": text}, "status": NotificationStatus.FAILED, "error": reason[:2000]},
    )
    return notification


# --- Applying them ----------------------------------------------------------


def process_notification(notification_pk: int) -> str:
    """Apply one stored notification. Safe to run twice. Returns its new status.
    Raises intent.TransientError when the platform could not be read (retry later)."""
    notification = InboundNotification.objects.select_related("connection__client").get(pk=notification_pk)
    if notification.status in (NotificationStatus.PROCESSED, NotificationStatus.IGNORED):
        return notification.status
    InboundNotification.objects.filter(pk=notification.pk).update(attempts=F("attempts") + 1)
    body = notification.body
    kind = body.get("type") if isinstance(body, dict) else None
    try:
        summary = body["event"]["body"]
    except (KeyError, TypeError):
        summary = None
    handler = handler_for(kind, summary)
    if handler is None:
        return _conclude(notification, NotificationStatus.IGNORED, f"Type de notification non pris en charge : {kind}")
    if not isinstance(summary, dict):
        return _conclude(notification, NotificationStatus.FAILED, "Notification sans « event.body » lisible.")
    try:
        order_id = handler(notification.connection, summary)
    except intent.Rejection as error:
        return _conclude(notification, NotificationStatus.FAILED, f"Lecture de l'opération refusée : {error.message}")
    except Refused as error:
        # Unknown contract, or an order that cannot take the change (e.g. cancelled
        # on the platform after the work was finished): kept failed with the French
        # reason, for a person to decide.
        return _conclude(notification, NotificationStatus.FAILED, str(error))
    return _conclude(notification, NotificationStatus.PROCESSED, "", order_id=order_id)


def _conclude(notification: InboundNotification, status: str, error: str, *, order_id: int | None = None) -> str:
    InboundNotification.objects.filter(pk=notification.pk).update(
        status=status,
        error=error,
        processed_at=timezone.now() if status == NotificationStatus.PROCESSED else None,
        order_id=order_id,
    )
    return status


def reconcile(connection: Connection) -> int:
    """Bring in what the platform has and the portal missed (every registered
    reconciler). Returns how many operations were brought in."""
    return sum(reconciler(connection) for reconciler in _reconcilers)
