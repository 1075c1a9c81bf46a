"""The Intent REST API, as the sandbox serves it (see docs/platform.md):
OAuth client credentials, logs, operations, documents, contracts and assets.

Every endpoint goes through `api_endpoint`, which applies the misbehaviour
switches (read from the database on each call, so every process obeys them)
and checks the bearer token. Errors are JSON; bad input is a 4xx, never a 500.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import io
import json
import random
import time
from collections.abc import Callable
from functools import wraps
from http import HTTPStatus
from urllib.parse import urlencode

from django import forms
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.http.multipartparser import (
    FIELD,
    ChunkIter,
    LazyStream,
    MultiPartParser,
    MultiPartParserError,
    Parser,
    exhaust,
)
from django.urls import reverse
from django.utils.datastructures import MultiValueDict
from django.utils.encoding import force_str
from django.utils.http import parse_header_parameters
from django.views.decorators.csrf import csrf_exempt

from portal.sandbox import services, validation
from portal.sandbox.models import (
    ApiClient,
    Asset,
    Behaviour,
    Contract,
    Document,
    Operation,
    OperationType,
    RejectedLog,
)

MAX_LOG_BYTES = 1024 * 1024
MAX_DOCUMENT_BYTES = 20 * 1024 * 1024
MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 20
HAL = "application/hal+json"

STATUSES = validation.STATUSES
ELEMENT_TYPES = set(OperationType.values)


def json_response(
    data: dict | list, status: int = HTTPStatus.OK, content_type: str = "application/json"
) -> JsonResponse:
    return JsonResponse(
        data, status=status, safe=False, content_type=content_type, json_dumps_params={"ensure_ascii": False}
    )


def error(status: int, message: str, errors: list[str] | None = None) -> JsonResponse:
    body: dict = {"message": message}
    if errors is not None:
        body["errors"] = errors
    return json_response(body, status)


def absolute(request: HttpRequest, name: str, *args: str, query: dict | None = None) -> str:
    url = request.build_absolute_uri(reverse(f"sandbox:{name}", args=args))
    return f"{url}?{urlencode(query)}" if query else url


def _bearer_token(request: HttpRequest) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def has_nul(request: HttpRequest, *values: object) -> bool:
    """PostgreSQL refuses NUL characters in text, even in a WHERE clause."""
    texts = [*request.GET.keys(), *request.GET.values(), *(value for value in values if isinstance(value, str))]
    return any("\x00" in text for text in texts)


def api_endpoint(*, methods: tuple[str, ...], authenticated: bool = True) -> Callable:
    """The view is called as view(request, client, behaviour, ...)."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @csrf_exempt
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method not in methods:
                response = error(HTTPStatus.METHOD_NOT_ALLOWED, "Méthode non autorisée.")
                response["Allow"] = ", ".join(methods)
                return response
            if has_nul(request, *kwargs.values()):
                return error(HTTPStatus.BAD_REQUEST, "Caractère nul interdit dans l'adresse.")
            behaviour = Behaviour.load()
            if behaviour.delay_ms:
                time.sleep(behaviour.delay_ms / 1000)
            if behaviour.down:
                return error(HTTPStatus.SERVICE_UNAVAILABLE, "Service indisponible (panne simulée).")
            if behaviour.error_rate_500 and random.random() < behaviour.error_rate_500:
                return error(HTTPStatus.INTERNAL_SERVER_ERROR, "Erreur interne (simulée).")
            if behaviour.error_rate_429 and random.random() < behaviour.error_rate_429:
                response = error(HTTPStatus.TOO_MANY_REQUESTS, "Trop de requêtes (limite simulée).")
                response["Retry-After"] = "1"
                return response
            client = None
            if authenticated:
                client = services.client_for_token(_bearer_token(request))
                if client is None:
                    response = json_response(
                        {"error": "invalid_token", "message": "Jeton d'accès absent, invalide ou expiré."},
                        HTTPStatus.UNAUTHORIZED,
                    )
                    response["WWW-Authenticate"] = 'Bearer error="invalid_token"'
                    return response
            return view(request, client, behaviour, *args, **kwargs)

        return wrapper

    return decorator


# OAuth


def _client_credentials(request: HttpRequest) -> tuple[str, str]:
    """From the form, or from HTTP Basic as RFC 6749 also allows."""
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            client_id, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return "", ""
        return client_id, secret
    return request.POST.get("client_id", ""), request.POST.get("client_secret", "")


