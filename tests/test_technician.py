"""The technician's pages: their orders, one order, and the actions on it, as
plain forms and with htmx."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal
from http import HTTPStatus

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orders import planning, receiving, services
from orders.models import Order, OrderEvent
from orders.states import State
from portal.models import Asset
from tests import factories
from tests.conftest import PARIS

# The fixture's order is due on Monday 23 November 2026 at 9:30; it is now Tuesday.
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=PARIS)
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def now():
    with time_machine.travel(NOW, tick=False):
        yield NOW


@pytest.fixture
def signed_in(client, technician):
    client.force_login(technician)
    return client


def an_order(contract, technician, reference: str, **fields) -> Order:
    """The list only reads orders: they are made directly, in the state each test needs."""
    return factories.an_order(contract, reference, technician=technician, **fields)


def bring_to(order: Order, state: State, actor) -> Order:
    """Walk the order through the services up to `state`, an hour ago (the appointment in two hours)."""
    return factories.bring_to(order, state, actor, at=NOW - timedelta(hours=1), appointment=NOW + timedelta(hours=2))


def last_event(order: Order) -> OrderEvent:
    return order.events.order_by("-recorded_at", "-pk").first()


# --- My orders -------------------------------------------------------------------


def test_my_orders_reads_today_then_to_acknowledge_then_the_rest_then_recently_finished(
    signed_in, contract, technician
):
    an_order(contract, technician, "OTHER-LATER", state=State.PLANNED, appointment_at=NOW + timedelta(days=2))
    an_order(
        contract,
        technician,
        "FINISHED-YESTERDAY",
        state=State.FINISHED,
        actual_start=NOW - timedelta(days=2),
        actual_end=NOW - timedelta(days=1),
    )
    an_order(contract, technician, "TODAY-AFTERNOON", state=State.PLANNED, appointment_at=NOW + timedelta(hours=5))
    an_order(contract, technician, "TO-ACK", state=State.TO_ACKNOWLEDGE)
    an_order(contract, technician, "OTHER-STARTED", state=State.IN_PROGRESS, actual_start=NOW - timedelta(days=1))
    an_order(contract, technician, "TODAY-MORNING", state=State.ACKNOWLEDGED, appointment_at=NOW - timedelta(hours=2))
    an_order(
        contract,
        technician,
        "TODAY-PERIOD",
        state=State.PLANNED,
        planned_start=NOW - timedelta(hours=1),
        planned_end=NOW + timedelta(days=2),
    )
    an_order(
        contract,
        technician,
        "FINISHED-LONG-AGO",
        state=State.FINISHED,
        actual_start=NOW - timedelta(days=9),
        actual_end=NOW - timedelta(days=8),
    )
    an_order(contract, technician, "CANCELLED", state=State.CANCELLED, cancel_reason="Doublon")

    html = signed_in.get("/mes-commandes/").content.decode()

    listed = [
        "TODAY-MORNING",
        "TODAY-PERIOD",
        "TODAY-AFTERNOON",
        "TO-ACK",
        "OTHER-STARTED",
        "OTHER-LATER",
        "FINISHED-YESTERDAY",
    ]
    positions = [html.index(reference) for reference in listed]
    assert positions == sorted(positions)
    assert html.index("Aujourd&#x27;hui") < html.index("TODAY-MORNING")
    assert html.index("À prendre en compte <span") < html.index("TO-ACK")
    assert html.index("Terminées ces 7 derniers jours") < html.index("FINISHED-YESTERDAY")
    assert "FINISHED-LONG-AGO" not in html
    assert "CANCELLED" not in html


def test_a_card_shows_the_reference_address_occupant_time_and_state(signed_in, order, technician):
    services.acknowledge_order(order, actor=technician)
    planning.plan_order(order, actor=technician, appointment=datetime(2026, 11, 24, 14, 30, tzinfo=PARIS))

    html = signed_in.get("/mes-commandes/").content.decode()

    assert f'href="/commandes/{order.pk}/"' in html
    assert "OPH57_241122093015" in html
    assert "14 rue des Tilleuls, 57000 Metz" in html
    assert "Mme Claire Martin" in html
    assert "Rendez-vous mar. 24 nov. à 14 h 30" in html
    assert '<span class="badge state-planned">Planifié</span>' in html


def test_an_order_past_its_due_date_and_not_finished_is_marked_late(signed_in, contract, technician):
    an_order(contract, technician, "LATE-1", state=State.IN_PROGRESS, due_at=NOW - timedelta(hours=1))
    an_order(contract, technician, "ON-TIME-1", state=State.IN_PROGRESS, due_at=NOW + timedelta(hours=1))
    an_order(
        contract,
        technician,
        "DONE-LATE-1",
        state=State.FINISHED,
        due_at=NOW - timedelta(days=2),
        actual_start=NOW - timedelta(days=3),
        actual_end=NOW - timedelta(days=1),
    )

    html = signed_in.get("/mes-commandes/").content.decode()

    cards = {card.split("</strong>")[0].rsplit(">", 1)[1]: card for card in html.split('<a class="order-card')[1:]}
    assert "En retard" in cards["LATE-1"]
    assert "is-late" in cards["LATE-1"]
    assert "En retard" not in cards["ON-TIME-1"]
    assert "En retard" not in cards["DONE-LATE-1"]


def test_the_search_finds_orders_by_reference_or_address(signed_in, contract, client_org, technician):
    elsewhere = Asset.objects.create(
        client=client_org, reference="LGT-9", label="Logement 9", address="2 place Saint-Louis", city="Metz"
    )
    an_order(contract, technician, "OPH-111")
    an_order(contract, technician, "OPH-222", asset=elsewhere)

    by_reference = signed_in.get("/mes-commandes/?q=111").content.decode()
    by_address = signed_in.get("/mes-commandes/", {"q": "saint-louis metz"}).content.decode()

    assert "OPH-111" in by_reference
    assert "OPH-222" not in by_reference
    assert "1 commande pour « 111 »" in by_reference
    assert "OPH-222" in by_address
    assert "OPH-111" not in by_address
    assert 'value="saint-louis metz"' in by_address


@pytest.mark.parametrize(("query", "found"), [("%", []), ("_", []), ("OPH'", []), ("OPH\x00", ["OPH-111"])])
def test_the_search_takes_odd_words_literally_and_ignores_what_it_cannot_read(
    signed_in, contract, technician, query, found
):
    an_order(contract, technician, "OPH-111")

    response = signed_in.get("/mes-commandes/", {"q": query})

    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert ("OPH-111" in html) == bool(found)


def test_the_search_with_htmx_answers_with_the_list_only(signed_in, contract, technician):
    an_order(contract, technician, "OPH-111")

    response = signed_in.get("/mes-commandes/?q=OPH", **HTMX)

    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="order-list"')
    assert "OPH-111" in html
    assert "<html" not in html
    assert "HX-Request" in response["Vary"]


def test_the_search_form_works_without_javascript(signed_in):
    html = signed_in.get("/mes-commandes/").content.decode()
    assert '<form method="get" action="/mes-commandes/"' in html
    assert 'name="q"' in html


def test_a_search_that_finds_nothing_says_so_in_french(signed_in, order):
    html = signed_in.get("/mes-commandes/?q=introuvable").content.decode()
    assert "Aucune commande ne correspond à cette recherche." in html


def queries_for(client, url: str) -> int:
    with CaptureQueriesContext(connection) as context:
        response = client.get(url)
    assert response.status_code == HTTPStatus.OK
    return len(context.captured_queries)


def many_orders(contract, asset, technician, count: int, start: int = 0) -> None:
    states = [State.TO_ACKNOWLEDGE, State.ACKNOWLEDGED, State.PLANNED, State.IN_PROGRESS, State.SUSPENDED]
    Order.objects.bulk_create(
        factories.build_order(
            contract,
            f"BULK-{number}",
            technician=technician,
            asset=asset,
            state=states[number % len(states)],
            due_at=NOW + timedelta(hours=number - 250),
            appointment_at=NOW + timedelta(hours=number % 30) if number % 2 else None,
        )
        for number in range(start, start + count)
    )


def test_my_orders_takes_as_many_queries_for_500_orders_as_for_10(signed_in, contract, asset, technician):
    many_orders(contract, asset, technician, 10)
    with_10 = queries_for(signed_in, "/mes-commandes/")
    many_orders(contract, asset, technician, 490, start=10)
    with_500 = queries_for(signed_in, "/mes-commandes/")
    assert with_500 == with_10
    assert signed_in.get("/mes-commandes/").content.decode().count('<a class="order-card') == 500


def test_the_order_page_takes_as_many_queries_with_500_orders_and_many_lines_as_with_10(
    signed_in, order, contract, asset, technician
):
    many_orders(contract, asset, technician, 10)
    with_10 = queries_for(signed_in, f"/commandes/{order.pk}/")
    many_orders(contract, asset, technician, 490, start=10)
    services.acknowledge_order(order, actor=technician)
    for number in range(3, 23):
        receiving.add_line(order, actor=technician, reference=f"L{number}", label=f"Ligne {number}")
    with_500 = queries_for(signed_in, f"/commandes/{order.pk}/")
    assert with_500 == with_10


# --- An order ---------------------------------------------------------------------


def test_the_order_page_shows_where_who_what_the_lines_and_the_history_newest_first(signed_in, order, technician):
    services.acknowledge_order(order, actor=technician, at=NOW + timedelta(minutes=1))

    html = signed_in.get(f"/commandes/{order.pk}/").content.decode()

    assert "14 rue des Tilleuls, 57000 Metz" in html
    assert 'href="geo:0,0?q=14%20rue%20des%20Tilleuls%2C%2057000%20Metz"' in html
    assert 'href="https://www.openstreetmap.org/search?query=14%20rue%20des%20Tilleuls%2C%2057000%20Metz"' in html
    assert 'href="tel:0612345678"' in html
    assert "Mme Claire Martin" in html
    assert "Fuite sous l&#x27;évier de la cuisine" in html
    assert "PLB-FUITE – Recherche et réparation de fuite" in html
    assert "Criticité" in html
    assert "Recherche de fuite" in html
    assert "Remplacement du siphon" in html
    assert "0 / 2 réalisée" in html
    assert html.index("Commande prise en compte") < html.index("Commande reçue")


def test_the_order_page_includes_the_documents_template(signed_in, order, settings, tmp_path):
    (tmp_path / "orders").mkdir()
    (tmp_path / "orders" / "_documents.html").write_text("<p>Les documents de {{ order.reference }}</p>")
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]}]

    html = signed_in.get(f"/commandes/{order.pk}/").content.decode()

    assert "Les documents de OPH57_241122093015" in html


@pytest.mark.parametrize(
    ("state", "offered", "not_offered"),
    [
        (State.TO_ACKNOWLEDGE, ["Prendre en compte"], ["Démarrer", "Suspendre", "Terminer", "Fixer le rendez-vous"]),
        (State.ACKNOWLEDGED, ["Fixer le rendez-vous", "Démarrer les travaux"], ["Prendre en compte", "Terminer"]),
        (State.PLANNED, ["Démarrer les travaux", "Changer le rendez-vous", "Suspendre"], ["Terminer", "Reprendre"]),
        (State.IN_PROGRESS, ["Terminer les travaux", "Suspendre"], ["Démarrer", "Reprendre", "Changer le rendez-vous"]),
        (State.SUSPENDED, ["Reprendre les travaux", "Changer le rendez-vous"], ["Terminer", "Démarrer", "Suspendre"]),
        (State.FINISHED, [], ["Terminer", "Démarrer", "Suspendre", "Reprendre", "Changer le rendez-vous"]),
    ],
)
def test_the_order_page_offers_only_the_actions_its_state_allows(
    signed_in, order, technician, state, offered, not_offered
):
    bring_to(order, state, technician)

    html = signed_in.get(f"/commandes/{order.pk}/").content.decode()

    for label in offered:
        assert label in html
    for label in not_offered:
        assert f">{label}" not in html


def test_the_main_next_action_sits_in_the_bar_at_the_bottom(signed_in, order, technician):
    bring_to(order, State.PLANNED, technician)
    html = signed_in.get(f"/commandes/{order.pk}/").content.decode()
    bar = html.split('<div class="action-bar">')[1]
    assert f'action="/commandes/{order.pk}/demarrer/"' in bar
    assert "Démarrer les travaux" in bar


def test_a_finished_order_has_no_action_bar_and_read_only_progress(signed_in, order, technician):
    bring_to(order, State.FINISHED, technician)
    html = signed_in.get(f"/commandes/{order.pk}/").content.decode()
    assert '<div class="action-bar">' not in html
    assert '<progress max="100" value="100">' in html


def test_the_page_has_no_inline_script(signed_in, order):
    html = signed_in.get(f"/commandes/{order.pk}/").content.decode()
    assert "<script>" not in html
    assert " onclick=" not in html
    assert '<script src="/static/js/portal.js" defer></script>' in html


ACTIONS = [
    ("prendre-en-compte", State.TO_ACKNOWLEDGE, {}, State.ACKNOWLEDGED, "Commande prise en compte"),
    (
        "planifier",
        State.ACKNOWLEDGED,
        {"appointment": "2026-11-25T14:30"},
        State.PLANNED,
        "Rendez-vous fixé le mer. 25 nov. à 14 h 30",
    ),
    ("demarrer", State.PLANNED, {}, State.IN_PROGRESS, "Travaux démarrés le mar. 24 nov. à 10 h 00"),
    (
        "suspendre",
        State.IN_PROGRESS,
        {"reason": "occupant_absent", "note": "Personne au 3e"},
        State.SUSPENDED,
        "Intervention suspendue : occupant absent (Personne au 3e)",
    ),
    ("reprendre", State.SUSPENDED, {}, State.IN_PROGRESS, "Travaux repris"),
    ("terminer", State.IN_PROGRESS, {}, State.FINISHED, "Travaux terminés le mar. 24 nov. à 10 h 00"),
]


@pytest.mark.parametrize(("slug", "before", "data", "after", "message"), ACTIONS)
def test_each_action_as_a_plain_form_redirects_to_the_order_with_a_french_message(
    signed_in, order, technician, slug, before, data, after, message
):
    bring_to(order, before, technician)

    response = signed_in.post(f"/commandes/{order.pk}/{slug}/", data)

    assert response.status_code == HTTPStatus.FOUND
    assert response.url == f"/commandes/{order.pk}/"
    order.refresh_from_db()
    assert order.state == after
    assert last_event(order).actor == technician
    assert message in signed_in.get(response.url).content.decode()


@pytest.mark.parametrize(("slug", "before", "data", "after", "message"), ACTIONS)
def test_each_action_with_htmx_answers_with_the_orders_panel(
    signed_in, order, technician, slug, before, data, after, message
):
    bring_to(order, before, technician)

    response = signed_in.post(f"/commandes/{order.pk}/{slug}/", data, **HTMX)

    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="order-panel"')
    assert "<html" not in html
    assert message in html
    order.refresh_from_db()
    assert order.state == after


def test_a_planned_period_instead_of_an_appointment(signed_in, order, technician):
    bring_to(order, State.ACKNOWLEDGED, technician)

    response = signed_in.post(
        f"/commandes/{order.pk}/planifier/",
        {"planned_start": "2026-11-25T08:00", "planned_end": "2026-11-27T17:00"},
    )

    assert response.status_code == HTTPStatus.FOUND
    order.refresh_from_db()
    assert order.planned_start == datetime(2026, 11, 25, 8, 0, tzinfo=PARIS)
    assert order.planned_end == datetime(2026, 11, 27, 17, 0, tzinfo=PARIS)
    assert order.appointment_at is None


def test_changing_the_appointment_shows_the_current_one_and_records_a_new_one(signed_in, order, technician):
    bring_to(order, State.PLANNED, technician)
    html = signed_in.get(f"/commandes/{order.pk}/").content.decode()
    assert 'value="2026-11-24T12:00"' in html

    assert "Motif du report" in html
    signed_in.post(
        f"/commandes/{order.pk}/planifier/", {"appointment": "2026-11-26T09:00", "reason": "Pièce en commande"}
    )

    order.refresh_from_db()
    assert order.appointment_at == datetime(2026, 11, 26, 9, 0, tzinfo=PARIS)
    assert last_event(order).label == "Rendez-vous reporté au jeu. 26 nov. à 9 h 00 (motif : Pièce en commande)"


def test_a_plan_without_any_date_is_answered_in_french(signed_in, order, technician):
    bring_to(order, State.ACKNOWLEDGED, technician)

    response = signed_in.post(f"/commandes/{order.pk}/planifier/", {"appointment": ""})

    assert response.status_code == HTTPStatus.OK
    assert "Indiquez la date et l&#x27;heure du rendez-vous, ou une période de travaux." in response.content.decode()
    order.refresh_from_db()
    assert order.state == State.ACKNOWLEDGED


def test_a_period_ending_before_it_starts_is_refused_and_what_was_typed_is_kept(signed_in, order, technician):
    bring_to(order, State.ACKNOWLEDGED, technician)

    response = signed_in.post(
        f"/commandes/{order.pk}/planifier/",
        {"planned_start": "2026-11-27T08:00", "planned_end": "2026-11-25T17:00"},
    )

    html = response.content.decode()
    assert "La fin prévue doit être après le début prévu." in html
    assert 'value="2026-11-27T08:00"' in html
    assert 'value="2026-11-25T17:00"' in html


def test_a_suspension_without_a_reason_is_refused_in_french_and_keeps_the_note(signed_in, order, technician):
    bring_to(order, State.IN_PROGRESS, technician)

    response = signed_in.post(f"/commandes/{order.pk}/suspendre/", {"note": "Chauffe-eau à remplacer"}, **HTMX)

    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert "Ce champ est obligatoire." in html
    assert "Chauffe-eau à remplacer" in html
    order.refresh_from_db()
    assert order.state == State.IN_PROGRESS


def test_an_action_the_state_refuses_shows_the_french_reason_not_a_500(signed_in, order):
    response = signed_in.post(f"/commandes/{order.pk}/terminer/")

    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert "Action non enregistrée" in html
    assert "Action « Terminer les travaux » impossible : la commande est à l&#x27;état « À prendre en compte »" in html
    order.refresh_from_db()
    assert order.state == State.TO_ACKNOWLEDGE


def test_a_refusal_with_htmx_swaps_the_panel_and_scrolls_to_the_reason(signed_in, order):
    response = signed_in.post(f"/commandes/{order.pk}/demarrer/", **HTMX)

    assert response.status_code == HTTPStatus.OK
    assert response["HX-Reswap"] == "outerHTML show:window:top"
    assert "Action « Démarrer les travaux » impossible" in response.content.decode()


def test_a_change_made_meanwhile_by_someone_else_is_explained_and_the_typed_text_kept(
    signed_in, order, technician, supervisor
):
    # The technician's page still offers "Suspendre"; meanwhile the supervisor finished the works.
    bring_to(order, State.IN_PROGRESS, technician)
    services.finish_work(order, actor=supervisor)

    response = signed_in.post(
        f"/commandes/{order.pk}/suspendre/", {"reason": "quote_request", "note": "Pièce à chiffrer"}, **HTMX
    )

    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert "Action « Suspendre » impossible : la commande est à l&#x27;état « Terminé »" in html
    assert "Pièce à chiffrer" in html
    assert re.search(r'value="quote_request"[^>]*checked', html)


def test_getting_an_action_url_is_not_allowed(signed_in, order):
    assert signed_in.get(f"/commandes/{order.pk}/demarrer/").status_code == HTTPStatus.METHOD_NOT_ALLOWED


# --- The time the technician acted ------------------------------------------------------


def test_the_time_the_technician_acted_is_kept_for_the_event_and_the_order(signed_in, order, technician):
    bring_to(order, State.PLANNED, technician)

    signed_in.post(f"/commandes/{order.pk}/demarrer/", {"client_at": "2026-11-24T08:12:00+00:00"})

    order.refresh_from_db()
    acted = datetime(2026, 11, 24, 9, 12, tzinfo=PARIS)
    assert order.actual_start == acted
    assert last_event(order).at == acted


def test_a_utc_time_with_a_z_from_the_browser_is_understood(signed_in, order, technician):
    signed_in.post(f"/commandes/{order.pk}/prendre-en-compte/", {"client_at": "2026-11-24T08:59:30.125Z"})
    assert last_event(order).at == datetime(2026, 11, 24, 9, 59, 30, 125000, tzinfo=PARIS)


@pytest.mark.parametrize(
    "client_at",
    [
        "2026-11-16T10:00:00+01:00",  # 8 days ago
        "2026-11-24T10:06:00+01:00",  # 6 minutes ahead
        "2026-11-24T09:00:00",  # no offset
        "hier matin",
        "",
    ],
)
def test_a_missing_or_implausible_time_is_replaced_by_now(signed_in, order, client_at):
    response = signed_in.post(f"/commandes/{order.pk}/prendre-en-compte/", {"client_at": client_at})

    assert response.status_code == HTTPStatus.FOUND
    assert last_event(order).at == NOW


def test_every_action_form_carries_the_client_time_field(signed_in, order, technician):
    bring_to(order, State.PLANNED, technician)
    html = signed_in.get(f"/commandes/{order.pk}/").content.decode()
    assert html.count('<form method="post" action="/commandes/') == html.count('name="client_at"')


# --- Lines and progress ----------------------------------------------------------------


def test_a_line_is_marked_done_then_not_done(signed_in, order, technician):
    bring_to(order, State.IN_PROGRESS, technician)
    line = order.lines.get(reference="L1")

    response = signed_in.post(f"/commandes/{order.pk}/lignes/{line.pk}/", {"done": "True"})
    assert response.status_code == HTTPStatus.FOUND
    line.refresh_from_db()
    assert line.done
    assert line.done_at == NOW
    assert "1 / 2 réalisée" in signed_in.get(f"/commandes/{order.pk}/").content.decode()

    response = signed_in.post(f"/commandes/{order.pk}/lignes/{line.pk}/", {"done": "False"}, **HTMX)
    assert response.status_code == HTTPStatus.OK
    assert "Ligne L1 non réalisée : Recherche de fuite" in response.content.decode()
    line.refresh_from_db()
    assert not line.done


def test_the_line_toggle_offers_the_opposite_of_the_lines_state(signed_in, order, technician):
    bring_to(order, State.IN_PROGRESS, technician)
    services.mark_line(order.lines.get(reference="L1"), actor=technician, done=True)

    html = signed_in.get(f"/commandes/{order.pk}/").content.decode()

    first, second = html.split('class="line-toggle"')[1:3]
    assert 'aria-pressed="true"' in first
    assert 'aria-pressed="false"' in second
    assert html.count('name="done" value=""') == 1  # done: the toggle undoes it
    assert html.count('name="done" value="on"') == 1


def test_marking_a_line_twice_changes_nothing_the_second_time(signed_in, order, technician):
    bring_to(order, State.IN_PROGRESS, technician)
    line = order.lines.get(reference="L1")
    signed_in.post(f"/commandes/{order.pk}/lignes/{line.pk}/", {"done": "True"})
    events = order.events.count()

    response = signed_in.post(f"/commandes/{order.pk}/lignes/{line.pk}/", {"done": "True"}, follow=True)

    assert "C&#x27;était déjà fait : rien n&#x27;a changé." in response.content.decode()
    assert order.events.count() == events


def test_marking_a_line_of_an_order_not_yet_acknowledged_is_refused_in_french(signed_in, order):
    line = order.lines.get(reference="L1")
    response = signed_in.post(f"/commandes/{order.pk}/lignes/{line.pk}/", {"done": "True"})
    assert response.status_code == HTTPStatus.OK
    assert "Action « Marquer une ligne » impossible" in response.content.decode()


def test_a_line_of_another_order_is_not_found(signed_in, order, contract, technician):
    other = receiving.register_order(
        contract=contract, reference="AUTRE", actor=None, technician=technician, lines=[{"label": "Autre ligne"}]
    )
    line = other.lines.get()
    response = signed_in.post(f"/commandes/{order.pk}/lignes/{line.pk}/", {"done": "True"})
    assert response.status_code == HTTPStatus.NOT_FOUND


def test_the_progress_is_recorded_in_steps_of_ten(signed_in, order, technician):
    bring_to(order, State.IN_PROGRESS, technician)

    response = signed_in.post(f"/commandes/{order.pk}/avancement/", {"progress": "60"}, **HTMX)

    assert response.status_code == HTTPStatus.OK
    assert "Avancement : 60 %" in response.content.decode()
    order.refresh_from_db()
    assert order.progress == 60


@pytest.mark.parametrize(
    ("progress", "error"),
    [
        ("55", "Assurez-vous que cette valeur est un multiple de la taille de pas 10"),
        ("120", "Assurez-vous que cette valeur est inférieure ou égale à 100."),
        ("beaucoup", "Saisissez un nombre entier."),
    ],
)
def test_a_progress_off_the_steps_is_refused_in_french(signed_in, order, technician, progress, error):
    bring_to(order, State.IN_PROGRESS, technician)

    response = signed_in.post(f"/commandes/{order.pk}/avancement/", {"progress": progress})

    assert response.status_code == HTTPStatus.OK
    assert error in response.content.decode()
    order.refresh_from_db()
    assert order.progress == 0


def test_the_progress_form_shows_a_range_in_steps_of_ten(signed_in, order, technician):
    bring_to(order, State.IN_PROGRESS, technician)
    html = signed_in.get(f"/commandes/{order.pk}/").content.decode()
    assert 'type="range" name="progress" value="0"' in html
    assert 'step="10"' in html


# --- Who may see and act ---------------------------------------------------------------

ORDER_URLS = [
    ("get", "/commandes/{order}/"),
    ("post", "/commandes/{order}/prendre-en-compte/"),
    ("post", "/commandes/{order}/planifier/"),
    ("post", "/commandes/{order}/demarrer/"),
    ("post", "/commandes/{order}/suspendre/"),
    ("post", "/commandes/{order}/reprendre/"),
    ("post", "/commandes/{order}/terminer/"),
    ("post", "/commandes/{order}/avancement/"),
    ("post", "/commandes/{order}/lignes/{line}/"),
]


@pytest.mark.parametrize(("method", "url"), ORDER_URLS)
def test_another_technician_gets_a_404_on_every_url_of_the_order(client, order, other_technician, method, url):
    client.force_login(other_technician)
    url = url.format(order=order.pk, line=order.lines.first().pk)

    response = getattr(client, method)(url, {"done": "True", "progress": "50"} if method == "post" else None)

    assert response.status_code == HTTPStatus.NOT_FOUND
    order.refresh_from_db()
    assert order.state == State.TO_ACKNOWLEDGE


@pytest.mark.parametrize(("method", "url"), ORDER_URLS)
def test_a_signed_out_visitor_is_sent_to_the_login_page(client, order, method, url):
    url = url.format(order=order.pk, line=order.lines.first().pk)

    response = getattr(client, method)(url)

    assert response.status_code == HTTPStatus.FOUND
    assert response.url.startswith("/connexion/?next=")


def test_a_signed_out_visitor_is_sent_to_the_login_page_from_my_orders(client, db):
    response = client.get("/mes-commandes/?q=x", **HTMX)
    assert response.status_code == HTTPStatus.FOUND
    assert response.url.startswith("/connexion/?next=")


def test_an_unknown_order_is_not_found(signed_in, db):
    assert signed_in.get("/commandes/999999/").status_code == HTTPStatus.NOT_FOUND


@pytest.mark.parametrize("who", ["supervisor", "office"])
def test_supervisors_and_office_staff_may_open_any_order_and_act_on_it(client, request, order, who):
    person = request.getfixturevalue(who)
    client.force_login(person)

    assert client.get(f"/commandes/{order.pk}/").status_code == HTTPStatus.OK
    response = client.post(f"/commandes/{order.pk}/prendre-en-compte/")

    assert response.status_code == HTTPStatus.FOUND
    order.refresh_from_db()
    assert order.state == State.ACKNOWLEDGED
    assert last_event(order).actor == person


def test_a_line_quantity_shows_in_french_without_useless_decimals(signed_in, order, technician):
    bring_to(order, State.ACKNOWLEDGED, technician)
    receiving.add_line(order, actor=technician, reference="L3", label="Joint", quantity=Decimal("2.50"), unit="m")
    html = signed_in.get(f"/commandes/{order.pk}/").content.decode()
    assert "L3 · 2,50 m" in html
    assert "L1 · 1 u" in html


def test_a_planned_start_without_an_end_is_shown_from_that_day(signed_in, contract, technician):
    an_order(contract, technician, "OPEN-ENDED", state=State.PLANNED, planned_start=NOW - timedelta(days=1))
    html = signed_in.get("/mes-commandes/").content.decode()
    assert "Travaux à partir du lun. 23 nov." in html
    assert html.index("Aujourd&#x27;hui") < html.index("OPEN-ENDED")
