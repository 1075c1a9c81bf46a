"""Quotes through the relay to the embedded sandbox over real HTTP: the
quotation log then its PDF, in order; a refused log in the error queue, resent
after correction; the manager's answer coming back (webhook, reconciliation)
and an accepted supplementary quote's lines reaching the order and the
platform. Deliveries run as the workers would (tests/test_relay_sandbox.py)."""

from __future__ import annotations

import io
from http import HTTPStatus

import httpx
import pytest
from django.core.management import call_command

from orders.states import State
from portal.relay import inbound
from portal.relay import services as relay_services
from portal.relay.models import InboundNotification, MessageKind, MessageStatus, NotificationStatus, OutboxMessage
from quotes import drafts, services, tasks
from quotes.models import QuoteState
from tests import factories
from tests.conftest import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET
from tests.test_relay_sandbox import as_the_manager, drain, platform_logs, set_behaviour

pytestmark = pytest.mark.usefixtures("database_before_the_live_server")


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def webhooks(platform, sandbox_connection, live_server) -> None:
    call_command(
        "sandbox_setup",
        f"--client-id={SANDBOX_CLIENT_ID}",
        f"--client-secret={SANDBOX_CLIENT_SECRET}",
        f"--webhook-url={live_server.url}{sandbox_connection.webhook_path}",
        stdout=io.StringIO(),
    )


@pytest.fixture
def quote(contract, asset, service_code, supervisor, price_item):
    quote = services.create_quote(
        contract=contract, actor=supervisor, title="Remplacement du siphon", asset=asset, service_code=service_code
    )
    drafts.add_line(quote, actor=supervisor, price_item=price_item, quantity="2")
    return quote


def platform_documents(platform: str, reference: str) -> list[dict]:
    response = httpx.get(
        f"{platform}/api/documents/v1/documents",
        params={"elementType": "quotation", "elementReference": reference},
        headers={"authorization": f"Bearer {token(platform)}"},
    )
    assert response.status_code == HTTPStatus.OK, response.text
    return response.json()["_embedded"]["documents"]


def token(platform: str) -> str:
    response = httpx.post(
        f"{platform}/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": SANDBOX_CLIENT_ID,
            "client_secret": SANDBOX_CLIENT_SECRET,
        },
    )
    return response.json()["access_token"]


def test_the_quotation_log_and_then_its_pdf_reach_the_platform_in_order(
    platform, sandbox_connection, quote, supervisor
):
    services.send_quote(quote, actor=supervisor)
    assert tasks.render_quote_pdf.run(quote.pk) == "done"
    messages = list(OutboxMessage.objects.order_by("sequence"))
    assert [(m.kind, m.stream) for m in messages] == [
        (MessageKind.QUOTATION_LOG, f"quote:{quote.pk}"),
        (MessageKind.DOCUMENT, f"quote:{quote.pk}"),
    ]
    assert drain() == ["delivered", "delivered"]
    [log] = platform_logs(platform, quote.number)
    assert (log["status"], log["event"]) == ("open", "proposed")
    assert log["tags"]["quote_amount_excl_vat"] == "97.00"
    [document] = platform_documents(platform, quote.number)
    assert document["title"] == f"Devis {quote.number}"


def test_a_refused_quotation_log_waits_in_the_error_queue_and_is_resent_after_correction(
    platform, sandbox_connection, quote, supervisor, contract
):
    set_behaviour(platform, reject_reference=quote.number)
    services.send_quote(quote, actor=supervisor)
    assert drain() == ["rejected"]
    message = OutboxMessage.objects.get(kind=MessageKind.QUOTATION_LOG)
    assert message.status == MessageStatus.REJECTED
    # The office corrects the service code, the platform is fixed, the message is resent.
    corrected = factories.make_service_code(contract, code="PLB-DEVIS", label="Devis plomberie")
    services.correct_references(quote, actor=supervisor, asset=None, service_code=corrected)
    set_behaviour(platform, reject_reference="")
    relay_services.resend_message(message, actor=supervisor)
    assert drain() == ["delivered"]
    [log] = platform_logs(platform, quote.number)
    assert log["raw"]["serviceCode"] == "PLB-DEVIS"


