"""Who may see the invoices' pages: office staff and supervisors; a 404 for
anyone else signed in (the pages do not say they exist)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse

from portal.models import Role

INVOICE_ROLES = (Role.OFFICE, Role.SUPERVISOR)


def invoice_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    @login_required
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if getattr(request.user, "role", None) not in INVOICE_ROLES:
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper
