"""Moving a visit already on the dispatch board (issue 16, items 3 and 9): to
another time or another technician, by a drop (htmx) or the form beside the
backlog (« Visite à déplacer », keyboard and no JavaScript). Moving an
appointment is a reschedule: a reason is required and relayed to the platform
in the log's description; given to another technician, the new one is told and
the old one loses it. Checked again when saving (overlaps never with itself,
due date, past times, the state machine); answered with the rows it left and
went to; supervisors and office only."""

from __future__ import annotations

import functools
import re
from datetime import datetime, timedelta
from html import unescape
from http import HTTPStatus

import pytest
import time_machine

from orders import tasks
from orders.models import Order, OrderEvent
from orders.states import State
from portal.relay.models import OutboxMessage
from tests import factories
from tests.conftest import PARIS

NOW = datetime(2026, 12, 7, 8, 0, tzinfo=PARIS)  # Monday
BOARD = "/pilotage/repartition/?jour=2026-12-07"
PLAN = "/pilotage/repartition/planifier/"
CHECK = "/pilotage/repartition/verifier/"


@pytest.fixture(autouse=True)
def now():
    with time_machine.travel(NOW, tick=False):
        yield NOW


@pytest.fixture
def visits(contract, asset, service_code, technician, other_technician, outbox_connection):
    """Monday: Karim has KARIM-10H at 10:00 (an hour, its code's) and KARIM-EN-COURS
    begun at 8:00; Lucie has LUCIE-15H at 15:00. Due on Friday."""

    def planned(reference, who, hour, state=State.PLANNED):
        order = factories.register_order(
            contract, reference=reference, asset=asset, service_code=service_code, technician=who
        )
        return factories.bring_to(order, state, who, appointment=NOW.replace(hour=hour))

    made = {
        "karim": planned("KARIM-10H", technician, 10),
        "started": planned("KARIM-EN-COURS", technician, 8, State.IN_PROGRESS),
        "lucie": planned("LUCIE-15H", other_technician, 15),
    }
    Order.objects.filter(pk__in=[order.pk for order in made.values()]).update(due_at=NOW + timedelta(days=4))
    return made


def move(client, order, technician, when, *, htmx=True, **extra):
    data = {"visite": order.pk, "technician": technician.pk, "appointment": when, "jour": "2026-12-07", **extra}
    return client.post(PLAN, data, headers={"HX-Request": "true"} if htmx else {})


def row(html: str, technician) -> str:
    start = html.index(f'id="board-row-{technician.pk}"')
    end = html.find('<div class="board-row', start)
    return html[start : end if end != -1 else len(html)]


def last_plan(order) -> OrderEvent:
    return OrderEvent.objects.filter(order=order, kind="plan").latest("pk")


def marks(client) -> dict[str, str]:
    """The technician's list: each order's mark (« nouveau », « modifié » or nothing)."""
    html = client.get("/mes-commandes/").content.decode()
    found = {}
    for card in re.findall(r'<a class="order-card.*?</a>', html, re.S):
        reference = re.search(r'<strong class="reference">([^<]+)</strong>', card).group(1)
        news = re.search(r'<span class="badge badge-news">([^<]+)</span>', card)
        found[reference] = news.group(1) if news else ""
    return found


# --- The board shows what can be moved ------------------------------------------------


def test_the_board_marks_the_visits_that_can_be_moved_and_lists_them_in_the_form(
    client, supervisor, technician, visits
):
    client.force_login(supervisor)
    html = client.get(BOARD).content.decode()
    karim = row(html, technician)
    movable = re.search(r'<a class="board-visit[^"]*"[^>]*data-reference="KARIM-10H"[^>]*>', karim).group(0)
    assert 'data-movable draggable="false"' in movable and "data-replan" in movable
    assert 'data-due-label="ven. 11 déc. à 8 h 00"' in movable
    started = re.search(r'<a class="board-visit[^"]*"[^>]*data-reference="KARIM-EN-COURS"[^>]*>', karim).group(0)
    assert "data-movable" not in started
    # The form's « Visite à déplacer »: the visits not begun, by technician.
    assert re.search(
        rf'<optgroup label="Karim Haddad"><option value="{visits["karim"].pk}">KARIM-10H · 10 h 00 – 11 h 00</option>'
        r"</optgroup>",
        html,
    )
    select = re.search(r'<select name="visite" id="dispatch-visit">.*?</select>', html, re.S).group(0)
    assert "KARIM-10H" in select and "KARIM-EN-COURS" not in select
    assert '<label for="id_reason">Motif du report</label>' in html


