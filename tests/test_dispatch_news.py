"""The technician told (issue 16, item 9): on their list, an order to do that
they never opened is « nouveau », one given, moved or changed by someone else
since they last opened it is « modifié »; opening it clears the mark."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
import time_machine

from orders import dispatch
from orders.states import State
from tests import factories
from tests.conftest import PARIS

NOW = datetime(2026, 12, 7, 8, 0, tzinfo=PARIS)


@pytest.fixture(autouse=True)
def now():
    with time_machine.travel(NOW, tick=True) as traveller:
        yield traveller


def marks(client) -> dict[str, str]:
    html = client.get("/mes-commandes/").content.decode()
    found = {}
    for card in re.findall(r'<a class="order-card.*?</a>', html, re.S):
        reference = re.search(r'<strong class="reference">([^<]+)</strong>', card).group(1)
        news = re.search(r'<span class="badge badge-news">([^<]+)</span>', card)
        found[reference] = news.group(1) if news else ""
    return found


def test_new_then_seen_then_moved_by_the_supervisor(client, order, technician, supervisor, now):
    factories.bring_to(order, State.ACKNOWLEDGED, technician)
    client.force_login(technician)
    assert marks(client) == {order.reference: "nouveau"}

    client.get(f"/commandes/{order.pk}/")
    assert marks(client) == {order.reference: ""}

    now.shift(timedelta(minutes=5))
    dispatch.reschedule_order(order, actor=supervisor, appointment=NOW + timedelta(days=1))
    assert marks(client) == {order.reference: "modifié"}

    now.shift(timedelta(minutes=5))
    client.get(f"/commandes/{order.pk}/")
    assert marks(client) == {order.reference: ""}


def test_what_the_technician_does_themselves_is_no_news(client, order, technician, now):
    factories.bring_to(order, State.ACKNOWLEDGED, technician)
    client.force_login(technician)
    client.get(f"/commandes/{order.pk}/")
    now.shift(timedelta(minutes=5))
    client.post(f"/commandes/{order.pk}/planifier/", {"appointment": "2026-12-08T09:00"})
    assert marks(client) == {order.reference: ""}


def test_an_order_given_to_them_from_the_backlog_is_new(client, order, technician, other_technician, supervisor):
    factories.bring_to(order, State.ACKNOWLEDGED, technician)
    dispatch.reschedule_order(order, actor=supervisor, technician=other_technician)
    client.force_login(other_technician)
    assert marks(client) == {order.reference: "nouveau"}
