"""The intervention report on a phone where the network comes and goes: written
offline with two photos and a signature, kept on the phone (IndexedDB) across
a reload, sent with the queue when the network returns, once, with the time
the technician saved it, then its PDF on the platform, once; the report and
the end of the works done offline, arriving in that order; a report with
errors keeping its photos; a weak link showing each photo's progress and
resuming where the server says.

The server's side is in tests/test_report_photos.py."""

from __future__ import annotations

import base64
import io
import re
import time
from datetime import UTC, datetime, timedelta
from http import HTTPStatus

import httpx
import pytest
from django.db import OperationalError
from django.utils import timezone
from playwright.sync_api import expect
from pypdf import PdfReader

from orders import services
from orders.models import InterventionReport, StagedPhoto
from orders.tasks import render_report_pdf
from portal.relay import intent
from portal.relay.models import Connection, MessageKind
from tests.conftest import PARIS, PASSWORD
from tests.e2e.helpers import Screens, drain, queued, wait_until_sent
from tests.photos import has_location, write_camera_photos

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("database_before_the_live_server")]


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    # The live server runs in this process: it stores the photos and PDF here too.
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def started(order, technician):
    earlier = timezone.now() - timedelta(hours=1)
    services.acknowledge_order(order, actor=technician, at=earlier)
    services.start_work(order, actor=technician, at=earlier)
    return order


@pytest.fixture
def camera(tmp_path):
    """Two photos as a phone's camera writes them: 12 MP, about 5 MB, EXIF with a GPS position."""
    return write_camera_photos(tmp_path / "camera", 2)


def sign_in(page, base, technician, then: str) -> None:
    page.goto(f"{base}/connexion/?next={then}")
    page.get_by_label("Identifiant").fill(technician.username)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    expect(page).to_have_url(f"{base}{then}")
    # The URL changes as the page starts to load: its deferred scripts (the
    # report form's, which listens for the photos chosen) run before this.
    # A photo chosen earlier went unseen (a test failed 1 run in 3).
    page.wait_for_load_state("domcontentloaded")


def moment(page) -> datetime:
    """The phone's clock (the same machine's here)."""
    return datetime.fromtimestamp(page.evaluate("Date.now()") / 1000, tz=UTC)


def stored(page, user_id: int) -> dict:
    """What the phone keeps in IndexedDB: the reports and their photos (sizes, not bytes)."""
    return page.evaluate(
        """name => new Promise((resolve, reject) => {
          const request = indexedDB.open(name);
          request.onerror = () => reject(request.error);
          request.onsuccess = () => {
            const transaction = request.result.transaction(["drafts", "photos"]);
            const out = {};
            transaction.objectStore("drafts").getAll().onsuccess = e => { out.drafts = e.target.result; };
            transaction.objectStore("photos").getAll().onsuccess = e => {
              out.photos = e.target.result.map(p => ({key: p.key, kind: p.kind, size: p.blob.size, type: p.blob.type,
                                                      state: p.state, width: p.width, height: p.height}));
            };
            transaction.oncomplete = () => { request.result.close(); resolve(out); };
          };
        })""",
        f"portal-reports-{user_id}",
    )


def saved() -> bool:
    """Whether the report is saved; polled beside the live server (on SQLite, a
    table it is writing to is locked meanwhile: asked again)."""
    try:
        return InterventionReport.objects.exists()
    except OperationalError:
        return False


def draw_signature(page) -> None:
    """Two strokes with the mouse (pointer events, as a finger's). Not with a
    DevTools session of its own as tests/e2e/test_technician_day.py does:
    closing one brings Chromium's emulated network back online."""
    canvas = page.locator("canvas.signature-canvas")
    expect(canvas).to_be_visible()
    box = canvas.bounding_box()
    assert box is not None
    for start, end in (((0.1, 0.7), (0.5, 0.2)), ((0.5, 0.3), (0.9, 0.7))):
        page.mouse.move(box["x"] + box["width"] * start[0], box["y"] + box["height"] * start[1])
        page.mouse.down()
        for step in range(1, 21):
            x = start[0] + (end[0] - start[0]) * step / 20
            y = start[1] + (end[1] - start[1]) * step / 20
            page.mouse.move(box["x"] + box["width"] * x, box["y"] + box["height"] * y)
        page.mouse.up()


