"""Issuing an invoice through the relay to the embedded sandbox over real HTTP:
the order's "facturé" log (invoice date and number as tags, D9) and then the
invoice PDF as a document (D11, when the connection's invoicing settings say
so), in that order on the order's stream."""

from __future__ import annotations

import httpx
import pytest
from django.utils import timezone

from invoices import services
from invoices.models import ConnectionInvoicing
from orders import services as order_services
from orders.states import State
from portal.relay.models import MessageKind, OutboxMessage
from tests import factories
from tests import invoicing_cast as cast
from tests.test_quote_relay import token
from tests.test_relay_sandbox import drain, platform_logs

pytestmark = pytest.mark.usefixtures("database_before_the_live_server")


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def finished_through_the_services(order, technician):
    started = factories.bring_to(order, State.IN_PROGRESS, technician)
    for line in started.lines.all():
        order_services.mark_line(line, actor=technician, done=True)
    order_services.finish_work(started, actor=technician)
    started.refresh_from_db()
    return started


def test_the_facture_log_and_then_the_invoice_pdf_reach_the_platform_in_order(
    platform, sandbox_connection, contract, order, technician, office
):
    cast.make_issuer()
    cast.make_billing(contract)
    ConnectionInvoicing.objects.create(connection=sandbox_connection, share_pdf=True)
    finished = finished_through_the_services(order, technician)
    assert drain()  # what happened before the invoice reached the platform
    invoice = services.issue(services.create_draft([finished], actor=office), actor=office)
    messages = list(OutboxMessage.objects.filter(order=finished).order_by("-sequence")[:2])[::-1]
    assert [m.kind for m in messages] == [MessageKind.INTERVENTION_LOG, MessageKind.DOCUMENT]
    assert messages[0].payload["tags"]["invoice_number"] == invoice.number
    assert set(drain()) == {"delivered"}
    last = platform_logs(platform, finished.reference)[-1]
    assert last["tags"]["invoice_number"] == invoice.number
    assert last["tags"]["invoice_date"] == timezone.localdate().isoformat()
    response = httpx.get(
        f"{platform}/api/documents/v1/documents",
        params={"elementType": "intervention", "elementReference": finished.reference},
        headers={"authorization": f"Bearer {token(platform)}"},
    )
    titles = [document["title"] for document in response.json()["_embedded"]["documents"]]
    assert f"Facture {invoice.number}" in titles


def test_without_the_connection_s_say_so_the_pdf_stays_home(outbox_connection, contract, order, technician, office):
    cast.make_issuer()
    cast.make_billing(contract)
    finished = finished_through_the_services(order, technician)
    invoice = services.issue(services.create_draft([finished], actor=office), actor=office)
    last = OutboxMessage.objects.filter(order=finished).order_by("-sequence").first()
    assert last.kind == MessageKind.INTERVENTION_LOG and last.payload["tags"]["invoice_number"] == invoice.number
    assert not OutboxMessage.objects.filter(order=finished, kind=MessageKind.DOCUMENT).exists()