@api_endpoint(methods=("POST",), authenticated=False)
def token(request: HttpRequest, client: None, behaviour: Behaviour) -> HttpResponse:
    try:
        grant_type = request.POST.get("grant_type", "")
        client_id, client_secret = _client_credentials(request)
    except (SuspiciousOperation, MultiPartParserError):
        return json_response({"error": "invalid_request"}, HTTPStatus.BAD_REQUEST)
    if grant_type != "client_credentials":
        return json_response({"error": "unsupported_grant_type"}, HTTPStatus.BAD_REQUEST)
    known = client_id and "\x00" not in client_id
    api_client = ApiClient.objects.filter(client_id=client_id).first() if known else None
    if api_client is None or not hmac.compare_digest(api_client.client_secret.encode(), client_secret.encode()):
        return json_response({"error": "invalid_client"}, HTTPStatus.UNAUTHORIZED)
    access = services.issue_token(api_client)
    response = json_response(
        {"access_token": access.token, "token_type": "Bearer", "expires_in": behaviour.token_expires_in}
    )
    response["Cache-Control"] = "no-store"
    return response


# Logs


def _read_json_object(request: HttpRequest) -> tuple[dict | None, str, HttpResponse | None]:
    """(payload, raw text, error response)."""
    try:
        length = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        length = 0
    if length > MAX_LOG_BYTES:
        return None, "", error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "Corps de requête trop volumineux.")
    try:
        body = request.body
    except RequestDataTooBig:
        return None, "", error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "Corps de requête trop volumineux.")
    if len(body) > MAX_LOG_BYTES:
        return None, "", error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "Corps de requête trop volumineux.")
    raw = body.decode("utf-8", errors="replace")
    try:
        payload = json.loads(body.decode("utf-8"), parse_constant=_refuse_constant)
        # Lone surrogates and NUL characters would make the database refuse the row.
        dumped = json.dumps(payload, ensure_ascii=False)
        dumped.encode("utf-8")
    except (ValueError, UnicodeError, RecursionError):
        return None, raw, error(HTTPStatus.BAD_REQUEST, "Le corps n'est pas du JSON valide.", ["JSON invalide"])
    if "\\u0000" in dumped:
        return None, raw, error(HTTPStatus.BAD_REQUEST, "Le JSON contient un caractère nul.", ["caractère nul"])
    if not isinstance(payload, dict):
        return None, raw, error(HTTPStatus.BAD_REQUEST, "Un objet JSON est attendu.", ["objet JSON attendu"])
    return payload, raw, None


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} n'est pas du JSON")


@api_endpoint(methods=("POST",))
def post_log(request: HttpRequest, client: ApiClient, behaviour: Behaviour, kind: str) -> HttpResponse:
    payload, raw, failure = _read_json_object(request)
    if failure is not None:
        if failure.status_code == HTTPStatus.BAD_REQUEST:
            message = json.loads(failure.content)["message"]
            services.record_rejected_log(
                kind=kind, reason=RejectedLog.Reason.INVALID, message=message, errors=[message], raw=raw
            )
        return failure
    assert payload is not None
    if behaviour.strict and (reasons := validation.strict_refusal(payload)):
        services.record_rejected_log(
            kind=kind,
            reason=RejectedLog.Reason.INVALID,
            message="validation",
            errors=reasons,
            raw=raw,
            payload=payload,
        )
        return json_response({"error": "validation", "messages": reasons}, HTTPStatus.BAD_REQUEST)
    if errors := validation.validate_log(payload):
        services.record_rejected_log(
            kind=kind,
            reason=RejectedLog.Reason.INVALID,
            message="Log invalide.",
            errors=errors,
            raw=raw,
            payload=payload,
        )
        return error(HTTPStatus.BAD_REQUEST, "Log invalide.", errors)
    if behaviour.reject_reference and payload["reference"] == behaviour.reject_reference:
        message = f"Opération {payload['reference']} refusée par la plateforme."
        services.record_rejected_log(
            kind=kind, reason=RejectedLog.Reason.REJECT_REFERENCE, message=message, errors=[], raw=raw, payload=payload
        )
        return error(HTTPStatus.BAD_REQUEST, message, [message])
    if behaviour.reject_next_logs and services.take_programmed_rejection():
        message = "Code prestation inconnu"
        services.record_rejected_log(
            kind=kind, reason=RejectedLog.Reason.REJECT_NEXT, message=message, errors=[], raw=raw, payload=payload
        )
        return error(HTTPStatus.BAD_REQUEST, message, [f"serviceCode : {message.lower()}."])
    services.record_log(kind=kind, payload=payload, client=client)
    if behaviour.timeout_after_store_rate and random.random() < behaviour.timeout_after_store_rate:
        # Stored and committed; the answer comes too late for a patient-less
        # client: the ambiguous failure the portal must survive.
        time.sleep(behaviour.timeout_after_store_seconds)
    if behaviour.gateway_error_after_store_rate and random.random() < behaviour.gateway_error_after_store_rate:
        # Stored and committed, then a gateway in front of the platform answers
        # in its place: the client cannot tell whether the log arrived.
        return HttpResponse(
            "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>",
            status=HTTPStatus.BAD_GATEWAY,
            content_type="text/html",
        )
    return HttpResponse(status=HTTPStatus.NO_CONTENT)


