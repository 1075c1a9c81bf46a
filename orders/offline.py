"""The technician's pages without network: the service worker, served from the
site's root so that its scope covers /mes-commandes/ and /commandes/.

The worker keeps the static files the pages need (cache first) and the
technician's pages (network first, the cached copy when there is no network).
The queue of actions taken offline lives in the page (static/js/offline.js,
loaded on technicians' pages only): a worker cannot read the forms, and the
page must show what waits.

The server's side of the queue is here too: an action sent with a key (the
form's `idempotency_key`, given by the phone) is applied once, recognised by its
receipt when it comes again (`apply_once`), and a replay from the queue (the
`X-Portal-Replay` header) is answered in JSON (orders/views.py).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from http import HTTPStatus
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib.staticfiles import finders
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.utils import timezone
from django.views.decorators.http import require_GET

from orders import conflicts, services
from orders.forms import plausible_client_time
from orders.models import ActionReceipt, Order, OrderEvent
from portal.models import User

# What a technician's page needs to be read and used offline.
# The stylesheet first: the worker's "no network" page links ASSETS[0].
ASSETS = (
    "css/portal.css",
    "js/htmx.min.js",
    "js/portal.js",
    "js/queue.js",
    "js/offline.js",
    "icons/icon-192.png",
    # The report's form, written offline (templates/orders/report_form.html).
    "js/report-queue.js",
    "js/report-store.js",
    "js/report-form.js",
    "js/report_materials.js",
    "js/signature.js",
)
# The caches' names, shared with static/js/offline.js (which empties the pages' on sign-out).
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
        # The queue's storage and replay, shared with the pages (static/js/queue.js).
        "queue_script": json.dumps(static("js/queue.js")),
        # The report as a kind of the queue, with its photos (static/js/report-queue.js).
        "report_queue_script": json.dumps(static("js/report-queue.js")),
    }
    response = HttpResponse(render_to_string("offline/sw.js", context), content_type="text/javascript; charset=utf-8")
    # Checked on every visit: a new version reaches the phones at once.
    response["Cache-Control"] = "no-cache"
    return response


# --- Actions sent again ------------------------------------------------------------

# Sent by the phone's offline queue with the actions it replays: they are answered in JSON.
REPLAY_HEADER = "X-Portal-Replay"


def is_replay(request: HttpRequest) -> bool:
    return request.headers.get(REPLAY_HEADER) == "1"


@dataclass(frozen=True)
class Outcome:
    status: str  # "applied", or "duplicate" when the key had been seen
    label: str  # the event's label; empty when nothing changed

    @property
    def notice(self) -> str:
        if self.status == "duplicate":
            return "Cette action avait déjà été reçue : elle n'a pas été appliquée une seconde fois."
        return self.label or "C'était déjà fait : rien n'a changé."


def apply_once(
    apply: Callable[[], OrderEvent | None], *, key: UUID | None, user: User, order: Order, action: str
) -> Outcome:
    """Run `apply` (one service call) unless the action `key` was already received.

    The receipt is written in the same transaction as the action, so that an
    action is either applied and receipted, or neither. Without a key, `apply`
    just runs. A key already received for this person, order and action is a
    duplicate (nothing is applied); for anything else, a refusal."""
    if key is None:
        event = apply()
        return Outcome("applied", event.label if event else "")
    seen = ActionReceipt.objects.filter(key=key).first()
    if seen is None:
        try:
            with transaction.atomic():
                event = apply()
                label = event.label if event else ""
                ActionReceipt.objects.create(key=key, user=user, order=order, action=action, label=label)
            return Outcome("applied", label)
        except IntegrityError:
            # The same key, sent twice at once: the other one won; this one rolled back.
            seen = ActionReceipt.objects.filter(key=key).first()
            if seen is None:
                raise
    if seen.user_id != user.pk or seen.order_id != order.pk or seen.action != action:
        raise services.ServiceError("Cette action a déjà été reçue pour une autre commande : elle n'est pas appliquée.")
    return Outcome("duplicate", seen.label)


# --- Actions not applied: kept, and answered with why and what to do -----------------

# What a replay sends that is not the action's own data.
_NOT_DATA = ("csrfmiddlewaretoken", "idempotency_key", "client_at")


def acted_at(request: HttpRequest) -> datetime:
    """When the technician took the action sent (the phone's time if plausible, else now)."""
    now = timezone.now()
    return plausible_client_time(request.POST.get("client_at", ""), now) or now


def _key(request: HttpRequest) -> UUID | None:
    try:
        return UUID(request.POST.get("idempotency_key", ""))
    except ValueError:
        return None


def refuse_replay(
    request: HttpRequest,
    order: Order,
    refusal: conflicts.Refusal,
    *,
    action: str,
    button: str = "",
    line_reference: str = "",
) -> JsonResponse:
    """A replayed action the server does not apply: kept (orders.conflicts) and
    answered in JSON, with why and what to do next (409)."""
    keep_refused(request, order, refusal, action=action, button=button, line_reference=line_reference)
    return JsonResponse(refusal.answer(), status=HTTPStatus.CONFLICT)


def keep_refused(
    request: HttpRequest,
    order: Order,
    refusal: conflicts.Refusal,
    *,
    action: str,
    button: str = "",
    line_reference: str = "",
) -> None:
    """Keep the replayed action not applied, with what it carried (orders.conflicts)."""
    data: dict[str, Any] = {name: value for name, value in request.POST.items() if name not in _NOT_DATA}
    conflicts.record_unapplied(
        order,
        actor=request.user,  # type: ignore[arg-type]  # login_required
        refusal=refusal,
        action=action,
        label=conflicts.describe(action, data, button=button, line=line_reference),
        acted_at=acted_at(request),
        key=_key(request),
        data=data,
        line_reference=line_reference,
    )
