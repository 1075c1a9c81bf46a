"""Dates that make sense on a phone (issue 16, item 3): a past appointment is
refused with the reason shown where it was typed, moving an appointment asks
why, and every time on the page reads `sam. 5 déc. à 14 h 00`."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from orders.formatting import format_datetime
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


def test_a_supervisor_moves_an_appointment_from_the_week_planning_with_its_reason(
    live_server, order, technician, supervisor, desktop, screenshots
):
    now = timezone.localtime().replace(second=0, microsecond=0)
    first = (now + timedelta(days=1)).replace(hour=9, minute=0)
    factories.bring_to(order, State.PLANNED, technician, appointment=first)
    later = first.replace(hour=15, minute=30)
    year, week, _ = first.isocalendar()
    page = desktop
    screens = Screens(page, screenshots)
    page.goto(f"{live_server.url}/connexion/?next=/pilotage/planning/?semaine={year}-W{week:02d}")
    page.get_by_label("Identifiant").fill(supervisor.username)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()

    item = page.locator(f"#commande-{order.pk}")
    item.locator("summary", has_text="Modifier").click()
    item.get_by_label("Rendez-vous").fill(f"{later:%Y-%m-%dT%H:%M}")
    item.get_by_role("button", name="Enregistrer").click()
    # Refused without a reason: the same week, the form open as it was typed, the reason asked on its field.
    item = page.locator(f"#commande-{order.pk}")
    reason = item.get_by_label("Motif du report")
    expect(page.locator(".messages")).to_contain_text("rien n'a été modifié. Indiquez le motif du report")
    expect(reason).to_have_attribute("aria-invalid", "true")
    expect(item.get_by_label("Rendez-vous")).to_have_value(f"{later:%Y-%m-%dT%H:%M}")
    screens.check("dates-03-planning-reason-asked")

    reason.fill("Occupant absent le matin")
    item.get_by_role("button", name="Enregistrer").click()
    expect(page.locator(".messages")).to_contain_text(
        f"Rendez-vous reporté au {format_datetime(later)} (motif : Occupant absent le matin)"
    )
    expect(page.locator(f"#commande-{order.pk} .plan-when")).to_contain_text("15 h 30")
    screens.check("dates-04-planning-moved-with-reason")
    order.refresh_from_db()
    assert order.appointment_at == later
    assert order.events.latest("pk").label.endswith("(motif : Occupant absent le matin)")
