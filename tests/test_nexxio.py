"""Nexxio: the relay over Google Cloud Pub/Sub, against Google's own emulator
(started here on a free port, stopped after; never a fake client). Where
gcloud or its emulator is missing, every test here skips with that reason
(and the run's summary says so: tests/conftest.py).

Outgoing: the relay's deliveries are run by `drain()` as the tasks would; a
subscriber of the test, standing for the manager, reads the topic back.
Incoming: the test publishes as the manager on the portal's subscription's
topic, and runs the pull task.
"""

from __future__ import annotations

import base64
import html
import io
import json
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfWriter

from orders import documents, planning, services
from orders.models import DocumentKind, Order
from orders.services import ServiceError
from portal.relay import claims, pubsub, pull, tasks, watch
from portal.relay.models import (
    Connection,
    DeliveryAttempt,
    InboundNotification,
    MessageStatus,
    NotificationStatus,
    OutboxMessage,
    ServiceLevelWarning,
)
from tests import factories
from tests.pubsub_emulator import PROJECT, Bus, Emulator, Policy, start_or_skip


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    bus = start_or_skip()
    yield bus
    pubsub.forget_clients()
    bus.close()


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def bus(emulator) -> Bus:
    bus = Bus(emulator)
    bus.create()
    return bus


def connect(client_org, bus: Bus) -> Connection:
    return factories.make_connection(
        client_org,
        secret=None,
        kind="pubsub",
        auth_base_url="",
        api_base_url="",
        oauth_client_id="",
        gcp_project=PROJECT,
        pubsub_topic=bus.out_topic,
        pubsub_subscription=bus.portal_subscription,
        pubsub_emulator_host=bus.emulator.host,
        timeout_seconds=3,
    )


@pytest.fixture
def connection(bus, client_org) -> Connection:
    return connect(client_org, bus)


@pytest.fixture(scope="module")
def policy() -> Policy:
    return Policy()


@pytest.fixture(scope="module")
def guarded_emulator(policy) -> Iterator[Emulator]:
    """A second emulator, its IAM integration on, asking `policy` (tests/pubsub_emulator.py)."""
    bus = start_or_skip(policy=policy)
    yield bus
    pubsub.forget_clients()
    bus.close()


@pytest.fixture
def guarded_bus(guarded_emulator, policy) -> Iterator[Bus]:
    bus = Bus(guarded_emulator)
    bus.create()
    yield bus
    policy.withheld.clear()


def drain(*, seconds: float = 60) -> list[str]:
    """Deliver until nothing can go, skipping the backoff waits between rounds."""
    outcomes: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        OutboxMessage.objects.filter(status=MessageStatus.PENDING).update(next_attempt_at=timezone.now())
        due = list(claims.due_messages().order_by("pk").values_list("pk", flat=True))
        if not due:
            return outcomes
        last = DeliveryAttempt.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        for message_id in due:
            tasks.deliver_message(message_id)
        outcomes += [
            str(o) for o in DeliveryAttempt.objects.filter(pk__gt=last).order_by("pk").values_list("outcome", flat=True)
        ]
    raise AssertionError(f"still delivering after {seconds} s: {outcomes}")


def pdf_bytes() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    output = io.BytesIO()
    writer.write(output)
    return output.getvalue()


def a_day(order: Order, technician) -> None:
    """Acknowledge, plan, start, progress, report PDF, finish."""
    services.acknowledge_order(order, actor=technician)
    planning.plan_order(order, actor=technician, appointment=timezone.now() + timedelta(hours=2))
    services.start_work(order, actor=technician)
    services.set_progress(order, actor=technician, progress=50)
    documents.attach_document(
        order,
        actor=technician,
        file=ContentFile(pdf_bytes(), name="rapport.pdf"),
        kind=DocumentKind.UPLOADED_REPORT,
        title="Rapport de l'entreprise",
    )
    services.finish_work(order, actor=technician)


