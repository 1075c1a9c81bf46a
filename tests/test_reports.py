"""The intervention report: the technician's form (photos, signature, quote),
the PDF rendered in the background and read back with pypdf, its polling page."""

from __future__ import annotations

import base64
import html
import io
import json
from datetime import datetime, timedelta
from http import HTTPStatus

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import ExifTags, Image, ImageDraw
from pypdf import PdfReader

from orders import documents, images, planning, reports, services, tasks
from orders.models import (
    Document,
    DocumentKind,
    InterventionReport,
    OrderEvent,
    PdfStatus,
    PhotoKind,
    SignatureStatus,
)
from orders.tasks import render_report_pdf
from portal.models import Company
from portal.relay.models import Connection, MessageKind
from tests.conftest import PARIS


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def started(order, technician):
    """The order at the appointment: acknowledged, planned, works started."""
    services.acknowledge_order(order, actor=technician)
    appointment = datetime(2026, 11, 23, 8, 30, tzinfo=PARIS)
    planning.plan_order(order, actor=technician, appointment=appointment, at=appointment - timedelta(days=1))
    services.start_work(order, actor=technician, at=appointment + timedelta(minutes=10))
    order.refresh_from_db()
    return order


@pytest.fixture
def company(db):
    company = Company(name="Multitech Lorraine SARL", siret="83214765600017", city="Metz", postcode="57070")
    company.logo.save("logo.png", ContentFile(png_bytes((300, 100), (11, 92, 173))), save=False)
    company.save()
    return company


@pytest.fixture
def connection(client_org) -> Connection:
    """A platform connection (never called here): the relay records its messages."""
    connection = Connection(
        client=client_org,
        kind="intent",
        auth_base_url="http://127.0.0.1:9/sandbox",
        api_base_url="http://127.0.0.1:9/sandbox/api",
        oauth_client_id="portail",
        document_type="quitus_maintenance_preventive",
        document_family="rapports_intervention",
    )
    connection.client_secret = "s3cret"
    connection.save()
    return connection


# --- Making images -------------------------------------------------------------


def png_bytes(size: tuple[int, int], color: tuple[int, int, int]) -> bytes:
    output = io.BytesIO()
    Image.new("RGB", size, color).save(output, "PNG")
    return output.getvalue()


