"""What the platform says when it refuses, and a gateway's error after the
platform stored the log (issue 10, items 2 and 6).

Against the embedded sandbox over real HTTP: its strict mode refuses a log
without its required fields with `{"error": "validation", "messages": [...]}`;
the relay keeps the answer and shows every reason on the error queue, the
order's timeline and the refusal email. Its `gateway_error_after_store_rate`
stores the log then answers 502: the relay reads back instead of sending twice.
"""

from __future__ import annotations

import html
import json
import re
from http import HTTPStatus

import httpx
import pytest
from django.core import mail
from django.utils import timezone

from orders import services
from orders.models import Order
from portal.relay import intent, tasks
from portal.relay import services as relay_services
from portal.relay.hints import Element, hint_for
from portal.relay.models import DeliveryAttempt, MessageStatus, OutboxMessage
from portal.sandbox.models import RejectedLog

pytestmark = pytest.mark.usefixtures("database_before_the_live_server")

MISSING = ["missing serviceCode", "missing location.assetReference"]


@pytest.fixture
def connection(sandbox_connection):
    return sandbox_connection


def set_behaviour(platform: str, **switches) -> None:
    response = httpx.post(f"{platform}/comportement.json", json=switches)
    assert response.status_code == HTTPStatus.OK, response.text


def platform_logs(platform: str, reference: str) -> list[dict]:
    response = httpx.get(f"{platform}/logs.json", params={"reference": reference})
    assert response.status_code == HTTPStatus.OK
    return response.json()["logs"]


def drain(rounds: int = 20) -> list[str]:
    """Deliver every due message, round after round, skipping the backoff waits."""
    outcomes: list[str] = []
    for _ in range(rounds):
        OutboxMessage.objects.filter(status=MessageStatus.PENDING).update(next_attempt_at=timezone.now())
        last = DeliveryAttempt.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        for message in OutboxMessage.objects.filter(status=MessageStatus.PENDING).order_by("order", "sequence"):
            tasks.deliver_message(message.pk)
        done = list(DeliveryAttempt.objects.filter(pk__gt=last).order_by("pk").values_list("outcome", flat=True))
        if not done:
            return outcomes
        outcomes += done
    raise AssertionError(f"still delivering after {rounds} rounds: {outcomes}")


