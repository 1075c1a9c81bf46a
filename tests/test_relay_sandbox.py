"""The relay against the embedded sandbox over real HTTP (pytest-django's live
server runs the same Django app, sandbox included): the Intent client, the
delivery of every change through faults, the error queue, the inbound
webhook and reconciliation, and the 15-minute watch.

Nothing of ours is mocked. Deliveries are run by `drain()`, which calls
`delivery.deliver` as the task would, round after round, skipping the
backoff waits. Every scenario ends with the platform's own list of received
logs, compared with the order's messages: each change exactly once, in order.
"""

from __future__ import annotations

import html
import io
import random
import re
import threading
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from http import HTTPStatus

import httpx
import pytest
import time_machine
from django.core import mail
from django.core.management import call_command
from django.db import connections as db_connections
from django.db import transaction
from django.utils import timezone

from orders import formatting, planning, receiving, services
from orders import inbound as orders_inbound
from orders.models import Order
from portal.models import Asset, ServiceCode
from portal.relay import catalogue, claims, inbound, intent, tasks, watch
from portal.relay.models import (
    Breach,
    Connection,
    DeliveryAttempt,
    InboundNotification,
    MessageAudit,
    MessageStatus,
    NotificationStatus,
    OutboxMessage,
)
from portal.sandbox import services as sandbox_services
from portal.sandbox.models import AccessToken, Operation, WebhookDelivery
from portal.sandbox.models import Asset as PlatformAsset
from portal.sandbox.models import Contract as PlatformContract
from tests.conftest import SANDBOX_CLIENT_ID as CLIENT_ID
from tests.conftest import SANDBOX_CLIENT_SECRET as CLIENT_SECRET

CONTRACT = "MULTITECH-2024-07"
REFERENCE = "OPH57_241122093015"
JSON_TYPE = "application/json; charset=utf-8"


# --- The platform and the connection to it ----------------------------------------


pytestmark = pytest.mark.usefixtures("database_before_the_live_server")


@pytest.fixture
def connection(sandbox_connection) -> Connection:
    return sandbox_connection


@pytest.fixture
def seeded(platform) -> None:
    """The platform's contract MULTITECH-2024-07 and its assets."""
    call_command("sandbox_seed", stdout=io.StringIO())


@pytest.fixture
def intent_client(connection) -> Iterator[intent.IntentClient]:
    client = intent.IntentClient(connection)
    yield client
    client.close()


def set_behaviour(platform: str, **switches) -> None:
    response = httpx.post(f"{platform}/comportement.json", json=switches)
    assert response.status_code == HTTPStatus.OK, response.text


def platform_logs(platform: str, reference: str) -> list[dict]:
    response = httpx.get(f"{platform}/logs.json", params={"reference": reference})
    assert response.status_code == HTTPStatus.OK
    return response.json()["logs"]


# --- Delivering -------------------------------------------------------------------


def deliver_due() -> list[str]:
    """One round, as the workers would run it now: a task for every message due.
    Returns the outcome of every attempt made, in order (a task goes on with the
    next messages of its order once one is delivered, and sends with its own
    the due messages of other orders that no task is on its way to take:
    tests/test_relay_batches.py)."""
    due = list(claims.due_messages().order_by("pk").values_list("pk", flat=True))
    last = DeliveryAttempt.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    for message_id in due:
        tasks.deliver_message(message_id)
    return [
        str(o) for o in DeliveryAttempt.objects.filter(pk__gt=last).order_by("pk").values_list("outcome", flat=True)
    ]


def drain(*, rounds: int = 200, seconds: float = 30) -> list[str | None]:
    """Deliver until nothing can go, skipping the backoff waits between rounds."""
    outcomes: list[str | None] = []
    deadline = time.monotonic() + seconds
    for _ in range(rounds):
        OutboxMessage.objects.filter(status=MessageStatus.PENDING).update(next_attempt_at=timezone.now())
        round_outcomes = deliver_due()
        if not round_outcomes:
            return outcomes
        outcomes += round_outcomes
        assert time.monotonic() < deadline, f"still delivering after {seconds} s: {outcomes}"
    raise AssertionError(f"still delivering after {rounds} rounds: {outcomes}")


def steps(logs_or_messages: list[dict]) -> list[tuple[str, str, str]]:
    return [(item["status"], item["event"], item["description"]) for item in logs_or_messages]


def assert_on_platform_once_in_order(platform: str, order: Order) -> list[dict]:
    """The platform received each of the order's messages exactly once, in sequence
    order, as sent (the manager's own logs aside). Returns the logs received."""
    messages = order.outbox_messages.order_by("sequence")
    assert not messages.filter(status__in=[MessageStatus.PENDING, MessageStatus.REJECTED]).exists()
    sent = [message.payload for message in messages.filter(status=MessageStatus.DELIVERED)]
    received = [log for log in platform_logs(platform, order.reference) if log["source"] == "api"]
    assert steps(received) == steps(sent)
    assert [log["raw"] for log in received] == sent
    return received


