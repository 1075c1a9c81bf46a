"""The embedded sandbox: the manager's Intent platform as the portal sees it,
over real HTTP (pytest-django's live server), and the manager's pages."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import httpx
import pytest
from django.core.management import call_command
from django.utils import timezone

from portal.sandbox import services
from portal.sandbox.models import (
    AccessToken,
    ApiClient,
    Asset,
    Behaviour,
    Contract,
    Document,
    Log,
    Operation,
    RejectedLog,
    WebhookDelivery,
    WebhookTarget,
)

pytestmark = pytest.mark.usefixtures("database_before_the_live_server")

CLIENT_ID = "multiservices-metz"
CLIENT_SECRET = "secret-du-bac-a-sable-42"
CONTRACT = "MULTITECH-2024-07"
REFERENCE = "OPH57_241122093015"


def a_log(reference: str = REFERENCE, status: str = "open", event: str = "planned", **extra) -> dict:
    """A log as the portal sends it (platform-examples.md)."""
    return {
        "reference": reference,
        "contractReference": CONTRACT,
        "status": status,
        "event": event,
        "eventDate": "2024-11-25T08:30:00+01:00",
        "logDate": "2024-11-22T10:02:41+01:00",
        "description": "Rendez-vous fixé le lundi 25 novembre à 8 h 30",
        "serviceCode": "PLB-FUITE",
        "workType": "corrective",
        "criticalLevel": 3,
        "location": {"assetReference": "LGT-0412"},
        "contacts": [
            "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Karim Haddad\r\nN:Haddad;Karim;;;\r\nTEL;TYPE=CELL:0698765432\r\n"
            "EMAIL;TYPE=INTERNET:k.haddad@example.fr\r\nROLE:Pilote\r\nEND:VCARD"
        ],
        "tags": {"progress_percent": "0", "lines_done": "0/2"},
        **extra,
    }


@pytest.fixture
def api_client(db) -> ApiClient:
    return ApiClient.objects.create(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, label="Multiservices Metz")


@pytest.fixture
def sandbox_url(live_server, api_client) -> str:
    return f"{live_server.url}/sandbox"


@pytest.fixture
def token(sandbox_url) -> str:
    response = httpx.post(
        f"{sandbox_url}/oauth/token",
        data={"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
    )
    assert response.status_code == HTTPStatus.OK
    return response.json()["access_token"]


@pytest.fixture
def api(sandbox_url, token) -> Iterator[httpx.Client]:
    """An authenticated client on the API base, as the portal's Intent client would be."""
    with httpx.Client(
        base_url=f"{sandbox_url}/api",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json+hal"},
        timeout=10,
    ) as client:
        yield client


def set_behaviour(sandbox_url: str, **changes) -> dict:
    response = httpx.post(f"{sandbox_url}/comportement.json", json=changes)
    assert response.status_code == HTTPStatus.OK, response.text
    return response.json()


def received_logs(sandbox_url: str, since: int = 0) -> list[dict]:
    response = httpx.get(f"{sandbox_url}/logs.json", params={"since": since})
    assert response.status_code == HTTPStatus.OK
    return response.json()["logs"]


