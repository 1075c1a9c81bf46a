"""The quotes' pages: the list with its filters and days left, the editor (htmx
search as you type, lines and live totals), sending, revising, cancelling,
the preview and the PDF; the requests for a quote on the overview and the
order page; what technicians see; outsiders get 404."""

from __future__ import annotations

import html
from datetime import date, datetime, timedelta
from decimal import Decimal
from http import HTTPStatus

import pytest
import time_machine

from orders.states import State
from portal.models import Role
from quotes import decisions, documents, drafts, services
from quotes.models import PartSupplier, Quote, QuoteLine, QuoteState, QuoteTerms
from tests import factories
from tests.conftest import PARIS, make_user

HTMX = {"HTTP_HX_REQUEST": "true"}
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=PARIS)


@pytest.fixture(autouse=True)
def now():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def started(order, technician):
    return factories.bring_to(order, State.IN_PROGRESS, technician)


@pytest.fixture
def quote(started, supervisor, price_item):
    quote = services.create_quote_for_order(started, actor=supervisor)
    drafts.add_line(quote, actor=supervisor, price_item=price_item, quantity="2")
    return quote


@pytest.fixture
def signed_in(client, supervisor):
    client.force_login(supervisor)
    return client


def text(response) -> str:
    return html.unescape(response.content.decode())


def editor(quote) -> str:
    return f"/pilotage/devis/{quote.pk}/"


POSTS = ["objet/", "lignes/", "pieces/", "envoyer/", "reviser/", "annuler/", "pdf/relancer/"]
GETS = ["", "prix/?q=PLB", "apercu/", "pdf/", "pdf/etat/"]


def test_outsiders_get_404_on_every_quote_page(client, quote, technician, other_technician):
    for person in (technician, other_technician, make_user("x", Role.TECHNICIAN)):
        client.force_login(person)
        assert client.get("/pilotage/devis/").status_code == HTTPStatus.NOT_FOUND
        for suffix in GETS:
            assert client.get(editor(quote) + suffix).status_code == HTTPStatus.NOT_FOUND, suffix
        for suffix in POSTS:
            assert client.post(editor(quote) + suffix).status_code == HTTPStatus.NOT_FOUND, suffix
        assert client.post(f"/pilotage/commandes/{quote.order_id}/devis/").status_code == HTTPStatus.NOT_FOUND


def test_a_signed_out_visitor_is_sent_to_the_login_page(client, quote):
    for url in ("/pilotage/devis/", editor(quote)):
        response = client.get(url)
        assert response.status_code == HTTPStatus.FOUND
        assert response.url.startswith("/connexion/")


def test_an_unknown_quote_is_a_404(signed_in):
    assert signed_in.get("/pilotage/devis/999999/").status_code == HTTPStatus.NOT_FOUND


def test_the_list_filters_by_state_client_and_contract_and_shows_the_days_left(signed_in, quote, supervisor, contract):
    services.send_quote(quote, actor=supervisor)
    other = services.create_quote(contract=contract, actor=supervisor, title="Brouillon à part")
    page = text(signed_in.get("/pilotage/devis/"))
    assert quote.number in page and other.number in page
    # Sent on 1 December: 30 days, the last one 31 December.
    assert "30 jours pour répondre" in page
    waiting = text(signed_in.get("/pilotage/devis/?state=waiting"))
    assert quote.number in waiting and other.number not in waiting
    drafts = text(signed_in.get("/pilotage/devis/?state=draft", **HTMX))
    assert other.number in drafts and quote.number not in drafts
    assert "<html" not in drafts
    by_client = text(signed_in.get(f"/pilotage/devis/?client={contract.client_id}&contract={contract.pk}"))
    assert quote.number in by_client


def test_past_the_30_days_the_list_says_the_works_may_go_ahead(client, quote, supervisor):
    services.send_quote(quote, actor=supervisor)
    with time_machine.travel(NOW + timedelta(days=31), tick=False):
        client.force_login(supervisor)
        page = text(client.get("/pilotage/devis/?state=waiting"))
    assert "les travaux peuvent être engagés (CCAG-MI §52)" in page


def test_a_bad_filter_shows_everything_rather_than_failing(signed_in, quote):
    response = signed_in.get("/pilotage/devis/?state=nimportequoi&client=abc")
    assert response.status_code == HTTPStatus.OK


def test_the_supervisor_creates_a_blank_quote(signed_in, contract):
    response = signed_in.post("/pilotage/devis/nouveau/", {"contract": contract.pk, "title": "Réfection cage B"})
    quote = Quote.objects.get()
    assert response.url == editor(quote)
    assert quote.title == "Réfection cage B"
    response = signed_in.post("/pilotage/devis/nouveau/", {"contract": "", "title": ""}, follow=True)
    assert "Choisissez le marché" in text(response)


