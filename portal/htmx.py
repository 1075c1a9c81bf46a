"""One URL serves a whole page and, for htmx, only the part of it that changes.

Pages name that part with a template partial (Django's `{% partialdef %}`) and
render it by the name "template.html#partial". django_htmx's middleware tells
whether htmx asked (`request.htmx`). Every page that serves both goes through
`render_page_or_fragment`, so that each says the same things: a history restore
(htmx reloading a URL it had pushed) gets the whole page, and caches keep the
two answers apart (`Vary: HX-Request`).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django_htmx.middleware import HtmxDetails


def _htmx(request: HttpRequest) -> HtmxDetails:
    return request.htmx  # type: ignore[attr-defined]  # set by django_htmx's middleware


def wants_fragment(request: HttpRequest) -> bool:
    """htmx asked, and not to restore its history (that one needs the whole page)."""
    htmx = _htmx(request)
    return bool(htmx) and not htmx.history_restore_request


def render_page_or_fragment(
    request: HttpRequest, template: str, partial: str, context: dict[str, Any], *, status: int | None = None
) -> HttpResponse:
    """The whole `template`, or only its `partial` for htmx. The context gets
    `fragment` (true when only the partial is rendered), for what a template
    adds to a fragment alone (e.g. an out-of-band swap)."""
    fragment = wants_fragment(request)
    name = f"{template}#{partial}" if fragment else template
    response = render(request, name, {**context, "fragment": fragment}, status=status)
    patch_vary_headers(response, ("HX-Request",))
    return response


def show_from_the_top(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """A refused change, shown again with the reason at the top of what is swapped:
    htmx scrolls the window there (a plain page starts at the top anyway)."""
    if _htmx(request):
        # django_htmx's `reswap` takes a swap method alone, without a modifier.
        response["HX-Reswap"] = "outerHTML show:window:top"
    return response
