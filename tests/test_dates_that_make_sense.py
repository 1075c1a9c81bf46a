"""Dates that make sense (issue 16, item 3): one French date and time format
(`sam. 5 déc. 2026 à 14 h 00`, the year only when it is not this year's),
past appointments refused beyond a short grace (the technician's own time
counting for what a phone sends late), and a reason asked when an appointment
moves, relayed to the platform in the description."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from html import unescape
from http import HTTPStatus

import pytest
import time_machine

from orders.states import State
from portal import moments
from portal.relay.models import OutboxMessage
from tests import factories
from tests.conftest import PARIS

NOW = datetime(2026, 12, 5, 14, 0, tzinfo=PARIS)  # Saturday
REPLAY = {"HTTP_X_PORTAL_REPLAY": "1"}


@pytest.fixture(autouse=True)
def now():
    with time_machine.travel(NOW, tick=False):
        yield NOW


@pytest.fixture
def signed_in(client, technician):
    client.force_login(technician)
    return client


# --- One format -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "today", "expected"),
    [
        (datetime(2026, 12, 5, 14, 0, tzinfo=PARIS), date(2027, 1, 4), "sam. 5 déc. 2026 à 14 h 00"),
        (datetime(2026, 12, 5, 14, 0, tzinfo=PARIS), date(2026, 12, 5), "sam. 5 déc. à 14 h 00"),
        (datetime(2027, 1, 5, 9, 5, tzinfo=PARIS), date(2026, 12, 5), "mar. 5 janv. 2027 à 9 h 05"),
    ],
)
def test_one_french_format(value, today, expected):
    assert moments.moment(value, today=today) == expected


def test_in_paris_time_whatever_the_value_came_in():
    # 23:30 UTC on 31 July is already 1 August in Paris (summer time, +2).
    assert moments.moment(datetime(2026, 7, 31, 23, 30, tzinfo=UTC), today=date(2026, 12, 5)) == "sam. 1 août à 1 h 30"


def test_the_order_page_reads_every_time_in_that_format(signed_in, order, technician):
    factories.bring_to(
        order, State.IN_PROGRESS, technician, at=NOW - timedelta(hours=1), appointment=NOW - timedelta(minutes=50)
    )
    html = signed_in.get(f"/commandes/{order.pk}/").content.decode()
    assert "sam. 5 déc. à 13 h 10" in html  # the appointment
    assert "sam. 5 déc. à 13 h 00" in html  # the start, and the history
    for old in ("13h10", "13:10", "13h00", "13:00"):
        assert old not in html.replace('datetime="2026-12-05T13:00', "")


def test_the_card_of_my_orders_too(signed_in, order, technician):
    factories.bring_to(order, State.PLANNED, technician, appointment=datetime(2027, 1, 5, 9, 5, tzinfo=PARIS))
    html = signed_in.get("/mes-commandes/").content.decode()
    assert "Rendez-vous mar. 5 janv. 2027 à 9 h 05" in html


# --- Past appointments ------------------------------------------------------------------------


def test_an_appointment_two_hours_ago_is_refused_in_french(signed_in, order, technician):
    factories.bring_to(order, State.ACKNOWLEDGED, technician)
    response = signed_in.post(f"/commandes/{order.pk}/planifier/", {"appointment": "2026-12-05T12:00"})
    assert response.status_code == HTTPStatus.OK
    assert "ce rendez-vous est déjà passé : indiquez une date et une heure à venir." in response.content.decode()
    order.refresh_from_db()
    assert (order.state, order.appointment_at) == (State.ACKNOWLEDGED, None)


def test_an_appointment_twenty_minutes_ago_is_within_the_grace(signed_in, order, technician):
    factories.bring_to(order, State.ACKNOWLEDGED, technician)
    signed_in.post(f"/commandes/{order.pk}/planifier/", {"appointment": "2026-12-05T13:40"})
    order.refresh_from_db()
    assert order.appointment_at == datetime(2026, 12, 5, 13, 40, tzinfo=PARIS)


def test_a_period_already_over_is_refused(signed_in, order, technician):
    factories.bring_to(order, State.ACKNOWLEDGED, technician)
    response = signed_in.post(
        f"/commandes/{order.pk}/planifier/",
        {"planned_start": "2026-12-01T08:00", "planned_end": "2026-12-03T17:00"},
    )
    assert "cette période de travaux est déjà passée" in response.content.decode()


def test_an_appointment_sent_late_from_a_phone_counts_from_when_it_was_set(signed_in, order, technician):
    """Set offline at 10:00 for 11:00, sent at 14:00: it was not in the past then."""
    factories.bring_to(order, State.ACKNOWLEDGED, technician, at=NOW - timedelta(hours=5))
    acted = NOW - timedelta(hours=4)
    response = signed_in.post(
        f"/commandes/{order.pk}/planifier/",
        {"appointment": "2026-12-05T11:00", "client_at": acted.isoformat(), "idempotency_key": str(uuid.uuid4())},
        **REPLAY,
    )
    assert response.status_code == HTTPStatus.OK, response.content
    order.refresh_from_db()
    assert order.appointment_at == datetime(2026, 12, 5, 11, 0, tzinfo=PARIS)


# --- A reason when it moves -------------------------------------------------------------------


def test_moving_an_appointment_asks_a_reason_and_relays_it(signed_in, order, technician, outbox_connection):
    factories.bring_to(order, State.PLANNED, technician, appointment=NOW + timedelta(hours=2))
    page = signed_in.get(f"/commandes/{order.pk}/").content.decode()
    assert "Motif du report" in page

    response = signed_in.post(f"/commandes/{order.pk}/planifier/", {"appointment": "2026-12-08T09:00"})
    assert "Indiquez le motif du report : il est transmis au client avec le nouveau rendez-vous." in unescape(
        response.content.decode()
    )
    order.refresh_from_db()
    assert order.appointment_at == NOW + timedelta(hours=2)

    signed_in.post(
        f"/commandes/{order.pk}/planifier/", {"appointment": "2026-12-08T09:00", "reason": "  Occupant  indisponible "}
    )
    order.refresh_from_db()
    assert order.appointment_at == datetime(2026, 12, 8, 9, 0, tzinfo=PARIS)
    event = order.events.filter(kind="plan").latest("pk")
    assert event.label == "Rendez-vous reporté au mar. 8 déc. à 9 h 00 (motif : Occupant indisponible)"
    assert event.data["reason"] == "Occupant indisponible"
    message = OutboxMessage.objects.get(event=event)
    assert "motif : Occupant indisponible" in message.payload["description"]


def test_the_first_appointment_asks_no_reason(signed_in, order, technician):
    factories.bring_to(order, State.ACKNOWLEDGED, technician)
    page = signed_in.get(f"/commandes/{order.pk}/").content.decode()
    assert "Motif du report" not in page
    signed_in.post(f"/commandes/{order.pk}/planifier/", {"appointment": "2026-12-08T09:00"})
    order.refresh_from_db()
    assert order.state == State.PLANNED
