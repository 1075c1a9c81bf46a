"""Everything the sandbox writes: tokens, logs, documents, the manager's
requests and decisions, the webhooks it sends, and its reference data.

Webhooks leave after the transaction has committed (the portal reads the
operation back as soon as it is told), with httpx and a short timeout.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

import httpx
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from portal.sandbox import bus
from portal.sandbox.models import (
    AccessToken,
    ApiClient,
    Asset,
    Behaviour,
    Contract,
    Document,
    Log,
    Operation,
    OperationStatus,
    OperationType,
    RejectedLog,
    SequenceCounter,
    WebhookDelivery,
    WebhookTarget,
)
from portal.sandbox.vcard import build_vcard

logger = logging.getLogger(__name__)

WEBHOOK_TIMEOUT_SECONDS = 5.0
SHARE = "operations:intervention:share"
UPDATE = "operations:intervention:update"
# The manager's references look like the platform's examples: prefix + yymmddHHMMSS.
REFERENCE_PREFIX = "OPH57_"


def parse_datetime_with_offset(value: object) -> datetime | None:
    """An ISO 8601 date-time that states its offset ('Z' counts), else None."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.utcoffset() is not None else None


def isoformat(moment: datetime) -> str:
    """As the platform writes dates: Paris time with its offset, to the second."""
    return timezone.localtime(moment).isoformat(timespec="seconds")


# Tokens


def issue_token(client: ApiClient) -> AccessToken:
    now = timezone.now()
    lifetime = Behaviour.load().token_expires_in
    # Tokens expired for a day are useless; forgetting them here keeps the table
    # small, and keeping them a day lets a test count the tokens a client fetched.
    AccessToken.objects.filter(client=client, expires_at__lte=now - timedelta(days=1)).delete()
    return AccessToken.objects.create(
        client=client,
        token=secrets.token_urlsafe(32),
        issued_at=now,
        expires_at=now + timedelta(seconds=lifetime),
    )


def client_for_token(token: str) -> ApiClient | None:
    access = (
        AccessToken.objects.filter(token=token, expires_at__gt=timezone.now()).select_related("client").first()
        if token
        else None
    )
    return access.client if access else None


def setup_client(
    *, client_id: str, client_secret: str, label: str = "", webhook_url: str = "", webhook_secret: str = ""
) -> tuple[ApiClient, WebhookTarget | None]:
    """Idempotent: the client gets this secret; the webhook URL is made the one active target."""
    with transaction.atomic():
        client, _ = ApiClient.objects.update_or_create(
            client_id=client_id, defaults={"client_secret": client_secret, **({"label": label} if label else {})}
        )
        target = None
        if webhook_url:
            target = WebhookTarget.objects.filter(url=webhook_url).order_by("pk").first() or WebhookTarget(
                url=webhook_url
            )
            target.secret, target.is_active = webhook_secret, True
            target.save()
            WebhookTarget.objects.exclude(pk=target.pk).update(is_active=False)
    return client, target


# Logs


def _next_sequence() -> int:
    """Called inside a transaction: the counter's row stays locked until commit,
    so logs are committed in the order of their sequence numbers."""
    counter, _ = SequenceCounter.objects.select_for_update().get_or_create(pk=1)
    SequenceCounter.objects.filter(pk=counter.pk).update(value=F("value") + 1)
    counter.refresh_from_db(fields=["value"])
    return counter.value


def _issuer_for(client: ApiClient | None) -> dict:
    if client is None:
        return {}
    name = client.label or client.client_id
    return {
        "entity": {"id": client.client_id, "label": name},
        "user": {"id": client.client_id, "type": "provider", "name": name},
    }


def _location_from(payload: dict) -> dict:
    location = payload.get("location")
    return dict(location) if isinstance(location, dict) else {}


