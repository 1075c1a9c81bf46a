"""The inbound webhook: one URL per connection, with an unguessable token in it."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from http import HTTPStatus

from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from portal.access import role_required
from portal.errors import Refused
from portal.models import Role
from portal.relay import inbound, services, tasks, watch
from portal.relay.forms import ResolveForm
from portal.relay.models import Connection, MessageStatus, OutboxMessage

logger = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024  # a batch of notifications is a few kilobytes
SIGNATURE_HEADER = "X-Intent-Signature"


def _answer(status: HTTPStatus, message: str, **extra) -> JsonResponse:
    return JsonResponse({"message": message, **extra}, status=status)


def signature_ok(secret: str, body: bytes, header: str) -> bool:
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    given = header.removeprefix("sha256=").strip()
    return hmac.compare_digest(expected, given)


@csrf_exempt
@require_POST
def webhook(request: HttpRequest, token: str) -> JsonResponse:
    connection = Connection.objects.filter(webhook_token=token).select_related("client").first()
    if connection is None:
        return _answer(HTTPStatus.NOT_FOUND, "Adresse de webhook inconnue.")
    try:
        length = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        length = 0
    if length > MAX_BODY:
        return _answer(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"Corps trop volumineux (maximum {MAX_BODY} octets).")
    body = request.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        return _answer(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"Corps trop volumineux (maximum {MAX_BODY} octets).")
    secret = connection.webhook_hmac_secret
    if secret and not signature_ok(secret, body, request.headers.get(SIGNATURE_HEADER, "")):
        return _answer(HTTPStatus.UNAUTHORIZED, f"Signature {SIGNATURE_HEADER} absente ou invalide.")
    try:
        items = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        inbound.store_unreadable(connection, body, "JSON invalide")
        return _answer(HTTPStatus.BAD_REQUEST, "JSON invalide : le contenu a été conservé pour examen.")
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list):
        inbound.store_unreadable(connection, body, "Le contenu n'est ni une liste ni un objet de notifications.")
        return _answer(HTTPStatus.BAD_REQUEST, "Une liste de notifications est attendue.")
    created, repeats = inbound.store_notifications(connection, items)
    transaction.on_commit(lambda: _queue(created))
    return _answer(HTTPStatus.OK, "Notifications reçues.", received=len(created), repeats=repeats)


def _queue(notification_ids: list[int]) -> None:
    for notification_id in notification_ids:
        try:
            tasks.ingest_notification.delay(notification_id)
        except Exception:  # broker down: the periodic retry of received notifications takes it
            logger.warning("Could not queue notification %s", notification_id, exc_info=True)


# --- The error queue, for supervisors and office staff ------------------------


@role_required(Role.SUPERVISOR, Role.OFFICE)
def error_queue(request: HttpRequest) -> HttpResponse:
    """What the platforms refused, with their message, the data sent and the order:
    correct the order, then resend (rebuilt from the current data), or give up."""
    rejected = (
        OutboxMessage.objects.filter(status=MessageStatus.REJECTED)
        .select_related("order", "connection__client")
        .order_by("rejected_at", "pk")
    )
    context = {"rejected": rejected, "health": watch.health(), "form": ResolveForm()}
    return render(request, "relay/error_queue.html", context)


@role_required(Role.SUPERVISOR, Role.OFFICE)
@require_POST
def resolve_message(request: HttpRequest, message_id: int, action: str) -> HttpResponse:
    if action not in ("renvoyer", "abandonner"):
        raise Http404
    message = get_object_or_404(OutboxMessage, pk=message_id)
    form = ResolveForm(request.POST)
    note = form.cleaned_data["note"] if form.is_valid() else ""
    try:
        if action == "renvoyer":
            services.resend_message(message, actor=request.user, note=note)
            messages.success(request, f"Message « {message.subject} » renvoyé.")
        else:
            services.cancel_message(message, actor=request.user, reason=note)
            messages.warning(request, f"Message « {message.subject} » abandonné.")
    except Refused as error:
        messages.error(request, str(error))
    return redirect("relay:error_queue")
