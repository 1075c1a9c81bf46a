"""Observations on an order and extensions of its execution period (CCAG-MI
§3.7.2 and §14.3): the deadlines as the CCAG counts them (§3.2), the
services that refuse what comes too late, what the platform receives, and the
forms of the supervisor's order page."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from html import unescape
from http import HTTPStatus

import pytest
import time_machine
from django.db import IntegrityError, transaction

from orders import deadlines, receiving, remedies, services
from orders.models import ExtensionDecision, ExtensionRequest, Observation, Order
from portal.relay.models import Connection, OutboxMessage
from tests.conftest import PARIS

# Friday 20 November 2026, 10:00: fifteen days later is Saturday 5 December,
# so the observations may be sent until Monday 7 December at midnight.
RECEIVED = datetime(2026, 11, 20, 10, 0, tzinfo=PARIS)
DUE = datetime(2026, 11, 30, 9, 30, tzinfo=PARIS)


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)


@pytest.fixture
def received(contract, asset, service_code, technician) -> Order:
    with time_machine.travel(RECEIVED, tick=False):
        return receiving.register_order(
            contract=contract,
            reference="OPH57_OBS",
            actor=None,
            received_at=RECEIVED,
            notified_at=RECEIVED,
            due_at=DUE,
            asset=asset,
            service_code=service_code,
            lines=[{"reference": "L1", "label": "Recherche de fuite"}],
            technician=technician,
        )


@pytest.fixture
def connection(outbox_connection) -> Connection:
    return outbox_connection


@pytest.fixture(autouse=True)
def no_broker(monkeypatch) -> None:
    monkeypatch.setattr("portal.relay.tasks.queue_delivery", lambda message_id: None)


def last_payload(order: Order) -> dict:
    return OutboxMessage.objects.filter(order=order).order_by("-sequence").first().payload


def text_of(response) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


# --- Counting days as the CCAG does (pure) -----------------------------------------------


def test_easter_and_the_holidays_that_move_with_it():
    """The holidays come from the `holidays` library since issue 11 (they were computed here)."""
    holidays = deadlines.public_holidays(2026)
    assert {date(2026, 4, 6), date(2026, 5, 14), date(2026, 5, 25)} <= holidays  # Pâques, Ascension, Pentecôte
    assert {date(2025, 4, 21), date(2025, 5, 29), date(2025, 6, 9)} <= deadlines.public_holidays(2025)
    assert len(holidays) == 11


@pytest.mark.parametrize(
    ("fact", "last"),
    [
        (date(2026, 11, 16), date(2026, 12, 1)),  # a Tuesday: stays
        (date(2026, 11, 20), date(2026, 12, 7)),  # Saturday 5 December: the next Monday
        (date(2026, 10, 27), date(2026, 11, 12)),  # Wednesday 11 November, a holiday: the Thursday
        (date(2026, 12, 10), date(2026, 12, 28)),  # Christmas on a Friday, then the weekend
        (date(2027, 4, 16), date(2027, 5, 3)),  # 1 May 2027 is a Saturday
    ],
)
def test_a_period_ends_on_its_fifteenth_day_or_the_next_working_day(fact, last):
    assert deadlines.last_day(fact, 15) == last


def test_the_day_of_receipt_is_the_paris_day():
    late_evening_utc = datetime(2026, 11, 19, 23, 30, tzinfo=deadlines.ZoneInfo("UTC"))  # 00:30 in Paris
    assert deadlines.observation_deadline(late_evening_utc).last_day == date(2026, 12, 7)
    assert deadlines.observation_deadline(paris(2026, 11, 16, 23, 59)).last_day == date(2026, 12, 1)
    with pytest.raises(ValueError, match="naive"):
        deadlines.observation_deadline(datetime(2026, 11, 20, 10, 0))  # noqa: DTZ001


def test_a_deadline_is_open_until_midnight_at_the_end_of_its_last_day():
    deadline = deadlines.observation_deadline(RECEIVED)
    assert deadline.ends_at == paris(2026, 12, 8, 0, 0)
    assert deadline.at_midnight
    assert deadline.is_open(paris(2026, 12, 7, 23, 59, 59))
    assert not deadline.is_open(paris(2026, 12, 8, 0, 0))
    assert deadline.days_left(paris(2026, 11, 30, 10, 0)) == 7
    assert deadline.days_left(paris(2026, 12, 7, 8, 0)) == 0
    assert deadline.days_left(paris(2026, 12, 8, 8, 0)) == -1


def test_an_extension_is_asked_within_15_days_of_the_cause_but_never_after_the_period():
    by_cause = deadlines.extension_deadline(date(2026, 11, 10), DUE)
    assert (by_cause.last_day, by_cause.ends_at) == (date(2026, 11, 25), paris(2026, 11, 26, 0, 0))
    by_period = deadlines.extension_deadline(date(2026, 11, 25), DUE)
    assert (by_period.last_day, by_period.ends_at, by_period.at_midnight) == (date(2026, 11, 30), DUE, False)
    at_midnight = deadlines.extension_deadline(date(2026, 11, 25), paris(2026, 11, 30, 0, 0))
    assert at_midnight.last_day == date(2026, 11, 29)
    assert deadlines.extension_deadline(date(2026, 11, 25), None).last_day == date(2026, 12, 10)
    assert deadlines.extension_answer_deadline(paris(2026, 11, 25, 16, 0)).last_day == date(2026, 12, 10)


# --- Observations --------------------------------------------------------------------------


def test_observations_are_accepted_until_the_last_minute_and_relayed_with_their_text(
    received, connection, technician, supervisor
):
    services.acknowledge_order(received, actor=technician, at=paris(2026, 11, 21, 8, 0))
    with time_machine.travel(paris(2026, 12, 7, 23, 59, 59), tick=False):
        observation = remedies.raise_observation(
            received, actor=supervisor, text="La quantité de la ligne L1\nne correspond pas au métré."
        )

    assert observation.made_by == supervisor
    assert observation.text == "La quantité de la ligne L1\nne correspond pas au métré."
    label = "Observations sur la commande : La quantité de la ligne L1 ne correspond pas au métré."
    assert observation.event.label == label
    payload = last_payload(received)
    # The order keeps its state, and the platform its status: the label travels as the description.
    assert (payload["status"], payload["event"], payload["description"]) == ("open", "acknowledged", label)
    assert payload["eventDate"] == "2026-12-07T23:59:59+01:00"
    received.refresh_from_db()
    assert received.state == "acknowledged"


def test_observations_after_the_fifteen_days_are_refused_in_french(received, supervisor):
    with (
        time_machine.travel(paris(2026, 12, 8, 0, 0), tick=False),
        pytest.raises(services.ServiceError) as refused,
    ):
        remedies.raise_observation(received, actor=supervisor, text="Trop tard.")

    assert str(refused.value) == (
        "La commande a été reçue le 20 novembre 2026 : le délai de 15 jours pour formuler des observations a "
        "expiré le 7 décembre 2026 à minuit (CCAG-MI art. 3.7.2). La commande s'exécute telle qu'elle a été "
        "notifiée."
    )
    assert not Observation.objects.exists()
    assert not received.events.filter(kind="observation").exists()


def test_observations_must_say_something_and_fit_in_what_the_platform_receives(received, supervisor):
    with time_machine.travel(paris(2026, 11, 23, 9, 0), tick=False):
        with pytest.raises(services.ServiceError, match="Écrivez vos observations."):
            remedies.raise_observation(received, actor=supervisor, text=" \n ")
        with pytest.raises(services.ServiceError, match="au plus, pour que la plateforme du client les reçoive"):
            remedies.raise_observation(received, actor=supervisor, text="x" * (remedies.OBSERVATION_MAX_LENGTH + 1))
        longest = remedies.raise_observation(received, actor=supervisor, text="x" * remedies.OBSERVATION_MAX_LENGTH)
    assert len(longest.event.label) == 300
    assert Observation.objects.count() == 1


def test_a_cancelled_order_takes_no_observations(received, supervisor):
    services.cancel_order(received, actor=supervisor, reason="Doublon")
    with pytest.raises(services.ServiceError, match="annulée"):
        remedies.raise_observation(received, actor=supervisor, text="Bien noté.", at=paris(2026, 11, 23, 9, 0))


# --- Extensions of the period ------------------------------------------------------------


def ask(
    order: Order, actor, at: datetime, *, cause_date: date, days: int = 5, cause: str = "Accès refusé par le gardien"
):
    return remedies.request_extension(order, actor=actor, cause=cause, cause_date=cause_date, days=days, at=at)


def test_an_extension_is_asked_until_the_fifteenth_day_after_the_cause(received, connection, supervisor):
    with pytest.raises(services.ServiceError) as refused:
        ask(received, supervisor, paris(2026, 11, 26, 0, 0), cause_date=date(2026, 11, 10))
    assert str(refused.value) == (
        "La cause est apparue le 10 novembre 2026 : le délai de 15 jours pour demander une prolongation a expiré "
        "le 25 novembre 2026 à minuit (CCAG-MI art. 14.3.2)."
    )

    extension = ask(received, supervisor, paris(2026, 11, 25, 23, 59, 59), cause_date=date(2026, 11, 10), days=10)

    assert (extension.decision, extension.days, extension.due_at_before) == (ExtensionDecision.PENDING, 10, DUE)
    label = (
        "Demande de prolongation du délai d'exécution de 10 jours : Accès refusé par le gardien "
        "(cause apparue le 10 novembre 2026)"
    )
    assert received.events.get(kind="extension_requested").label == label
    # Not acknowledged yet: no log of its own (open/requested is the manager's);
    # the request travels with the acknowledgement log.
    assert not OutboxMessage.objects.filter(order=received).exists()
    services.acknowledge_order(received, actor=supervisor, at=paris(2026, 11, 26, 8, 0))
    payload = last_payload(received)
    assert (payload["status"], payload["event"], payload["description"]) == (
        "open",
        "acknowledged",
        f"Commande prise en compte ; {label}",
    )


def test_no_extension_is_asked_once_the_period_has_expired(received, supervisor):
    with pytest.raises(services.ServiceError) as refused:
        ask(received, supervisor, DUE, cause_date=date(2026, 11, 25))
    assert str(refused.value) == (
        "Le délai d'exécution a expiré le lundi 30 novembre 2026 à 9 h 30 : aucune demande de prolongation ne peut "
        "plus être présentée (CCAG-MI art. 14.3.4)."
    )
    assert ask(received, supervisor, DUE - timedelta(seconds=1), cause_date=date(2026, 11, 25)).pk


def test_an_extension_request_is_refused_when_it_makes_no_sense(received, supervisor, technician):
    at = paris(2026, 11, 24, 10, 0)
    with pytest.raises(services.ServiceError, match="Indiquez la cause"):
        ask(received, supervisor, at, cause_date=date(2026, 11, 23), cause="  ")
    with pytest.raises(services.ServiceError, match="entre 1 et 365 jours"):
        ask(received, supervisor, at, cause_date=date(2026, 11, 23), days=0)
    with pytest.raises(services.ServiceError, match="ne peut pas être apparue après la demande"):
        ask(received, supervisor, at, cause_date=date(2026, 11, 25))
    ask(received, supervisor, at, cause_date=date(2026, 11, 23))
    # Issue 11 item 7: a second cause may be pending beside the first (it used to be refused).
    ask(received, supervisor, at, cause_date=date(2026, 11, 20), cause="Accès refusé par le gardien")
    assert ExtensionRequest.objects.filter(decision="pending").count() == 2


def test_no_extension_for_finished_works_or_an_order_without_due_date(received, contract, technician, supervisor):
    at = paris(2026, 11, 24, 10, 0)
    services.acknowledge_order(received, actor=technician, at=at)
    services.start_work(received, actor=technician, at=at)
    services.finish_work(received, actor=technician, at=at)
    with pytest.raises(services.ServiceError, match="« Terminé » : ses travaux ne sont plus en cours"):
        ask(received, supervisor, at, cause_date=date(2026, 11, 23))

    other = receiving.register_order(contract=contract, reference="SANS-ECHEANCE", actor=None, received_at=RECEIVED)
    receiving.update_order_details(other, actor=supervisor, changes={"due_at": None})
    with pytest.raises(services.ServiceError, match="n'a pas d'échéance"):
        ask(other, supervisor, at, cause_date=date(2026, 11, 23))


def test_a_granted_extension_moves_the_due_date_and_is_relayed(received, connection, supervisor):
    services.acknowledge_order(received, actor=supervisor, at=paris(2026, 11, 24, 9, 0))
    extension = ask(received, supervisor, paris(2026, 11, 24, 10, 0), cause_date=date(2026, 11, 23), days=10)

    with time_machine.travel(paris(2026, 11, 27, 15, 0), tick=False):
        answered = remedies.answer_extension(
            extension, actor=supervisor, granted=True, granted_days=7, note="courriel du 27/11"
        )

    assert (answered.decision, answered.granted_days) == (ExtensionDecision.GRANTED, 7)
    received.refresh_from_db()
    assert received.due_at == DUE + timedelta(days=7) == answered.due_at_after
    label = (
        "Prolongation du délai accordée par le gestionnaire : 7 jours, nouvelle échéance le lundi 7 décembre "
        "2026 à 9 h 30 – courriel du 27/11"
    )
    assert received.events.get(kind="extension_granted").label == label
    assert last_payload(received)["description"] == label
    # Asked again after a granted answer: allowed, against the new period.
    assert ask(received, supervisor, paris(2026, 12, 4, 10, 0), cause_date=date(2026, 12, 1)).pk


def test_a_refused_extension_leaves_the_due_date(received, connection, supervisor):
    services.acknowledge_order(received, actor=supervisor, at=paris(2026, 11, 24, 9, 0))
    extension = ask(received, supervisor, paris(2026, 11, 24, 10, 0), cause_date=date(2026, 11, 23))
    with time_machine.travel(paris(2026, 11, 27, 15, 0), tick=False):
        remedies.answer_extension(extension, actor=supervisor, granted=False, granted_days=None)
    received.refresh_from_db()
    assert received.due_at == DUE
    assert extension.decision == ExtensionDecision.REFUSED
    assert last_payload(received)["description"] == "Prolongation du délai refusée par le gestionnaire"


def test_an_answer_is_checked_before_it_is_recorded(received, supervisor):
    extension = ask(received, supervisor, paris(2026, 11, 24, 10, 0), cause_date=date(2026, 11, 23), days=10)
    with time_machine.travel(paris(2026, 11, 27, 15, 0), tick=False):
        with pytest.raises(services.ServiceError, match="entre 1 et 10"):
            remedies.answer_extension(extension, actor=supervisor, granted=True, granted_days=11)
        with pytest.raises(services.ServiceError, match="entre 1 et 10"):
            remedies.answer_extension(extension, actor=supervisor, granted=True)
        with pytest.raises(services.ServiceError, match="ne peut pas précéder la demande"):
            remedies.answer_extension(extension, actor=supervisor, granted=False, at=paris(2026, 11, 24, 9, 0))
        with pytest.raises(services.ServiceError, match="dans le futur"):
            remedies.answer_extension(extension, actor=supervisor, granted=False, at=paris(2026, 11, 28, 9, 0))
        remedies.answer_extension(extension, actor=supervisor, granted=False)
        with pytest.raises(services.ServiceError, match="déjà enregistrée : « Refusée »"):
            remedies.answer_extension(extension, actor=supervisor, granted=True, granted_days=3)
    received.refresh_from_db()
    assert received.due_at == DUE


def test_the_longest_labels_fit_in_an_event(received, supervisor):
    extension = ask(
        received, supervisor, paris(2026, 11, 24, 10, 0), cause_date=date(2026, 11, 23), days=365, cause="c" * 200
    )
    with time_machine.travel(paris(2026, 11, 27, 15, 0), tick=False):
        remedies.answer_extension(extension, actor=supervisor, granted=True, granted_days=365, note="n" * 150)
    labels = received.events.filter(kind__startswith="extension").values_list("label", flat=True)
    assert len(labels) == 2
    assert all(len(label) <= 300 for label in labels)


def test_the_database_keeps_consistent_answers(received, supervisor):
    """Several requests may be pending at once since issue 11 (item 7: one per cause,
    CCAG-MI art. 14.3.2); their answers stay consistent."""
    ask(received, supervisor, paris(2026, 11, 24, 10, 0), cause_date=date(2026, 11, 23))
    fields = {"order": received, "cause": "Pluie", "cause_date": date(2026, 11, 23), "requested_at": RECEIVED}
    ExtensionRequest.objects.create(**fields, days=3, due_at_before=DUE)
    with pytest.raises(IntegrityError), transaction.atomic():
        ExtensionRequest.objects.create(
            **fields,
            days=3,
            due_at_before=DUE,
            decision="granted",
            granted_days=4,
            answered_at=RECEIVED,
            due_at_after=DUE,
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        Observation.objects.create(order=received, text="", made_at=RECEIVED)


# --- On the supervisor's page --------------------------------------------------------------


def page(order: Order) -> str:
    return f"/pilotage/commandes/{order.pk}/"


def test_the_page_says_how_many_days_are_left_for_observations(client, supervisor, received):
    client.force_login(supervisor)
    with time_machine.travel(paris(2026, 11, 30, 10, 0), tick=False):
        text = text_of(client.get(page(received)))
    assert "Il reste 7 jours pour formuler des observations, jusqu'au lundi 7 décembre 2026 inclus." in text

    with time_machine.travel(paris(2026, 12, 7, 18, 0), tick=False):
        text = text_of(client.get(page(received)))
    assert "Dernier jour pour formuler des observations : jusqu'à ce soir minuit." in text

    with time_machine.travel(paris(2026, 12, 8, 0, 0), tick=False):
        response = client.get(page(received))
    assert "Le délai pour formuler des observations a expiré le 7 décembre 2026 à minuit" in text_of(response)
    assert f'action="/pilotage/commandes/{received.pk}/observations/"' not in response.content.decode()


def test_observations_from_the_page_and_too_late(client, supervisor, received):
    client.force_login(supervisor)
    url = page(received) + "observations/"
    with time_machine.travel(paris(2026, 11, 30, 10, 0), tick=False):
        response = client.post(url, {"text": "Le métré est à revoir."})
    assert response.status_code == HTTPStatus.FOUND
    assert response.url == page(received) + "#ccag"
    assert Observation.objects.get().made_by == supervisor

    with time_machine.travel(paris(2026, 12, 8, 0, 0), tick=False):
        response = client.post(url, {"text": "Encore une."})
    assert response.status_code == HTTPStatus.OK
    assert "a expiré le 7 décembre 2026 à minuit (CCAG-MI art. 3.7.2)" in text_of(response)
    assert Observation.objects.count() == 1

    with time_machine.travel(paris(2026, 11, 30, 10, 0), tick=False):
        response = client.post(url, {"text": ""})
    assert "Écrivez vos observations." in text_of(response)


def test_asking_an_extension_and_recording_the_answer_from_the_page(client, office, received):
    client.force_login(office)
    with time_machine.travel(paris(2026, 11, 25, 16, 0), tick=False):
        text = text_of(client.get(page(received)))
        assert "au plus tard à la fin du délai d'exécution, le lundi 30 novembre 2026 à 9 h 30" in text
        response = client.post(
            page(received) + "prolongations/",
            {"cause": "Pièce en rupture chez le fournisseur", "cause_date": "2026-11-24", "days": "6"},
        )
        assert response.status_code == HTTPStatus.FOUND
        extension = ExtensionRequest.objects.get()
        text = text_of(client.get(page(received)))
    assert "Demande du 25 novembre 2026 : 6 jours (Pièce en rupture chez le fournisseur" in text
    assert "En attente de la réponse du gestionnaire, attendue au plus tard le jeudi 10 décembre 2026" in text

    answer = page(received) + f"prolongations/{extension.pk}/reponse/"
    with time_machine.travel(paris(2026, 11, 27, 15, 0), tick=False):
        response = client.post(answer, {"decision": "granted", "granted_days": "", "at": "2026-11-27T14:00"})
        assert "Indiquez combien de jours le gestionnaire accorde." in text_of(response)
        response = client.post(answer, {"decision": "granted", "granted_days": "4", "at": "2026-11-27T14:00"})
        assert response.status_code == HTTPStatus.FOUND
        text = text_of(client.get(page(received)))
    received.refresh_from_db()
    assert received.due_at == DUE + timedelta(days=4)
    extension.refresh_from_db()
    assert (extension.answered_at, extension.answered_by) == (paris(2026, 11, 27, 14, 0), office)
    assert "accordée le 27 novembre 2026 : 4 jours, échéance portée au vendredi 4 décembre 2026 à 9 h 30" in text


def test_the_page_says_when_no_extension_can_be_asked_any_more(client, supervisor, received):
    client.force_login(supervisor)
    with time_machine.travel(DUE, tick=False):
        response = client.get(page(received))
    assert "Le délai d'exécution a expiré le lundi 30 novembre 2026 à 9 h 30" in text_of(response)
    assert f'action="/pilotage/commandes/{received.pk}/prolongations/"' not in response.content.decode()


def test_technicians_and_visitors_cannot_raise_observations_or_extensions(client, technician, received, supervisor):
    extension = ask(received, supervisor, paris(2026, 11, 24, 10, 0), cause_date=date(2026, 11, 23))
    urls = [
        page(received) + "observations/",
        page(received) + "prolongations/",
        page(received) + f"prolongations/{extension.pk}/reponse/",
    ]
    for url in urls:
        response = client.post(url, {"text": "x"})
        assert response.status_code == HTTPStatus.FOUND
        assert response.url.startswith("/connexion/")
    client.force_login(technician)
    for url in urls:
        assert client.post(url, {"text": "x"}).status_code == HTTPStatus.FORBIDDEN
    assert not Observation.objects.exists()


def test_an_answer_to_another_orders_request_is_a_404(client, supervisor, received, order):
    extension = ask(received, supervisor, paris(2026, 11, 24, 10, 0), cause_date=date(2026, 11, 23))
    client.force_login(supervisor)
    response = client.post(page(order) + f"prolongations/{extension.pk}/reponse/", {"decision": "refused"})
    assert response.status_code == HTTPStatus.NOT_FOUND


def test_office_staff_look_at_them_in_the_admin(client, office, received, supervisor):
    ask(received, supervisor, paris(2026, 11, 24, 10, 0), cause_date=date(2026, 11, 23))
    remedies.raise_observation(received, actor=supervisor, text="Le métré est à revoir.", at=paris(2026, 11, 24, 10, 0))
    client.force_login(office)
    for model in ("observation", "extensionrequest"):
        response = client.get(f"/admin/orders/{model}/")
        assert response.status_code == HTTPStatus.OK
        assert received.reference in response.content.decode()
    assert client.get("/admin/orders/observation/add/").status_code == HTTPStatus.FORBIDDEN