# --- Moving, with the reason ---------------------------------------------------------------


def test_a_visit_moved_in_its_row_needs_a_reason_relayed_to_the_platform(client, supervisor, technician, visits):
    client.force_login(supervisor)
    order = visits["karim"]
    response = move(client, order, technician, "2026-12-07T14:00", reason="  Occupant  absent le matin ")
    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert 'class="board-status is-ok"' in html
    assert "Rendez-vous reporté au lun. 7 déc. à 14 h 00 (motif : Occupant absent le matin)" in unescape(html)
    # Karim's row drawn again, once, with the visit at 14:00; nothing taken out of the backlog.
    assert html.count('class="board-row') == 1
    assert 'data-hx-swap-oob="true"' in row(html, technician) and "14 h 00 – 15 h 00" in row(html, technician)
    assert "a-planifier-" not in html
    order.refresh_from_db()
    assert (order.technician, order.state) == (technician, State.PLANNED)
    assert order.appointment_at == datetime(2026, 12, 7, 14, 0, tzinfo=PARIS)
    event = last_plan(order)
    assert event.data["reason"] == "Occupant absent le matin" and event.data["replanned"] is True
    message = OutboxMessage.objects.get(event=event)
    assert "(motif : Occupant absent le matin)" in message.payload["description"]
    assert message.payload["event"] == "replanned"


def test_a_visit_moved_to_another_technician_redraws_both_rows_and_tells_them(
    client, supervisor, technician, other_technician, visits, django_capture_on_commit_callbacks, mailoutbox
):
    order = visits["karim"]
    client.force_login(supervisor)
    with django_capture_on_commit_callbacks() as callbacks:
        response = move(client, order, other_technician, "2026-12-07T14:00", reason="Karim malade")
    html = response.content.decode()
    assert "Commande KARIM-10H : Technicien : Lucie Moreau ; Rendez-vous reporté au lun. 7 déc. à 14 h 00" in html
    # The row it left (without it) and the row it went to (with it).
    assert html.count('class="board-row') == 2
    assert "KARIM-10H" not in row(html, technician) and "KARIM-EN-COURS" in row(html, technician)
    assert "KARIM-10H" in row(html, other_technician) and "LUCIE-15H" in row(html, other_technician)
    order.refresh_from_db()
    assert order.technician == other_technician
    assert "(motif : Karim malade)" in OutboxMessage.objects.get(event=last_plan(order)).payload["description"]
    # Lucie is told, as every assignment from the planning tells the new technician.
    told = [callback for callback in callbacks if isinstance(callback, functools.partial)]
    assert [(callback.func, callback.args[0]) for callback in told] == [(tasks.tell_technician.delay, order.pk)]
    tasks.tell_technician(*told[0].args)
    assert [email.to for email in mailoutbox] == [[other_technician.email]]
    # Lucie's list shows it as new, Karim's no longer has it.
    client.force_login(other_technician)
    assert marks(client)["KARIM-10H"] == "nouveau"
    client.force_login(technician)
    assert "KARIM-10H" not in marks(client)


def test_given_to_another_technician_at_the_same_time_it_is_no_reschedule(
    client, supervisor, technician, other_technician, visits
):
    client.force_login(supervisor)
    order = visits["karim"]
    html = move(client, order, other_technician, "2026-12-07T10:00").content.decode()
    assert "Commande KARIM-10H : Technicien : Lucie Moreau." in html
    assert html.count('class="board-row') == 2
    order.refresh_from_db()
    assert order.technician == other_technician
    assert not OrderEvent.objects.filter(order=order, kind="plan", data__replanned=True).exists()