@transaction.atomic
def record_log(*, kind: str, payload: dict, client: ApiClient | None) -> Log:
    """Stores one validated log (never de-duplicated); the first one on a new
    (contractReference, reference) creates the operation, which then follows
    the latest log's status, event and date."""
    sequence = _next_sequence()
    event_date = parse_datetime_with_offset(payload["eventDate"])
    log_date = parse_datetime_with_offset(payload["logDate"])
    assert event_date is not None and log_date is not None, "validate the log before recording it"
    operation = (
        Operation.objects.select_for_update()
        .filter(contract_reference=payload["contractReference"], reference=payload["reference"])
        .first()
    )
    descriptive = {
        "description": payload.get("description", ""),
        "service_code": payload.get("serviceCode", ""),
        "work_type": payload.get("workType", ""),
        "critical_level": payload.get("criticalLevel", 0),
        "location": _location_from(payload),
        "contacts": list(payload.get("contacts", [])),
        "parent_reference": payload.get("parentReference", ""),
    }
    if operation is None:
        operation = Operation.objects.create(
            type=kind,
            contract_reference=payload["contractReference"],
            reference=payload["reference"],
            status=payload["status"],
            event=payload["event"],
            issuer=_issuer_for(client),
            creation_date=log_date,
            last_update_date=log_date,
            **descriptive,
        )
    else:
        operation.status = payload["status"]
        operation.event = payload["event"]
        operation.last_update_date = log_date
        # What the first log left blank, a later one may fill in.
        for name, value in descriptive.items():
            if value and not getattr(operation, name):
                setattr(operation, name, value)
        operation.save()
    return Log.objects.create(
        sequence=sequence,
        received_at=timezone.now(),
        operation=operation,
        type=kind,
        source=Log.Source.API,
        client=client,
        contract_reference=operation.contract_reference,
        reference=operation.reference,
        status=payload["status"],
        event=payload["event"],
        event_date=event_date,
        log_date=log_date,
        description=payload.get("description", ""),
        tags=payload.get("tags", {}),
        raw=payload,
    )


def _safe_text(value: object, max_length: int) -> str:
    # PostgreSQL refuses NUL characters in text; a rejected body may hold anything.
    text = value if isinstance(value, str) else ""
    return text.replace("\x00", "\\u0000")[:max_length]


def record_rejected_log(
    *, kind: str, reason: str, message: str, errors: list[str], raw: str, payload: dict | None = None
) -> RejectedLog:
    payload = payload or {}
    return RejectedLog.objects.create(
        received_at=timezone.now(),
        type=kind,
        reference=_safe_text(payload.get("reference"), 100),
        contract_reference=_safe_text(payload.get("contractReference"), 100),
        reason=reason,
        message=message[:200],
        errors=[_safe_text(error, 500) for error in errors[:50]],
        raw=_safe_text(raw, 20_000),
    )


def take_programmed_rejection() -> bool:
    """Consumes one of the 'reject the next N logs' with a guarded update, so
    several processes together reject exactly N."""
    return bool(
        Behaviour.objects.filter(pk=1, reject_next_logs__gt=0).update(reject_next_logs=F("reject_next_logs") - 1)
    )


def _append_manager_log(
    operation: Operation, *, sequence: int, status: str, event: str, description: str, at: datetime
) -> Log:
    """A log written by the manager (request, quote decision): shaped like the
    platform's own history entries. The caller took `sequence` first, so that
    every writer locks the counter before an operation (no deadlock)."""
    stamp = isoformat(at)
    operation.status = status
    operation.event = event
    operation.last_update_date = at
    operation.save(update_fields=["status", "event", "last_update_date"])
    return Log.objects.create(
        sequence=sequence,
        received_at=timezone.now(),
        operation=operation,
        type=operation.type,
        source=Log.Source.MANAGER,
        contract_reference=operation.contract_reference,
        reference=operation.reference,
        status=status,
        event=event,
        event_date=at,
        log_date=at,
        description=description,
        raw={"status": status, "event": event, "eventDate": stamp, "logDate": stamp, "description": description},
    )


