"""The planning's backlog (issue 16, item 9, first slice): the open orders
without a technician or a date, the most urgent first, filterable; a check of
a technician and time before saving (overlaps, due date passed); the plain
form that assigns and schedules; « non affectées » on the overview."""

from __future__ import annotations

from datetime import datetime, timedelta
from http import HTTPStatus

import pytest
import time_machine

from orders.models import Order
from orders.states import State
from portal.models import ServiceCode
from tests import factories
from tests.conftest import PARIS

NOW = datetime(2026, 12, 7, 8, 0, tzinfo=PARIS)  # Monday


@pytest.fixture(autouse=True)
def now():
    with time_machine.travel(NOW, tick=False):
        yield NOW


@pytest.fixture
def backlog(contract, asset, service_code, technician):
    """Three orders to plan (due Wednesday, Tuesday critical, no due date), and
    one already assigned and planned (Monday 10:00 for Karim)."""

    def make(reference, **fields):
        return factories.register_order(contract, reference=reference, asset=asset, service_code=service_code, **fields)

    wednesday = make("A-MERCREDI", description="Porte palière bloquée")
    tuesday = make("B-MARDI", critical_level=3, description="Fuite sous l'évier")
    undated = make("C-SANS-ECHEANCE", technician=technician)
    planned = make("D-PLANIFIEE", technician=technician)
    factories.bring_to(planned, State.PLANNED, technician, appointment=NOW + timedelta(hours=2))
    Order.objects.filter(pk=wednesday.pk).update(due_at=NOW + timedelta(days=2))
    Order.objects.filter(pk=tuesday.pk).update(due_at=NOW + timedelta(days=1))
    Order.objects.filter(pk=undated.pk).update(due_at=None)
    return {"wednesday": wednesday, "tuesday": tuesday, "undated": undated, "planned": planned}


def backlog_section(html: str) -> str:
    return html[html.index('id="a-planifier"') :]


def test_the_backlog_lists_what_to_plan_the_most_urgent_first(client, supervisor, backlog):
    client.force_login(supervisor)
    section = backlog_section(client.get("/pilotage/planning/").content.decode())
    positions = [section.index(reference) for reference in ("B-MARDI", "A-MERCREDI", "C-SANS-ECHEANCE")]
    assert positions == sorted(positions)
    assert "D-PLANIFIEE" not in section
    assert "échéance <strong>mar. 8 déc. à 8 h 00</strong>" in section


def test_the_backlog_is_filtered_by_any_word_of_the_order(client, supervisor, backlog):
    client.force_login(supervisor)
    section = backlog_section(client.get("/pilotage/planning/?a_planifier=évier").content.decode())
    assert "B-MARDI" in section and "A-MERCREDI" not in section


def check(client, order, technician, when):
    data = {"commande": order.pk, "technician": technician.pk if technician else "", "appointment": when}
    return client.get("/pilotage/planning/a-planifier/verifier/", data).content.decode()


def test_a_slot_that_overlaps_a_visit_or_passes_the_due_date_is_told_before_saving(
    client, supervisor, technician, backlog
):
    client.force_login(supervisor)
    # Karim has D-PLANIFIEE at 10:00 for an hour: 10:30 overlaps it.
    html = check(client, backlog["tuesday"], technician, "2026-12-07T10:30")
    assert "Chevauche D-PLANIFIEE (rendez-vous lun. 7 déc. à 10 h 00) de Karim Haddad." in html
    # Wednesday 9:00 ends after Tuesday's due date (8:00).
    html = check(client, backlog["tuesday"], technician, "2026-12-09T09:00")
    assert "Après l&#x27;échéance du mar. 8 déc. à 8 h 00." in html
    assert "Chevauche" not in html
    html = check(client, backlog["tuesday"], technician, "2026-12-07T14:00")
    assert "Aucun conflit" in html


def test_the_plain_form_assigns_and_schedules_and_the_order_leaves_the_backlog(client, supervisor, technician, backlog):
    client.force_login(supervisor)
    order = backlog["tuesday"]
    response = client.post(
        "/pilotage/planning/a-planifier/",
        {"commande": order.pk, "technician": technician.pk, "appointment": "2026-12-07T14:00", "semaine": "2026-W50"},
    )
    assert response.status_code == HTTPStatus.FOUND
    assert response.url == "/pilotage/planning/?semaine=2026-W50#a-planifier"
    order.refresh_from_db()
    assert order.technician == technician
    assert order.appointment_at == datetime(2026, 12, 7, 14, 0, tzinfo=PARIS)
    section = backlog_section(client.get("/pilotage/planning/").content.decode())
    assert "B-MARDI" not in section


def test_the_overview_counts_the_orders_nobody_is_assigned_to(client, supervisor, backlog):
    client.force_login(supervisor)
    html = client.get("/pilotage/").content.decode()
    assert "<strong>2</strong> non affectées</a>" in html


def test_technicians_and_strangers_cannot_check_or_plan(client, technician, backlog):
    check_url = f"/pilotage/planning/a-planifier/verifier/?commande={backlog['tuesday'].pk}"
    data = {"commande": backlog["tuesday"].pk, "technician": technician.pk, "appointment": "2026-12-07T14:00"}
    assert client.get(check_url).status_code == HTTPStatus.FOUND  # to the sign-in page
    assert client.post("/pilotage/planning/a-planifier/", data).status_code == HTTPStatus.FOUND
    client.force_login(technician)
    assert client.get(check_url).status_code == HTTPStatus.FORBIDDEN
    assert client.post("/pilotage/planning/a-planifier/", data).status_code == HTTPStatus.FORBIDDEN
    assert Order.objects.get(pk=backlog["tuesday"].pk).appointment_at is None


def test_planning_without_choosing_an_order_says_so(client, supervisor, technician, backlog):
    client.force_login(supervisor)
    response = client.post("/pilotage/planning/a-planifier/", {"technician": technician.pk}, follow=True)
    assert "Choisissez la commande à planifier dans la liste." in response.content.decode()


def test_a_visit_holds_its_technician_for_its_service_codes_duration(client, supervisor, technician, backlog):
    """D-PLANIFIEE is at 10:00; its code now takes 2 h 30, B-MARDI's 30 minutes."""
    ServiceCode.objects.filter(pk=backlog["planned"].service_code_id).update(visit_minutes=150)
    long_code = backlog["planned"].service_code
    short = ServiceCode.objects.create(contract=long_code.contract, code="COURT", label="Contrôle", visit_minutes=30)
    Order.objects.filter(pk=backlog["tuesday"].pk).update(service_code=short)
    client.force_login(supervisor)
    # 12:00 is inside 10:00 + 2 h 30; 12:30 is not.
    assert "Chevauche D-PLANIFIEE" in check(client, backlog["tuesday"], technician, "2026-12-07T12:00")
    assert "Aucun conflit" in check(client, backlog["tuesday"], technician, "2026-12-07T12:30")
    # 9:30 for 30 minutes ends as D-PLANIFIEE begins; 9:31 runs into it.
    assert "Aucun conflit" in check(client, backlog["tuesday"], technician, "2026-12-07T09:30")
    assert "Chevauche D-PLANIFIEE" in check(client, backlog["tuesday"], technician, "2026-12-07T09:31")