def camera_jpeg(size: tuple[int, int] = (4000, 3000), *, orientation: int = 6) -> bytes:
    """A phone's photo: landscape pixels to be shown rotated, with a GPS position in its EXIF."""
    image = Image.new("RGB", size, (200, 120, 40))
    ImageDraw.Draw(image).rectangle((0, 0, size[0] // 2, size[1] // 2), fill=(30, 60, 200))
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Phone"
    exif[ExifTags.Base.Orientation] = orientation
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (49.0, 7.0, 12.5)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (6.0, 10.0, 30.0)
    output = io.BytesIO()
    image.save(output, "JPEG", exif=exif, quality=85, comment=b"taken at 14 rue des Tilleuls")
    return output.getvalue()


def signature_png(size: tuple[int, int] = (600, 200), *, strokes: bool = True) -> bytes:
    image = Image.new("RGBA", size, (0, 0, 0, 0))
    if strokes:
        ImageDraw.Draw(image).line([(40, 150), (160, 40), (300, 160), (520, 60)], fill=(16, 42, 67, 255), width=5)
    output = io.BytesIO()
    image.save(output, "PNG")
    return output.getvalue()


def data_url(content: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(content).decode()}"


def processed(color: tuple[int, int, int] = (90, 140, 60), size: tuple[int, int] = (2400, 1800)):
    output = io.BytesIO()
    Image.new("RGB", size, color).save(output, "JPEG")
    output.seek(0)
    return images.process_photo(output, name="photo.jpg")


def submit(order, technician, *, photos: int = 0, **overrides) -> InterventionReport:
    arguments = {
        "works_done": "Remplacement du siphon d'évier et essai en eau",
        "time_on_site_minutes": 75,
        "signature_status": SignatureStatus.ABSENT,
        "photos": [
            reports.ReportPhotoUpload(
                kind=PhotoKind.BEFORE if number % 2 == 0 else PhotoKind.AFTER,
                image=processed((40 * number, 120, 200 - 30 * number)),
            )
            for number in range(photos)
        ],
        **overrides,
    }
    return reports.submit_report(order, actor=technician, **arguments)


def pdf_text(document: Document) -> tuple[str, int]:
    with document.file.open("rb") as stream:
        reader = PdfReader(io.BytesIO(stream.read()))
    # Lines end where the layout wraps them: compare words, not lines.
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split()), len(reader.pages)


def text(response) -> str:
    return html.unescape(response.content.decode())


def report_form(**overrides) -> dict:
    data = {
        "works_done": "Siphon remplacé, raccords resserrés, plus de fuite",
        "observations": "Meuble sous évier abîmé par l'eau",
        "materials_used": "1 siphon PVC 40 mm",
        "time_on_site_minutes": "90",
        "signature_status": "signed",
        "signatory_name": "Claire Martin",
        "signature": data_url(signature_png()),
    }
    data.update(overrides)
    return {name: value for name, value in data.items() if value is not None}


# --- The page --------------------------------------------------------------------


def test_the_report_page_is_a_404_for_another_technician(client, started, other_technician):
    client.force_login(other_technician)
    assert client.get(f"/commandes/{started.pk}/rapport/").status_code == HTTPStatus.NOT_FOUND
    response = client.post(f"/commandes/{started.pk}/rapport/", report_form())
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert not InterventionReport.objects.exists()


def test_a_signed_out_visitor_is_sent_to_the_login_page_from_the_report_page(client, started):
    response = client.get(f"/commandes/{started.pk}/rapport/")
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith("/connexion/")


def test_the_report_form_offers_the_camera_and_the_gallery_and_loads_its_scripts_from_files(
    client, started, technician
):
    """Each kind of photo has the camera (`capture`) and, on an input of its own,
    the gallery: `capture` on the only input would stop a phone from choosing
    an existing photo."""
    client.force_login(technician)
    response = client.get(f"/commandes/{started.pk}/rapport/")
    assert response.status_code == HTTPStatus.OK
    page = response.content.decode()
    for name in ("photos_before", "photos_after"):
        camera = f'id="id_{name}_camera" name="{name}" accept="image/*" capture="environment">'
        gallery = f'id="id_{name}" name="{name}" accept="image/*" multiple>'
        assert page.count(camera) == 1 and page.count(gallery) == 1, name
    assert page.count("capture=") == 2
    assert "/static/js/report-form.js" in page
    assert "/static/js/signature.js" in page
    assert "<canvas" in page and 'type="hidden" name="signature"' in page
    assert "<script>" not in page  # no inline script (CSP)
    assert 'value="Mme Claire Martin"' in page  # the occupant, proposed as the signatory


def test_the_report_waits_for_the_works_to_start(client, order, technician):
    client.force_login(technician)
    response = client.get(f"/commandes/{order.pk}/rapport/")
    assert "une fois les travaux démarrés" in text(response)
    with pytest.raises(services.ServiceError, match="une fois les travaux démarrés"):
        submit(order, technician)


def test_saving_the_report_stores_it_and_queues_its_pdf_after_commit(
    client, started, technician, django_capture_on_commit_callbacks
):
    client.force_login(technician)
    photos = {
        "photos_before": [
            SimpleUploadedFile("IMG_1.jpg", camera_jpeg(), "image/jpeg"),
            SimpleUploadedFile("IMG_2.png", png_bytes((800, 600), (10, 20, 30)), "image/png"),
        ],
        "photos_after": [SimpleUploadedFile("IMG_3.jpg", camera_jpeg((3000, 4000), orientation=1), "image/jpeg")],
    }
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(
            f"/commandes/{started.pk}/rapport/",
            {**report_form(quote_needed="on", quote_description="Remplacer le meuble sous évier"), **photos},
        )

    report = InterventionReport.objects.get()
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == f"/commandes/{started.pk}/rapports/{report.pk}/"
    assert report.works_done == "Siphon remplacé, raccords resserrés, plus de fuite"
    assert report.time_on_site_minutes == 90
    assert report.created_by == technician
    assert report.signature_status == SignatureStatus.SIGNED and report.signatory_name == "Claire Martin"
    assert report.quote_needed and report.quote_description == "Remplacer le meuble sous évier"
    assert report.pdf_status == PdfStatus.PENDING
    assert [(p.kind, p.position) for p in report.photos.all()] == [("after", 1), ("before", 1), ("before", 2)]
    assert started.events.filter(kind="report_submitted", label="Rapport d'intervention saisi").exists()
    queued = [callback for callback in callbacks if getattr(callback, "func", None) == render_report_pdf.delay]
    assert [callback.args for callback in queued] == [(report.pk,)]


def test_photos_are_resized_to_1600_px_turned_upright_and_lose_their_exif_and_gps():
    original = Image.open(io.BytesIO(camera_jpeg()))
    assert original.getexif().get_ifd(ExifTags.IFD.GPSInfo)  # the test photo does carry a position

    photo = images.process_photo(io.BytesIO(camera_jpeg()), name="IMG_1.jpg")

    image = Image.open(io.BytesIO(photo.content))
    assert image.format == "JPEG"
    assert (image.width, image.height) == (photo.width, photo.height) == (1200, 1600)  # orientation 6: upright
    assert max(image.size) <= 1600
    assert len(image.getexif()) == 0
    assert not image.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    assert not {"exif", "xmp", "comment"} & set(image.info)
    assert b"Exif" not in photo.content[:4096] and b"Tilleuls" not in photo.content


def test_the_stored_photos_have_no_exif_either(client, started, technician):
    client.force_login(technician)
    upload = SimpleUploadedFile("IMG_1.jpg", camera_jpeg(), "image/jpeg")
    client.post(f"/commandes/{started.pk}/rapport/", {**report_form(), "photos_before": [upload]})
    stored = InterventionReport.objects.get().photos.get()
    with stored.image.open("rb") as stream:
        image = Image.open(io.BytesIO(stream.read()))
    assert (stored.width, stored.height) == image.size == (1200, 1600)
    assert len(image.getexif()) == 0


def test_a_small_transparent_png_is_kept_at_its_size_on_white():
    output = io.BytesIO()
    Image.new("RGBA", (300, 200), (0, 0, 0, 0)).save(output, "PNG")
    photo = images.process_photo(output, name="capture.png")
    image = Image.open(io.BytesIO(photo.content))
    assert image.size == (300, 200) and image.getpixel((10, 10)) == (255, 255, 255)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("photo.jpg", b"ceci n'est pas une image", "n'est pas une photo lisible"),
        ("photo.gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "n'est pas une photo lisible"),
        ("IMG_0001.HEIC", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64, "HEIC"),
    ],
)
def test_a_photo_that_is_not_a_jpeg_png_webp_or_heic_is_refused_in_french(
    client, started, technician, name, content, message
):
    if message == "HEIC" and images.HEIF_SUPPORTED:
        message = "n'est pas une photo lisible (JPEG, PNG ou WebP, HEIC)"  # a broken one, then
    client.force_login(technician)
    upload = SimpleUploadedFile(name, content, "image/jpeg")
    response = client.post(f"/commandes/{started.pk}/rapport/", {**report_form(), "photos_after": [upload]})
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert message in text(response)
    assert f"La photo « {name} »" in text(response)
    assert not InterventionReport.objects.exists()


