"""Documents of an order: a PDF report made elsewhere, checked by its content
and uploaded; the files served only to those who may see the order; and their
delivery to the platform (the embedded sandbox over real HTTP)."""

from __future__ import annotations

import hashlib
import html
import io
import re
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from http import HTTPStatus

import httpx
import pytest
import time_machine
from django.conf import settings as django_settings
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image
from pypdf import PdfWriter
from pypdf.generic import (
    ArrayObject,
    DictionaryObject,
    FloatObject,
    NameObject,
    TextStringObject,
)

from orders import documents, reports, services, uploads
from orders.models import Document, DocumentKind
from portal.relay import claims, intent, readback, tasks
from portal.relay.models import Connection, MessageKind, MessageStatus, OutboxMessage
from tests.conftest import PARIS
from tests.conftest import SANDBOX_CLIENT_ID as CLIENT_ID
from tests.conftest import SANDBOX_CLIENT_SECRET as CLIENT_SECRET

pytestmark = pytest.mark.usefixtures("database_before_the_live_server")


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def started(order, technician):
    services.acknowledge_order(order, actor=technician)
    services.start_work(order, actor=technician)
    order.refresh_from_db()
    return order


@pytest.fixture
def offline_connection(outbox_connection) -> Connection:
    return outbox_connection


# --- PDFs good and bad -------------------------------------------------------------


def pdf_bytes(change=None, *, encrypt: bool = False) -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.add_metadata({"/Title": "Rapport d'intervention"})
    if change is not None:
        change(writer)
    if encrypt:
        writer.encrypt(user_password="secret", algorithm="AES-128")
    output = io.BytesIO()
    writer.write(output)
    return output.getvalue()


def annotation(writer: PdfWriter, **entries) -> None:
    fields = {
        NameObject("/Type"): NameObject("/Annot"),
        NameObject("/Rect"): ArrayObject([FloatObject(10), FloatObject(10), FloatObject(100), FloatObject(30)]),
        **{NameObject(f"/{key}"): value for key, value in entries.items()},
    }
    writer.add_annotation(page_number=0, annotation=DictionaryObject(fields))


def javascript_action(script: str = "app.alert('bonjour');") -> DictionaryObject:
    return DictionaryObject({NameObject("/S"): NameObject("/JavaScript"), NameObject("/JS"): TextStringObject(script)})


def with_document_javascript(writer: PdfWriter) -> None:
    """A document-level script, in the catalog's names tree."""
    scripts = ArrayObject([TextStringObject("bonjour"), writer._add_object(javascript_action())])
    names = DictionaryObject({NameObject("/JavaScript"): DictionaryObject({NameObject("/Names"): scripts})})
    writer.root_object[NameObject("/Names")] = names


def with_open_action_javascript(writer: PdfWriter) -> None:
    writer.root_object[NameObject("/OpenAction")] = javascript_action()


def with_link_javascript(writer: PdfWriter) -> None:
    annotation(writer, Subtype=NameObject("/Link"), A=javascript_action())


def with_page_open_javascript(writer: PdfWriter) -> None:
    writer.pages[0][NameObject("/AA")] = DictionaryObject({NameObject("/O"): javascript_action()})


def with_launch_action(writer: PdfWriter) -> None:
    launch = DictionaryObject(
        {NameObject("/S"): NameObject("/Launch"), NameObject("/F"): TextStringObject("C:\\Windows\\calc.exe")}
    )
    annotation(writer, Subtype=NameObject("/Link"), A=launch)


def with_attachment(writer: PdfWriter) -> None:
    writer.add_attachment("notes.txt", b"un fichier dans le fichier")


def with_file_attachment_annotation(writer: PdfWriter) -> None:
    annotation(writer, Subtype=NameObject("/FileAttachment"), FS=TextStringObject("notes.txt"))


def jpeg_bytes() -> bytes:
    output = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(output, "JPEG")
    return output.getvalue()


def upload(content: bytes, name: str = "rapport.pdf") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, "application/pdf")