def test_the_price_search_finds_by_code_prefix_and_by_label(signed_in, quote, contract):
    factories.make_price_item(contract, code="ELE-001", label="Remplacement d'un interrupteur", unit_price=Decimal(30))
    by_code = text(signed_in.get(editor(quote) + "prix/?q=plb", **HTMX))
    assert "<html" not in by_code
    assert "PLB-012" in by_code and "ELE-001" not in by_code
    by_label = text(signed_in.get(editor(quote) + "prix/?q=interrup", **HTMX))
    assert "ELE-001" in by_label and "PLB-012" not in by_label
    nothing = text(signed_in.get(editor(quote) + "prix/?q=zzz", **HTMX))
    assert "Aucun prix du bordereau ne correspond à « zzz »" in nothing


def test_adding_a_line_redraws_the_lines_with_the_totals(signed_in, quote, contract):
    item = factories.make_price_item(
        contract, code="ELE-001", label="Interrupteur", unit_price=Decimal("30.00"), vat_rate=Decimal("20.00")
    )
    response = signed_in.post(editor(quote) + "lignes/", {"price_item": item.pk, "quantity": "3"}, **HTMX)
    page = text(response)
    assert response.status_code == HTTPStatus.OK
    assert 'id="quote-lines"' in page and "<html" not in page
    # 2 × 48,50 (10 %) + 3 × 30,00 (20 %) = 187,00 HT; TVA 9,70 + 18,00 = 27,70; TTC 214,70.
    assert "187,00\u00a0€" in page and "214,70\u00a0€" in page


def test_a_refused_line_says_why_in_french(signed_in, quote):
    page = text(
        signed_in.post(editor(quote) + "lignes/", {"label": "Divers", "quantity": "1", "unit_price": "10"}, **HTMX)
    )
    assert "Justifiez le prix d'une ligne hors bordereau" in page
    page = text(signed_in.post(editor(quote) + "lignes/", {"price_item": "abc", "quantity": "1"}, **HTMX))
    assert "Ligne illisible" in page
    response = signed_in.post(editor(quote) + "lignes/", {"price_item": "999999", "quantity": "1"}, follow=True)
    assert "pas au bordereau" in text(response)


def test_changing_a_line_and_removing_it(signed_in, quote):
    line = quote.lines.get()
    page = text(signed_in.post(editor(quote) + f"lignes/{line.pk}/", {"quantity": "4", "vat_rate": "20.00"}, **HTMX))
    assert "194,00\u00a0€" in page  # 4 × 48,50
    line.refresh_from_db()
    assert line.vat_rate == Decimal("20.00")
    signed_in.post(editor(quote) + f"lignes/{line.pk}/retirer/", **HTMX)
    assert not QuoteLine.objects.filter(quote=quote).exists()


def test_the_parts_lists_on_the_page(signed_in, quote):
    page = text(
        signed_in.post(
            editor(quote) + "pieces/", {"supplied_by": "buyer", "description": "Robinet", "quantity": "1"}, **HTMX
        )
    )
    assert "Fournies par l'acheteur : Robinet" in page
    page = text(signed_in.post(editor(quote) + "pieces/", {"supplied_by": "?", "description": ""}, **HTMX))
    assert "Dites qui fournit la pièce" in page


def test_sending_shows_the_pdf_being_produced_then_links_it(signed_in, quote):
    response = signed_in.post(editor(quote) + "envoyer/", follow=True)
    page = text(response)
    assert "PDF en cours de production" in page
    quote.refresh_from_db()
    assert quote.state == QuoteState.SENT
    assert signed_in.get(editor(quote) + "pdf/etat/").status_code == HTTPStatus.OK
    documents.attach_quote_pdf(quote.pk, content=b"%PDF-1.7 test")
    status = signed_in.get(editor(quote) + "pdf/etat/")
    assert status.status_code == 286  # htmx stops polling
    assert "Télécharger le PDF du devis" in text(status)
    pdf = signed_in.get(editor(quote) + "pdf/")
    assert pdf["Content-Type"] == "application/pdf"
    assert b"".join(pdf.streaming_content) == b"%PDF-1.7 test"


def test_a_sent_quote_is_read_only_and_can_be_revised(signed_in, quote, supervisor):
    services.send_quote(quote, actor=supervisor)
    page = text(signed_in.get(editor(quote)))
    assert "Ajouter une ligne du bordereau" not in page
    page = text(
        signed_in.post(
            editor(quote) + "lignes/", {"price_item": quote.lines.get().price_item_id, "quantity": "1"}, **HTMX
        )
    )
    assert "il ne se modifie plus (créez une nouvelle version)" in page
    response = signed_in.post(editor(quote) + "reviser/")
    revision = Quote.objects.get(number=quote.number, version=2)
    assert response.url == editor(revision)


def test_cancelling_needs_a_reason(signed_in, quote):
    page = text(signed_in.post(editor(quote) + "annuler/", {"reason": ""}, follow=True))
    assert "Donnez le motif de l'annulation" in page
    signed_in.post(editor(quote) + "annuler/", {"reason": "Doublon"})
    quote.refresh_from_db()
    assert quote.state == QuoteState.CANCELLED


