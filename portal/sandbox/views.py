"""The manager's side of the sandbox (French pages, no login: the sandbox is
only mounted in development, demo and tests), and the JSON control endpoints
that tests and benchmarks use."""

from __future__ import annotations

import json
from http import HTTPStatus

from django.contrib import messages
from django.db.models import Count
from django.forms.models import model_to_dict
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from portal.sandbox import api, bus, services
from portal.sandbox.forms import ApiClientForm, BehaviourForm, InterventionRequestForm, WebhookTargetForm
from portal.sandbox.models import (
    ApiClient,
    Behaviour,
    Contract,
    Document,
    Log,
    Operation,
    OperationType,
    RejectedLog,
    WebhookDelivery,
    WebhookTarget,
)
from portal.sandbox.vcard import read_vcard

MAX_LOGS_PER_READ = 10_000


def _get_operation(contract_reference: str, reference: str) -> Operation:
    return get_object_or_404(Operation, contract_reference=contract_reference, reference=reference)


def _detail_url(operation: Operation) -> str:
    return reverse("sandbox:operation", args=[operation.contract_reference, operation.reference])


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    bus.collect()  # what the portal published on Nexxio's topic, recorded as logs
    operations = Operation.objects.annotate(log_count=Count("logs")).order_by("-last_update_date", "-pk")[:200]
    # Submitted quotes waiting for the manager's answer, with their latest amounts and PDF.
    quotes = list(Operation.objects.filter(type=OperationType.QUOTATION).exclude(status__in=("closed", "denied")))
    for quote in quotes:
        last = quote.logs.filter(source=Log.Source.API).order_by("-sequence").first()
        quote.tags = last.tags if last is not None else {}
        quote.pdf = (
            Document.objects.defer("content")
            .filter(
                element_type="quotation", contract_reference=quote.contract_reference, element_reference=quote.reference
            )
            .last()
        )
    context = {
        "operations": operations,
        "quotes": quotes,
        "behaviour": Behaviour.load(),
        "log_count": Log.objects.count(),
        "rejected_count": RejectedLog.objects.count(),
    }
    return render(request, "sandbox/index.html", context)


@require_GET
def operation_detail(request: HttpRequest, contract: str, reference: str) -> HttpResponse:
    bus.collect()
    operation = _get_operation(contract, reference)
    logs = list(operation.logs.order_by("sequence"))
    for log in logs:
        log.contacts = [read_vcard(text) for text in log.raw.get("contacts", []) if isinstance(text, str)]
        extra = {
            key: value
            for key, value in log.raw.items()
            if key not in {"status", "event", "eventDate", "logDate", "description", "tags", "contacts"}
        }
        log.extra_json = json.dumps(extra, ensure_ascii=False, indent=2) if extra else ""
    context = {
        "operation": operation,
        "contacts": [read_vcard(text) for text in operation.contacts if isinstance(text, str)],
        "logs": logs,
        "documents": Document.objects.defer("content").filter(contract_reference=contract, element_reference=reference),
        "deliveries": operation.webhook_deliveries.order_by("-pk"),
        "rejected": RejectedLog.objects.filter(contract_reference=contract, reference=reference),
        "operation_url": api.operation_url(request, contract, reference),
        "via_bus": bus.routes(contract),
    }
    return render(request, "sandbox/operation.html", context)


@require_http_methods(["GET", "POST"])
def new_request(request: HttpRequest) -> HttpResponse:
    form = InterventionRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        operation = services.create_request(
            form.to_input(),
            operation_url_for=lambda contract, reference: api.operation_url(request, contract, reference),
        )
        messages.success(request, f"Demande {operation.reference} créée.")
        return redirect(_detail_url(operation))
    return render(request, "sandbox/new_request.html", {"form": form, "has_contracts": Contract.objects.exists()})


@require_POST
def seed(request: HttpRequest) -> HttpResponse:
    services.seed_reference_data()
    messages.success(request, "Marché et patrimoine d'exemple chargés.")
    return redirect("sandbox:new_request")


