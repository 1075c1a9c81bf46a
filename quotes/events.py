"""A quote's history and its guarded state changes, shared by every writer
(`quotes.services`, `quotes.drafts`, `quotes.decisions`, `quotes.documents`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.utils import timezone

from portal.errors import Refused
from portal.models import User
from quotes.models import Quote, QuoteEvent


class QuoteRefused(Refused):
    """A change to a quote refused for a reason people can fix (French)."""


def record_event(
    quote: Quote,
    *,
    kind: str,
    label: str,
    actor: User | None,
    at: datetime | None = None,
    data: Mapping[str, Any] | None = None,
) -> QuoteEvent:
    return QuoteEvent.objects.create(
        quote=quote,
        at=at or timezone.now(),
        kind=kind,
        label=label[:300],
        actor=actor if actor is not None and actor.pk else None,
        data=dict(data or {}),
    )


def guarded(quote: Quote, expected: tuple[str, ...], **changes: Any) -> None:
    """Move the quote out of `expected` only if it is still there: of two
    concurrent requests, exactly one gets past this."""
    if Quote.objects.filter(pk=quote.pk, state__in=expected).update(**changes) != 1:
        current = Quote.objects.filter(pk=quote.pk).first()
        state = current.get_state_display() if current is not None else "supprimé"
        raise QuoteRefused(
            f"Le devis {quote.display_number} a changé entre-temps (il est « {state} ») : rechargez la page."
        )