def photo_bytes(page, user_id: int) -> list[bytes]:
    """The photos as the phone keeps them, hence as they leave it (each part is a slice of them)."""
    encoded = page.evaluate(
        """name => new Promise((resolve, reject) => {
          const request = indexedDB.open(name);
          request.onerror = () => reject(request.error);
          request.onsuccess = () => {
            const read = request.result.transaction("photos").objectStore("photos").getAll();
            read.onsuccess = () => Promise.all(read.result.map(photo => new Promise(done => {
              const reader = new FileReader();
              reader.onload = () => done(reader.result.split(",")[1]);
              reader.readAsDataURL(photo.blob);
            }))).then(contents => { request.result.close(); resolve(contents); });
          };
        })""",
        f"portal-reports-{user_id}",
    )
    return [base64.b64decode(content) for content in encoded]


def fill_report(page, camera) -> None:
    page.get_by_label("Travaux réalisés").fill("Siphon remplacé, joints refaits, essai en eau concluant")
    page.get_by_label("Temps passé sur place (en minutes)").fill("75")
    page.get_by_label("Prendre une photo (avant travaux)").set_input_files(camera[0])
    page.get_by_label("Choisir dans la galerie (après travaux)").set_input_files(camera[1])
    page.get_by_role("radio", name="L'occupant signe").check()
    draw_signature(page)
    page.get_by_label("Nom du signataire").fill("Claire Martin")


