"""The dispatch board (issue 16, item 9): a day's rows of technicians in
half-hour slots beside the backlog of the open orders without a technician or
a date, the most urgent first, filterable (words, due date, criticality,
service code, client, what is missing); a check of a technician, time and
duration before saving (overlaps, due date passed), again when saving, where a
warning needs a confirmation; a drop answered by htmx (the row drawn again, the
order out of the backlog) and the same form without JavaScript; durations from
the service code, editable per order; « non affectées » on the overview."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from http import HTTPStatus

import pytest
import time_machine

from orders.models import Order, OrderEvent
from orders.states import State
from portal.models import ServiceCode
from tests import factories
from tests.conftest import PARIS

NOW = datetime(2026, 12, 7, 8, 0, tzinfo=PARIS)  # Monday
BOARD = "/pilotage/repartition/"
PLAN = "/pilotage/repartition/planifier/"
CHECK = "/pilotage/repartition/verifier/"


@pytest.fixture(autouse=True)
def now():
    with time_machine.travel(NOW, tick=False):
        yield NOW


@pytest.fixture
def backlog(contract, asset, service_code, technician):
    """Three orders to plan (due Wednesday, Tuesday critical, no due date but
    Karim's), and one already assigned and planned (Monday 10:00 for Karim)."""

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
    """The backlog's list, less the form under it (whose « Visite à déplacer » lists the board's visits)."""
    return html[html.index('id="a-planifier"') : html.index('id="dispatch-form"')]


def listed(html: str) -> list[str]:
    return re.findall(
        r'<li class="backlog-item[^"]*" id="a-planifier-\d+"\s+data-order="\d+" data-reference="([^"]+)"', html
    )


def row(html: str, technician) -> str:
    start = html.index(f'id="board-row-{technician.pk}"')
    end = html.find('<div class="board-row', start)
    return html[start : end if end != -1 else len(html)]


# --- The board ---------------------------------------------------------------------------


def test_the_board_draws_each_technicians_day_in_half_hour_slots(client, supervisor, technician, backlog):
    client.force_login(supervisor)
    html = client.get(f"{BOARD}?jour=2026-12-07").content.decode()
    karim = row(html, technician)
    assert 'data-technician="' + str(technician.pk) + '" data-name="Karim Haddad"' in karim
    assert karim.count('class="board-slot"') == 24
    assert 'data-time="07:00"' in karim and 'data-time="18:30"' in karim and 'data-time="19:00"' not in karim
    # D-PLANIFIEE at 10:00 for its code's hour: quarter columns 13 to 16 (from 7:00), with what the script compares.
    visit = re.search(r'<a class="board-visit ([^"]*)"[^>]*data-reference="D-PLANIFIEE"[^>]*>', karim, re.S)
    assert visit is not None
    assert "q-from-13 q-span-4" in visit.group(1)
    assert 'data-label="rendez-vous lun. 7 déc. à 10 h 00"' in visit.group(0)
    assert f'data-start="{int(NOW.timestamp() * 1000) + 2 * 3600_000}"' in visit.group(0)
    assert 'title="D-PLANIFIEE · 10 h 00 – 11 h 00 · rendez-vous lun. 7 déc. à 10 h 00 · PLB-FUITE' in karim
    assert '<span class="board-visit-when">10 h 00</span>' in karim  # the start alone fits on an hour
    # Another day: nothing for Karim.
    html = client.get(f"{BOARD}?jour=2026-12-08").content.decode()
    assert "D-PLANIFIEE" not in row(html, technician)


def test_a_day_that_is_not_one_is_said_and_today_shown(client, supervisor, backlog):
    client.force_login(supervisor)
    response = client.get(f"{BOARD}?jour=le-7")
    assert response.status_code == HTTPStatus.OK
    assert "« le-7 » n&#x27;est pas une date" in response.content.decode()
    assert "lundi 7 décembre 2026" in response.content.decode()


def test_the_backlog_lists_what_to_plan_the_most_urgent_first(client, supervisor, backlog):
    client.force_login(supervisor)
    section = backlog_section(client.get(BOARD).content.decode())
    assert listed(section) == ["B-MARDI", "A-MERCREDI", "C-SANS-ECHEANCE"]
    assert "échéance <strong>mar. 8 déc. à 8 h 00</strong>" in section
    assert 'data-minutes="60"' in section and 'data-due-label="mar. 8 déc. à 8 h 00"' in section
    assert '<span class="count" id="backlog-count">3</span>' in section


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("q=évier", ["B-MARDI", "A-AUTRE-CODE", "C-SANS-ECHEANCE"]),
        ("q=palière", ["A-MERCREDI"]),
        ("echeance=2026-12-08", ["B-MARDI"]),
        ("echeance=2026-12-09", ["B-MARDI", "A-MERCREDI"]),
        ("criticite=3", ["B-MARDI"]),
        ("manque=technicien", ["B-MARDI", "A-MERCREDI", "A-AUTRE-CODE"]),
        ("manque=date", ["C-SANS-ECHEANCE"]),
        ("code=PLB-FUITE", ["B-MARDI", "A-MERCREDI", "C-SANS-ECHEANCE"]),
        ("code=AUTRE&manque=technicien", ["A-AUTRE-CODE"]),
        ("", ["B-MARDI", "A-MERCREDI", "A-AUTRE-CODE", "C-SANS-ECHEANCE"]),
    ],
)
def test_the_backlog_is_filtered(client, supervisor, backlog, contract, asset, query, expected):
    other = ServiceCode.objects.create(contract=contract, code="AUTRE", label="Serrurerie")
    factories.register_order(contract, reference="A-AUTRE-CODE", asset=asset, service_code=other)
    Order.objects.filter(reference="A-AUTRE-CODE").update(due_at=NOW + timedelta(days=30))
    client.force_login(supervisor)
    html = client.get(f"{BOARD}?{query}").content.decode()
    assert listed(backlog_section(html)) == expected
    assert re.search(r'<option value="AUTRE"( selected)?>AUTRE – Serrurerie</option>', html)