@pytest.mark.parametrize("reason", ["", "   "])
def test_moving_a_visit_without_a_reason_is_refused_in_french(client, supervisor, technician, visits, reason):
    client.force_login(supervisor)
    order = visits["karim"]
    html = unescape(move(client, order, technician, "2026-12-07T14:00", reason=reason).content.decode())
    assert 'class="board-status is-error"' in html
    assert (
        "Commande KARIM-10H : rien n'a été enregistré. Indiquez le motif du report : "
        "il est transmis au client avec le nouveau rendez-vous." in html
    )
    assert "data-hx-swap-oob" not in html
    # Without JavaScript: the board again, the visit still chosen, nothing saved.
    response = move(client, order, technician, "2026-12-07T14:00", htmx=False, reason=reason)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert f'<option value="{order.pk}" selected>KARIM-10H' in response.content.decode()
    order.refresh_from_db()
    assert order.appointment_at == datetime(2026, 12, 7, 10, 0, tzinfo=PARIS)


def test_the_check_says_the_reason_is_asked_and_never_compares_a_visit_with_itself(
    client, supervisor, technician, visits
):
    client.force_login(supervisor)
    order = visits["karim"]
    data = {"visite": order.pk, "technician": technician.pk}
    # 10:30 overlaps where it is now: that is no conflict, it is moving.
    html = unescape(client.get(CHECK, {**data, "appointment": "2026-12-07T10:30"}).content.decode())
    assert "Aucun conflit" in html
    assert "Ce rendez-vous est déplacé : indiquez le motif du report." in html
    # At the same time for the same technician there is nothing to report.
    html = client.get(CHECK, {**data, "appointment": "2026-12-07T10:00"}).content.decode()
    assert "motif" not in html
    html = move(client, order, technician, "2026-12-07T10:30", reason="Trajet").content.decode()
    assert "is-ok" in html and "plan-conflict-count" not in html


def test_a_move_onto_another_visit_needs_a_confirmation(client, supervisor, technician, other_technician, visits):
    client.force_login(supervisor)
    order = visits["karim"]
    html = move(client, order, other_technician, "2026-12-07T14:30", reason="Karim malade").content.decode()
    assert "rien n&#x27;a été enregistré. Cochez « Planifier malgré les alertes » pour confirmer." in html
    assert "Chevauche LUCIE-15H (rendez-vous lun. 7 déc. à 15 h 00) de Lucie Moreau." in html
    assert "data-hx-swap-oob" not in html
    assert Order.objects.get(pk=order.pk).technician == technician
    html = move(client, order, other_technician, "2026-12-07T14:30", reason="Karim malade", force="on").content.decode()
    assert "is-ok" in html and "plan-conflict-count" in row(html, other_technician)
    assert Order.objects.get(pk=order.pk).technician == other_technician


def test_a_move_after_the_due_date_needs_a_confirmation(client, supervisor, technician, visits):
    client.force_login(supervisor)
    order = visits["karim"]
    html = unescape(move(client, order, technician, "2026-12-11T09:00", reason="Pièce en commande").content.decode())
    assert "Après l'échéance du ven. 11 déc. à 8 h 00." in html and "is-error" in html
    assert Order.objects.get(pk=order.pk).appointment_at == datetime(2026, 12, 7, 10, 0, tzinfo=PARIS)


def test_a_past_time_is_refused(client, supervisor, technician, visits):
    client.force_login(supervisor)
    html = unescape(
        move(client, visits["karim"], technician, "2026-12-07T07:00", reason="Plus tôt", force="on").content.decode()
    )
    assert "rien n'a été modifié" in html and "ce rendez-vous est déjà passé" in html
    assert Order.objects.get(pk=visits["karim"].pk).appointment_at == datetime(2026, 12, 7, 10, 0, tzinfo=PARIS)


@pytest.mark.parametrize(("state", "label"), [(State.IN_PROGRESS, "En cours"), (State.FINISHED, "Terminé")])
def test_an_order_begun_or_finished_is_not_moved(
    client, supervisor, technician, visits, contract, asset, service_code, state, label
):
    order = factories.register_order(
        contract, reference="COMMENCEE", asset=asset, service_code=service_code, technician=technician
    )
    factories.bring_to(order, state, technician, appointment=NOW.replace(hour=9))
    client.force_login(supervisor)
    response = move(client, order, technician, "2026-12-07T16:00", reason="Plus tard", force="on")
    assert response.status_code == HTTPStatus.OK
    html = unescape(response.content.decode())
    assert (
        f"Commande COMMENCEE : rien n'a été modifié. Elle est à l'état « {label} » : "
        "une intervention commencée ou terminée ne se déplace plus." in html
    )
    order.refresh_from_db()
    assert (order.state, order.appointment_at) == (state, datetime(2026, 12, 7, 9, 0, tzinfo=PARIS))


