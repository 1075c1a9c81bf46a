"""A report's photos sent ahead of it, in parts, as soon as they are chosen
(orders/report_photos.py), and the report that takes them: resumed where the
server says after a lost part, checked by content, sent once however often the
phone's queue sends the report, with the technician's time; a form that comes
back with an error keeps its photos, with or without JavaScript. (The phone's
side is in tests/e2e/test_report_offline.py.)"""

from __future__ import annotations

import io
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from http import HTTPStatus
from urllib.parse import quote

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import F
from django.test import Client
from PIL import ExifTags, Image

from orders import receiving, report_photos, services
from orders.models import ActionReceipt, InterventionReport, OrderEvent, StagedPhoto, StagedPhotoPart
from orders.report_photos import MAX_PART_BYTES
from orders.tasks import forget_stale_photos
from tests.conftest import PARIS
from tests.test_reports import camera_jpeg, data_url, png_bytes, signature_png

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=PARIS)
REPLAY = {"HTTP_X_PORTAL_REPLAY": "1"}
PART = 64 * 1024  # the phone sends 256 KB; smaller here, for photos of a few parts


@pytest.fixture(autouse=True)
def now():
    with time_machine.travel(NOW, tick=False):
        yield NOW


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def started(order, technician):
    at = NOW - timedelta(hours=2)
    services.acknowledge_order(order, actor=technician, at=at)
    services.start_work(order, actor=technician, at=at)
    order.refresh_from_db()
    return order


@pytest.fixture
def signed_in(client, technician):
    client.force_login(technician)
    return client


def photo_url(order, key) -> str:
    return f"/commandes/{order.pk}/rapport/photos/{key}/"


def send_part(client, order, key, content: bytes, offset: int, **headers):
    headers = {"Upload-Offset": str(offset), **headers}
    return client.post(photo_url(order, key), content, content_type="application/octet-stream", headers=headers)


def open_photo(client, order, content: bytes, *, key=None, kind="before", name="IMG_1.jpg", size=None):
    """The photo's first part, which says its size, kind and name (and so opens its upload)."""
    key = key or uuid.uuid4()
    opening = {"Upload-Length": str(len(content) if size is None else size), "Upload-Kind": kind}
    opening["Upload-Name"] = quote(name)
    return key, send_part(client, order, key, content[:PART], 0, **opening)


def send_photo(client, order, content: bytes, **options) -> uuid.UUID:
    key, response = open_photo(client, order, content, **options)
    for offset in range(PART, len(content), PART):
        assert response.status_code == HTTPStatus.OK, response.content
        response = send_part(client, order, key, content[offset : offset + PART], offset)
    assert response.status_code == HTTPStatus.OK, response.content
    assert response.json()["status"] == "ready", response.json()
    return key


def report_fields(**overrides) -> dict:
    data = {
        "works_done": "Siphon remplacé, raccords resserrés, plus de fuite",
        "time_on_site_minutes": "90",
        "signature_status": "signed",
        "signatory_name": "Claire Martin",
        "signature": data_url(signature_png()),
    }
    data.update(overrides)
    return {name: value for name, value in data.items() if value is not None}


# --- Sending a photo ---------------------------------------------------------------


def test_a_photo_sent_in_parts_is_kept_shrunk_upright_and_without_its_location_once_whole(signed_in, started):
    content = camera_jpeg()
    assert len(content) > 2 * PART  # three parts at least
    key, response = open_photo(signed_in, started, content, name="IMG 1 été.jpg")
    assert response.status_code == HTTPStatus.OK
    assert response.json() == {
        "key": str(key),
        "received": PART,
        "size": len(content),
        "status": "receiving",
        "error": "",
    }
    for offset in range(PART, len(content), PART):
        response = send_part(signed_in, started, key, content[offset : offset + PART], offset)
    assert response.json() == {
        "key": str(key),
        "received": len(content),
        "size": len(content),
        "status": "ready",
        "error": "",
    }

    photo = StagedPhoto.objects.get(key=key)
    assert photo.name == "IMG 1 été.jpg"
    image = Image.open(io.BytesIO(bytes(photo.content)))
    assert image.format == "JPEG" and image.size == (photo.width, photo.height) == (1200, 1600)
    assert len(image.getexif()) == 0 and not image.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    assert not StagedPhotoPart.objects.exists()  # joined, then gone

    thumbnail = signed_in.get(photo_url(started, key))
    assert thumbnail.status_code == HTTPStatus.OK
    assert thumbnail["Content-Type"] == "image/jpeg" and "no-store" in thumbnail["Cache-Control"]


