"""Moving a visit on the dispatch board in a supervisor's browser at 1440 px
(issue 16, items 3 and 9): Karim is ill, his 10:00 visit is dragged to 14:00 on
Lucie's row; over Lucie's own visit the conflict shows before letting go; let
go, the reason of the report is asked (required) and typed; both rows are drawn
again, and the moved visit can be dragged again. The same by keyboard, with
the form's « Visite à déplacer »."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from orders.models import Order, OrderEvent
from orders.states import State
from portal.relay.models import OutboxMessage
from tests import factories
from tests.e2e.helpers import Screens
from tests.e2e.test_board import board_url, checked, move_over, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("database_before_the_live_server")]


@pytest.fixture
def day(contract, asset, service_code, technician, other_technician, outbox_connection):
    """Tomorrow: Karim has A-DEPLACER at 10:00, Lucie has LUCIE-15H at 15:00 (an hour each, their code's)."""
    tomorrow = (timezone.localtime() + timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)

    def planned(reference, who, when):
        order = factories.register_order(
            contract, reference=reference, asset=asset, service_code=service_code, technician=who
        )
        return factories.bring_to(order, State.PLANNED, who, appointment=when)

    moved = planned("A-DEPLACER", technician, tomorrow)
    planned("LUCIE-15H", other_technician, tomorrow.replace(hour=15))
    Order.objects.filter(pk=moved.pk).update(due_at=tomorrow + timedelta(days=5))
    return {"tomorrow": tomorrow, "moved": moved}


def drag_from(page, block, slot):
    """Press on a visit of the board, then move over `slot` (left pressed)."""
    start = block.bounding_box()
    page.mouse.move(start["x"] + 10, start["y"] + 8)
    page.mouse.down()
    page.mouse.move(start["x"] + 30, start["y"] + 28, steps=5)
    move_over(page, slot)


def test_a_visit_is_dragged_to_another_technician_with_the_reason_of_the_report(
    live_server, day, technician, other_technician, supervisor, desktop, screenshots
):
    page = desktop
    screens = Screens(page, screenshots)
    sign_in(page, live_server, supervisor, board_url(day["tomorrow"]))
    karim = page.locator(f"#board-row-{technician.pk}")
    lucie = page.locator(f"#board-row-{other_technician.pk}")
    status = page.locator("#board-status")
    moved = day["moved"]

    # Over Lucie's 14:30: the hour would run into her 15:00 visit, said before letting go.
    drag_from(
        page, karim.locator(".board-visit", has_text="A-DEPLACER"), lucie.locator(".board-slot[data-time='14:30']")
    )
    expect(status).to_contain_text("Chevauche LUCIE-15H (rendez-vous")
    expect(status).to_contain_text("de Lucie Moreau.")
    expect(lucie.locator(".board-preview.is-conflict")).to_contain_text("14 h 30 – 15 h 30 A-DEPLACER")
    page.screenshot(path=screenshots / "board-moves-01-conflict-while-dragging.png")

    # At 14:00 it is free; let go, the reason is asked before anything is saved.
    move_over(page, lucie.locator(".board-slot[data-time='14:00']"))
    expect(status).to_contain_text("A-DEPLACER → Lucie Moreau")
    expect(status).to_contain_text("14 h 00 – 15 h 00 : créneau libre, avant l'échéance.")
    page.mouse.up()
    dialog = page.get_by_role("dialog", name="Déplacer A-DEPLACER")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Vers Lucie Moreau")
    expect(dialog).to_contain_text("14 h 00 – 15 h 00.")
    reason = dialog.get_by_label("Motif du report")
    expect(reason).to_be_focused()
    dialog.get_by_role("button", name="Déplacer").click()
    expect(dialog.locator("#move-error")).to_have_text(
        "Indiquez le motif du report : il est transmis au client avec le nouveau rendez-vous."
    )
    expect(reason).to_have_attribute("aria-invalid", "true")
    assert Order.objects.get(pk=moved.pk).technician_id == technician.pk  # nothing saved yet
    page.keyboard.type("Karim malade")
    page.screenshot(path=screenshots / "board-moves-02-reason-asked.png")
    page.keyboard.press("Enter")

    # The htmx round trip: the row it left and the row it went to, drawn again.
    expect(dialog).to_be_hidden()
    expect(status).to_contain_text("Commande A-DEPLACER : Technicien : Lucie Moreau ; Rendez-vous reporté au")
    expect(status).to_contain_text("(motif : Karim malade)")
    expect(karim.locator(".board-visit")).to_have_count(0)
    expect(karim.locator(".board-who small").first).to_have_text("0 visite")
    visit = lucie.locator(".board-visit", has_text="A-DEPLACER")
    expect(visit).to_have_attribute("title", re.compile(r"^A-DEPLACER · 14 h 00 – 15 h 00 · rendez-vous"))
    screens.check("board-moves-03-moved")
    moved.refresh_from_db()
    assert (moved.technician_id, moved.state) == (other_technician.pk, State.PLANNED)
    assert timezone.localtime(moved.appointment_at) == day["tomorrow"].replace(hour=14)
    event = OrderEvent.objects.filter(order=moved, kind="plan").latest("pk")
    assert "(motif : Karim malade)" in OutboxMessage.objects.get(event=event).payload["description"]

    # Drawn again, it is dragged again; the question dismissed (Échap), nothing is saved.
    drag_from(page, visit, lucie.locator(".board-slot[data-time='16:30']"))
    expect(status).to_contain_text("16 h 30 – 17 h 30 : créneau libre")
    page.mouse.up()
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(status).to_contain_text("Rien n'a été enregistré : A-DEPLACER reste à sa place.")
    assert timezone.localtime(Order.objects.get(pk=moved.pk).appointment_at).hour == 14


def test_a_visit_is_moved_by_keyboard_with_the_form(live_server, day, technician, supervisor, desktop, screenshots):
    page = desktop
    screens = Screens(page, screenshots)
    sign_in(page, live_server, supervisor, board_url(day["tomorrow"]))
    backlog = page.locator("#a-planifier")
    moved = day["moved"]
    with checked(page):
        backlog.get_by_label("Ou une visite à déplacer").select_option(str(moved.pk))
    expect(backlog.get_by_label("Durée (minutes)")).to_have_value("60")  # its own
    with checked(page):
        backlog.get_by_label("Technicien").select_option(str(technician.pk))
    with checked(page):
        backlog.get_by_label("Rendez-vous").fill(f"{day['tomorrow']:%Y-%m-%d}T11:30")
        backlog.get_by_label("Rendez-vous").dispatch_event("change")
    expect(backlog.locator("#dispatch-check")).to_contain_text(
        "Ce rendez-vous est déplacé : indiquez le motif du report."
    )
    expect(backlog.locator("#dispatch-check")).to_contain_text("Aucun conflit")
    # Sent without the reason: refused, said in French; with it, saved.
    backlog.get_by_role("button", name="Planifier").press("Enter")
    expect(page.locator("#board-status")).to_contain_text("Indiquez le motif du report")
    backlog.get_by_label("Motif du report").fill("Chantier précédent en retard")
    backlog.get_by_role("button", name="Planifier").press("Enter")
    expect(page.locator("#board-status")).to_contain_text("(motif : Chantier précédent en retard)")
    visit = page.locator(f"#board-row-{technician.pk} .board-visit", has_text="A-DEPLACER")
    expect(visit).to_have_attribute("title", re.compile(r"^A-DEPLACER · 11 h 30 – 12 h 30"))
    expect(backlog.get_by_label("Motif du report")).to_have_value("")
    screens.check("board-moves-04-keyboard")
    assert timezone.localtime(Order.objects.get(pk=moved.pk).appointment_at).hour == 11