def test_an_iphones_heic_photo_becomes_a_small_jpeg_without_its_location():
    assert images.HEIF_SUPPORTED, "pillow-heif is in requirements.txt"
    exif = Image.Exif()
    exif[0x8825] = {2: (49.0, 7.0, 0.0), 1: "N"}  # GPSInfo: where the photo was taken
    exif[0x0110] = "iPhone 15"
    original = io.BytesIO()
    Image.new("RGB", (4032, 3024), (90, 140, 200)).save(original, "HEIF", quality=60, exif=exif.tobytes())
    assert original.getvalue()[4:12] == b"ftypheic"

    photo = images.process_photo(original, name="IMG_4242.HEIC")

    image = Image.open(io.BytesIO(photo.content))
    assert image.format == "JPEG"
    assert max(image.size) == images.MAX_SIDE and image.size[0] > image.size[1]
    assert not image.getexif() and "exif" not in image.info


def test_a_photo_over_15_mb_is_refused_before_it_is_decoded():
    class Unreadable(io.BytesIO):
        def read(self, *args):
            raise AssertionError("read")

    with pytest.raises(images.ImageRefused, match="dépasse 15 Mo"):
        images.process_photo(Unreadable(), name="IMG_9.jpg", size=15 * 1024 * 1024 + 1)