def test_after_a_lost_part_the_phone_resumes_where_the_server_says(signed_in, started):
    """A part whose answer was lost is sent again: it is not kept twice; the
    server says where it stands, and the phone goes on from there."""
    content = camera_jpeg()
    key, _ = open_photo(signed_in, started, content)

    _, again = open_photo(signed_in, started, content, key=key)  # the first part again, its answer lost
    assert again.status_code == HTTPStatus.CONFLICT
    assert again.json() == {"status": "receiving", "received": PART}
    ahead = send_part(signed_in, started, key, content[2 * PART : 3 * PART], 2 * PART)  # one part skipped
    assert ahead.status_code == HTTPStatus.CONFLICT and ahead.json()["received"] == PART

    for offset in range(PART, len(content), PART):
        response = send_part(signed_in, started, key, content[offset : offset + PART], offset)
    assert response.json()["status"] == "ready"
    last_again = send_part(signed_in, started, key, content[offset : offset + PART], offset)
    assert last_again.status_code == HTTPStatus.OK and last_again.json()["status"] == "ready"
    assert StagedPhoto.objects.count() == 1


def test_a_part_of_a_photo_the_server_does_not_know_asks_the_phone_to_start_again(signed_in, started):
    """Forgotten by the server (two weeks without a report), or never opened:
    the phone is told, and sends the photo again from its first part."""
    content = camera_jpeg()
    response = send_part(signed_in, started, uuid.uuid4(), content[PART : 2 * PART], PART)
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response.json() == {"status": "unknown", "received": 0}
    assert not StagedPhoto.objects.exists()


def test_a_photo_is_checked_by_its_content_not_its_name(signed_in, started):
    content = b"ceci n'est pas une image, malgre son nom" * 10
    key, response = open_photo(signed_in, started, content, name="IMG_2.jpg")
    assert response.status_code == HTTPStatus.OK
    assert response.json()["status"] == "refused"
    assert response.json()["error"].startswith("La photo « IMG_2.jpg » n'est pas une photo lisible")
    assert signed_in.get(photo_url(started, key)).status_code == HTTPStatus.NOT_FOUND


def test_the_server_keeps_its_own_limits_whatever_the_phone_says(signed_in, started):
    _, empty = open_photo(signed_in, started, b"x", size=0, name="panorama.jpg")
    assert empty.status_code == HTTPStatus.BAD_REQUEST
    assert empty.json() == {"status": "refused", "error": "Cette photo est vide."}
    _, too_big = open_photo(signed_in, started, b"x", size=16 * 1024 * 1024, name="panorama.jpg")
    assert too_big.status_code == HTTPStatus.BAD_REQUEST
    assert too_big.json() == {"status": "refused", "error": "La photo « panorama.jpg » dépasse 15 Mo."}
    _, bad_kind = open_photo(signed_in, started, b"x", kind="pendant")
    assert bad_kind.status_code == HTTPStatus.BAD_REQUEST

    content = png_bytes((400, 300), (10, 20, 30))
    key, longer = open_photo(signed_in, started, content + b"more", size=len(content))
    assert longer.status_code == HTTPStatus.BAD_REQUEST and "plus longue qu'annoncé" in longer.json()["error"]
    huge = send_part(signed_in, started, key, b"\0" * (MAX_PART_BYTES + 1), 0)
    assert huge.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    no_offset = signed_in.post(photo_url(started, key), content, content_type="application/octet-stream")
    assert no_offset.status_code == HTTPStatus.BAD_REQUEST
    assert not StagedPhoto.objects.exists() and not StagedPhotoPart.objects.exists()


