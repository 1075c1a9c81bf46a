"""Who may see which order: the one access helper of the orders' views."""

from __future__ import annotations

from django.http import HttpRequest
from django.shortcuts import get_object_or_404

from orders.models import Order


def get_order_for(request: HttpRequest, pk: int) -> Order:
    """The order `pk`, if the signed-in person may see it (`Order.objects.visible_to`):
    a technician their own orders, supervisors and office staff every order. Anyone
    else gets a 404, not a 403, so as not to tell them the order exists."""
    orders = Order.objects.visible_to(request.user).select_related(
        "asset", "service_code", "contract__client", "technician", "pilot"
    )
    return get_object_or_404(orders, pk=pk)
