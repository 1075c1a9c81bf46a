"""The supervisor's page of an order (/pilotage/commandes/<pk>/): what the
technician sees, assignment, dates, lines, details, and the timeline of what
reached the client's platform, with resend and abandon of refused messages."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal
from html import unescape
from http import HTTPStatus

import pytest
import time_machine
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orders import planning, receiving, services
from orders.durations import duration
from orders.models import Order, OrderEvent
from orders.states import State
from portal.models import Role, ServiceCode
from portal.relay import claims, delivery
from portal.relay.models import (
    Connection,
    DeliveryAttempt,
    MessageAudit,
    MessageKind,
    MessageStatus,
    OutboxMessage,
)
from tests.conftest import PARIS, make_user

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=PARIS)
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def now():
    with time_machine.travel(NOW, tick=False):
        yield NOW


@pytest.fixture(autouse=True)
def queued(monkeypatch) -> list[int]:
    """The broker is an edge: deliveries asked for are only noted."""
    asked: list[int] = []
    monkeypatch.setattr("portal.relay.tasks.queue_delivery", asked.append)
    return asked


@pytest.fixture
def connection(outbox_connection) -> Connection:
    return outbox_connection


@pytest.fixture
def signed_in(client, supervisor):
    client.force_login(supervisor)
    return client


def page_url(order: Order) -> str:
    return f"/pilotage/commandes/{order.pk}/"


def relay_outcome(message: OutboxMessage, *, after: timedelta, outcome: str = "delivered", error: str = "") -> None:
    """Claim and record `message` as the relay's workers do, `after` its creation."""
    with time_machine.travel(message.created_at + after, tick=False):
        claimed = claims.claim(message.pk)
        assert claimed is not None, "not due: an earlier message of the order is not delivered"
        status_code = 400 if outcome == "rejected" else 204
        result = delivery.Result(outcome, status_code, error)
        delivery.finish(claimed, result, started=timezone.now(), duration_ms=120)


def deliver_everything(order: Order, *, after: timedelta = timedelta(seconds=2)) -> None:
    for message in order.outbox_messages.filter(status=MessageStatus.PENDING).order_by("sequence"):
        relay_outcome(message, after=after)


def last_message(order: Order) -> OutboxMessage:
    return order.outbox_messages.order_by("-sequence").first()