def text(response) -> str:
    return html.unescape(response.content.decode())


def attach(order, actor, content: bytes | None = None, *, title: str = "Rapport de l'entreprise") -> Document:
    return documents.attach_document(
        order,
        actor=actor,
        file=ContentFile(content or pdf_bytes(), name="Rapport d'intervention été.pdf"),
        kind=DocumentKind.UPLOADED_REPORT,
        title=title,
    )


# --- Checking a PDF by its content ---------------------------------------------------


def test_a_plain_pdf_passes_the_checks():
    assert uploads.check_pdf(io.BytesIO(pdf_bytes()), size=len(pdf_bytes())) == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (pdf_bytes(with_document_javascript), "Ce PDF contient du JavaScript"),
        (pdf_bytes(with_open_action_javascript), "Ce PDF contient du JavaScript"),
        (pdf_bytes(with_link_javascript), "Ce PDF contient du JavaScript"),
        (pdf_bytes(with_page_open_javascript), "Ce PDF contient du JavaScript"),
        (pdf_bytes(with_launch_action), "Ce PDF contient une action qui lance un programme"),
        (pdf_bytes(with_attachment), "Ce PDF contient des fichiers joints"),
        (pdf_bytes(with_file_attachment_annotation), "Ce PDF contient des fichiers joints"),
        (pdf_bytes(encrypt=True), "Ce PDF est protégé par un mot de passe"),
        (jpeg_bytes(), "Ce fichier n'est pas un PDF lisible"),
        (
            b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 9 0 R >>\nendobj\ntrailer <<>>\n%%EOF",
            "n'est pas un PDF lisible",
        ),
        (b"", "n'est pas un PDF lisible"),
    ],
    ids=[
        "document-javascript",
        "open-action-javascript",
        "link-javascript",
        "page-open-javascript",
        "launch",
        "embedded-file",
        "file-attachment-annotation",
        "encrypted",
        "renamed-jpeg",
        "damaged",
        "empty",
    ],
)
def test_a_dangerous_or_unreadable_pdf_is_refused_with_its_message(content, message):
    with pytest.raises(uploads.PdfRefused, match=message):
        uploads.check_pdf(io.BytesIO(content), size=len(content))


def test_a_file_over_20_mb_is_refused_before_any_of_it_is_read():
    class Unreadable(io.BytesIO):
        def read(self, *args):
            raise AssertionError("the content was read")

    with pytest.raises(uploads.PdfRefused, match="Ce fichier dépasse 20 Mo"):
        uploads.check_pdf(Unreadable(), size=20 * 1024 * 1024 + 1)


# --- The upload page ---------------------------------------------------------------


@pytest.fixture
def half_past_midnight():
    """00:30 on Tuesday 1 December in Paris, still Monday 30 November in UTC."""
    with time_machine.travel(datetime(2026, 12, 1, 0, 30, tzinfo=PARIS), tick=False):
        yield


def test_a_good_pdf_upload_becomes_a_document_and_a_document_message(
    half_past_midnight, client, started, technician, offline_connection
):
    client.force_login(technician)
    content = pdf_bytes()

    response = client.post(f"/commandes/{started.pk}/documents/deposer/", {"file": upload(content, "CR 1234.pdf")})

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == f"/commandes/{started.pk}/"
    document = Document.objects.get()
    assert (document.order, document.kind, document.created_by) == (started, DocumentKind.UPLOADED_REPORT, technician)
    assert document.title == f"Rapport d'intervention {started.reference} déposé le 01/12/2026"
    assert document.file_name == "CR_1234.pdf"
    assert (document.size, document.sha256) == (len(content), hashlib.sha256(content).hexdigest())
    with document.file.open("rb") as stream:
        assert stream.read() == content
    assert started.events.filter(kind="document_added", label="Rapport d'intervention ajouté").exists()
    message = started.outbox_messages.order_by("sequence").last()
    assert message.kind == MessageKind.DOCUMENT and message.status == MessageStatus.PENDING
    assert message.payload["document"]["id"] == document.pk
    assert message.payload["description"] == "Rapport d'intervention ajouté (rapport déposé)"
    assert message.payload["intent_documentFamily"] == "rapports_intervention"