def test_an_accepted_supplementary_quote_adds_its_lines_to_the_order_and_the_platform(
    platform, sandbox_connection, webhooks, client, live_server, order, technician, supervisor, price_item
):
    started = factories.bring_to(order, State.IN_PROGRESS, technician)
    quote = services.create_quote_for_order(started, actor=supervisor)
    drafts.add_line(quote, actor=supervisor, price_item=price_item, quantity="3")
    drafts.update_quote(quote, actor=supervisor, changes={"works_wait": True})
    services.send_quote(quote, actor=supervisor)
    tasks.render_quote_pdf.run(quote.pk)
    started.refresh_from_db()
    assert started.state == State.SUSPENDED
    assert set(drain()) == {"delivered"}
    kinds = [(log["status"], log["event"]) for log in platform_logs(platform, quote.number)]
    assert kinds == [("open", "proposed")]
    order_logs = platform_logs(platform, started.reference)
    assert (order_logs[-1]["status"], order_logs[-1]["event"]) == ("hold", "quote_request")

    response = client.post(
        f"/sandbox/operations/{quote.contract.reference}/{quote.number}/accepter/", headers=as_the_manager(live_server)
    )
    assert response.status_code == HTTPStatus.FOUND
    notification = InboundNotification.objects.get()
    assert inbound.process_notification(notification.pk) == NotificationStatus.PROCESSED
    quote.refresh_from_db()
    assert quote.state == QuoteState.ACCEPTED
    started.refresh_from_db()
    assert started.state == State.IN_PROGRESS
    line_reference = f"{quote.number}-1"
    assert started.lines.get(reference=line_reference).quantity == 3
    assert set(drain()) == {"delivered"}
    last = platform_logs(platform, started.reference)[-1]
    assert last["tags"][f"line_{line_reference}"] == "not_done"


def test_a_refusal_missed_by_the_webhook_is_found_by_the_reconciliation(
    platform, sandbox_connection, client, live_server, quote, supervisor
):
    services.send_quote(quote, actor=supervisor)
    drain()
    response = client.post(
        f"/sandbox/operations/{quote.contract.reference}/{quote.number}/refuser/", headers=as_the_manager(live_server)
    )
    assert response.status_code == HTTPStatus.FOUND
    assert not InboundNotification.objects.exists()  # no webhook target: the notification was lost
    inbound.reconcile(sandbox_connection)
    quote.refresh_from_db()
    assert quote.state == QuoteState.REFUSED


def test_an_answer_as_a_quotation_update_webhook_is_applied(client, outbox_connection, quote, supervisor):
    services.send_quote(quote, actor=supervisor)
    body = [
        {
            "type": "operations:quotation:update",
            "id": "notif-quote-1",
            "event": {
                "type": "operations",
                "body": {
                    "reference": quote.number,
                    "contractReference": quote.contract.reference,
                    "type": "quotation",
                    "status": "denied",
                    "event": "refused",
                },
            },
        }
    ]
    response = client.post(outbox_connection.webhook_path, body, content_type="application/json")
    assert response.status_code < 300
    notification = InboundNotification.objects.get()
    assert inbound.process_notification(notification.pk) == NotificationStatus.PROCESSED
    quote.refresh_from_db()
    assert quote.state == QuoteState.REFUSED


def test_an_answer_about_an_unknown_quote_is_kept_failed_with_its_reason(outbox_connection, contract):
    new, _ = inbound.store_notifications(
        outbox_connection,
        [
            {
                "type": "operations:intervention:update",
                "id": "notif-quote-2",
                "event": {
                    "type": "operations",
                    "body": {
                        "reference": "D2026-9999",
                        "contractReference": contract.reference,
                        "type": "quotation",
                        "status": "closed",
                        "event": "accepted",
                    },
                },
            }
        ],
    )
    assert inbound.process_notification(new[0]) == NotificationStatus.FAILED
    assert "Devis inconnu : D2026-9999" in InboundNotification.objects.get().error


def test_an_answer_goes_to_the_version_the_platform_saw_not_to_a_new_draft(outbox_connection, quote, supervisor):
    services.send_quote(quote, actor=supervisor)
    draft = services.revise_quote(quote, actor=supervisor)
    new, _ = inbound.store_notifications(
        outbox_connection,
        [
            {
                "type": "operations:quotation:update",
                "id": "notif-quote-3",
                "event": {
                    "type": "operations",
                    "body": {
                        "reference": quote.number,
                        "contractReference": quote.contract.reference,
                        "status": "closed",
                        "event": "accepted",
                    },
                },
            }
        ],
    )
    assert inbound.process_notification(new[0]) == NotificationStatus.PROCESSED
    quote.refresh_from_db()
    draft.refresh_from_db()
    assert (quote.state, draft.state) == (QuoteState.ACCEPTED, QuoteState.DRAFT)