def test_photos_are_only_for_those_who_see_the_order(client, started, technician, other_technician):
    client.force_login(technician)
    content = png_bytes((400, 300), (10, 20, 30))
    key = send_photo(client, started, content)
    content_of_parts = camera_jpeg()
    mine_in_progress, _ = open_photo(client, started, content_of_parts)

    client.force_login(other_technician)
    assert open_photo(client, started, content)[1].status_code == HTTPStatus.NOT_FOUND
    assert open_photo(client, started, content, key=mine_in_progress)[1].status_code == HTTPStatus.NOT_FOUND
    part = content_of_parts[PART : 2 * PART]
    assert send_part(client, started, mine_in_progress, part, PART).status_code == HTTPStatus.NOT_FOUND
    assert client.get(photo_url(started, key)).status_code == HTTPStatus.NOT_FOUND
    assert client.post(photo_url(started, key) + "retirer/").status_code == HTTPStatus.NOT_FOUND
    assert StagedPhoto.objects.count() == 2

    client.logout()
    assert client.get(photo_url(started, key))["Location"].startswith("/connexion/")


def test_a_key_already_used_on_another_order_is_refused(signed_in, started, contract, asset, technician):
    content = png_bytes((400, 300), (10, 20, 30))
    key = send_photo(signed_in, started, content)
    other = receiving.register_order(
        contract=contract, reference="OPH57-OTHER", actor=None, asset=asset, technician=technician
    )
    _, response = open_photo(signed_in, other, content, key=key)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "déjà été reçue pour une autre commande" in response.json()["error"]


def test_a_photo_removed_is_gone(signed_in, started):
    key = send_photo(signed_in, started, png_bytes((400, 300), (10, 20, 30)))
    response = signed_in.post(photo_url(started, key) + "retirer/")
    assert response.status_code == HTTPStatus.OK and response.json() == {"status": "removed", "key": str(key)}
    assert not StagedPhoto.objects.exists()
    assert signed_in.get(photo_url(started, key) + "retirer/").status_code == HTTPStatus.METHOD_NOT_ALLOWED


def test_photos_no_report_took_are_forgotten_after_two_weeks(signed_in, started, now):
    send_photo(signed_in, started, png_bytes((400, 300), (10, 20, 30)))
    with time_machine.travel(now + timedelta(days=13), tick=False):
        assert forget_stale_photos() == 0
    with time_machine.travel(now + timedelta(days=15), tick=False):
        assert forget_stale_photos() == 1
    assert not StagedPhoto.objects.exists()


# --- The report that takes them ----------------------------------------------------


def test_a_report_takes_its_photos_sent_ahead_in_its_order_and_each_once(signed_in, started):
    first = send_photo(signed_in, started, camera_jpeg(), kind="before")
    second = send_photo(signed_in, started, png_bytes((800, 600), (10, 20, 30)), kind="after")
    third = send_photo(signed_in, started, png_bytes((600, 800), (200, 20, 30)), kind="before")
    refused, _ = open_photo(signed_in, started, b"x" * 100, kind="after")
    send_part(signed_in, started, refused, b"x" * 100, 0)  # not a photo: left out, as the phone was told

    response = signed_in.post(
        f"/commandes/{started.pk}/rapport/",
        {**report_fields(), "photo_keys": [str(third), str(second), str(first), str(refused)]},
    )
    report = InterventionReport.objects.get()
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == f"/commandes/{started.pk}/rapports/{report.pk}/"
    photos = [(photo.kind, photo.position, photo.width, photo.height) for photo in report.photos.all()]
    assert photos == [("after", 1, 800, 600), ("before", 1, 600, 800), ("before", 2, 1200, 1600)]
    assert not StagedPhoto.objects.exists()
    assert OrderEvent.objects.get(order=started, kind="report_submitted").data["photos"] == 3


def test_a_report_whose_photos_have_not_all_arrived_waits_for_them(signed_in, started):
    content = camera_jpeg()
    ready = send_photo(signed_in, started, png_bytes((400, 300), (10, 20, 30)))
    halfway, _ = open_photo(signed_in, started, content)
    send_part(signed_in, started, halfway, content[:PART], 0)
    never_opened = uuid.uuid4()
    fields = {**report_fields(), "photo_keys": [str(ready), str(halfway), str(never_opened)]}

    replayed = signed_in.post(f"/commandes/{started.pk}/rapport/", fields, **REPLAY)
    # Not a refusal: the phone's queue sends it again once the photos are up.
    assert replayed.status_code == HTTPStatus.FAILED_DEPENDENCY
    assert replayed.json() == {"status": "waiting", "missing": [str(halfway), str(never_opened)]}
    page = signed_in.post(f"/commandes/{started.pk}/rapport/", fields)
    assert page.status_code == HTTPStatus.BAD_REQUEST
    assert "2 photos ne sont pas encore arrivées" in page.content.decode()
    assert not InterventionReport.objects.exists()
    assert StagedPhoto.objects.count() == 2  # nothing taken

    for offset in range(PART, len(content), PART):
        send_part(signed_in, started, halfway, content[offset : offset + PART], offset)
    fields["photo_keys"] = [str(ready), str(halfway)]
    assert signed_in.post(f"/commandes/{started.pk}/rapport/", fields, **REPLAY).status_code == HTTPStatus.OK
    assert InterventionReport.objects.get().photos.count() == 2