# Documents


def store_document(*, fields: dict, upload: UploadedFile, client: ApiClient | None) -> Document:
    content = b"".join(upload.chunks())
    return Document.objects.create(
        element_type=fields["elementType"],
        element_reference=fields["elementReference"],
        contract_reference=fields["intent_contractReference"],
        title=fields["title"],
        description=fields.get("description", ""),
        document_type=fields["intent_documentType"],
        document_family=fields["intent_documentFamily"],
        creation_date=fields["intent_creationDate"],
        file_name=_safe_text(upload.name, 255) or "document",
        content_type=_safe_text(upload.content_type, 100) or "application/octet-stream",
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        content=content,
        client=client,
        uploaded_at=timezone.now(),
    )


# The manager's side: requests, quote decisions, webhooks


@dataclass(frozen=True)
class RequestInput:
    contract: Contract
    description: str
    service_code: str
    work_type: str
    critical_level: int
    asset: Asset | None
    address: dict
    occupant_title: str
    occupant_first_name: str
    occupant_last_name: str
    occupant_home_phone: str
    occupant_mobile_phone: str
    occupant_email: str
    requester_name: str


def _new_reference(contract_reference: str, at: datetime) -> str:
    base = REFERENCE_PREFIX + timezone.localtime(at).strftime("%y%m%d%H%M%S")
    reference, suffix = base, 1
    while Operation.objects.filter(contract_reference=contract_reference, reference=reference).exists():
        suffix += 1
        reference = f"{base}_{suffix}"
    return reference


@transaction.atomic
def create_request(data: RequestInput, *, operation_url_for: Callable[[str, str], str]) -> Operation:
    """The manager creates an intervention request: the operation with its
    first log (open/requested), then the share webhook once committed.
    operation_url_for(contract_reference, reference) gives the absolute API URL."""
    sequence = _next_sequence()
    now = timezone.now()
    contract = data.contract
    phones = [("HOME,VOICE", data.occupant_home_phone), ("CELL", data.occupant_mobile_phone)]
    contacts = []
    if data.occupant_last_name or data.occupant_first_name:
        contacts.append(
            build_vcard(
                title=data.occupant_title,
                first_name=data.occupant_first_name,
                last_name=data.occupant_last_name,
                phones=phones,
                email=data.occupant_email,
                role="Locataire",
            )
        )
    location: dict = {"assetReference": data.asset.code if data.asset else ""}
    # The asset's address, unless the form says otherwise field by field.
    typed = {key: value for key, value in data.address.items() if value}
    if typed or data.asset:
        blank = {"way": "", "zip": "", "city": "", "country": "France", "complement": ""}
        location["address"] = {**(data.asset.address if data.asset else blank), **typed}
    operation = Operation.objects.create(
        type=OperationType.INTERVENTION,
        contract_reference=contract.reference,
        reference=_new_reference(contract.reference, now),
        status=OperationStatus.OPEN,
        event="requested",
        description=data.description,
        service_code=data.service_code,
        work_type=data.work_type,
        critical_level=data.critical_level,
        location=location,
        contacts=contacts,
        issuer={
            "entity": {"id": f"e-{contract.pk}", "label": contract.manager_name or "Gestionnaire"},
            "user": {"id": "u-1", "type": "client", "name": data.requester_name},
        },
        creation_date=now,
        last_update_date=now,
    )
    _append_manager_log(
        operation,
        sequence=sequence,
        status=OperationStatus.OPEN,
        event="requested",
        description="Demande créée",
        at=now,
    )
    queue_webhook(operation, SHARE, operation_url_for(operation.contract_reference, operation.reference))
    return operation


class QuoteAlreadyDecided(Exception):
    pass