def make_orders(contract, service_code, asset, count: int, *, acknowledged: bool = False) -> list[Order]:
    """Orders typed in; `acknowledged`, each with its first log (before the
    acknowledgement the contractor sends nothing)."""
    orders = [
        receiving.register_order(
            contract=contract,
            reference=f"OPH57_2411220930{number:02d}",
            actor=None,
            asset=asset,
            service_code=service_code,
            description=f"Fuite n° {number}",
        )
        for number in range(count)
    ]
    if acknowledged:
        for order in orders:
            services.acknowledge_order(order, actor=None)
    return orders


# --- 1. The Intent client -----------------------------------------------------------


def test_the_token_is_fetched_once_and_reused_by_every_call_and_every_worker(connection, intent_client, seeded):
    intent_client.get_contract(CONTRACT)
    intent_client.get_asset("LGT-0412")
    list(intent_client.list_operations())
    other_worker = intent.IntentClient(Connection.objects.get(pk=connection.pk))
    try:
        other_worker.get_contract(CONTRACT)
    finally:
        other_worker.close()

    assert AccessToken.objects.count() == 1
    connection.refresh_from_db()
    assert connection.access_token_encrypted
    assert AccessToken.objects.get().token not in connection.access_token_encrypted  # encrypted at rest


def test_the_token_is_renewed_shortly_before_it_expires(connection, intent_client, seeded):
    intent_client.get_contract(CONTRACT)
    first = AccessToken.objects.get()

    with time_machine.travel(timezone.now() + timedelta(minutes=59, seconds=30), tick=True):
        intent_client.get_contract(CONTRACT)
        intent_client.get_contract(CONTRACT)

    assert AccessToken.objects.count() == 2
    renewed = AccessToken.objects.exclude(pk=first.pk).get()
    connection.refresh_from_db()
    assert connection.token_expires_at > first.expires_at
    assert intent_client.token() == renewed.token


def test_a_401_renews_the_token_once_and_the_call_goes_through(connection, intent_client, seeded):
    intent_client.get_contract(CONTRACT)
    AccessToken.objects.all().delete()  # the platform forgot the token the portal still holds

    contract = intent_client.get_contract(CONTRACT)

    assert contract["reference"] == CONTRACT
    assert AccessToken.objects.count() == 1
    assert intent_client.token() == AccessToken.objects.get().token


def test_a_30_second_token_is_fetched_three_times_a_minute_not_for_every_call(
    platform, connection, intent_client, seeded
):
    """Renewed a third of its lifetime before it expires (not a minute before,
    which for a 30 s token meant a new token per call), by whichever worker
    needs it first; the other worker takes it from the connection's row."""
    set_behaviour(platform, token_expires_in=30)
    other_worker = intent.IntentClient(Connection.objects.get(pk=connection.pk))
    start = timezone.now()
    try:
        with time_machine.travel(start, tick=False) as clock:
            for second in range(60):  # a call a second for a minute, by two workers in turn
                (intent_client if second % 2 else other_worker).get_contract(CONTRACT)
                clock.shift(1)
    finally:
        other_worker.close()

    issued = list(AccessToken.objects.filter(issued_at__gte=start).order_by("issued_at"))
    assert [round((token.issued_at - start).total_seconds()) for token in issued] == [0, 20, 40]


@pytest.mark.postgres
def test_workers_needing_a_token_at_once_make_one_token_request(platform, connection, seeded):
    """Threads of one worker (one client) and other workers (their own clients):
    while one fetches the token, the others wait for it rather than fetching theirs."""
    set_behaviour(platform, delay_ms=300)  # the token request is still in flight when the others come
    shared = intent.IntentClient(Connection.objects.get(pk=connection.pk))
    clients = [shared, shared, shared] + [
        intent.IntentClient(Connection.objects.get(pk=connection.pk)) for _ in range(3)
    ]
    barrier = threading.Barrier(len(clients))
    errors: list[BaseException] = []

    def call(client: intent.IntentClient) -> None:
        try:
            barrier.wait()
            client.get_contract(CONTRACT)
        except BaseException as error:  # reported by the test's thread
            errors.append(error)
        finally:
            db_connections.close_all()

    threads = [threading.Thread(target=call, args=(client,)) for client in clients]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        for client in set(clients):
            client.close()

    assert errors == []
    assert AccessToken.objects.count() == 1
    tokens = {client.token() for client in clients}
    assert tokens == {AccessToken.objects.get().token}


