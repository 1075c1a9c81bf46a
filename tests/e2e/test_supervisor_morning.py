"""A supervisor's morning, in a desktop browser against the live server
(sandbox included): the overview, the late count followed to the filtered
list, the late order reassigned to the other technician, its timeline read
(what reached the platform, and the change it refused with its message), the
refused change resent once the platform accepts it again, then delivered; and
the week's planning. The platform ends up with every log of the order once, in
order, the reassignment included.

Each screen is saved full-page in E2E_SCREENSHOTS (artifacts/screenshots by
default), and checked for a horizontal scroll at 1440 px and console errors."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from http import HTTPStatus
from time import sleep

import httpx
import pytest
from django.utils import timezone
from playwright.sync_api import Locator, expect

from orders import planning, receiving, services
from orders.models import Order
from portal.relay.models import MessageStatus, OutboxMessage
from tests.conftest import PARIS, PASSWORD
from tests.e2e.helpers import Screens, drain

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("database_before_the_live_server")]

NOTE = "Opération débloquée par le bailleur sur sa plateforme"


@dataclass(frozen=True)
class Morning:
    late: Order  # Karim's, due two days ago, works started: its start was refused
    visit: Order  # Lucie's appointment today
    soon: Order  # Karim's, due within 48 hours
    new: Order  # arrived this morning, to acknowledge
    refused: OutboxMessage  # the late order's log the platform answered 400


def behave(platform: str, **switches: object) -> None:
    response = httpx.post(f"{platform}/comportement.json", json=switches)
    assert response.status_code == HTTPStatus.OK, response.text


def today_at(hour: int) -> datetime:
    return timezone.make_aware(datetime.combine(timezone.localdate(), time(hour)), PARIS)


def not_across_midnight(margin: timedelta = timedelta(minutes=3)) -> None:
    """The orders are made for today and the pages read later: when midnight
    (Paris time) is that close, wait for it, else "today" is two days."""
    now = timezone.localtime()
    left = timezone.make_aware(datetime.combine(now.date() + timedelta(days=1), time.min), PARIS) - now
    if left < margin:
        sleep(left.total_seconds() + 1)


@pytest.fixture
def morning(platform, connection, contract, asset, service_code, technician, other_technician) -> Morning:
    """Four orders built through the services, their logs delivered; then the
    platform refuses the late order's next log, and a change waits behind it."""
    not_across_midnight()
    now = timezone.now()
    lines = [
        {"reference": "L1", "label": "Recherche de fuite", "quantity": Decimal(1), "unit_price": Decimal("65.00")},
        {"reference": "L2", "label": "Remplacement du siphon", "quantity": Decimal(1), "unit_price": Decimal("48.50")},
    ]

    def register(reference: str, ago: timedelta, technician=None, **details) -> Order:
        return receiving.register_order(
            contract=contract,
            reference=reference,
            actor=None,
            notified_at=now - ago,
            received_at=now - ago,
            asset=asset,
            service_code=service_code,  # 72 hours to complete the works
            occupant_name="Mme Claire Martin",
            lines=lines,
            technician=technician,
            **details,
        )

    late = register("OPH57_MATIN_RETARD", timedelta(days=5), technician, description="Fuite sous l'évier")
    services.acknowledge_order(late, actor=technician, at=now - timedelta(days=5) + timedelta(hours=1))
    planning.plan_order(late, actor=technician, appointment=today_at(7), at=now - timedelta(days=5, hours=-2))

    # Registered, acknowledged and planned before its 9 o'clock appointment (one in the past is refused), and
    # recently enough that its 72 hours end more than 48 hours from now, whatever the hour.
    nine = today_at(9)
    registered = min(now - timedelta(hours=12), nine - timedelta(hours=3))
    visit = register("OPH57_MATIN_RDV", now - registered, other_technician, description="Robinet qui goutte")
    services.acknowledge_order(visit, actor=other_technician, at=registered + timedelta(hours=1))
    planning.plan_order(visit, actor=other_technician, appointment=nine, at=registered + timedelta(hours=2))

    soon = register("OPH57_MATIN_BIENTOT", timedelta(days=2), technician, description="Chasse d'eau")
    services.acknowledge_order(soon, actor=technician, at=now - timedelta(days=2) + timedelta(hours=1))

    new = register("OPH57_MATIN_NOUVELLE", timedelta(hours=2), description="Radiateur froid")

    outcomes = drain()
    assert outcomes and set(outcomes) == {"delivered"}, outcomes

    # The platform refuses the late order's logs: its start is rejected, its progress waits behind.
    behave(platform, reject_reference=late.reference)
    services.start_work(late, actor=technician, at=now - timedelta(hours=1))
    assert drain() == ["rejected"]
    services.set_progress(late, actor=technician, progress=30, at=now - timedelta(minutes=30))
    assert drain() == []
    refused = OutboxMessage.objects.get(order=late, status=MessageStatus.REJECTED)
    assert refused.payload["description"].startswith("Travaux démarrés le")
    for order in (late, visit, soon, new):
        order.refresh_from_db()
    return Morning(late, visit, soon, new, refused)