@transaction.atomic
def decide_quote(operation: Operation, *, accepted: bool, operation_url: str) -> Log:
    """The manager accepts (closed/accepted) or refuses (denied/refused) a
    submitted quote; the portal hears of it through the update webhook."""
    sequence = _next_sequence()
    operation = Operation.objects.select_for_update().get(pk=operation.pk)
    if not operation.is_open_quote:
        raise QuoteAlreadyDecided
    status, event, description = (
        (OperationStatus.CLOSED, "accepted", "Devis accepté")
        if accepted
        else (OperationStatus.DENIED, "refused", "Devis refusé")
    )
    log = _append_manager_log(
        operation, sequence=sequence, status=status, event=event, description=description, at=timezone.now()
    )
    queue_webhook(operation, UPDATE, operation_url)
    return log


def notification_for(operation: Operation, notification_type: str, operation_url: str) -> dict:
    return {
        "type": notification_type,
        "id": str(uuid.uuid4()),
        "event": {
            "type": "operations",
            "body": {
                "id": str(operation.uid),
                "reference": operation.reference,
                "contractReference": operation.contract_reference,
                "type": operation.type,
                "description": operation.description,
                "status": operation.status,
                "event": operation.event,
                "serviceCode": operation.service_code,
                "workType": operation.work_type,
                "assetReference": operation.asset_reference,
                # A string in the webhook, an integer in the operation: as the platform does.
                "criticalLevel": str(operation.critical_level),
                "issuer": operation.issuer,
                "operation_url": operation_url,
            },
        },
    }


def queue_webhook(operation: Operation, notification_type: str, operation_url: str) -> list[WebhookDelivery]:
    """Records one delivery per active target (or one that says there is none)
    and sends them after commit. The body is kept as sent, for a resend."""
    if bus.routes(operation.contract_reference):
        bus.publish_after_commit(operation)  # the Nexxio demo client hears over Pub/Sub, not by webhook
        return []
    body = json.dumps([notification_for(operation, notification_type, operation_url)], ensure_ascii=False)
    notification_id = json.loads(body)[0]["id"]
    return _queue_deliveries(operation, notification_id, notification_type, body)


def _queue_deliveries(
    operation: Operation, notification_id: str, notification_type: str, body: str
) -> list[WebhookDelivery]:
    targets = list(WebhookTarget.objects.filter(is_active=True))
    common = {
        "operation": operation,
        "notification_id": notification_id,
        "notification_type": notification_type,
        "body": body,
    }
    if not targets:
        return [
            WebhookDelivery.objects.create(
                **common, error="Aucune cible de webhook active : rien n'a été envoyé.", sent_at=timezone.now()
            )
        ]
    deliveries = [WebhookDelivery.objects.create(**common, target=target, url=target.url) for target in targets]
    for delivery in deliveries:
        transaction.on_commit(partial(send_webhook, delivery.pk))
    return deliveries


def resend_webhook(delivery: WebhookDelivery) -> list[WebhookDelivery]:
    """The same notification (same id, same body) again, to today's targets."""
    with transaction.atomic():
        return _queue_deliveries(
            delivery.operation, str(delivery.notification_id), delivery.notification_type, delivery.body
        )


def signature_for(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def send_webhook(delivery_id: int) -> WebhookDelivery:
    """Network I/O, outside any transaction; records the outcome on the delivery."""
    delivery = WebhookDelivery.objects.select_related("target").get(pk=delivery_id)
    body = delivery.body.encode()
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "intent-sandbox/1.0"}
    if delivery.target and delivery.target.secret:
        headers["X-Intent-Signature"] = signature_for(delivery.target.secret, body)
    started = time.monotonic()
    status_code, error = None, ""
    try:
        response = httpx.post(delivery.url, content=body, headers=headers, timeout=WEBHOOK_TIMEOUT_SECONDS)
        status_code = response.status_code
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        logger.warning("sandbox webhook to %s failed: %s", delivery.url, error)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        sent_at=timezone.now(),
        status_code=status_code,
        error=error,
        duration_ms=int((time.monotonic() - started) * 1000),
    )
    delivery.refresh_from_db()
    return delivery


