"""Nexxio: the Google Cloud Pub/Sub transport (docs/platform.md, "Nexxio").

The portal's convention (Nexxio's own format is not public): one topic for
what the portal sends, one subscription for what it receives, per connection.
Each message's data is a UTF-8 JSON object: an outgoing one is the same log
(or document, its bytes in base64) the Intent API would get, plus `kind`; its
attributes are `kind`, `reference`, `contractReference` and `messageId` (stable
across retries: a message published twice, after a worker died before
recording the first publish, carries the same `messageId`, and the manager
drops the copy). It is published with the stream (the order's reference
stream, "order:<id>") as ordering key, so the bus keeps each order's order.

An incoming message's data is the manager's operation (an Intent operation's
fields, `logs` included) with `kind` `intervention` (a new or changed order; a
cancellation is its `denied`/`canceled` status) or `quotation` (a quote's
answer, in its `status`/`event`). `pull.py` stores and applies them.

Clients are made once per process and connection (a gRPC channel each).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
from google.api_core import exceptions as google_errors
from google.api_core.retry import Retry, if_exception_type
from google.cloud import pubsub_v1
from google.cloud.pubsub_v1.publisher import exceptions as publisher_errors
from google.oauth2 import service_account
from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport
from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport

from portal.relay import intent, readback
from portal.relay.models import Connection, DeliveryAttempt, MessageKind, OutboxMessage

logger = logging.getLogger(__name__)

Outcome = DeliveryAttempt.Outcome

# One Pub/Sub message carries at most 10 MB (data and attributes); a document
# travels in base64 (4/3 of its size) inside the JSON with its metadata.
MAX_MESSAGE_BYTES = 10 * 1000 * 1000
MAX_DOCUMENT_BYTES = (MAX_MESSAGE_BYTES - 64 * 1024) * 3 // 4
TOO_BIG = (
    "Ce document est trop gros pour être transmis par Nexxio (Google Pub/Sub) : "
    "un message y est limité à 10 Mo, soit environ {limit} Mo de fichier. Réduisez-le ou scindez-le."
)

SCOPES = ["https://www.googleapis.com/auth/pubsub"]

# What a failed publish means, by its gRPC status. The statuses Google's own
# publisher retries (the default retry of google.pubsub_v1's Publisher.publish)
# are the bus's or the network's trouble: tried again, with the backoff. Every
# other status (PERMISSION_DENIED, UNAUTHENTICATED, NOT_FOUND, INVALID_ARGUMENT,
# FAILED_PRECONDITION, UNIMPLEMENTED, ...) is the connection's or the message's
# fault, which waiting does not mend: the error queue, where the office sees it.
# What carries no status (no answer within the timeout, the client's own retries
# given up, a paused ordering key, anything else) is tried again. `classify` is
# the table; tests/test_nexxio.py checks it for every status.
RETRY_CODES = frozenset(
    {
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.UNKNOWN,
    }
)
PAUSED = "File de l'ordre en pause après un échec : reprise."
NO_ANSWER = "Pas de réponse du bus Pub/Sub dans le délai (DEADLINE_EXCEEDED)."


class ConfigurationError(ValueError):
    """The connection cannot make a client (French)."""


# --- Clients -----------------------------------------------------------------


def _path(project: str, name: str, collection: str) -> str:
    name = name.strip()
    return name if name.startswith("projects/") else f"projects/{project.strip()}/{collection}/{name}"


def topic_path(connection: Connection) -> str:
    return _path(connection.gcp_project, connection.pubsub_topic, "topics")


def subscription_path(connection: Connection) -> str:
    return _path(connection.gcp_project, connection.pubsub_subscription, "subscriptions")


def credentials_for(connection: Connection) -> Any:
    """The service account's credentials (None on the emulator, which takes none)."""
    if connection.pubsub_emulator_host:
        return None
    try:
        key = json.loads(connection.service_account_key or "null")
    except ValueError as error:
        raise ConfigurationError("La clé du compte de service n'est pas un JSON lisible.") from error
    if not isinstance(key, dict):
        raise ConfigurationError("La clé du compte de service n'est pas enregistrée.")
    try:
        return service_account.Credentials.from_service_account_info(key, scopes=SCOPES)
    except (ValueError, KeyError) as error:
        raise ConfigurationError(f"La clé du compte de service est incomplète : {error}") from error