def text_of(response) -> str:
    """The page's text, tags and repeated spaces removed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


# --- Access ----------------------------------------------------------------------------

POSTS = [
    "actions/acknowledge/",
    "affectation/",
    "details/",
    "lignes/ajouter/",
    "observations/",
    "prolongations/",
]


def test_supervisors_and_office_staff_see_any_order(client, supervisor, office, order):
    for person in (supervisor, office):
        client.force_login(person)
        response = client.get(page_url(order))
        assert response.status_code == HTTPStatus.OK
        assert order.reference in response.content.decode()


def test_a_technician_gets_a_403_even_for_their_own_order(client, technician, order):
    assert order.technician == technician
    client.force_login(technician)
    assert client.get(page_url(order)).status_code == HTTPStatus.FORBIDDEN
    for suffix in POSTS:
        assert client.post(page_url(order) + suffix).status_code == HTTPStatus.FORBIDDEN


def test_a_signed_out_visitor_is_sent_to_the_login_page(client, order):
    response = client.get(page_url(order))
    assert response.status_code == HTTPStatus.FOUND
    assert response.url.startswith("/connexion/")
    for suffix in POSTS:
        response = client.post(page_url(order) + suffix)
        assert response.status_code == HTTPStatus.FOUND
        assert response.url.startswith("/connexion/")
    assert order.events.count() == 4  # received, two lines, technician: nothing more


def test_an_unknown_order_or_action_is_a_404(signed_in, order):
    assert signed_in.get("/pilotage/commandes/999999/").status_code == HTTPStatus.NOT_FOUND
    assert signed_in.post(page_url(order) + "actions/invoice/").status_code == HTTPStatus.NOT_FOUND
    assert signed_in.post(page_url(order) + "actions/nimporte/").status_code == HTTPStatus.NOT_FOUND


def test_the_page_only_answers_get_and_the_changes_only_post(signed_in, order):
    assert signed_in.get(page_url(order) + "affectation/").status_code == HTTPStatus.METHOD_NOT_ALLOWED


# --- What the page shows -----------------------------------------------------------------


def test_the_page_shows_what_the_technician_sees_and_the_supervisors_forms(signed_in, order):
    response = signed_in.get(page_url(order))
    html = response.content.decode()
    text = text_of(response)
    for expected in (
        "OPH57_241122093015",
        "À prendre en compte",
        "14 rue des Tilleuls",
        "Mme Claire Martin",
        "06 12 34 56 78",
        "Fuite sous l'évier de la cuisine",
        "PLB-FUITE – Recherche et réparation de fuite",
        "Recherche de fuite",
        "Remplacement du siphon",
        "113,50 €",  # 65,00 + 48,50
        "Rapports et documents",
        "Karim Haddad",
        "Chronologie",
        "Commande reçue",
    ):
        assert expected in text, expected
    # The state actions post here, not to the technician's pages.
    assert f'action="/pilotage/commandes/{order.pk}/actions/acknowledge/"' in html
    assert f'action="/commandes/{order.pk}/prendre-en-compte/"' not in html
    for form in ("affectation/", "details/", "lignes/ajouter/", "observations/"):
        assert f'action="/pilotage/commandes/{order.pk}/{form}"' in html
    assert 'style="' not in html  # the Content-Security-Policy forbids inline styles


# --- State actions -----------------------------------------------------------------------


def test_a_supervisor_acknowledges_from_the_page_and_comes_back_to_it(signed_in, order, supervisor):
    response = signed_in.post(page_url(order) + "actions/acknowledge/")

    assert response.status_code == HTTPStatus.FOUND
    assert response.url == page_url(order) + "#actions"
    order.refresh_from_db()
    assert order.state == State.ACKNOWLEDGED
    event = order.events.order_by("-pk").first()
    assert (event.kind, event.actor) == ("acknowledge", supervisor)
    assert "Commande prise en compte" in text_of(signed_in.get(response.url))


def test_with_htmx_an_action_answers_the_panel_only(signed_in, order):
    services.acknowledge_order(order, actor=None)
    appointment = "2026-11-26T14:30"

    response = signed_in.post(page_url(order) + "actions/plan/", {"appointment": appointment}, **HTMX)

    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="supervisor-order"')
    assert "Rendez-vous fixé le jeu. 26 nov. à 14 h 30" in html
    order.refresh_from_db()
    assert order.appointment_at == datetime(2026, 11, 26, 14, 30, tzinfo=PARIS)


def test_a_refused_plan_shows_the_french_reason_and_keeps_the_state(signed_in, order):
    services.acknowledge_order(order, actor=None)

    response = signed_in.post(
        page_url(order) + "actions/plan/",
        {"appointment": "2026-11-26T14:30", "planned_start": "2026-11-26T08:00", "planned_end": "2026-11-27T17:00"},
    )

    assert response.status_code == HTTPStatus.OK
    assert "Indiquez soit un rendez-vous, soit une période de travaux, pas les deux." in response.content.decode()
    order.refresh_from_db()
    assert order.state == State.ACKNOWLEDGED


def test_an_action_the_state_does_not_allow_is_refused_in_french(signed_in, order):
    response = signed_in.post(page_url(order) + "actions/finish/")

    assert response.status_code == HTTPStatus.OK
    assert "Action « Terminer les travaux » impossible" in response.content.decode()
    order.refresh_from_db()
    assert order.state == State.TO_ACKNOWLEDGE


# --- Assignment, details, lines ---------------------------------------------------------


def test_assigning_the_technician_and_the_pilot(signed_in, order, other_technician, supervisor):
    response = signed_in.post(
        page_url(order) + "affectation/", {"technician": other_technician.pk, "pilot": supervisor.pk}
    )

    assert response.status_code == HTTPStatus.FOUND
    assert response.url == page_url(order) + "#affectation"
    order.refresh_from_db()
    assert (order.technician, order.pilot) == (other_technician, supervisor)
    labels = list(order.events.filter(kind="assign").order_by("pk").values_list("label", flat=True))
    # One action, one event naming both.
    assert labels[-1:] == ["Technicien : Lucie Moreau ; Pilote : Sophie Lambert"]


def test_only_an_active_technician_can_be_assigned(signed_in, order, supervisor):
    retired = make_user("ancien", Role.TECHNICIAN, is_active=False)
    for person in (supervisor, retired):
        response = signed_in.post(page_url(order) + "affectation/", {"technician": person.pk, "pilot": ""})
        assert response.status_code == HTTPStatus.OK
        assert "Sélectionnez un choix valide" in response.content.decode()
    order.refresh_from_db()
    assert order.technician.username == "karim"


def test_correcting_the_service_code_and_the_asset(signed_in, order, contract, asset):
    other_code = ServiceCode.objects.create(contract=contract, code="PLB-DEBOUCH", label="Débouchage")

    response = signed_in.post(
        page_url(order) + "details/",
        {"service_code": other_code.pk, "asset_reference": "LGT-0412", "work_type": "preventive", "critical_level": 3},
    )

    assert response.status_code == HTTPStatus.FOUND
    order.refresh_from_db()
    assert (order.service_code, order.asset, order.work_type, order.critical_level) == (
        other_code,
        asset,
        "preventive",
        3,
    )


def test_an_unknown_asset_reference_is_refused_in_french(signed_in, order):
    response = signed_in.post(
        page_url(order) + "details/",
        {"service_code": order.service_code_id, "asset_reference": "LGT-9999", "work_type": "corrective"},
    )

    html = response.content.decode()
    assert response.status_code == HTTPStatus.OK
    assert "Aucun élément de patrimoine « LGT-9999 » chez Office Public de l&#x27;Habitat de Metz." in html
    assert "Ce champ est obligatoire." in html  # the criticality was left out


def test_adding_a_line_from_the_price_schedule_correcting_it_and_removing_it(signed_in, order, price_item):
    response = signed_in.post(page_url(order) + "lignes/ajouter/", {"price_item": price_item.pk, "quantity": "2"})

    assert response.status_code == HTTPStatus.FOUND
    assert response.url == page_url(order) + "#lignes"
    line = order.lines.get(reference="PLB-012")
    assert (line.label, line.quantity, line.unit_price) == ("Remplacement de siphon d'évier", 2, Decimal("48.50"))

    response = signed_in.post(
        page_url(order) + f"lignes/{line.pk}/",
        {"reference": "PLB-012", "label": line.label, "quantity": "3", "unit": "u", "unit_price": "45.00"},
    )
    assert response.status_code == HTTPStatus.FOUND
    line.refresh_from_db()
    assert (line.quantity, line.unit_price) == (3, Decimal("45.00"))

    response = signed_in.post(page_url(order) + f"lignes/{line.pk}/retirer/")
    assert response.status_code == HTTPStatus.FOUND
    assert not order.lines.filter(pk=line.pk).exists()
    assert order.events.filter(kind="line_removed").exists()


def test_a_line_needs_a_price_or_a_label_and_a_done_line_stays(signed_in, order):
    response = signed_in.post(page_url(order) + "lignes/ajouter/", {"quantity": "1"})
    assert "Choisissez un prix du bordereau, ou donnez un libellé à la ligne." in response.content.decode()
    assert order.lines.count() == 2

    services.acknowledge_order(order, actor=None)
    done = order.lines.get(reference="L1")
    services.mark_line(done, actor=None, done=True)
    response = signed_in.post(page_url(order) + f"lignes/{done.pk}/retirer/")
    assert response.status_code == HTTPStatus.OK
    assert "La ligne L1 est réalisée : elle ne peut plus être retirée." in response.content.decode()
    assert order.lines.filter(pk=done.pk).exists()


def test_a_line_of_another_order_is_a_404(signed_in, order, contract):
    other = receiving.register_order(
        contract=contract, reference="AUTRE-1", actor=None, lines=[{"reference": "L1", "label": "Autre"}]
    )
    line = other.lines.get()
    response = signed_in.post(page_url(order) + f"lignes/{line.pk}/retirer/")
    assert response.status_code == HTTPStatus.NOT_FOUND


# --- The timeline ------------------------------------------------------------------------


def test_durations_read_as_people_say_them():
    assert duration(timedelta(milliseconds=300), seconds=True) == "moins d'une seconde"
    assert duration(timedelta(seconds=4), seconds=True) == "4 s"
    assert duration(timedelta(minutes=3, seconds=5), seconds=True) == "3 min 05 s"
    assert duration(timedelta(minutes=20), seconds=True) == "20 min"
    assert duration(timedelta(hours=2, minutes=10), seconds=True) == "2 h 10 min"
    assert duration(timedelta(days=3, hours=4), seconds=True) == "3 j 4 h"


def test_the_timeline_says_when_each_change_reached_the_platform_or_why_not(signed_in, connection, order, technician):
    deliver_everything(order)  # nothing: before the acknowledgement the contractor sends no log
    services.acknowledge_order(order, actor=technician)
    relay_outcome(last_message(order), after=timedelta(seconds=4))
    planning.plan_order(order, actor=technician, appointment=NOW + timedelta(days=2))
    relay_outcome(last_message(order), after=timedelta(minutes=20))  # past the contract's 15 minutes
    services.set_progress(order, actor=technician, progress=30)
    refused = last_message(order)
    relay_outcome(refused, after=timedelta(seconds=1), outcome="rejected", error="HTTP 400 : Code prestation inconnu")
    services.set_progress(order, actor=technician, progress=50)
    waiting = last_message(order)

    with time_machine.travel(NOW + timedelta(minutes=3), tick=False):
        response = signed_in.get(page_url(order))

    text = text_of(response)
    # The acknowledgement and the appointment delivered, 1 waiting, 1 refused.
    assert "Plateforme du client (Intent (API REST)) : 2 transmis · 1 en attente · 1 refusé" in text
    delivered = "Transmis à la plateforme le 24 novembre 2026 à 10:00:04, en 4 s"
    assert f"Commande prise en compte — Karim Haddad {delivered}" in text
    assert "en 20 min au-delà de 15 minutes" in text
    rejected = "Refusé par la plateforme le 24 novembre 2026 à 10:00:01 (HTTP 400) :"
    assert f"Avancement : 30 % — Karim Haddad {rejected}" in text
    assert "HTTP 400 : Code prestation inconnu" in text
    assert "Avancement : 50 % — Karim Haddad En attente de transmission depuis 3 min" in text
    assert f"Attend le message n° {refused.sequence}, refusé par la plateforme" in text
    html = response.content.decode()
    assert f'action="/pilotage/commandes/{order.pk}/messages/{refused.pk}/renvoyer/"' in html
    assert f'action="/pilotage/commandes/{order.pk}/messages/{refused.pk}/abandonner/"' in html
    assert f"/messages/{waiting.pk}/renvoyer/" not in html  # only a refused message is resent
    # Newest first.
    assert text.index("Avancement : 50 %") < text.index("Avancement : 30 %") < text.index("Commande reçue")


def test_what_is_done_before_the_acknowledgement_travels_with_it_and_the_timeline_says_so(
    signed_in, connection, order, technician, supervisor
):
    services.assign_order(order, actor=supervisor, pilot=supervisor)
    text = text_of(signed_in.get(page_url(order)))
    assert "Pilote : Sophie Lambert — Sophie Lambert Sera transmis avec la prise en compte de la commande." in text

    services.acknowledge_order(order, actor=technician)
    text = text_of(signed_in.get(page_url(order)))
    assert "Pilote : Sophie Lambert — Sophie Lambert Transmis avec la prise en compte de la commande." in text
    assert "Pas de message pour la plateforme" not in text


def test_without_a_platform_the_timeline_says_nothing_is_sent(signed_in, order):
    text = text_of(signed_in.get(page_url(order)))
    assert "Ce client n'est relié à aucune plateforme : rien n'est transmis automatiquement." in text
    assert "Transmis à la plateforme" not in text


def test_what_the_platform_sent_is_marked_as_coming_from_it(signed_in, connection, contract):
    order = receiving.register_order(contract=contract, reference="PF-1", actor=None, origin="platform")
    text = text_of(signed_in.get(page_url(order)))
    assert "Commande reçue" in text
    assert "Reçu de la plateforme du client." in text


def reject_the_acknowledgement(order: Order, technician) -> OutboxMessage:
    deliver_everything(order)
    services.acknowledge_order(order, actor=technician)
    refused = last_message(order)
    relay_outcome(refused, after=timedelta(seconds=1), outcome="rejected", error="HTTP 400 : Code prestation inconnu")
    return refused


def test_correct_then_resend_from_the_page_rebuilds_the_message_from_the_order(
    signed_in, connection, order, contract, technician, supervisor, queued, django_capture_on_commit_callbacks
):
    refused = reject_the_acknowledgement(order, technician)
    assert refused.payload["serviceCode"] != "PLB-DEBOUCH"
    other_code = ServiceCode.objects.create(contract=contract, code="PLB-DEBOUCH", label="Débouchage")
    corrected = signed_in.post(
        page_url(order) + "details/",
        {"service_code": other_code.pk, "asset_reference": "LGT-0412", "work_type": "corrective", "critical_level": 0},
    )
    assert corrected.status_code == HTTPStatus.FOUND

    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in.post(
            page_url(order) + f"messages/{refused.pk}/renvoyer/", {"note": "Code prestation corrigé"}
        )

    assert response.status_code == HTTPStatus.FOUND
    assert response.url == page_url(order) + f"#message-{refused.pk}"
    refused.refresh_from_db()
    assert refused.status == MessageStatus.PENDING
    assert (refused.payload["serviceCode"], refused.payload["event"]) == ("PLB-DEBOUCH", "acknowledged")
    audit = MessageAudit.objects.get(message=refused)
    assert (audit.actor, audit.action, audit.note) == (supervisor, "resend", "Code prestation corrigé")
    assert audit.payload_before["serviceCode"] == "PLB-FUITE"
    assert refused.pk in queued

    relay_outcome(refused, after=timedelta(minutes=2))
    text = text_of(signed_in.get(page_url(order)))
    assert "Commande prise en compte — Karim Haddad Transmis à la plateforme" in text
    assert "renvoyé par Sophie Lambert : Code prestation corrigé" in text
    assert "0 refusé" in text


def test_with_htmx_a_resend_answers_the_panel_with_the_notice(signed_in, connection, order, technician):
    refused = reject_the_acknowledgement(order, technician)

    response = signed_in.post(page_url(order) + f"messages/{refused.pk}/renvoyer/", {"note": ""}, **HTMX)

    assert response.status_code == HTTPStatus.OK
    assert f"Message n° {refused.sequence} renvoyé à la plateforme" in response.content.decode()


def test_only_a_refused_message_is_resent_and_only_from_its_own_order(
    signed_in, connection, order, contract, technician
):
    services.acknowledge_order(order, actor=technician)
    pending = last_message(order)
    response = signed_in.post(page_url(order) + f"messages/{pending.pk}/renvoyer/", {"note": ""})
    assert response.status_code == HTTPStatus.OK
    assert "Seul un message refusé peut être renvoyé (celui-ci est « À envoyer »)." in response.content.decode()

    other = receiving.register_order(
        contract=contract, reference="AUTRE-1", actor=None, asset=order.asset, service_code=order.service_code
    )
    response = signed_in.post(f"/pilotage/commandes/{other.pk}/messages/{pending.pk}/renvoyer/", {"note": ""})
    assert response.status_code == HTTPStatus.NOT_FOUND


def test_abandoning_needs_a_reason_then_lets_the_next_messages_go(signed_in, connection, order, technician, office):
    refused = reject_the_acknowledgement(order, technician)
    signed_in.force_login(office)

    response = signed_in.post(page_url(order) + f"messages/{refused.pk}/abandonner/", {"note": " "})
    assert response.status_code == HTTPStatus.OK
    assert "Indiquez pourquoi ce message ne sera pas transmis." in response.content.decode()
    refused.refresh_from_db()
    assert refused.status == MessageStatus.REJECTED

    response = signed_in.post(
        page_url(order) + f"messages/{refused.pk}/abandonner/", {"note": "Saisi sur la plateforme"}
    )
    assert response.status_code == HTTPStatus.FOUND
    refused.refresh_from_db()
    assert (refused.status, refused.resolved_by) == (MessageStatus.CANCELLED, office)
    text = text_of(signed_in.get(page_url(order)))
    assert "Abandonné le 24 novembre 2026 à 10:00 par Nadia Petit : Saisi sur la plateforme" in text


# --- Queries -----------------------------------------------------------------------------


def grow_history(order: Order, count: int, people: list) -> None:
    """`count` events, each with a message in every state the relay knows, tried and audited."""
    start = order.outbox_messages.count() + 1
    events = OrderEvent.objects.bulk_create(
        OrderEvent(
            order=order,
            at=NOW - timedelta(minutes=count - index),
            kind="set_progress",
            label=f"Étape {index}",
            actor=people[index % len(people)],
        )
        for index in range(count)
    )
    statuses = [MessageStatus.DELIVERED, MessageStatus.CANCELLED, MessageStatus.REJECTED, MessageStatus.PENDING]
    messages = OutboxMessage.objects.bulk_create(
        OutboxMessage(
            connection=Connection.objects.get(),
            stream=f"order:{order.pk}",
            order=order,
            event=event,
            sequence=start + index,
            kind=MessageKind.INTERVENTION_LOG if index % 5 else MessageKind.DOCUMENT,
            payload={"description": event.label},
            status=statuses[index % 4],
            created_at=event.at,
            delivered_at=event.at + timedelta(seconds=3) if index % 4 == 0 else None,
            rejected_at=event.at + timedelta(seconds=3) if index % 4 == 2 else None,
            resolved_by=people[0] if index % 4 == 1 else None,
            last_error="HTTP 400 : refusé" if index % 4 == 2 else "",
        )
        for index, event in enumerate(events)
    )
    DeliveryAttempt.objects.bulk_create(
        DeliveryAttempt(message=message, started_at=message.created_at, duration_ms=40, outcome="retry")
        for message in messages
    )
    MessageAudit.objects.bulk_create(
        MessageAudit(message=message, actor=people[1], action="resend", note="corrigé") for message in messages[::3]
    )


def test_the_page_runs_the_same_queries_for_10_and_for_200_events(signed_in, connection, order):
    people = [make_user(f"personne{index}", Role.TECHNICIAN, first_name=f"P{index}") for index in range(5)]
    grow_history(order, 10, people)
    with CaptureQueriesContext(db_connection) as small:
        response = signed_in.get(page_url(order))
    assert "Étape 9" in response.content.decode()

    grow_history(order, 190, people)
    with CaptureQueriesContext(db_connection) as large:
        response = signed_in.get(page_url(order))

    text = text_of(response)
    assert "Étape 189" in text
    assert len(small) == len(large), "\n".join(query["sql"] for query in large.captured_queries)
    assert (
        text.count("Refusé par la plateforme le") == order.outbox_messages.filter(status=MessageStatus.REJECTED).count()
    )
    assert len(small) <= 30
