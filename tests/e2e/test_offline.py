"""Without network, in a phone's browser: the order stays readable, two changes
wait on the phone ("2 modifications en attente d'envoi"), and when the network
returns they arrive once, in order, with the time the technician acted; sent
again, they change nothing. Then the platform gets them in that order."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from http import HTTPStatus

import httpx
import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import expect

from orders import services
from orders.models import OrderEvent
from tests.conftest import PASSWORD
from tests.e2e.helpers import Screens, drain, queued, wait_until_sent

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("database_before_the_live_server")]


@pytest.fixture
def started(order, technician):
    earlier = timezone.now() - timedelta(hours=1)
    services.acknowledge_order(order, actor=technician, at=earlier)
    services.start_work(order, actor=technician, at=earlier)
    return order


def changes(order) -> list[OrderEvent]:
    return list(OrderEvent.objects.filter(order=order, kind__in=("mark_line", "set_progress")).order_by("pk"))


def moment(page) -> datetime:
    """The phone's clock (the same machine's here)."""
    return datetime.fromtimestamp(page.evaluate("Date.now()") / 1000, tz=UTC)


def test_two_changes_made_offline_arrive_once_in_order_with_their_own_times(
    live_server, platform, connection, started, technician, phone, screenshots
):
    page = phone
    screens = Screens(page, screenshots)
    base = live_server.url
    order = started

    page.goto(f"{base}/connexion/?next=/mes-commandes/")
    page.get_by_label("Identifiant").fill(technician.username)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    expect(page).to_have_url(f"{base}/mes-commandes/")
    # The worker takes over the page; the list has put the order aside for later.
    assert page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    # The phone notes when it has put every page aside.
    page.wait_for_function("name => localStorage.getItem(name) !== null", arg=f"portal-precached-{technician.pk}")
    assert page.evaluate(
        "url => caches.open('portal-pages').then(cache => cache.match(url, {ignoreVary: true})).then(Boolean)",
        f"{base}/commandes/{order.pk}/",
    )

    # Offline: the order, never opened on this phone, is there all the same.
    page.context.set_offline(True)
    page.goto(f"{base}/commandes/{order.pk}/")
    expect(page.locator("h1")).to_have_text(order.reference)
    screens.check("20-offline-order")

    first_line = page.locator("button.line-toggle").first
    before_first = moment(page)
    first_line.click()
    after_first = moment(page)
    expect(first_line).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#offline-queue")).to_contain_text("1 modification en attente d'envoi (pas de réseau)")

    time.sleep(1.5)  # the two changes at distinct times, both before the network returns
    page.locator("input[name=progress]").fill("60")
    before_second = moment(page)
    page.get_by_role("button", name="Enregistrer l'avancement").click()
    after_second = moment(page)
    queue = page.locator("#offline-queue")
    expect(queue).to_contain_text("2 modifications en attente d'envoi (pas de réseau)")
    expect(queue.locator("li")).to_have_count(2)
    expect(queue.locator("li").nth(0)).to_contain_text("Ligne L1")
    expect(queue.locator("li").nth(1)).to_contain_text("Avancement")
    screens.check("21-offline-two-changes-waiting")

    # The list, offline too, says what waits.
    page.goto(f"{base}/mes-commandes/")
    expect(page.locator("#order-list")).to_contain_text(order.reference)
    expect(page.locator("#offline-queue")).to_contain_text("2 modifications en attente d'envoi")
    screens.check("22-offline-my-orders")
    assert changes(order) == []
    waiting = queued(page, technician.pk)

    # Back online: replayed in order, the page then shows the order as it is.
    page.goto(f"{base}/commandes/{order.pk}/")
    back = datetime.now(tz=UTC)
    page.context.set_offline(False)  # the browser says "online": the queue goes
    expect(page.locator("#offline-queue")).to_have_count(0, timeout=15_000)
    page.wait_for_load_state("load")
    expect(page.locator("#lines-title")).to_contain_text("1 / 2 réalisée")
    expect(page.locator("output.range-value")).to_have_text("60 %")
    screens.check("23-online-again")

    line, progress = changes(order)
    assert (line.kind, line.data["line"], progress.kind, progress.data["progress"]) == (
        "mark_line",
        "L1",
        "set_progress",
        60,
    ), (line.data, progress.data)
    # The time each was done on the phone, not the time it arrived.
    assert before_first - timedelta(seconds=1) <= line.at <= after_first + timedelta(seconds=1)
    assert before_second - timedelta(seconds=1) <= progress.at <= after_second + timedelta(seconds=1)
    assert line.at < progress.at < back <= line.recorded_at

    # Sent again (a replay whose answers were lost): recognised, nothing doubles.
    assert [entry["label"] for entry in waiting] == ["Ligne L1", "Avancement"]
    page.evaluate(
        "entries => Promise.all(entries.map(entry => { delete entry.seq; return PortalQueue.add(entry); }))"
        ".then(() => window.dispatchEvent(new Event('online')))",
        waiting,
    )
    wait_until_sent(page, technician.pk)
    assert [event.pk for event in changes(order)] == [line.pk, progress.pk]
    page.close()

    # The platform gets both, once, in order, with the technician's times.
    outcomes = drain()
    assert outcomes and set(outcomes) == {"delivered"}, outcomes
    response = httpx.get(f"{platform}/logs.json", params={"reference": order.reference})
    assert response.status_code == HTTPStatus.OK
    received = [log for log in response.json()["logs"] if log["source"] == "api"]
    descriptions = [log["description"] for log in received]
    assert descriptions[-2:] == ["Ligne L1 réalisée : Recherche de fuite", "Avancement : 60 %"]
    assert descriptions.count("Avancement : 60 %") == 1
    sent = {log["description"]: log["raw"]["eventDate"] for log in received[-2:]}
    assert datetime.fromisoformat(sent["Avancement : 60 %"]) == progress.at.replace(microsecond=0)


def test_an_action_taken_after_the_session_expired_is_kept_and_sent_once_signed_in_again(
    live_server, order, technician, phone, screenshots
):
    page = phone
    screens = Screens(page, screenshots)
    base = live_server.url
    page.goto(f"{base}/connexion/?next=/commandes/{order.pk}/")
    page.get_by_label("Identifiant").fill(technician.username)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    expect(page).to_have_url(f"{base}/commandes/{order.pk}/")

    page.context.clear_cookies(name=settings.SESSION_COOKIE_NAME)  # the session ends (expired, or signed out elsewhere)
    page.locator(".action-bar").get_by_role("button", name="Prendre en compte").click()
    # The sign-in page, whole, leading back to the order; the action waits on the phone.
    expect(page).to_have_url(f"{base}/connexion/?next=%2Fcommandes%2F{order.pk}%2F")
    expect(page.locator("#order-panel")).to_have_count(0)
    assert [entry["label"] for entry in queued(page, technician.pk)] == ["Prendre en compte"]
    screens.check("24-session-expired")
    order.refresh_from_db()
    assert order.state == "to_acknowledge"

    page.get_by_label("Identifiant").fill(technician.username)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    expect(page.locator("h1")).to_have_text(order.reference)
    expect(page.locator(".order-title .badge").first).to_have_text("Pris en compte", timeout=15_000)
    assert OrderEvent.objects.filter(order=order, kind="acknowledge").count() == 1


def test_an_action_lost_on_a_weak_signal_waits_on_the_phone_and_goes_when_asked(
    live_server, started, technician, phone, screenshots
):
    """The phone believes it is online, but the request never arrives (a
    basement's weak signal): the action waits all the same."""
    page = phone
    screens = Screens(page, screenshots)
    base = live_server.url
    order = started
    page.goto(f"{base}/connexion/?next=/commandes/{order.pk}/")
    page.get_by_label("Identifiant").fill(technician.username)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    expect(page.locator("h1")).to_have_text(order.reference)

    page.context.route("**/avancement/", lambda route: route.abort("connectionfailed"))
    page.locator("input[name=progress]").fill("40")
    page.get_by_role("button", name="Enregistrer l'avancement").click()
    queue = page.locator("#offline-queue")
    expect(queue).to_contain_text("1 modification en attente d'envoi")
    expect(queue).not_to_contain_text("pas de réseau")
    screens.errors.clear()  # the failed request's own console line
    screens.check("25-weak-signal-waiting")
    assert not OrderEvent.objects.filter(order=order, kind="set_progress").exists()

    page.context.unroute("**/avancement/")
    queue.get_by_role("button", name="Envoyer maintenant").click()
    expect(page.locator("#offline-queue")).to_have_count(0, timeout=15_000)
    expect(page.locator("output.range-value")).to_have_text("40 %")
    (event,) = OrderEvent.objects.filter(order=order, kind="set_progress")
    assert event.data["progress"] == 40


def test_signing_out_asks_about_the_changes_waiting_and_forgets_the_pages_kept(live_server, started, technician, phone):
    """On a phone shared by several people: signing out with changes still
    waiting asks first; signed out, the pages kept for offline are gone (the
    changes stay, to go at the next sign-in)."""
    page = phone
    base = live_server.url
    order = started
    page.goto(f"{base}/connexion/?next=/mes-commandes/")
    page.get_by_label("Identifiant").fill(technician.username)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    expect(page).to_have_url(f"{base}/mes-commandes/")
    page.wait_for_function("name => localStorage.getItem(name) !== null", arg=f"portal-precached-{technician.pk}")
    assert page.evaluate("localStorage.getItem('portal-user')") == str(technician.pk)
    assert page.evaluate("caches.has('portal-pages')")

    page.goto(f"{base}/commandes/{order.pk}/")
    page.context.route("**/avancement/", lambda route: route.abort("connectionfailed"))
    page.locator("input[name=progress]").fill("40")
    page.get_by_role("button", name="Enregistrer l'avancement").click()
    expect(page.locator("#offline-queue")).to_contain_text("1 modification en attente d'envoi")

    questions: list[str] = []

    def answer(dialog) -> None:
        questions.append(dialog.message)
        if len(questions) == 1:
            dialog.dismiss()
        else:
            dialog.accept()

    page.on("dialog", answer)
    sign_out = page.get_by_role("button", name="Se déconnecter")
    sign_out.click()  # "1 modification(s) pas encore envoyée(s) […] Se déconnecter quand même ?": no
    expect(page.locator("#offline-queue")).to_contain_text("1 modification en attente d'envoi")
    assert questions and questions[0].startswith("1 modification(s) pas encore envoyée(s)")
    expect(page).to_have_url(f"{base}/commandes/{order.pk}/")
    assert page.evaluate("caches.has('portal-pages')")

    sign_out.click()  # yes
    expect(page).to_have_url(f"{base}/connexion/")
    assert len(questions) == 2
    # (Polled: wait_for_function does not wait for a promise.)
    deadline = time.monotonic() + 5
    while page.evaluate("caches.has('portal-pages')"):
        assert time.monotonic() < deadline, "the pages kept are still on the phone after signing out"
        page.wait_for_timeout(100)
    assert page.evaluate("localStorage.getItem('portal-user')") is None
    assert page.evaluate(f"localStorage.getItem('portal-precached-{technician.pk}')") is None
    assert [entry["label"] for entry in queued(page, technician.pk)] == ["Avancement"]
    # The sign-in page has portal.js only: the offline mode is the technician's.
    expect(page.locator("script[src$='/portal.js']")).to_have_count(1)
    expect(page.locator("script[src$='/offline.js']")).to_have_count(0)