def text_of(response) -> str:
    """The page's text, tags and repeated spaces removed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


# --- The reasons, from the usual shapes (pure) ---------------------------------------------


@pytest.mark.parametrize(
    ("body", "reasons", "summary"),
    [
        (
            {"error": "validation", "messages": MISSING},
            MISSING,
            "validation – missing serviceCode; missing location.assetReference",
        ),
        (
            {
                "message": "Log invalide.",
                "errors": {"serviceCode": ["inconnu"], "location": {"assetReference": "vide"}},
            },
            ["serviceCode : inconnu", "location.assetReference : vide"],
            "Log invalide. – serviceCode : inconnu; location.assetReference : vide",
        ),
        (  # FastAPI / pydantic
            {"detail": [{"loc": ["body", "eventDate"], "msg": "field required", "type": "missing"}]},
            ["eventDate : field required"],
            "eventDate : field required",
        ),
        (  # Google's nested error
            {"error": {"code": 400, "message": "Invalid log", "details": [{"field": "status", "description": "?"}]}},
            ["status : ?"],
            "Invalid log – status : ?",
        ),
        (  # RFC 7807
            {"title": "Bad Request", "status": 400, "invalid-params": [{"name": "event", "reason": "unknown"}]},
            ["event : unknown"],
            "Bad Request – event : unknown",
        ),
        (  # Spring
            {"error": "Bad Request", "errors": [{"field": "workType", "defaultMessage": "must not be blank"}]},
            ["workType : must not be blank"],
            "Bad Request – workType : must not be blank",
        ),
        (  # OAuth
            {"error": "invalid_request", "error_description": "contractReference inconnu"},
            ["contractReference inconnu", "invalid_request"],
            "contractReference inconnu – invalid_request",
        ),
        ({"serviceCode": ["This field is required."]}, ["serviceCode : This field is required."], None),
        (["a", "b", "a"], ["a", "b"], "a; b"),
        ({"message": "Opération refusée", "errors": ["Opération refusée"]}, ["Opération refusée"], None),
    ],
)
def test_every_reason_is_read_from_the_usual_shapes_each_once(body, reasons, summary):
    refusal = intent.read_refusal(json.dumps(body))
    assert list(refusal.reasons) == reasons
    assert refusal.summary == (summary or "; ".join(reasons))


def test_a_body_that_is_not_json_gives_its_text_or_its_html_title():
    assert intent.read_refusal("  Données refusées\n").reasons == ("Données refusées",)
    page = "<html><head><title>413 Request Entity Too Large</title></head><body><h1>413</h1></body></html>"
    assert intent.read_refusal(page).reasons == ("413 Request Entity Too Large",)
    assert intent.read_refusal("").reasons == ()


def test_the_refused_body_is_kept_bounded_to_8_kb_with_the_reasons():
    body = {"error": "validation", "messages": MISSING, "echo": "é" * 10_000}
    with pytest.raises(intent.Rejection) as raised:
        intent.classify(httpx.Response(HTTPStatus.BAD_REQUEST, json=body))
    assert raised.value.reasons == tuple(MISSING)
    assert len(raised.value.body.encode()) <= 8 * 1024
    assert raised.value.body.startswith('{"error":') and raised.value.body.endswith("é")
    assert raised.value.message == "HTTP 400 : validation – missing serviceCode; missing location.assetReference"


def test_a_502_or_504_is_uncertain_other_server_errors_are_not():
    for code in (HTTPStatus.BAD_GATEWAY, HTTPStatus.GATEWAY_TIMEOUT):
        with pytest.raises(intent.AmbiguousError) as raised:
            intent.classify(httpx.Response(code, text="<html><title>Bad Gateway</title></html>"))
        assert raised.value.message == f"HTTP {code} : Bad Gateway"
    for code in (HTTPStatus.INTERNAL_SERVER_ERROR, HTTPStatus.SERVICE_UNAVAILABLE):
        with pytest.raises(intent.TransientError) as raised:
            intent.classify(httpx.Response(code, json={"message": "Erreur"}))
        assert not isinstance(raised.value, intent.AmbiguousError)


# --- The sandbox's strict mode ----------------------------------------------------------------


def test_in_strict_mode_the_platform_refuses_a_log_without_its_required_fields(platform, connection):
    client = intent.IntentClient(connection)
    log = {
        "reference": "OPH57_1",
        "contractReference": "MULTITECH-2024-07",
        "status": "open",
        "event": "acknowledged",
        "eventDate": "2026-11-22T09:30:00+01:00",
        "logDate": "2026-11-22T09:30:00+01:00",
        "workType": "corrective",
        "location": {"address": {"city": "Metz"}},
    }
    try:
        client.post_log(log)  # the lenient platform takes it
        set_behaviour(platform, strict=True)
        with pytest.raises(intent.Rejection) as refused:
            client.post_log(log)
        response = httpx.post(
            f"{platform}/api/operations/v2/interventions/logs",
            json={"reference": "OPH57_1", "status": "open"},
            headers={"authorization": f"Bearer {client.token()}"},
        )
    finally:
        client.close()

    assert json.loads(refused.value.body) == {"error": "validation", "messages": MISSING}
    assert refused.value.reasons == tuple(MISSING)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json() == {
        "error": "validation",
        "messages": [
            "missing contractReference",
            "missing event",
            "missing eventDate",
            "missing logDate",
            "missing serviceCode",
            "missing workType",
            "missing location.assetReference",
        ],
    }
    assert RejectedLog.objects.filter(reason=RejectedLog.Reason.INVALID, message="validation").count() == 2


# --- Item 2: the reasons, on the three pages -----------------------------------------------------


def refuse_the_acknowledgement_for_missing_fields(platform: str, order: Order, technician) -> OutboxMessage:
    """The platform, strict, refuses the acknowledgement of an order whose log
    lacks its service code and asset (as an incomplete order would send it)."""
    assert set(drain()) <= {"delivered"}  # what registering the order sent, if anything
    set_behaviour(platform, strict=True)
    services.acknowledge_order(order, actor=technician)
    message = order.outbox_messages.get(payload__event="acknowledged")
    payload = {key: value for key, value in message.payload.items() if key != "serviceCode"}
    payload["location"] = {}
    OutboxMessage.objects.filter(pk=message.pk).update(payload=payload)
    assert drain() == ["rejected"]
    message.refresh_from_db()
    return message


def test_a_refusal_keeps_the_platforms_answer_and_every_reason(platform, connection, order, technician):
    message = refuse_the_acknowledgement_for_missing_fields(platform, order, technician)

    assert (message.status, message.last_status_code) == (MessageStatus.REJECTED, 400)
    assert message.last_reasons == MISSING
    assert json.loads(message.last_response_body) == {"error": "validation", "messages": MISSING}
    assert message.last_error == "HTTP 400 : validation – missing serviceCode; missing location.assetReference"
    attempt = message.attempts_log.get()
    assert json.loads(attempt.response_body) == {"error": "validation", "messages": MISSING}


# What to correct and where, beside each reason (portal/relay/hints.py).
SERVICE_CODE_HINT = (
    "Code prestation manquant : choisissez-le sur la page de la commande, encadré « Corriger la commande »"
)
ASSET_HINT = (
    "Référence du patrimoine manquante : indiquez l'élément de patrimoine sur la page de la commande, "
    "encadré « Corriger la commande » (Patrimoine) ; un élément que le portail ne connaît pas se crée dans "
    "l'administration (Patrimoine)"
)


def test_the_reasons_are_shown_on_the_error_queue_the_timeline_and_the_email(
    platform, connection, order, technician, supervisor, office, client
):
    message = refuse_the_acknowledgement_for_missing_fields(platform, order, technician)
    client.force_login(supervisor)

    queue = text_of(client.get("/relais/erreurs/"))
    timeline = text_of(client.get(f"/pilotage/commandes/{order.pk}/"))

    # Each reason in the platform's words, then in French what to correct and where.
    explained = (
        f"La plateforme a refusé : missing serviceCode {SERVICE_CODE_HINT} missing location.assetReference {ASSET_HINT}"
    )
    for page in (queue, timeline):
        assert explained in page
    assert "Refusé par la plateforme le" in timeline
    client.force_login(office)  # where the email's link leads
    admin_page = text_of(client.get(f"/admin/relay/outboxmessage/{message.pk}/change/"))
    assert explained in admin_page
    email = next(email for email in mail.outbox if email.to == [supervisor.email])
    assert (
        f"La plateforme a refusé :\n  - missing serviceCode\n    {SERVICE_CODE_HINT}\n"
        f"  - missing location.assetReference\n    {ASSET_HINT}\n"
    ) in email.body
    html_body = html.unescape(email.alternatives[0][0])
    assert f'<li>missing serviceCode<br><span style="color: #555;">{SERVICE_CODE_HINT}</span></li>' in html_body
    assert f'<li>missing location.assetReference<br><span style="color: #555;">{ASSET_HINT}</span></li>' in html_body

    # Resent (rebuilt from the order, which has its service code and asset) and
    # delivered: what was refused is forgotten, the attempt keeps it.
    relay_services.resend_message(message, actor=supervisor, note="Code prestation et patrimoine")
    assert drain() == ["delivered"]
    message.refresh_from_db()
    assert (message.last_reasons, message.last_response_body, message.last_error) == ([], "", "")


def test_a_reason_about_no_field_the_portal_knows_keeps_the_platforms_words_alone(
    platform, connection, order, technician, supervisor, client
):
    assert set(drain()) <= {"delivered"}
    set_behaviour(platform, reject_reference=order.reference)
    services.acknowledge_order(order, actor=technician)
    assert drain() == ["rejected"]
    set_behaviour(platform, reject_reference="")
    client.force_login(supervisor)

    queue = client.get("/relais/erreurs/").content.decode()

    assert f"La plateforme a refusé : Opération {order.reference} refusée par la plateforme.</p>" in queue
    assert "refusal-hint" not in queue


@pytest.mark.parametrize(
    ("body", "hints"),
    [
        (  # the sandbox's strict mode
            {"error": "validation", "messages": MISSING},
            [SERVICE_CODE_HINT, ASSET_HINT],
        ),
        (  # an object of fields, nested
            {"message": "Log invalide.", "errors": {"serviceCode": ["inconnu"], "location": {"assetReference": ""}}},
            ["Code prestation à corriger : choisissez-le sur la page de la commande, encadré « Corriger la commande »"],
        ),
        (  # FastAPI / pydantic
            {"detail": [{"loc": ["body", "location", "assetReference"], "msg": "field required"}]},
            [ASSET_HINT],
        ),
        (  # RFC 7807, a JSON pointer
            {"title": "Bad Request", "invalid-params": [{"name": "/workType", "reason": "must not be blank"}]},
            ["Type de travaux manquant : choisissez-le sur la page de la commande, encadré « Corriger la commande »"],
        ),
        (  # Spring, snake_case
            {"errors": [{"field": "critical_level", "defaultMessage": "out of range"}]},
            ["Criticité à corriger : choisissez-la sur la page de la commande, encadré « Corriger la commande »"],
        ),
        (  # OAuth, the field in the text
            {"error": "invalid_request", "error_description": "contractReference inconnu"},
            [
                "Référence du marché à corriger : vérifiez le marché de la commande et sa référence dans "
                "l'administration (Marchés)",
                "",
            ],
        ),
        (  # a field the portal does not know, and no field at all
            {"errors": [{"field": "location.address.zip", "message": "invalid"}, "Opération verrouillée"]},
            ["", ""],
        ),
        (
            {"messages": ["missing status", "the event date is in the future"]},
            [
                "Statut manquant : il découle de l'action enregistrée sur la commande : vérifiez son état et sa "
                "chronologie, puis renvoyez ou abandonnez ce message",
                "",
            ],
        ),
    ],
)
def test_each_reason_about_a_known_field_says_in_french_what_to_correct_and_where(body, hints):
    reasons = intent.read_refusal(json.dumps(body)).reasons
    assert [hint_for(reason) for reason in reasons] == hints


def test_a_quotes_and_a_documents_fields_are_corrected_where_they_are_kept():
    assert hint_for("missing serviceCode", Element.QUOTE) == (
        "Code prestation manquant : choisissez-le dans l'éditeur du devis, encadré « Le devis »"
    )
    assert hint_for("intent_documentType : unknown", Element.DOCUMENT) == (
        "Type de document à corriger : réglez-le dans l'administration (Liaison plateformes › Connexions plateformes)"
    )
    assert hint_for("workType : blank", Element.QUOTE).startswith("Type de travaux à corriger : choisissez-le sur")


# --- Item 6: a gateway's error after the platform stored the log -------------------------------


def test_a_502_after_the_platform_stored_the_log_is_read_back_not_sent_twice(platform, connection, order, technician):
    assert set(drain()) <= {"delivered"}  # what registering the order sent, if anything
    set_behaviour(platform, gateway_error_after_store_rate=1)
    services.acknowledge_order(order, actor=technician)
    message = order.outbox_messages.get(payload__event="acknowledged")

    assert tasks.deliver_message(message.pk) == "ambiguous"

    message.refresh_from_db()
    assert (message.status, message.ambiguous, message.last_status_code) == (MessageStatus.PENDING, True, 502)
    assert message.last_error == "HTTP 502 : 502 Bad Gateway"
    assert [log["event"] for log in platform_logs(platform, order.reference)].count("acknowledged") == 1

    set_behaviour(platform, gateway_error_after_store_rate=0)
    assert drain() == ["already_there"]

    message.refresh_from_db()
    assert (message.status, message.ambiguous) == (MessageStatus.DELIVERED, False)
    assert list(message.attempts_log.values_list("outcome", flat=True)) == ["ambiguous", "already_there"]
    logs = [log for log in platform_logs(platform, order.reference) if log["source"] == "api"]
    assert [log["event"] for log in logs].count("acknowledged") == 1
    assert [log["raw"] for log in logs] == [
        sent.payload for sent in order.outbox_messages.filter(status=MessageStatus.DELIVERED).order_by("sequence")
    ]
