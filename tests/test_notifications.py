"""Notifications by email (French, text and HTML), each supervisor choosing which
they receive on « Mes notifications »: a new order, an order late within 48
hours, a message refused by the platform, the relay's 5-minute warning."""

from __future__ import annotations

import html as html_lib
import re
from datetime import datetime, timedelta
from http import HTTPStatus

import pytest
import time_machine
from django.conf import settings
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.utils import timezone

from orders import receiving, services, tasks
from orders.models import Order
from orders.states import State
from portal import emails
from portal.models import NotificationKind, NotificationPreference, OrderNotification, Role, User
from portal.relay import notify, watch
from portal.relay.models import Connection, MessageStatus, OutboxMessage
from tests.conftest import PARIS, make_user

# The fixture's order is notified on Friday 20 November 2026 at 9:30 and, with
# its service code's 72 hours, due on Monday 23 November at 9:30. It is now
# Sunday morning: received an hour ago, due within 48 hours.
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=PARIS)
URL = "/preferences/notifications/"


@pytest.fixture(autouse=True)
def now():
    with time_machine.travel(NOW, tick=False):
        yield NOW


@pytest.fixture
def received(contract, asset, service_code, technician) -> Order:
    """The order as the platform sent it an hour ago."""
    return receiving.register_order(
        contract=contract,
        reference="OPH57_261122090000",
        actor=None,
        notified_at=datetime(2026, 11, 20, 9, 30, tzinfo=PARIS),
        received_at=NOW - timedelta(hours=1),
        asset=asset,
        service_code=service_code,
        description="Fuite sous l'évier de la cuisine",
        technician=technician,
    )


@pytest.fixture
def team(db, supervisor, office, technician):
    """Who might receive what: the default supervisor and office member, a
    supervisor who chose, one without an address, one who left, a technician."""
    chooser = make_user("marc", Role.SUPERVISOR, first_name="Marc", last_name="Choisit")
    NotificationPreference.objects.create(
        user=chooser, new_order=False, late_soon=True, relay_rejected=False, relay_late=True
    )
    User.objects.filter(pk=make_user("sansmail", Role.SUPERVISOR, first_name="Sans", last_name="Adresse").pk).update(
        email=""
    )
    make_user("parti", Role.SUPERVISOR, first_name="Parti", last_name="Ailleurs", is_active=False)
    return {"supervisor": supervisor, "office": office, "chooser": chooser, "technician": technician}


def recipients_of(outbox) -> set[str]:
    return {address for email in outbox for address in email.to}


def html_of(email) -> str:
    [(content, mimetype)] = email.alternatives
    assert mimetype == "text/html"
    return content


def parts_of(email) -> tuple[str, str]:
    """The text part and the HTML part as read: no tags, no entities, single spaces."""
    return tuple(
        " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", part)).split()) for part in (email.body, html_of(email))
    )


class BrokenMailServer(BaseEmailBackend):
    """The mail server is unreachable (the edge of the system, not our code)."""

    def send_messages(self, email_messages):
        raise ConnectionRefusedError("Connexion refusée")


@pytest.fixture
def mail_server_down(settings):
    settings.MAILERS = {"default": {"BACKEND": "tests.test_notifications.BrokenMailServer"}}


# --- Who receives what -------------------------------------------------------------------


def test_by_default_supervisors_get_everything_and_office_staff_the_relays_alerts(team):
    supervisor, office, chooser = team["supervisor"].email, team["office"].email, team["chooser"].email
    assert emails.recipients(NotificationKind.NEW_ORDER) == [supervisor]
    assert emails.recipients(NotificationKind.LATE_SOON) == sorted([chooser, supervisor])
    assert emails.recipients(NotificationKind.RELAY_REJECTED) == sorted([office, supervisor])
    assert emails.recipients(NotificationKind.RELAY_LATE) == sorted([chooser, office, supervisor])


def test_people_without_an_address_who_left_or_who_are_technicians_get_nothing(team):
    everyone = {address for kind in NotificationKind for address in emails.recipients(kind)}
    assert everyone == {team["supervisor"].email, team["office"].email, team["chooser"].email}
    assert "" not in everyone


def test_a_supervisor_who_turned_everything_off_gets_nothing(team):
    NotificationPreference.objects.create(
        user=team["supervisor"],
        new_order=False,
        late_soon=False,
        relay_rejected=False,
        relay_late=False,
        offline_unapplied=False,
    )
    everyone = {address for kind in NotificationKind for address in emails.recipients(kind)}
    assert team["supervisor"].email not in everyone


