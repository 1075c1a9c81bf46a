"""The server's side of the technician's offline mode: an action carries a key
and is applied once however often it is sent; a replay keeps the time the
technician acted and is answered in JSON; notes; the service worker and the
web app manifest. (The phone's side is in tests/e2e/test_offline.py.)"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from http import HTTPStatus
from pathlib import Path

import pytest
import time_machine
from django.contrib.staticfiles import finders

from orders import receiving, services
from orders.models import ActionReceipt, OrderEvent
from orders.states import State
from portal.relay.models import Connection, OutboxMessage
from tests.conftest import PARIS

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=PARIS)
REPLAY = {"HTTP_X_PORTAL_REPLAY": "1"}
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def now():
    with time_machine.travel(NOW, tick=False):
        yield NOW


@pytest.fixture
def signed_in(client, technician):
    client.force_login(technician)
    return client


@pytest.fixture
def started(order, technician):
    at = NOW - timedelta(hours=2)
    services.acknowledge_order(order, actor=technician, at=at)
    services.start_work(order, actor=technician, at=at)
    order.refresh_from_db()
    return order


@pytest.fixture
def connection_to_platform(outbox_connection) -> Connection:
    return outbox_connection


def events(order, kind):
    return list(OrderEvent.objects.filter(order=order, kind=kind).order_by("pk"))


# --- Keys: once, however often -------------------------------------------------


def test_an_action_sent_twice_with_its_key_is_applied_once(signed_in, order):
    key = str(uuid.uuid4())
    url = f"/commandes/{order.pk}/prendre-en-compte/"
    first = signed_in.post(url, {"idempotency_key": key}, **HTMX)
    second = signed_in.post(url, {"idempotency_key": key}, **HTMX)
    assert first.status_code == second.status_code == HTTPStatus.OK
    assert "Commande prise en compte" in first.content.decode()
    assert "avait déjà été reçue" in second.content.decode()
    assert len(events(order, "acknowledge")) == 1
    assert ActionReceipt.objects.get(key=key).label.startswith("Commande prise en compte")


def test_a_progress_replayed_after_a_later_change_does_not_undo_it(signed_in, started):
    """The key, not the value, tells a replay: progress 40 sent again after 60
    must not put the order back to 40."""
    url = f"/commandes/{started.pk}/avancement/"
    key = str(uuid.uuid4())
    signed_in.post(url, {"progress": 40, "idempotency_key": key}, **REPLAY)
    signed_in.post(url, {"progress": 60, "idempotency_key": str(uuid.uuid4())}, **REPLAY)
    again = signed_in.post(url, {"progress": 40, "idempotency_key": key}, **REPLAY)
    assert again.json() == {"status": "duplicate", "label": "Avancement : 40 %"}
    started.refresh_from_db()
    assert started.progress == 60
    assert [event.data["progress"] for event in events(started, "set_progress")] == [40, 60]


def test_without_a_key_an_action_is_applied_as_before(signed_in, started):
    url = f"/commandes/{started.pk}/avancement/"
    signed_in.post(url, {"progress": 30})
    signed_in.post(url, {"progress": 30})
    assert len(events(started, "set_progress")) == 1  # the second changed nothing
    assert not ActionReceipt.objects.exists()


def test_a_key_is_kept_only_when_the_action_is_applied(signed_in, order):
    """Refused, the action leaves no receipt: sent again once it is allowed, it applies."""
    key = str(uuid.uuid4())
    refused = signed_in.post(f"/commandes/{order.pk}/avancement/", {"progress": 50, "idempotency_key": key}, **REPLAY)
    assert refused.status_code == HTTPStatus.CONFLICT
    assert refused.json()["status"] == "refused"
    assert not ActionReceipt.objects.filter(key=key).exists()


def test_a_key_used_for_another_order_is_refused(signed_in, order, started, contract, asset, technician):
    other = receiving.register_order(
        contract=contract,
        reference="OPH57_OTHER",
        actor=None,
        notified_at=NOW - timedelta(days=1),
        asset=asset,
        technician=technician,
    )
    key = str(uuid.uuid4())
    signed_in.post(f"/commandes/{started.pk}/avancement/", {"progress": 20, "idempotency_key": key}, **REPLAY)
    reused = signed_in.post(f"/commandes/{other.pk}/prendre-en-compte/", {"idempotency_key": key}, **REPLAY)
    assert reused.status_code == HTTPStatus.CONFLICT
    assert "autre commande" in reused.json()["errors"][0]
    other.refresh_from_db()
    assert other.state == State.TO_ACKNOWLEDGE


def test_a_malformed_key_is_a_french_error_not_a_500(signed_in, order):
    response = signed_in.post(f"/commandes/{order.pk}/prendre-en-compte/", {"idempotency_key": "pas-une-clé"}, **REPLAY)
    assert response.status_code == HTTPStatus.CONFLICT
    assert response.json()["errors"] == ["Saisissez un UUID valide."]


# --- Replays: JSON answers, the technician's time -----------------------------


def test_a_replay_keeps_the_time_the_technician_acted_and_is_relayed_with_it(
    signed_in, started, connection_to_platform
):
    acted = NOW - timedelta(hours=1, minutes=12)
    response = signed_in.post(
        f"/commandes/{started.pk}/lignes/{started.lines.first().pk}/",
        {"done": "on", "client_at": acted.isoformat(), "idempotency_key": str(uuid.uuid4())},
        **REPLAY,
    )
    assert response.status_code == HTTPStatus.OK
    assert response.json() == {"status": "applied", "label": "Ligne L1 réalisée : Recherche de fuite"}
    (event,) = events(started, "mark_line")
    assert event.at == acted
    assert event.recorded_at == NOW
    message = OutboxMessage.objects.get(event=event)
    assert message.payload["eventDate"] == acted.astimezone(PARIS).isoformat(timespec="seconds")
    assert message.payload["logDate"] == NOW.isoformat(timespec="seconds")


def test_a_replay_refused_by_the_state_machine_says_why_in_french(signed_in, order):
    response = signed_in.post(f"/commandes/{order.pk}/terminer/", {"idempotency_key": str(uuid.uuid4())}, **REPLAY)
    assert response.status_code == HTTPStatus.CONFLICT
    body = response.json()
    assert body["status"] == "refused"
    assert body["errors"] and all(isinstance(error, str) and error for error in body["errors"])
    order.refresh_from_db()
    assert order.state == State.TO_ACKNOWLEDGE


def test_a_replay_on_another_technicians_order_is_a_404_and_changes_nothing(client, other_technician, order):
    client.force_login(other_technician)
    response = client.post(
        f"/commandes/{order.pk}/prendre-en-compte/", {"idempotency_key": str(uuid.uuid4())}, **REPLAY
    )
    assert response.status_code == HTTPStatus.NOT_FOUND
    order.refresh_from_db()
    assert order.state == State.TO_ACKNOWLEDGE


def test_a_replay_signed_out_is_sent_to_the_sign_in_page(client, order):
    response = client.post(
        f"/commandes/{order.pk}/prendre-en-compte/", {"idempotency_key": str(uuid.uuid4())}, **REPLAY
    )
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith("/connexion/")


# --- Notes ---------------------------------------------------------------------


def test_a_note_is_an_event_of_the_order_relayed_with_its_text(signed_in, started, connection_to_platform):
    response = signed_in.post(
        f"/commandes/{started.pk}/notes/", {"text": "Robinet d'arrêt grippé,\n à remplacer"}, follow=True
    )
    assert response.status_code == HTTPStatus.OK
    assert "Note : Robinet d&#x27;arrêt grippé, à remplacer" in response.content.decode()
    (event,) = events(started, "note")
    assert event.data == {"text": "Robinet d'arrêt grippé, à remplacer"}
    message = OutboxMessage.objects.get(event=event)
    assert message.payload["description"] == "Note : Robinet d'arrêt grippé, à remplacer"
    assert (message.payload["status"], message.payload["event"]) == ("pending", "start")


def test_an_empty_note_is_refused_in_french(signed_in, started):
    response = signed_in.post(f"/commandes/{started.pk}/notes/", {"text": "   "}, **HTMX)
    assert response.status_code == HTTPStatus.OK
    assert "Écrivez la note avant de l&#x27;enregistrer." in response.content.decode()
    assert not events(started, "note")


def test_a_long_note_keeps_its_whole_text_and_a_shortened_label(signed_in, started):
    text = "mot " * 200
    signed_in.post(f"/commandes/{started.pk}/notes/", {"text": text})
    (event,) = events(started, "note")
    assert len(event.label) == 300 and event.label.endswith("…")
    assert event.data["text"] == text.strip()


def test_no_note_on_a_closed_order(signed_in, order, technician):
    services.cancel_order(order, actor=technician, reason="Doublon")
    response = signed_in.post(f"/commandes/{order.pk}/notes/", {"text": "Trop tard"})
    assert response.status_code == HTTPStatus.OK
    assert "on n&#x27;y ajoute plus de note" in response.content.decode()
    assert not events(order, "note")


def test_notes_are_only_for_those_who_see_the_order(client, other_technician, order):
    assert client.post(f"/commandes/{order.pk}/notes/", {"text": "x"}).status_code == HTTPStatus.FOUND
    client.force_login(other_technician)
    assert client.post(f"/commandes/{order.pk}/notes/", {"text": "x"}).status_code == HTTPStatus.NOT_FOUND
    assert not events(order, "note")


# --- The worker, the manifest, the page's hooks --------------------------------


def test_the_service_worker_is_served_from_the_root_and_lists_the_assets(client):
    response = client.get("/sw.js")
    assert response.status_code == HTTPStatus.OK
    assert response["Content-Type"] == "text/javascript; charset=utf-8"
    assert response["Cache-Control"] == "no-cache"
    body = response.content.decode()
    assert '"/static/css/portal.css"' in body and '"/static/js/htmx.min.js"' in body
    assert '"/static/js/portal.js"' in body and '"/static/js/offline.js"' in body
    assert 'var PAGES_CACHE = "portal-pages";' in body
    assert "{{" not in body and "{%" not in body


def test_the_service_worker_version_follows_the_assets(client, settings, tmp_path):
    settings.DEBUG = True  # in production, static files change only with a deployment
    first = client.get("/sw.js").content
    assert client.get("/sw.js").content == first
    settings.STATICFILES_DIRS = [tmp_path, *settings.STATICFILES_DIRS]
    (tmp_path / "js").mkdir()
    (tmp_path / "js" / "portal.js").write_text("// changed")
    finders.get_finder.cache_clear()
    try:
        assert client.get("/sw.js").content != first
    finally:
        finders.get_finder.cache_clear()


def test_the_manifest_makes_the_portal_installable():
    manifest = json.loads(Path(finders.find("manifest.webmanifest")).read_text(encoding="utf-8"))
    assert manifest["start_url"] == "/mes-commandes/"
    assert manifest["display"] == "standalone"
    assert manifest["lang"] == "fr"
    assert {icon["sizes"] for icon in manifest["icons"]} == {"192x192", "512x512"}
    for icon in manifest["icons"]:
        assert finders.find(icon["src"]), icon["src"]


OFFLINE_SCRIPT = '<script src="/static/js/offline.js" data-user="{pk}" data-service-worker="/sw.js" defer></script>'


def test_a_technicians_pages_load_the_offline_mode(signed_in, technician, order):
    """The queue, the worker and the pages kept: offline.js, after portal.js
    (base.html loads it for every page of a technician's)."""
    for url in ("/mes-commandes/", f"/commandes/{order.pk}/"):
        page = signed_in.get(url).content.decode()
        script = OFFLINE_SCRIPT.format(pk=technician.pk)
        assert page.count(script) == 1, url
        assert page.index('src="/static/js/portal.js"') < page.index(script) < page.index("</head>"), url
        assert 'rel="manifest"' in page
    page = signed_in.get(f"/commandes/{order.pk}/").content.decode()
    # Every action form carries the fields the queue replays.
    assert page.count('name="idempotency_key"') == page.count("data-offline=")
    assert page.count('name="client_at"') == page.count("data-offline=")


@pytest.mark.parametrize("role", ["supervisor", "office"])
def test_other_peoples_pages_do_not_load_the_offline_mode(client, request, role, order):
    """Supervisors and the office have portal.js's general behaviours, not the
    technician's queue nor the service worker."""
    client.force_login(request.getfixturevalue(role))
    pages = [f"/commandes/{order.pk}/", "/pilotage/", "/preferences/notifications/"]
    for url in pages:
        response = client.get(url)
        assert response.status_code == HTTPStatus.OK, url
        page = response.content.decode()
        assert '<script src="/static/js/portal.js" defer></script>' in page, url
        assert "offline.js" not in page and "/sw.js" not in page, url


def test_the_sign_in_page_does_not_load_the_offline_mode(client):
    page = client.get("/connexion/").content.decode()
    assert '<script src="/static/js/portal.js" defer></script>' in page
    assert "offline.js" not in page and "/sw.js" not in page