def test_a_report_sent_twice_with_its_key_is_saved_once_with_the_technicians_time(signed_in, started, technician):
    """The phone's queue sends the report again when its answer was lost: the
    second is recognised by its key; the report keeps the time it was written."""
    key = send_photo(signed_in, started, png_bytes((400, 300), (10, 20, 30)))
    written_at = NOW - timedelta(minutes=40)
    fields = {
        **report_fields(),
        "photo_keys": [str(key)],
        "idempotency_key": str(uuid.uuid4()),
        "client_at": written_at.isoformat(),
    }

    first = signed_in.post(f"/commandes/{started.pk}/rapport/", fields, **REPLAY)
    report = InterventionReport.objects.get()
    assert first.status_code == HTTPStatus.OK
    assert first.json() == {
        "status": "applied",
        "label": "Rapport d'intervention saisi",
        "url": f"/commandes/{started.pk}/rapports/{report.pk}/",
    }
    second = signed_in.post(f"/commandes/{started.pk}/rapport/", fields, **REPLAY)
    assert second.status_code == HTTPStatus.OK
    assert second.json() == {
        "status": "duplicate",
        "label": "Rapport d'intervention saisi",
        "url": f"/commandes/{started.pk}/",
    }
    assert InterventionReport.objects.count() == 1 and report.photos.count() == 1
    assert report.created_at == written_at
    (event,) = OrderEvent.objects.filter(order=started, kind="report_submitted")
    assert event.at == written_at and event.recorded_at == NOW
    receipt = ActionReceipt.objects.get(key=fields["idempotency_key"])
    assert (receipt.user, receipt.order, receipt.action) == (technician, started, "report")


def test_a_refused_report_is_answered_in_json_with_each_fields_reason(signed_in, started):
    key = send_photo(signed_in, started, png_bytes((400, 300), (10, 20, 30)))
    fields = {**report_fields(works_done="", signature=None), "photo_keys": [str(key)]}
    response = signed_in.post(f"/commandes/{started.pk}/rapport/", fields, **REPLAY)
    assert response.status_code == HTTPStatus.CONFLICT
    answer = response.json()
    assert answer["status"] == "refused"
    assert answer["fields"] == {
        "works_done": ["Ce champ est obligatoire."],
        "signature_status": ["Faites signer l'occupant dans le cadre, ou choisissez un autre cas."],
    }
    assert sorted(answer["errors"]) == sorted(message for messages in answer["fields"].values() for message in messages)
    assert StagedPhoto.objects.count() == 1  # still there for the report once corrected


def test_a_report_on_another_technicians_order_is_a_404_and_takes_no_photo(
    client, started, technician, other_technician
):
    client.force_login(technician)
    key = send_photo(client, started, png_bytes((400, 300), (10, 20, 30)))
    client.force_login(other_technician)
    response = client.post(f"/commandes/{started.pk}/rapport/", {**report_fields(), "photo_keys": [key]}, **REPLAY)
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert not InterventionReport.objects.exists() and StagedPhoto.objects.count() == 1


def test_more_than_8_photos_of_a_kind_are_refused_in_french(signed_in, started):
    keys = [str(send_photo(signed_in, started, png_bytes((40, 30), (n, 20, 30)), kind="after")) for n in range(9)]
    response = signed_in.post(f"/commandes/{started.pk}/rapport/", {**report_fields(), "photo_keys": keys}, **REPLAY)
    assert response.status_code == HTTPStatus.CONFLICT
    assert response.json()["errors"] == ["8 photos au plus « après travaux » : retirez-en."]


# --- Nothing chosen again: the form that comes back with an error -------------------