def assert_on_bus_once_in_order(order: Order, received: list[Any], *, duplicates_allowed: bool = False) -> None:
    """Each of the order's messages on the bus once, in sequence order. With
    `duplicates_allowed`, a message may appear again with the same `messageId`
    (the convention's, by which the manager drops it): when the bus goes away
    mid-publish, the client library may still deliver a publish the relay saw
    fail and sent again. Then the first appearances must be once and in order."""
    messages = list(order.outbox_messages.order_by("sequence"))
    assert all(message.status == MessageStatus.DELIVERED for message in messages)
    repeated: set[str] = set()
    if duplicates_allowed:
        seen: dict[str, Any] = {}
        for item in received:
            if item.attributes["messageId"] in seen:
                repeated.add(item.attributes["messageId"])
            seen.setdefault(item.attributes["messageId"], item)
        received = list(seen.values())
    ids = [item.attributes["messageId"] for item in received]
    assert ids == [pubsub.bus_message_id(message) for message in messages]  # each once, in sequence order
    for message, item in zip(messages, received, strict=True):
        data = json.loads(item.data)
        assert item.ordering_key == f"order:{order.pk}"
        assert dict(item.attributes) == {
            "kind": message.kind,
            "reference": order.reference,
            "contractReference": order.contract.reference,
            "messageId": f"portail-{message.pk}",
        }
        assert data["kind"] == message.kind
        for name, value in message.payload.items():
            assert data[name] == value
        attempt = message.attempts_log.get(outcome=DeliveryAttempt.Outcome.DELIVERED)
        if item.attributes["messageId"] not in repeated:
            assert attempt.bus_message_id == item.message_id  # the bus's id, recorded as the delivery


# --- Outgoing ---------------------------------------------------------------------------


def test_a_day_of_an_order_arrives_on_the_topic_once_in_order_with_the_attributes(bus, connection, order, technician):
    a_day(order, technician)
    outcomes = drain()
    assert set(outcomes) == {"delivered"}
    received = bus.read()
    assert_on_bus_once_in_order(order, received)
    kinds = [json.loads(item.data)["kind"] for item in received]
    assert kinds.count("document") == 1
    document = next(json.loads(item.data) for item in received if json.loads(item.data)["kind"] == "document")
    assert base64.b64decode(document["file"]["content"]) == pdf_bytes()
    assert document["file"]["mime"] == "application/pdf"
    events = [(json.loads(item.data).get("status"), json.loads(item.data).get("event")) for item in received]
    assert events[:4] == [("open", "acknowledged"), ("open", "planned"), ("pending", "start"), events[3]]
    assert events[-1] == ("pending", "end")


def test_the_bus_stopped_then_restarted_loses_nothing_and_keeps_the_order(bus, connection, order, technician):
    services.acknowledge_order(order, actor=technician)
    assert drain() == ["delivered"]
    first = bus.read()
    bus.emulator.stop()
    try:
        planning.plan_order(order, actor=technician, appointment=timezone.now() + timedelta(hours=2))
        services.start_work(order, actor=technician)
        services.set_progress(order, actor=technician, progress=30)
        due = claims.due_messages().values_list("pk", flat=True)
        for message_id in due:
            tasks.deliver_message(message_id)
        later = order.outbox_messages.filter(sequence__gt=1)
        assert later.count() >= 2
        assert set(later.values_list("status", flat=True)) == {MessageStatus.PENDING}  # none in the error queue
        retry = DeliveryAttempt.objects.filter(outcome=DeliveryAttempt.Outcome.RETRY).first()
        assert retry is not None
        assert "UNAVAILABLE" in retry.error or "DEADLINE_EXCEEDED" in retry.error
        assert Connection.objects.get(pk=connection.pk).failing_since is not None
    finally:
        bus.emulator.start()
    bus.create()  # the emulator keeps nothing: the manager's team sets the bus up again
    drain()
    received = first + bus.read()
    assert_on_bus_once_in_order(order, received, duplicates_allowed=True)


@pytest.mark.parametrize(
    ("topic", "status", "label", "bus_says"),
    [
        # A topic the manager's team never made (or deleted).
        ("sujet-inconnu", "NOT_FOUND", "le sujet n'existe pas", "Topic not found"),
        # A name typed with a space: the bus refuses the name itself.
        (
            "portail sortant",
            "INVALID_ARGUMENT",
            "message refusé par le bus (nom ou contenu invalide)",
            "Invalid [topics] name",
        ),
    ],
)
def test_a_refused_publish_goes_to_the_error_queue_and_is_resent_from_the_admin(
    topic, status, label, bus_says, bus, connection, order, technician, admin_client
):
    Connection.objects.filter(pk=connection.pk).update(pubsub_topic=topic)
    services.acknowledge_order(order, actor=technician)
    assert drain() == ["rejected"]
    message = order.outbox_messages.get()
    assert message.status == MessageStatus.REJECTED
    assert f"{label} ({status})" in message.last_error and bus_says in message.last_error
    page = admin_client.get(reverse("admin:relay_outboxmessage_changelist") + "?status__exact=rejected")
    assert order.reference in page.content.decode()
    # Corrected, then resent from the error queue.
    Connection.objects.filter(pk=connection.pk).update(pubsub_topic=bus.out_topic)
    response = admin_client.post(
        reverse("admin:relay_outboxmessage_resend", args=[message.pk]), {"note": "sujet corrigé"}
    )
    assert response.status_code == 302
    assert drain() == ["delivered"]
    assert_on_bus_once_in_order(order, bus.read())