def test_a_401_retry_sends_the_same_headers_again(connection):
    """The retry after a renewal keeps the JSON content type of the log."""
    logs = []

    def platform(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/oauth/token"):
            return httpx.Response(HTTPStatus.OK, json={"access_token": f"jeton-{len(logs)}", "expires_in": 3600})
        logs.append(request)
        return httpx.Response(HTTPStatus.UNAUTHORIZED if len(logs) == 1 else HTTPStatus.NO_CONTENT)

    client = intent.IntentClient(connection, http=httpx.Client(transport=httpx.MockTransport(platform)))
    try:
        client.post_log({"reference": REFERENCE})
    finally:
        client.close()

    assert [request.headers.get("content-type") for request in logs] == [JSON_TYPE, JSON_TYPE]
    assert [request.headers["authorization"] for request in logs] == ["Bearer jeton-0", "Bearer jeton-1"]


def test_a_wrong_secret_is_a_rejection_with_a_french_message(connection):
    connection.client_secret = "pas-le-bon"
    connection.save()
    client = intent.IntentClient(connection)

    try:
        with pytest.raises(intent.Rejection) as refused:
            client.get_contract(CONTRACT)
    finally:
        client.close()

    assert refused.value.status_code == HTTPStatus.UNAUTHORIZED
    assert refused.value.message == (
        "Authentification refusée (HTTP 401) : invalid_client. Vérifiez l'identifiant et le secret de la connexion."
    )
    assert not AccessToken.objects.exists()


def test_the_client_reads_operations_contracts_and_assets_and_uploads_documents(intent_client, seeded):
    log = {
        "contractReference": CONTRACT,
        "status": "open",
        "event": "acknowledged",
        "eventDate": "2026-11-22T09:30:00+01:00",
        "logDate": "2026-11-22T09:30:00+01:00",
        "description": "Commande prise en compte",
        "serviceCode": "PLB-FUITE",
        "workType": "corrective",
        "location": {"assetReference": "LGT-0412"},
    }
    references = [f"OPH57_{number}" for number in range(5)]
    for reference in references:
        intent_client.post_log({**log, "reference": reference})

    operation = intent_client.get_operation("OPH57_3", CONTRACT)
    listed = [item["reference"] for item in intent_client.list_operations(status="open", per_page=2)]
    contract = intent_client.get_contract(CONTRACT)
    asset = intent_client.get_asset("LGT-0412")
    uploaded = intent_client.upload_document(
        {
            "title": "Rapport d'intervention",
            "elementType": "intervention",
            "elementReference": "OPH57_3",
            "intent_contractReference": CONTRACT,
            "intent_documentType": "rapport_intervention",
            "intent_documentFamily": "rapports_intervention",
            "intent_creationDate": "2026-11-22T11:05:00+01:00",
        },
        filename="rapport.pdf",
        content=b"%PDF-1.7 rapport",
        mime="application/pdf",
    )
    documents = intent_client.list_documents("intervention", "OPH57_3")

    assert operation["logs"] == [{**log, "reference": "OPH57_3"}]
    assert operation["service"]["sla"]["maxTimeToRecovery"] == {"value": 72, "unit": "hour"}
    assert listed == references
    assert "PLB-FUITE" in [service["code"] for service in contract["serviceCodes"]]
    assert (asset["type"], asset["parentReference"], asset["address"]["city"]) == ("dwelling", "BAT-B", "Metz")
    assert uploaded["size"] == len(b"%PDF-1.7 rapport")
    assert [document["id"] for document in documents["_embedded"]["documents"]] == [uploaded["id"]]


def test_failures_are_classified_for_the_relay(platform, intent_client):
    intent_client.token()
    set_behaviour(platform, error_rate_500=1)
    with pytest.raises(intent.TransientError) as server_error:
        intent_client.get_contract(CONTRACT)
    set_behaviour(platform, error_rate_500=0, error_rate_429=1)
    with pytest.raises(intent.TransientError) as too_many:
        intent_client.get_contract(CONTRACT)
    set_behaviour(platform, error_rate_429=0)
    with pytest.raises(intent.Rejection) as invalid:
        intent_client.post_log({"reference": REFERENCE})
    with pytest.raises(intent.NotFound) as missing:
        intent_client.get_operation("INCONNUE", CONTRACT)
    with pytest.raises(intent.TransientError) as request_timeout:
        intent.classify(httpx.Response(HTTPStatus.REQUEST_TIMEOUT, json={"message": "Délai dépassé"}))

    assert server_error.value.status_code == HTTPStatus.INTERNAL_SERVER_ERROR
    assert not isinstance(server_error.value, intent.AmbiguousError)
    assert too_many.value.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert request_timeout.value.message == "HTTP 408 : Délai dépassé"
    assert invalid.value.status_code == HTTPStatus.BAD_REQUEST
    assert not isinstance(invalid.value, intent.NotFound)
    assert invalid.value.message.startswith("HTTP 400 : Log invalide.")
    assert "contractReference : chaîne non vide obligatoire." in invalid.value.message
    assert missing.value.message == "HTTP 404 : Opération introuvable."


# --- 2. A whole order life ------------------------------------------------------------


def test_a_whole_order_life_reaches_the_platform_once_in_order_with_its_codes_and_labels(
    platform, connection, order, technician, supervisor, office
):
    # One change a second, as people make them: each change is a log of its own
    # (changes within one second are merged, see docs/platform.md).
    moment = timezone.now().replace(microsecond=0)
    at = iter(moment + timedelta(seconds=second) for second in range(20))
    appointment = moment + timedelta(days=1)
    services.acknowledge_order(order, actor=technician, at=next(at))
    planning.plan_order(order, actor=technician, appointment=appointment, at=next(at))
    planning.plan_order(
        order, actor=technician, appointment=appointment + timedelta(days=1), reason="Pièce en commande", at=next(at)
    )
    services.start_work(order, actor=technician, at=next(at))
    services.set_progress(order, actor=technician, progress=40, at=next(at))
    services.mark_line(order.lines.get(reference="L1"), actor=technician, done=True, at=next(at))
    services.suspend_work(
        order, actor=technician, reason="occupant_absent", note="Personne au rendez-vous", at=next(at)
    )
    services.resume_work(order, actor=technician, at=next(at))
    services.mark_line(order.lines.get(reference="L2"), actor=technician, done=True, at=next(at))
    services.finish_work(order, actor=technician, at=next(at))
    services.record_reception(order, actor=supervisor, reception_date=date(2026, 11, 27), at=next(at))
    services.invoice_order(
        order, actor=office, invoice_date=date(2026, 11, 30), invoice_number="F-2026-0042", at=next(at)
    )
    services.close_order(order, actor=supervisor, outcome="done", at=next(at))

    outcomes = drain()

    received = assert_on_platform_once_in_order(platform, order)
    assert set(outcomes) == {"delivered"}
    # Nothing before the acknowledgement: open/requested is the manager's, never the contractor's.
    assert [(log["status"], log["event"]) for log in received] == [
        ("open", "acknowledged"),
        ("open", "planned"),
        ("pending", "replanned"),
        ("pending", "start"),
        ("pending", "start"),  # progress
        ("pending", "start"),  # line L1 done
        ("hold", "occupant_absent"),
        ("pending", "start"),  # resumed
        ("pending", "start"),  # line L2 done
        ("pending", "end"),
        ("pending", "end"),  # reception
        ("pending", "end"),  # invoice
        ("closed", "done"),
    ]
    labels = [log["description"] for log in received]
    assert labels[0:3] == [
        "Commande prise en compte",
        f"Rendez-vous fixé le {formatting.format_datetime(appointment)}",
        f"Rendez-vous reporté au {formatting.format_datetime(appointment + timedelta(days=1))}"
        " (motif : Pièce en commande)",
    ]
    assert labels[3].startswith("Travaux démarrés le ")
    assert labels[4:8] == [
        "Avancement : 40 %",
        "Ligne L1 réalisée : Recherche de fuite",
        "Intervention suspendue : occupant absent (Personne au rendez-vous)",
        "Travaux repris",
    ]
    assert labels[10:] == [
        "Travaux réceptionnés le 27 novembre 2026",
        "Facture F-2026-0042 émise le 30 novembre 2026",
        "Commande clôturée : travaux réalisés",
    ]
    assert datetime.fromisoformat(received[1]["eventDate"]) == appointment  # the appointment, not the change
    assert received[6]["raw"]["technicalReason"] == "Personne au rendez-vous"
    assert received[10]["tags"]["reception_date"] == "2026-11-27"
    assert (received[11]["tags"]["invoice_date"], received[11]["tags"]["invoice_number"]) == (
        "2026-11-30",
        "F-2026-0042",
    )
    assert received[-1]["tags"]["progress_percent"] == "100"
    assert received[-1]["tags"]["lines_done"] == "2/2"
    operation = Operation.objects.get(reference=order.reference)
    assert (operation.status, operation.event) == ("closed", "done")

    page = httpx.get(f"{platform}/operations/{CONTRACT}/{order.reference}/")

    assert page.status_code == HTTPStatus.OK
    assert "Historique (13 logs)" in page.text
    assert re.findall(r"<strong>(\w+) / (\w+)</strong>", page.text) == [
        (log["status"], log["event"]) for log in received
    ]
    positions = [page.text.index(html.escape(label)) for label in labels]
    assert positions == sorted(positions)


# --- 3. Faults ------------------------------------------------------------------------


def test_while_the_platform_is_down_messages_wait_with_backoff_and_nothing_is_lost(
    platform, connection, order, technician
):
    set_behaviour(platform, down=True)
    services.acknowledge_order(order, actor=technician)
    planning.plan_order(order, actor=technician, appointment=timezone.now() + timedelta(days=1))
    first = order.outbox_messages.get(sequence=1)

    assert deliver_due() == ["retry"]
    assert deliver_due() == []  # the backoff holds it back
    for _ in range(3):
        OutboxMessage.objects.filter(pk=first.pk).update(next_attempt_at=timezone.now())
        assert deliver_due() == ["retry"]

    first.refresh_from_db()
    assert (first.status, first.attempts, first.last_status_code) == (MessageStatus.PENDING, 4, 503)
    assert "Service indisponible" in first.last_error
    assert first.next_attempt_at - timezone.now() > timedelta(seconds=7)  # 4th backoff: 8 to 16 s
    assert platform_logs(platform, order.reference) == []
    assert order.outbox_messages.filter(attempts=0).count() == order.outbox_messages.count() - 1

    set_behaviour(platform, down=False)
    outcomes = drain()

    assert outcomes == ["delivered"] * order.outbox_messages.count()
    assert_on_platform_once_in_order(platform, order)


def test_once_the_platform_answers_again_the_messages_waiting_out_their_backoff_go_at_once(
    platform, connection, contract, service_code, asset
):
    set_behaviour(platform, down=True)
    waiting = make_orders(contract, service_code, asset, 3, acknowledged=True)
    heads = [order.outbox_messages.get(sequence=1) for order in waiting]
    # Just recorded, each is tried by the task queued with it.
    assert deliver_due() == ["retry"] * 3
    for _ in range(5):  # five failures more: backoffs of 32 to 64 s
        OutboxMessage.objects.filter(pk__in=[head.pk for head in heads]).update(next_attempt_at=timezone.now())
        # Retried, the three go in one batch: the first failure speaks for the
        # batch, and the two others wait as long without being tried.
        assert deliver_due() == ["retry"]
        assert not claims.due_messages().exists()
    connection.refresh_from_db()
    assert connection.failing_since is not None
    # The platform slows the one it saw down (429): that wait is the platform's to keep.
    set_behaviour(platform, down=False, error_rate_429=1)
    OutboxMessage.objects.filter(pk=heads[0].pk).update(next_attempt_at=timezone.now())
    assert deliver_due() == ["retry"]
    heads[0].refresh_from_db()
    slowed_until = heads[0].next_attempt_at
    assert (heads[0].last_status_code, slowed_until > timezone.now() + timedelta(seconds=20)) == (429, True)
    assert deliver_due() == []  # the others wait out their backoff

    # A new change goes through: the platform is back, and what waited goes now,
    # without waiting out its backoff (no clock moved, no message touched here).
    set_behaviour(platform, error_rate_429=0)
    fresh = receiving.register_order(
        contract=contract, reference="OPH57_NOUVELLE", actor=None, asset=asset, service_code=service_code
    )
    services.acknowledge_order(fresh, actor=None)
    outcomes = []
    for _ in range(5):
        outcomes += deliver_due()
    for order in [fresh, *waiting[1:]]:
        assert_on_platform_once_in_order(platform, order)
    connection.refresh_from_db()
    assert connection.failing_since is None
    heads[0].refresh_from_db()
    assert (heads[0].status, heads[0].next_attempt_at) == (MessageStatus.PENDING, slowed_until)
    assert set(outcomes) == {"delivered"}


def test_with_30_percent_of_answers_500_every_change_arrives_once_and_in_order(
    platform, connection, contract, service_code, asset, technician
):
    orders = make_orders(contract, service_code, asset, 3)
    moment = timezone.now().replace(microsecond=0)
    for order in orders:
        services.acknowledge_order(order, actor=technician, at=moment)
        planning.plan_order(order, actor=technician, appointment=moment + timedelta(days=1), at=moment)
        services.start_work(order, actor=technician, at=moment + timedelta(seconds=1))
        services.set_progress(order, actor=technician, progress=30, at=moment + timedelta(seconds=2))
    assert OutboxMessage.objects.count() == 12
    set_behaviour(platform, error_rate_500=0.3)
    state = random.getstate()
    random.seed(20261122)  # the sandbox draws its failures from this process's generator
    try:
        outcomes = drain()
    finally:
        random.setstate(state)
        set_behaviour(platform, error_rate_500=0)

    assert outcomes.count("delivered") == 12
    assert outcomes.count("retry") >= 1
    assert set(DeliveryAttempt.objects.filter(outcome="retry").values_list("status_code", flat=True)) == {500}
    for order in orders:
        assert_on_platform_once_in_order(platform, order)


def test_a_timeout_after_the_platform_stored_the_log_is_read_back_not_sent_twice(
    platform, connection, order, technician
):
    drain()
    Connection.objects.filter(pk=connection.pk).update(timeout_seconds=1)
    set_behaviour(platform, timeout_after_store_rate=1, timeout_after_store_seconds=3)
    services.acknowledge_order(order, actor=technician)
    message = order.outbox_messages.get(payload__event="acknowledged")

    assert tasks.deliver_message(message.pk) == "ambiguous"

    message.refresh_from_db()
    assert (message.status, message.ambiguous) == (MessageStatus.PENDING, True)
    assert "Pas de réponse de la plateforme" in message.last_error
    assert [log["event"] for log in platform_logs(platform, order.reference)][-1] == "acknowledged"

    set_behaviour(platform, timeout_after_store_rate=0)
    assert drain() == ["already_there"]

    message.refresh_from_db()
    assert (message.status, message.ambiguous) == (MessageStatus.DELIVERED, False)
    assert list(message.attempts_log.values_list("outcome", flat=True)) == ["ambiguous", "already_there"]
    assert_on_platform_once_in_order(platform, order)


def test_a_read_back_that_fails_keeps_the_message_uncertain_so_it_is_never_posted_twice(
    platform, connection, order, technician
):
    drain()
    Connection.objects.filter(pk=connection.pk).update(timeout_seconds=1)
    set_behaviour(platform, timeout_after_store_rate=1, timeout_after_store_seconds=3)
    services.acknowledge_order(order, actor=technician)
    message = order.outbox_messages.get(payload__event="acknowledged")
    assert tasks.deliver_message(message.pk) == "ambiguous"

    set_behaviour(platform, timeout_after_store_rate=0, error_rate_500=1)
    OutboxMessage.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())

    assert tasks.deliver_message(message.pk) == "ambiguous"  # the read-back got a 500: still uncertain

    message.refresh_from_db()
    assert (message.ambiguous, message.last_status_code) == (True, 500)
    set_behaviour(platform, error_rate_500=0)
    assert drain() == ["already_there"]
    assert_on_platform_once_in_order(platform, order)


