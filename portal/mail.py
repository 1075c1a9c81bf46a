"""The development email backend (DEBUG without EMAIL_HOST): each email is
saved whole, as sent, in a file of its own (`VAR_DIR/mail/*.eml`, which any
mail client opens) and announced in one log line:

    Email to n.kieffer@example.fr: Nouvelle commande FLG54_2612 (18 lines; var/mail/20261205-114830-1a2b3c4d.eml)

instead of the console backend's MIME dump, 75 to 90 lines an email.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from pathlib import Path

from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend
from django.utils import timezone

logger = logging.getLogger(__name__)


class EmailBackend(BaseEmailBackend):
    def __init__(self, fail_silently: bool = False, *, directory: str | Path, **kwargs) -> None:
        super().__init__(**kwargs)
        self.fail_silently = fail_silently
        self.directory = Path(directory)

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        sent = 0
        for message in email_messages:
            try:
                path = self.save(message)
            except OSError:
                if self.fail_silently:
                    continue
                raise
            lines = len(str(message.body).splitlines())
            logger.info(
                "Email to %s: %s (%d lines; %s)",
                ", ".join(message.recipients()),
                message.subject,
                lines,
                shown(path),
            )
            sent += 1
        return sent

    def save(self, message: EmailMessage) -> Path:
        """The message as it would go on the wire, in a new file whose name
        sorts by time and is unique across the web server and the workers."""
        data = message.message().as_bytes()
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{timezone.localtime():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:8]}.eml"
        with path.open("xb") as file:
            file.write(data)
        return path


def shown(path: Path) -> str:
    """The path relative to the current folder when it is inside it (`var/mail/…`)."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
