"""A reschedule says why (issue 16, item 3): wherever a person moves an order's
appointment or period of works (the week planning, the technician's order page,
the supervisor's order page, the admin's action page; the dispatch board in
tests/test_board_moves.py), the reason is required, refused in French without
it with nothing changed or relayed and what was typed kept, and relayed in the
log's description with it. The first planning of an order needs none."""

from __future__ import annotations

import html as html_lib
import re
from datetime import datetime, timedelta
from http import HTTPStatus

import pytest
import time_machine

from orders import planning, services
from orders.models import Order
from orders.states import State, TransitionError
from portal.relay.models import OutboxMessage
from tests import factories
from tests.conftest import PARIS

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=PARIS)  # Tuesday, in week 2026-W49
FIRST = datetime(2026, 12, 2, 9, 0, tzinfo=PARIS)  # the appointment the order has
REFUSED = "Indiquez le motif du report : il est transmis au client avec le nouveau rendez-vous."
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def now():
    with time_machine.travel(NOW, tick=False):
        yield NOW


@pytest.fixture
def acknowledged(order, technician, outbox_connection):
    services.acknowledge_order(order, actor=technician)
    order.refresh_from_db()
    return order


@pytest.fixture
def planned(acknowledged, technician):
    planning.plan_order(acknowledged, actor=technician, appointment=FIRST)
    acknowledged.refresh_from_db()
    return acknowledged


def text_of(response) -> str:
    """What a person reads: no tags, no entities, single spaces."""
    return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


def relayed(order: Order) -> list[str]:
    """The descriptions of the logs waiting for the client's platform, oldest first."""
    return [message.payload["description"] for message in OutboxMessage.objects.filter(order=order).order_by("pk")]


def assert_unchanged(order: Order, *, relayed_before: list[str], events: int) -> None:
    order.refresh_from_db()
    assert order.appointment_at == FIRST
    assert order.events.count() == events
    assert relayed(order) == relayed_before


# --- The week planning ---------------------------------------------------------------------

PLANNING = "/pilotage/planning/"


def planning_change(client, order, **data):
    return client.post(f"{PLANNING}commandes/{order.pk}/", {"semaine": "2026-W49", **data})


def test_the_week_planning_asks_the_reason_only_of_an_order_planned_before(client, supervisor, contract, technician):
    client.force_login(supervisor)
    first = factories.an_order(
        contract, "PREMIER", technician=technician, state=State.ACKNOWLEDGED, appointment_at=FIRST
    )
    again = factories.an_order(contract, "REPORT", technician=technician, state=State.PLANNED, appointment_at=FIRST)
    html = client.get(PLANNING).content.decode()
    assert f'id="plan-{again.pk}-reason"' in html
    assert f'id="plan-{first.pk}-reason"' not in html
    assert "Si la date change : transmis au client avec la nouvelle date." in html


def test_a_first_appointment_from_the_week_planning_needs_no_reason(client, supervisor, contract, technician):
    client.force_login(supervisor)
    order = factories.an_order(
        contract, "PREMIER", technician=technician, state=State.ACKNOWLEDGED, appointment_at=FIRST
    )
    response = planning_change(client, order, appointment="2026-12-03T14:00")
    assert response.status_code == HTTPStatus.FOUND
    order.refresh_from_db()
    assert (order.state, order.appointment_at) == (State.PLANNED, datetime(2026, 12, 3, 14, 0, tzinfo=PARIS))
    assert order.events.latest("pk").label == "Rendez-vous fixé le jeu. 3 déc. à 14 h 00"