def test_the_preview_shows_the_quote_as_the_pdf_will(signed_in, quote):
    drafts.add_part(quote, actor=None, supplied_by=PartSupplier.CONTRACTOR, description="Siphon laiton")
    page = text(signed_in.get(editor(quote) + "apercu/"))
    assert "Devis de travaux complémentaires" in page
    assert "Siphon laiton" in page and "97,00\u00a0€" in page


def test_details_are_saved_and_a_bad_date_refused(signed_in, quote, asset, service_code):
    data = {
        "title": "Nouveau titre",
        "works": "Texte",
        "valid_until": "2027-03-01",
        "asset": asset.pk,
        "service_code": service_code.pk,
        "works_wait": "on",
    }
    signed_in.post(editor(quote) + "objet/", data, **HTMX)
    quote.refresh_from_db()
    assert (quote.title, quote.valid_until, quote.works_wait) == ("Nouveau titre", date(2027, 3, 1), True)
    response = signed_in.post(editor(quote) + "objet/", {**data, "valid_until": "2020-01-01"}, **HTMX)
    assert "La date de validité est passée" in text(response)
    response = signed_in.post(editor(quote) + "objet/", {**data, "valid_until": "pas une date"})
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY


def test_a_report_asking_for_a_quote_shows_on_the_overview_and_the_order_page_with_a_button(
    signed_in, started, technician
):
    report = factories.build_report(
        started, quote_needed=True, quote_description="Remplacer le mitigeur", created_by=technician
    )
    report.save()
    overview = text(signed_in.get("/pilotage/"))
    assert "Demandes de devis des techniciens" in overview and "Remplacer le mitigeur" in overview
    order_page = text(signed_in.get(f"/pilotage/commandes/{started.pk}/"))
    assert f'data-start-quote="{report.pk}"' in order_page
    response = signed_in.post(f"/pilotage/rapports/{report.pk}/devis/")
    quote = Quote.objects.get(report=report)
    assert response.url == editor(quote)
    assert "Remplacer le mitigeur" not in text(signed_in.get("/pilotage/"))
    # Twice: back to the quote already started.
    response = signed_in.post(f"/pilotage/rapports/{report.pk}/devis/")
    assert response.url == editor(quote)


def test_a_refused_quote_shows_on_the_overview(signed_in, quote, supervisor):
    services.send_quote(quote, actor=supervisor)
    decisions.record_decision(quote, accepted=False)
    assert "Devis refusés récemment" in text(signed_in.get("/pilotage/"))


def test_a_supplementary_quote_starts_from_the_order_page(signed_in, started):
    response = signed_in.post(f"/pilotage/commandes/{started.pk}/devis/")
    quote = Quote.objects.get()
    assert (response.url, quote.order) == (editor(quote), started)


def test_technicians_see_that_a_quote_is_pending_but_not_its_prices(client, quote, technician, supervisor):
    services.send_quote(quote, actor=supervisor)
    client.force_login(technician)
    page = text(client.get(f"/commandes/{quote.order_id}/"))
    assert f"Devis {quote.number} en attente de la réponse du gestionnaire" in page
    assert "97,00" not in page


def test_technicians_see_the_prices_when_the_contract_allows_it(client, quote, technician, supervisor, contract):
    QuoteTerms.objects.create(contract=contract, technicians_see_prices=True)
    services.send_quote(quote, actor=supervisor)
    client.force_login(technician)
    assert "97,00" in text(client.get(f"/commandes/{quote.order_id}/"))


def test_a_closed_order_takes_no_supplementary_quote(signed_in, order, supervisor):
    from orders import services as order_services

    order_services.cancel_order(order, actor=supervisor, reason="Doublon")
    response = signed_in.post(f"/pilotage/commandes/{order.pk}/devis/", follow=True)
    assert "ne prend plus de travaux complémentaires" in text(response)
    assert not Quote.objects.exists()


def test_the_list_runs_the_same_number_of_queries_for_few_and_many_quotes(signed_in, contract, supervisor, price_item):
    from django.db import connection as db_connection
    from django.test.utils import CaptureQueriesContext

    def make(count: int) -> None:
        for index in range(count):
            quote = services.create_quote(contract=contract, actor=supervisor, title=f"Devis {index}")
            drafts.add_line(quote, actor=supervisor, price_item=price_item)
            if index % 2:
                services.send_quote(quote, actor=supervisor)

    def queries() -> int:
        with CaptureQueriesContext(db_connection) as captured:
            assert signed_in.get("/pilotage/devis/").status_code == HTTPStatus.OK
        return len(captured)

    make(2)
    few = queries()
    make(20)
    assert queries() == few


def test_without_javascript_the_search_shows_the_whole_editor_with_the_results(signed_in, quote):
    page = text(signed_in.get(editor(quote) + "prix/?q=PLB"))
    assert "<html" in page and "Ajouter une ligne du bordereau" in page
    assert 'data-add="PLB-012"' in page