def test_a_429_is_transient_and_retried_no_sooner_than_a_second_later(platform, connection, order):
    services.acknowledge_order(order, actor=None)
    set_behaviour(platform, error_rate_429=1)
    first = order.outbox_messages.get(sequence=1)
    before = timezone.now()

    assert deliver_due() == ["retry"]

    first.refresh_from_db()
    assert (first.status, first.last_status_code) == (MessageStatus.PENDING, 429)
    assert first.next_attempt_at >= before + timedelta(seconds=1)  # Retry-After: 1
    set_behaviour(platform, error_rate_429=0)
    assert set(drain()) == {"delivered"}
    assert_on_platform_once_in_order(platform, order)


def reject_the_acknowledgement(platform: str, order: Order, technician) -> OutboxMessage:
    """What the order sent before is delivered (nothing: the contractor sends no log
    before the acknowledgement), then the platform refuses its acknowledgement."""
    drain()
    set_behaviour(platform, reject_next_logs=1)
    services.acknowledge_order(order, actor=technician)
    assert drain() == ["rejected"]
    return order.outbox_messages.get(payload__event="acknowledged")


def test_a_rejected_message_waits_in_the_error_queue_and_goes_once_corrected_and_resent(
    platform, connection, order, contract, technician, supervisor, office, client
):
    rejected = reject_the_acknowledgement(platform, order, technician)

    assert (rejected.status, rejected.last_status_code) == (MessageStatus.REJECTED, 400)
    assert "Code prestation inconnu" in rejected.last_error
    # One email per person: colleagues do not see each other's addresses.
    assert sorted(email.to for email in mail.outbox) == sorted([[supervisor.email], [office.email]])
    email = mail.outbox[0]
    assert email.subject == f"Refus de la plateforme : commande {order.reference}"
    assert "Code prestation inconnu" in email.body

    planning.plan_order(order, actor=technician, appointment=timezone.now() + timedelta(days=1))
    services.start_work(order, actor=technician, at=timezone.now() - timedelta(minutes=1))
    assert drain() == []  # the later messages wait behind the rejected one
    assert platform_logs(platform, order.reference) == []

    client.force_login(office)
    queue = client.get("/admin/relay/outboxmessage/?status__exact=rejected")
    assert queue.status_code == HTTPStatus.OK
    assert order.reference in queue.text
    assert "Code prestation inconnu" in queue.text

    unblocked = ServiceCode.objects.create(contract=contract, code="PLB-DEBOUCH", label="Débouchage de canalisation")
    receiving.update_order_details(order, actor=office, changes={"service_code": unblocked})
    response = client.post(
        f"/admin/relay/outboxmessage/{rejected.pk}/renvoyer/", {"note": "Code prestation corrigé : PLB-DEBOUCH"}
    )

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == f"/admin/relay/outboxmessage/{rejected.pk}/change/"
    rejected.refresh_from_db()
    assert (rejected.status, rejected.payload["serviceCode"]) == (MessageStatus.PENDING, "PLB-DEBOUCH")
    audit = MessageAudit.objects.get(message=rejected)
    assert (audit.actor, audit.action, audit.note) == (office, "resend", "Code prestation corrigé : PLB-DEBOUCH")
    assert audit.payload_before["serviceCode"] == "PLB-FUITE"

    assert drain() == ["delivered"] * 4  # acknowledged, planned, started, edited
    received = assert_on_platform_once_in_order(platform, order)
    assert [log["event"] for log in received] == ["acknowledged", "planned", "start", "start"]


