"""Every email's links, followed as each of its recipients: each opens a page
that person may see (never the admin, which supervisors cannot open), an
anchor that the page has, and the plain-text parts read as written (no HTML
entity such as `l&#x27;Habitat`)."""

from __future__ import annotations

import html as html_lib
import re
from datetime import datetime, timedelta
from http import HTTPStatus

import pytest
import time_machine
from django.conf import settings
from django.core import mail
from django.utils import timezone

from orders import dispatch, notifications, receiving, services
from orders.models import Order
from orders.states import State
from portal.models import NotificationPreference, Role, User
from portal.relay import notify, watch
from portal.relay.models import MessageStatus, OutboxMessage
from quotes import decisions
from quotes import drafts as quote_drafts
from quotes import services as quote_services
from tests import factories
from tests.conftest import PARIS, make_user

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=PARIS)
ENTITY = re.compile(r"&(#x?[0-9a-fA-F]+|[a-zA-Z]+);")


@pytest.fixture(autouse=True)
def now():
    with time_machine.travel(NOW, tick=False):
        yield NOW


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def team(db, supervisor, office):
    """The default supervisor, an office member who wants every email, and a
    second supervisor on her defaults."""
    NotificationPreference.objects.create(
        user=office, new_order=True, late_soon=True, relay_rejected=True, relay_late=True
    )
    make_user("marc", Role.SUPERVISOR, first_name="Marc", last_name="Durand")
    return [supervisor, office]


@pytest.fixture
def received(contract, asset, service_code, technician, outbox_connection) -> Order:
    order = receiving.register_order(
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
    services.acknowledge_order(order, actor=technician)
    return order


def links_of(email) -> list[str]:
    [(content, mimetype)] = email.alternatives
    assert mimetype == "text/html"
    in_text = re.findall(r"https?://\S+", email.body)
    in_html = [html_lib.unescape(href) for href in re.findall(r'href="([^"]+)"', content)]
    assert in_text, "the text part has no link"
    assert sorted(set(in_text)) == sorted(set(in_html)), "both parts offer the same links"
    return sorted(set(in_text))


def follow_every_link(client, emails) -> int:
    """Open each link of each email as its recipient; the number of links followed."""
    followed = 0
    assert emails
    for email in emails:
        assert not ENTITY.search(email.subject), email.subject
        assert not ENTITY.search(email.body), email.body
        [address] = email.to
        user = User.objects.get(email=address)
        client.force_login(user)
        for link in links_of(email):
            assert link.startswith(settings.SITE_URL + "/"), link
            path, _, anchor = link.removeprefix(settings.SITE_URL).partition("#")
            assert not path.startswith("/admin/"), f"{user.role} {link}"
            response = client.get(path)
            assert response.status_code == HTTPStatus.OK, f"{user.get_role_display()} {link}"
            if anchor:
                assert f'id="{anchor}"' in response.content.decode(), f"no #{anchor} on {path}"
            followed += 1
        client.logout()
    return followed


def test_new_order_email_links_open_for_supervisors_and_office(client, team, received):
    assert notifications.announce_new_orders() == 1
    assert {email.to[0] for email in mail.outbox} == {user.email for user in team} | {"marc@example.fr"}
    assert follow_every_link(client, mail.outbox) == 3 * 2  # the order and the preferences, for each


def test_late_soon_email_links_open_for_supervisors_and_office(client, team, received):
    assert notifications.warn_late_soon() == 1
    assert follow_every_link(client, mail.outbox) == 3 * 2
    assert "Office Public de l'Habitat de Metz" in mail.outbox[0].body


def test_refusal_email_links_to_the_order_timeline_and_the_error_queue(client, team, received):
    message = received.outbox_messages.order_by("sequence").first()
    OutboxMessage.objects.filter(pk=message.pk).update(
        status=MessageStatus.REJECTED, last_error="Code prestation inconnu"
    )
    notify.message_rejected(message.pk)
    assert len(mail.outbox) == 3
    assert follow_every_link(client, mail.outbox) == 3 * 2
    email = mail.outbox[0]
    assert f"/pilotage/commandes/{received.pk}/#chronologie" in email.body
    assert "/relais/erreurs/" in email.body
    assert "Office Public de l'Habitat de Metz a refusé" in email.body


def test_five_minute_warning_links_to_the_transmissions_and_reads_as_written(client, team, received):
    OutboxMessage.objects.filter(order=received).update(created_at=timezone.now() - timedelta(minutes=6))
    watch.check_service_level()
    assert len(mail.outbox) == 3
    assert follow_every_link(client, mail.outbox) == 3 * 2
    email = mail.outbox[0]
    assert "Office Public de l'Habitat de Metz depuis 6 minutes" in " ".join(email.body.split())
    assert "Office Public de l'Habitat de Metz" in email.subject


def test_quote_refusal_email_links_open_for_who_sent_it(
    client, supervisor, order, technician, price_item, django_capture_on_commit_callbacks
):
    started = factories.bring_to(order, State.IN_PROGRESS, technician)
    quote = quote_services.create_quote_for_order(started, actor=supervisor)
    quote_drafts.add_line(quote, actor=supervisor, price_item=price_item, quantity="2")
    quote_services.send_quote(quote, actor=supervisor)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        decisions.record_decision(quote, accepted=False)
    assert follow_every_link(client, mail.outbox) == 2
    assert "Office Public de l'Habitat de Metz" in mail.outbox[0].body
    assert "Office Public de l'Habitat de Metz" in mail.outbox[0].subject


def test_the_technician_told_of_a_dispatch_opens_the_order(
    client, order, technician, supervisor, django_capture_on_commit_callbacks
):
    factories.bring_to(order, State.ACKNOWLEDGED, technician, at=NOW - timedelta(hours=2))
    with django_capture_on_commit_callbacks() as callbacks:
        events = dispatch.reschedule_order(order, actor=supervisor, appointment=NOW + timedelta(days=1))
    changes = [event.label for event in events]
    # Queued for the worker once saved: the order and what changed.
    assert [(callback.func.__name__, callback.args) for callback in callbacks] == [("delay", (order.pk, changes))]

    assert notifications.tell_technician(order.pk, changes) == 1
    [email] = mail.outbox
    assert email.to == [technician.email]
    assert email.subject == f"Commande {order.reference} : Rendez-vous fixé le lun. 23 nov. à 10 h 00"
    assert "Rendez-vous : lun. 23 nov. à 10 h 00" in email.body
    assert follow_every_link(client, mail.outbox) == 1


def test_what_a_technician_plans_themselves_is_not_emailed_to_them(
    order, technician, django_capture_on_commit_callbacks
):
    factories.bring_to(order, State.ACKNOWLEDGED, technician, at=NOW - timedelta(hours=2))
    with django_capture_on_commit_callbacks() as callbacks:
        dispatch.reschedule_order(order, actor=technician, appointment=NOW + timedelta(days=1))
    assert callbacks == []