def test_office_staff_may_turn_the_order_emails_on(team):
    NotificationPreference.objects.create(user=team["office"], new_order=True, late_soon=False)
    assert team["office"].email in emails.recipients(NotificationKind.NEW_ORDER)
    assert team["office"].email not in emails.recipients(NotificationKind.LATE_SOON)


# --- (a) A new order ------------------------------------------------------------------------


def test_a_new_order_is_announced_in_french_to_those_who_want_it_once(team, received):
    assert tasks.announce_new_orders() == 1
    assert recipients_of(mail.outbox) == {team["supervisor"].email}
    [email] = mail.outbox
    assert email.subject == "Nouvelle commande OPH57_261122090000 (Office Public de l'Habitat de Metz)"
    assert email.from_email == settings.DEFAULT_FROM_EMAIL
    html = html_of(email)
    for part in parts_of(email):
        assert "Bonjour" in part
        assert "Une nouvelle commande est arrivée" in part
        assert "OPH57_261122090000" in part
        assert "MULTITECH-2024-07" in part
        assert "14 rue des Tilleuls, 57000 Metz" in part
        assert "échéance le lundi 23 novembre 2026 à 10 h" in part
        assert "Technicien : Karim Haddad" in part
        assert "Gérer mes notifications" in part or "Pour la désactiver" in part
    for part in (email.body, html):
        assert f"/commandes/{received.pk}/" in part
        assert f"{settings.SITE_URL}/preferences/notifications/" in part
    assert "Fuite sous l'évier de la cuisine" in email.body
    assert "Fuite sous l&#x27;évier de la cuisine" in html
    mail.outbox.clear()
    assert tasks.announce_new_orders() == 0
    assert mail.outbox == []
    notice = OrderNotification.objects.get(order=received)
    assert (notice.kind, notice.recipients, notice.sent_at) == (NotificationKind.NEW_ORDER, 1, timezone.now())


def test_several_new_orders_go_in_one_email(team, received, contract):
    receiving.register_order(contract=contract, reference="MANUELLE-1", actor=team["office"])
    tasks.announce_new_orders()
    [email] = mail.outbox
    assert email.subject == "2 nouvelles commandes reçues"
    for part in parts_of(email):
        assert "2 nouvelles commandes sont arrivées" in part
        assert "OPH57_261122090000" in part
        assert "MANUELLE-1" in part


def test_orders_received_more_than_a_day_ago_or_cancelled_are_no_news(team, contract):
    receiving.register_order(contract=contract, reference="ANCIENNE", actor=None, received_at=NOW - timedelta(hours=25))
    cancelled = receiving.register_order(contract=contract, reference="ANNULEE", actor=None)
    services.cancel_order(cancelled, actor=None, reason="Doublon")
    assert tasks.announce_new_orders() == 0
    assert mail.outbox == []


def test_an_order_that_arrives_after_a_run_is_announced_by_the_next(team, received, contract):
    tasks.announce_new_orders()
    receiving.register_order(contract=contract, reference="SUIVANTE", actor=None)
    mail.outbox.clear()
    tasks.announce_new_orders()
    [email] = mail.outbox
    assert email.subject == "Nouvelle commande SUIVANTE (Office Public de l'Habitat de Metz)"
    assert "OPH57_261122090000" not in email.body


def test_nobody_wants_it_nothing_is_sent_and_the_order_counts_as_announced(db, received, supervisor):
    NotificationPreference.objects.create(user=supervisor, new_order=False)
    assert tasks.announce_new_orders() == 1
    assert mail.outbox == []
    NotificationPreference.objects.filter(user=supervisor).update(new_order=True)
    assert tasks.announce_new_orders() == 0


def test_each_recipient_gets_their_own_email(team, received):
    NotificationPreference.objects.create(user=team["office"], new_order=True)
    tasks.announce_new_orders()
    assert sorted(email.to for email in mail.outbox) == [[team["office"].email], [team["supervisor"].email]]


def test_when_the_mail_server_is_down_the_next_run_tries_again(team, received, mail_server_down, settings):
    assert tasks.announce_new_orders() == 0
    assert not OrderNotification.objects.exists()
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    assert tasks.announce_new_orders() == 1
    assert len(mail.outbox) == 1


# --- (b) An order late within 48 hours ----------------------------------------------------------


