"""What the quotes' pages read: the list with its filters and days left, the
price-item search, the requests for a quote from technicians' reports."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from orders.models import InterventionReport, Order
from portal.models import PriceItem, User
from quotes import deadlines, pricing
from quotes.models import Quote, QuoteLine, QuoteState

LIST_LIMIT = 200
# How long a refusal stays on the overview.
REFUSED_SHOWN_FOR = timedelta(days=14)


def waiting(quote: Quote, now: datetime) -> deadlines.Waiting | None:
    if quote.state != QuoteState.SENT or quote.answer_due_on is None:
        return None
    return deadlines.waiting(quote.answer_due_on, now)


@dataclass(frozen=True)
class Row:
    quote: Quote
    waiting: deadlines.Waiting | None


def quote_rows(filters: Mapping[str, Any], *, now: datetime) -> list[Row]:
    quotes = Quote.objects.current().select_related("contract__client", "order", "asset")
    state = filters.get("state")
    if state == "waiting":
        quotes = quotes.filter(state=QuoteState.SENT).order_by("answer_due_on", "pk")
    elif state:
        quotes = quotes.filter(state=state)
    if filters.get("client"):
        quotes = quotes.filter(contract__client=filters["client"])
    if filters.get("contract"):
        quotes = quotes.filter(contract=filters["contract"])
    return [Row(quote, waiting(quote, now)) for quote in quotes[:LIST_LIMIT]]


@dataclass(frozen=True)
class DisplayTotals:
    vat: list[dict[str, str]]
    excl_vat: str
    total_vat: str
    incl_vat: str
    amounts: dict[int, str]


def display_totals(lines: Iterable[QuoteLine]) -> DisplayTotals:
    lines = list(lines)
    totals = pricing.totals(line.pricing_line() for line in lines)
    return DisplayTotals(
        vat=[
            {
                "rate": pricing.format_rate(entry.rate),
                "base": pricing.format_euros(entry.taxable_amount),
                "amount": pricing.format_euros(entry.vat_amount),
            }
            for entry in totals.vat
        ],
        excl_vat=pricing.format_euros(totals.total_excl_vat),
        total_vat=pricing.format_euros(totals.total_vat),
        incl_vat=pricing.format_euros(totals.total_incl_vat),
        amounts={
            line.pk: pricing.format_euros(amount) for line, amount in zip(lines, totals.line_amounts, strict=True)
        },
    )


def search_price_items(contract_id: int, text: str, *, limit: int) -> list[PriceItem]:
    """Codes that start with `text` first, then labels that contain it."""
    items = PriceItem.objects.filter(contract_id=contract_id)
    by_code = list(items.filter(code__istartswith=text).order_by("code")[:limit])
    if len(by_code) >= limit:
        return by_code
    seen = [item.pk for item in by_code]
    by_label = items.filter(label__icontains=text).exclude(pk__in=seen).order_by("code")[: limit - len(by_code)]
    return by_code + list(by_label)


def open_quote_requests(orders: QuerySet[Order]) -> QuerySet[InterventionReport]:
    """Reports of `orders` that ask for a quote no one has started (or only cancelled)."""
    started = Quote.objects.filter(report=OuterRef("pk")).exclude(state=QuoteState.CANCELLED)
    return (
        InterventionReport.objects.filter(quote_needed=True, order__in=orders)
        .exclude(order__state__in=("closed", "cancelled"))
        .filter(~Exists(started))
        .select_related("order__contract__client", "created_by")
        .order_by("created_at", "pk")
    )


def overview_requests(user: User) -> list[InterventionReport]:
    return list(open_quote_requests(Order.objects.visible_to(user))[:50])


@dataclass(frozen=True)
class Attention:
    """What the overview says of quotes: those refused lately (the order stays as
    it was), and those past the buyer's 30 days (§52: the works may go ahead)."""

    refused: list[Quote]
    overdue: list[Quote]


def needing_attention(now: datetime | None = None) -> Attention:
    """One query for both lists."""
    now = now or timezone.now()
    refused = Q(state=QuoteState.REFUSED, decided_at__gte=now - REFUSED_SHOWN_FOR, replaced_by__isnull=True)
    overdue = Q(state=QuoteState.SENT, answer_due_on__lt=timezone.localdate(now))
    quotes = list(
        Quote.objects.filter(refused | overdue).select_related("order", "contract__client").order_by("pk")[:100]
    )
    return Attention(
        refused=sorted(
            (q for q in quotes if q.state == QuoteState.REFUSED), key=lambda q: q.decided_at or now, reverse=True
        ),
        overdue=sorted((q for q in quotes if q.state == QuoteState.SENT), key=lambda q: q.answer_due_on or now.date()),
    )


def order_quotes(order: Order) -> list[Quote]:
    return list(Quote.objects.current().filter(order=order).select_related("contract").order_by("-created_at"))


def pending_for_order(order: Order) -> list[Quote]:
    return list(
        Quote.objects.current()
        .filter(Q(order=order), Q(state__in=(QuoteState.DRAFT, QuoteState.SENT)))
        .select_related("contract__quote_terms")
    )