def test_giving_up_a_rejected_message_needs_a_reason_and_lets_the_next_ones_go(
    platform, connection, order, technician, office, client
):
    rejected = reject_the_acknowledgement(platform, order, technician)
    planning.plan_order(order, actor=technician, appointment=timezone.now() + timedelta(days=1))
    assert drain() == []
    client.force_login(office)

    without_reason = client.post(f"/admin/relay/outboxmessage/{rejected.pk}/abandonner/", {"note": "  "})

    assert without_reason.status_code == HTTPStatus.OK
    assert "Indiquez pourquoi ce message ne sera pas transmis." in without_reason.text
    rejected.refresh_from_db()
    assert rejected.status == MessageStatus.REJECTED

    response = client.post(
        f"/admin/relay/outboxmessage/{rejected.pk}/abandonner/", {"note": "Saisi à la main sur la plateforme"}
    )

    assert response.status_code == HTTPStatus.FOUND
    rejected.refresh_from_db()
    assert (rejected.status, rejected.resolved_by, rejected.resolution_note) == (
        MessageStatus.CANCELLED,
        office,
        "Saisi à la main sur la plateforme",
    )
    assert MessageAudit.objects.get(message=rejected).action == "cancel"
    assert drain() == ["delivered"]
    received = assert_on_platform_once_in_order(platform, order)
    assert [log["event"] for log in received] == ["planned"]