# Housekeeping and reference data


@transaction.atomic
def reset_sandbox() -> None:
    """Wipes what was received and sent, and the switches; keeps the clients,
    the webhook targets and the reference data. Sequence numbers keep growing,
    so a reader's `since` never sees an old number again."""
    Log.objects.all().delete()
    WebhookDelivery.objects.all().delete()
    Operation.objects.all().delete()
    RejectedLog.objects.all().delete()
    Document.objects.all().delete()
    Behaviour.objects.all().delete()
    Behaviour.load()


def _sla(intervention: tuple[int, str], recovery: tuple[int, str]) -> dict:
    return {
        "maxTimeToIntervention": {"value": intervention[0], "unit": intervention[1]},
        "maxTimeToRecovery": {"value": recovery[0], "unit": recovery[1]},
    }


SEED_CONTRACTS = [
    {
        "reference": "MULTITECH-2024-07",
        "label": "Maintenance multitechnique",
        "topic": "Multitechnique",
        "manager_name": "Office Public de l'Habitat de Metz",
        "service_codes": [
            {"code": "PLB-FUITE", "label": "Recherche et réparation de fuite", "sla": _sla((24, "hour"), (72, "hour"))},
            {"code": "PLB-DEBOUCH", "label": "Débouchage de canalisation", "sla": _sla((24, "hour"), (48, "hour"))},
            {"code": "ELE-PANNE", "label": "Panne électrique", "sla": _sla((4, "hour"), (24, "hour"))},
            {
                "code": "CHF-PANNE",
                "label": "Panne de chauffage ou d'eau chaude",
                "sla": _sla((8, "hour"), (48, "hour")),
            },
            {"code": "SER-PORTE", "label": "Serrurerie : ouverture de porte", "sla": _sla((4, "hour"), (24, "hour"))},
            {"code": "VMC-ENT", "label": "Entretien annuel de VMC", "sla": _sla((30, "day"), (30, "day"))},
        ],
    },
]

SEED_ASSETS = [
    {"code": "RES-TILLEULS", "label": "Résidence Les Tilleuls", "type": "site", "parent_reference": ""},
    {
        "code": "BAT-B",
        "label": "Résidence Les Tilleuls – bâtiment B",
        "type": "building",
        "parent_reference": "RES-TILLEULS",
    },
    {
        "code": "LGT-0412",
        "label": "Logement 12, bâtiment B, 3e étage",
        "type": "dwelling",
        "parent_reference": "BAT-B",
        "complement": "Bâtiment B, 3e étage, porte 12",
    },
    {
        "code": "LGT-0415",
        "label": "Logement 15, bâtiment B, 4e étage",
        "type": "dwelling",
        "parent_reference": "BAT-B",
        "complement": "Bâtiment B, 4e étage, porte 15",
    },
    {
        "code": "EQP-CHAUF-B",
        "label": "Chaufferie collective du bâtiment B",
        "type": "equipment",
        "parent_reference": "BAT-B",
        "complement": "Sous-sol, local chaufferie",
    },
]


@transaction.atomic
def seed_reference_data() -> tuple[int, int]:
    """A believable contract and a few assets; running it again changes nothing."""
    for contract in SEED_CONTRACTS:
        Contract.objects.update_or_create(
            reference=contract["reference"], defaults={k: v for k, v in contract.items() if k != "reference"}
        )
    for asset in SEED_ASSETS:
        defaults = {"way": "14 rue des Tilleuls", "zip": "57000", "city": "Metz", "country": "France", "complement": ""}
        defaults |= {k: v for k, v in asset.items() if k != "code"}
        Asset.objects.update_or_create(code=asset["code"], defaults=defaults)
    return len(SEED_CONTRACTS), len(SEED_ASSETS)
