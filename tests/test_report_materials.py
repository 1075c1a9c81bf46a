"""The supplies of a report, picked from the contract's price schedule (issue
16, item 7): a code and a quantity per row in the technician's report; on the
supervisor's order page, with their prices; added to the order's lines, done,
which the invoice bills; or put in a supplementary-works quote. Each one way."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from decimal import Decimal
from http import HTTPStatus

import pytest
import time_machine
from pypdf import PdfReader

from invoices import services as invoicing
from orders import materials, receiving, reports, tasks
from orders.models import InterventionReport, MaterialDestination, ReportMaterial
from orders.states import State
from quotes.models import Quote, QuoteState
from tests import factories, invoicing_cast
from tests.conftest import PARIS

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=PARIS)


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def now():
    with time_machine.travel(NOW, tick=False):
        yield NOW


@pytest.fixture
def schedule(contract, price_item):
    """The contract's price schedule: a siphon (PLB-012, 48.50 €) and joints (PLB-020, 3.20 € each)."""
    joints = factories.make_price_item(
        contract,
        code="PLB-020",
        label="Joint fibre 15x21",
        unit="u",
        unit_price=Decimal("3.20"),
        vat_rate=Decimal("20.00"),
    )
    return {"siphon": price_item, "joints": joints}


@pytest.fixture
def started(order, technician):
    factories.bring_to(order, State.IN_PROGRESS, technician, at=NOW - timedelta(hours=1))
    return order


def rows(*entries: tuple[str, str]) -> dict[str, str]:
    data = {
        "fournitures-TOTAL_FORMS": str(max(len(entries), 3)),
        "fournitures-INITIAL_FORMS": "0",
        "fournitures-MIN_NUM_FORMS": "0",
        "fournitures-MAX_NUM_FORMS": "30",
    }
    for index, (code, quantity) in enumerate(entries):
        data[f"fournitures-{index}-code"] = code
        data[f"fournitures-{index}-quantity"] = quantity
    return data


def post_report(client, order, *entries: tuple[str, str], **fields):
    data = {"works_done": "Siphon remplacé", "signature_status": "absent", "time_on_site_minutes": "45", **fields}
    return client.post(f"/commandes/{order.pk}/rapport/", {**data, **rows(*entries)})


# --- The technician's report -----------------------------------------------------


def test_the_form_offers_the_contract_s_price_schedule(client, started, technician, schedule):
    client.force_login(technician)
    html = client.get(f"/commandes/{started.pk}/rapport/").content.decode()
    assert '<datalist id="bordereau">' in html
    assert '<option value="PLB-020">Joint fibre 15x21 (u)</option>' in html
    assert 'name="fournitures-0-code"' in html and 'list="bordereau"' in html
    assert 'name="fournitures-TOTAL_FORMS" value="3"' in html
    assert "48,50" not in html and "48.50" not in html  # no prices for the technician


def test_the_supplies_are_kept_with_the_report_one_per_code(client, started, technician, schedule):
    client.force_login(technician)
    response = post_report(client, started, ("plb-012", "1"), ("PLB-020", "2"), ("PLB-020", "1.5"))
    assert response.status_code == HTTPStatus.FOUND
    report = InterventionReport.objects.get()
    saved = [(m.code, m.label, m.quantity, m.unit, m.destination) for m in report.materials.all()]
    assert saved == [
        ("PLB-012", "Remplacement de siphon d'évier", Decimal("1.00"), "u", MaterialDestination.PENDING),
        ("PLB-020", "Joint fibre 15x21", Decimal("3.50"), "u", MaterialDestination.PENDING),
    ]
    assert started.events.get(kind="report_submitted").data["materials"] == 2


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (("PLB-999", "1"), "« PLB-999 » n&#x27;est pas au bordereau du marché MULTITECH-2024-07"),
        (("PLB-012", ""), "Indiquez la quantité posée."),
        (("", "2"), "Indiquez le code du bordereau de cette fourniture."),
        (("PLB-012", "0"), "La quantité doit être positive."),
        (("PLB-012", "1.234"), "Deux décimales au plus."),
    ],
)
def test_a_supply_that_cannot_be_read_is_said_and_nothing_saved(client, started, technician, schedule, entry, message):
    client.force_login(technician)
    response = post_report(client, started, entry)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert message in response.content.decode()
    assert not InterventionReport.objects.exists()


def test_a_report_sent_without_the_rows_has_no_supplies(client, started, technician, schedule):
    """A page kept from before, or the offline queue's copy of one."""
    client.force_login(technician)
    data = {"works_done": "Fait", "signature_status": "absent", "time_on_site_minutes": "30"}
    assert client.post(f"/commandes/{started.pk}/rapport/", data).status_code == HTTPStatus.FOUND
    assert not ReportMaterial.objects.exists()


def test_the_report_and_its_pdf_list_the_supplies(client, started, technician, schedule):
    client.force_login(technician)
    post_report(client, started, ("PLB-020", "2"), materials_used="Ruban PTFE")
    report = InterventionReport.objects.get()
    html = client.get(f"/commandes/{started.pk}/rapports/{report.pk}/").content.decode()
    assert "PLB-020 – Joint fibre 15x21 × 2 u" in html and "Ruban PTFE" in html
    tasks.render_report_pdf(report.pk)
    report.refresh_from_db()
    with report.document.file.open("rb") as stream:
        words = " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(stream.read())).pages).split())
    assert "Code Désignation (bordereau de prix) Quantité PLB-020 Joint fibre 15x21 2 u" in words
    assert "Ruban PTFE" in words