def test_the_person_may_give_the_document_a_title(client, started, technician):
    client.force_login(technician)
    client.post(
        f"/commandes/{started.pk}/documents/deposer/", {"file": upload(pdf_bytes()), "title": "Quitus chaudière"}
    )
    assert Document.objects.get().title == "Quitus chaudière"


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (pdf_bytes(with_document_javascript), "rapport.pdf", "Ce PDF contient du JavaScript"),
        (jpeg_bytes(), "rapport.pdf", "Ce fichier n'est pas un PDF lisible"),
        (pdf_bytes(encrypt=True), "rapport.pdf", "Ce PDF est protégé par un mot de passe"),
        (pdf_bytes(with_attachment), "rapport.pdf", "Ce PDF contient des fichiers joints"),
        (b"%PDF-1.7\n" + b"0" * (25 * 1024 * 1024), "gros.pdf", "Ce fichier dépasse 20 Mo"),
    ],
    ids=["javascript", "renamed-jpeg", "encrypted", "embedded-file", "25-mb"],
)
def test_a_refused_upload_says_why_in_french_and_keeps_nothing(
    client, started, technician, offline_connection, content, name, message
):
    client.force_login(technician)
    response = client.post(f"/commandes/{started.pk}/documents/deposer/", {"file": upload(content, name)})
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert message in text(response)
    assert not Document.objects.exists()
    assert not started.outbox_messages.filter(kind=MessageKind.DOCUMENT).exists()


def test_the_upload_page_is_a_404_for_another_technician(client, started, other_technician):
    client.force_login(other_technician)
    assert client.get(f"/commandes/{started.pk}/documents/deposer/").status_code == HTTPStatus.NOT_FOUND
    response = client.post(f"/commandes/{started.pk}/documents/deposer/", {"file": upload(pdf_bytes())})
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert not Document.objects.exists()


def test_a_signed_out_visitor_is_sent_to_the_login_page_from_the_upload_page(client, started):
    response = client.get(f"/commandes/{started.pk}/documents/deposer/")
    assert response.status_code == HTTPStatus.FOUND and response["Location"].startswith("/connexion/")


def test_a_report_is_uploaded_once_the_works_have_started(client, order, technician):
    client.force_login(technician)
    assert "une fois les travaux démarrés" in text(client.get(f"/commandes/{order.pk}/documents/deposer/"))
    with pytest.raises(services.ServiceError, match="une fois les travaux démarrés"):
        attach(order, technician)


# --- Serving the files ---------------------------------------------------------------


def test_documents_are_kept_in_the_media_storage_under_names_nobody_can_guess(started, technician, media):
    document = attach(started, technician)
    assert re.fullmatch(r"documents/\d{4}/\d{2}/[A-Za-z0-9_-]{24}\.pdf", document.file.name)
    assert document.file_name == "Rapport_d_intervention_ete.pdf"
    path = document.file.path
    assert path.startswith(str(media)) and not path.startswith(str(django_settings.STATIC_ROOT))


def test_the_owner_gets_the_file_inline_with_its_type_and_no_sniffing(client, started, technician):
    content = pdf_bytes()
    document = attach(started, technician, content)
    client.force_login(technician)

    response = client.get(f"/documents/{document.pk}/")

    assert response.status_code == HTTPStatus.OK
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'inline; filename="Rapport_d_intervention_ete.pdf"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]
    assert b"".join(response.streaming_content) == content


def test_the_file_can_be_saved_rather_than_opened(client, started, technician):
    document = attach(started, technician)
    client.force_login(technician)
    response = client.get(f"/documents/{document.pk}/?telecharger")
    assert response["Content-Disposition"] == 'attachment; filename="Rapport_d_intervention_ete.pdf"'
    # Reading the stream to its end closes it as a server would (a bare close()
    # would fire request_finished and close the test's database connection).
    assert b"".join(response.streaming_content).startswith(b"%PDF")