def test_a_decompression_bomb_is_refused():
    output = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(output, "PNG")  # a few KB, 400 million pixels
    with pytest.raises(images.ImageRefused, match="trop grande"):
        images.process_photo(output, name="bombe.png")


# --- The signature ---------------------------------------------------------------


def test_a_drawn_signature_is_kept_as_a_clean_png():
    signature = images.read_signature(data_url(signature_png()))
    image = Image.open(io.BytesIO(signature.content))
    assert image.format == "PNG" and image.size == (600, 200)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (data_url(b"\xff\xd8\xff\xe0 a jpeg", "image/jpeg"), "n'est pas une image PNG"),
        ("data:image/png;base64,%%%pas du base64%%%", "illisible"),
        (data_url(b"GIF89a pretending to be a png"), "n'est pas une image PNG"),
        (data_url(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100), "illisible"),
        (data_url(b"\x89PNG\r\n\x1a\n" + b"\x00" * (500 * 1024)), "dépasse 500 Ko"),
        (data_url(signature_png(strokes=False)), "est vide"),
        ("javascript:alert(1)", "n'est pas une image PNG"),
    ],
)
def test_a_signature_that_is_not_a_small_png_with_ink_is_refused(value, message):
    with pytest.raises(images.ImageRefused, match=message):
        images.read_signature(value)


def test_the_signature_is_validated_by_the_server(client, started, technician):
    client.force_login(technician)
    response = client.post(f"/commandes/{started.pk}/rapport/", report_form(signature=data_url(b"not a png")))
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "La signature n'est pas une image PNG" in text(response)

    response = client.post(f"/commandes/{started.pk}/rapport/", report_form(signature=""))
    assert "Faites signer l'occupant dans le cadre" in text(response)
    assert not InterventionReport.objects.exists()


@pytest.mark.parametrize("status", ["absent", "refused"])
def test_an_absent_or_refusing_occupant_needs_no_signature_and_none_is_kept(client, started, technician, status):
    client.force_login(technician)
    response = client.post(f"/commandes/{started.pk}/rapport/", report_form(signature_status=status))
    assert response.status_code == HTTPStatus.FOUND
    report = InterventionReport.objects.get()
    assert report.signature_status == status
    assert not report.signature and report.signatory_name == ""


def test_a_quote_needs_a_description(client, started, technician):
    client.force_login(technician)
    response = client.post(f"/commandes/{started.pk}/rapport/", report_form(quote_needed="on"))
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "Décrivez les travaux qui demandent un devis." in text(response)


# --- The PDF ---------------------------------------------------------------------


def test_the_pdf_reads_back_with_the_reference_client_works_and_technician(started, technician, company):
    report = submit(
        started, technician, observations="Meuble abîmé", materials_used="Siphon PVC 40 mm", time_on_site_minutes=95
    )

    assert render_report_pdf(report.pk) == "done"

    report.refresh_from_db()
    assert report.pdf_status == PdfStatus.DONE and report.pdf_attempts == 1
    document = report.document
    assert document.kind == DocumentKind.GENERATED_REPORT and document.mime == "application/pdf"
    words, pages = pdf_text(document)
    assert pages >= 1
    for expected in (
        "OPH57_241122093015",
        "Office Public de l'Habitat de Metz",
        "MULTITECH-2024-07",
        "Remplacement du siphon d'évier et essai en eau",
        "Karim Haddad",
        "Multitech Lorraine SARL",
        "LGT-0412",
        "14 rue des Tilleuls, 57000 Metz",
        "Meuble abîmé",
        "Siphon PVC 40 mm",
        "1 h 35",
        "Occupant absent",
        "23 novembre 2026 à 08:30",  # the appointment, in Paris time
        "Page 1 sur",
    ):
        assert expected in words, expected


