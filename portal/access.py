"""Who may see what: one place for the role checks of every view."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404

from orders.models import Order
from portal.models import Role


def role_required(*roles: Role) -> Callable:
    """Signed-out visitors go to the login page; signed-in people without the role get a 403."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        @login_required
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.user.role not in roles:
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def get_order_for(request: HttpRequest, pk: int) -> Order:
    """The order `pk`, if the signed-in person may see it (`Order.objects.visible_to`):
    a technician their own orders, supervisors and office staff every order. Anyone
    else gets a 404, not a 403, so as not to tell them the order exists."""
    orders = Order.objects.visible_to(request.user).select_related(
        "asset", "service_code", "contract__client", "technician", "pilot"
    )
    return get_object_or_404(orders, pk=pk)
