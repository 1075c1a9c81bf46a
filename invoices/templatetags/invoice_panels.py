"""The invoices' part of the supervisors' overview, as a template tag: orders
imports nothing of invoices (the layers run one way); the overview's template
names it in one line (`{% load invoice_panels %}{% invoice_payments_panel %}`):
the orders waiting to be invoiced, the invoices overdue and what is owed in
late-payment interest and indemnities, loaded by htmx from `invoices:overview_panel`."""

from __future__ import annotations

from typing import Any

from django import template

from invoices.access import INVOICE_ROLES

register = template.Library()


@register.inclusion_tag("invoices/_overview_placeholder.html", takes_context=True)
def invoice_payments_panel(context: template.Context) -> dict[str, Any]:
    """A placeholder that htmx fills once the overview has shown (the panel's
    own queries do not weigh on the overview's)."""
    return {"show": getattr(context.get("user"), "role", None) in INVOICE_ROLES}
