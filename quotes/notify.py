"""Emails about quotes: a refusal goes to who sent the quote (and who made it).
Sent after the transaction commits, outside it; a mail server that does not
answer loses only the email (the overview still shows the refusal)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.urls import reverse

from portal import emails
from quotes.models import Quote

logger = logging.getLogger(__name__)


def quote_refused(quote_id: int) -> int:
    quote = Quote.objects.select_related("contract__client", "order", "sent_by", "created_by").get(pk=quote_id)
    to = sorted({person.email for person in (quote.sent_by, quote.created_by) if person is not None and person.email})
    context = {"quote": quote, "quote_url": settings.SITE_URL + reverse("quotes:edit", args=[quote.pk])}
    try:
        return emails.send("quote_refused", context, to)
    except OSError:
        logger.warning("Refusal email of quote %s not sent: mail server unreachable", quote.pk, exc_info=True)
        return 0
