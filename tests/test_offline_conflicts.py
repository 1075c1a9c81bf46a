"""Offline conflicts on the server's side (issue 17): the newest value by action
time wins, every replayed action not applied is kept with why and what to do
(cancelled, reassigned, a line removed, a newer value), shown to supervisors
and office staff, emailed once per their preferences, and the platform never
gets a log dated before the previous one for a change received late. (The
phone's side is in tests/e2e/test_offline_conflicts.py.)"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from http import HTTPStatus

import pytest
import time_machine
from django.core import mail

from orders import notifications, planning, receiving, services
from orders.models import OrderEvent, UnappliedAction
from orders.states import State
from portal.models import NotificationPreference
from portal.relay import mapping
from portal.relay.models import OutboxMessage
from tests.conftest import PARIS
from tests.factories import bring_to

NOW = datetime(2026, 11, 24, 11, 30, tzinfo=PARIS)
REPLAY = {"HTTP_X_PORTAL_REPLAY": "1"}


@pytest.fixture(autouse=True)
def now():
    with time_machine.travel(NOW, tick=False):
        yield NOW


@pytest.fixture
def started(order, technician, supervisor):
    services.assign_order(order, actor=supervisor, pilot=supervisor, at=NOW - timedelta(hours=3))
    return bring_to(
        order, State.IN_PROGRESS, technician, at=NOW - timedelta(hours=2), appointment=NOW + timedelta(hours=1)
    )


@pytest.fixture
def phone(client, technician):
    client.force_login(technician)
    return client


def replay(client, url, data, at):
    return client.post(url, {**data, "client_at": at.isoformat(), "idempotency_key": str(uuid.uuid4())}, **REPLAY)


# --- The newest value by action time wins --------------------------------------


def test_an_older_progress_arriving_after_a_newer_one_is_kept_as_a_conflict_not_applied(phone, started, supervisor):
    services.set_progress(started, actor=supervisor, progress=60, at=NOW - timedelta(seconds=57))
    response = replay(phone, f"/commandes/{started.pk}/avancement/", {"progress": 40}, NOW - timedelta(seconds=60))
    assert response.status_code == HTTPStatus.CONFLICT
    answer = response.json()
    assert answer["kind"] == "superseded"
    assert answer["reason"].startswith("L'avancement a été mis à 60 % par Sophie Lambert le ")
    assert "c'est 60 %, la valeur la plus récente, qui est gardé" in answer["reason"]
    assert "Sophie Lambert, 06 55 44 33 22" in answer["advice"]
    started.refresh_from_db()
    assert started.progress == 60
    # The history agrees: its latest progress is the order's.
    latest = started.events.filter(kind="set_progress").order_by("-at", "-pk").first()
    assert latest.data["progress"] == 60
    (kept,) = UnappliedAction.objects.all()
    assert (kept.kind, kept.label, kept.acted_at) == ("superseded", "Avancement : 40 %", NOW - timedelta(seconds=60))


def test_a_newer_offline_progress_still_wins(phone, started, supervisor):
    services.set_progress(started, actor=supervisor, progress=60, at=NOW - timedelta(minutes=5))
    response = replay(phone, f"/commandes/{started.pk}/avancement/", {"progress": 40}, NOW - timedelta(minutes=1))
    assert response.json() == {"status": "applied", "label": "Avancement : 40 %"}
    started.refresh_from_db()
    assert (started.progress, started.progress_at) == (40, NOW - timedelta(minutes=1))


def test_a_line_mark_older_than_the_lines_latest_is_a_conflict(phone, started, supervisor):
    line = started.lines.get(reference="L1")
    services.mark_line(line, actor=supervisor, done=True, at=NOW - timedelta(minutes=2))
    services.mark_line(line, actor=supervisor, done=False, at=NOW - timedelta(minutes=1))
    response = replay(phone, f"/commandes/{started.pk}/lignes/{line.pk}/", {"done": "on"}, NOW - timedelta(minutes=3))
    assert response.status_code == HTTPStatus.CONFLICT
    assert "La ligne L1 a été marquée « non réalisée » par Sophie Lambert" in response.json()["reason"]
    line.refresh_from_db()
    assert not line.done


def test_a_line_ticked_offline_keeps_a_newer_progress(phone, started, supervisor):
    services.set_progress(started, actor=supervisor, progress=80, at=NOW - timedelta(minutes=1))
    line = started.lines.get(reference="L1")
    response = replay(phone, f"/commandes/{started.pk}/lignes/{line.pk}/", {"done": "on"}, NOW - timedelta(minutes=2))
    assert response.json()["status"] == "applied"
    started.refresh_from_db()
    assert started.lines.get(reference="L1").done and started.progress == 80


def test_a_replanning_older_than_the_latest_is_a_conflict(started, order, technician, supervisor, contract, asset):
    other = receiving.register_order(
        contract=contract, reference="AUTRE", actor=None, asset=asset, technician=technician, notified_at=NOW
    )
    services.acknowledge_order(other, actor=technician, at=NOW - timedelta(hours=1))
    planning.plan_order(other, actor=supervisor, appointment=NOW + timedelta(days=1), at=NOW - timedelta(minutes=5))
    planning.plan_order(
        other, actor=supervisor, appointment=NOW + timedelta(days=2), reason="Client", at=NOW - timedelta(minutes=1)
    )
    with pytest.raises(services.Superseded, match="c'est ce rendez-vous"):
        planning.plan_order(
            other, actor=technician, appointment=NOW + timedelta(days=3), reason="Pluie", at=NOW - timedelta(minutes=3)
        )
    other.refresh_from_db()
    assert other.appointment_at == NOW + timedelta(days=2)


# --- Refused: kept, with why and what to do -----------------------------------------


def test_works_started_offline_on_a_cancelled_order_are_kept_and_the_phone_told_who_cancelled(
    phone, order, technician, supervisor, office
):
    services.assign_order(order, actor=supervisor, pilot=supervisor)
    bring_to(order, State.PLANNED, technician, at=NOW - timedelta(hours=1), appointment=NOW + timedelta(hours=1))
    services.cancel_order(order, actor=office, reason="Doublon")
    response = replay(phone, f"/commandes/{order.pk}/demarrer/", {}, NOW - timedelta(minutes=10))
    assert response.status_code == HTTPStatus.CONFLICT
    answer = response.json()
    assert answer["reason"] == (
        f"La commande {order.reference} a été annulée par Nadia Petit le mar. 24 nov. à 11 h 30 (motif : Doublon) : "
        "votre action n'a pas été appliquée."
    )
    assert answer["advice"] == (
        "N'engagez plus rien sur cette commande. Appelez votre conducteur de travaux (Sophie Lambert, 06 55 44 33 22)."
    )
    assert answer["errors"] == [answer["reason"]] and answer["gone"] is False
    (kept,) = UnappliedAction.objects.all()
    assert (kept.label, kept.kind, kept.user) == ("Démarrer les travaux", "refused", technician)


def test_the_same_refused_action_sent_again_is_kept_once(phone, order, technician, office):
    services.cancel_order(order, actor=office, reason="Doublon")
    data = {"client_at": (NOW - timedelta(minutes=1)).isoformat(), "idempotency_key": str(uuid.uuid4())}
    for _ in range(2):
        assert phone.post(f"/commandes/{order.pk}/prendre-en-compte/", data, **REPLAY).status_code == 409
    assert UnappliedAction.objects.count() == 1


def test_an_order_given_to_someone_else_answers_why_not_a_404_and_the_phone_forgets_it(
    phone, started, other_technician, supervisor
):
    services.assign_order(started, actor=supervisor, technician=other_technician)
    line = started.lines.first()
    response = replay(phone, f"/commandes/{started.pk}/lignes/{line.pk}/", {"done": "on"}, NOW - timedelta(minutes=1))
    assert response.status_code == HTTPStatus.CONFLICT
    answer = response.json()
    assert answer["gone"] is True and answer["kind"] == "reassigned"
    assert answer["reason"].startswith(
        f"La commande {started.reference} ne vous est plus attribuée : elle a été confiée à Lucie Moreau par Sophie "
        "Lambert le "
    )
    (kept,) = UnappliedAction.objects.all()
    assert (kept.label, kept.line_reference) == ("Ligne L1 réalisée", "L1")
    # Its page leads to the list with the same sentence, not to « Page introuvable ».
    page = phone.get(f"/commandes/{started.pk}/", follow=True)
    assert page.redirect_chain == [("/mes-commandes/", HTTPStatus.FOUND)]
    assert "ne vous est plus attribuée" in page.content.decode()


def test_someone_who_never_had_the_order_still_gets_the_plain_404(client, other_technician, started):
    client.force_login(other_technician)
    for url in (f"/commandes/{started.pk}/", f"/commandes/{started.pk}/notes/"):
        response = client.post(url, {"text": "x"}, **REPLAY) if "notes" in url else client.get(url)
        assert response.status_code == HTTPStatus.NOT_FOUND
    assert not UnappliedAction.objects.exists()


def test_a_tick_on_a_removed_line_says_so_and_that_the_office_is_told(phone, started, supervisor):
    line = started.lines.get(reference="L2")
    receiving.remove_line(line, actor=supervisor)
    response = replay(phone, f"/commandes/{started.pk}/lignes/{line.pk}/", {"done": "on"}, NOW - timedelta(minutes=1))
    assert response.status_code == HTTPStatus.CONFLICT
    answer = response.json()
    assert answer["kind"] == "line_removed"
    assert answer["reason"].startswith(
        "La ligne L2 (Remplacement du siphon) a été retirée de la commande par Sophie Lambert le "
    )
    assert answer["reason"].endswith("Le bureau est prévenu qu'elle avait été réalisée.")
    assert "introuvable" not in answer["reason"]
    (kept,) = UnappliedAction.objects.all()
    assert (kept.label, kept.line_reference) == ("Ligne L2 réalisée", "L2")


def test_online_a_tick_on_a_removed_line_shows_the_order_with_the_reason(phone, started, supervisor):
    line = started.lines.get(reference="L2")
    receiving.remove_line(line, actor=supervisor)
    response = phone.post(f"/commandes/{started.pk}/lignes/{line.pk}/", {"done": "on"}, follow=True)
    assert response.status_code == HTTPStatus.OK
    assert "La ligne L2 (Remplacement du siphon) a été retirée" in response.content.decode()


# --- Seen and told -------------------------------------------------------------------


def test_supervisors_and_office_staff_see_it_on_the_timeline_and_in_the_admin(
    client, phone, started, supervisor, office
):
    services.cancel_order(started, actor=office, reason="Doublon")
    replay(phone, f"/commandes/{started.pk}/avancement/", {"progress": 30}, NOW - timedelta(minutes=4))
    kept = UnappliedAction.objects.get()
    for person in (supervisor, office):
        client.force_login(person)
        page = client.get(f"/pilotage/commandes/{started.pk}/").content.decode()
        assert f'id="non-applique-{kept.pk}"' in page and "Avancement : 30 %" in page, person
    client.force_login(office)
    assert client.get("/admin/orders/unappliedaction/").status_code == HTTPStatus.OK
    assert client.get(f"/admin/orders/unappliedaction/{kept.pk}/change/").status_code == HTTPStatus.OK
    order_page = client.get(f"/admin/orders/order/{started.pk}/change/").content.decode()
    assert "actions hors ligne non appliquées" in order_page.lower() and "Avancement : 30 %" in order_page


def test_one_email_to_whoever_wants_it_once(phone, started, supervisor, office):
    services.cancel_order(started, actor=office, reason="Doublon")
    replay(phone, f"/commandes/{started.pk}/avancement/", {"progress": 30}, NOW - timedelta(minutes=4))
    replay(phone, f"/commandes/{started.pk}/notes/", {"text": "Fuite réparée"}, NOW - timedelta(minutes=3))
    NotificationPreference.objects.create(user=office, offline_unapplied=False)
    assert notifications.tell_unapplied_actions() == 2
    (email,) = mail.outbox
    assert email.to == [supervisor.email]
    assert email.subject == "2 actions de techniciens non appliquées"
    assert "Avancement : 30 %, par Karim Haddad" in email.body and "Note : Fuite réparée" in email.body
    assert "&#x27;" not in email.body
    assert notifications.tell_unapplied_actions() == 0
    assert all(action.notified_at == NOW and action.notified_to == 1 for action in UnappliedAction.objects.all())


def test_with_the_mail_server_down_the_next_run_tells_them(phone, started, office, settings, monkeypatch):
    services.cancel_order(started, actor=office, reason="Doublon")
    replay(phone, f"/commandes/{started.pk}/avancement/", {"progress": 30}, NOW - timedelta(minutes=4))

    def down(*args, **kwargs):
        raise OSError("connection refused")

    monkeypatch.setattr(notifications.emails, "send", down)
    assert notifications.tell_unapplied_actions() == 0
    assert UnappliedAction.objects.get().notified_at is None
    monkeypatch.undo()
    assert notifications.tell_unapplied_actions() == 1


# --- The platform: eventDate never goes back ---------------------------------------


def test_a_change_received_late_is_dated_no_earlier_than_the_last_log_with_its_real_time_in_a_tag(
    phone, started, supervisor, outbox_connection
):
    services.set_progress(started, actor=supervisor, progress=60, at=NOW - timedelta(seconds=30))
    line = started.lines.get(reference="L1")
    replay(phone, f"/commandes/{started.pk}/lignes/{line.pk}/", {"done": "on"}, NOW - timedelta(seconds=90))
    event = OrderEvent.objects.get(order=started, kind="mark_line")
    assert event.at == NOW - timedelta(seconds=90)  # the history keeps the real time
    payloads = list(OutboxMessage.objects.filter(order=started).order_by("sequence").values_list("payload", flat=True))
    last = payloads[-1]
    assert last["description"].endswith("Ligne L1 réalisée : Recherche de fuite")
    assert last["eventDate"] == mapping.iso(NOW - timedelta(seconds=30))
    assert last["tags"]["action_date"] == mapping.iso(NOW - timedelta(seconds=90))


def test_the_steps_of_the_orders_life_keep_their_own_date():
    log = {"eventDate": "2026-11-24T09:00:00+01:00", "tags": {}}
    floor = datetime(2026, 11, 24, 10, 0, tzinfo=PARIS)
    assert mapping.not_before(log, "finish", floor) == log
    moved = mapping.not_before(log, "note", floor)
    assert moved["eventDate"] == "2026-11-24T10:00:00+01:00"
    assert moved["tags"] == {"action_date": "2026-11-24T09:00:00+01:00"}
    assert mapping.not_before(log, "note", None) == log


def test_appointments_are_no_floor():
    sent = [
        ("open", "planned", "2026-12-01T09:00:00+01:00"),
        ("pending", "start", "2026-11-24T09:00:00+01:00"),
        ("pending", "start", "bad"),
    ]
    assert mapping.event_date_floor(sent) == datetime(2026, 11, 24, 9, 0, tzinfo=PARIS)
    assert mapping.event_date_floor([]) is None


# --- A report written offline -------------------------------------------------------


def test_a_report_written_offline_for_an_order_cancelled_meanwhile_is_kept_with_its_text(phone, started, office):
    from tests.test_report_photos import report_fields

    services.cancel_order(started, actor=office, reason="Doublon")
    response = replay(phone, f"/commandes/{started.pk}/rapport/", report_fields(), NOW - timedelta(minutes=5))
    assert response.status_code == HTTPStatus.CONFLICT
    answer = response.json()
    assert answer["kind"] == "refused" and answer["gone"] is False
    assert "annulée par Nadia Petit" in answer["reason"], answer
    assert answer["errors"] and answer["fields"] == {"__all__": answer["errors"]}
    (kept,) = UnappliedAction.objects.all()
    assert (kept.action, kept.label, kept.acted_at) == ("report", "Rapport d'intervention", NOW - timedelta(minutes=5))
    assert kept.data["works_done"] == "Siphon remplacé, raccords resserrés, plus de fuite"
    assert not started.reports.exists()


def test_a_report_written_offline_for_an_order_given_to_someone_else_is_kept_and_said(
    phone, started, technician, other_technician, supervisor
):
    from tests.test_report_photos import report_fields

    services.assign_order(started, actor=supervisor, technician=other_technician)
    response = replay(phone, f"/commandes/{started.pk}/rapport/", report_fields(), NOW - timedelta(minutes=5))
    assert response.status_code == HTTPStatus.CONFLICT
    answer = response.json()
    assert answer["gone"] is True and answer["kind"] == "reassigned"
    (kept,) = UnappliedAction.objects.all()
    assert (kept.action, kept.user) == ("report", technician)
    # Its form, opened again, leads to the list with the reason, not to « Page introuvable ».
    page = phone.get(f"/commandes/{started.pk}/rapport/", follow=True)
    assert page.redirect_chain == [("/mes-commandes/", HTTPStatus.FOUND)]
    assert "ne vous est plus attribuée" in page.content.decode()