# --- 4. Inbound -----------------------------------------------------------------------


@pytest.fixture
def webhooks(platform, connection, live_server, seeded) -> None:
    """The platform sends its webhooks to our connection."""
    call_command(
        "sandbox_setup",
        f"--client-id={CLIENT_ID}",
        f"--client-secret={CLIENT_SECRET}",
        f"--webhook-url={live_server.url}{connection.webhook_path}",
        stdout=io.StringIO(),
    )


def request_form(**extra) -> dict:
    return {
        "contract": PlatformContract.objects.get(reference=CONTRACT).pk,
        "service_code": "PLB-FUITE",
        "description": "Fuite sous l'évier de la cuisine, dégât des eaux chez le voisin du dessous",
        "work_type": "corrective",
        "critical_level": "3",
        "asset": PlatformAsset.objects.get(code="LGT-0415").pk,
        "occupant_title": "Mme",
        "occupant_first_name": "Claire",
        "occupant_last_name": "Martin",
        "occupant_home_phone": "03 87 00 00 00",
        "occupant_mobile_phone": "06 12 34 56 78",
        "occupant_email": "claire.martin@example.fr",
        "requester_name": "Sophie Bernard",
        **extra,
    }


def as_the_manager(live_server) -> dict:
    """The manager's browser on the platform's host, so that the links it gives
    (the webhook's operation_url) point at the API the connection uses."""
    return {"host": live_server.url.removeprefix("http://")}


