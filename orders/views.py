from __future__ import annotations

from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from orders.models import Order
from orders.states import STATE_LABELS, State
from portal.access import role_required
from portal.models import Role


@role_required(Role.TECHNICIAN)
def my_orders(request: HttpRequest) -> HttpResponse:
    """The technician's home: their open orders, appointments first."""
    orders = (
        Order.objects.visible_to(request.user)
        .open()
        .select_related("asset", "contract__client")
        .order_by("appointment_at", "due_at", "pk")
    )
    return render(request, "orders/my_orders.html", {"orders": orders})


@role_required(Role.SUPERVISOR, Role.OFFICE)
def overview(request: HttpRequest) -> HttpResponse:
    """The supervisor's home: how many orders stand in each state."""
    counts = dict(
        Order.objects.visible_to(request.user).values_list("state").annotate(n=Count("pk")).values_list("state", "n")
    )
    rows = [(STATE_LABELS[state], counts.get(state, 0)) for state in State]
    return render(request, "orders/overview.html", {"rows": rows, "total": sum(counts.values())})