def test_a_report_written_offline_with_two_photos_and_a_signature_arrives_once_with_its_time_and_its_pdf(
    live_server, platform, connection, started, technician, phone, screenshots, camera
):
    page = phone
    screens = Screens(page, screenshots)
    base = live_server.url
    order = started
    parts = []
    page.on("request", lambda request: parts.append(request) if "upload-offset" in request.headers else None)

    sign_in(page, base, technician, "/mes-commandes/")
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    page.wait_for_function("name => localStorage.getItem(name) !== null", arg=f"portal-precached-{technician.pk}")
    # The list has put each order's report form aside too.
    assert page.evaluate(
        "url => caches.open('portal-pages').then(cache => cache.match(url, {ignoreVary: true})).then(Boolean)",
        f"{base}/commandes/{order.pk}/rapport/",
    )

    # The network goes: said at once, though nothing waits.
    banner = page.locator("#offline-banner")
    expect(banner).to_be_hidden()
    page.context.set_offline(True)
    expect(banner).to_be_visible()
    expect(banner).to_have_text("Hors ligne : tout reste sur le téléphone")
    expect(page.locator("#offline-queue")).to_have_count(0)
    screens.check("30-offline-nothing-waiting")

    # The report's form, never opened on this phone, opens without network.
    page.goto(f"{base}/commandes/{order.pk}/rapport/")
    expect(page.locator("h1")).to_have_text("Rapport d'intervention")
    expect(banner).to_be_visible()
    fill_report(page, camera)
    items = page.locator(".report-form .photo-item")
    expect(items).to_have_count(2)
    expect(items.nth(0).locator(".photo-state")).to_have_text("En attente du réseau")
    expect(items.nth(1).locator("img")).to_have_attribute("src", re.compile(r"^blob:"))
    expect(page.locator("[data-report-draft]")).to_contain_text("Brouillon gardé sur le téléphone à")
    screens.check("31-offline-report-filled")

    # Kept on the phone: reloaded, nothing is lost.
    page.reload()
    expect(page.get_by_label("Travaux réalisés")).to_have_value(
        "Siphon remplacé, joints refaits, essai en eau concluant"
    )
    expect(page.get_by_label("Temps passé sur place (en minutes)")).to_have_value("75")
    expect(page.get_by_role("radio", name="L'occupant signe")).to_be_checked()
    expect(page.get_by_label("Nom du signataire")).to_have_value("Claire Martin")
    expect(items).to_have_count(2)
    assert page.locator("input[name=signature]").input_value().startswith("data:image/png;base64,")
    kept = stored(page, technician.pk)
    assert [(photo["kind"], photo["type"], photo["state"]) for photo in kept["photos"]] in (
        [("before", "image/jpeg", "waiting"), ("after", "image/jpeg", "waiting")],
        [("after", "image/jpeg", "waiting"), ("before", "image/jpeg", "waiting")],
    )
    # Shrunk on the phone before anything leaves it: 1600 px at most, far lighter, without its location.
    assert all(max(photo["width"], photo["height"]) == 1600 for photo in kept["photos"])
    assert sum(photo["size"] for photo in kept["photos"]) < sum(path.stat().st_size for path in camera) / 5
    assert all(has_location(path.read_bytes()) for path in camera)
    assert not any(has_location(content) for content in photo_bytes(page, technician.pk))

    before = moment(page)
    page.get_by_role("button", name="Enregistrer le rapport").click()
    after = moment(page)
    waiting_card = page.locator(".report-queued")
    expect(waiting_card).to_contain_text("Rapport gardé sur le téléphone")
    expect(waiting_card).to_contain_text("avec 2 photos")
    expect(page.locator("#offline-queue")).to_contain_text("1 modification en attente d'envoi (pas de réseau)")
    expect(page.locator("form.report-form")).to_be_hidden()
    screens.check("32-offline-report-queued")
    assert not InterventionReport.objects.exists() and not StagedPhoto.objects.exists()
    waiting = queued(page, technician.pk)
    assert [(entry["kind"], entry["label"]) for entry in waiting] == [("report", "Rapport d'intervention")]

    time.sleep(1.5)  # the report saved well before the network returns
    back = datetime.now(tz=UTC)
    page.context.set_offline(False)
    expect(banner).to_be_hidden()
    expect(waiting_card).to_contain_text("Rapport envoyé", timeout=30_000)
    expect(page.locator("#offline-queue")).to_have_count(0)
    screens.check("33-report-sent")

    report = InterventionReport.objects.get()
    assert report.created_at.replace(microsecond=0) >= before.replace(microsecond=0) - timedelta(seconds=1)
    assert report.created_at <= after + timedelta(seconds=1)
    assert report.created_at < back
    assert (report.signature_status, report.signatory_name, report.time_on_site_minutes) == (
        "signed",
        "Claire Martin",
        75,
    )
    assert sorted(photo.kind for photo in report.photos.all()) == ["after", "before"]
    assert not StagedPhoto.objects.exists()
    assert stored(page, technician.pk) == {"drafts": [], "photos": []}  # forgotten once the server had it
    # What left the phone: the shrunk photos (checked above), each byte once.
    sent = sum(int(part.all_headers()["content-length"]) for part in parts)
    assert sent == sum(photo["size"] for photo in kept["photos"]), [part.all_headers() for part in parts]

    # Sent again (a replay whose answer was lost): recognised, nothing doubles.
    page.evaluate(
        "entries => Promise.all(entries.map(entry => { delete entry.seq; return PortalQueue.add(entry); }))"
        ".then(() => document.dispatchEvent(new Event('portal:queued')))",
        waiting,
    )
    wait_until_sent(page, technician.pk)
    assert InterventionReport.objects.count() == 1

    # The PDF, then the platform: the report's log with the technician's time, and the PDF, once.
    page.goto("about:blank")
    assert render_report_pdf(report.pk) == "done"
    report.refresh_from_db()
    with report.document.file.open("rb") as stream:
        pdf = " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(stream.read())).pages).split())
    saved_at = timezone.localtime(report.created_at, PARIS)
    assert f"Saisi le {saved_at.day} décembre" in pdf or f"Saisi le {saved_at.day} " in pdf
    assert f"à {saved_at:%H:%M}" in pdf
    outcomes = drain()
    assert outcomes and set(outcomes) == {"delivered"}, outcomes
    response = httpx.get(f"{platform}/logs.json", params={"reference": order.reference})
    assert response.status_code == HTTPStatus.OK
    logs = [log for log in response.json()["logs"] if log["source"] == "api"]
    report_logs = [log for log in logs if "Rapport d'intervention saisi" in log["description"]]
    assert len(report_logs) == 1
    assert datetime.fromisoformat(report_logs[0]["raw"]["eventDate"]) == report.created_at.replace(microsecond=0)
    client = intent.IntentClient(Connection.objects.get(pk=connection.pk))
    try:
        documents = client.list_documents("intervention", order.reference)["_embedded"]["documents"]
    finally:
        client.close()
    assert [(document["contentType"], document["sha256"]) for document in documents] == [
        ("application/pdf", report.document.sha256)
    ]
    assert order.outbox_messages.filter(kind=MessageKind.DOCUMENT).count() == 1


