"""The planning (/pilotage/planning/): a week per technician of appointments and
planned periods, reassigning and rescheduling from it, overlaps flagged."""

from __future__ import annotations

import html as html_lib
import re
from datetime import date, datetime, timedelta
from http import HTTPStatus

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orders import planning, services
from orders.models import Order
from orders.states import State
from portal.models import Role
from tests import factories
from tests.conftest import PARIS, make_user

# Tuesday 1 December 2026, in ISO week 2026-W49 (Monday 30 November to Sunday 6 December).
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=PARIS)
URL = "/pilotage/planning/"


@pytest.fixture(autouse=True)
def now():
    with time_machine.travel(NOW, tick=False):
        yield NOW


@pytest.fixture
def signed_in(client, supervisor):
    client.force_login(supervisor)
    return client


def at(day: int, hour: int, minute: int = 0, month: int = 12) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=PARIS)


def an_order(contract, reference: str, *, technician=None, state=State.PLANNED, asset=None, **fields) -> Order:
    """The planning only reads orders: they are made directly, in the state each test needs."""
    fields = {"due_at": NOW + timedelta(days=10), **fields}
    return factories.an_order(contract, reference, technician=technician, state=state, asset=asset, **fields)


def cells_of(html: str, reference: str) -> list[int]:
    """The columns (0 = Monday) of the row cells where `reference` appears."""
    found = []
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", html, re.S):
        for index, cell in enumerate(re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)):
            if f">{reference}</a>" in cell:
                found.append(index)
    return found


def row_of(html: str, reference: str) -> str:
    """The heading of the row where `reference` appears."""
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", html, re.S):
        if f">{reference}</a>" in row:
            return re.sub(r"\s+", " ", re.search(r"<th[^>]*>(.*?)</th>", row, re.S)[1]).strip()
    raise AssertionError(f"{reference} is not on the planning")


def messages_of(response) -> str:
    return text_of(" ".join(re.findall(r'<li class="message[^"]*">(.*?)</li>', response.content.decode(), re.S)))


def text_of(html: str) -> str:
    """What a person reads: no tags, no entities, single spaces."""
    return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", html)).split())


def page_text(client, url: str = URL) -> str:
    return text_of(client.get(url).content.decode())


# --- Access -------------------------------------------------------------------------


def test_a_signed_out_visitor_is_sent_to_the_login_page(client, db):
    response = client.get(URL)
    assert response.status_code == HTTPStatus.FOUND
    assert response.url.startswith("/connexion/?next=")


def test_a_technician_may_neither_see_the_planning_nor_change_it(client, technician, order, other_technician):
    client.force_login(technician)
    assert client.get(URL).status_code == HTTPStatus.FORBIDDEN
    response = client.post(f"{URL}commandes/{order.pk}/", {"technician": other_technician.pk})
    assert response.status_code == HTTPStatus.FORBIDDEN
    order.refresh_from_db()
    assert order.technician == technician


def test_a_signed_out_visitor_cannot_change_an_order(client, order, other_technician):
    response = client.post(f"{URL}commandes/{order.pk}/", {"technician": other_technician.pk})
    assert response.status_code == HTTPStatus.FOUND
    assert response.url.startswith("/connexion/")
    order.refresh_from_db()
    assert order.technician_id != other_technician.pk


@pytest.mark.parametrize("who", ["supervisor", "office"])
def test_supervisors_and_office_staff_see_the_planning(client, request, who):
    client.force_login(request.getfixturevalue(who))
    response = client.get(URL)
    assert response.status_code == HTTPStatus.OK
    assert "Planning" in response.content.decode()


def test_the_change_form_only_takes_posts_and_unknown_orders_are_not_found(signed_in, order):
    assert signed_in.get(f"{URL}commandes/{order.pk}/").status_code == HTTPStatus.METHOD_NOT_ALLOWED
    assert signed_in.post(f"{URL}commandes/999999/", {}).status_code == HTTPStatus.NOT_FOUND


def test_the_navigation_leads_supervisors_to_the_planning(signed_in):
    assert f'href="{URL}"' in signed_in.get("/pilotage/").content.decode()