def test_a_document_is_a_404_for_another_technician(client, started, technician, other_technician):
    document = attach(started, technician)
    client.force_login(other_technician)
    assert client.get(f"/documents/{document.pk}/").status_code == HTTPStatus.NOT_FOUND


def test_a_signed_out_visitor_is_sent_to_the_login_page_for_a_document(client, started, technician):
    document = attach(started, technician)
    response = client.get(f"/documents/{document.pk}/")
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == f"/connexion/?next=/documents/{document.pk}/"


def test_the_supervisor_and_the_office_get_any_document(client, started, technician, supervisor, office):
    document = attach(started, technician)
    for person in (supervisor, office):
        client.force_login(person)
        response = client.get(f"/documents/{document.pk}/")
        assert response.status_code == HTTPStatus.OK
        assert b"".join(response.streaming_content).startswith(b"%PDF")


def test_a_document_whose_file_is_gone_is_a_404(client, started, technician):
    document = attach(started, technician)
    document.file.storage.delete(document.file.name)
    client.force_login(technician)
    assert client.get(f"/documents/{document.pk}/").status_code == HTTPStatus.NOT_FOUND


# --- Delivery to the platform: the sandbox over real HTTP ----------------------------


@pytest.fixture
def connection(platform, client_org) -> Iterator[Connection]:
    connection = Connection(
        client=client_org,
        kind="intent",
        auth_base_url=platform,
        api_base_url=f"{platform}/api",
        oauth_client_id=CLIENT_ID,
        timeout_seconds=2,
        document_type="quitus_maintenance_preventive",
        document_family="rapports_intervention",
    )
    connection.client_secret = CLIENT_SECRET
    connection.save()
    yield connection
    intent.client_for(Connection.objects.get(pk=connection.pk)).close()


def set_behaviour(platform: str, **switches) -> None:
    response = httpx.post(f"{platform}/comportement.json", json=switches)
    assert response.status_code == HTTPStatus.OK, response.text


def drain(*, rounds: int = 50) -> list[str | None]:
    """Deliver until nothing can go, skipping the backoff waits."""
    outcomes: list[str | None] = []
    for _ in range(rounds):
        OutboxMessage.objects.filter(status=MessageStatus.PENDING).update(next_attempt_at=timezone.now())
        due = list(claims.due_messages().order_by("pk").values_list("pk", flat=True))
        if not due:
            return outcomes
        outcomes += [tasks.deliver_message(message_id) for message_id in due]
    raise AssertionError(f"still delivering after {rounds} rounds: {outcomes}")


def platform_documents(connection: Connection, reference: str) -> list[dict]:
    client = intent.IntentClient(Connection.objects.get(pk=connection.pk))
    try:
        return client.list_documents("intervention", reference)["_embedded"]["documents"]
    finally:
        client.close()


def test_the_delivery_uploads_the_pdf_and_the_platform_lists_it_with_the_same_bytes(
    client, platform, connection, started, technician
):
    client.force_login(technician)
    content = pdf_bytes()
    client.post(f"/commandes/{started.pk}/documents/deposer/", {"file": upload(content, "CR 1234.pdf")})
    document = Document.objects.get()

    outcomes = drain()

    assert set(outcomes) == {"delivered"}
    message = started.outbox_messages.get(kind=MessageKind.DOCUMENT)
    assert (message.status, message.last_status_code) == (MessageStatus.DELIVERED, 201)
    [listed] = platform_documents(connection, started.reference)
    assert listed["title"] == document.title
    assert listed["contractReference"] == "MULTITECH-2024-07"
    assert (listed["documentType"], listed["documentFamily"]) == (
        "quitus_maintenance_preventive",
        "rapports_intervention",
    )
    assert listed["fileName"] == "CR_1234.pdf" and listed["contentType"] == "application/pdf"
    assert (listed["size"], listed["sha256"]) == (len(content), hashlib.sha256(content).hexdigest())
    assert httpx.get(listed["_links"]["download"]["href"]).content == content
    # In sequence with the order's logs: every log before it reached the platform first.
    logs = httpx.get(f"{platform}/logs.json", params={"reference": started.reference}).json()["logs"]
    sent = [m.payload["description"] for m in started.outbox_messages.filter(kind=MessageKind.INTERVENTION_LOG)]
    assert [log["description"] for log in logs if log["source"] == "api"] == sent


