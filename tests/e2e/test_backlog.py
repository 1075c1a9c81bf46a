"""The planning's backlog in a supervisor's browser (issue 16, item 9, first
slice): pick a technician and a time for an order nobody has, see the
conflict with their visit before saving, pick another time, save: the order
leaves the backlog for the technician's row of the week."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from orders.models import Order
from orders.states import State
from tests import factories
from tests.conftest import PASSWORD
from tests.e2e.helpers import Screens

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("database_before_the_live_server")]


def test_an_order_is_dispatched_from_the_backlog_after_seeing_the_conflict(
    live_server, contract, asset, service_code, technician, supervisor, desktop, screenshots
):
    tomorrow = (timezone.localtime() + timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
    busy = factories.register_order(
        contract, reference="DEJA-10H", asset=asset, service_code=service_code, technician=technician
    )
    factories.bring_to(busy, State.PLANNED, technician, appointment=tomorrow)
    new = factories.register_order(
        contract,
        reference="NOUVELLE",
        asset=asset,
        service_code=service_code,
        description="Fuite sous l'évier de la cuisine",
    )
    Order.objects.filter(pk=new.pk).update(technician=None, due_at=tomorrow + timedelta(days=5))

    page = desktop
    screens = Screens(page, screenshots)
    page.goto(f"{live_server.url}/connexion/?next=/pilotage/planning/%3Fsemaine%3D{tomorrow:%G-W%V}")
    page.get_by_label("Identifiant").fill(supervisor.username)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    backlog = page.locator("#a-planifier")
    expect(backlog.locator(f"#a-planifier-{new.pk}")).to_contain_text("NOUVELLE")
    # The keyboard's way: the order picked like a radio button, then the technician and the time.
    backlog.locator(f"#pick-{new.pk}").focus()
    page.keyboard.press("Space")
    expect(backlog.locator(f"#pick-{new.pk}")).to_be_checked()
    backlog.get_by_label("Technicien").select_option(str(technician.pk))
    backlog.get_by_label("Rendez-vous").fill(f"{tomorrow:%Y-%m-%d}T10:30")
    backlog.get_by_label("Rendez-vous").dispatch_event("change")
    expect(backlog.locator(".backlog-warnings")).to_contain_text("Chevauche DEJA-10H")
    assert Order.objects.get(pk=new.pk).technician_id is None  # nothing saved yet
    screens.check("backlog-01-conflict-before-saving")

    backlog.get_by_label("Rendez-vous").fill(f"{tomorrow:%Y-%m-%d}T14:00")
    backlog.get_by_label("Rendez-vous").dispatch_event("change")
    expect(backlog.locator(".backlog-ok")).to_contain_text("Aucun conflit")
    backlog.get_by_role("button", name="Planifier").click()
    expect(page.locator("#a-planifier")).not_to_contain_text("NOUVELLE")
    expect(page.locator("table.planning")).to_contain_text("NOUVELLE")
    screens.check("backlog-02-dispatched")
    new.refresh_from_db()
    assert (new.technician_id, new.state) == (technician.pk, State.PLANNED)
    assert timezone.localtime(new.appointment_at).hour == 14


def test_an_order_dragged_onto_a_technicians_day_shows_the_conflict_then_is_dropped_elsewhere(
    live_server, contract, asset, service_code, technician, other_technician, supervisor, desktop, screenshots
):
    tomorrow = (timezone.localtime() + timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
    busy = factories.register_order(
        contract, reference="DEJA-10H", asset=asset, service_code=service_code, technician=technician
    )
    factories.bring_to(busy, State.PLANNED, technician, appointment=tomorrow)
    new = factories.register_order(
        contract, reference="NOUVELLE", asset=asset, service_code=service_code, description="Volet roulant bloqué"
    )
    Order.objects.filter(pk=new.pk).update(technician=None, due_at=tomorrow + timedelta(days=5))

    page = desktop
    screens = Screens(page, screenshots)
    page.goto(f"{live_server.url}/connexion/?next=/pilotage/planning/%3Fsemaine%3D{tomorrow:%G-W%V}")
    page.get_by_label("Identifiant").fill(supervisor.username)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    backlog = page.locator("#a-planifier")
    backlog.get_by_label("Rendez-vous").fill(f"{tomorrow:%Y-%m-%d}T10:00")
    day = f"{tomorrow:%Y-%m-%d}"
    column = page.locator("table.planning thead th").evaluate_all(
        f"(headers) => headers.findIndex((header) => header.dataset.day === '{day}')"
    )
    karim = page.locator(f"table.planning tr[data-technician='{technician.pk}'] td").nth(column - 1)
    lucie = page.locator(f"table.planning tr[data-technician='{other_technician.pk}'] td").nth(column - 1)

    item = backlog.locator(f"#a-planifier-{new.pk} label")
    start = item.bounding_box()
    page.mouse.move(start["x"] + 20, start["y"] + 10)
    page.mouse.down()
    page.mouse.move(start["x"] + 40, start["y"] + 30, steps=5)
    karim.scroll_into_view_if_needed()
    box = karim.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, steps=15)
    # Before letting go: the conflict with Karim's visit at 10:00.
    expect(backlog.locator(".backlog-warnings")).to_contain_text("Chevauche DEJA-10H")
    screens.page.screenshot(path=screenshots / "board-01-conflict-while-dragging.png")
    box = lucie.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, steps=15)
    expect(backlog.locator(".backlog-ok")).to_contain_text("Aucun conflit")
    page.mouse.up()
    expect(page.locator("#a-planifier")).not_to_contain_text("NOUVELLE")
    expect(page.locator(f"table.planning tr[data-technician='{other_technician.pk}']")).to_contain_text("NOUVELLE")
    screens.check("board-02-dropped")
    new.refresh_from_db()
    assert (new.technician_id, new.state) == (other_technician.pk, State.PLANNED)
    assert timezone.localtime(new.appointment_at) == tomorrow

    # The technician sees it as new on their list.
    page.get_by_role("button", name="Se déconnecter").click()
    page.goto(f"{live_server.url}/connexion/?next=/mes-commandes/")
    page.get_by_label("Identifiant").fill(other_technician.username)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    card = page.locator("a.order-card", has_text="NOUVELLE")
    expect(card.locator(".badge-news")).to_have_text("nouveau")
    screens.check("board-03-technician-sees-it-new")