def test_the_day_offline_from_the_report_onward_reaches_the_platform_in_order(
    live_server, platform, connection, started, technician, phone, screenshots, camera
):
    """The report written and the works finished without network: when it
    returns, the report goes first (once its photo is up), then the end of the
    works, each with the time it was done; the platform gets them in that order."""
    page = phone
    screens = Screens(page, screenshots)
    base = live_server.url
    order = started
    asked = []

    def answer(dialog) -> None:  # « Terminer quand même les travaux ? »
        asked.append(dialog.message)
        dialog.accept()

    page.on("dialog", answer)
    sign_in(page, base, technician, "/mes-commandes/")
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    page.wait_for_function("name => localStorage.getItem(name) !== null", arg=f"portal-precached-{technician.pk}")

    page.context.set_offline(True)
    page.goto(f"{base}/commandes/{order.pk}/rapport/")
    page.get_by_label("Travaux réalisés").fill("Flexible remplacé, plus de fuite")
    page.get_by_label("Temps passé sur place (en minutes)").fill("30")
    page.get_by_label("Prendre une photo (après travaux)").set_input_files(camera[0])
    page.get_by_role("radio", name="Occupant absent").check()
    expect(page.locator(".report-form .photo-item[data-photo]")).to_have_count(1)
    page.get_by_role("button", name="Enregistrer le rapport").click()
    expect(page.locator(".report-queued")).to_contain_text("Rapport gardé sur le téléphone")
    time.sleep(1.1)

    page.goto(f"{base}/commandes/{order.pk}/")
    # The phone asks from the order as it will be: the report waiting counts as written, a line ticked offline as done.
    page.get_by_role("button", name="Remplacement du siphon").click()
    expect(page.locator("#lines-title .count")).to_have_text("1 / 2 réalisée")
    page.locator(".action-bar").get_by_role("button", name="Terminer les travaux").click()
    expect(page.locator("#offline-queue li")).to_have_count(3)
    (question,) = asked
    left = "Attention : 1 ligne sur 2 n'est pas réalisée (L1 Recherche de fuite). Terminer quand même"
    assert question.startswith(left), question
    assert "rapport" not in question, question
    queue = page.locator("#offline-queue")
    expect(queue).to_contain_text("3 modifications en attente d'envoi (pas de réseau)")
    expect(queue.locator("li").nth(0)).to_contain_text("Rapport d'intervention")
    expect(queue.locator("li").nth(1)).to_contain_text("Ligne")
    expect(queue.locator("li").nth(2)).to_contain_text("Terminer les travaux")
    screens.check("39-offline-report-and-finish-waiting")

    back = datetime.now(tz=UTC)
    page.context.set_offline(False)
    expect(queue).to_have_count(0, timeout=30_000)
    expect(page.locator(".order-title .badge").first).to_have_text("Terminé", timeout=15_000)
    screens.check("40-online-report-and-finish-sent")

    report = InterventionReport.objects.get()
    (finished,) = order.events.filter(kind="finish")
    submitted = order.events.get(kind="report_submitted")
    assert report.photos.count() == 1
    assert report.created_at == submitted.at < finished.at < back
    assert submitted.recorded_at < finished.recorded_at  # arrived in the order they were done
    page.goto("about:blank")
    assert render_report_pdf(report.pk) == "done"  # rendered again by the end of the works
    outcomes = drain()
    assert outcomes and set(outcomes) == {"delivered"}, outcomes
    response = httpx.get(f"{platform}/logs.json", params={"reference": order.reference})
    received = [log for log in response.json()["logs"] if log["source"] == "api"]
    descriptions = [log["description"] for log in received]
    assert [log["event"] for log in received[-3:]] == ["start", "start", "end"], descriptions
    assert "Rapport d'intervention saisi" in received[-3]["description"]
    assert received[-2]["description"].startswith("Ligne L2 réalisée")
    assert datetime.fromisoformat(received[-1]["raw"]["eventDate"]) == finished.at.replace(microsecond=0)


