"""The quote's PDF, rendered by its task with WeasyPrint and read back (pypdf):
a 3-line quote and a 120-line one (page numbers, the table header repeated)."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from pypdf import PdfReader

from orders.states import State
from portal.relay.models import MessageKind, OutboxMessage
from quotes import drafts, services, tasks
from quotes.models import PartSupplier, PdfStatus, QuoteEvent
from tests import factories
from tests.test_reports import png_bytes


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def company(db):
    company = factories.make_company(
        logo=png_bytes((300, 100), (11, 92, 173)),
        vat_number="FR45832147656",
        address="3 rue du Pont",
        email="contact@multitech.example",
    )
    return company


def pdf_text(quote) -> tuple[str, list[str]]:
    with quote.pdf_file.open("rb") as stream:
        reader = PdfReader(io.BytesIO(stream.read()))
    pages = [" ".join(page.extract_text().split()) for page in reader.pages]
    return " ".join(pages), pages


def sent_quote(order, supervisor, contract, lines: int):
    quote = services.create_quote_for_order(order, actor=supervisor)
    rates = [Decimal("20.00"), Decimal("10.00"), Decimal("5.50")]
    for index in range(lines):
        item = factories.make_price_item(
            contract,
            code=f"BPU-{index:04d}",
            label=f"Prestation numéro {index} du bordereau",
            unit_price=Decimal("12.35") + index,
            vat_rate=rates[index % 3],
        )
        drafts.add_line(quote, actor=supervisor, price_item=item, quantity="1.5")
    drafts.add_part(quote, actor=supervisor, supplied_by=PartSupplier.CONTRACTOR, description="Mitigeur thermostatique")
    drafts.add_part(quote, actor=supervisor, supplied_by=PartSupplier.BUYER, description="Faïence assortie")
    services.send_quote(quote, actor=supervisor)
    return quote


@pytest.fixture
def started(order, technician):
    return factories.bring_to(order, State.IN_PROGRESS, technician)


def test_a_three_line_quote_reads_back_with_everything_a_buyer_needs(
    company, started, supervisor, contract, outbox_connection
):
    quote = sent_quote(started, supervisor, contract, 3)
    assert tasks.render_quote_pdf.run(quote.pk) == "done"
    quote.refresh_from_db()
    assert quote.pdf_status == PdfStatus.DONE
    text, pages = pdf_text(quote)
    assert len(pages) == 1
    for expected in (
        "Multitech Lorraine SARL",
        "SIRET 83214765600017",
        "FR45832147656",
        "Devis de travaux complémentaires",
        quote.number,
        "Office Public de l'Habitat de Metz",
        "MULTITECH-2024-07",
        started.reference,
        "LGT-0412",
        "BPU-0000",
        "Prestation numéro 2 du bordereau",
        "Fournies par le titulaire",
        "Mitigeur thermostatique",
        "Fournies par l'acheteur",
        "Faïence assortie",
        "Valable jusqu'au",
        "Page 1 sur 1",
        "30 jours",
    ):
        assert expected in text, expected
    # 1,5 × 12,35 = 18,525 -> 18,53 (20 %); 1,5 × 13,35 = 20,025 -> 20,03 (10 %); 1,5 × 14,35 = 21,525 -> 21,53 (5,5 %)
    # HT 60,09; TVA 3,71 + 2,00 + 1,18 = 6,89; TTC 66,98
    assert "60,09 €" in text and "6,89 €" in text and "66,98 €" in text
    document = OutboxMessage.objects.get(kind=MessageKind.DOCUMENT)
    assert document.payload["elementType"] == "quotation"
    assert document.payload["elementReference"] == quote.number
    assert document.document.name == quote.pdf_file.name


def test_a_120_line_quote_runs_over_pages_with_numbers_and_the_table_header_on_each(
    company, started, supervisor, contract
):
    quote = sent_quote(started, supervisor, contract, 120)
    tasks.render_quote_pdf.run(quote.pk)
    quote.refresh_from_db()
    text, pages = pdf_text(quote)
    assert len(pages) >= 3
    for number, page in enumerate(pages, start=1):
        assert f"Page {number} sur {len(pages)}" in page
    for page in pages[:-1]:
        assert "Code et désignation" in page and "Prix unitaire HT" in page
    assert "BPU-0119" in text


def test_the_task_runs_once(company, started, supervisor, contract):
    quote = sent_quote(started, supervisor, contract, 1)
    assert tasks.render_quote_pdf.run(quote.pk) == "done"
    assert tasks.render_quote_pdf.run(quote.pk) == "nothing to do"
    assert QuoteEvent.objects.filter(quote=quote, kind="pdf").count() == 1


def test_a_storage_that_fails_is_recorded_and_tried_again(company, started, supervisor, contract):
    quote = sent_quote(started, supervisor, contract, 1)
    company.logo.delete(save=False)  # the storage does not give the logo back (an OSError: transient)
    company.logo.name = "company/perdu.png"
    company.save()
    with pytest.raises(FileNotFoundError):  # called directly, Celery's retry re-raises it
        tasks.render_quote_pdf.run(quote.pk)
    quote.refresh_from_db()
    assert quote.pdf_status == PdfStatus.PENDING
    assert "FileNotFoundError" in quote.pdf_error


def test_a_quote_from_a_report_carries_its_photos(company, started, supervisor, technician, price_item):
    from orders import images, reports
    from tests.test_reports import camera_jpeg

    photo = images.process_photo(io.BytesIO(camera_jpeg((1200, 900), orientation=1)), name="fuite.jpg")
    report = reports.submit_report(
        started,
        actor=technician,
        works_done="Constat",
        time_on_site_minutes=20,
        signature_status="absent",
        quote_needed=True,
        quote_description="Remplacer le meuble sous évier",
        photos=[reports.ReportPhotoUpload(kind="before", image=photo)],
    )
    quote = services.create_quote_from_report(report, actor=supervisor)
    drafts.add_line(quote, actor=supervisor, price_item=price_item)
    services.send_quote(quote, actor=supervisor)
    tasks.render_quote_pdf.run(quote.pk)
    quote.refresh_from_db()
    text, _ = pdf_text(quote)
    assert "Photos du constat" in text and "Avant – photo 1" in text
    with quote.pdf_file.open("rb") as stream:
        reader = PdfReader(io.BytesIO(stream.read()))
    assert sum(len(page.images) for page in reader.pages) >= 2  # the logo and the photo