# --- The week -----------------------------------------------------------------------


def test_the_current_week_runs_from_monday_to_sunday_with_a_row_per_active_technician(
    signed_in, contract, technician, other_technician
):
    make_user("parti", Role.TECHNICIAN, first_name="Paul", last_name="Parti", is_active=False)
    html = signed_in.get(URL).content.decode()
    assert "semaine 49, du lundi 30 novembre au dimanche 6 décembre 2026" in html
    headings = re.findall(r'<th scope="row"[^>]*>\s*(.*?)\s*<', html, re.S)
    assert headings == ["Karim Haddad", "Lucie Moreau", "Non attribuées"]
    assert "Paul Parti" not in html


def test_an_item_shows_reference_time_address_state_and_links_to_the_order(signed_in, contract, technician, asset):
    order = an_order(contract, "RDV-1", technician=technician, asset=asset, appointment_at=at(2, 14, 30))
    html = signed_in.get(URL).content.decode()
    assert cells_of(html, "RDV-1") == [2]  # Wednesday
    assert row_of(html, "RDV-1").startswith("Karim Haddad")
    assert "Rendez-vous 14 h 30" in html
    assert "14 rue des Tilleuls, 57000 Metz" in html
    assert '<span class="badge state-planned">Planifié</span>' in html
    assert f'href="/commandes/{order.pk}/"' in html or f'href="/pilotage/commandes/{order.pk}/"' in html


def test_a_planned_period_spans_its_days_and_carries_one_form(signed_in, contract, technician):
    an_order(contract, "PERIODE-1", technician=technician, planned_start=at(1, 8), planned_end=at(3, 17))
    html = signed_in.get(URL).content.decode()
    assert cells_of(html, "PERIODE-1") == [1, 2, 3]
    text = text_of(html)
    assert "Travaux dès 8 h 00, jusqu'au jeu. 3 déc." in text
    assert "Travaux (suite) jusqu'au jeu. 3 déc." in text  # Wednesday
    assert "Travaux (suite) jusqu'à 17 h 00" in text
    assert html.count('id="commande-') == 1


def test_a_period_from_the_week_before_shows_on_the_days_it_runs_into(signed_in, contract, technician):
    an_order(contract, "AVANT-1", technician=technician, planned_start=at(27, 8, month=11), planned_end=at(1, 12))
    html = signed_in.get(URL).content.decode()
    assert cells_of(html, "AVANT-1") == [0, 1]


def test_orders_without_a_technician_are_in_the_unassigned_row(signed_in, contract, technician):
    an_order(contract, "SANS-1", state=State.ACKNOWLEDGED, planned_start=at(4, 8), planned_end=at(4, 12))
    html = signed_in.get(URL).content.decode()
    assert row_of(html, "SANS-1").startswith("Non attribuées")


def test_cancelled_orders_and_orders_of_other_weeks_are_left_out(signed_in, contract, technician):
    an_order(
        contract,
        "ANNULEE-1",
        technician=technician,
        state=State.CANCELLED,
        cancel_reason="Doublon",
        appointment_at=at(2, 9),
    )
    an_order(contract, "SUIVANTE-1", technician=technician, appointment_at=at(8, 9))
    html = signed_in.get(URL).content.decode()
    assert "ANNULEE-1" not in html
    assert "SUIVANTE-1" not in html


def test_days_are_paris_days(signed_in, contract, technician):
    # Sunday 23:30 in Paris is Sunday 22:30 UTC: still this week, on Sunday;
    # Monday 0:30 in Paris is still Sunday in UTC, but belongs to the next week.
    an_order(contract, "DIMANCHE-SOIR", technician=technician, appointment_at=at(6, 23, 30))
    an_order(contract, "LUNDI-MATIN", technician=technician, appointment_at=at(7, 0, 30))
    html = signed_in.get(URL).content.decode()
    assert cells_of(html, "DIMANCHE-SOIR") == [6]
    assert "LUNDI-MATIN" not in html
    assert cells_of(signed_in.get(f"{URL}?semaine=2026-W50").content.decode(), "LUNDI-MATIN") == [0]