_lock = threading.Lock()
_publishers: dict[tuple, pubsub_v1.PublisherClient] = {}
_subscribers: dict[tuple, pubsub_v1.SubscriberClient] = {}


def _cache_key(connection: Connection) -> tuple:
    return (connection.pk, connection.pubsub_emulator_host, connection.service_account_key_encrypted)


def publisher_for(connection: Connection) -> pubsub_v1.PublisherClient:
    key = _cache_key(connection)
    with _lock:
        if key not in _publishers:
            options = pubsub_v1.types.PublisherOptions(enable_message_ordering=True)
            # Small batches, sent at once: the 15 minutes are counted from the change.
            batching = pubsub_v1.types.BatchSettings(max_latency=0.002, max_messages=100)
            if connection.pubsub_emulator_host:
                transport = PublisherGrpcTransport(channel=grpc.insecure_channel(connection.pubsub_emulator_host))
                client = pubsub_v1.PublisherClient(batching, options, transport=transport)
            else:
                client = pubsub_v1.PublisherClient(batching, options, credentials=credentials_for(connection))
            _publishers[key] = client
        return _publishers[key]


def subscriber_for(connection: Connection) -> pubsub_v1.SubscriberClient:
    key = _cache_key(connection)
    with _lock:
        if key not in _subscribers:
            if connection.pubsub_emulator_host:
                transport = SubscriberGrpcTransport(channel=grpc.insecure_channel(connection.pubsub_emulator_host))
                _subscribers[key] = pubsub_v1.SubscriberClient(transport=transport)
            else:
                _subscribers[key] = pubsub_v1.SubscriberClient(credentials=credentials_for(connection))
        return _subscribers[key]


def forget_clients() -> None:
    """Drop the cached clients (tests, after the emulator moved)."""
    with _lock:
        _publishers.clear()
        _subscribers.clear()


# --- The convention -----------------------------------------------------------


def bus_message_id(message: OutboxMessage) -> str:
    """The `messageId` attribute: the same for every publish of one outbox message."""
    return f"portail-{message.pk}"


def ordering_key(message: OutboxMessage) -> str:
    return message.stream


def attributes(message: OutboxMessage) -> dict[str, str]:
    payload = message.payload or {}
    reference = payload.get("reference") or payload.get("elementReference") or message.stream
    contract = payload.get("contractReference") or payload.get("intent_contractReference") or ""
    return {
        "kind": str(message.kind),
        "reference": str(reference),
        "contractReference": str(contract),
        "messageId": bus_message_id(message),
    }


