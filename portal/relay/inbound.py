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
from typing import Any

from django.db import transaction
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


def store_notifications(connection: Connection, items: list[Any]) -> tuple[list[int], int]:
    """Store each notification once. Returns the ids of the new ones and the count of repeats."""
    created, repeats = [], 0
    with transaction.atomic():
        for item in items:
            kind = item.get("type", "") if isinstance(item, dict) else ""
            notification, is_new = InboundNotification.objects.get_or_create(
                connection=connection,
                notification_id=notification_id(item),
                defaults={"type": str(kind)[:100], "body": item if isinstance(item, dict) else {"value": item}},
            )
            if is_new:
                created.append(notification.pk)
            else:
                repeats += 1
    return created, repeats


def store_unreadable(connection: Connection, raw: bytes, reason: str) -> InboundNotification:
    """Keep a body we could not read, so that nothing the platform sent is lost."""
    digest = hashlib.sha256(raw).hexdigest()
    notification, _ = InboundNotification.objects.get_or_create(
        connection=connection,
        notification_id=f"illisible:{digest}",
        defaults={
            "type": "",
            "body": {"raw": raw[:100_000].decode("utf-8", "replace")},
            "status": NotificationStatus.FAILED,
            "error": reason,
        },
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
