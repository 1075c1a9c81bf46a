"""The dispatch board in a supervisor's browser at 1440 px (issue 16, item 9):
drag an unassigned order onto a technician at 10:00, see the conflict with
their visit before letting it go, let it go elsewhere (an htmx round trip: the
row drawn again, the order out of the backlog), and the technician sees it as
« nouveau ». The same by keyboard, and without JavaScript; the backlog's filters."""

from __future__ import annotations

import re
from contextlib import contextmanager
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


@pytest.fixture
def day(contract, asset, service_code, technician):
    """Tomorrow: Karim has DEJA-10H at 10:00 (an hour, his code's); NOUVELLE,
    due in five days, is nobody's; URGENTE is critical and due the day after."""
    tomorrow = (timezone.localtime() + timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
    busy = factories.register_order(
        contract, reference="DEJA-10H", asset=asset, service_code=service_code, technician=technician
    )
    factories.bring_to(busy, State.PLANNED, technician, appointment=tomorrow)
    new = factories.register_order(
        contract, reference="NOUVELLE", asset=asset, service_code=service_code, description="Volet roulant bloqué"
    )
    urgent = factories.register_order(
        contract,
        reference="URGENTE",
        asset=asset,
        service_code=service_code,
        critical_level=4,
        description="Fuite sous l'évier de la cuisine",
    )
    Order.objects.filter(pk=new.pk).update(technician=None, due_at=tomorrow + timedelta(days=5))
    Order.objects.filter(pk=urgent.pk).update(technician=None, due_at=tomorrow + timedelta(days=1))
    return {"tomorrow": tomorrow, "new": new, "urgent": urgent}


def sign_in(page, live_server, user, next_url):
    page.goto(f"{live_server.url}/connexion/?next={next_url}")
    page.get_by_label("Identifiant").fill(user.username)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()


@contextmanager
def checked(page):
    """What is done inside, then the answer of the check htmx asks for it."""
    with page.expect_response(lambda response: "/pilotage/repartition/verifier/" in response.url):
        yield


def board_url(day) -> str:
    return f"/pilotage/repartition/%3Fjour%3D{day:%Y-%m-%d}"


def drag_to(page, item, slot):
    """Press on the backlog item, then move over `slot` (left pressed)."""
    start = item.bounding_box()
    page.mouse.move(start["x"] + 30, start["y"] + 10)
    page.mouse.down()
    page.mouse.move(start["x"] + 50, start["y"] + 30, steps=5)
    move_over(page, slot)


def move_over(page, slot):
    box = slot.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, steps=15)


def test_an_order_dragged_onto_a_technician_at_ten_shows_the_conflict_then_is_dropped_elsewhere(
    live_server, day, technician, other_technician, supervisor, desktop, screenshots
):
    page = desktop
    screens = Screens(page, screenshots)
    sign_in(page, live_server, supervisor, board_url(day["tomorrow"]))
    backlog = page.locator("#a-planifier")
    expect(backlog.locator(".backlog-item").first).to_contain_text("URGENTE")  # the most urgent first
    screens.check("board-00-the-day")
    new = day["new"]
    karim = page.locator(f"#board-row-{technician.pk}")
    lucie = page.locator(f"#board-row-{other_technician.pk}")
    expect(karim.locator(".board-visit")).to_contain_text("DEJA-10H")

    drag_to(page, backlog.locator(f"#a-planifier-{new.pk} label"), karim.locator(".board-slot[data-time='10:00']"))
    # Before letting go: the conflict with Karim's visit at 10:00, on the row and above the board.
    status = page.locator("#board-status")
    expect(status).to_contain_text("Chevauche DEJA-10H (rendez-vous")
    expect(status).to_contain_text("de Karim Haddad.")
    expect(karim.locator(".board-preview.is-conflict")).to_contain_text("10 h 00 – 11 h 00 NOUVELLE")
    page.screenshot(path=screenshots / "board-01-conflict-while-dragging.png")
    assert Order.objects.get(pk=new.pk).technician_id is None  # nothing saved yet

    move_over(page, lucie.locator(".board-slot[data-time='10:00']"))
    expect(status).to_contain_text("créneau libre, avant l'échéance")
    expect(lucie.locator(".board-preview.is-free")).to_be_visible()
    expect(karim.locator(".board-preview")).to_have_count(0)
    page.mouse.up()
    # The htmx round trip: Lucie's row drawn again with the visit, the order out of the backlog.
    expect(status).to_contain_text("Commande NOUVELLE : Technicien : Lucie Moreau")
    expect(lucie.locator(".board-visit")).to_contain_text("NOUVELLE")
    expect(backlog.locator(f"#a-planifier-{new.pk}")).to_have_count(0)
    expect(page.locator("#backlog-count")).to_have_text("1")
    screens.check("board-02-dropped")
    new.refresh_from_db()
    assert (new.technician_id, new.state) == (other_technician.pk, State.PLANNED)
    assert timezone.localtime(new.appointment_at) == day["tomorrow"]

    # Let go on a conflict: asked first; refused, nothing is saved.
    questions = []
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.dismiss()))
    urgent = day["urgent"]
    drag_to(page, backlog.locator(f"#a-planifier-{urgent.pk} label"), karim.locator(".board-slot[data-time='10:30']"))
    page.mouse.up()
    expect(status).to_contain_text("Rien n'a été enregistré : URGENTE reste à planifier.")
    assert questions and "Chevauche DEJA-10H" in questions[0] and "Planifier URGENTE quand même ?" in questions[0]
    assert Order.objects.get(pk=urgent.pk).technician_id is None

    # Lucie sees it as new on her list.
    page.get_by_role("button", name="Se déconnecter").click()
    sign_in(page, live_server, other_technician, "/mes-commandes/")
    card = page.locator("a.order-card", has_text="NOUVELLE")
    expect(card.locator(".badge-news")).to_have_text("nouveau")
    screens.check("board-03-technician-sees-it-new")