def queue_a_report_offline(page, base: str, order, technician, camera) -> None:
    """Signed in with the service worker ready, the network gone: a report with one photo from the gallery,
    saved on the phone (the queue's entry waiting)."""
    sign_in(page, base, technician, "/mes-commandes/")
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    page.wait_for_function("name => localStorage.getItem(name) !== null", arg=f"portal-precached-{technician.pk}")
    page.context.set_offline(True)
    page.goto(f"{base}/commandes/{order.pk}/rapport/")
    page.get_by_label("Travaux réalisés").fill("Robinet d'arrêt changé")
    page.get_by_label("Choisir dans la galerie (avant travaux)").set_input_files(camera[0])
    page.get_by_role("radio", name="Refusé : l'occupant ne veut pas signer").check()
    expect(page.locator(".report-form .photo-item[data-photo]")).to_have_count(1)
    page.get_by_role("button", name="Enregistrer le rapport").click()
    expect(page.locator(".report-queued")).to_contain_text("Rapport gardé sur le téléphone")


def test_a_report_queued_offline_goes_with_its_photo_when_the_network_returns_with_the_portal_closed(
    live_server, started, technician, phone, camera
):
    """The phone in the pocket: the service worker sends the queue (Background
    Sync), the report's photo first (static/js/report-queue.js), then the report."""
    page = phone
    base = live_server.url
    order = started
    queue_a_report_offline(page, base, order, technician, camera)

    page.goto("about:blank")  # the portal closed
    page.context.set_offline(False)
    deadline = time.monotonic() + 30
    while not saved():
        assert time.monotonic() < deadline, "the report was not sent with the portal closed"
        time.sleep(0.5)
    report = InterventionReport.objects.get()
    assert (report.works_done, report.signature_status, report.photos.count()) == (
        "Robinet d'arrêt changé",
        "refused",
        1,
    )
    assert not StagedPhoto.objects.exists()
    page.goto(f"{base}/commandes/{order.pk}/rapport/")
    expect(page.locator(".report-queued")).to_have_count(0)
    # The worker forgets the draft once the server's answer is in, a moment after the report is saved.
    deadline = time.monotonic() + 10
    while (kept := stored(page, technician.pk)) != {"drafts": [], "photos": []}:
        assert time.monotonic() < deadline, kept
        time.sleep(0.2)


def test_photos_the_server_forgot_are_sent_again_by_the_worker_at_once_with_the_portal_closed(
    live_server, started, technician, phone, camera
):
    """The server no longer has a photo when the report arrives (424: forgotten
    after two weeks, or lost): the service worker alone sends it again and the
    report after it, in the same round, not at Background Sync's next retry."""
    page = phone
    base = live_server.url
    order = started
    queue_a_report_offline(page, base, order, technician, camera)

    held, answers = [], []
    # Each sending of the report is held here, and let through by the loop below (the
    # database is not used from Playwright's handler): the first time, once the server
    # has lost the photo that is up.
    page.context.route(
        re.compile(rf"{re.escape(base)}/commandes/{order.pk}/rapport/$"), lambda route: held.append(route)
    )
    page.goto("about:blank")  # the portal closed
    page.context.set_offline(False)
    deadline = time.monotonic() + 30
    while not saved():
        assert time.monotonic() < deadline, f"the report was not sent again (answers: {answers})"
        page.wait_for_timeout(200)  # (Playwright's calls run the route handler above)
        while held:
            route = held.pop(0)
            if not answers:
                StagedPhoto.objects.all().delete()
            response = route.fetch()
            answers.append(response.status)
            route.fulfill(response=response)
    assert answers[:2] == [HTTPStatus.FAILED_DEPENDENCY, HTTPStatus.OK], answers
    report = InterventionReport.objects.get()
    assert (report.works_done, report.photos.count()) == ("Robinet d'arrêt changé", 1)