@pytest.fixture
def receiver() -> Iterator[SimpleNamespace]:
    """A tiny webhook target: records each request's body and headers."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"path": self.path, "headers": self.headers, "body": body})
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield SimpleNamespace(url=f"http://127.0.0.1:{server.server_port}/webhooks/intent/abc", received=received)
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def seeded(db) -> None:
    services.seed_reference_data()


# Tokens


def test_good_client_credentials_get_a_bearer_token(sandbox_url):
    response = httpx.post(
        f"{sandbox_url}/oauth/token",
        data={"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
    )

    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert len(body["access_token"]) > 20


def test_a_bad_secret_gets_401_invalid_client(sandbox_url):
    response = httpx.post(
        f"{sandbox_url}/oauth/token",
        data={"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": "pas-le-bon"},
    )

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.json() == {"error": "invalid_client"}


def test_a_nul_character_in_the_client_id_gets_401_not_500(sandbox_url):
    response = httpx.post(
        f"{sandbox_url}/oauth/token",
        data={"grant_type": "client_credentials", "client_id": "a\x00b", "client_secret": CLIENT_SECRET},
    )

    assert response.status_code == HTTPStatus.UNAUTHORIZED


def test_another_grant_type_gets_400_unsupported_grant_type(sandbox_url):
    response = httpx.post(
        f"{sandbox_url}/oauth/token",
        data={"grant_type": "password", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
    )

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json() == {"error": "unsupported_grant_type"}


def test_the_token_lifetime_can_be_configured(sandbox_url):
    set_behaviour(sandbox_url, token_expires_in=60)

    response = httpx.post(
        f"{sandbox_url}/oauth/token",
        data={"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
    )

    assert response.json()["expires_in"] == 60


def test_an_api_call_without_a_bearer_token_gets_401(sandbox_url):
    response = httpx.post(f"{sandbox_url}/api/operations/v2/interventions/logs", json=a_log())

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.json()["error"] == "invalid_token"
    assert not Log.objects.exists()


def test_an_expired_token_gets_401(sandbox_url, token):
    AccessToken.objects.filter(token=token).update(expires_at=timezone.now() - timedelta(seconds=1))

    response = httpx.get(
        f"{sandbox_url}/api/contracts/v1/contracts/{CONTRACT}", headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status_code == HTTPStatus.UNAUTHORIZED


# Logs and operations


def test_the_first_log_creates_the_operation_and_every_log_is_kept_in_order_duplicates_included(api, sandbox_url):
    acknowledged = a_log(event="acknowledged", description="Demande prise en compte")
    planned = a_log(event="planned")

    for payload in (acknowledged, planned, planned):
        assert api.post("/operations/v2/interventions/logs", json=payload).status_code == HTTPStatus.NO_CONTENT

    logs = received_logs(sandbox_url)
    assert [(log["event"], log["raw"]) for log in logs] == [
        ("acknowledged", acknowledged),
        ("planned", planned),
        ("planned", planned),
    ]
    assert [log["sequence"] for log in logs] == sorted({log["sequence"] for log in logs})
    assert [log["event"] for log in received_logs(sandbox_url, since=logs[0]["sequence"])] == ["planned", "planned"]
    assert logs[0]["contractReference"] == CONTRACT
    assert logs[0]["tags"] == {"progress_percent": "0", "lines_done": "0/2"}
    operation = Operation.objects.get()
    assert (operation.type, operation.status, operation.event) == ("intervention", "open", "planned")


def test_the_operation_follows_the_latest_log(api):
    api.post("/operations/v2/interventions/logs", json=a_log(event="planned"))
    api.post(
        "/operations/v2/interventions/logs",
        json=a_log(status="pending", event="start", logDate="2024-11-25T08:41:00+01:00"),
    )

    operation = api.get(f"/operations/v2/operations/{REFERENCE}", params={"contractReference": CONTRACT}).json()

    assert (operation["status"], operation["event"]) == ("pending", "start")
    assert operation["lastUpdateDate"] == "2024-11-25T08:41:00+01:00"
    assert operation["creationDate"] == "2024-11-22T10:02:41+01:00"


def test_get_operation_returns_the_hal_shape_with_its_logs(api, seeded):
    first = a_log(event="acknowledged")
    second = a_log(event="planned", visitAttempt=1)
    api.post("/operations/v2/interventions/logs", json=first)
    api.post("/operations/v2/interventions/logs", json=second)

    response = api.get(f"/operations/v2/operations/{REFERENCE}", params={"contractReference": CONTRACT})

    assert response.status_code == HTTPStatus.OK
    operation = response.json()
    assert set(operation) == {
        "_links",
        "reference",
        "type",
        "status",
        "event",
        "description",
        "criticalLevel",
        "workType",
        "creationDate",
        "lastUpdateDate",
        "issuer",
        "contract",
        "service",
        "location",
        "contacts",
        "logs",
    }
    assert operation["_links"]["self"]["href"].endswith(
        f"/sandbox/api/operations/v2/operations/{REFERENCE}?contractReference={CONTRACT}"
    )
    assert operation["_links"]["documents:list"]["href"].endswith(
        f"/sandbox/api/documents/v1/documents?elementType=intervention&elementReference={REFERENCE}"
    )
    assert operation["criticalLevel"] == 3
    assert operation["contract"] == {
        "reference": CONTRACT,
        "label": "Maintenance multitechnique",
        "topic": "Multitechnique",
    }
    assert operation["service"] == {
        "code": "PLB-FUITE",
        "label": "Recherche et réparation de fuite",
        "sla": {
            "maxTimeToIntervention": {"value": 24, "unit": "hour"},
            "maxTimeToRecovery": {"value": 72, "unit": "hour"},
        },
    }
    assert operation["location"]["assetReference"] == "LGT-0412"
    assert operation["location"]["address"]["city"] == "Metz"
    assert operation["contacts"] == first["contacts"]
    assert operation["logs"] == [first, second]


def test_an_unknown_operation_is_404(api):
    response = api.get("/operations/v2/operations/INCONNUE", params={"contractReference": CONTRACT})

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response.json()["message"]


def test_quotation_and_reservation_logs_create_operations_of_their_type(api):
    quote = a_log(reference="DEV-2024-118", event="proposed", parentReference=REFERENCE)
    assert api.post("/operations/v2/quotations/logs", json=quote).status_code == HTTPStatus.NO_CONTENT
    snag = a_log(reference="RES-0001", event="requested")
    assert api.post("/operations/v2/reservations/logs", json=snag).status_code == HTTPStatus.NO_CONTENT

    assert dict(Operation.objects.values_list("reference", "type")) == {
        "DEV-2024-118": "quotation",
        "RES-0001": "reservation",
    }
    quote = api.get("/operations/v2/operations/DEV-2024-118", params={"contractReference": CONTRACT}).json()
    assert quote["parentReference"] == REFERENCE


def test_the_operation_list_is_paged_and_ends_with_an_empty_page(api):
    for number in range(5):
        api.post("/operations/v2/interventions/logs", json=a_log(reference=f"OPH57_{number}"))
    api.post("/operations/v2/interventions/logs", json=a_log(reference="OPH57_0", status="closed", event="done"))

    pages = []
    for page in range(1, 10):
        response = api.get("/operations/v2/operations", params={"status": "open", "page": page, "perPage": 2})
        assert response.status_code == HTTPStatus.OK
        operations = response.json()["_embedded"]["operations"]
        pages.append([operation["reference"] for operation in operations])
        if not operations:
            break

    assert pages == [["OPH57_1", "OPH57_2"], ["OPH57_3", "OPH57_4"], []]
    summary = api.get("/operations/v2/operations", params={"status": "closed"}).json()["_embedded"]["operations"]
    assert [(row["reference"], row["contractReference"], row["event"]) for row in summary] == [
        ("OPH57_0", CONTRACT, "done")
    ]


def test_more_than_100_per_page_is_refused(api):
    response = api.get("/operations/v2/operations", params={"page": 1, "perPage": 101})

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["errors"]


@pytest.mark.parametrize(
    "payload",
    [
        {k: v for k, v in a_log().items() if k != "reference"},
        a_log(status="finished"),
        a_log(eventDate="2024-11-25T08:30:00"),
        a_log(logDate="demain"),
        a_log(criticalLevel="3"),
        a_log(tags={"progress_percent": 50}),
        a_log(contacts="BEGIN:VCARD"),
        a_log(location="LGT-0412"),
        a_log(reference=""),
        a_log(reference="x" * 500),
    ],
    ids=[
        "missing-reference",
        "unknown-status",
        "date-without-offset",
        "not-a-date",
        "critical-level-as-string",
        "tag-not-a-string",
        "contacts-not-a-list",
        "location-not-an-object",
        "empty-reference",
        "reference-too-long",
    ],
)
def test_a_bad_log_gets_400_with_a_message_and_is_not_stored(api, payload):
    response = api.post("/operations/v2/interventions/logs", json=payload)

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["message"]
    assert response.json()["errors"]
    assert not Log.objects.exists()
    assert not Operation.objects.exists()
    assert RejectedLog.objects.get().reason == RejectedLog.Reason.INVALID


@pytest.mark.parametrize(
    "body",
    [b"{pas du json", b"[1, 2]", b'"chaine"', b'{"reference": NaN}', b"[" * 100_000, b"\xff\xfe", b""],
    ids=["broken", "array", "string", "nan", "deeply-nested", "not-utf8", "empty"],
)
def test_a_body_that_is_not_a_json_object_gets_400_not_500(api, body):
    response = api.post("/operations/v2/interventions/logs", content=body, headers={"Content-Type": "application/json"})

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["message"]


def test_a_nul_character_gets_400(api):
    response = api.post("/operations/v2/interventions/logs", json=a_log(description="fuite\x00"))

    assert response.status_code == HTTPStatus.BAD_REQUEST


def test_a_nul_character_in_the_address_gets_400(api):
    response = api.get(f"/operations/v2/operations/{REFERENCE}", params={"contractReference": "MULTI\x00"})

    assert response.status_code == HTTPStatus.BAD_REQUEST


def test_an_unknown_api_path_or_method_gets_a_json_error(api):
    unknown = api.get("/operations/v2/inconnu")
    wrong_method = api.delete("/operations/v2/interventions/logs")

    assert unknown.status_code == HTTPStatus.NOT_FOUND
    assert unknown.json()["message"]
    assert wrong_method.status_code == HTTPStatus.METHOD_NOT_ALLOWED
    assert wrong_method.headers["Allow"] == "POST"


def test_a_huge_body_gets_413(api):
    response = api.post("/operations/v2/interventions/logs", json=a_log(description="x" * (2 * 1024 * 1024)))

    assert response.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert not Log.objects.exists()


# Documents


def upload_fields(**extra) -> dict:
    return {
        "title": "Rapport d'intervention du 25/11/2024",
        "description": "Remplacement du siphon et du flexible",
        "elementType": "intervention",
        "elementReference": REFERENCE,
        "intent_contractReference": CONTRACT,
        "intent_documentType": "rapport_intervention",
        "intent_documentFamily": "rapports_intervention",
        "intent_creationDate": "2024-11-25T11:05:00+01:00",
        **extra,
    }


def test_a_document_is_uploaded_listed_and_downloaded_with_the_same_bytes(api):
    content = b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF"

    response = api.post(
        "/documents/v1/documents",
        data=upload_fields(),
        files={"file": (f"rapport-{REFERENCE}.pdf", content, "application/pdf")},
    )

    assert response.status_code == HTTPStatus.CREATED
    document_id = response.json()["id"]
    listing = api.get("/documents/v1/documents", params={"elementType": "intervention", "elementReference": REFERENCE})
    assert listing.status_code == HTTPStatus.OK
    [document] = listing.json()["_embedded"]["documents"]
    assert document["id"] == document_id
    assert document["title"] == "Rapport d'intervention du 25/11/2024"
    assert document["documentFamily"] == "rapports_intervention"
    assert document["size"] == len(content)
    download = httpx.get(document["_links"]["download"]["href"])
    assert download.status_code == HTTPStatus.OK
    assert download.content == content
    assert download.headers["Content-Type"] == "application/pdf"
    other = api.get("/documents/v1/documents", params={"elementType": "intervention", "elementReference": "AUTRE"})
    assert other.json()["_embedded"]["documents"] == []


def test_a_document_without_its_required_fields_gets_400(api):
    response = api.post(
        "/documents/v1/documents",
        data=upload_fields(elementReference="", intent_creationDate="25/11/2024"),
        files={"file": ("rapport.pdf", b"%PDF-1.7", "application/pdf")},
    )

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert len(response.json()["errors"]) == 2
    assert not Document.objects.exists()


def test_in_strict_mode_text_parts_are_read_in_their_declared_charset_and_else_as_latin_1(sandbox_url, api):
    """As many Java stacks do: UTF-8 bytes in a part that declares no charset come out garbled."""
    set_behaviour(sandbox_url, strict=True)
    declared = [
        (name, (None, value.encode(), "text/plain; charset=utf-8"))
        for name, value in upload_fields(title="Rapport déposé", description="Façade nord").items()
    ]

    with_charset = api.post(
        "/documents/v1/documents", files=[*declared, ("file", ("a.pdf", b"%PDF-1.7", "application/pdf"))]
    )
    without = api.post(
        "/documents/v1/documents",
        data=upload_fields(title="Rapport déposé", description="Façade nord"),
        files={"file": ("b.pdf", b"%PDF-1.7", "application/pdf")},
    )
    latin_1 = [
        (name, (None, value.encode("iso-8859-1"), "text/plain; charset=iso-8859-1"))
        for name, value in upload_fields(title="Rapport déposé").items()
    ]
    in_latin_1 = api.post(
        "/documents/v1/documents", files=[*latin_1, ("file", ("c.pdf", b"%PDF-1.7", "application/pdf"))]
    )

    assert [response.status_code for response in (with_charset, without, in_latin_1)] == [HTTPStatus.CREATED] * 3
    assert [(document.title, document.description) for document in Document.objects.order_by("file_name")] == [
        ("Rapport déposé", "Façade nord"),
        ("Rapport dÃ©posÃ©", "FaÃ§ade nord"),
        ("Rapport déposé", "Remplacement du siphon et du flexible"),
    ]


@pytest.mark.parametrize("strict", [False, True])
def test_documents_are_listed_under_the_platform_names_or_in_strict_mode_under_the_multipart_names(
    sandbox_url, api, strict
):
    set_behaviour(sandbox_url, strict=strict)
    content = b"%PDF-1.7 rapport"
    api.post(
        "/documents/v1/documents", data=upload_fields(), files={"file": ("rapport.pdf", content, "application/pdf")}
    )

    listing = api.get("/documents/v1/documents", params={"elementType": "intervention", "elementReference": REFERENCE})

    [document] = listing.json()["_embedded"]["documents"]
    names = ("contractReference", "documentType", "documentFamily", "creationDate")
    expected = [f"intent_{name}" for name in names] if strict else list(names)
    unexpected = list(names) if strict else [f"intent_{name}" for name in names]
    assert [document.get(name) for name in expected] == [
        CONTRACT,
        "rapport_intervention",
        "rapports_intervention",
        "2024-11-25T11:05:00+01:00",
    ]
    assert not any(name in document for name in unexpected)
    assert (document["title"], document["elementReference"], document["size"]) == (
        "Rapport d'intervention du 25/11/2024",
        REFERENCE,
        len(content),
    )


def test_a_document_without_a_file_gets_400(api):
    response = api.post("/documents/v1/documents", data=upload_fields())

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert not Document.objects.exists()


# Reference data


def test_the_contract_is_served_with_its_service_codes(api, seeded):
    response = api.get(f"/contracts/v1/contracts/{CONTRACT}")

    assert response.status_code == HTTPStatus.OK
    contract = response.json()
    assert contract["reference"] == CONTRACT
    leak = next(item for item in contract["serviceCodes"] if item["code"] == "PLB-FUITE")
    assert leak["sla"]["maxTimeToIntervention"] == {"value": 24, "unit": "hour"}
    assert api.get("/contracts/v1/contracts/INCONNU").status_code == HTTPStatus.NOT_FOUND


def test_an_asset_is_served_with_its_address_and_parent(api, seeded):
    response = api.get("/assets/v1/assets/LGT-0412")

    assert response.status_code == HTTPStatus.OK
    asset = response.json()
    assert (asset["code"], asset["type"], asset["parentReference"]) == ("LGT-0412", "dwelling", "BAT-B")
    assert asset["address"]["zip"] == "57000"
    assert api.get("/assets/v1/assets/INCONNU").status_code == HTTPStatus.NOT_FOUND


def test_the_seed_and_setup_commands_can_run_twice(db):
    for _ in range(2):
        call_command("sandbox_seed")
        call_command(
            "sandbox_setup",
            "--client-id=portail",
            "--client-secret=s3cret",
            "--webhook-url=http://127.0.0.1:8000/webhooks/intent/abc",
            "--webhook-secret=hmac",
        )

    assert Contract.objects.count() == 1
    assert Asset.objects.count() == 5
    assert ApiClient.objects.get().client_secret == "s3cret"
    assert WebhookTarget.objects.get().secret == "hmac"


# Misbehaviour


def test_when_down_every_api_call_gets_503_token_included(sandbox_url, api):
    set_behaviour(sandbox_url, down=True)

    token = httpx.post(
        f"{sandbox_url}/oauth/token",
        data={"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
    )
    log = api.post("/operations/v2/interventions/logs", json=a_log())

    assert token.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert log.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert not Log.objects.exists()


def test_an_error_rate_of_one_answers_500(sandbox_url, api):
    set_behaviour(sandbox_url, error_rate_500=1)

    response = api.post("/operations/v2/interventions/logs", json=a_log())

    assert response.status_code == HTTPStatus.INTERNAL_SERVER_ERROR
    assert response.json()["message"]
    assert not Log.objects.exists()


def test_a_429_rate_of_one_answers_429_with_retry_after(sandbox_url, api):
    set_behaviour(sandbox_url, error_rate_429=1)

    response = api.get(f"/contracts/v1/contracts/{CONTRACT}")

    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert response.headers["Retry-After"] == "1"


def test_a_delay_slows_every_answer(sandbox_url, api):
    set_behaviour(sandbox_url, delay_ms=300)

    with pytest.raises(httpx.ReadTimeout):
        api.get(f"/contracts/v1/contracts/{CONTRACT}", timeout=0.1)


def test_reject_next_logs_refuses_the_next_log_then_accepts_the_following(sandbox_url, api):
    set_behaviour(sandbox_url, reject_next_logs=1)

    rejected = api.post("/operations/v2/interventions/logs", json=a_log(event="acknowledged"))
    accepted = api.post("/operations/v2/interventions/logs", json=a_log(event="planned"))

    assert rejected.status_code == HTTPStatus.BAD_REQUEST
    assert rejected.json()["message"] == "Code prestation inconnu"
    assert accepted.status_code == HTTPStatus.NO_CONTENT
    assert [log["event"] for log in received_logs(sandbox_url)] == ["planned"]
    assert httpx.get(f"{sandbox_url}/rejected.json").json()["rejected"][0]["reason"] == "reject_next"
    assert set_behaviour(sandbox_url)["reject_next_logs"] == 0


def test_reject_reference_refuses_that_reference_only_while_set(sandbox_url, api):
    set_behaviour(sandbox_url, reject_reference="OPH57_BLOQUEE")

    blocked = api.post("/operations/v2/interventions/logs", json=a_log(reference="OPH57_BLOQUEE"))
    other = api.post("/operations/v2/interventions/logs", json=a_log())
    set_behaviour(sandbox_url, reject_reference="")
    unblocked = api.post("/operations/v2/interventions/logs", json=a_log(reference="OPH57_BLOQUEE"))

    assert blocked.status_code == HTTPStatus.BAD_REQUEST
    assert other.status_code == HTTPStatus.NO_CONTENT
    assert unblocked.status_code == HTTPStatus.NO_CONTENT
    assert [log["reference"] for log in received_logs(sandbox_url)] == [REFERENCE, "OPH57_BLOQUEE"]


def test_a_timeout_after_store_leaves_the_client_timed_out_but_the_log_stored(sandbox_url, api):
    set_behaviour(sandbox_url, timeout_after_store_rate=1, timeout_after_store_seconds=2)

    with pytest.raises(httpx.TimeoutException):
        api.post("/operations/v2/interventions/logs", json=a_log(), timeout=0.5)

    [log] = received_logs(sandbox_url)
    assert log["raw"] == a_log()


def test_behaviour_json_refuses_unknown_fields_and_out_of_range_values(client, db):
    unknown = client.post("/sandbox/comportement.json", {"panne": True}, content_type="application/json")
    out_of_range = client.post("/sandbox/comportement.json", {"error_rate_500": 2}, content_type="application/json")
    current = client.get("/sandbox/comportement.json")

    assert unknown.status_code == HTTPStatus.BAD_REQUEST
    assert out_of_range.status_code == HTTPStatus.BAD_REQUEST
    assert current.json()["error_rate_500"] == 0


def test_reset_wipes_what_was_received_and_restores_the_behaviour(sandbox_url, api):
    api.post("/operations/v2/interventions/logs", json=a_log())
    set_behaviour(sandbox_url, delay_ms=5, reject_reference="X")

    response = httpx.post(f"{sandbox_url}/reset.json")

    assert response.status_code == HTTPStatus.OK
    assert not Operation.objects.exists()
    assert not Log.objects.exists()
    assert response.json()["behaviour"]["delay_ms"] == 0
    assert Behaviour.load().reject_reference == ""
    assert ApiClient.objects.exists()


# The manager's side


def request_form(**extra) -> dict:
    return {
        "contract": Contract.objects.get(reference=CONTRACT).pk,
        "service_code": "PLB-FUITE",
        "description": "Fuite sous l'évier de la cuisine, dégât des eaux chez le voisin du dessous",
        "work_type": "corrective",
        "critical_level": "3",
        "asset": Asset.objects.get(code="LGT-0412").pk,
        "occupant_title": "Mme",
        "occupant_first_name": "Claire",
        "occupant_last_name": "Martin",
        "occupant_home_phone": "03 87 00 00 00",
        "occupant_mobile_phone": "06 12 34 56 78",
        "requester_name": "Sophie Bernard",
        **extra,
    }


def test_creating_a_request_sends_the_share_webhook_array_signed_with_hmac(client, transactional_db, receiver):
    services.seed_reference_data()
    WebhookTarget.objects.create(url=receiver.url, secret="secret-hmac")

    response = client.post("/sandbox/nouvelle-demande/", request_form())

    operation = Operation.objects.get()
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == f"/sandbox/operations/{CONTRACT}/{operation.reference}/"
    assert operation.reference.startswith("OPH57_")
    assert (operation.status, operation.event) == ("open", "requested")
    assert operation.contacts == [
        "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Mme Claire Martin\r\nN:Martin;Claire;;;\r\n"
        "TEL;TYPE=HOME,VOICE:0387000000\r\nTEL;TYPE=CELL:0612345678\r\nROLE:Locataire\r\nEND:VCARD"
    ]
    [request] = receiver.received
    assert request["path"] == "/webhooks/intent/abc"
    assert request["headers"]["X-Intent-Signature"] == (
        "sha256=" + hmac.new(b"secret-hmac", request["body"], hashlib.sha256).hexdigest()
    )
    [notification] = json.loads(request["body"])
    assert notification["type"] == "operations:intervention:share"
    assert notification["event"]["type"] == "operations"
    body = notification["event"]["body"]
    assert body["reference"] == operation.reference
    assert body["contractReference"] == CONTRACT
    assert (body["status"], body["event"], body["type"]) == ("open", "requested", "intervention")
    assert (body["serviceCode"], body["workType"], body["assetReference"]) == ("PLB-FUITE", "corrective", "LGT-0412")
    assert body["criticalLevel"] == "3"
    assert body["issuer"]["user"]["name"] == "Sophie Bernard"
    assert body["operation_url"] == (
        f"http://testserver/sandbox/api/operations/v2/operations/{operation.reference}?contractReference={CONTRACT}"
    )
    delivery = WebhookDelivery.objects.get()
    assert delivery.delivered
    assert str(delivery.notification_id) == notification["id"]


def test_the_created_request_reads_back_like_the_platform_example(live_server, transactional_db, api, client):
    services.seed_reference_data()
    client.post("/sandbox/nouvelle-demande/", request_form())
    operation = Operation.objects.get()

    data = api.get(f"/operations/v2/operations/{operation.reference}", params={"contractReference": CONTRACT}).json()

    assert data["location"] == {
        "assetReference": "LGT-0412",
        "address": {
            "way": "14 rue des Tilleuls",
            "zip": "57000",
            "city": "Metz",
            "country": "France",
            "complement": "Bâtiment B, 3e étage, porte 12",
        },
    }
    [log] = data["logs"]
    assert set(log) == {"status", "event", "eventDate", "logDate", "description"}
    assert (log["status"], log["event"], log["description"]) == ("open", "requested", "Demande créée")
    assert data["issuer"]["entity"]["label"] == "Office Public de l'Habitat de Metz"


def test_an_unreachable_target_is_recorded_and_the_webhook_can_be_resent(client, transactional_db, receiver):
    services.seed_reference_data()
    target = WebhookTarget.objects.create(url="http://127.0.0.1:9/injoignable")
    client.post("/sandbox/nouvelle-demande/", request_form())
    failed = WebhookDelivery.objects.get()
    assert not failed.delivered
    assert failed.error
    page = client.get(f"/sandbox/operations/{CONTRACT}/{failed.operation.reference}/")
    assert "Échec" in page.text

    WebhookTarget.objects.filter(pk=target.pk).update(url=receiver.url)
    response = client.post(f"/sandbox/webhooks/{failed.pk}/renvoyer/")

    assert response.status_code == HTTPStatus.FOUND
    [request] = receiver.received
    assert request["body"].decode() == failed.body
    assert "X-Intent-Signature" not in request["headers"]
    assert WebhookDelivery.objects.latest("pk").delivered


def test_without_a_target_the_request_is_created_and_says_nothing_was_sent(client, db, seeded):
    response = client.post("/sandbox/nouvelle-demande/", request_form(), follow=True)

    assert response.status_code == HTTPStatus.OK
    assert "Aucune cible de webhook active" in response.text


def test_a_service_code_from_another_contract_is_refused(client, db, seeded):
    response = client.post("/sandbox/nouvelle-demande/", request_form(service_code="INCONNU"))

    assert response.status_code == HTTPStatus.OK
    assert not Operation.objects.exists()


def test_accepting_a_quote_appends_closed_accepted_and_sends_an_update_webhook(client, api, sandbox_url, receiver):
    WebhookTarget.objects.create(url=receiver.url)
    api.post("/operations/v2/quotations/logs", json=a_log(reference="DEV-2024-118", event="proposed"))
    page = client.get(f"/sandbox/operations/{CONTRACT}/DEV-2024-118/")
    assert "Accepter" in page.text

    response = client.post(f"/sandbox/operations/{CONTRACT}/DEV-2024-118/accepter/")

    assert response.status_code == HTTPStatus.FOUND
    logs = received_logs(sandbox_url)
    assert [(log["status"], log["event"], log["source"]) for log in logs] == [
        ("open", "proposed", "api"),
        ("closed", "accepted", "manager"),
    ]
    [request] = receiver.received
    [notification] = json.loads(request["body"])
    assert notification["type"] == "operations:intervention:update"
    assert (notification["event"]["body"]["status"], notification["event"]["body"]["event"]) == ("closed", "accepted")
    assert notification["event"]["body"]["type"] == "quotation"
    again = client.post(f"/sandbox/operations/{CONTRACT}/DEV-2024-118/refuser/", follow=True)
    assert "déjà reçu une réponse" in again.text
    assert Log.objects.count() == 2


def test_refusing_a_quote_appends_denied_refused(client, api, sandbox_url):
    api.post("/operations/v2/quotations/logs", json=a_log(reference="DEV-2024-119", event="proposed"))

    client.post(f"/sandbox/operations/{CONTRACT}/DEV-2024-119/refuser/")

    assert (Operation.objects.get().status, Operation.objects.get().event) == ("denied", "refused")


# Pages


def test_the_operation_page_shows_every_log_its_contacts_and_documents_in_french(client, api):
    api.post("/operations/v2/interventions/logs", json=a_log(event="acknowledged", description="Prise en compte"))
    api.post("/operations/v2/interventions/logs", json=a_log(event="planned"))
    api.post(
        "/documents/v1/documents",
        data=upload_fields(),
        files={"file": ("rapport.pdf", b"%PDF-1.7 rapport", "application/pdf")},
    )

    response = client.get(f"/sandbox/operations/{CONTRACT}/{REFERENCE}/")

    assert response.status_code == HTTPStatus.OK
    page = response.text
    assert '<html lang="fr">' in page
    assert "Historique (2 logs)" in page
    assert page.index("Prise en compte") < page.index("Rendez-vous fixé le lundi 25 novembre à 8 h 30")
    assert "progress_percent = 0" in page
    assert "Karim Haddad" in page and "Pilote" in page and "0698765432" in page
    assert "25/11/2024 à 08:30" in page
    document = Document.objects.get()
    assert f"/sandbox/documents/{document.pk}/" in page
    assert "<script>" not in page


def test_the_index_lists_operations_with_their_log_counts(client, api):
    api.post("/operations/v2/interventions/logs", json=a_log())
    api.post("/operations/v2/interventions/logs", json=a_log())

    response = client.get("/sandbox/")

    assert response.status_code == HTTPStatus.OK
    assert REFERENCE in response.text
    assert response.context["operations"][0].log_count == 2


@pytest.mark.parametrize("url", ["/sandbox/nouvelle-demande/", "/sandbox/comportement/", "/sandbox/acces/"])
def test_the_sandbox_pages_render_without_a_login(client, db, seeded, url):
    response = client.get(url)

    assert response.status_code == HTTPStatus.OK
    assert "Bac à sable" in response.text


def test_the_behaviour_page_saves_the_switches(client, db):
    data = {
        "delay_ms": "0",
        "error_rate_500": "0",
        "error_rate_429": "0.5",
        "reject_next_logs": "2",
        "reject_reference": "",
        "timeout_after_store_rate": "0",
        "timeout_after_store_seconds": "30",
        "token_expires_in": "3600",
        "gateway_error_after_store_rate": "0",
        "down": "on",
    }

    response = client.post("/sandbox/comportement/", data)

    assert response.status_code == HTTPStatus.FOUND
    behaviour = Behaviour.load()
    assert (behaviour.down, behaviour.error_rate_429, behaviour.reject_next_logs) == (True, 0.5, 2)


def test_clients_and_webhook_targets_are_managed_on_the_access_page(client, db):
    client.post(
        "/sandbox/acces/",
        {"form": "client", "client-client_id": "portail", "client-client_secret": "abc", "client-label": "Portail"},
    )
    client.post(
        "/sandbox/acces/",
        {"form": "target", "target-url": "http://127.0.0.1:8000/webhooks/intent/x", "target-is_active": "on"},
    )

    page = client.get("/sandbox/acces/").text

    assert ApiClient.objects.get().client_id == "portail"
    assert WebhookTarget.objects.get().is_active
    assert "http://testserver/sandbox/api" in page