# Operations


def _service_json(operation: Operation, contract: Contract | None) -> dict | None:
    if not operation.service_code:
        return None
    service = contract.service(operation.service_code) if contract else None
    return {
        "code": operation.service_code,
        "label": (service or {}).get("label", ""),
        "sla": (service or {}).get("sla"),
    }


def _location_json(operation: Operation) -> dict:
    location = dict(operation.location) if isinstance(operation.location, dict) else {}
    location.setdefault("assetReference", "")
    if "address" not in location and location["assetReference"]:
        asset = Asset.objects.filter(code=location["assetReference"]).first()
        if asset:
            location["address"] = asset.address
    return location


def operation_url(request: HttpRequest, contract_reference: str, reference: str) -> str:
    return absolute(request, "api_operation", reference, query={"contractReference": contract_reference})


def operation_json(request: HttpRequest, operation: Operation) -> dict:
    contract = Contract.objects.filter(reference=operation.contract_reference).first()
    data = {
        "_links": {
            "self": {"href": operation_url(request, operation.contract_reference, operation.reference)},
            "documents:list": {
                "href": absolute(
                    request,
                    "api_documents",
                    query={"elementType": operation.type, "elementReference": operation.reference},
                )
            },
            "actions:reservation:create": {"href": absolute(request, "api_reservation_logs")},
        },
        "reference": operation.reference,
        "type": operation.type,
        "status": operation.status,
        "event": operation.event,
        "description": operation.description,
        "criticalLevel": operation.critical_level,
        "workType": operation.work_type,
        "creationDate": services.isoformat(operation.creation_date),
        "lastUpdateDate": services.isoformat(operation.last_update_date),
        "issuer": operation.issuer,
        "contract": {
            "reference": operation.contract_reference,
            "label": contract.label if contract else "",
            "topic": contract.topic if contract else "",
        },
        "service": _service_json(operation, contract),
        "location": _location_json(operation),
        "contacts": operation.contacts,
        "logs": list(operation.logs.order_by("sequence").values_list("raw", flat=True)),
    }
    if operation.parent_reference:
        data["parentReference"] = operation.parent_reference
    return data


@api_endpoint(methods=("GET",))
def get_operation(
    request: HttpRequest, client: ApiClient, behaviour: Behaviour, reference: str, kind: str = ""
) -> HttpResponse:
    contract_reference = request.GET.get("contractReference", "")
    if not contract_reference:
        return error(HTTPStatus.BAD_REQUEST, "Le paramètre contractReference est obligatoire.")
    operations = Operation.objects.filter(type=kind) if kind else Operation.objects.all()  # /quotations/: quotes only
    operation = operations.filter(contract_reference=contract_reference, reference=reference).first()
    if operation is None:
        return error(HTTPStatus.NOT_FOUND, "Opération introuvable.")
    return json_response(operation_json(request, operation), content_type=HAL)


def _positive_int(value: str | None, default: int) -> int | None:
    if value is None or value == "":
        return default
    return int(value) if value.isdigit() else None


def operation_summary(request: HttpRequest, operation: Operation) -> dict:
    return {
        "_links": {"self": {"href": operation_url(request, operation.contract_reference, operation.reference)}},
        "reference": operation.reference,
        "contractReference": operation.contract_reference,
        "type": operation.type,
        "status": operation.status,
        "event": operation.event,
        "description": operation.description,
        "serviceCode": operation.service_code,
        "workType": operation.work_type,
        "criticalLevel": operation.critical_level,
        "assetReference": operation.asset_reference,
        "creationDate": services.isoformat(operation.creation_date),
        "lastUpdateDate": services.isoformat(operation.last_update_date),
    }