@pytest.mark.parametrize("reason", ["", "   "])
def test_moving_an_appointment_from_the_week_planning_without_a_reason_is_refused_and_kept_as_typed(
    client, supervisor, planned, technician, other_technician, reason
):
    client.force_login(supervisor)
    before, events = relayed(planned), planned.events.count()
    response = planning_change(
        client, planned, technician=other_technician.pk, appointment="2026-12-03T14:00", reason=reason
    )
    assert response.status_code == HTTPStatus.OK
    assert f"Commande {planned.reference} : rien n'a été modifié. {REFUSED}" in text_of(response)
    # The same week again, the order's form open as it was sent, the reason on its field.
    html = response.content.decode()
    form = re.search(
        rf'<details class="plan-edit" open>.*?action="{PLANNING}commandes/{planned.pk}/".*?</details>', html, re.S
    )
    assert form is not None
    form_html = form.group(0)
    assert 'value="2026-12-03T14:00"' in form_html
    assert f'<option value="{other_technician.pk}" selected>' in form_html
    assert 'aria-invalid="true"' in form_html and html_lib.escape(REFUSED, quote=True) in form_html
    # Nothing changed, not even the technician (all or nothing), nothing relayed.
    assert_unchanged(planned, relayed_before=before, events=events)
    assert planned.technician == technician


def test_a_period_of_works_moved_from_the_week_planning_needs_a_reason_too(
    client, supervisor, acknowledged, technician
):
    client.force_login(supervisor)
    start, end = datetime(2026, 12, 2, 8, 0, tzinfo=PARIS), datetime(2026, 12, 3, 17, 0, tzinfo=PARIS)
    planning.plan_order(acknowledged, actor=technician, planned_start=start, planned_end=end)
    data = {"planned_start": "2026-12-04T08:00", "planned_end": "2026-12-04T17:00"}
    response = planning_change(client, acknowledged, **data)
    assert response.status_code == HTTPStatus.OK
    assert "Indiquez le motif du report : il est transmis au client avec les nouvelles dates." in text_of(response)
    assert 'value="2026-12-04T08:00"' in response.content.decode()
    acknowledged.refresh_from_db()
    assert (acknowledged.planned_start, acknowledged.planned_end) == (start, end)

    planning_change(client, acknowledged, **data, reason="Livraison du chauffe-eau décalée")
    acknowledged.refresh_from_db()
    assert acknowledged.planned_start == datetime(2026, 12, 4, 8, 0, tzinfo=PARIS)
    assert relayed(acknowledged)[-1].endswith("(motif : Livraison du chauffe-eau décalée)")


def test_moving_an_appointment_from_the_week_planning_relays_its_reason(client, supervisor, planned):
    client.force_login(supervisor)
    response = planning_change(client, planned, appointment="2026-12-03T14:00", reason="Occupant  absent le matin")
    assert response.status_code == HTTPStatus.FOUND
    planned.refresh_from_db()
    assert planned.appointment_at == datetime(2026, 12, 3, 14, 0, tzinfo=PARIS)
    label = "Rendez-vous reporté au jeu. 3 déc. à 14 h 00 (motif : Occupant absent le matin)"
    assert planned.events.latest("pk").label == label
    message = OutboxMessage.objects.filter(order=planned).latest("pk")
    assert label in message.payload["description"]
    assert message.payload["event"] == "replanned"


def test_outsiders_cannot_move_an_appointment_from_the_week_planning(client, planned, technician, other_technician):
    before, events = relayed(planned), planned.events.count()
    response = planning_change(client, planned, appointment="2026-12-03T14:00", reason="Pluie")
    assert response.status_code == HTTPStatus.FOUND and response.url.startswith("/connexion/")
    for who in (technician, other_technician):
        client.force_login(who)
        response = planning_change(client, planned, appointment="2026-12-03T14:00", reason="Pluie")
        assert response.status_code == HTTPStatus.FORBIDDEN
    assert_unchanged(planned, relayed_before=before, events=events)


# --- The technician's order page -------------------------------------------------------------


def test_the_technician_plans_a_first_appointment_without_a_reason(client, technician, acknowledged):
    client.force_login(technician)
    response = client.post(f"/commandes/{acknowledged.pk}/planifier/", {"appointment": "2026-12-03T14:00"})
    assert response.status_code == HTTPStatus.FOUND
    acknowledged.refresh_from_db()
    assert acknowledged.appointment_at == datetime(2026, 12, 3, 14, 0, tzinfo=PARIS)