def message_data(message: OutboxMessage) -> bytes:
    """The message's data: the payload plus `kind`; a document with its bytes.
    Raises intent.Rejection / intent.TransientError when the file cannot be read."""
    data: dict[str, Any] = {**(message.payload or {}), "kind": str(message.kind)}
    if message.kind == MessageKind.DOCUMENT:
        file_name, content, mime = readback.document_file(message)
        data["file"] = {"fileName": file_name, "mime": mime, "content": base64.b64encode(content).decode("ascii")}
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def document_too_big(size: int) -> str:
    """The French refusal for a document of `size` bytes, or "" when it fits."""
    if size <= MAX_DOCUMENT_BYTES:
        return ""
    return TOO_BIG.format(limit=MAX_DOCUMENT_BYTES // 1_000_000)


# --- Publishing ------------------------------------------------------------------


@dataclass
class Published:
    outcome: str
    error: str = ""
    bus_id: str = ""
    retry_after: float | None = None


@dataclass
class Pending:
    """A publish under way, or its outcome known already (a message that cannot be built)."""

    message: OutboxMessage
    future: Any = None
    done: Published | None = None


def _retry(connection: Connection) -> Retry:
    return Retry(
        initial=0.1,
        maximum=1.0,
        multiplier=2.0,
        timeout=connection.timeout_seconds,
        predicate=if_exception_type(google_errors.ServiceUnavailable, google_errors.Aborted),
    )


def start(message: OutboxMessage) -> Pending:
    """Hand the message to the publisher (it is sent in the background)."""
    connection = message.connection
    try:
        data = message_data(message)
        if len(data) > MAX_MESSAGE_BYTES:
            return Pending(message, done=Published(Outcome.REJECTED, "Message de plus de 10 Mo : refusé par le bus."))
        client = publisher_for(connection)
        future = client.publish(
            topic_path(connection),
            data,
            ordering_key=ordering_key(message),
            retry=_retry(connection),
            timeout=connection.timeout_seconds,
            **attributes(message),
        )
    except intent.Rejection as error:
        return Pending(message, done=Published(Outcome.REJECTED, error.message))
    except intent.TransientError as error:
        return Pending(message, done=Published(Outcome.RETRY, error.message))
    except ConfigurationError as error:
        return Pending(message, done=Published(Outcome.REJECTED, str(error)))
    except publisher_errors.MessageTooLargeError:  # the data fits, not with its attributes
        return Pending(message, done=Published(Outcome.REJECTED, "Message de plus de 10 Mo : refusé par le bus."))
    except publisher_errors.PublishToPausedOrderingKeyException as error:
        _resume(message)
        return Pending(message, done=classify(error))
    return Pending(message, future=future)


def finish(pending: Pending) -> Published:
    """Wait for the bus's answer (at most the connection's timeout and a margin)."""
    if pending.done is not None:
        return pending.done
    message = pending.message
    try:
        bus_id = pending.future.result(timeout=message.connection.timeout_seconds * 2 + 1)
    except Exception as error:
        # The client pauses the ordering key after a failure: resumed, so that the
        # retry (the same message, still first of its stream) can go. A publish
        # that timed out here may still land: the retry carries the same messageId.
        _resume(message)
        published = classify(error)
        if published.outcome == Outcome.RETRY and not isinstance(error, KNOWN_TROUBLE):
            logger.warning("Unexpected Pub/Sub error for message %s", message.pk, exc_info=True)
        return published
    return Published(Outcome.DELIVERED, bus_id=str(bus_id))


KNOWN_TROUBLE = (
    google_errors.GoogleAPIError,
    futures.TimeoutError,
    publisher_errors.PublishToPausedOrderingKeyException,
)


def classify(error: BaseException) -> Published:
    """What a failed publish means (see RETRY_CODES): retried, or refused for good."""
    if isinstance(error, futures.TimeoutError):
        return Published(Outcome.RETRY, NO_ANSWER)
    if isinstance(error, publisher_errors.PublishToPausedOrderingKeyException):
        return Published(Outcome.RETRY, PAUSED)
    if isinstance(error, google_errors.GoogleAPICallError) and error.grpc_status_code is not None:
        if error.grpc_status_code not in RETRY_CODES:
            return Published(Outcome.REJECTED, describe(error))
        retry_after = 1.0 if error.grpc_status_code == grpc.StatusCode.RESOURCE_EXHAUSTED else None
        return Published(Outcome.RETRY, describe(error), retry_after=retry_after)
    if isinstance(error, google_errors.GoogleAPIError):  # the client's retries given up, a transport error
        return Published(Outcome.RETRY, describe(error))
    return Published(Outcome.RETRY, f"Erreur du bus Pub/Sub : {error!r}"[:2000])


def publish(message: OutboxMessage) -> Published:
    return finish(start(message))


def _resume(message: OutboxMessage) -> None:
    """After a failure the client pauses the ordering key: resume it."""
    try:
        publisher_for(message.connection).resume_publish(topic_path(message.connection), ordering_key(message))
    except Exception:  # a client that cannot be made has no paused key
        logger.debug("No ordering key to resume for message %s", message.pk, exc_info=True)


def describe(error: google_errors.GoogleAPIError) -> str:
    code = getattr(getattr(error, "grpc_status_code", None), "name", "") or str(getattr(error, "code", "") or "")
    labels = {
        "PERMISSION_DENIED": "le compte de service n'a pas le droit de publier sur ce sujet",
        "UNAUTHENTICATED": "la clé du compte de service est refusée",
        "NOT_FOUND": "le sujet n'existe pas",
        "INVALID_ARGUMENT": "message refusé par le bus (nom ou contenu invalide)",
        "FAILED_PRECONDITION": "le bus refuse le message dans son état actuel",
        "UNIMPLEMENTED": "l'adresse ne répond pas comme un bus Pub/Sub",
        "UNAVAILABLE": "le bus Pub/Sub est injoignable",
        "DEADLINE_EXCEEDED": "pas de réponse du bus Pub/Sub dans le délai",
    }
    label = labels.get(code, "erreur du bus Pub/Sub")
    return f"{label} ({code}) : {getattr(error, 'message', error)}"[:2000]


# --- Pulling -------------------------------------------------------------------


def pull(connection: Connection, *, max_messages: int = 100) -> list[Any]:
    """Up to `max_messages` received messages (their ack ids with them); [] when
    none is waiting. Raises google_errors.GoogleAPICallError."""
    try:
        response = subscriber_for(connection).pull(
            subscription=subscription_path(connection),
            max_messages=max_messages,
            timeout=connection.timeout_seconds,
            retry=_retry(connection),
        )
    except google_errors.DeadlineExceeded:
        return []
    return list(response.received_messages)


def acknowledge(connection: Connection, ack_ids: list[str]) -> None:
    if ack_ids:
        subscriber_for(connection).acknowledge(subscription=subscription_path(connection), ack_ids=ack_ids)


# --- The admin's check ------------------------------------------------------------


def check_connection(connection: Connection) -> list[str]:
    """What is wrong with the connection, in French ([] when the topic and the
    subscription exist and the key may publish and pull)."""
    problems = []
    for name, label in (
        ("gcp_project", "le projet Google Cloud"),
        ("pubsub_topic", "le sujet"),
        ("pubsub_subscription", "l'abonnement"),
    ):
        if not getattr(connection, name).strip():
            problems.append(f"Renseignez {label}.")
    if problems:
        return problems
    try:
        publisher = publisher_for(connection)
        subscriber = subscriber_for(connection)
    except ConfigurationError as error:
        return [str(error)]
    checks = [
        (
            "Sujet",
            lambda: publisher.get_topic(topic=topic_path(connection), timeout=connection.timeout_seconds, retry=None),
            lambda: publisher.test_iam_permissions(
                request={"resource": topic_path(connection), "permissions": ["pubsub.topics.publish"]},
                timeout=connection.timeout_seconds,
                retry=None,
            ),
            "pubsub.topics.publish",
            "publier",
        ),
        (
            "Abonnement",
            lambda: subscriber.get_subscription(
                subscription=subscription_path(connection), timeout=connection.timeout_seconds, retry=None
            ),
            lambda: subscriber.test_iam_permissions(
                request={"resource": subscription_path(connection), "permissions": ["pubsub.subscriptions.consume"]},
                timeout=connection.timeout_seconds,
                retry=None,
            ),
            "pubsub.subscriptions.consume",
            "lire (pull)",
        ),
    ]
    for label, exists, permissions, permission, verb in checks:
        try:
            exists()
        except google_errors.NotFound:
            problems.append(f"{label} introuvable : vérifiez son nom et le projet.")
            continue
        except google_errors.GoogleAPICallError as error:
            problems.append(f"{label} : {describe(error)}")
            continue
        except Exception as error:  # DNS, refused connection before any gRPC status
            problems.append(f"{label} : bus injoignable ({error!r}).")
            continue
        try:
            granted = set(permissions().permissions)
        except google_errors.MethodNotImplemented:
            continue  # the emulator has no permissions: everything is allowed there
        except google_errors.GoogleAPICallError as error:
            problems.append(f"{label} : {describe(error)}")
            continue
        if permission not in granted:
            problems.append(f"{label} : le compte de service n'a pas le droit de {verb} ({permission}).")
    return problems