def test_an_order_late_within_48_hours_is_warned_about_once_in_french(team, received):
    assert tasks.warn_orders_late_soon() == 1
    assert recipients_of(mail.outbox) == {team["supervisor"].email, team["chooser"].email}
    email = mail.outbox[0]
    assert email.subject == "Commande OPH57_261122090000 en retard dans moins de 48 heures"
    for part in parts_of(email):
        assert "Cette commande sera en retard si ses travaux ne sont pas terminés avant son échéance" in part
        assert "Échéance le lundi 23 novembre 2026 à 10 h (dans 1 jour)" in part
        assert "État : À prendre en compte ; technicien : Karim Haddad" in part
    for part in (email.body, html_of(email)):
        assert f"/commandes/{received.pk}/" in part
    mail.outbox.clear()
    assert tasks.warn_orders_late_soon() == 0
    with time_machine.travel(NOW + timedelta(hours=12), tick=False):
        assert tasks.warn_orders_late_soon() == 0
    assert mail.outbox == []
    assert OrderNotification.objects.filter(order=received, kind=NotificationKind.LATE_SOON).count() == 1


def test_a_new_due_date_may_earn_a_new_warning(team, received):
    tasks.warn_orders_late_soon()
    receiving.update_order_details(received, actor=team["supervisor"], changes={"due_at": NOW + timedelta(hours=40)})
    mail.outbox.clear()
    assert tasks.warn_orders_late_soon() == 1
    assert "Échéance le mardi 24 novembre 2026 à 2 h" in mail.outbox[0].body


def test_orders_due_later_already_late_or_finished_get_no_warning(team, contract, technician):
    later = receiving.register_order(
        contract=contract, reference="PLUS-TARD", actor=None, due_at=NOW + timedelta(days=3)
    )
    late = receiving.register_order(
        contract=contract, reference="DEJA-EN-RETARD", actor=None, due_at=NOW - timedelta(hours=1)
    )
    done = receiving.register_order(
        contract=contract, reference="TERMINEE", actor=None, due_at=NOW + timedelta(hours=5)
    )
    services.acknowledge_order(done, actor=technician, at=NOW - timedelta(hours=3))
    services.start_work(done, actor=technician, at=NOW - timedelta(hours=2))
    services.finish_work(done, actor=technician, at=NOW - timedelta(hours=1))
    assert {later.state, late.state} == {State.TO_ACKNOWLEDGE}
    assert tasks.warn_orders_late_soon() == 0
    assert mail.outbox == []


def test_several_orders_late_soon_go_in_one_email_most_urgent_first(team, received, contract):
    receiving.register_order(contract=contract, reference="URGENTE", actor=None, due_at=NOW + timedelta(hours=2))
    tasks.warn_orders_late_soon()
    email = mail.outbox[0]
    assert email.subject == "2 commandes seront en retard dans moins de 48 heures"
    assert email.body.index("URGENTE") < email.body.index("OPH57_261122090000")


def test_a_late_warning_the_mail_server_could_not_take_goes_with_the_next_run(
    team, received, mail_server_down, settings
):
    assert tasks.warn_orders_late_soon() == 0
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    assert tasks.warn_orders_late_soon() == 1


