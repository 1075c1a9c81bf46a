"""The sandbox speaks Nexxio too: the manager's side of the Pub/Sub convention
(docs/platform.md, "Nexxio"), on Google's emulator (`make run` starts it when
gcloud is installed and sets SANDBOX_PUBSUB_EMULATOR_HOST).

The sandbox's contracts marked `via_bus` belong to the Nexxio demo client:
their requests and quote decisions are published on the topic the portal's
subscription reads (the operation itself, its logs included, with `kind`
`intervention` or `quotation`), instead of a webhook; what the portal
publishes on its topic is collected on the manager's subscription (each time
a sandbox page is shown) and recorded as if posted to the API, so that the
sandbox's pages show both platforms' logs alike.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import threading
import uuid
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction

from portal.sandbox import validation
from portal.sandbox.models import Contract, Operation

logger = logging.getLogger(__name__)

PROJECT = "bac-a-sable-nexxio"
TO_PORTAL = "nexxio-vers-portail"  # the manager publishes here; the portal's subscription reads it
PORTAL_SUBSCRIPTION = "portail-entrant"
FROM_PORTAL = "portail-vers-nexxio"  # the portal publishes here
MANAGER_SUBSCRIPTION = "nexxio-gestionnaire"

_lock = threading.Lock()
_clients: dict[str, tuple[Any, Any]] = {}


def emulator_host() -> str:
    return getattr(settings, "SANDBOX_PUBSUB_EMULATOR_HOST", "")


def clients() -> tuple[Any, Any]:
    import grpc
    from google.cloud import pubsub_v1
    from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport
    from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport

    host = emulator_host()
    with _lock:
        if host not in _clients:
            publisher = pubsub_v1.PublisherClient(
                publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True),
                transport=PublisherGrpcTransport(channel=grpc.insecure_channel(host)),
            )
            subscriber = pubsub_v1.SubscriberClient(
                transport=SubscriberGrpcTransport(channel=grpc.insecure_channel(host))
            )
            _clients[host] = (publisher, subscriber)
        return _clients[host]


def set_up() -> None:
    """The two topics and their ordered subscriptions on the emulator (kept if there)."""
    from google.api_core import exceptions as google_errors

    publisher, subscriber = clients()
    for topic, subscription in ((TO_PORTAL, PORTAL_SUBSCRIPTION), (FROM_PORTAL, MANAGER_SUBSCRIPTION)):
        topic_path = f"projects/{PROJECT}/topics/{topic}"
        with contextlib.suppress(google_errors.AlreadyExists):
            publisher.create_topic(name=topic_path)
        with contextlib.suppress(google_errors.AlreadyExists):
            subscriber.create_subscription(
                request={
                    "name": f"projects/{PROJECT}/subscriptions/{subscription}",
                    "topic": topic_path,
                    "enable_message_ordering": True,
                }
            )


def routes(contract_reference: str) -> bool:
    """Whether this contract's operations travel over the bus."""
    return bool(emulator_host()) and Contract.objects.filter(reference=contract_reference, via_bus=True).exists()


def operation_message(operation: Operation) -> dict[str, Any]:
    logs = [
        {
            "status": log.status,
            "event": log.event,
            "eventDate": log.event_date.isoformat(),
            "description": log.raw.get("description", "") if isinstance(log.raw, dict) else "",
        }
        for log in operation.logs.order_by("sequence")
    ]
    return {
        "kind": "quotation" if operation.type == "quotation" else "intervention",
        "reference": operation.reference,
        "contractReference": operation.contract_reference,
        "status": operation.status,
        "event": operation.event,
        "description": operation.description,
        "serviceCode": operation.service_code,
        "workType": operation.work_type,
        "criticalLevel": operation.critical_level,
        "location": operation.location,
        "contacts": operation.contacts,
        "issuer": operation.issuer,
        "parentReference": operation.parent_reference,
        "creationDate": operation.creation_date.isoformat(),
        "logs": logs,
    }


def publish_after_commit(operation: Operation) -> None:
    """Publish the operation as it is once the transaction commits."""
    operation_id = operation.pk
    transaction.on_commit(lambda: publish(Operation.objects.get(pk=operation_id)))


def publish(operation: Operation) -> str:
    publisher, _ = clients()
    data = operation_message(operation)
    try:
        return publisher.publish(
            f"projects/{PROJECT}/topics/{TO_PORTAL}",
            json.dumps(data, ensure_ascii=False).encode(),
            ordering_key=operation.reference,
            kind=data["kind"],
            reference=operation.reference,
            contractReference=operation.contract_reference,
            messageId=str(uuid.uuid4()),
        ).result(timeout=10)
    except Exception:  # the emulator stopped: the sandbox says it in its log, like a failed webhook
        logger.warning("Sandbox: could not publish %s on the bus", operation.reference, exc_info=True)
        return ""


def collect() -> int:
    """Record what the portal published (logs and documents), as the API would."""
    if not emulator_host():
        return 0
    from portal.sandbox import services

    _, subscriber = clients()
    path = f"projects/{PROJECT}/subscriptions/{MANAGER_SUBSCRIPTION}"
    collected = 0
    seen: set[str] = set()
    while True:
        try:
            response = subscriber.pull(subscription=path, max_messages=100, timeout=3)
        except Exception:
            logger.warning("Sandbox: could not read the bus", exc_info=True)
            return collected
        if not response.received_messages:
            return collected
        for item in response.received_messages:
            message_id = item.message.attributes.get("messageId", "")
            try:
                data = json.loads(bytes(item.message.data))
                kind = data.pop("kind", "")
                if kind == "document":
                    file = data.pop("file", {})
                    upload = SimpleUploadedFile(
                        file.get("fileName") or "document",
                        base64.b64decode(file.get("content") or ""),
                        file.get("mime") or "application/octet-stream",
                    )
                    with transaction.atomic():
                        services.store_document(fields=data, upload=upload, client=None)
                elif kind in ("intervention_log", "quotation_log") and not validation.validate_log(data):
                    with transaction.atomic():
                        services.record_log(kind=kind.removesuffix("_log"), payload=data, client=None)
                collected += 1
            except Exception:
                logger.warning("Sandbox: message %s from the portal not recorded", message_id, exc_info=True)
            seen.add(item.ack_id)
        subscriber.acknowledge(subscription=path, ack_ids=list(seen))
        seen.clear()
