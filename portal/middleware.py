"""A request's body is refused before it is read when it announces more than
settings.MAX_REQUEST_BODY_BYTES (Django's own limits only count what is read:
form fields, the number of files, not the files themselves)."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string


class RequestBodyLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.MAX_REQUEST_BODY_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > limit:
            message = f"L'envoi fait {length / 1024 / 1024:.0f} Mo, au-delà des {limit // 1024 // 1024} Mo acceptés."
            # Rendered without the request: this runs before the session and the user are there.
            return HttpResponse(render_to_string("413.html", {"message": message}), status=413)
        return self.get_response(request)