def test_a_report_with_four_photos_and_a_signature_gives_at_least_two_pages(started, technician):
    signature = images.read_signature(data_url(signature_png()))
    report = submit(
        started,
        technician,
        photos=4,
        signature_status=SignatureStatus.SIGNED,
        signature=signature,
        signatory_name="Claire Martin",
        quote_needed=True,
        quote_description="Remplacer le meuble sous évier",
    )
    render_report_pdf(report.pk)
    report.refresh_from_db()
    words, pages = pdf_text(report.document)
    assert pages >= 2
    assert "Avant – photo 2 sur 2" in words and "Après – photo 1 sur 2" in words
    assert "Claire Martin, le" in words
    assert "Un devis est nécessaire" in words and "Remplacer le meuble sous évier" in words


def test_rendering_attaches_the_pdf_and_records_its_upload_after_the_earlier_logs(started, technician, connection):
    report = submit(started, technician)
    render_report_pdf(report.pk)

    report.refresh_from_db()
    event = started.events.get(kind="document_added")
    assert event.label == "Rapport d'intervention ajouté"
    messages = list(started.outbox_messages.order_by("sequence"))
    assert [m.sequence for m in messages] == list(range(1, len(messages) + 1))
    assert [m.kind for m in messages[-2:]] == [MessageKind.INTERVENTION_LOG, MessageKind.DOCUMENT]
    assert messages[-2].payload["description"] == "Rapport d'intervention saisi"
    payload = messages[-1].payload
    assert json.loads(json.dumps(payload)) == payload
    assert messages[-1].event == event
    local = timezone.localtime(report.document.created_at)
    assert payload == {
        "title": f"Rapport d'intervention OPH57_241122093015 du {local:%d/%m/%Y}",
        "description": "Rapport d'intervention ajouté (rapport généré)",
        "elementType": "intervention",
        "elementReference": "OPH57_241122093015",
        "intent_contractReference": "MULTITECH-2024-07",
        "intent_documentType": "quitus_maintenance_preventive",
        "intent_documentFamily": "rapports_intervention",
        "intent_creationDate": local.isoformat(timespec="seconds"),
        "document": {
            "id": report.document.pk,
            "fileName": report.document.file_name,
            "mime": "application/pdf",
            "size": report.document.size,
            "sha256": report.document.sha256,
        },
    }
    assert payload["intent_creationDate"][-6:] in ("+01:00", "+02:00")


def test_the_render_task_is_safe_to_run_twice(started, technician, connection):
    report = submit(started, technician)

    assert render_report_pdf(report.pk) == "done"
    assert render_report_pdf(report.pk) == "nothing to do"
    # Two renders that overlap: the second to finish keeps nothing.
    assert documents.attach_report_pdf(report, content=b"%PDF-1.7 another render") is None

    assert Document.objects.count() == 1
    assert started.outbox_messages.filter(kind=MessageKind.DOCUMENT).count() == 1
    assert started.events.filter(kind="document_added").count() == 1
    report.refresh_from_db()
    assert report.pdf_status == PdfStatus.DONE and report.pdf_attempts == 1


def test_a_render_that_keeps_failing_is_retried_with_backoff_then_shown_as_failed(client, started, technician):
    report = submit(started, technician, photos=1)
    photo = report.photos.get()
    photo.image.storage.delete(photo.image.name)  # the storage lost the photo

    render_report_pdf.apply(args=[report.pk])  # eagerly, its retries included

    report.refresh_from_db()
    assert report.pdf_status == PdfStatus.FAILED
    assert report.pdf_attempts == tasks.MAX_RETRIES + 1
    assert "FileNotFoundError" in report.pdf_error
    assert not Document.objects.exists()
    assert 20 <= tasks.retry_delay(0) <= 30 and 160 <= tasks.retry_delay(3) <= 240

    client.force_login(technician)
    page = text(client.get(f"/commandes/{started.pk}/rapports/{report.pk}/"))
    assert "La production du PDF a échoué." in page
    assert f'action="/commandes/{started.pk}/rapports/{report.pk}/relancer/"' in page and "Relancer" in page


