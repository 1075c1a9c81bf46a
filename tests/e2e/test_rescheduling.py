"""Dates that make sense on a phone (issue 16, item 3): a past appointment is
refused with the reason shown where it was typed, moving an appointment asks
why, and every time on the page reads `sam. 5 déc. à 14 h 00`."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from orders.states import State
from portal import moments
from tests import factories
from tests.conftest import PASSWORD
from tests.e2e.helpers import Screens

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("database_before_the_live_server")]


def test_a_past_appointment_is_refused_and_a_move_says_why(live_server, order, technician, phone, screenshots):
    now = timezone.localtime().replace(second=0, microsecond=0)
    first = now + timedelta(hours=3)
    factories.bring_to(order, State.PLANNED, technician, appointment=first)
    page = phone
    screens = Screens(page, screenshots)
    page.goto(f"{live_server.url}/connexion/?next=/commandes/{order.pk}/")
    page.get_by_label("Identifiant").fill(technician.username)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    panel = page.locator("#order-panel")
    expect(panel.locator(".order-head")).to_contain_text(f"Rendez-vous{moments.moment(first)}")

    plan = page.locator("#action-plan")
    plan.locator("summary.button").click()
    expect(plan.get_by_label("Motif du report")).to_be_visible()
    yesterday = now - timedelta(days=1)
    plan.locator("input[name=appointment]").fill(f"{yesterday:%Y-%m-%dT%H:%M}")
    plan.get_by_label("Motif du report").fill("Occupant absent ce jour")
    plan.get_by_role("button", name="Changer le rendez-vous").click()
    alert = panel.locator("[role=alert]")
    expect(alert).to_contain_text("ce rendez-vous est déjà passé")
    screens.check("dates-01-past-refused")

    later = (now + timedelta(days=2)).replace(hour=14, minute=0)
    form = alert.locator("form")
    form.locator("input[name=appointment]").fill(f"{later:%Y-%m-%dT%H:%M}")
    expect(form.get_by_label("Motif du report")).to_have_value("Occupant absent ce jour")
    form.get_by_role("button", name="Changer le rendez-vous").click()
    expect(panel.locator(".order-head")).to_contain_text(moments.moment(later))
    expect(panel.locator(".history")).to_contain_text("(motif : Occupant absent ce jour)")
    screens.check("dates-02-moved-with-reason")
    order.refresh_from_db()
    assert order.appointment_at == later