@api_endpoint(methods=("GET",))
def list_operations(request: HttpRequest, client: ApiClient, behaviour: Behaviour) -> HttpResponse:
    """Pages start at 1, in creation order (stable while someone pages through)."""
    page = _positive_int(request.GET.get("page"), 1)
    per_page = _positive_int(request.GET.get("perPage"), DEFAULT_PER_PAGE)
    status = request.GET.get("status", "")
    errors = []
    if not page:
        errors.append("page : entier à partir de 1.")
    if not per_page or per_page > MAX_PER_PAGE:
        errors.append(f"perPage : entier de 1 à {MAX_PER_PAGE}.")
    if status and status not in STATUSES:
        errors.append(f"status : valeur inconnue ({', '.join(sorted(STATUSES))} attendu).")
    if errors:
        return error(HTTPStatus.BAD_REQUEST, "Paramètres invalides.", errors)
    assert page is not None and per_page is not None
    operations = Operation.objects.order_by("pk")
    if status:
        operations = operations.filter(status=status)
    for parameter, field in (("contractReference", "contract_reference"), ("type", "type")):
        if request.GET.get(parameter):
            operations = operations.filter(**{field: request.GET[parameter]})
    start = (page - 1) * per_page
    rows = list(operations[start : start + per_page])
    query = {key: value for key, value in request.GET.items() if key not in {"page", "perPage"}}
    links = {"self": {"href": absolute(request, "api_operations", query={**query, "page": page, "perPage": per_page})}}
    if len(rows) == per_page:
        links["next"] = {
            "href": absolute(request, "api_operations", query={**query, "page": page + 1, "perPage": per_page})
        }
    return json_response(
        {
            "_links": links,
            "page": page,
            "perPage": per_page,
            "_embedded": {"operations": [operation_summary(request, operation) for operation in rows]},
        },
        content_type=HAL,
    )


# Documents


class DocumentForm(forms.Form):
    """The upload's multipart fields, under the platform's own names."""

    file = forms.FileField(allow_empty_file=False)
    title = forms.CharField(max_length=200)
    description = forms.CharField(required=False, max_length=10_000)
    elementType = forms.ChoiceField(choices=OperationType.choices)
    elementReference = forms.CharField(max_length=100)
    intent_contractReference = forms.CharField(max_length=100)
    intent_documentType = forms.CharField(max_length=100)
    intent_documentFamily = forms.CharField(max_length=100)
    intent_creationDate = forms.CharField()

    def clean_intent_creationDate(self):
        parsed = services.parse_datetime_with_offset(self.cleaned_data["intent_creationDate"])
        if parsed is None:
            raise forms.ValidationError("date ISO 8601 avec décalage horaire attendue.")
        return parsed

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_DOCUMENT_BYTES:
            raise forms.ValidationError("fichier trop volumineux.")
        return upload


def document_json(request: HttpRequest, document: Document, *, strict: bool = False) -> dict:
    """A document as listed. A strict platform lists it under the multipart field
    names it was sent with (`intent_creationDate`...), as an outside integrator's
    stand-in did."""
    if strict:
        return {
            "_links": {"download": {"href": absolute(request, "document_download", str(document.pk))}},
            "id": str(document.pk),
            "title": document.title,
            "description": document.description,
            "elementType": document.element_type,
            "elementReference": document.element_reference,
            "intent_contractReference": document.contract_reference,
            "intent_documentType": document.document_type,
            "intent_documentFamily": document.document_family,
            "intent_creationDate": services.isoformat(document.creation_date),
            "fileName": document.file_name,
            "contentType": document.content_type,
            "size": document.size,
        }
    return {
        "_links": {"download": {"href": absolute(request, "document_download", str(document.pk))}},
        "id": str(document.pk),
        "title": document.title,
        "description": document.description,
        "elementType": document.element_type,
        "elementReference": document.element_reference,
        "contractReference": document.contract_reference,
        "documentType": document.document_type,
        "documentFamily": document.document_family,
        "creationDate": services.isoformat(document.creation_date),
        "fileName": document.file_name,
        "contentType": document.content_type,
        "size": document.size,
        "sha256": document.sha256,
        "uploadDate": services.isoformat(document.uploaded_at),
    }


@api_endpoint(methods=("GET", "POST"))
def documents(request: HttpRequest, client: ApiClient, behaviour: Behaviour) -> HttpResponse:
    if request.method == "GET":
        return _list_documents(request, strict=behaviour.strict)
    try:
        length = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        length = 0
    if length > MAX_DOCUMENT_BYTES + 64 * 1024:
        return error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "Document trop volumineux.")
    try:
        data, files = _strict_multipart(request) if behaviour.strict else (request.POST, request.FILES)
        form = DocumentForm(data, files)
        valid = form.is_valid()
    except RequestDataTooBig:
        return error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "Requête trop volumineuse.")
    except (SuspiciousOperation, MultiPartParserError):
        return error(HTTPStatus.BAD_REQUEST, "Requête multipart illisible.", ["multipart invalide"])
    if not valid:
        errors = [f"{name} : {' '.join(messages)}" for name, messages in form.errors.items()]
        if any("trop volumineux" in message for message in errors):
            return error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "Document trop volumineux.", errors)
        return error(HTTPStatus.BAD_REQUEST, "Document invalide.", errors)
    document = services.store_document(fields=form.cleaned_data, upload=form.cleaned_data["file"], client=client)
    return json_response(document_json(request, document), HTTPStatus.CREATED, content_type=HAL)


