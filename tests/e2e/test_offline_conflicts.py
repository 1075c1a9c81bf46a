"""Offline conflicts, in a phone's browser, with a second browser acting as the
office or the supervisor online meanwhile (issue 17): what the technician did
without signal is never silently dropped, never silently overwrites a newer
change, and everyone who needs to know does. Screenshots of the phone's
message, the supervisor's timeline and email, the history, and what the
sandbox received."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from http import HTTPStatus

import httpx
import pytest
from django.core import mail
from django.utils import timezone
from playwright.sync_api import Page, expect

from orders import notifications, planning, services
from orders.models import OrderEvent, UnappliedAction
from tests.conftest import PASSWORD
from tests.e2e.helpers import Screens, drain, refused_on_phone, wait_until_sent

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("database_before_the_live_server")]


@pytest.fixture
def piloted(order, technician, supervisor):
    """The shared order, acknowledged and planned in an hour, piloted by the supervisor."""
    services.assign_order(order, actor=supervisor, pilot=supervisor)
    earlier = timezone.now() - timedelta(hours=1)
    services.acknowledge_order(order, actor=technician, at=earlier)
    planning.plan_order(order, actor=supervisor, appointment=timezone.now() + timedelta(hours=1))
    return order


@pytest.fixture
def in_progress(piloted, technician):
    services.start_work(piloted, actor=technician, at=timezone.now() - timedelta(minutes=30))
    return piloted


def sign_in(page: Page, base: str, user, landing: str) -> None:
    page.goto(f"{base}/connexion/?next={landing}")
    page.get_by_label("Identifiant").fill(user.username)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    expect(page).to_have_url(f"{base}{landing}")


def phone_on_the_order(page: Page, base: str, technician, order) -> None:
    """Signed in on the list (which keeps every order for offline), then the order."""
    sign_in(page, base, technician, "/mes-commandes/")
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    page.wait_for_function("name => localStorage.getItem(name) !== null", arg=f"portal-precached-{technician.pk}")
    page.goto(f"{base}/commandes/{order.pk}/")
    expect(page.locator("h1")).to_have_text(order.reference)


def back_online(page: Page, technician) -> None:
    page.context.set_offline(False)
    page.evaluate("window.dispatchEvent(new Event('online'))")
    wait_until_sent(page, technician.pk)
    page.wait_for_load_state("load")


def the_email(desktop: Page, screens_folder, name: str) -> mail.EmailMultiAlternatives:
    """The email the supervisors get (the beat's job, run here), shown as they would read it."""
    mail.outbox.clear()
    assert notifications.tell_unapplied_actions() >= 1
    (email, *_) = [message for message in mail.outbox if "appliqué" in message.subject]
    html = email.alternatives[0][0]
    page = desktop.context.new_page()
    page.set_content(html)
    page.screenshot(path=screens_folder / f"{name}.png", full_page=True)
    page.close()
    return email


def test_works_started_offline_on_an_order_cancelled_meanwhile_are_kept_told_and_emailed(
    live_server, piloted, technician, supervisor, office, phone, desktop, screenshots
):
    base, order = live_server.url, piloted
    screens = Screens(phone, screenshots)
    phone_on_the_order(phone, base, technician, order)

    # Offline on site: the works start, then 30 %.
    phone.context.set_offline(True)
    phone.reload()
    phone.locator(".action-bar").get_by_role("button", name="Démarrer les travaux").click()
    expect(phone.locator("#offline-queue")).to_contain_text("1 modification en attente d'envoi")
    # Shown as it will be once sent: works in progress, pending.
    expect(phone.locator(".order-title .badge").first).to_have_text("En cours · en attente")
    phone.locator("input[name=progress]").fill("30")
    phone.get_by_role("button", name="Enregistrer l'avancement").click()
    expect(phone.locator("#offline-queue")).to_contain_text("2 modifications en attente d'envoi")
    acted = timezone.now()

    # Meanwhile the office cancels the order, in the admin.
    sign_in(desktop, base, office, f"/admin/orders/order/{order.pk}/action/cancel/")
    desktop.get_by_label("Motif d'annulation").fill("Doublon de la commande 4521")
    desktop.locator("form [type=submit]").last.click()
    order.refresh_from_db()
    assert order.state == "cancelled"

    # Back online: both refused, and the phone says why and what to do.
    back_online(phone, technician)
    box = phone.locator("#offline-queue")
    expect(box).to_contain_text("2 actions non appliquées par le serveur")
    expect(box).to_contain_text("a été annulée par Nadia Petit")
    expect(box).to_contain_text("Doublon de la commande 4521")
    expect(box).to_contain_text(
        "À faire : N'engagez plus rien sur cette commande. "
        "Appelez votre conducteur de travaux (Sophie Lambert, 06 55 44 33 22)."
    )
    screens.errors.clear()  # the 409 answers' own console lines
    phone.evaluate("window.scrollTo(0, 0)")
    screens.check("60-conflict-cancelled-phone")

    # Kept on the server: what, when the technician did it, why.
    kept = list(UnappliedAction.objects.filter(order=order).order_by("acted_at", "pk"))
    assert [(action.label, action.kind) for action in kept] == [
        ("Démarrer les travaux", "refused"),
        ("Avancement : 30 %", "refused"),
    ]
    assert all(acted - timedelta(seconds=30) <= action.acted_at <= acted for action in kept)
    assert all(action.received_at > action.acted_at for action in kept)
    assert not OrderEvent.objects.filter(order=order, kind__in=("start", "set_progress")).exists()

    # Read on the phone: gone from it, still on the server.
    box.get_by_role("button", name="J'ai compris").click()
    expect(phone.locator("#offline-queue")).to_have_count(0)
    assert refused_on_phone(phone, technician.pk) == []
    assert UnappliedAction.objects.filter(order=order).count() == 2

    # The supervisor's timeline says someone was on site and started.
    desktop.context.clear_cookies()
    sign_in(desktop, base, supervisor, f"/pilotage/commandes/{order.pk}/")
    entries = desktop.locator(".timeline-unapplied")
    expect(entries).to_have_count(2)
    expect(entries.first).to_contain_text("Avancement : 30 %")
    expect(entries.last).to_contain_text("Démarrer les travaux")
    expect(entries.last).to_contain_text("a été annulée par Nadia Petit")
    desktop.locator("#chronologie").screenshot(path=screenshots / "61-conflict-cancelled-timeline.png")

    # And the email, to the supervisor and the office (their defaults).
    email = the_email(desktop, screenshots, "62-conflict-cancelled-email")
    assert sorted(address for message in mail.outbox for address in message.to) == sorted(
        [supervisor.email, office.email]
    )
    assert "Démarrer les travaux, par Karim Haddad" in email.body
    assert f"/pilotage/commandes/{order.pk}/#non-applique-{kept[0].pk}" in email.body
    assert notifications.tell_unapplied_actions() == 0  # once


def test_an_order_given_to_someone_else_meanwhile_sends_the_phone_to_its_list_and_is_forgotten(
    live_server, in_progress, technician, other_technician, supervisor, phone, desktop, screenshots
):
    base, order = live_server.url, in_progress
    screens = Screens(phone, screenshots)
    phone_on_the_order(phone, base, technician, order)
    phone.context.set_offline(True)
    phone.reload()
    phone.locator("button.line-toggle").first.click()
    expect(phone.locator("#offline-queue")).to_contain_text("1 modification en attente d'envoi")

    # The supervisor gives the order to Lucie.
    sign_in(desktop, base, supervisor, f"/pilotage/commandes/{order.pk}/")
    desktop.locator("select[name=technician]").select_option(str(other_technician.pk))
    desktop.get_by_role("button", name="Enregistrer l'affectation").click()
    expect(desktop.locator(".toast")).to_contain_text("Technicien : Lucie Moreau")

    # Back online: the phone lands on its list, with the explanation; no 404.
    back_online(phone, technician)
    expect(phone).to_have_url(f"{base}/mes-commandes/")
    box = phone.locator("#offline-queue")
    expect(box).to_contain_text(
        f"La commande {order.reference} ne vous est plus attribuée : "
        "elle a été confiée à Lucie Moreau par Sophie Lambert"
    )
    expect(box).to_contain_text("Elle n'est plus sur votre téléphone.")
    expect(phone.locator("#order-list")).not_to_contain_text(order.reference)
    screens.errors.clear()  # the 409 answers' own console lines
    phone.evaluate("window.scrollTo(0, 0)")
    screens.check("63-conflict-reassigned-phone")
    (kept,) = UnappliedAction.objects.filter(order=order)
    assert (kept.kind, kept.label, kept.user) == ("reassigned", "Ligne L1 réalisée", technician)
    assert not order.lines.filter(done=True).exists()

    # Forgotten by the phone: offline, the order is no longer there.
    assert not phone.evaluate(
        "url => caches.open('portal-pages').then(cache => cache.match(url, {ignoreVary: true})).then(Boolean)",
        f"{base}/commandes/{order.pk}/",
    )
    phone.context.set_offline(True)
    phone.goto(f"{base}/commandes/{order.pk}/")
    expect(phone.locator("h1")).to_have_text("Pas de réseau")
    phone.context.set_offline(False)
    # Online, its address says why rather than « Page introuvable ».
    phone.goto(f"{base}/commandes/{order.pk}/")
    expect(phone).to_have_url(f"{base}/mes-commandes/")
    expect(phone.locator(".messages")).to_contain_text("ne vous est plus attribuée")


def test_a_tick_on_a_line_removed_meanwhile_says_so_and_tells_the_office_it_had_been_done(
    live_server, in_progress, technician, supervisor, office, phone, desktop, screenshots
):
    base, order = live_server.url, in_progress
    screens = Screens(phone, screenshots)
    phone_on_the_order(phone, base, technician, order)
    phone.context.set_offline(True)
    phone.reload()
    phone.locator("button.line-toggle").nth(1).click()  # L2, done
    expect(phone.locator("#offline-queue")).to_contain_text("1 modification en attente d'envoi")

    sign_in(desktop, base, supervisor, f"/pilotage/commandes/{order.pk}/")
    desktop.on("dialog", lambda dialog: dialog.accept())
    second = desktop.locator("details.line-edit").nth(1)
    second.locator("summary").click()
    second.get_by_role("button", name="Retirer la ligne").click()
    expect(desktop.locator(".toast")).to_contain_text("Ligne retirée : L2")

    back_online(phone, technician)
    box = phone.locator("#offline-queue")
    expect(box).to_contain_text("La ligne L2 (Remplacement du siphon) a été retirée de la commande par Sophie Lambert")
    expect(box).to_contain_text("Le bureau est prévenu qu'elle avait été réalisée.")
    expect(box).not_to_contain_text("introuvable")
    screens.errors.clear()  # the 409 answers' own console lines
    phone.evaluate("window.scrollTo(0, 0)")
    screens.check("64-conflict-line-removed-phone")
    (kept,) = UnappliedAction.objects.filter(order=order)
    assert (kept.kind, kept.label, kept.line_reference) == ("line_removed", "Ligne L2 réalisée", "L2")

    email = the_email(desktop, screenshots, "65-conflict-line-removed-email")
    assert office.email in [address for message in mail.outbox for address in message.to]
    assert "Le bureau est prévenu qu'elle avait été réalisée." in email.body


def test_an_older_progress_does_not_replace_a_newer_one_and_the_platform_never_goes_back(
    live_server, platform, connection, in_progress, technician, supervisor, phone, desktop, screenshots
):
    base, order = live_server.url, in_progress
    drain()
    screens = Screens(phone, screenshots)
    phone_on_the_order(phone, base, technician, order)
    phone.context.set_offline(True)
    phone.reload()
    # Offline: L1 done, then 40 %.
    phone.locator("button.line-toggle").first.click()
    time.sleep(1.1)
    phone.locator("input[name=progress]").fill("40")
    phone.get_by_role("button", name="Enregistrer l'avancement").click()
    expect(phone.locator("#offline-queue")).to_contain_text("2 modifications en attente d'envoi")
    time.sleep(1.1)

    # Three seconds later, online, the supervisor sets 60 % (from the order's page).
    sign_in(desktop, base, supervisor, f"/commandes/{order.pk}/")
    desktop.locator("input[name=progress]").fill("60")
    # The server's answer awaited (the slider's output shows 60 % before it, and "networkidle" is the
    # document's state, already reached): drain() must not run while the 60 % is still being saved.
    with desktop.expect_response(lambda response: response.url.endswith("/avancement/")):
        desktop.get_by_role("button", name="Enregistrer l'avancement").click()
    expect(desktop.locator("output.range-value")).to_have_text("60 %")
    drain()  # the 60 % has left: a change dated before it can no longer merge into it

    back_online(phone, technician)
    box = phone.locator("#offline-queue")
    expect(box).to_contain_text("Avancement")
    expect(box).to_contain_text("L'avancement a été mis à 60 % par Sophie Lambert")
    expect(box).to_contain_text("c'est 60 %, la valeur la plus récente, qui est gardé")
    screens.errors.clear()  # the 409 answers' own console lines
    phone.evaluate("window.scrollTo(0, 0)")
    screens.check("66-conflict-older-progress-phone")

    # The order, its history and the phone agree: 60 %, L1 done (no newer mark of it).
    order.refresh_from_db()
    assert order.progress == 60
    assert order.lines.get(reference="L1").done
    (kept,) = UnappliedAction.objects.filter(order=order)
    assert (kept.kind, kept.label) == ("superseded", "Avancement : 40 %")
    phone.goto(f"{base}/commandes/{order.pk}/")
    expect(phone.locator("output.range-value")).to_have_text("60 %")
    progress_entries = phone.locator("ol.history li", has_text="Avancement")
    expect(progress_entries.first).to_contain_text("Avancement : 60 %")
    expect(phone.locator("ol.history")).not_to_contain_text("Avancement : 40 %")
    phone.locator("#history-title").scroll_into_view_if_needed()
    screens.check("67-conflict-older-progress-history")

    # The supervisor sees the conflict on the timeline.
    desktop.goto(f"{base}/pilotage/commandes/{order.pk}/")
    expect(desktop.locator(".timeline-unapplied")).to_contain_text("Valeur plus récente gardée")
    desktop.locator("#chronologie").screenshot(path=screenshots / "68-conflict-older-progress-timeline.png")

    # The platform: never a log dated before the previous one; the L1 tick,
    # made offline before the 60 %, carries its real time in `action_date`.
    outcomes = drain()
    assert set(outcomes) <= {"delivered"}, outcomes
    response = httpx.get(f"{platform}/logs.json", params={"reference": order.reference})
    assert response.status_code == HTTPStatus.OK
    received = [log for log in response.json()["logs"] if log["source"] == "api"]
    dated = [
        datetime.fromisoformat(log["raw"]["eventDate"])
        for log in received
        if (log["raw"]["status"], log["raw"]["event"]) not in {("open", "planned"), ("pending", "replanned")}
    ]
    assert dated == sorted(dated), [log["raw"]["eventDate"] for log in received]
    descriptions = [log["description"] for log in received]
    assert "Avancement : 40 %" not in " ".join(descriptions)
    tick = next(log for log in received if "Ligne L1 réalisée" in log["description"])
    line_event = OrderEvent.objects.get(order=order, kind="mark_line")
    assert datetime.fromisoformat(tick["raw"]["tags"]["action_date"]) == line_event.at.replace(microsecond=0)
    assert tick["raw"]["tags"]["progress_percent"] == "60"
    assert received[-1]["raw"]["tags"]["progress_percent"] == "60"
    desktop.goto(f"{platform}/operations/{order.contract.reference}/{order.reference}/")
    desktop.screenshot(path=screenshots / "69-conflict-sandbox-event-dates.png", full_page=True)


def test_pending_changes_show_on_the_order_offline_and_go_when_the_network_returns_with_the_portal_closed(
    live_server, in_progress, technician, phone, screenshots
):
    base, order = live_server.url, in_progress
    screens = Screens(phone, screenshots)
    phone_on_the_order(phone, base, technician, order)
    phone.context.set_offline(True)
    phone.reload()
    phone.locator("button.line-toggle").first.click()
    phone.locator("input[name=progress]").fill("70")
    phone.get_by_role("button", name="Enregistrer l'avancement").click()
    phone.get_by_role("textbox", name="Note").fill("Siphon commandé")
    phone.get_by_role("button", name="Enregistrer la note").click()
    expect(phone.locator("#offline-queue")).to_contain_text("3 modifications en attente d'envoi")

    # Reopened offline (from the list): the order as it will be, marked pending.
    phone.goto(f"{base}/mes-commandes/")
    phone.goto(f"{base}/commandes/{order.pk}/")
    first = phone.locator("button.line-toggle").first
    expect(first).to_have_attribute("aria-pressed", "true")
    expect(first).to_contain_text("Réalisée · en attente")
    expect(phone.locator("#lines-title")).to_contain_text("1 / 2 réalisée")
    expect(phone.locator("output.range-value")).to_have_text("70 % · en attente")
    pending = phone.locator("ol.history li.is-pending")
    expect(pending).to_have_count(3)
    expect(pending.first).to_contain_text("Note : Siphon commandé")
    expect(pending.first).to_contain_text("en attente d'envoi")
    expect(pending.last).to_contain_text("Ligne L1 réalisée")
    screens.check("70-offline-pending-on-the-order")
    assert not OrderEvent.objects.filter(order=order, kind__in=("mark_line", "set_progress", "note")).exists()

    # The portal is closed; the network returns: the service worker sends the queue.
    phone.goto("about:blank")
    phone.context.set_offline(False)
    deadline = time.monotonic() + 20
    while OrderEvent.objects.filter(order=order, kind__in=("mark_line", "set_progress", "note")).count() < 3:
        assert time.monotonic() < deadline, "the queue was not sent with the portal closed"
        time.sleep(0.2)
    kinds = list(
        OrderEvent.objects.filter(order=order, kind__in=("mark_line", "set_progress", "note"))
        .order_by("pk")
        .values_list("kind", flat=True)
    )
    assert kinds == ["mark_line", "set_progress", "note"]