def test_a_week_is_chosen_in_the_url_with_links_to_the_previous_and_next(signed_in, contract, technician):
    an_order(contract, "JANVIER-1", technician=technician, appointment_at=datetime(2027, 1, 5, 9, tzinfo=PARIS))
    html = signed_in.get(f"{URL}?semaine=2027-W01").content.decode()
    assert "semaine 1, du lundi 4 janvier au dimanche 10 janvier 2027" in html
    assert cells_of(html, "JANVIER-1") == [1]
    assert f'href="{URL}?semaine=2026-W53" rel="prev"' in html
    assert f'href="{URL}?semaine=2027-W02" rel="next"' in html
    assert f'<a class="button" href="{URL}">Cette semaine</a>' in html


def test_the_week_across_the_change_to_summer_time_ends_on_sunday_night(signed_in, contract, technician):
    an_order(contract, "ETE-1", technician=technician, appointment_at=at(29, 23, 30, month=3))
    html = signed_in.get(f"{URL}?semaine=2026-W13").content.decode()
    assert cells_of(html, "ETE-1") == [6]


def test_the_current_week_is_read_from_one_instant_even_at_midnight(signed_in, monkeypatch):
    """Midnight passes while the page is built: the clock read on Sunday 6 December,
    then on Monday 7. The week is Sunday's, not one from Sunday to Saturday (the
    Sunday minus the Monday's weekday)."""
    readings = iter([date(2026, 12, 6)])
    paris_date = timezone.localdate

    def localdate(value=None, *args):
        return paris_date(value, *args) if value is not None else next(readings, date(2026, 12, 7))

    monkeypatch.setattr("django.utils.timezone.localdate", localdate)
    html = signed_in.get(URL).content.decode()
    assert "semaine 49, du lundi 30 novembre au dimanche 6 décembre 2026" in html


@pytest.mark.parametrize("week", ["2026-49", "2025-W53", "semaine", "2026-W00", "9999-W01"])
def test_a_week_that_does_not_exist_gets_a_french_message_and_the_current_week(signed_in, week):
    response = signed_in.get(URL, {"semaine": week})
    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert f"« {week} » n'est pas une semaine : écrivez-la sous la forme 2026-W49." in text_of(html)
    assert "semaine 49, du lundi 30 novembre" in html


# --- Overlaps -----------------------------------------------------------------------


def test_two_appointments_of_one_technician_within_the_hour_are_flagged(signed_in, contract, technician):
    an_order(contract, "A-9H00", technician=technician, appointment_at=at(2, 9))
    an_order(contract, "A-9H30", technician=technician, appointment_at=at(2, 9, 30))
    an_order(contract, "A-11H00", technician=technician, appointment_at=at(2, 11))
    html = signed_in.get(URL).content.decode()
    text = text_of(html)
    assert "2 commandes en chevauchement cette semaine." in text
    assert "Chevauchement : A-9H30 (rendez-vous mer. 2 déc. à 9 h 30)." in text
    assert "Chevauchement : A-9H00 (rendez-vous mer. 2 déc. à 9 h 00)." in text
    assert "A-11H00 (" not in text
    assert html.count('class="plan-item is-conflict"') == 2
    assert "2 en chevauchement" in row_of(html, "A-9H00")


def test_the_same_hour_for_two_technicians_is_no_overlap(signed_in, contract, technician, other_technician):
    an_order(contract, "K-9H", technician=technician, appointment_at=at(2, 9))
    an_order(contract, "L-9H", technician=other_technician, appointment_at=at(2, 9))
    an_order(contract, "N-9H", appointment_at=at(2, 9), state=State.PLANNED)
    html = signed_in.get(URL).content.decode()
    assert "is-conflict" not in html
    assert "en chevauchement" not in html