def test_the_backlog_is_filtered_by_client(client, supervisor, backlog, asset):
    other_client = factories.make_client(name="Foncière Lorraine")
    other_contract = factories.make_contract(other_client, reference="AUTRE-2025")
    factories.register_order(other_contract, reference="CHEZ-LORRAINE")
    client.force_login(supervisor)
    html = client.get(BOARD).content.decode()
    assert f'<option value="{other_client.pk}">Foncière Lorraine</option>' in html
    assert listed(backlog_section(client.get(f"{BOARD}?client={other_client.pk}").content.decode())) == [
        "CHEZ-LORRAINE"
    ]


def test_a_filter_that_cannot_be_read_is_ignored_and_said(client, supervisor, backlog):
    client.force_login(supervisor)
    html = client.get(f"{BOARD}?criticite=9&q=palière").content.decode()
    assert "Filtre « Criticité » ignoré" in html
    assert listed(backlog_section(html)) == ["A-MERCREDI"]


def test_htmx_filters_get_the_backlog_list_alone(client, supervisor, backlog):
    client.force_login(supervisor)
    response = client.get(f"{BOARD}?manque=date", headers={"HX-Request": "true"})
    html = response.content.decode()
    assert html.lstrip().startswith('<div class="backlog-scroll" id="backlog-list">')
    assert listed(html) == ["C-SANS-ECHEANCE"]
    assert "board-row" not in html
    assert "HX-Request" in response["Vary"]


def test_the_board_reads_a_constant_number_of_queries(
    client, supervisor, backlog, contract, asset, django_assert_max_num_queries
):
    for number in range(10):
        factories.register_order(contract, reference=f"EN-PLUS-{number}", asset=asset)
    client.force_login(supervisor)
    client.get(BOARD)
    with django_assert_max_num_queries(12):
        client.get(BOARD)


# --- The check before saving ---------------------------------------------------------