def test_a_publish_the_account_may_not_make_goes_to_the_error_queue_and_is_resent_once_allowed(
    policy, guarded_bus, client_org, order, technician, admin_client
):
    """PERMISSION_DENIED from the emulator itself (its IAM integration, asking
    the test's policy): the manager's team has not given the portal's account
    the right to publish on the topic."""
    connection = connect(client_org, guarded_bus)
    topic = f"projects/{PROJECT}/topics/{guarded_bus.out_topic}"
    policy.withhold(topic, "pubsub.topics.publish")
    services.acknowledge_order(order, actor=technician)
    assert drain() == ["rejected"]
    message = order.outbox_messages.get()
    assert message.status == MessageStatus.REJECTED
    assert "le compte de service n'a pas le droit de publier sur ce sujet (PERMISSION_DENIED)" in message.last_error
    assert "missing [pubsub.topics.publish]" in message.last_error  # the emulator's words
    assert (f"pubsub/{topic}", ("pubsub.topics.publish",)) in policy.asked
    page = admin_client.get(reverse("admin:relay_outboxmessage_changelist") + "?status__exact=rejected")
    assert order.reference in page.content.decode()
    # The admin's check says what is missing (the emulator's testIamPermissions, asking the policy).
    response = admin_client.post(
        reverse("admin:relay_connection_changelist"),
        {"action": "test_connection", "_selected_action": [connection.pk]},
        follow=True,
    )
    text = html.unescape(response.content.decode())
    assert "Sujet : le compte de service n'a pas le droit de publier (pubsub.topics.publish)." in text
    assert "Abonnement" not in text
    # Granted, then resent from the error queue: delivered, once.
    policy.grant(topic, "pubsub.topics.publish")
    response = admin_client.post(
        reverse("admin:relay_outboxmessage_resend", args=[message.pk]), {"note": "droit de publier accordé"}
    )
    assert response.status_code == 302
    assert drain() == ["delivered"]
    assert_on_bus_once_in_order(order, guarded_bus.read())


def test_a_pull_the_account_may_not_make_loses_nothing(
    policy, guarded_bus, client_org, contract, asset, service_code, caplog
):
    connection = connect(client_org, guarded_bus)
    subscription = f"projects/{PROJECT}/subscriptions/{guarded_bus.portal_subscription}"
    policy.withhold(subscription, "pubsub.subscriptions.consume")
    publish_operation(guarded_bus, operation("NX-2026-0009"), "nexxio-9")
    assert tasks.pull_bus() == 0  # refused by the bus: nothing stored, the message waits there
    assert not InboundNotification.objects.exists()
    assert f"Pull from connection {connection.pk} failed" in caplog.text
    assert "missing [pubsub.subscriptions.consume]" in caplog.text
    policy.grant(subscription, "pubsub.subscriptions.consume")
    assert tasks.pull_bus() == 1
    assert Order.objects.filter(reference="NX-2026-0009").count() == 1