def test_planned_periods_that_intersect_are_flagged_and_an_appointment_inside_one_too(signed_in, contract, technician):
    an_order(contract, "P-1", technician=technician, planned_start=at(1, 8), planned_end=at(2, 17))
    an_order(contract, "P-2", technician=technician, planned_start=at(2, 14), planned_end=at(3, 12))
    an_order(contract, "P-3", technician=technician, planned_start=at(4, 8), planned_end=at(4, 12))
    an_order(contract, "R-1", technician=technician, appointment_at=at(1, 10))
    text = page_text(signed_in)
    assert "3 commandes en chevauchement cette semaine." in text
    assert (
        "Chevauchement : R-1 (rendez-vous mar. 1 déc. à 10 h 00) ; "
        "P-2 (travaux du mer. 2 déc. à 14 h 00 au jeu. 3 déc. à 12 h 00)." in text
    )
    assert "P-3 (" not in text


def test_finished_works_hold_nobody(signed_in, contract, technician):
    an_order(
        contract,
        "FINI",
        technician=technician,
        state=State.FINISHED,
        appointment_at=at(2, 9),
        actual_start=at(2, 9),
        actual_end=at(2, 10),
    )
    an_order(contract, "A-FAIRE", technician=technician, appointment_at=at(2, 9, 15))
    assert "is-conflict" not in signed_in.get(URL).content.decode()


# --- Reassigning and rescheduling ------------------------------------------------------


@pytest.fixture
def planned(order, technician):
    services.acknowledge_order(order, actor=technician)
    planning.plan_order(order, actor=technician, appointment=at(2, 9))
    order.refresh_from_db()
    return order


def change(client, order, week="2026-W49", **data):
    return client.post(f"{URL}commandes/{order.pk}/", {"semaine": week, **data})


def test_reassigning_from_the_planning_goes_through_the_service_and_back_to_the_week(
    signed_in, planned, technician, other_technician, supervisor
):
    response = change(signed_in, planned, technician=other_technician.pk, appointment="2026-12-02T09:00")
    assert response.status_code == HTTPStatus.FOUND
    assert response.url == f"{URL}?semaine=2026-W49#commande-{planned.pk}"
    planned.refresh_from_db()
    assert planned.technician == other_technician
    assert planned.appointment_at == at(2, 9)  # unchanged: not replanned
    event = planned.events.order_by("-pk").first()
    assert (event.kind, event.label, event.actor) == ("assign", "Technicien : Lucie Moreau", supervisor)
    assert not planned.events.filter(kind="plan", actor=supervisor).exists()
    html = signed_in.get(response.url).content.decode()
    assert "Technicien : Lucie Moreau" in html
    assert row_of(html, planned.reference).startswith("Lucie Moreau")


def test_rescheduling_from_the_planning_replans_the_appointment(signed_in, planned, technician, supervisor):
    response = change(
        signed_in, planned, week="2026-W50", technician=technician.pk, appointment="2026-12-08T14:30", reason="Pluie"
    )
    assert response.url == f"{URL}?semaine=2026-W50#commande-{planned.pk}"
    planned.refresh_from_db()
    assert planned.appointment_at == at(8, 14, 30)
    assert planned.technician == technician
    event = planned.events.order_by("-pk").first()
    assert event.kind == "plan"
    assert event.actor == supervisor
    assert event.label == "Rendez-vous reporté au mar. 8 déc. à 14 h 30 (motif : Pluie)"
    page = signed_in.get(response.url)
    assert "Rendez-vous reporté au mar. 8 déc. à 14 h 30 (motif : Pluie)" in messages_of(page)
    assert cells_of(page.content.decode(), planned.reference) == [1]


def test_a_planned_period_is_rescheduled_with_its_start_and_end(signed_in, order, technician):
    services.acknowledge_order(order, actor=technician)
    planning.plan_order(order, actor=technician, planned_start=at(1, 8), planned_end=at(2, 17))
    change(
        signed_in,
        order,
        technician=technician.pk,
        planned_start="2026-12-03T08:00",
        planned_end="2026-12-04T12:00",
        reason="Matériel en retard",
    )
    order.refresh_from_db()
    assert (order.planned_start, order.planned_end, order.appointment_at) == (at(3, 8), at(4, 12), None)


def test_an_order_can_be_taken_away_from_its_technician(signed_in, planned):
    change(signed_in, planned, technician="", appointment="2026-12-02T09:00")
    planned.refresh_from_db()
    assert planned.technician is None