def the_manager_requests(client, live_server) -> Operation:
    response = client.post("/sandbox/nouvelle-demande/", request_form(), headers=as_the_manager(live_server))
    assert response.status_code == HTTPStatus.FOUND
    return Operation.objects.get()


def test_a_request_created_on_the_platform_becomes_one_order_with_its_details(
    platform, connection, contract, webhooks, client, technician, live_server
):
    operation = the_manager_requests(client, live_server)

    notification = InboundNotification.objects.get()
    assert (notification.type, notification.status) == ("operations:intervention:share", NotificationStatus.RECEIVED)
    assert WebhookDelivery.objects.get().status_code == HTTPStatus.OK

    assert inbound.process_notification(notification.pk) == NotificationStatus.PROCESSED

    order = Order.objects.get()
    assert (order.contract, order.reference, order.origin, order.state) == (
        contract,
        operation.reference,
        "platform",
        "to_acknowledge",
    )
    assert (order.asset.reference, order.asset.postcode, order.asset.city) == ("LGT-0415", "57000", "Metz")
    assert order.access_notes == "Bâtiment B, 4e étage, porte 15"
    assert (order.service_code.code, order.service_code.completion_delay_hours) == ("PLB-FUITE", 72)
    # 72 hours from the hour after the notification (CCAG-MI §3.2.1; issue 11: they ran from its minute).
    assert order.due_at.minute == 0 and timedelta(hours=72) < order.due_at - order.notified_at <= timedelta(hours=73)
    assert (order.occupant_name, order.occupant_phone, order.occupant_mobile, order.occupant_email) == (
        "Mme Claire Martin",
        "0387000000",
        "0612345678",
        "claire.martin@example.fr",
    )
    assert order.description == "Fuite sous l'évier de la cuisine, dégât des eaux chez le voisin du dessous"
    assert order.critical_level == 3
    assert order.events.get().label.startswith("Commande reçue, échéance le ")
    assert not OutboxMessage.objects.exists()  # nothing echoed back to the platform
    notification.refresh_from_db()
    assert notification.order == order

    resent = client.post(
        f"/sandbox/webhooks/{WebhookDelivery.objects.get().pk}/renvoyer/", headers=as_the_manager(live_server)
    )

    assert resent.status_code == HTTPStatus.FOUND
    assert WebhookDelivery.objects.latest("pk").status_code == HTTPStatus.OK
    assert InboundNotification.objects.count() == 1
    assert Order.objects.count() == 1

    services.acknowledge_order(order, actor=technician)

    assert drain() == ["delivered"]
    assert steps(platform_logs(platform, order.reference)) == [
        ("open", "requested", "Demande créée"),  # the manager's
        ("open", "acknowledged", "Commande prise en compte"),
    ]
    assert_on_platform_once_in_order(platform, order)


def the_manager_cancels(operation: Operation, reason: str, platform: str) -> None:
    """The manager cancels on the platform: a denied/canceled log, then the update webhook."""
    operation_url = f"{platform}/api/operations/v2/operations/{operation.reference}?contractReference={CONTRACT}"
    with transaction.atomic():
        sequence = sandbox_services._next_sequence()
        sandbox_services._append_manager_log(
            operation, sequence=sequence, status="denied", event="canceled", description=reason, at=timezone.now()
        )
        sandbox_services.queue_webhook(operation, sandbox_services.UPDATE, operation_url)


