"""The inbound webhook: it refuses what it cannot trust, keeps everything else once, and never crashes."""

from __future__ import annotations

import hashlib
import hmac
import json
from http import HTTPStatus

import pytest

from portal.relay import inbound
from portal.relay.models import Connection, InboundNotification, NotificationStatus


@pytest.fixture
def connection(client_org) -> Connection:
    return Connection.objects.create(client=client_org, kind="intent", enabled=True)


def notification(notification_id="2f1d0c7e-6a44", kind="operations:intervention:share", contract="MULTITECH-2024-07"):
    return {
        "type": kind,
        "id": notification_id,
        "event": {
            "type": "operations",
            "body": {
                "reference": "OPH57_241122093015",
                "contractReference": contract,
                "status": "open",
                "event": "requested",
                "operation_url": "http://127.0.0.1:9/api/operations/v2/operations/OPH57_241122093015",
            },
        },
    }


def post(client, connection, body, **headers):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(connection.webhook_path, raw, content_type="application/json", headers=headers)


def test_the_webhook_url_carries_an_unguessable_token(connection):
    assert len(connection.webhook_token) >= 40
    assert connection.webhook_path == f"/relais/webhook/{connection.webhook_token}/"


def test_a_notification_is_stored_and_answered_at_once(client, connection, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        response = post(client, connection, [notification()])
    assert response.status_code == HTTPStatus.OK
    assert response.json()["received"] == 1
    stored = InboundNotification.objects.get()
    assert stored.type == "operations:intervention:share"
    assert stored.body["event"]["body"]["reference"] == "OPH57_241122093015"
    assert len(callbacks) == 1  # the ingestion task is queued after commit


def test_a_repeated_notification_creates_nothing_new(client, connection):
    post(client, connection, [notification()])
    response = post(client, connection, [notification(), notification("autre-id")])
    assert response.json() == {"message": "Notifications reçues.", "received": 1, "repeats": 1}
    assert InboundNotification.objects.count() == 2


def test_a_wrong_token_is_refused(client, connection):
    response = client.post("/relais/webhook/devine/", b"[]", content_type="application/json")
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert not InboundNotification.objects.exists()


def test_only_post_is_accepted(client, connection):
    assert client.get(connection.webhook_path).status_code == HTTPStatus.METHOD_NOT_ALLOWED


def test_bad_json_gets_a_clear_answer_and_is_kept(client, connection):
    response = post(client, connection, b"[{not json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "JSON invalide" in response.json()["message"]
    kept = InboundNotification.objects.get()
    assert kept.status == NotificationStatus.FAILED
    assert kept.body == {"raw": "[{not json"}


def test_a_body_that_is_not_a_list_is_refused_and_kept(client, connection):
    response = post(client, connection, "bonjour")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert InboundNotification.objects.get().status == NotificationStatus.FAILED


def test_a_huge_body_is_refused(client, connection):
    response = post(client, connection, b"[" + b" " * (2 * 1024 * 1024) + b"]")
    assert response.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert not InboundNotification.objects.exists()


def test_with_a_hmac_secret_an_unsigned_or_badly_signed_call_is_refused(client, connection):
    connection.webhook_hmac_secret = "clé-partagée"
    connection.save()
    body = json.dumps([notification()]).encode()
    assert post(client, connection, body).status_code == HTTPStatus.UNAUTHORIZED
    assert post(client, connection, body, x_intent_signature="sha256=00").status_code == HTTPStatus.UNAUTHORIZED
    good = hmac.new("clé-partagée".encode(), body, hashlib.sha256).hexdigest()
    assert post(client, connection, body, x_intent_signature=f"sha256={good}").status_code == HTTPStatus.OK
    assert InboundNotification.objects.count() == 1


def test_an_unknown_type_is_kept_and_marked_as_not_handled(client, connection):
    post(client, connection, [notification(kind="operations:reservation:share")])
    stored = InboundNotification.objects.get()
    assert inbound.process_notification(stored.pk) == NotificationStatus.IGNORED
    stored.refresh_from_db()
    assert "non pris en charge" in stored.error


def test_an_unknown_contract_is_kept_failed_with_what_to_do(client, connection):
    post(client, connection, [notification(contract="INCONNU-2026")])
    stored = InboundNotification.objects.get()
    assert inbound.process_notification(stored.pk) == NotificationStatus.FAILED
    stored.refresh_from_db()
    assert "Marché inconnu : INCONNU-2026" in stored.error


def test_a_notification_without_an_id_is_still_stored_once(client, connection):
    item = notification()
    del item["id"]
    post(client, connection, [item])
    post(client, connection, [item])
    assert InboundNotification.objects.count() == 1


def test_malformed_items_are_kept_not_crashed_on(client, connection):
    response = post(client, connection, [42, None, {"type": "operations:intervention:share"}])
    assert response.status_code == HTTPStatus.OK
    for stored in InboundNotification.objects.all():
        assert inbound.process_notification(stored.pk) in (NotificationStatus.IGNORED, NotificationStatus.FAILED)


# --- The error queue page for supervisors and office staff ------------------------


@pytest.fixture
def rejected(connection, order, technician):
    from orders import services as order_services
    from portal.relay.models import MessageStatus, OutboxMessage

    order_services.acknowledge_order(order, actor=technician)
    message = order.outbox_messages.order_by("-sequence").first()
    OutboxMessage.objects.filter(pk=message.pk).update(
        status=MessageStatus.REJECTED, last_error="HTTP 400 : Code prestation inconnu"
    )
    return message


def test_supervisors_see_rejected_messages_with_the_platforms_message(client, supervisor, rejected):
    client.force_login(supervisor)
    response = client.get("/relais/erreurs/")
    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert "Code prestation inconnu" in html
    assert rejected.order.reference in html
    assert "Commande prise en compte" in html


def test_a_supervisor_resends_a_rejected_message(client, supervisor, rejected):
    from portal.relay.models import MessageStatus

    client.force_login(supervisor)
    response = client.post(f"/relais/erreurs/{rejected.pk}/renvoyer/", {"note": "Code corrigé"})
    assert response.status_code == HTTPStatus.FOUND
    rejected.refresh_from_db()
    assert rejected.status == MessageStatus.PENDING
    assert rejected.audits.get().actor == supervisor


def test_giving_up_without_a_reason_is_refused_in_french(client, office, rejected):
    from portal.relay.models import MessageStatus

    client.force_login(office)
    response = client.post(f"/relais/erreurs/{rejected.pk}/abandonner/", {"note": ""}, follow=True)
    assert "Indiquez pourquoi" in response.content.decode()
    rejected.refresh_from_db()
    assert rejected.status == MessageStatus.REJECTED


def test_technicians_and_visitors_have_no_error_queue(client, technician, rejected):
    assert client.get("/relais/erreurs/").status_code == HTTPStatus.FOUND
    assert client.post(f"/relais/erreurs/{rejected.pk}/renvoyer/").status_code == HTTPStatus.FOUND
    client.force_login(technician)
    assert client.get("/relais/erreurs/").status_code == HTTPStatus.FORBIDDEN
    assert client.post(f"/relais/erreurs/{rejected.pk}/renvoyer/").status_code == HTTPStatus.FORBIDDEN