@require_POST
def quote_decision(request: HttpRequest, contract: str, reference: str, accepted: bool) -> HttpResponse:
    operation = _get_operation(contract, reference)
    try:
        services.decide_quote(
            operation, accepted=accepted, operation_url=api.operation_url(request, contract, reference)
        )
    except services.QuoteAlreadyDecided:
        messages.error(request, "Ce devis a déjà reçu une réponse.")
    else:
        messages.success(request, "Devis accepté." if accepted else "Devis refusé.")
    return redirect(_detail_url(operation))


@require_POST
def webhook_resend(request: HttpRequest, pk: int) -> HttpResponse:
    delivery = get_object_or_404(WebhookDelivery.objects.select_related("operation"), pk=pk)
    services.resend_webhook(delivery)
    messages.success(request, "Notification renvoyée.")
    return redirect(_detail_url(delivery.operation))


@require_GET
def document_download(request: HttpRequest, pk: str) -> HttpResponse:
    document = get_object_or_404(Document, pk=pk)
    response = HttpResponse(bytes(document.content), content_type=document.content_type)
    response["Content-Disposition"] = _attachment(document.file_name)
    return response


def _attachment(file_name: str) -> str:
    return content_disposition_header(as_attachment=True, filename=file_name) or "attachment"


@require_http_methods(["GET", "POST"])
def behaviour_page(request: HttpRequest) -> HttpResponse:
    form = BehaviourForm(request.POST or None, instance=Behaviour.load())
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Comportement enregistré.")
        return redirect("sandbox:behaviour")
    return render(request, "sandbox/behaviour.html", {"form": form})


@require_POST
def reset_page(request: HttpRequest) -> HttpResponse:
    services.reset_sandbox()
    messages.success(request, "Bac à sable remis à zéro.")
    return redirect("sandbox:index")


@require_http_methods(["GET", "POST"])
def access(request: HttpRequest) -> HttpResponse:
    """The API clients and the webhook targets, and the addresses to give the portal."""
    client_form = ApiClientForm(request.POST if request.POST.get("form") == "client" else None, prefix="client")
    target_form = WebhookTargetForm(request.POST if request.POST.get("form") == "target" else None, prefix="target")
    if request.method == "POST":
        form = client_form if request.POST.get("form") == "client" else target_form
        if form.is_valid():
            form.save()
            messages.success(request, "Enregistré.")
            return redirect("sandbox:access")
    context = {
        "clients": ApiClient.objects.all(),
        "targets": WebhookTarget.objects.all(),
        "client_form": client_form,
        "target_form": target_form,
        "auth_base": request.build_absolute_uri(reverse("sandbox:index")).rstrip("/"),
        "api_base": request.build_absolute_uri(reverse("sandbox:index")) + "api",
    }
    return render(request, "sandbox/access.html", context)


@require_POST
def client_delete(request: HttpRequest, pk: int) -> HttpResponse:
    get_object_or_404(ApiClient, pk=pk).delete()
    messages.success(request, "Client supprimé.")
    return redirect("sandbox:access")


@require_POST
def target_toggle(request: HttpRequest, pk: int) -> HttpResponse:
    target = get_object_or_404(WebhookTarget, pk=pk)
    WebhookTarget.objects.filter(pk=target.pk).update(is_active=not target.is_active)
    return redirect("sandbox:access")


@require_POST
def target_delete(request: HttpRequest, pk: int) -> HttpResponse:
    get_object_or_404(WebhookTarget, pk=pk).delete()
    messages.success(request, "Cible supprimée.")
    return redirect("sandbox:access")


# JSON control endpoints (tests and benchmarks)


def _json(data: dict, status: int = HTTPStatus.OK) -> JsonResponse:
    return JsonResponse(data, status=status, json_dumps_params={"ensure_ascii": False})