@pytest.mark.parametrize("headers", [{}, HTMX], ids=["plain", "htmx"])
def test_the_technician_cannot_move_an_appointment_without_a_reason(client, technician, planned, headers):
    client.force_login(technician)
    before, events = relayed(planned), planned.events.count()
    response = client.post(f"/commandes/{planned.pk}/planifier/", {"appointment": "2026-12-03T14:00"}, **headers)
    assert response.status_code == HTTPStatus.OK
    assert REFUSED in text_of(response)
    assert 'value="2026-12-03T14:00"' in response.content.decode()
    assert_unchanged(planned, relayed_before=before, events=events)


def test_the_technicians_reason_is_relayed_with_the_new_appointment(client, technician, planned):
    client.force_login(technician)
    client.post(
        f"/commandes/{planned.pk}/planifier/", {"appointment": "2026-12-03T14:00", "reason": "Pièce en commande"}
    )
    planned.refresh_from_db()
    assert planned.appointment_at == datetime(2026, 12, 3, 14, 0, tzinfo=PARIS)
    assert relayed(planned)[-1].startswith("Rendez-vous reporté au jeu. 3 déc. à 14 h 00 (motif : Pièce en commande)")


def test_outsiders_cannot_move_the_appointment_from_the_technicians_page(client, planned, other_technician):
    before, events = relayed(planned), planned.events.count()
    url, data = f"/commandes/{planned.pk}/planifier/", {"appointment": "2026-12-03T14:00", "reason": "Pluie"}
    response = client.post(url, data)
    assert response.status_code == HTTPStatus.FOUND and response.url.startswith("/connexion/")
    client.force_login(other_technician)
    assert client.post(url, data).status_code == HTTPStatus.NOT_FOUND
    assert_unchanged(planned, relayed_before=before, events=events)


# --- The supervisor's order page -------------------------------------------------------------


def supervisor_plan(client, order, headers=None, **data):
    return client.post(f"/pilotage/commandes/{order.pk}/actions/plan/", data, **(headers or {}))


def test_the_supervisor_plans_a_first_appointment_without_a_reason(client, supervisor, acknowledged):
    client.force_login(supervisor)
    response = supervisor_plan(client, acknowledged, appointment="2026-12-03T14:00")
    assert response.status_code == HTTPStatus.FOUND
    acknowledged.refresh_from_db()
    assert acknowledged.appointment_at == datetime(2026, 12, 3, 14, 0, tzinfo=PARIS)


def test_the_supervisors_page_asks_the_reason_when_the_order_has_an_appointment(client, supervisor, planned):
    client.force_login(supervisor)
    html = client.get(f"/pilotage/commandes/{planned.pk}/").content.decode()
    assert '<label for="plan-reason">' in html
    field = re.search(r'<input type="text" name="reason"[^>]*id="plan-reason">', html)
    assert field is not None and " required " in field.group(0)


@pytest.mark.parametrize("headers", [{}, HTMX], ids=["plain", "htmx"])
def test_the_supervisor_cannot_move_an_appointment_without_a_reason(client, supervisor, planned, headers):
    client.force_login(supervisor)
    before, events = relayed(planned), planned.events.count()
    response = supervisor_plan(client, planned, headers, appointment="2026-12-03T14:00", reason=" ")
    assert response.status_code == HTTPStatus.OK
    assert REFUSED in text_of(response)
    assert 'value="2026-12-03T14:00"' in response.content.decode()
    assert_unchanged(planned, relayed_before=before, events=events)


def test_the_supervisors_reason_is_relayed_with_the_new_appointment(client, supervisor, planned):
    client.force_login(supervisor)
    response = supervisor_plan(client, planned, HTMX, appointment="2026-12-03T14:00", reason="Occupant hospitalisé")
    assert response.status_code == HTTPStatus.OK
    label = "Rendez-vous reporté au jeu. 3 déc. à 14 h 00 (motif : Occupant hospitalisé)"
    assert label in text_of(response)
    planned.refresh_from_db()
    assert planned.appointment_at == datetime(2026, 12, 3, 14, 0, tzinfo=PARIS)
    assert planned.events.latest("pk").actor == supervisor
    assert relayed(planned)[-1].startswith(label)