def test_the_beat_runs_both_jobs():
    schedule = {entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert schedule["orders.tasks.announce_new_orders"] == 60.0
    assert schedule["orders.tasks.warn_orders_late_soon"] == timedelta(minutes=15)


# --- (c) and (d) The relay's emails follow the preferences ------------------------------------


@pytest.fixture
def connection(outbox_connection) -> Connection:
    return outbox_connection


@pytest.fixture
def relayed(connection, received, technician) -> Order:
    """The order acknowledged, so that the platform has a log to receive (before
    the acknowledgement the contractor sends nothing)."""
    services.acknowledge_order(received, actor=technician)
    return received


def test_a_refused_message_is_emailed_to_those_who_want_it(team, connection, relayed):
    message = relayed.outbox_messages.order_by("sequence").first()
    OutboxMessage.objects.filter(pk=message.pk).update(
        status=MessageStatus.REJECTED, last_error="Code prestation inconnu"
    )
    notify.message_rejected(message.pk)
    assert recipients_of(mail.outbox) == {team["supervisor"].email, team["office"].email}
    # One email per person: colleagues do not see each other's addresses.
    assert [len(sent.to) for sent in mail.outbox] == [1, 1]
    email = mail.outbox[0]
    assert email.subject == "Refus de la plateforme : commande OPH57_261122090000"
    assert "Code prestation inconnu" in email.body
    assert "Code prestation inconnu" in html_of(email)


def test_nobody_wanting_refusals_means_no_email(db, connection, relayed, supervisor):
    NotificationPreference.objects.create(user=supervisor, relay_rejected=False)
    message = relayed.outbox_messages.order_by("sequence").first()
    notify.message_rejected(message.pk)
    assert mail.outbox == []


def test_the_five_minute_warning_goes_to_those_who_want_it(team, connection, relayed):
    NotificationPreference.objects.create(user=team["office"], relay_late=False)
    OutboxMessage.objects.filter(order=relayed).update(created_at=timezone.now() - timedelta(minutes=6))
    watch.check_service_level()
    assert recipients_of(mail.outbox) == {team["supervisor"].email, team["chooser"].email}
    assert [len(sent.to) for sent in mail.outbox] == [1, 1]
    assert "depuis 6 minutes" in mail.outbox[0].body


# --- « Mes notifications » ---------------------------------------------------------------


def test_a_signed_out_visitor_is_sent_to_the_login_page(client, db):
    response = client.get(URL)
    assert response.status_code == HTTPStatus.FOUND
    assert response.url.startswith("/connexion/?next=")


def test_technicians_have_no_notifications_page(client, technician):
    client.force_login(technician)
    assert client.get(URL).status_code == HTTPStatus.FORBIDDEN
    assert client.post(URL, {"email": "x@example.fr", "new_order": "on"}).status_code == HTTPStatus.FORBIDDEN
    assert not NotificationPreference.objects.exists()


def checked(html: str, name: str) -> bool:
    tag = html[html.index(f'name="{name}"') :].split(">", 1)[0]
    return "checked" in tag


def test_a_supervisor_sees_the_defaults_and_the_navigation_leads_there(client, supervisor):
    client.force_login(supervisor)
    response = client.get(URL)
    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert "Mes notifications" in html
    assert f'href="{URL}"' in html
    assert all(checked(html, kind) for kind in NotificationKind.values)
    assert 'value="sophie@example.fr"' in html


def test_office_staff_see_their_own_defaults(client, office):
    client.force_login(office)
    html = client.get(URL).content.decode()
    assert [checked(html, kind) for kind in NotificationKind.values] == [False, False, True, True, True]


def test_saving_the_choices_changes_who_receives_what(client, supervisor, received):
    client.force_login(supervisor)
    response = client.post(URL, {"email": "s.lambert@example.fr", "late_soon": "on", "relay_late": "on"})
    assert response.status_code == HTTPStatus.FOUND
    assert response.url == URL
    preference = NotificationPreference.objects.get(user=supervisor)
    assert (preference.new_order, preference.late_soon, preference.relay_rejected, preference.relay_late) == (
        False,
        True,
        False,
        True,
    )
    supervisor.refresh_from_db()
    assert supervisor.email == "s.lambert@example.fr"
    page = client.get(URL).content.decode()
    assert "Vos préférences de notification sont enregistrées." in page
    assert not checked(page, "new_order")
    assert checked(page, "late_soon")
    tasks.announce_new_orders()
    tasks.warn_orders_late_soon()
    assert [email.to for email in mail.outbox] == [["s.lambert@example.fr"]]
    assert "en retard" in mail.outbox[0].subject


def test_saving_twice_keeps_one_row(client, supervisor):
    client.force_login(supervisor)
    client.post(URL, {"email": supervisor.email, "new_order": "on"})
    client.post(URL, {"email": supervisor.email, "relay_late": "on"})
    assert NotificationPreference.objects.filter(user=supervisor).count() == 1
    assert NotificationPreference.objects.get(user=supervisor).relay_late


def test_a_wrong_address_gets_a_french_error_and_saves_nothing(client, supervisor):
    client.force_login(supervisor)
    response = client.post(URL, {"email": "sophie chez example", "new_order": "on"})
    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert "Saisissez une adresse de courriel valide." in html
    assert 'value="sophie chez example"' in html
    assert not NotificationPreference.objects.exists()
    supervisor.refresh_from_db()
    assert supervisor.email == "sophie@example.fr"


def test_without_an_address_the_page_says_nothing_will_come(client, supervisor):
    client.force_login(supervisor)
    client.post(URL, {"email": "", "new_order": "on"})
    supervisor.refresh_from_db()
    assert supervisor.email == ""
    html = client.get(URL).content.decode()
    assert "Vous n'avez pas d'adresse e-mail : vous ne recevez aucune notification." in html
    assert emails.recipients(NotificationKind.NEW_ORDER) == []