def behaviour_data(behaviour: Behaviour) -> dict:
    return model_to_dict(behaviour, fields=BehaviourForm.Meta.fields)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def behaviour_json(request: HttpRequest) -> JsonResponse:
    """GET the switches; POST a JSON object with any of them to change those."""
    behaviour = Behaviour.load()
    if request.method == "POST":
        try:
            changes = json.loads(request.body or b"{}")
        except (ValueError, RecursionError):
            return _json({"message": "JSON invalide."}, HTTPStatus.BAD_REQUEST)
        if not isinstance(changes, dict):
            return _json({"message": "Un objet JSON est attendu."}, HTTPStatus.BAD_REQUEST)
        if unknown := sorted(set(changes) - set(BehaviourForm.Meta.fields)):
            return _json({"message": "Champs inconnus.", "errors": unknown}, HTTPStatus.BAD_REQUEST)
        form = BehaviourForm({**behaviour_data(behaviour), **changes}, instance=behaviour)
        if not form.is_valid():
            errors = [f"{name} : {' '.join(texts)}" for name, texts in form.errors.items()]
            return _json({"message": "Valeurs invalides.", "errors": errors}, HTTPStatus.BAD_REQUEST)
        behaviour = form.save()
    return _json(behaviour_data(behaviour))


def _since(request: HttpRequest) -> tuple[int, int] | None:
    try:
        since = max(int(request.GET.get("since") or 0), 0)
        limit = min(max(int(request.GET.get("limit") or 1000), 1), MAX_LOGS_PER_READ)
    except ValueError:
        return None
    return since, limit


BAD_SINCE = {"message": "since et limit sont des entiers ; pas de caractère nul."}


@require_GET
def logs_json(request: HttpRequest) -> JsonResponse:
    """Accepted logs after `since`, in sequence order, duplicates included."""
    if (window := _since(request)) is None or api.has_nul(request):
        return _json(BAD_SINCE, HTTPStatus.BAD_REQUEST)
    since, limit = window
    logs = Log.objects.filter(sequence__gt=since).order_by("sequence")
    for parameter, field in (("reference", "reference"), ("contractReference", "contract_reference")):
        if request.GET.get(parameter):
            logs = logs.filter(**{field: request.GET[parameter]})
    rows = list(logs[:limit])
    return _json(
        {
            "logs": [
                {
                    "sequence": log.sequence,
                    "received_at": log.received_at.isoformat(),
                    "type": log.type,
                    "source": log.source,
                    "contractReference": log.contract_reference,
                    "reference": log.reference,
                    "status": log.status,
                    "event": log.event,
                    "eventDate": log.raw.get("eventDate", services.isoformat(log.event_date)),
                    "logDate": log.raw.get("logDate", services.isoformat(log.log_date)),
                    "description": log.description,
                    "tags": log.tags,
                    "raw": log.raw,
                }
                for log in rows
            ],
            "lastSequence": rows[-1].sequence if rows else since,
            "more": len(rows) == limit,
        }
    )


@require_GET
def rejected_json(request: HttpRequest) -> JsonResponse:
    """Log POSTs answered 400, in order (`since` is an id here)."""
    if (window := _since(request)) is None:
        return _json(BAD_SINCE, HTTPStatus.BAD_REQUEST)
    since, limit = window
    rows = list(RejectedLog.objects.filter(pk__gt=since).order_by("pk")[:limit])
    return _json(
        {
            "rejected": [
                {
                    "id": row.pk,
                    "received_at": row.received_at.isoformat(),
                    "type": row.type,
                    "contractReference": row.contract_reference,
                    "reference": row.reference,
                    "reason": row.reason,
                    "message": row.message,
                    "errors": row.errors,
                    "raw": row.raw,
                }
                for row in rows
            ],
            "lastId": rows[-1].pk if rows else since,
            "more": len(rows) == limit,
        }
    )


@csrf_exempt
@require_POST
def reset_json(request: HttpRequest) -> JsonResponse:
    services.reset_sandbox()
    return _json({"reset": True, "behaviour": behaviour_data(Behaviour.load())})
