"""How a failed publish to Nexxio's bus is classified (`portal.relay.pubsub.classify`):
tried again, or the error queue. Every gRPC status, as the exception the
official client raises for it (google.api_core's `from_grpc_status`, which
the client's gRPC layer uses), and what carries no status.

Against Google's emulator (tests/test_nexxio.py) the bus really answers
NOT_FOUND, INVALID_ARGUMENT, PERMISSION_DENIED (its IAM integration) and
UNAVAILABLE (stopped); the other statuses cannot be had from it and are
checked here only (docs/architecture.md, "Nexxio").
"""

from __future__ import annotations

from concurrent import futures

import grpc
import pytest
from google.api_core import exceptions as google_errors
from google.cloud.pubsub_v1.publisher import exceptions as publisher_errors

from portal.relay import pubsub

RETRY, REJECTED = "retry", "rejected"

TABLE = {
    # Google's own publisher retries these (google.pubsub_v1, Publisher.publish's default retry).
    grpc.StatusCode.ABORTED: RETRY,
    grpc.StatusCode.CANCELLED: RETRY,
    grpc.StatusCode.DEADLINE_EXCEEDED: RETRY,
    grpc.StatusCode.INTERNAL: RETRY,
    grpc.StatusCode.RESOURCE_EXHAUSTED: RETRY,
    grpc.StatusCode.UNAVAILABLE: RETRY,
    grpc.StatusCode.UNKNOWN: RETRY,
    # The connection's or the message's fault: waiting mends nothing.
    grpc.StatusCode.PERMISSION_DENIED: REJECTED,
    grpc.StatusCode.UNAUTHENTICATED: REJECTED,
    grpc.StatusCode.NOT_FOUND: REJECTED,
    grpc.StatusCode.INVALID_ARGUMENT: REJECTED,
    grpc.StatusCode.FAILED_PRECONDITION: REJECTED,
    grpc.StatusCode.UNIMPLEMENTED: REJECTED,
    grpc.StatusCode.ALREADY_EXISTS: REJECTED,
    grpc.StatusCode.OUT_OF_RANGE: REJECTED,
    grpc.StatusCode.DATA_LOSS: REJECTED,
}

FRENCH = {
    grpc.StatusCode.PERMISSION_DENIED: "le compte de service n'a pas le droit de publier sur ce sujet",
    grpc.StatusCode.UNAUTHENTICATED: "la clé du compte de service est refusée",
    grpc.StatusCode.NOT_FOUND: "le sujet n'existe pas",
    grpc.StatusCode.INVALID_ARGUMENT: "message refusé par le bus (nom ou contenu invalide)",
    grpc.StatusCode.UNAVAILABLE: "le bus Pub/Sub est injoignable",
    grpc.StatusCode.DEADLINE_EXCEEDED: "pas de réponse du bus Pub/Sub dans le délai",
}


def test_every_grpc_status_but_ok_is_in_the_table():
    assert set(TABLE) == set(grpc.StatusCode) - {grpc.StatusCode.OK}


def test_what_is_retried_is_what_googles_own_publisher_retries():
    from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport

    # The default retry the client wraps its publish calls in (read off a transport; nothing is sent).
    transport = PublisherGrpcTransport(channel=grpc.insecure_channel("127.0.0.1:9"))
    retry = transport._wrapped_methods[transport.publish]._retry
    retried = {code for code in TABLE if retry._predicate(google_errors.from_grpc_status(code, ""))}
    assert retried == {code for code, outcome in TABLE.items() if outcome == RETRY}


@pytest.mark.parametrize("code", list(TABLE), ids=lambda code: code.name)
def test_a_failed_publish_is_retried_or_refused_by_its_status(code):
    error = google_errors.from_grpc_status(code, "réponse du bus")
    assert error.grpc_status_code == code  # the client's exception for that status
    published = pubsub.classify(error)
    assert published.outcome == TABLE[code]
    assert f"({code.name}) : réponse du bus" in published.error
    if code in FRENCH:
        assert published.error.startswith(FRENCH[code])
    assert published.retry_after == (1.0 if code == grpc.StatusCode.RESOURCE_EXHAUSTED else None)


@pytest.mark.parametrize(
    ("error", "says"),
    [
        (futures.TimeoutError(), "Pas de réponse du bus Pub/Sub dans le délai (DEADLINE_EXCEEDED)."),
        (
            google_errors.RetryError("Timeout of 3.0s exceeded", cause=google_errors.ServiceUnavailable("down")),
            "erreur du bus Pub/Sub",
        ),
        (publisher_errors.PublishToPausedOrderingKeyException("order:1"), "File de l'ordre en pause"),
        (RuntimeError("canal fermé"), "Erreur du bus Pub/Sub : RuntimeError('canal fermé')"),
    ],
    ids=["no answer in time", "the client's retries given up", "paused ordering key", "anything else"],
)
def test_what_carries_no_status_is_retried(error, says):
    published = pubsub.classify(error)
    assert published.outcome == RETRY
    assert says in published.error