def test_outsiders_cannot_move_the_appointment_from_the_supervisors_page(client, planned, technician):
    before, events = relayed(planned), planned.events.count()
    response = supervisor_plan(client, planned, appointment="2026-12-03T14:00", reason="Pluie")
    assert response.status_code == HTTPStatus.FOUND and response.url.startswith("/connexion/")
    client.force_login(technician)  # even the order's own: this page is the supervisors'
    response = supervisor_plan(client, planned, appointment="2026-12-03T14:00", reason="Pluie")
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert_unchanged(planned, relayed_before=before, events=events)


# --- The admin's action page ------------------------------------------------------------------


def admin_plan(client, order, **data):
    return client.post(f"/admin/orders/order/{order.pk}/action/plan/", data)


def test_the_office_plans_a_first_appointment_without_a_reason(client, office, acknowledged):
    client.force_login(office)
    response = admin_plan(client, acknowledged, appointment_0="03/12/2026", appointment_1="14:00")
    assert response.status_code == HTTPStatus.FOUND
    acknowledged.refresh_from_db()
    assert acknowledged.appointment_at == datetime(2026, 12, 3, 14, 0, tzinfo=PARIS)


def test_the_office_cannot_move_an_appointment_without_a_reason(client, office, planned):
    client.force_login(office)
    before, events = relayed(planned), planned.events.count()
    response = admin_plan(client, planned, appointment_0="03/12/2026", appointment_1="14:00", reason="")
    assert response.status_code == HTTPStatus.OK
    assert response.context["form"].errors == {"reason": [REFUSED]}
    html = response.content.decode()
    assert 'value="03/12/2026"' in html and 'value="14:00"' in html
    assert_unchanged(planned, relayed_before=before, events=events)


def test_the_offices_reason_is_relayed_with_the_new_appointment(client, office, planned):
    client.force_login(office)
    data = {"appointment_0": "03/12/2026", "appointment_1": "14:00", "reason": "Demande du bailleur"}
    response = admin_plan(client, planned, **data)
    assert response.status_code == HTTPStatus.FOUND
    planned.refresh_from_db()
    assert planned.appointment_at == datetime(2026, 12, 3, 14, 0, tzinfo=PARIS)
    label = "Rendez-vous reporté au jeu. 3 déc. à 14 h 00 (motif : Demande du bailleur)"
    assert planned.events.latest("pk").label == label
    assert relayed(planned)[-1].startswith(label)


def test_outsiders_cannot_move_the_appointment_from_the_admin(client, planned, technician, supervisor):
    before, events = relayed(planned), planned.events.count()
    data = {"appointment_0": "03/12/2026", "appointment_1": "14:00", "reason": "Pluie"}
    response = admin_plan(client, planned, **data)
    assert response.status_code == HTTPStatus.FOUND and "/admin/login/" in response.url
    client.force_login(technician)
    response = admin_plan(client, planned, **data)
    assert response.status_code == HTTPStatus.FOUND and "/admin/login/" in response.url
    assert_unchanged(planned, relayed_before=before, events=events)


# --- The rule, in the services ----------------------------------------------------------------


def test_the_same_appointment_again_is_no_reschedule_and_the_first_one_none_either(acknowledged, technician):
    assert not planning.is_replanning(acknowledged, appointment=FIRST)
    planning.plan_order(acknowledged, actor=technician, appointment=FIRST)
    acknowledged.refresh_from_db()
    assert not planning.is_replanning(acknowledged, appointment=FIRST + timedelta(seconds=30))
    assert planning.is_replanning(acknowledged, appointment=FIRST + timedelta(minutes=30))
    assert planning.is_replanning(acknowledged, planned_start=FIRST, planned_end=FIRST + timedelta(hours=8))
    with pytest.raises(planning.ReasonNeeded, match="Indiquez le motif du report"):
        planning.plan_order(acknowledged, actor=technician, appointment=FIRST + timedelta(minutes=30), reason=" ")


def test_a_move_the_state_machine_refuses_says_so_before_asking_the_reason(planned, technician):
    services.start_work(planned, actor=technician)
    services.finish_work(planned, actor=technician, at=NOW + timedelta(hours=1))
    with pytest.raises(TransitionError, match="Action « Planifier » impossible"):
        planning.plan_order(planned, actor=technician, appointment=FIRST + timedelta(days=1))