def test_a_worker_killed_after_publishing_republishes_with_the_same_message_id(bus, connection, order, technician):
    """A worker killed between the bus's acknowledgement and the record: the
    lease runs out and the message is published again. The copy carries the
    same `messageId` attribute, which is how the convention lets the manager
    drop it (the portal's own inbound does the same): a duplicate on the bus is
    allowed, a loss is not."""
    services.acknowledge_order(order, actor=technician)
    message = order.outbox_messages.get()
    claimed = claims.claim(message.pk)
    assert claimed is not None
    assert pubsub.publish(claimed).outcome == "delivered"  # ... and the worker dies here
    OutboxMessage.objects.filter(pk=message.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert drain() == ["delivered"]
    received = bus.read()
    assert [item.attributes["messageId"] for item in received] == [f"portail-{message.pk}"] * 2
    assert len({item.message_id for item in received}) == 2


def test_a_document_over_ten_megabytes_is_refused_at_upload_for_a_nexxio_client(connection, order, technician):
    services.acknowledge_order(order, actor=technician)
    services.start_work(order, actor=technician)
    big = pdf_bytes() + b"%" * (pubsub.MAX_DOCUMENT_BYTES + 1)
    with pytest.raises(ServiceError, match="trop gros pour être transmis par Nexxio"):
        documents.attach_document(
            order,
            actor=technician,
            file=ContentFile(big, name="rapport.pdf"),
            kind=DocumentKind.UPLOADED_REPORT,
            title="Rapport",
        )
    assert not order.documents.exists()


def test_the_watch_counts_nexxio_messages_like_intent_ones(connection, order, technician):
    Connection.objects.filter(pk=connection.pk).update(enabled=False)  # nothing goes: they wait
    services.acknowledge_order(order, actor=technician)
    OutboxMessage.objects.update(created_at=timezone.now() - timedelta(minutes=16))
    report = watch.check_service_level()
    item = next(item for item in report if item.connection.pk == connection.pk)
    assert item.waiting == 1
    assert ServiceLevelWarning.objects.filter(connection=connection).exists()
    assert connection.breaches.count() == 1


# --- Incoming ---------------------------------------------------------------------------


def operation(order_reference: str, *, status: str = "open", event: str = "requested", **fields: Any) -> dict:
    return {
        "kind": "intervention",
        "reference": order_reference,
        "contractReference": "MULTITECH-2024-07",
        "status": status,
        "event": event,
        "description": "Fuite sous l'évier de la cuisine",
        "serviceCode": "PLB-FUITE",
        "workType": "corrective",
        "criticalLevel": 2,
        "creationDate": "2026-12-04T09:30:00+01:00",
        "location": {"assetReference": "LGT-0412"},
        "contacts": [
            "BEGIN:VCARD\nVERSION:3.0\nFN:Mme Claire Martin\nROLE:locataire\nTEL;TYPE=CELL:0612345678\nEND:VCARD"
        ],
        **fields,
    }


def publish_operation(bus: Bus, data: dict, message_id: str) -> None:
    bus.publish_in(
        json.dumps(data).encode(),
        kind=data["kind"],
        reference=data["reference"],
        contractReference=data["contractReference"],
        messageId=message_id,
    )


def test_a_new_order_and_its_cancellation_become_the_portals_once_even_delivered_twice(
    bus, connection, contract, asset, service_code
):
    new = operation("NX-2026-0001")
    publish_operation(bus, new, "nexxio-1")
    publish_operation(bus, new, "nexxio-1")  # the manager's retry: the same messageId
    assert tasks.pull_bus() == 1
    order = Order.objects.get(reference="NX-2026-0001")
    assert order.contract == contract and order.asset == asset and order.service_code == service_code
    assert order.occupant_name == "Mme Claire Martin"
    cancelled = operation(
        "NX-2026-0001",
        status="denied",
        event="canceled",
        logs=[{"status": "denied", "event": "canceled", "description": "Doublon de la demande 0007"}],
    )
    publish_operation(bus, cancelled, "nexxio-2")
    publish_operation(bus, cancelled, "nexxio-2")
    assert tasks.pull_bus() == 1
    order.refresh_from_db()
    assert order.state == "cancelled"
    assert order.events.filter(kind="cancel").count() == 1
    notifications = InboundNotification.objects.filter(connection=connection)
    assert sorted(notifications.values_list("notification_id", flat=True)) == ["nexxio-1", "nexxio-2"]
    assert set(notifications.values_list("status", flat=True)) == {NotificationStatus.PROCESSED}
    assert tasks.pull_bus() == 0  # everything was acknowledged


def test_a_worker_dead_before_acknowledging_applies_the_message_once(bus, connection, contract, asset, service_code):
    publish_operation(bus, operation("NX-2026-0002"), "nexxio-3")
    messages = pubsub.pull(connection)
    pull.store(connection, messages)  # stored, then the worker dies: neither applied nor acknowledged
    assert InboundNotification.objects.get().status == NotificationStatus.RECEIVED
    # Its ack deadline runs out (made immediate here): the bus delivers it again.
    pubsub.subscriber_for(connection).modify_ack_deadline(
        subscription=pubsub.subscription_path(connection),
        ack_ids=[item.ack_id for item in messages],
        ack_deadline_seconds=0,
    )
    assert tasks.pull_bus() == 0  # a repeat, not a new notification...
    assert InboundNotification.objects.get().status == NotificationStatus.PROCESSED  # ... applied now
    assert Order.objects.filter(reference="NX-2026-0002").count() == 1
    publish_operation(bus, operation("NX-2026-0002"), "nexxio-3")  # and once more, later
    assert tasks.pull_bus() == 0
    assert Order.objects.filter(reference="NX-2026-0002").count() == 1
    assert Order.objects.get(reference="NX-2026-0002").events.filter(kind="received").count() == 1


def test_an_unreadable_message_is_kept_shown_and_not_redelivered(bus, connection, admin_client):
    bus.publish_in(b"\xff pas du JSON", kind="intervention", reference="NX-X", contractReference="C", messageId="m-x")
    assert tasks.pull_bus() == 0
    notification = InboundNotification.objects.get(connection=connection)
    assert notification.status == NotificationStatus.FAILED
    assert "illisible" in notification.error
    assert tasks.pull_bus() == 0 and InboundNotification.objects.count() == 1  # acknowledged: not again
    page = admin_client.get(reverse("admin:relay_inboundnotification_changelist"))
    assert "illisible" in page.content.decode()


def test_a_quote_decision_on_the_bus_is_applied_once(
    bus, connection, contract, asset, service_code, supervisor, price_item
):
    from quotes import drafts as quote_drafts
    from quotes import services as quote_services
    from quotes.models import QuoteState

    quote = quote_services.create_quote(
        contract=contract, actor=supervisor, title="Remplacement du siphon", asset=asset, service_code=service_code
    )
    quote_drafts.add_line(quote, actor=supervisor, price_item=price_item, quantity="2")
    quote_services.send_quote(quote, actor=supervisor)
    quote.refresh_from_db()
    decision = {
        "kind": "quotation",
        "reference": quote.number,
        "contractReference": contract.reference,
        "status": "denied",
        "event": "refused",
    }
    publish_operation(bus, decision, "nexxio-q1")
    publish_operation(bus, decision, "nexxio-q1")
    assert tasks.pull_bus() == 1
    quote.refresh_from_db()
    assert quote.state == QuoteState.REFUSED
    assert InboundNotification.objects.get().status == NotificationStatus.PROCESSED


# --- The connection in the admin -------------------------------------------------------


KEY = {
    "type": "service_account",
    "project_id": PROJECT,
    "private_key_id": "abc",
    "private_key": "-----BEGIN PRIVATE KEY-----\nMIIsecretsecret\n-----END PRIVATE KEY-----\n",
    "client_email": "portail@portail-tests.iam.gserviceaccount.com",
    "client_id": "1",
    "token_uri": "https://oauth2.googleapis.com/token",
}


def test_the_service_account_key_is_encrypted_and_never_shown_back(admin_client, client_org):
    response = admin_client.post(
        reverse("admin:relay_connection_add"),
        {
            "client": client_org.pk,
            "kind": "pubsub",
            "enabled": "on",
            "gcp_project": PROJECT,
            "pubsub_topic": "portail-sortant",
            "pubsub_subscription": "portail-entrant",
            "service_account_key": json.dumps(KEY),
            "document_type": "rapport_intervention",
            "document_family": "rapports_intervention",
            "timeout_seconds": "10",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    connection = Connection.objects.get(client=client_org)
    assert "MIIsecret" not in connection.service_account_key_encrypted
    assert json.loads(connection.service_account_key) == KEY
    page = admin_client.get(reverse("admin:relay_connection_change", args=[connection.pk])).content.decode()
    assert "MIIsecret" not in page and "Clé Pub/Sub : oui" in page


def test_a_key_that_is_not_a_service_account_key_is_refused_in_french(admin_client, client_org):
    response = admin_client.post(
        reverse("admin:relay_connection_add"),
        {
            "client": client_org.pk,
            "kind": "pubsub",
            "enabled": "on",
            "gcp_project": PROJECT,
            "pubsub_topic": "portail-sortant",
            "pubsub_subscription": "",
            "service_account_key": '{"type": "autre"}',
            "document_type": "rapport_intervention",
            "document_family": "rapports_intervention",
            "timeout_seconds": "10",
        },
    )
    assert response.status_code == 200
    text = html.unescape(response.content.decode())
    assert "pas une clé de compte de service" in text
    assert "Obligatoire pour une connexion Nexxio active." in text
    assert not Connection.objects.exists()


def test_the_admin_tests_the_connection_and_says_what_is_wrong_in_french(admin_client, bus, connection):
    url = reverse("admin:relay_connection_changelist")
    response = admin_client.post(url, {"action": "test_connection", "_selected_action": [connection.pk]}, follow=True)
    assert "le sujet et l'abonnement existent, la clé peut publier et lire" in html.unescape(response.content.decode())
    Connection.objects.filter(pk=connection.pk).update(pubsub_subscription="abonnement-inconnu")
    response = admin_client.post(url, {"action": "test_connection", "_selected_action": [connection.pk]}, follow=True)
    assert "Abonnement introuvable : vérifiez son nom et le projet." in html.unescape(response.content.decode())


def test_an_outsider_cannot_test_a_connection(client, technician, connection):
    client.force_login(technician)
    url = reverse("admin:relay_connection_changelist")
    response = client.post(url, {"action": "test_connection", "_selected_action": [connection.pk]})
    assert response.status_code == 302 and "/login/" in response["Location"]


# --- The sandbox speaks Nexxio too ---------------------------------------------------


def test_the_sandbox_sends_a_request_over_the_bus_and_shows_the_portals_changes(
    settings,
    client,
    emulator,
    client_org,
    contract,
    asset,
    service_code,
    technician,
    django_capture_on_commit_callbacks,
):
    from portal.sandbox import bus as sandbox_bus
    from portal.sandbox.models import Asset as PlatformAsset
    from portal.sandbox.models import Contract as PlatformContract
    from portal.sandbox.models import Log

    settings.SANDBOX_PUBSUB_EMULATOR_HOST = emulator.host
    sandbox_bus.set_up()
    factories.make_connection(
        client_org,
        secret=None,
        kind="pubsub",
        gcp_project=sandbox_bus.PROJECT,
        pubsub_topic=sandbox_bus.FROM_PORTAL,
        pubsub_subscription=sandbox_bus.PORTAL_SUBSCRIPTION,
        pubsub_emulator_host=emulator.host,
        timeout_seconds=3,
    )
    platform_contract = PlatformContract.objects.create(
        reference=contract.reference,
        label=contract.label,
        via_bus=True,
        service_codes=[{"code": "PLB-FUITE", "label": "Recherche et réparation de fuite"}],
    )
    platform_asset = PlatformAsset.objects.create(code="LGT-0412", label="Logement 12")
    form = html.unescape(client.get(reverse("sandbox:new_request")).content.decode())
    assert f"{platform_contract} · Nexxio (bus Pub/Sub)" in form
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("sandbox:new_request"),
            {
                "contract": platform_contract.pk,
                "service_code": "PLB-FUITE",
                "description": "Fuite au plafond de la salle de bains",
                "work_type": "corrective",
                "critical_level": "2",
                "asset": platform_asset.pk,
                "requester_name": "Sophie Bernard",
            },
        )
    assert response.status_code == 302
    assert tasks.pull_bus() == 1  # over the bus, not a webhook
    order = Order.objects.get(contract=contract)
    assert order.description == "Fuite au plafond de la salle de bains"
    services.acknowledge_order(order, actor=technician)
    assert drain() == ["delivered"]
    page = client.get(reverse("sandbox:operation", args=[contract.reference, order.reference]))
    assert page.status_code == 200
    text = html.unescape(page.content.decode())
    assert "Nexxio, par le bus Pub/Sub" in text and "bus Pub/Sub (prestataire)" in text
    assert list(Log.objects.filter(reference=order.reference).values_list("event", flat=True)) == [
        "requested",
        "acknowledged",
    ]


def test_the_admin_says_when_the_bus_cannot_be_reached(admin_client, client_org):
    connection = factories.make_connection(
        client_org,
        secret=None,
        kind="pubsub",
        gcp_project=PROJECT,
        pubsub_topic="portail-sortant",
        pubsub_subscription="portail-entrant",
        pubsub_emulator_host="127.0.0.1:9",  # nothing listens there
        timeout_seconds=2,
    )
    clock = time.monotonic()
    response = admin_client.post(
        reverse("admin:relay_connection_changelist"),
        {"action": "test_connection", "_selected_action": [connection.pk]},
        follow=True,
    )
    text = html.unescape(response.content.decode())
    assert "Sujet : le bus Pub/Sub est injoignable (UNAVAILABLE)" in text
    assert "Abonnement : le bus Pub/Sub est injoignable (UNAVAILABLE)" in text
    assert time.monotonic() - clock < 10