def test_choosing_both_an_order_to_plan_and_a_visit_is_refused(
    client, supervisor, technician, visits, contract, asset, service_code
):
    waiting = factories.register_order(contract, reference="A-PLANIFIER", asset=asset, service_code=service_code)
    client.force_login(supervisor)
    html = unescape(
        move(client, visits["karim"], technician, "2026-12-07T14:00", commande=waiting.pk, reason="X").content.decode()
    )
    assert "Choisissez soit une commande à planifier, soit une visite à déplacer, pas les deux." in html
    assert Order.objects.get(pk=visits["karim"].pk).appointment_at == NOW.replace(hour=10)


def test_a_planned_order_taken_from_its_technician_asks_a_reason_when_dropped_elsewhere(
    client, supervisor, technician, visits
):
    """It is in the backlog (nobody's) with its appointment: a new time moves it."""
    order = visits["lucie"]
    Order.objects.filter(pk=order.pk).update(technician=None)
    client.force_login(supervisor)
    html = client.get(BOARD).content.decode()
    item = re.search(r'<li class="backlog-item[^>]*data-reference="LUCIE-15H"[^>]*>', html).group(0)
    assert f'data-replan data-appointment="{int(order.appointment_at.timestamp() * 1000)}"' in item
    data = {"commande": order.pk, "technician": technician.pk, "jour": "2026-12-07"}
    html = unescape(client.post(PLAN, {**data, "appointment": "2026-12-07T16:00"}).content.decode())
    assert "Indiquez le motif du report" in html
    # At its own time it is only given to a technician: no reason.
    response = client.post(PLAN, {**data, "appointment": "2026-12-07T15:00"}, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert "is-ok" in html and f'<li id="a-planifier-{order.pk}" data-hx-swap-oob="delete"></li>' in html


def test_the_plain_form_moves_a_visit_then_goes_back_to_the_board(
    client, supervisor, technician, other_technician, visits
):
    client.force_login(supervisor)
    response = move(client, visits["karim"], other_technician, "2026-12-07T12:00", htmx=False, reason="Karim malade")
    assert response.status_code == HTTPStatus.FOUND
    html = unescape(client.get(response.url).content.decode())
    assert "Commande KARIM-10H : Technicien : Lucie Moreau ; Rendez-vous reporté au lun. 7 déc. à 12 h 00" in html
    assert "KARIM-10H" in row(html, other_technician) and "KARIM-10H" not in row(html, technician)


def test_a_move_reads_a_bounded_number_of_queries(
    client,
    supervisor,
    technician,
    other_technician,
    visits,
    contract,
    asset,
    service_code,
    django_assert_max_num_queries,
):
    """However many visits the two rows hold (they are read in one query)."""
    for hour in (16, 17):
        for who in (technician, other_technician):
            extra = factories.register_order(
                contract, reference=f"EN-PLUS-{who.pk}-{hour}", asset=asset, service_code=service_code, technician=who
            )
            factories.bring_to(extra, State.PLANNED, who, appointment=NOW.replace(hour=hour))
    client.force_login(supervisor)
    client.get(BOARD)
    # 4 of the board (the visit, the check, the two rows, the backlog's count), the rest the
    # services' (the assignment and the replanning, each with its relayed log): 42 when written.
    with django_assert_max_num_queries(45):
        html = move(client, visits["karim"], other_technician, "2026-12-07T12:00", reason="Karim malade").content
    assert b"is-ok" in html and html.count(b'class="board-row') == 2


def test_technicians_and_strangers_cannot_move_a_visit(client, technician, other_technician, visits):
    order = visits["karim"]
    assert move(client, order, technician, "2026-12-07T14:00", reason="x").status_code == HTTPStatus.FOUND
    for who in (technician, other_technician):
        client.force_login(who)
        assert move(client, order, technician, "2026-12-07T14:00", reason="x").status_code == HTTPStatus.FORBIDDEN
        assert client.get(CHECK, {"visite": order.pk}).status_code == HTTPStatus.FORBIDDEN
    order.refresh_from_db()
    assert (order.technician, order.appointment_at) == (technician, NOW.replace(hour=10))