def test_an_order_is_dispatched_by_keyboard_after_seeing_the_conflict(
    live_server, day, technician, supervisor, desktop, screenshots
):
    page = desktop
    screens = Screens(page, screenshots)
    sign_in(page, live_server, supervisor, board_url(day["tomorrow"]))
    backlog = page.locator("#a-planifier")
    new = day["new"]
    backlog.locator(f"#pick-{new.pk}").focus()
    page.keyboard.press("Space")
    expect(backlog.locator(f"#pick-{new.pk}")).to_be_checked()
    expect(backlog.get_by_label("Durée (minutes)")).to_have_value("60")  # its code's
    with checked(page):
        backlog.get_by_label("Technicien").select_option(str(technician.pk))
    with checked(page):
        backlog.get_by_label("Rendez-vous").fill(f"{day['tomorrow']:%Y-%m-%d}T09:30")
        backlog.get_by_label("Rendez-vous").dispatch_event("change")
    # 9:30 for its code's hour runs into DEJA-10H at 10:00.
    expect(backlog.locator(".backlog-warnings")).to_contain_text("Chevauche DEJA-10H")
    screens.check("board-04-keyboard-conflict-before-saving")
    with checked(page):
        backlog.get_by_label("Durée (minutes)").fill("30")
        backlog.get_by_label("Durée (minutes)").dispatch_event("change")
    expect(backlog.locator(".backlog-ok")).to_contain_text("Aucun conflit")
    backlog.get_by_role("button", name="Planifier").press("Enter")
    expect(page.locator("#board-status")).to_contain_text("Commande NOUVELLE : Technicien : Karim Haddad")
    visit = page.locator(f"#board-row-{technician.pk} .board-visit", has_text="NOUVELLE")
    expect(visit).to_have_attribute("title", re.compile(r"^NOUVELLE · 9 h 30 – 10 h 00 · rendez-vous"))
    new.refresh_from_db()
    assert (new.technician_id, new.visit_minutes) == (technician.pk, 30)


def test_the_board_works_without_javascript(live_server, day, technician, supervisor, browser, screenshots):
    context = browser.new_context(
        viewport={"width": 1440, "height": 900}, locale="fr-FR", timezone_id="Europe/Paris", java_script_enabled=False
    )
    page = context.new_page()
    try:
        sign_in(page, live_server, supervisor, board_url(day["tomorrow"]))
        backlog = page.locator("#a-planifier")
        # The filters: a plain GET.
        backlog.get_by_label("Criticité").select_option("4")
        backlog.get_by_role("button", name="Filtrer").click()
        expect(backlog.locator(".backlog-item")).to_have_count(1)
        expect(backlog.locator(".backlog-item")).to_contain_text("URGENTE")
        urgent = day["urgent"]
        backlog.locator(f"#pick-{urgent.pk}").check()
        backlog.get_by_label("Technicien").select_option(str(technician.pk))
        backlog.get_by_label("Rendez-vous").fill(f"{day['tomorrow']:%Y-%m-%d}T10:00")
        backlog.get_by_role("button", name="Planifier").click()
        # Checked when saving: shown again with the conflict, nothing saved.
        expect(page.locator("#board-status")).to_contain_text("Chevauche DEJA-10H")
        assert Order.objects.get(pk=urgent.pk).technician_id is None
        page.screenshot(path=screenshots / "board-05-without-javascript-conflict.png", full_page=True)
        backlog.get_by_label("Planifier malgré les alertes").check()
        backlog.get_by_role("button", name="Planifier").click()
        expect(page.locator(".messages")).to_contain_text("Commande URGENTE : Technicien : Karim Haddad")
        expect(page.locator(f"#board-row-{technician.pk}")).to_contain_text("URGENTE")
        assert Order.objects.get(pk=urgent.pk).technician_id == technician.pk
    finally:
        context.close()


def test_the_backlog_is_filtered_in_place(live_server, day, supervisor, desktop, screenshots):
    page = desktop
    screens = Screens(page, screenshots)
    sign_in(page, live_server, supervisor, board_url(day["tomorrow"]))
    backlog = page.locator("#a-planifier")
    expect(backlog.locator(".backlog-item")).to_have_count(2)
    backlog.get_by_label("Criticité").select_option("4")
    expect(backlog.locator(".backlog-item")).to_have_count(1)
    assert "criticite=4" in page.url
    backlog.get_by_label("Rechercher").fill("volet")
    backlog.get_by_label("Criticité").select_option("")
    expect(backlog.locator(".backlog-item")).to_contain_text("NOUVELLE")
    expect(backlog.locator(".backlog-item")).to_have_count(1)
    screens.check("board-06-filtered")
    # What is filtered stays draggable.
    new = day["new"]
    drag_to(
        page,
        backlog.locator(f"#a-planifier-{new.pk} label"),
        page.locator(".board-row .board-slot[data-time='15:00']").first,
    )
    expect(page.locator("#board-status")).to_contain_text("NOUVELLE → Karim Haddad")
    page.mouse.move(5, 5, steps=5)
    page.mouse.up()
    expect(page.locator("#board-status")).to_contain_text("NOUVELLE reste à planifier")
