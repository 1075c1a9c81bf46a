"""Intervention reports and letters to the buyer as PDF: WeasyPrint, from `templates/pdf/report.html`
and its print stylesheet `templates/pdf/report.css`.

Rendering is slow work and never happens in a request or a transaction: the
task `orders.tasks.render_report_pdf` calls `render_report`, then a service
keeps the result. Every image (logo, photos, signature) is read from the
storage before rendering and handed to WeasyPrint from memory: the PDF fetches
nothing from the network or the disk, whatever a text in it says.
"""

from __future__ import annotations

import functools
import logging
import mimetypes
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models.fields.files import FieldFile
from django.template.loader import render_to_string
from django.utils import timezone, translation
from weasyprint import CSS, HTML
from weasyprint.urls import URLFetcher, URLFetcherResponse

from orders import timing
from orders.models import InterventionReport, Letter, PhotoKind
from portal.models import Company

STYLESHEET = settings.BASE_DIR / "templates" / "pdf" / "report.css"
# What the quote and the invoice share (page, footer, masthead), before their own stylesheet.
DOCUMENT_STYLESHEET = settings.BASE_DIR / "templates" / "pdf" / "document.css"
SCHEME = "portal"

# WeasyPrint logs each of its seven steps at INFO for every document: noise in
# the workers' logs. Its warnings (a CSS rule it ignores...) still show.
logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)


class MemoryFetcher(URLFetcher):
    """Answers `portal:` URLs from the images read beforehand, and nothing else."""

    def __init__(self, resources: dict[str, tuple[bytes, str]]) -> None:
        super().__init__(allowed_protocols={SCHEME}, fail_on_errors=True)
        self.resources = resources

    def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
        try:
            content, mime = self.resources[url]
        except KeyError:
            raise ValueError(f"Not an image of this report: {url}") from None
        return URLFetcherResponse(url, content, {"Content-Type": mime})


@functools.cache
def stylesheet() -> CSS:
    """Parsed once per process: the stylesheet does not change between reports."""
    return CSS(filename=str(STYLESHEET))


@dataclass(frozen=True)
class Figure:
    url: str
    caption: str
    landscape: bool


def _read(file: FieldFile) -> bytes:
    # OSError when the storage cannot give it: the task tries again later.
    with file.open("rb") as stream:
        return stream.read()


def report_context(report: InterventionReport) -> tuple[dict[str, Any], dict[str, tuple[bytes, str]]]:
    """The template's context, and the images it refers to by `portal:` URL."""
    order = report.order
    resources: dict[str, tuple[bytes, str]] = {}
    company = Company.objects.first()
    logo_url = ""
    if company is not None and company.logo:
        logo_url = f"{SCHEME}:logo"
        mime = mimetypes.guess_type(company.logo.name)[0] or "image/png"
        resources[logo_url] = (_read(company.logo), mime)
    photos = list(report.photos.all())
    groups = []
    for kind in PhotoKind:
        figures = []
        of_kind = [photo for photo in photos if photo.kind == kind]
        for number, photo in enumerate(of_kind, start=1):
            url = f"{SCHEME}:photo/{photo.pk}"
            resources[url] = (_read(photo.image), "image/jpeg")
            caption = f"{kind.label} – photo {number} sur {len(of_kind)}"
            figures.append(Figure(url, caption, photo.width >= photo.height))
        if figures:
            groups.append((kind.label, figures))
    signature_url = ""
    if report.signature:
        signature_url = f"{SCHEME}:signature"
        resources[signature_url] = (_read(report.signature), "image/png")
    technician = report.created_by or order.technician
    context = {
        "report": report,
        "order": order,
        "company": company,
        "logo_url": logo_url,
        "client": order.contract.client,
        "contract": order.contract,
        "asset": order.asset,
        "technician": technician.get_full_name() or technician.username if technician else "",
        "photo_groups": groups,
        "lines": list(order.lines.all()),
        "on_site": timing.time_on_site(report),
        "report_materials": list(report.materials.all()),
        "signature_url": signature_url,
        "generated_at": timezone.now(),
    }
    return context, resources


def render_report(report: InterventionReport) -> bytes:
    """The report's PDF (A4, French), as bytes."""
    report = InterventionReport.objects.select_related(
        "order__contract__client", "order__asset", "order__service_code", "order__technician", "created_by"
    ).get(pk=report.pk)
    context, resources = report_context(report)
    with translation.override("fr"):
        html = render_to_string("pdf/report.html", context)
    document = HTML(string=html, base_url=f"{SCHEME}:/", url_fetcher=MemoryFetcher(resources))
    return document.write_pdf(stylesheets=[stylesheet()])


def render_letter(letter_id: int) -> bytes:
    """A letter to the buyer's representative (A4, French), as bytes: the
    contractor's letterhead, the addressee, the order's references, the text."""
    letter = Letter.objects.select_related("order__contract__client", "order__asset", "written_by").get(pk=letter_id)
    order = letter.order
    resources: dict[str, tuple[bytes, str]] = {}
    company = Company.objects.first()
    logo_url = ""
    if company is not None and company.logo:
        logo_url = f"{SCHEME}:logo"
        resources[logo_url] = (_read(company.logo), mimetypes.guess_type(company.logo.name)[0] or "image/png")
    context = {
        "letter": letter,
        "order": order,
        "contract": order.contract,
        "client": order.contract.client,
        "company": company,
        "logo_url": logo_url,
        "signatory": letter.written_by.get_full_name() if letter.written_by else "",
        "written_on": timezone.localdate(letter.written_at),
    }
    with translation.override("fr"):
        html = render_to_string("pdf/letter.html", context)
    document = HTML(string=html, base_url=f"{SCHEME}:/", url_fetcher=MemoryFetcher(resources))
    return document.write_pdf(stylesheets=[stylesheet()])