def test_a_template_error_is_not_retried_and_waits_for_a_person(started, technician, settings, tmp_path):
    (tmp_path / "pdf").mkdir()
    (tmp_path / "pdf" / "report.html").write_text("{% if %}")
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path]}]
    report = submit(started, technician)

    assert render_report_pdf(report.pk) == "failed"

    report.refresh_from_db()
    assert report.pdf_status == PdfStatus.FAILED and report.pdf_attempts == 1
    assert "TemplateSyntaxError" in report.pdf_error


def test_relancer_asks_for_the_pdf_again(client, started, technician, django_capture_on_commit_callbacks):
    report = submit(started, technician)
    InterventionReport.objects.filter(pk=report.pk).update(pdf_status=PdfStatus.FAILED, pdf_error="boom")
    client.force_login(technician)

    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(f"/commandes/{started.pk}/rapports/{report.pk}/relancer/")

    assert response.status_code == HTTPStatus.FOUND
    report.refresh_from_db()
    assert report.pdf_status == PdfStatus.PENDING and report.pdf_error == ""
    assert [c.args for c in callbacks if getattr(c, "func", None) == render_report_pdf.delay] == [(report.pk,)]


def test_relancer_is_refused_while_a_pdf_is_being_made_and_offered_once_it_is_stalled(started, technician):
    report = submit(started, technician)
    with pytest.raises(services.ServiceError, match="patientez"):
        reports.retry_report_pdf(report, actor=technician)

    InterventionReport.objects.filter(pk=report.pk).update(pdf_requested_at=timezone.now() - timedelta(minutes=11))
    report.refresh_from_db()
    assert report.can_retry_pdf
    reports.retry_report_pdf(report, actor=technician)


def test_the_sweep_asks_again_for_a_pdf_whose_task_was_lost_and_gives_up_on_one_that_keeps_crashing(
    started, technician, django_capture_on_commit_callbacks
):
    fresh, lost, crashing = (submit(started, technician) for _ in range(3))
    long_ago = timezone.now() - timedelta(minutes=11)
    InterventionReport.objects.filter(pk__in=[lost.pk, crashing.pk]).update(
        pdf_status=PdfStatus.RENDERING, pdf_requested_at=long_ago, pdf_attempts=1
    )
    InterventionReport.objects.filter(pk=crashing.pk).update(pdf_attempts=documents.PDF_MAX_STARTS)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert tasks.sweep_report_pdfs() == "1 asked again, 1 given up"

    assert [c.args for c in callbacks if getattr(c, "func", None) == render_report_pdf.delay] == [(lost.pk,)]
    fresh.refresh_from_db(), lost.refresh_from_db(), crashing.refresh_from_db()
    assert fresh.pdf_status == PdfStatus.PENDING  # a render still has time
    assert lost.pdf_status == PdfStatus.PENDING and lost.pdf_requested_at > long_ago
    assert crashing.pdf_status == PdfStatus.FAILED and "interrompue 6 fois" in crashing.pdf_error
    assert crashing.can_retry_pdf  # a person may still ask again
    # Asked again just now: not again at the next sweep.
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert tasks.sweep_report_pdfs() == "0 asked again, 0 given up"


def test_relancer_is_a_404_for_another_technician(client, started, technician, other_technician):
    report = submit(started, technician)
    InterventionReport.objects.filter(pk=report.pk).update(pdf_status=PdfStatus.FAILED)
    client.force_login(other_technician)
    assert client.post(f"/commandes/{started.pk}/rapports/{report.pk}/relancer/").status_code == HTTPStatus.NOT_FOUND
    assert client.get(f"/commandes/{started.pk}/rapports/{report.pk}/").status_code == HTTPStatus.NOT_FOUND


# --- Following the PDF -----------------------------------------------------------


