"""The technician's pages without network: the service worker, served from the
site's root so that its scope covers /mes-commandes/ and /commandes/.

The worker keeps the static files the pages need (cache first) and the
technician's pages (network first, the cached copy when there is no network).
The queue of actions taken offline lives in the page (static/js/portal.js):
a worker cannot read the forms, and the page must show what waits.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache

from django.conf import settings
from django.contrib.staticfiles import finders
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.views.decorators.http import require_GET

# What a technician's page needs to be read and used offline.
ASSETS = ("css/portal.css", "js/htmx.min.js", "js/portal.js", "icons/icon-192.png")
# The caches' names, shared with static/js/portal.js (which empties the pages' on sign-out).
PAGES_CACHE = "portal-pages"


def _fingerprint() -> str:
    """Changes whenever one of the assets does, so that phones take the new worker."""
    digest = hashlib.sha256()
    for name in ASSETS:
        path = finders.find(name)
        if path:
            with open(path, "rb") as file:
                digest.update(file.read())
        else:  # collected (production): the hashed name says it all
            digest.update(static(name).encode())
    return digest.hexdigest()[:16]


_cached_fingerprint = cache(_fingerprint)


@require_GET
def service_worker(request: HttpRequest) -> HttpResponse:
    context = {
        "version": _fingerprint() if settings.DEBUG else _cached_fingerprint(),
        "assets": json.dumps([static(name) for name in ASSETS]),
        "pages_cache": json.dumps(PAGES_CACHE),
    }
    response = HttpResponse(render_to_string("offline/sw.js", context), content_type="text/javascript; charset=utf-8")
    # Checked on every visit: a new version reaches the phones at once.
    response["Cache-Control"] = "no-cache"
    return response