def check(client, order, technician, when, minutes=""):
    data = {
        "commande": order.pk,
        "technician": technician.pk if technician else "",
        "appointment": when,
        "visit_minutes": minutes,
    }
    return client.get(CHECK, data).content.decode()


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
    # 8:30 for 95 minutes (typed in the form) runs into 10:00.
    assert "Aucun conflit" in check(client, backlog["tuesday"], technician, "2026-12-07T08:30")
    assert "Chevauche D-PLANIFIEE" in check(client, backlog["tuesday"], technician, "2026-12-07T08:30", 95)


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
    # The board shows the durations: B-MARDI's 30 minutes in the backlog, D-PLANIFIEE over 10 quarters.
    html = client.get(BOARD).content.decode()
    assert re.search(r'data-reference="B-MARDI" data-minutes="30"', html)
    assert "q-from-13 q-span-10" in row(html, technician)


# --- Saving: a drop (htmx) or the plain form -------------------------------------------


def plan(client, order, technician, when, *, htmx=False, **extra):
    data = {"commande": order.pk, "technician": technician.pk, "appointment": when, "jour": "2026-12-07", **extra}
    headers = {"HX-Request": "true"} if htmx else {}
    return client.post(PLAN, data, headers=headers)


def test_a_drop_is_saved_and_answered_with_the_row_and_the_backlog_less_the_order(
    client, supervisor, technician, backlog
):
    client.force_login(supervisor)
    order = backlog["tuesday"]
    response = plan(client, order, technician, "2026-12-07T14:00", htmx=True, visit_minutes="90")
    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert html.lstrip().startswith('<div class="board-status is-ok" id="board-status"')
    assert "Commande B-MARDI : Technicien : Karim Haddad" in html
    assert "Rendez-vous fixé le lun. 7 déc. 2026 à 14:00" in html or "Rendez-vous fixé le" in html
    # Out of band: Karim's row with the new visit (14:00 for 1 h 30), the order out of the backlog, the count.
    karim = row(html, technician)
    assert 'data-hx-swap-oob="true"' in karim and "B-MARDI" in karim and "14 h 00 – 15 h 30" in karim
    assert f'<li id="a-planifier-{order.pk}" data-hx-swap-oob="delete"></li>' in html
    assert '<span class="count" id="backlog-count" data-hx-swap-oob="true">2</span>' in html
    order.refresh_from_db()
    assert (order.technician, order.state, order.visit_minutes) == (technician, State.PLANNED, 90)
    assert order.appointment_at == datetime(2026, 12, 7, 14, 0, tzinfo=PARIS)
    assert "B-MARDI" not in backlog_section(client.get(BOARD).content.decode())


def test_a_drop_on_another_day_than_the_board_s_answers_without_a_row(client, supervisor, technician, backlog):
    client.force_login(supervisor)
    response = plan(client, backlog["tuesday"], technician, "2026-12-08T07:00", htmx=True)
    html = response.content.decode()
    assert "board-row" not in html and "is-ok" in html


def test_a_conflict_found_when_saving_needs_a_confirmation(client, supervisor, technician, backlog):
    client.force_login(supervisor)
    order = backlog["tuesday"]
    response = plan(client, order, technician, "2026-12-07T10:30", htmx=True)
    html = response.content.decode()
    assert 'class="board-status is-error"' in html
    assert "rien n&#x27;a été enregistré. Cochez « Planifier malgré les alertes » pour confirmer." in html
    assert "Chevauche D-PLANIFIEE" in html
    assert "data-hx-swap-oob" not in html
    assert Order.objects.get(pk=order.pk).technician_id is None
    # Confirmed: saved, overlapping.
    html = plan(client, order, technician, "2026-12-07T10:30", htmx=True, force="on").content.decode()
    assert "is-ok" in html and "plan-conflict-count" in row(html, technician)
    assert Order.objects.get(pk=order.pk).technician_id == technician.pk


def test_the_plain_form_assigns_and_schedules_then_goes_back_to_the_board(client, supervisor, technician, backlog):
    client.force_login(supervisor)
    order = backlog["tuesday"]
    response = plan(client, order, technician, "2026-12-07T14:00")
    assert response.status_code == HTTPStatus.FOUND
    assert response.url == "/pilotage/repartition/?jour=2026-12-07#tableau"
    html = client.get(response.url).content.decode()
    assert "Commande B-MARDI : Technicien : Karim Haddad" in html
    assert "B-MARDI" not in backlog_section(html) and "B-MARDI" in row(html, technician)