def test_a_report_with_errors_keeps_its_photos_and_its_text(live_server, order, technician, phone, screenshots, camera):
    """Required fields are marked before anything is sent; what is missing is
    said by its field; a refusal by the server (the works not started yet) keeps
    the photos too; corrected, the report goes with both."""
    page = phone
    screens = Screens(page, screenshots)
    base = live_server.url
    services.acknowledge_order(order, actor=technician)
    sign_in(page, base, technician, f"/commandes/{order.pk}/rapport/")

    expect(page.locator("label", has_text="Travaux réalisés").locator(".required")).to_have_text("obligatoire")
    expect(page.locator(".signature-field legend .required")).to_have_text("obligatoire")
    expect(page.locator(".notice-card")).to_contain_text("une fois les travaux démarrés")
    screens.check("34-report-form-required-marked")

    page.get_by_label("Prendre une photo (avant travaux)").set_input_files(camera[0])
    page.get_by_label("Choisir dans la galerie (après travaux)").set_input_files(camera[1])
    items = page.locator(".report-form .photo-item")
    expect(items.locator(".photo-state")).to_have_text(["Envoyée", "Envoyée"], timeout=20_000)
    # One too many: « Retirer » takes it off the phone and the server.
    page.get_by_label("Prendre une photo (après travaux)").set_input_files(camera[0])
    expect(items.locator(".photo-state")).to_have_text(["Envoyée", "Envoyée", "Envoyée"], timeout=20_000)
    assert StagedPhoto.objects.count() == 3
    items.nth(2).get_by_role("button", name=re.compile("^Retirer la photo")).click()
    expect(items).to_have_count(2)
    deadline = time.monotonic() + 10
    while StagedPhoto.objects.count() != 2:
        assert time.monotonic() < deadline, "the photo removed is still on the server"
        time.sleep(0.1)
    page.get_by_role("button", name="Enregistrer le rapport").click()
    expect(page.locator("[data-field=works_done] .field-error")).to_have_text("Décrivez les travaux réalisés.")
    page.get_by_label("Temps passé sur place (en minutes)").fill("2000")
    page.get_by_role("button", name="Enregistrer le rapport").click()
    expect(page.locator("[data-field=time_on_site_minutes] .field-error")).to_contain_text(
        "entre 1 minute et 24 heures"
    )
    expect(page.locator("[data-field=signature_status] .field-error")).to_contain_text("Indiquez si l'occupant a signé")
    expect(page.get_by_label("Travaux réalisés")).to_have_attribute("aria-invalid", "true")
    expect(items).to_have_count(2)
    screens.check("35-report-errors-photos-kept")

    page.get_by_label("Travaux réalisés").fill("Recherche de fuite : joint de la colonne changé")
    page.get_by_label("Temps passé sur place (en minutes)").fill("40")
    page.get_by_role("radio", name="Occupant absent").check()
    page.get_by_role("button", name="Enregistrer le rapport").click()
    # Refused by the server: the works have not started. Nothing is lost.
    errors = page.locator("[data-report-errors]")
    expect(errors).to_contain_text("une fois les travaux démarrés")
    expect(items).to_have_count(2)
    expect(items.locator(".photo-state")).to_have_text(["Envoyée", "Envoyée"])
    expect(page.get_by_label("Travaux réalisés")).to_have_value("Recherche de fuite : joint de la colonne changé")
    screens.errors.clear()  # the server's refusal (409), on purpose
    screens.check("36-report-refused-photos-kept")
    assert not InterventionReport.objects.exists() and StagedPhoto.objects.count() == 2

    # Reloaded, still there; the works started meanwhile (another device): saved with both photos.
    page.reload()
    expect(items).to_have_count(2)
    expect(page.locator("[data-report-errors]")).to_contain_text("refusé par le serveur")
    services.start_work(order, actor=technician)
    page.get_by_role("button", name="Enregistrer le rapport").click()
    report_url = f"{base}/commandes/{order.pk}/rapports/"
    page.wait_for_url(lambda url: url.startswith(report_url))
    report = InterventionReport.objects.get()
    assert report.works_done == "Recherche de fuite : joint de la colonne changé"
    assert report.photos.count() == 2 and not StagedPhoto.objects.exists()