def test_a_document_waits_for_the_earlier_logs_of_its_order(platform, connection, started, technician):
    set_behaviour(platform, down=True)
    attach(started, technician)
    due = list(claims.due_messages().values_list("pk", flat=True))
    assert due == [started.outbox_messages.get(sequence=1).pk]  # only the first of the order's messages may go
    assert tasks.deliver_message(due[0]) == "retry"

    set_behaviour(platform, down=False)
    outcomes = drain()

    assert set(outcomes) == {"delivered"}
    messages = list(started.outbox_messages.order_by("sequence"))
    assert messages[-1].kind == MessageKind.DOCUMENT
    assert all(earlier.delivered_at <= messages[-1].delivered_at for earlier in messages[:-1])


@pytest.mark.parametrize("strict", [False, True], ids=["listed under its own names", "under the multipart names"])
def test_after_an_ambiguous_failure_the_document_is_read_back_and_not_uploaded_twice(
    platform, connection, started, technician, strict
):
    """Whichever names the platform lists documents under: its own (`creationDate`,
    `documentType`...) or those of the multipart fields sent (`intent_creationDate`...)."""
    drain()  # the order's logs, and the token
    Connection.objects.filter(pk=connection.pk).update(timeout_seconds=1)
    # The platform answers after we gave up, then keeps the file.
    set_behaviour(platform, delay_ms=1600, strict=strict)
    attach(started, technician)
    message = started.outbox_messages.get(kind=MessageKind.DOCUMENT)

    assert tasks.deliver_message(message.pk) == "ambiguous"

    set_behaviour(platform, delay_ms=0)
    deadline = time.monotonic() + 10
    while not platform_documents(connection, started.reference):
        assert time.monotonic() < deadline, "the sandbox never stored the document"
        time.sleep(0.1)
    assert drain() == ["already_there"]

    message.refresh_from_db()
    assert message.status == MessageStatus.DELIVERED
    assert list(message.attempts_log.values_list("outcome", flat=True)) == ["ambiguous", "already_there"]
    assert len(platform_documents(connection, started.reference)) == 1


SENT = {
    "title": "Rapport d'intervention",
    "description": "Document déposé",
    "elementType": "intervention",
    "elementReference": "OPH57_241122093015",
    "intent_contractReference": "MULTITECH-2024-07",
    "intent_documentType": "quitus_maintenance_preventive",
    "intent_documentFamily": "rapports_intervention",
    "intent_creationDate": "2026-11-22T11:05:00+01:00",
    "document": {"fileName": "rapport.pdf", "size": 1234, "sha256": "ab" * 32},
}
PLATFORM_NAMES = {
    "id": "42",
    "title": "Rapport d'intervention",
    "elementType": "intervention",
    "elementReference": "OPH57_241122093015",
    "contractReference": "MULTITECH-2024-07",
    "documentType": "quitus_maintenance_preventive",
    "documentFamily": "rapports_intervention",
    "creationDate": "2026-11-22T10:05:00Z",
    "size": 1234,
    "sha256": "AB" * 32,
}
MULTIPART_NAMES = {
    "id": "42",
    "title": "Rapport d'intervention",
    "elementType": "intervention",
    "elementReference": "OPH57_241122093015",
    "intent_contractReference": "MULTITECH-2024-07",
    "intent_documentType": "quitus_maintenance_preventive",
    "intent_documentFamily": "rapports_intervention",
    "intent_creationDate": "2026-11-22T11:05:00+01:00",
}


