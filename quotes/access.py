"""Who may see which quote: the one access helper of the quotes' pages.

Supervisors and office staff see every quote. Technicians see none of these
pages (a 404, as for anyone else): on their order's page they see that a quote
is pending, and its prices only where the contract allows it
(`QuoteTerms.technicians_see_prices`, see quotes.templatetags)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404

from portal.models import Role
from quotes.models import Quote

QUOTE_ROLES = (Role.SUPERVISOR, Role.OFFICE)


def may_see_quotes(user: object) -> bool:
    return bool(getattr(user, "is_authenticated", False)) and getattr(user, "role", None) in QUOTE_ROLES


def require_quote_role(request: HttpRequest) -> None:
    if not may_see_quotes(request.user):
        raise Http404


def get_quote_for(request: HttpRequest, pk: int) -> Quote:
    """The quote `pk` for a supervisor or office staff; a 404 for anyone else."""
    require_quote_role(request)
    quotes = Quote.objects.select_related(
        "contract__client", "asset", "service_code", "order__asset", "order__service_code", "report", "previous"
    )
    return get_object_or_404(quotes, pk=pk)


def quote_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Signed-out visitors go to the login page; anyone signed in who may not
    see quotes gets a 404 (the pages do not say they exist)."""

    @wraps(view)
    @login_required
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        require_quote_role(request)
        return view(request, *args, **kwargs)

    return wrapper