def test_a_weak_link_shows_each_photos_progress_and_resumes_where_the_server_says(
    live_server, started, technician, phone, screenshots, tmp_path
):
    """Throttled to a weak 3G (the DevTools protocol's network conditions), a
    photo goes up part by part with its progress shown. Then a part whose
    answer is lost is not received twice: the server says where it stands, and
    the phone goes on from there."""
    page = phone
    screens = Screens(page, screenshots)
    base = live_server.url
    (first,) = write_camera_photos(tmp_path / "camera", 1)
    # Grainier: two parts of 512 KB, even shrunk.
    (second,) = write_camera_photos(tmp_path / "grainy", 1, grain=0.6)
    sign_in(page, base, technician, f"/commandes/{started.pk}/rapport/")

    network = page.context.new_cdp_session(page)
    network.send("Network.enable")
    network.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 400, "downloadThroughput": 40_000, "uploadThroughput": 25_000},
    )
    page.get_by_label("Choisir dans la galerie (avant travaux)").set_input_files(first)
    item = page.locator(".report-form [data-photo-list=before] .photo-item")
    page.wait_for_function(
        "() => { const bar = document.querySelector('[data-photo-list=before] .photo-item progress');"
        " return bar && bar.value > 0 && bar.value < 100; }",
        timeout=30_000,
    )
    expect(item.locator(".photo-state")).to_have_text(re.compile(r"^Envoi : \d+ %$"))
    screens.check("37-weak-link-progress")
    expect(item.locator(".photo-state")).to_have_text("Envoyée", timeout=120_000)
    network.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    network.detach()

    offsets: list[str] = []
    page.on(
        "request",
        lambda request: (
            offsets.append(request.headers["upload-offset"]) if "upload-offset" in request.headers else None
        ),
    )
    lost: list[str] = []

    def lose_the_first_answer(route) -> None:
        if lost or route.request.method != "POST":
            route.continue_()
            return
        route.fetch()  # the server gets the part...
        lost.append(route.request.headers["upload-offset"])
        route.abort("connectionreset")  # ...but its answer never reaches the phone

    page.route("**/rapport/photos/*/", lose_the_first_answer)
    page.get_by_label("Choisir dans la galerie (après travaux)").set_input_files(second)
    after = page.locator(".report-form [data-photo-list=after] .photo-item")
    expect(after.locator(".photo-state")).to_have_text("Envoyée", timeout=60_000)
    screens.errors.clear()  # the part cut short on purpose
    screens.check("38-weak-link-resumed")

    staged = StagedPhoto.objects.get(kind="after")
    assert staged.status == "ready" and staged.received == staged.size
    # Sent once more at the same offset, refused (409) with the server's offset, then on from there.
    assert staged.size > 512 * 1024, staged.size
    assert lost == ["0"] and offsets == ["0", "0", "524288"], offsets
    assert queued(page, technician.pk) == []


def test_a_part_the_server_is_too_busy_for_is_sent_again_and_a_photo_its_report_took_is_done(
    live_server, started, technician, phone, screenshots, tmp_path
):
    """The server's answers to parts that came at once (orders/report_photos.py):
    503 "busy" with Retry-After (another request held the photo), the same part
    again after that wait, and kept; 410 "taken" (its report has it), nothing
    more sent, the photo shown as sent, never as an error."""
    page = phone
    screens = Screens(page, screenshots)
    base = live_server.url
    first, second = write_camera_photos(tmp_path / "camera", 2)
    sign_in(page, base, technician, f"/commandes/{started.pk}/rapport/")
    sent: list[tuple[str, str]] = []
    answered: list[int] = []

    def crowded(route) -> None:
        key = route.request.url.rstrip("/").rsplit("/", 1)[-1]
        sent.append((key, route.request.headers["upload-offset"]))
        if len(sent) == 1:  # the first part of the first photo: another request held it
            answered.append(503)
            route.fulfill(status=503, headers={"Retry-After": "1"}, json={"status": "busy", "retry": 1})
        elif len({k for k, _ in sent}) == 2 and not any(code == 410 for code in answered):
            answered.append(410)  # the second photo: its report took it already
            route.fulfill(status=410, json={"status": "taken", "key": key})
        else:
            answered.append(200)
            route.continue_()

    page.route("**/rapport/photos/*/", crowded)
    page.get_by_label("Choisir dans la galerie (avant travaux)").set_input_files(first)
    before = page.locator(".report-form [data-photo-list=before] .photo-item")
    expect(before.locator(".photo-state")).to_have_text("Envoyée", timeout=30_000)
    page.get_by_label("Choisir dans la galerie (après travaux)").set_input_files(second)
    after = page.locator(".report-form [data-photo-list=after] .photo-item")
    expect(after.locator(".photo-state")).to_have_text("Envoyée", timeout=30_000)
    screens.errors.clear()  # the 503 and 410 answered on purpose
    screens.check("41-busy-part-sent-again")

    (kept,) = StagedPhoto.objects.filter(status="ready")
    assert kept.kind == "before" and kept.received == kept.size
    assert [offset for key, offset in sent if key == str(kept.key)] == ["0", "0"]  # the same part, again
    assert answered == [503, 200, 410], (sent, answered)
    assert [photo["state"] for photo in stored(page, technician.pk)["photos"]] == ["ready", "ready"]
