"""What the job is (issue 16, item 6): the service code and the first words of
the description on the technician's cards and the supervisors' list, a search
that covers the description, and the asset's previous visits on the order's
pages (when, what was done, the report for those who may open it)."""

from __future__ import annotations

from datetime import datetime, timedelta
from http import HTTPStatus

import pytest
import time_machine

from orders import reports
from orders.models import Order
from orders.states import State
from tests import factories
from tests.conftest import PARIS

NOW = datetime(2026, 12, 5, 14, 0, tzinfo=PARIS)
LONG = "Fuite sous l'évier de la cuisine, le siphon est fendu et l'eau coule dans le meuble bas depuis hier soir"


@pytest.fixture(autouse=True)
def now():
    with time_machine.travel(NOW, tick=False):
        yield NOW


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def test_the_card_shows_the_service_code_and_the_first_words(client, order, technician):
    Order.objects.filter(pk=order.pk).update(description=LONG)
    client.force_login(technician)
    html = client.get("/mes-commandes/").content.decode()
    assert (
        '<strong class="service-code">PLB-FUITE</strong> · '
        "Fuite sous l&#x27;évier de la cuisine, le siphon est fendu …" in html
    )
    assert "depuis hier soir" not in html  # the first words only


def test_the_supervisors_list_shows_them_too(client, order, supervisor):
    Order.objects.filter(pk=order.pk).update(description=LONG)
    client.force_login(supervisor)
    html = client.get("/pilotage/commandes/").content.decode()
    assert "<strong>PLB-FUITE</strong> · Fuite sous l&#x27;évier de la cuisine, le siphon …" in html


@pytest.mark.parametrize("url", ["/mes-commandes/?q=siphon+fendu", "/pilotage/commandes/?q=siphon+fendu"])
def test_the_search_covers_the_description(client, contract, asset, service_code, technician, supervisor, url):
    found = factories.register_order(
        contract, reference="A-SIPHON", asset=asset, service_code=service_code, technician=technician, description=LONG
    )
    factories.register_order(
        contract,
        reference="B-PORTE",
        asset=asset,
        service_code=service_code,
        technician=technician,
        description="Porte palière bloquée",
    )
    client.force_login(technician if url.startswith("/mes") else supervisor)
    html = client.get(url).content.decode()
    assert found.reference in html
    assert "B-PORTE" not in html


def test_the_order_page_shows_the_assets_previous_visits(
    client, contract, asset, service_code, technician, other_technician, supervisor
):
    earlier_mine = factories.register_order(
        contract, reference="AVANT-1", asset=asset, service_code=service_code, technician=technician
    )
    earlier_other = factories.register_order(
        contract, reference="AVANT-2", asset=asset, service_code=service_code, technician=other_technician
    )
    mine = reports.submit_report(
        factories.bring_to(earlier_mine, State.IN_PROGRESS, technician, at=NOW - timedelta(days=40)),
        actor=technician,
        works_done="Remplacement du joint du robinet",
        time_on_site_minutes=30,
        signature_status="absent",
        at=NOW - timedelta(days=40),
    )
    other = reports.submit_report(
        factories.bring_to(earlier_other, State.IN_PROGRESS, other_technician, at=NOW - timedelta(days=10)),
        actor=other_technician,
        works_done="Débouchage de la colonne",
        time_on_site_minutes=45,
        signature_status="absent",
        at=NOW - timedelta(days=10),
    )
    today = factories.register_order(
        contract, reference="AUJOURDHUI", asset=asset, service_code=service_code, technician=technician
    )

    client.force_login(technician)
    html = client.get(f"/commandes/{today.pk}/").content.decode()
    section = html[html.index('id="interventions-precedentes"') :]
    section = section[: section.index("</section>")]
    # Latest first: when, which order, what was done.
    assert section.index("Débouchage de la colonne") < section.index("Remplacement du joint du robinet")
    assert "mer. 25 nov. à 14 h 00</time> · AVANT-2 · <strong>PLB-FUITE</strong>" in section
    assert "lun. 26 oct. à 14 h 00</time> · AVANT-1" in section
    # The report of their own order opens; the colleague's is not linked (they cannot open it).
    assert f"/commandes/{earlier_mine.pk}/rapports/{mine.pk}/" in section
    assert f"/commandes/{earlier_other.pk}/rapports/{other.pk}/" not in section
    assert client.get(f"/commandes/{earlier_mine.pk}/rapports/{mine.pk}/").status_code == HTTPStatus.OK

    client.force_login(supervisor)
    html = client.get(f"/pilotage/commandes/{today.pk}/").content.decode()
    for order, report in ((earlier_mine, mine), (earlier_other, other)):
        link = f"/commandes/{order.pk}/rapports/{report.pk}/"
        assert link in html
        assert client.get(link).status_code == HTTPStatus.OK


def test_an_order_without_an_earlier_visit_says_so(client, order, technician):
    client.force_login(technician)
    assert "Aucune intervention précédente enregistrée." in client.get(f"/commandes/{order.pk}/").content.decode()