def test_a_cancellation_on_the_platform_cancels_the_order_without_echo(
    platform, connection, contract, webhooks, client, technician, live_server
):
    operation = the_manager_requests(client, live_server)
    inbound.process_notification(InboundNotification.objects.get().pk)
    order = Order.objects.get()
    services.acknowledge_order(order, actor=technician)
    drain()

    the_manager_cancels(operation, "Doublon de la demande OPH57_241120", platform)
    update = InboundNotification.objects.get(type="operations:intervention:update")

    assert inbound.process_notification(update.pk) == NotificationStatus.PROCESSED
    order.refresh_from_db()
    assert (order.state, order.cancel_reason) == ("cancelled", "Doublon de la demande OPH57_241120")
    assert order.outbox_messages.count() == 1  # the acknowledgement only: the cancellation is not echoed
    assert drain() == []
    assert_on_platform_once_in_order(platform, order)


def test_a_cancellation_the_order_can_no_longer_take_is_kept_failed_with_the_reason(
    platform, connection, contract, webhooks, client, technician, live_server
):
    operation = the_manager_requests(client, live_server)
    inbound.process_notification(InboundNotification.objects.get().pk)
    order = Order.objects.get()
    services.acknowledge_order(order, actor=technician)
    services.start_work(order, actor=technician)
    services.finish_work(order, actor=technician)

    the_manager_cancels(operation, "Annulée par erreur", platform)
    update = InboundNotification.objects.get(type="operations:intervention:update")

    assert inbound.process_notification(update.pk) == NotificationStatus.FAILED
    update.refresh_from_db()
    assert "Annuler" in update.error
    assert "Terminé" in update.error
    order.refresh_from_db()
    assert order.state == "finished"


def test_reconciliation_creates_the_order_whose_webhook_never_came_once(
    platform, connection, contract, seeded, client, live_server
):
    the_manager_requests(client, live_server)
    assert "Aucune cible de webhook active" in WebhookDelivery.objects.get().error
    assert not InboundNotification.objects.exists()

    assert orders_inbound.reconcile(connection) == 1
    assert orders_inbound.reconcile(connection) == 0

    order = Order.objects.get()
    assert (order.origin, order.state, order.occupant_name) == ("platform", "to_acknowledge", "Mme Claire Martin")
    assert InboundNotification.objects.get().status == NotificationStatus.PROCESSED
    assert not OutboxMessage.objects.exists()


def test_the_contracts_service_codes_and_an_asset_are_brought_from_the_platform(
    connection, contract, service_code, seeded
):
    ServiceCode.objects.filter(pk=service_code.pk).update(label="Ancien libellé", completion_delay_hours=1)

    assert catalogue.sync_contract(connection, contract) == 6

    codes = {code.code: code for code in contract.service_codes.all()}
    assert set(codes) == {"PLB-FUITE", "PLB-DEBOUCH", "ELE-PANNE", "CHF-PANNE", "SER-PORTE", "VMC-ENT"}
    assert (codes["PLB-FUITE"].pk, codes["PLB-FUITE"].label) == (service_code.pk, "Recherche et réparation de fuite")
    assert (codes["PLB-FUITE"].intervention_delay_hours, codes["PLB-FUITE"].completion_delay_hours) == (24, 72)
    assert codes["VMC-ENT"].completion_delay_hours == 30 * 24

    building = catalogue.sync_asset(connection, contract, "BAT-B")
    dwelling = catalogue.sync_asset(connection, contract, "LGT-0412")

    assert (building.kind, building.label) == ("building", "Résidence Les Tilleuls – bâtiment B")
    assert (dwelling.kind, dwelling.parent, dwelling.client) == ("dwelling", building, contract.client)
    assert (dwelling.address, dwelling.postcode, dwelling.address_complement) == (
        "14 rue des Tilleuls",
        "57000",
        "Bâtiment B, 3e étage, porte 12",
    )
    assert Asset.objects.count() == 2


# --- 5. The 15-minute watch -------------------------------------------------------------


def test_changes_delivered_more_than_fifteen_minutes_late_are_breaches_with_their_delay(
    platform, connection, order, technician, supervisor
):
    services.acknowledge_order(order, actor=technician)
    planning.plan_order(order, actor=technician, appointment=timezone.now() + timedelta(days=1))
    late = list(order.outbox_messages.order_by("sequence")[:2])
    OutboxMessage.objects.filter(pk__in=[message.pk for message in late]).update(
        created_at=timezone.now() - timedelta(minutes=20)
    )
    services.start_work(order, actor=technician)

    watch.check_service_level()

    assert set(Breach.objects.values_list("message", "delivered_at")) == {(message.pk, None) for message in late}
    assert len(mail.outbox) == 1  # the 5-minute warning, once

    assert set(drain()) == {"delivered"}

    breaches = Breach.objects.order_by("message__sequence")
    assert [breach.message_id for breach in breaches] == [message.pk for message in late]
    for breach in breaches:
        assert breach.delivered_at == breach.message.delivered_at
        assert 20 * 60 <= breach.delay_seconds < 21 * 60
        assert breach.changed_at == breach.message.created_at
    assert not Breach.objects.filter(message__payload__event="start").exists()
    assert_on_platform_once_in_order(platform, order)