# --- What the supervisor does with them -------------------------------------------


@pytest.fixture
def reported(client, started, technician, schedule):
    client.force_login(technician)
    post_report(client, started, ("PLB-012", "1"), ("PLB-020", "4"))
    client.logout()
    return InterventionReport.objects.get()


def test_the_supervisor_sees_the_supplies_with_the_schedule_s_prices(client, started, supervisor, reported):
    client.force_login(supervisor)
    html = client.get(f"/pilotage/commandes/{started.pk}/").content.decode()
    section = html[html.index('id="fournitures"') :]
    assert "2 à reprendre" in section
    assert "PLB-020" in section and "12,80&nbsp;€" in section  # 4 × 3.20
    assert "61,30&nbsp;€&nbsp;HT" in section  # 48.50 + 12.80
    assert "Ajouter aux lignes de la commande (2)" in section
    assert "Devis avec les fournitures des rapports (2)" in html


def test_added_to_the_order_s_lines_they_are_done_and_invoiced(
    client, started, technician, supervisor, office, reported, schedule
):
    # The order already has a PLB-012 line: the supply's line takes another reference.
    receiving.add_line(started, actor=supervisor, price_item=schedule["siphon"], quantity=Decimal(1))
    client.force_login(supervisor)
    response = client.post(f"/pilotage/commandes/{started.pk}/fournitures/")
    assert response.status_code == HTTPStatus.FOUND
    lines = {line.reference: line for line in started.lines.all()}
    assert set(lines) == {"L1", "L2", "PLB-012", "PLB-012-2", "PLB-020"}
    added = lines["PLB-020"]
    assert (added.quantity, added.unit_price, added.vat_rate, added.done) == (
        Decimal("4.00"),
        Decimal("3.20"),
        Decimal("20.00"),
        True,
    )
    assert {m.destination for m in reported.materials.all()} == {MaterialDestination.ORDER}
    assert reported.materials.get(code="PLB-020").order_line == added
    assert started.events.filter(kind="line_added", label__startswith="Fournitures des rapports ajoutées").exists()
    html = client.get(f"/pilotage/commandes/{started.pk}/").content.decode()
    assert "Ligne PLB-012-2 de la commande" in html and "Devis avec les fournitures" not in html
    # Done again: nothing left to take up, and no quote either.
    with pytest.raises(materials.ServiceError, match="Aucune fourniture"):
        materials.add_to_order(started, actor=supervisor)
    # The invoice bills them with the order's done lines.
    started.lines.filter(reference__in=["L1", "L2"]).update(done=True)
    reports.finish_work(started, actor=technician)
    invoicing_cast.make_billing(started.contract)
    invoice = invoicing.create_draft([started], actor=office)
    billed = {(line.reference, line.quantity, line.unit_price) for line in invoice.lines.all()}
    assert ("PLB-020", Decimal("4.00"), Decimal("3.20")) in billed
    assert ("PLB-012-2", Decimal("1.00"), Decimal("48.50")) in billed


def test_put_in_a_quote_they_are_its_lines_at_the_schedule_s_prices(client, started, supervisor, reported):
    client.force_login(supervisor)
    response = client.post(f"/pilotage/commandes/{started.pk}/devis/fournitures/")
    quote = Quote.objects.get()
    assert response.status_code == HTTPStatus.FOUND and response.url == f"/pilotage/devis/{quote.pk}/"
    assert (quote.order, quote.state) == (started, QuoteState.DRAFT)
    assert quote.title == f"Fournitures posées – commande {started.reference}"
    assert [(line.code, line.quantity, line.unit_price) for line in quote.lines.order_by("position")] == [
        ("PLB-012", Decimal("1.00"), Decimal("48.50")),
        ("PLB-020", Decimal("4.00"), Decimal("3.20")),
    ]
    assert quote.total_excl_vat == Decimal("61.30")
    assert {m.destination for m in reported.materials.all()} == {MaterialDestination.QUOTE}
    # One way only: nothing left for the order's lines, nor for a second quote.
    response = client.post(f"/pilotage/commandes/{started.pk}/fournitures/", follow=True)
    assert "Aucune fourniture des rapports n&#x27;est à reprendre." in response.content.decode()
    response = client.post(f"/pilotage/commandes/{started.pk}/devis/fournitures/", follow=True)
    assert "Aucune fourniture des rapports n&#x27;est à reprendre." in response.content.decode()
    assert Quote.objects.count() == 1


def test_technicians_and_strangers_cannot_take_up_the_supplies(client, started, technician, other_technician, reported):
    for url in (
        f"/pilotage/commandes/{started.pk}/fournitures/",
        f"/pilotage/commandes/{started.pk}/devis/fournitures/",
    ):
        assert client.post(url).status_code == HTTPStatus.FOUND  # to the sign-in page
        client.force_login(technician)
        assert client.post(url).status_code in (HTTPStatus.FORBIDDEN, HTTPStatus.NOT_FOUND)
        client.logout()
    client.force_login(other_technician)
    assert client.get(f"/commandes/{started.pk}/rapports/{reported.pk}/").status_code == HTTPStatus.NOT_FOUND
    assert {m.destination for m in reported.materials.all()} == {MaterialDestination.PENDING}