def test_without_javascript_a_form_with_an_error_keeps_its_photos(signed_in, started):
    """The photos sent with a form that is refused are kept on the server and
    shown again, each with « Garder » ticked: nothing is to be chosen again."""
    photos = {
        "photos_before": [SimpleUploadedFile("IMG_1.jpg", camera_jpeg(), "image/jpeg")],
        "photos_after": [
            SimpleUploadedFile("IMG_2.png", png_bytes((800, 600), (10, 20, 30)), "image/png"),
            SimpleUploadedFile("notes.jpg", b"pas une image", "image/jpeg"),
        ],
    }
    response = signed_in.post(f"/commandes/{started.pk}/rapport/", {**report_fields(works_done=""), **photos})
    assert response.status_code == HTTPStatus.BAD_REQUEST
    page = response.content.decode()
    assert "à choisir à nouveau" not in page
    assert "Les photos déjà choisies sont gardées." in page
    assert "La photo « notes.jpg » n&#x27;est pas une photo lisible" in page
    kept = list(StagedPhoto.objects.order_by("pk"))
    assert [(photo.kind, photo.status, photo.width, photo.height) for photo in kept] == [
        ("before", "ready", 1200, 1600),
        ("after", "ready", 800, 600),
    ]
    for photo in kept:
        assert f'name="photo_keys" value="{photo.key}" checked' in page
        assert f'src="/commandes/{started.pk}/rapport/photos/{photo.key}/"' in page
        assert signed_in.get(photo_url(started, photo.key)).status_code == HTTPStatus.OK

    # Corrected, and the first photo kept only: the report takes it, and nothing else is left.
    corrected = signed_in.post(f"/commandes/{started.pk}/rapport/", {**report_fields(), "photo_keys": [kept[0].key]})
    assert corrected.status_code == HTTPStatus.FOUND
    report = InterventionReport.objects.get()
    assert [(photo.kind, photo.width) for photo in report.photos.all()] == [("before", 1200)]
    assert StagedPhoto.objects.filter(pk=kept[1].pk).exists()  # unticked: forgotten with the others later