def test_a_supervisor_follows_the_late_count_reassigns_the_order_and_resends_what_the_platform_refused(
    live_server, platform, morning, supervisor, technician, other_technician, desktop, screenshots
):
    page = desktop
    screens = Screens(page, screenshots)
    base = live_server.url
    late = morning.late

    # Signing in through the login page lands on the overview.
    page.goto(f"{base}/pilotage/")
    expect(page).to_have_url(f"{base}/connexion/?next=/pilotage/")
    page.get_by_label("Identifiant").fill(supervisor.username)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    expect(page).to_have_url(f"{base}/pilotage/")
    expect(page.locator("h1")).to_have_text("Pilotage")

    # The overview: one order late, one late within 48 hours, one to acknowledge, one refusal.
    kpis = page.locator(".overview-kpis")
    expect(kpis.get_by_role("link", name="1 à prendre en compte", exact=True)).to_be_visible()
    expect(kpis.get_by_role("link", name="1 en retard sous 48 h", exact=True)).to_be_visible()
    expect(kpis).to_contain_text("1 refusé · 1 en attente")
    late_section = page.locator("#retards")
    expect(late_section.locator("table tbody tr")).to_have_count(1)
    expect(late_section.locator("table tbody tr")).to_contain_text(late.reference)
    expect(late_section.locator("table tbody tr")).to_contain_text(technician.get_full_name())
    expect(late_section.locator(".plain-list")).to_contain_text(morning.soon.reference)
    expect(page.locator("#a-prendre-en-compte")).to_contain_text(morning.new.reference)
    visits = page.locator("#rendez-vous")
    expect(visits).to_contain_text(morning.visit.reference)
    expect(visits).to_contain_text(late.reference)
    expect(page.locator("#penalites .exposure-table")).to_contain_text(late.contract.reference)
    screens.check("30-supervisor-overview")

    # The "late" count leads to the filtered list: the late order, and it alone.
    kpis.get_by_role("link", name="1 en retard", exact=True).click()
    expect(page).to_have_url(f"{base}/pilotage/commandes/?retard=oui")
    rows = page.locator("#order-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(late.reference)
    expect(rows.first.locator(".badge-late")).to_have_text("En retard")
    expect(page.locator(".list-summary")).to_contain_text("1 commande correspondant aux filtres")
    screens.check("31-late-orders")

    # The order: late, with one refusal of the platform.
    rows.first.get_by_role("link", name=late.reference).click()
    expect(page).to_have_url(f"{base}/pilotage/commandes/{late.pk}/")
    expect(page.locator("h1")).to_have_text(late.reference)
    head = page.locator(".order-head")
    expect(head.locator(".badge-late", has_text="En retard")).to_be_visible()
    expect(head.get_by_role("link", name="1 refus de la plateforme")).to_be_visible()

    # Reassigned to Lucie with the assignment form.
    assign = page.locator("#affectation")
    expect(assign.get_by_label("Technicien")).to_have_value(str(technician.pk))
    assign.get_by_label("Technicien").select_option(label=other_technician.get_full_name())
    assign.get_by_role("button", name="Enregistrer l'affectation").click()
    expect(page.locator(".message.success")).to_have_text(f"Technicien : {other_technician.get_full_name()}")
    expect(page.locator(".order-head .facts")).to_contain_text(other_technician.get_full_name())
    expect(page.locator("#affectation").get_by_label("Technicien")).to_have_value(str(other_technician.pk))
    late.refresh_from_db()
    assert late.technician == other_technician
    screens.check("32-order-reassigned")

    # The timeline: what reached the platform, the refused start with the
    # platform's message, and the two changes waiting behind it.
    messages = list(late.outbox_messages.order_by("sequence"))
    delivered = [message for message in messages if message.status == MessageStatus.DELIVERED]
    waiting = [message for message in messages if message.status == MessageStatus.PENDING]
    assert [message.payload["description"] for message in waiting] == [
        "Avancement : 30 %",
        f"Technicien : {other_technician.get_full_name()}",
    ]
    timeline = page.locator("#chronologie")
    expect(timeline.locator(".relay-summary")).to_contain_text(f"{len(delivered)} transmis · 2 en attente · 1 refusé")
    expect(timeline.locator(".relay-summary .relay-delivered")).to_have_text(f"{len(delivered)} transmis")
    expect(timeline.locator(".relay.relay-delivered")).to_have_count(len(delivered))
    for message in delivered:
        expect(timeline.locator(f"#message-{message.pk}")).to_contain_text("Transmis à la plateforme le")
    refused = timeline.locator(f"#message-{morning.refused.pk}")
    expect(refused).to_contain_text("Refusé par la plateforme")
    expect(refused).to_contain_text("(HTTP 400)")
    expect(refused.locator("p.error")).to_contain_text(f"Opération {late.reference} refusée par la plateforme.")
    for message in waiting:
        box = timeline.locator(f"#message-{message.pk}")
        expect(box).to_contain_text("En attente de transmission")
        expect(box).to_contain_text(f"Attend le message n° {morning.refused.sequence}")
    labels = timeline.locator(".timeline-entry .timeline-label")
    expect(labels.first).to_contain_text(
        f"Technicien : {other_technician.get_full_name()} — {supervisor.get_full_name()}"
    )
    expect(labels.nth(2)).to_contain_text("Travaux démarrés le")
    screens.check("33-order-timeline-refused")

    # The error queue lists it too, and leads back to the order.
    page.get_by_role("navigation").get_by_role("link", name="Transmissions").click()
    expect(page).to_have_url(f"{base}/relais/erreurs/")
    expect(page.locator("main")).to_contain_text(f"Opération {late.reference} refusée par la plateforme.")
    screens.check("34-error-queue")
    page.get_by_role("link", name=late.reference).click()
    expect(page).to_have_url(f"{base}/pilotage/commandes/{late.pk}/")

    # The platform accepts the order again; the start is resent from the page.
    behave(platform, reject_reference="")
    refused = page.locator(f"#message-{morning.refused.pk}")
    refused.get_by_label("Correction apportée").fill(NOTE)
    refused.get_by_role("button", name="Renvoyer").click()
    expect(page.locator(".message.success")).to_contain_text(
        f"Message n° {morning.refused.sequence} renvoyé à la plateforme"
    )
    expect(page.locator("#chronologie .relay-summary")).to_contain_text("3 en attente · 0 refusé")

    # The workers deliver (the browser away meanwhile: on SQLite the live
    # server and the test share one connection).
    page.goto("about:blank")
    outcomes = drain()
    assert outcomes == ["delivered"] * 3, outcomes
    page.goto(f"{base}/pilotage/commandes/{late.pk}/")
    timeline = page.locator("#chronologie")
    expect(timeline.locator(".relay-summary")).to_contain_text(f"{len(messages)} transmis · 0 en attente · 0 refusé")
    expect(page.locator(".order-head")).not_to_contain_text("refus de la plateforme")
    resent = timeline.locator(f"#message-{morning.refused.pk}")
    expect(resent).to_contain_text("Transmis à la plateforme le")
    expect(resent).to_contain_text("(2 essais)")
    resent.locator("summary", has_text="Détail des envois").click()
    expect(resent.locator(".relay-detail")).to_contain_text(f"renvoyé par {supervisor.get_full_name()} : {NOTE}")
    expect(timeline.locator(".relay.relay-rejected")).to_have_count(0)
    expect(timeline.locator(".relay.relay-pending")).to_have_count(0)
    screens.check("35-order-timeline-delivered")

    # The week's planning: Lucie has both appointments of today.
    page.get_by_role("navigation").get_by_role("link", name="Planning").click()
    expect(page).to_have_url(f"{base}/pilotage/planning/")

    def row(person) -> Locator:
        return page.locator("table.planning tbody tr").filter(
            has=page.locator("th.planning-who", has_text=person.get_full_name())
        )

    lucie = row(other_technician)
    today = lucie.locator("td.is-today")
    expect(today).to_contain_text(late.reference)
    expect(today).to_contain_text(morning.visit.reference)
    expect(today.locator("article.plan-item.is-late")).to_contain_text(late.reference)
    expect(row(technician).locator("th.planning-who")).to_contain_text("0 commande")
    screens.check("36-planning")
    page.close()

    # The platform has every log of the order once, in order, the reassignment
    # included; the start once refused, then accepted.
    messages = list(late.outbox_messages.order_by("sequence"))
    assert {message.status for message in messages} == {MessageStatus.DELIVERED}
    response = httpx.get(f"{platform}/logs.json", params={"reference": late.reference})
    assert response.status_code == HTTPStatus.OK
    received = [log for log in response.json()["logs"] if log["source"] == "api"]
    assert [log["raw"] for log in received] == [message.payload for message in messages]
    descriptions = [log["description"] for log in received]
    # Nothing before the acknowledgement: open/requested is the manager's, never sent by the contractor.
    assert [description.split(" le ")[0] for description in descriptions] == [
        "Commande prise en compte",
        "Rendez-vous fixé",
        "Travaux démarrés",
        "Avancement : 30 %",
        f"Technicien : {other_technician.get_full_name()}",
    ]
    rejected = httpx.get(f"{platform}/rejected.json").json()["rejected"]
    assert [(row["reference"], json.loads(row["raw"])["description"].split(" le ")[0]) for row in rejected] == [
        (late.reference, "Travaux démarrés")
    ]
