"""The supervisor's home: what came in, what is late, what it may cost."""

from __future__ import annotations

from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path

from orders.models import Order
from orders.states import STATE_LABELS, State
from portal.access import role_required
from portal.models import Role


@role_required(Role.SUPERVISOR, Role.OFFICE)
def overview(request: HttpRequest) -> HttpResponse:
    """How many orders stand in each state."""
    counts = dict(
        Order.objects.visible_to(request.user).values_list("state").annotate(n=Count("pk")).values_list("state", "n")
    )
    rows = [(STATE_LABELS[state], counts.get(state, 0)) for state in State]
    return render(request, "orders/overview.html", {"rows": rows, "total": sum(counts.values())})


urlpatterns = [path("", overview, name="overview")]
