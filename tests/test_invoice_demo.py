"""The demo's invoicing (`seed_demo_invoices` after `seed_demo` and the sandbox's
connection): invoices issued on the client that is not connected, finished
orders of the connected one left to invoice, made once."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from invoices import services
from invoices.models import Invoice, Payment
from portal.relay import outbox


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def test_the_demo_has_issued_invoices_and_orders_left_to_invoice_on_the_connected_client(db):
    call_command("seed_demo", stdout=io.StringIO())
    call_command("sandbox_connect_demo", stdout=io.StringIO())
    out = io.StringIO()
    call_command("seed_demo_invoices", stdout=out)
    assert "Facturation de démonstration" in out.getvalue(), out.getvalue()
    assert Invoice.objects.filter(state="issued").count() == 2, out.getvalue()
    assert Payment.objects.count() == 1
    ready = [o for o in services.to_invoice() if outbox.connection_for_client(o.contract.client_id) is not None]
    assert ready and any(o.lines.filter(done=True).exists() for o in ready)
    for order in ready:
        assert services.check(services.create_draft([order], actor=None)) == [], order.reference
        break
    again = io.StringIO()
    call_command("seed_demo_invoices", stdout=again)
    assert "rien à créer" in again.getvalue()
