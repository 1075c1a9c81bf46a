"""Office staff and quotes: the admin (a draft's description corrected through
the services, read-only once sent), the contracts' quote terms, and a refused
quotation log in the relay's error queue."""

from __future__ import annotations

from http import HTTPStatus

import pytest

from orders.states import State
from portal.relay.models import MessageKind, MessageStatus, OutboxMessage
from quotes import drafts, services
from quotes.models import QuoteEvent
from tests import factories


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def quote(order, technician, supervisor, price_item):
    started = factories.bring_to(order, State.IN_PROGRESS, technician)
    quote = services.create_quote_for_order(started, actor=supervisor)
    drafts.add_line(quote, actor=supervisor, price_item=price_item)
    return quote


def test_office_staff_correct_a_draft_in_the_admin_through_the_services(client, office, quote):
    client.force_login(office)
    url = f"/admin/quotes/quote/{quote.pk}/change/"
    page = client.get(url)
    assert page.status_code == HTTPStatus.OK
    assert 'name="title"' in page.content.decode()
    data = {
        "title": "Objet corrigé",
        "works": "Travaux",
        "valid_until": quote.valid_until.isoformat(),
        "asset": quote.asset_id,
        "service_code": quote.service_code_id,
        "works_wait": "",
        **{
            f"{prefix}-{key}": value
            for prefix in ("lines", "parts", "events")
            for key, value in (
                ("TOTAL_FORMS", "0"),
                ("INITIAL_FORMS", "0"),
                ("MIN_NUM_FORMS", "0"),
                ("MAX_NUM_FORMS", "1000"),
            )
        },
    }
    response = client.post(url, data)
    assert response.status_code == HTTPStatus.FOUND, response.content.decode()[:2000]
    quote.refresh_from_db()
    assert quote.title == "Objet corrigé"
    assert QuoteEvent.objects.filter(quote=quote, kind="edited", actor=office).exists()


def test_a_sent_quote_is_read_only_in_the_admin(client, office, quote, supervisor):
    services.send_quote(quote, actor=supervisor)
    client.force_login(office)
    page = client.get(f"/admin/quotes/quote/{quote.pk}/change/").content.decode()
    assert 'name="title"' not in page
    assert client.get("/admin/quotes/quote/add/").status_code == HTTPStatus.FORBIDDEN
    assert client.get("/admin/quotes/quote/").status_code == HTTPStatus.OK


def test_office_staff_set_a_contracts_quote_terms(client, office, contract):
    client.force_login(office)
    response = client.post(
        "/admin/quotes/quoteterms/add/",
        {"contract": contract.pk, "validity_days": "60", "technicians_see_prices": "on"},
    )
    assert response.status_code == HTTPStatus.FOUND
    assert contract.quote_terms.validity_days == 60


def test_outsiders_get_nothing_of_the_quotes_admin(client, technician, quote):
    client.force_login(technician)
    response = client.get(f"/admin/quotes/quote/{quote.pk}/change/")
    assert response.status_code == HTTPStatus.FOUND  # to the admin's login: not staff


def test_a_refused_quotation_log_shows_in_the_error_queue(
    client, office, contract, asset, service_code, supervisor, price_item, outbox_connection
):
    draft = services.create_quote(
        contract=contract, actor=supervisor, title="Sans commande", asset=asset, service_code=service_code
    )
    drafts.add_line(draft, actor=supervisor, price_item=price_item)
    services.send_quote(draft, actor=supervisor)
    OutboxMessage.objects.filter(kind=MessageKind.QUOTATION_LOG).update(status=MessageStatus.REJECTED)
    client.force_login(office)
    page = client.get("/relais/erreurs/")
    assert page.status_code == HTTPStatus.OK
    assert draft.number in page.content.decode()