@pytest.mark.parametrize("listed", [PLATFORM_NAMES, MULTIPART_NAMES], ids=["own names", "multipart names"])
def test_a_listed_document_is_the_one_sent_whichever_names_the_listing_uses(listed):
    assert readback.same_document(SENT, listed)
    assert readback.same_document(SENT, {**listed, "description": "autre chose", "uploadDate": "2026-11-23"})


@pytest.mark.parametrize(
    "change",
    [
        {"title": "Rapport d'intervention (2)"},
        {"creationDate": "2026-11-22T11:06:00+01:00", "intent_creationDate": "2026-11-22T11:06:00+01:00"},
        {"elementReference": "OPH57_AUTRE"},
        {"contractReference": "AUTRE", "intent_contractReference": "AUTRE"},
        {"documentType": "autre", "intent_documentType": "autre"},
        {"size": 1235},
        {"sha256": "cd" * 32},
    ],
    ids=["title", "creation date", "element", "contract", "type", "size", "sha256"],
)
@pytest.mark.parametrize("listed", [PLATFORM_NAMES, MULTIPART_NAMES], ids=["own names", "multipart names"])
def test_a_listed_document_that_differs_in_what_it_lists_is_another_one(listed, change):
    assert not readback.same_document(SENT, {**listed, **change})


def test_a_listed_document_without_a_creation_date_is_not_taken_for_the_one_sent():
    undated = {key: value for key, value in PLATFORM_NAMES.items() if key != "creationDate"}
    assert not readback.same_document(SENT, undated)


def test_accents_of_the_text_fields_reach_a_platform_that_reads_undeclared_text_as_latin_1(
    platform, connection, started, technician
):
    """Each text part declares its charset: a receiver that does not assume UTF-8
    (the strict sandbox reads undeclared text parts as Latin-1) reads it right."""
    set_behaviour(platform, strict=True)
    attach(started, technician, title="Rapport déposé – façade nord, 2ᵉ étage")

    assert set(drain()) == {"delivered"}

    sent = started.outbox_messages.get(kind=MessageKind.DOCUMENT).payload
    [listed] = platform_documents(connection, started.reference)
    assert listed["title"] == "Rapport déposé – façade nord, 2ᵉ étage"
    assert listed["description"] == sent["description"]
    assert listed["intent_creationDate"] == sent["intent_creationDate"]


def test_after_an_ambiguous_failure_that_did_not_reach_the_platform_the_document_is_sent(
    platform, connection, started, technician
):
    drain()
    attach(started, technician)
    message = started.outbox_messages.get(kind=MessageKind.DOCUMENT)
    OutboxMessage.objects.filter(pk=message.pk).update(ambiguous=True)  # a worker died mid-send

    assert drain() == ["delivered"]
    assert len(platform_documents(connection, started.reference)) == 1


def test_a_document_whose_file_is_gone_goes_to_the_error_queue(platform, connection, started, technician):
    drain()
    document = attach(started, technician)
    document.file.storage.delete(document.file.name)

    assert drain() == ["rejected"]

    message = started.outbox_messages.get(kind=MessageKind.DOCUMENT)
    assert message.status == MessageStatus.REJECTED
    assert "introuvable" in message.last_error
    assert platform_documents(connection, started.reference) == []


def test_a_generated_report_reaches_the_platform_too(platform, connection, started, technician):
    from orders.models import SignatureStatus
    from orders.tasks import render_report_pdf

    report = reports.submit_report(
        started,
        actor=technician,
        works_done="Remplacement du siphon",
        time_on_site_minutes=45,
        signature_status=SignatureStatus.REFUSED,
    )
    render_report_pdf(report.pk)
    report.refresh_from_db()

    assert set(drain()) == {"delivered"}
    [listed] = platform_documents(connection, started.reference)
    assert listed["sha256"] == report.document.sha256
    assert (
        listed["creationDate"] == started.outbox_messages.get(kind=MessageKind.DOCUMENT).payload["intent_creationDate"]
    )
    assert timezone.now() - report.document.created_at < timedelta(minutes=1)