def test_an_illegal_change_gets_a_french_message_and_changes_nothing(signed_in, order, technician, other_technician):
    # Finished: it can be reassigned, not planned; the two go together or not at all.
    factories.bring_to(order, State.FINISHED, technician, at=timezone.now() - timedelta(hours=4))
    events = order.events.count()
    response = change(signed_in, order, technician=other_technician.pk, appointment="2026-12-03T10:00")
    assert response.status_code == HTTPStatus.OK
    order.refresh_from_db()
    assert order.technician == technician
    assert order.appointment_at != at(3, 10)
    assert order.events.count() == events
    text = messages_of(response)
    assert f"Commande {order.reference} : rien n'a été modifié." in text
    assert "Action « Planifier » impossible : la commande est à l'état « Terminé »" in text


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"appointment": "le 3 décembre"}, "Saisissez une date et une heure valides."),
        ({"technician": "999999"}, "Choisissez un technicien de la liste."),
        ({"technician": "abc"}, "Choisissez un technicien de la liste."),
        (
            {"appointment": "2026-12-03T10:00", "planned_start": "2026-12-03T08:00", "planned_end": "2026-12-03T12:00"},
            "Indiquez soit un rendez-vous, soit une période de travaux, pas les deux.",
        ),
        ({"planned_start": "2026-12-03T08:00"}, "Une période de travaux a un début et une fin."),
        (
            {"planned_start": "2026-12-03T08:00", "planned_end": "2026-12-03T07:00"},
            "La fin prévue doit être après le début prévu.",
        ),
    ],
)
def test_badly_filled_forms_get_a_french_message_and_change_nothing(signed_in, planned, technician, data, message):
    events = planned.events.count()
    response = change(signed_in, planned, **{"technician": technician.pk, **data})
    assert response.status_code == HTTPStatus.OK
    assert message in messages_of(response)
    planned.refresh_from_db()
    assert planned.events.count() == events
    assert planned.appointment_at == at(2, 9)


def test_a_form_without_the_technician_leaves_the_technician_alone(signed_in, planned, technician):
    change(signed_in, planned, appointment="2026-12-02T11:00", reason="Occupant indisponible le matin")
    planned.refresh_from_db()
    assert planned.technician == technician
    assert planned.appointment_at == at(2, 11)


def test_posting_the_form_unchanged_says_there_is_nothing_to_change(signed_in, planned, technician):
    events = planned.events.count()
    response = change(signed_in, planned, technician=technician.pk, appointment="2026-12-02T09:00")
    assert "rien à changer" in messages_of(signed_in.get(response.url))
    assert planned.events.count() == events


def test_a_bad_week_in_the_form_goes_back_to_the_current_week(signed_in, planned, technician):
    response = change(signed_in, planned, week="n'importe quoi", technician=technician.pk)
    assert response.url == f"{URL}#commande-{planned.pk}"


def test_items_of_finished_orders_have_no_form(signed_in, contract, technician):
    an_order(contract, "FINI", technician=technician, state=State.CLOSED, close_outcome="done", appointment_at=at(2, 9))
    an_order(contract, "OUVERT", technician=technician, appointment_at=at(3, 9))
    html = signed_in.get(URL).content.decode()
    assert html.count("<summary>Modifier</summary>") == 1


# --- Queries ----------------------------------------------------------------------------


def test_the_planning_needs_as_many_queries_for_500_orders_as_for_10(
    signed_in, contract, asset, technician, other_technician
):
    def fill(count: int, start: int) -> None:
        Order.objects.bulk_create(
            Order(
                contract=contract,
                reference=f"Q-{start + number}",
                received_at=NOW,
                notified_at=NOW,
                due_at=NOW + timedelta(days=5),
                state=State.PLANNED,
                asset=asset,
                technician=(technician, other_technician, None)[number % 3],
                appointment_at=at(30, 7, month=11) + timedelta(minutes=20 * number),
            )
            for number in range(count)
        )

    def queries() -> int:
        with CaptureQueriesContext(connection) as context:
            response = signed_in.get(URL)
        assert response.status_code == HTTPStatus.OK
        return len(context.captured_queries)

    fill(10, 0)
    few = queries()
    fill(490, 10)
    assert Order.objects.count() == 500
    assert queries() == few
