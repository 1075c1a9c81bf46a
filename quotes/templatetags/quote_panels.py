"""The quotes' parts of the orders' pages, as template tags: orders imports
nothing of quotes (the layers run one way); its templates name these tags
explicitly (`{% load quote_panels %}`), each in one line:

- `{% quote_requests_panel %}` on the overview: the technicians' requests for a
  quote not yet started (with the button that starts it), the quotes refused
  lately, the quotes past the buyer's 30 days (§52);
- `{% order_quotes_panel order %}` on the supervisor's order page: the order's
  quotes and its reports' requests, with the buttons;
- `{% technician_quotes_panel order %}` on the technician's order page: that a
  quote is pending, and its amounts only where the contract allows it.
"""

from __future__ import annotations

from typing import Any

from django import template

from orders import materials
from orders.models import MaterialDestination
from quotes import queries
from quotes.access import may_see_quotes
from quotes.models import HOLDING_STATES, QuoteLine, QuoteTerms

register = template.Library()


@register.inclusion_tag("quotes/_overview_panel.html", takes_context=True)
def quote_requests_panel(context: template.Context) -> dict[str, Any]:
    user = context["user"]
    if not may_see_quotes(user):
        return {"show": False}
    attention = queries.needing_attention()
    return {
        "show": True,
        "requests": queries.overview_requests(user),
        "refused": attention.refused,
        "overdue": attention.overdue,
        "csrf_token": context.get("csrf_token"),
    }


@register.inclusion_tag("quotes/_order_panel.html", takes_context=True)
def order_quotes_panel(context: template.Context, order: Any) -> dict[str, Any]:
    user = context["user"]
    if not may_see_quotes(user):
        return {"show": False}
    return {
        "show": True,
        "order": order,
        "quotes": queries.order_quotes(order),
        "requests": list(queries.open_quote_requests(type(order).objects.filter(pk=order.pk))),
        "can_start": order.is_open,
        "materials_pending": materials.pending(order).count() if order.is_open else 0,
        "csrf_token": context.get("csrf_token"),
    }


@register.inclusion_tag("quotes/_technician_panel.html")
def technician_quotes_panel(order: Any) -> dict[str, Any]:
    pending = queries.pending_for_order(order)
    terms = QuoteTerms.objects.filter(contract_id=order.contract_id).first()
    return {"pending": pending, "show_prices": bool(terms and terms.technicians_see_prices)}


@register.simple_tag
def holding_quotes(supplies: Any) -> dict[int, Any]:
    """{supply id: the live quote holding it} for the supplies of an order's page, in one query: the latest
    version in draft, sent or accepted whose line holds each (quotes.supplies). Used as
    `{% holding_quotes materials as holding %}`, then `holding|get_item:material.pk`."""
    ids = [supply.pk for supply in supplies if supply.destination == MaterialDestination.QUOTE]
    if not ids:
        return {}
    lines = (
        QuoteLine.objects.filter(material_id__in=ids, quote__state__in=HOLDING_STATES)
        .select_related("quote")
        .order_by("quote__version", "quote_id")
    )
    return {line.material_id: line.quote for line in lines}


@register.filter
def get_item(mapping: dict, key: Any) -> Any:
    return mapping.get(key) if mapping else None