def _strict_multipart(request: HttpRequest) -> tuple[QueryDict, MultiValueDict]:
    """The multipart body as a stricter platform reads it: each text part in the
    charset its own Content-Type declares, and in Latin-1 when it declares none
    (as many Java stacks do), not in UTF-8. The files as usual."""
    body = request.read(MAX_DOCUMENT_BYTES + 64 * 1024 + 1)
    if len(body) > MAX_DOCUMENT_BYTES + 64 * 1024:
        raise RequestDataTooBig("Requête trop volumineuse.")
    post, files = MultiPartParser(request.META, io.BytesIO(body), request.upload_handlers, request.encoding).parse()
    post = post.copy()
    boundary = parse_header_parameters(request.META.get("CONTENT_TYPE", ""))[1]["boundary"]  # checked by the parser
    texts: dict[str, list[str]] = {}
    for item_type, meta, stream in Parser(LazyStream(ChunkIter(io.BytesIO(body), 64 * 1024)), boundary.encode()):
        name = force_str((meta.get("content-disposition") or ("", {}))[1].get("name") or "", errors="replace")
        if item_type != FIELD or not name.strip():
            exhaust(stream)
            continue
        charset = force_str((meta.get("content-type") or ("", {}))[1].get("charset") or "", errors="replace")
        data = stream.read()
        try:
            text = data.decode(charset.strip() or "iso-8859-1", errors="replace")
        except LookupError:  # an unknown charset
            text = data.decode("iso-8859-1")
        texts.setdefault(name.strip(), []).append(text)
    for name, values in texts.items():
        post.setlist(name, values)
    return post, files


def _list_documents(request: HttpRequest, *, strict: bool = False) -> HttpResponse:
    element_type = request.GET.get("elementType", "")
    if element_type and element_type not in ELEMENT_TYPES:
        return error(HTTPStatus.BAD_REQUEST, "Paramètres invalides.", ["elementType : valeur inconnue."])
    rows = Document.objects.defer("content").order_by("uploaded_at", "pk")
    for parameter, field in (
        ("elementType", "element_type"),
        ("elementReference", "element_reference"),
        ("contractReference", "contract_reference"),
    ):
        if request.GET.get(parameter):
            rows = rows.filter(**{field: request.GET[parameter]})
    return json_response(
        {
            "_links": {"self": {"href": request.build_absolute_uri()}},
            "_embedded": {"documents": [document_json(request, document, strict=strict) for document in rows[:500]]},
        },
        content_type=HAL,
    )


# Reference data


def contract_json(request: HttpRequest, contract: Contract) -> dict:
    return {
        "_links": {"self": {"href": absolute(request, "api_contract", contract.reference)}},
        "reference": contract.reference,
        "label": contract.label,
        "topic": contract.topic,
        "serviceCodes": contract.service_codes,
    }


@api_endpoint(methods=("GET",))
def get_contract(request: HttpRequest, client: ApiClient, behaviour: Behaviour, reference: str) -> HttpResponse:
    contract = Contract.objects.filter(reference=reference).first()
    if contract is None:
        return error(HTTPStatus.NOT_FOUND, "Marché introuvable.")
    return json_response(contract_json(request, contract), content_type=HAL)


@api_endpoint(methods=("GET",))
def get_asset(request: HttpRequest, client: ApiClient, behaviour: Behaviour, code: str) -> HttpResponse:
    asset = Asset.objects.filter(code=code).first()
    if asset is None:
        return error(HTTPStatus.NOT_FOUND, "Élément de patrimoine introuvable.")
    return json_response(
        {
            "_links": {"self": {"href": absolute(request, "api_asset", asset.code)}},
            "code": asset.code,
            "reference": asset.code,
            "label": asset.label,
            "type": asset.type,
            "address": asset.address,
            "parentReference": asset.parent_reference,
        },
        content_type=HAL,
    )


@csrf_exempt
def not_found(request: HttpRequest) -> HttpResponse:
    return error(HTTPStatus.NOT_FOUND, "Adresse inconnue dans l'API.")
