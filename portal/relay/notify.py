"""Emails about the relay, to the supervisors and office staff who want them
(« Mes notifications », `portal.notifications.recipients`), French, text and HTML.

Sent by tasks, never inside a database transaction."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from portal import notifications
from portal.models import NotificationKind

logger = logging.getLogger(__name__)


def send(template: str, context: Mapping[str, Any], recipients: list[str]) -> int:
    """Render `emails/<template>_subject.txt`, `.txt` and `.html` and send one email."""
    if not recipients:
        return 0
    context = {"site_url": settings.SITE_URL, **context}
    subject = " ".join(render_to_string(f"emails/{template}_subject.txt", context).split())
    text = render_to_string(f"emails/{template}.txt", context)
    html = render_to_string(f"emails/{template}.html", context)
    message = EmailMultiAlternatives(subject, text, to=recipients)
    message.attach_alternative(html, "text/html")
    return message.send()


def message_rejected(message_id: int) -> None:
    from portal.relay.models import OutboxMessage

    message = OutboxMessage.objects.select_related("order", "connection__client").get(pk=message_id)
    try:
        send(
            "relay_rejected",
            {"message": message, "order": message.order},
            notifications.recipients(NotificationKind.RELAY_REJECTED),
        )
    except OSError:  # SMTP down: the error queue still shows the message
        logger.exception("Could not email the rejection of message %s", message_id)
