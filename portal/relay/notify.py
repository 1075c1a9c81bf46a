"""Emails about the relay, to the supervisors and office staff who want them
(« Mes notifications », `portal.emails.recipients`). Sent by tasks, never
inside a database transaction."""

from __future__ import annotations

import logging

from portal import emails
from portal.models import NotificationKind
from portal.relay.models import OutboxMessage

logger = logging.getLogger(__name__)


def message_rejected(message_id: int) -> None:
    message = OutboxMessage.objects.select_related("order", "connection__client").get(pk=message_id)
    try:
        emails.send(
            "relay_rejected",
            {"message": message, "order": message.order},
            emails.recipients(NotificationKind.RELAY_REJECTED),
        )
    except OSError:  # SMTP down: the error queue still shows the message
        logger.exception("Could not email the rejection of message %s", message_id)