def test_the_report_page_polls_every_2_seconds_until_the_pdf_is_there_then_stops_with_286(client, started, technician):
    report = submit(started, technician)
    url = f"/commandes/{started.pk}/rapports/{report.pk}/"
    client.force_login(technician)

    page = client.get(url)
    assert page.status_code == HTTPStatus.OK
    assert "PDF en cours de production…" in text(page)
    assert f'data-hx-get="{url}"' in text(page) and 'data-hx-trigger="every 2s"' in text(page)
    assert f'<a href="{url}">Rafraîchir</a>' in text(page)  # without JavaScript

    fragment = client.get(url, headers={"HX-Request": "true"})
    assert fragment.status_code == HTTPStatus.OK
    assert "<html" not in text(fragment) and "every 2s" in text(fragment)

    render_report_pdf(report.pk)
    report.refresh_from_db()

    fragment = client.get(url, headers={"HX-Request": "true"})
    assert fragment.status_code == 286
    assert "every 2s" not in text(fragment)
    assert f'href="/documents/{report.document_id}/"' in text(fragment)
    assert "HX-Request" in fragment["Vary"]


def test_the_order_page_lists_the_documents_and_the_pdfs_in_progress(client, started, technician):
    pending = submit(started, technician)
    done = submit(started, technician, quote_needed=True, quote_description="Changer le robinet")
    render_report_pdf(done.pk)
    done.refresh_from_db()
    client.force_login(technician)

    page = text(client.get(f"/commandes/{started.pk}/"))

    assert "Rapports et documents" in page
    assert f'href="/documents/{done.document_id}/"' in page
    assert f'id="pdf-status-{pending.pk}"' in page and "PDF en cours de production…" in page
    assert "Devis nécessaire" in page and "Changer le robinet" in page
    assert f'href="/commandes/{started.pk}/rapport/"' in page
    assert f'href="/commandes/{started.pk}/documents/deposer/"' in page


def test_the_supervisor_sees_the_report_of_any_order(client, started, technician, supervisor):
    report = submit(started, technician)
    client.force_login(supervisor)
    assert client.get(f"/commandes/{started.pk}/rapports/{report.pk}/").status_code == HTTPStatus.OK


def test_the_history_says_the_report_was_saved_then_added(started, technician):
    report = submit(started, technician)
    render_report_pdf(report.pk)
    labels = list(OrderEvent.objects.filter(order=started).order_by("pk").values_list("label", flat=True))
    assert labels[-2:] == ["Rapport d'intervention saisi", "Rapport d'intervention ajouté"]


# --- The office's admin -------------------------------------------------------------


def test_the_office_sees_reports_and_documents_in_the_admin_without_editing_them(client, started, technician, office):
    report = submit(started, technician, photos=1)
    render_report_pdf(report.pk)
    report.refresh_from_db()
    client.force_login(office)

    assert client.get("/admin/orders/interventionreport/").status_code == HTTPStatus.OK
    page = client.get(f"/admin/orders/interventionreport/{report.pk}/change/")
    assert page.status_code == HTTPStatus.OK
    assert "Remplacement du siphon d&#x27;évier et essai en eau" in page.content.decode()
    assert f'href="/documents/{report.document_id}/"' in page.content.decode()
    assert client.get("/admin/orders/document/").status_code == HTTPStatus.OK
    assert client.get(f"/admin/orders/document/{report.document_id}/change/").status_code == HTTPStatus.OK
    assert client.get("/admin/orders/document/add/").status_code == HTTPStatus.FORBIDDEN
    assert client.get("/admin/orders/interventionreport/add/").status_code == HTTPStatus.FORBIDDEN


def test_the_office_relaunches_a_failed_pdf_from_the_admin(
    client, started, technician, office, django_capture_on_commit_callbacks
):
    report = submit(started, technician)
    InterventionReport.objects.filter(pk=report.pk).update(pdf_status=PdfStatus.FAILED, pdf_error="boom")
    client.force_login(office)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(
            "/admin/orders/interventionreport/", {"action": "retry_pdf", "_selected_action": [report.pk]}
        )

    assert response.status_code == HTTPStatus.FOUND
    report.refresh_from_db()
    assert report.pdf_status == PdfStatus.PENDING
    assert [c.args for c in callbacks if getattr(c, "func", None) == render_report_pdf.delay] == [(report.pk,)]