def test_a_form_shown_again_names_the_photos_already_sent(signed_in, started):
    key = send_photo(signed_in, started, png_bytes((400, 300), (10, 20, 30)), kind="after")
    response = signed_in.post(
        f"/commandes/{started.pk}/rapport/", {**report_fields(time_on_site_minutes="0"), "photo_keys": [key]}
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    page = response.content.decode()
    assert page.count('name="photo_keys"') == 1 and f'value="{key}" checked' in page


def test_the_form_marks_what_must_be_filled_in_before_it_is_sent(signed_in, started):
    page = signed_in.get(f"/commandes/{started.pk}/rapport/").content.decode()
    for label in ("Travaux réalisés", "Signature de l&#x27;occupant"):
        assert f'{label} <span class="required">obligatoire</span>' in page, label
    assert 'Travaux à chiffrer <span class="required">obligatoire avec un devis</span>' in page
    # Counted from the start when left empty (orders/timing.py): not marked.
    for label in ("Observations", "Temps passé sur place (en minutes)"):
        assert f'{label} <span class="required">' not in page, label
    # Every aria-describedby names an element of the page.
    for described in ("id_quote_description_helptext", "id_time_on_site_minutes_helptext"):
        assert f'aria-describedby="{described}"' in page and f'id="{described}"' in page, described
    # The time and key the phone's queue needs, as for every action.
    assert 'name="client_at"' in page and 'name="idempotency_key"' in page


def test_the_report_can_be_prepared_before_the_works_start_but_not_on_a_cancelled_order(signed_in, order, technician):
    page = signed_in.get(f"/commandes/{order.pk}/rapport/").content.decode()
    assert "le rapport s'enregistre une fois les travaux démarrés" in page
    assert "data-report-form" in page  # the form, for a report written offline before « Démarrer » goes
    response = signed_in.post(f"/commandes/{order.pk}/rapport/", report_fields(), **REPLAY)
    assert response.status_code == HTTPStatus.CONFLICT
    assert "une fois les travaux démarrés" in json.dumps(response.json(), ensure_ascii=False)

    services.cancel_order(order, actor=None, reason="Doublon")
    page = signed_in.get(f"/commandes/{order.pk}/rapport/").content.decode()
    assert "data-report-form" not in page and "elle ne reçoit plus de rapport" in page


# --- Offline: the worker keeps the form and what it needs ---------------------------


def test_the_service_worker_keeps_the_report_form_and_its_scripts(client):
    body = client.get("/sw.js").content.decode()
    for asset in ("report-store.js", "report-form.js", "signature.js"):
        assert f'"/static/js/{asset}"' in body, asset
    assert r"rapport\/" in body  # the report's form is one of the pages kept


def test_a_technicians_pages_load_the_report_store_after_the_offline_mode(signed_in, started, technician, client):
    for url in ("/mes-commandes/", f"/commandes/{started.pk}/", f"/commandes/{started.pk}/rapport/"):
        page = signed_in.get(url).content.decode()
        store = f'<script src="/static/js/report-store.js" data-user="{technician.pk}" defer></script>'
        assert page.count(store) == 1, url
        assert page.index('src="/static/js/offline.js"') < page.index(store) < page.index("</head>"), url
    client.logout()
    assert "report-store.js" not in client.get("/connexion/").content.decode()


def test_the_same_part_received_twice_at_once_is_kept_once_and_the_second_told_where_the_server_stands(
    signed_in, started, technician
):
    """Where rows are not locked (SQLite), two sends of one part can both pass the
    offset check: the second finds the part taken and gets 409, never a 500."""
    content = camera_jpeg()
    key, _ = open_photo(signed_in, started, content)
    photo = StagedPhoto.objects.get(key=key)
    StagedPhotoPart.objects.create(photo=photo, offset=PART, data=content[PART : 2 * PART])  # the other request's
    response = send_part(signed_in, started, key, content[PART : 2 * PART], PART)
    assert response.status_code == HTTPStatus.CONFLICT
    assert response.json() == {"status": "receiving", "received": PART}
    assert StagedPhotoPart.objects.filter(photo=photo, offset=PART).count() == 1


# --- Parts at once: never a 500 -------------------------------------------------------
# The live server is threaded: the page's two lanes, the page and its service
# worker, a send the browser retried on a fresh connection may all reach it at
# once. Each answer is one the phone acts on (static/js/report-queue.js).


def test_a_part_of_a_photo_its_report_took_is_told_so_and_not_opened_again(signed_in, started):
    """The last part sent again (its answer lost, or by the service worker too)
    after the report took the photo: 410, the report has it; not a new photo."""
    content = camera_jpeg()
    key = send_photo(signed_in, started, content)
    fields = {**report_fields(), "photo_keys": [str(key)]}
    assert signed_in.post(f"/commandes/{started.pk}/rapport/", fields, **REPLAY).status_code == HTTPStatus.OK
    last = (len(content) - 1) // PART * PART

    late = send_part(signed_in, started, key, content[last:], last)
    assert late.status_code == HTTPStatus.GONE
    assert late.json() == {"status": "taken", "key": str(key)}
    _, first_again = open_photo(signed_in, started, content, key=key)
    assert first_again.status_code == HTTPStatus.GONE
    assert not StagedPhoto.objects.exists()  # not opened again, to wait two weeks for nothing
    assert InterventionReport.objects.get().photos.count() == 1


def test_a_photo_taken_is_forgotten_with_the_others_after_two_weeks(signed_in, started, now):
    key = send_photo(signed_in, started, png_bytes((400, 300), (10, 20, 30)))
    fields = {**report_fields(), "photo_keys": [str(key)]}
    assert signed_in.post(f"/commandes/{started.pk}/rapport/", fields, **REPLAY).status_code == HTTPStatus.OK
    with time_machine.travel(now + timedelta(days=15), tick=False):
        forget_stale_photos()
    # Two weeks on, the key is free: sent again, it is a photo again (the phone kept it).
    _, response = open_photo(signed_in, started, png_bytes((400, 300), (10, 20, 30)), key=key)
    assert response.status_code == HTTPStatus.OK


def close_this_threads_connection() -> None:
    """At the end of a thread of the test. Django never closes an in-memory
    SQLite connection (the last one closed drops the database): this thread's
    is not the last one."""
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        BaseDatabaseWrapper.close(connection)
    else:
        connection.close()


@contextmanager
def held_by_another_request(key: uuid.UUID) -> Iterator[None]:
    """Another request's transaction holding the photo (its row locked; on
    SQLite, the database's write lock) until the block ends."""
    holding, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def hold() -> None:
        try:
            with transaction.atomic():
                StagedPhoto.objects.filter(key=key).update(received=F("received"))
                holding.set()
                release.wait(30)
        except BaseException as error:  # told to the test, not lost in the thread
            errors.append(error)
            holding.set()
        finally:
            close_this_threads_connection()

    thread = threading.Thread(target=hold)
    thread.start()
    assert holding.wait(30)
    try:
        yield
    finally:
        release.set()
        thread.join()
        assert not errors, errors


@pytest.mark.django_db(transaction=True)
def test_a_part_kept_waiting_by_another_request_is_told_to_come_again(signed_in, started, monkeypatch):
    """SQLite's lock (busy for longer than its timeout, or at once in the tests'
    shared memory) or PostgreSQL's row lock for longer than LOCK_WAIT: 503 with
    Retry-After, and the same part, sent again, is kept."""
    monkeypatch.setattr(report_photos, "LOCK_WAIT", timedelta(milliseconds=300))
    content = camera_jpeg()
    key, _ = open_photo(signed_in, started, content)
    with held_by_another_request(key):
        busy = send_part(signed_in, started, key, content[PART : 2 * PART], PART)
    assert busy.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert busy["Retry-After"] == "1"
    assert busy.json()["status"] == "busy"
    assert StagedPhoto.objects.get(key=key).received == PART
    again = send_part(signed_in, started, key, content[PART : 2 * PART], PART)
    assert again.status_code == HTTPStatus.OK
    assert again.json()["received"] == 2 * PART


@pytest.mark.django_db(transaction=True)
def test_two_copies_of_a_first_part_at_once_open_the_photo_once(started, technician):
    """The page and its service worker both opening one photo: each copy is
    answered (kept, or told where the server stands, or to come again), the
    photo is opened once, and it goes on from the offset the server gives."""
    content = camera_jpeg()
    key = uuid.uuid4()
    answers: list[tuple[int, dict]] = []
    barrier = threading.Barrier(2, timeout=30)
    phones = [Client(), Client()]  # the page and its service worker, signed in before they race
    for phone in phones:
        phone.force_login(technician)

    def send(phone: Client) -> None:
        try:
            barrier.wait()
            _, response = open_photo(phone, started, content, key=key)
            answers.append((response.status_code, response.json()))
        finally:
            close_this_threads_connection()

    threads = [threading.Thread(target=send, args=(phone,)) for phone in phones]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 2
    assert {status for status, _ in answers} <= {HTTPStatus.OK, HTTPStatus.CONFLICT, HTTPStatus.SERVICE_UNAVAILABLE}
    assert HTTPStatus.OK in {status for status, _ in answers}, answers
    photo = StagedPhoto.objects.get(key=key)
    assert photo.received == PART and photo.parts.count() == 1
    phone = Client()
    phone.force_login(technician)
    for offset in range(PART, len(content), PART):
        assert send_part(phone, started, key, content[offset : offset + PART], offset).status_code == HTTPStatus.OK
    assert StagedPhoto.objects.get(key=key).status == "ready"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_first_part_racing_another_requests_opening_of_the_photo_joins_it(started, technician):
    """PostgreSQL: the other request's photo not committed yet when this first
    part looks for it; its own opening then waits on the key, finds the other's
    once committed, and goes on (never the IntegrityError)."""
    content = camera_jpeg()
    key = uuid.uuid4()
    created, release = threading.Event(), threading.Event()

    def open_elsewhere() -> None:
        try:
            with transaction.atomic():
                StagedPhoto.objects.create(
                    key=key, order=started, user=technician, kind="before", size=len(content), name="IMG_1.jpg"
                )
                created.set()
                release.wait(30)
        finally:
            close_this_threads_connection()

    holder = threading.Thread(target=open_elsewhere)
    holder.start()
    assert created.wait(30)
    answers = []
    phone = Client()
    phone.force_login(technician)

    def send() -> None:
        try:
            answers.append(open_photo(phone, started, content, key=key)[1])
        finally:
            close_this_threads_connection()

    sender = threading.Thread(target=send)
    sender.start()
    sender.join(1)  # waiting on the key
    release.set()
    holder.join()
    sender.join()
    assert answers[0].status_code == HTTPStatus.OK, answers[0].content
    assert answers[0].json()["received"] == PART
    assert StagedPhoto.objects.get(key=key).parts.count() == 1