def test_the_plain_form_with_a_warning_shows_the_board_again_with_what_was_chosen(
    client, supervisor, technician, backlog
):
    client.force_login(supervisor)
    response = plan(client, backlog["tuesday"], technician, "2026-12-07T10:30")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    html = response.content.decode()
    assert "Chevauche D-PLANIFIEE" in html and "Planifier malgré les alertes" in html
    assert 'value="2026-12-07T10:30"' in html
    assert f'<option value="{technician.pk}" selected>' in html


def test_planning_without_choosing_an_order_or_a_technician_says_so(client, supervisor, technician, backlog):
    client.force_login(supervisor)
    html = client.post(PLAN, {"technician": technician.pk, "appointment": "2026-12-07T14:00"}).content.decode()
    assert "Choisissez la commande à planifier dans la liste." in html
    html = client.post(PLAN, {"commande": backlog["tuesday"].pk, "appointment": "2026-12-07T14:00"}).content.decode()
    assert "Commande B-MARDI : Choisissez le technicien." in html
    data = {"commande": backlog["tuesday"].pk, "technician": technician.pk, "appointment": "2026-12-07T14:00"}
    html = client.post(PLAN, {**data, "visit_minutes": "2"}).content.decode()
    assert "La durée d&#x27;une visite va de 5 minutes à 24 heures." in html


def test_a_past_slot_is_refused_by_the_service(client, supervisor, technician, backlog):
    client.force_login(supervisor)
    html = plan(client, backlog["wednesday"], technician, "2026-12-07T07:00", htmx=True, force="on").content.decode()
    assert "rien n&#x27;a été modifié" in html and "déjà passé" in html
    assert Order.objects.get(pk=backlog["wednesday"].pk).technician_id is None


def test_a_duration_typed_for_an_order_is_kept_and_the_code_s_clears_it(client, supervisor, technician, backlog):
    client.force_login(supervisor)
    order = backlog["undated"]  # Karim's, without a date
    plan(client, order, technician, "2026-12-07T14:00", htmx=True, visit_minutes="45")
    order.refresh_from_db()
    assert order.visit_minutes == 45
    assert OrderEvent.objects.filter(
        order=order, kind="visit_length", label="Durée de la visite : 45\u00a0min"
    ).exists()
    plan(client, order, technician, "2026-12-07T14:00", htmx=True, visit_minutes="60")  # the code's hour
    order.refresh_from_db()
    assert order.visit_minutes is None


def test_the_overview_counts_the_orders_nobody_is_assigned_to(client, supervisor, backlog):
    client.force_login(supervisor)
    html = client.get("/pilotage/").content.decode()
    assert '<a href="/pilotage/repartition/?manque=technicien"><strong>2</strong> non affectées</a>' in html


def test_the_week_links_each_day_to_its_board_and_counts_the_backlog(client, supervisor, backlog):
    client.force_login(supervisor)
    html = client.get("/pilotage/planning/").content.decode()
    assert 'href="/pilotage/repartition/?jour=2026-12-08"' in html
    assert "À planifier : 3 commandes" in html


def test_technicians_and_strangers_cannot_see_check_or_plan(client, technician, backlog):
    check_url = f"{CHECK}?commande={backlog['tuesday'].pk}"
    data = {"commande": backlog["tuesday"].pk, "technician": technician.pk, "appointment": "2026-12-07T14:00"}
    for url in (BOARD, check_url):
        assert client.get(url).status_code == HTTPStatus.FOUND  # to the sign-in page
    assert client.post(PLAN, data).status_code == HTTPStatus.FOUND
    client.force_login(technician)
    for url in (BOARD, check_url):
        assert client.get(url).status_code == HTTPStatus.FORBIDDEN
    assert client.post(PLAN, data).status_code == HTTPStatus.FORBIDDEN
    assert Order.objects.get(pk=backlog["tuesday"].pk).appointment_at is None
