"""An order's documents: reports' PDFs and uploaded files, kept, recorded in
the history and sent to the client's platform (as document messages, in
sequence with the order's logs). The PDF's rendering itself is
`orders.pdf`, run by `orders.tasks.render_report_pdf`."""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata

from django.core.files import File
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from orders import sharing
from orders.models import (
    PDF_STALLED_AFTER,
    Document,
    DocumentKind,
    InterventionReport,
    Letter,
    LetterPdf,
    Order,
    OrderEvent,
    PdfStatus,
)
from orders.services import ServiceError
from orders.states import State
from portal.models import User
from portal.relay import outbox, pubsub
from portal.relay.models import ConnectionKind

logger = logging.getLogger(__name__)

# A report (or a PDF made elsewhere) follows a visit: from the start of the
# works on, the order's closure included (a report often comes in after it).
REPORT_STATES = frozenset(
    {State.IN_PROGRESS, State.SUSPENDED, State.FINISHED, State.RECEIVED, State.INVOICED, State.CLOSED}
)
REPORT_LABELS = {DocumentKind.GENERATED_REPORT, DocumentKind.UPLOADED_REPORT}


def lock_for_report(order: Order) -> Order:
    locked = Order.objects.select_for_update().get(pk=order.pk)
    if locked.state not in REPORT_STATES:
        raise ServiceError(
            f"La commande est à l'état « {locked.get_state_display()} » : un rapport d'intervention ne peut y être "
            "joint qu'une fois les travaux démarrés."
        )
    return locked


def start_report_pdf(report_id: int) -> bool:
    """The render task begins (again): False when the PDF is already there."""
    updated = (
        InterventionReport.objects.filter(pk=report_id)
        .exclude(pdf_status=PdfStatus.DONE)
        .update(pdf_status=PdfStatus.RENDERING, pdf_attempts=F("pdf_attempts") + 1)
    )
    return updated == 1


def record_report_pdf_error(report_id: int, *, error: str, final: bool) -> None:
    """A render failed: it waits for the task's next try, or, `final`, for a
    person to ask again (the page then offers « Relancer »)."""
    InterventionReport.objects.filter(pk=report_id).exclude(pdf_status=PdfStatus.DONE).update(
        pdf_status=PdfStatus.FAILED if final else PdfStatus.PENDING, pdf_error=error[:5000]
    )


def report_title(report: InterventionReport) -> str:
    return f"Rapport d'intervention {report.order.reference} du {timezone.localtime(report.created_at):%d/%m/%Y}"


@transaction.atomic
def attach_report_pdf(report: InterventionReport, *, content: bytes) -> Document | None:
    """Keep the rendered PDF as the report's document. Of two renders of the same
    report (a task run twice), the first to get here wins; the other's PDF is dropped."""
    locked = InterventionReport.objects.select_for_update().select_related("order").get(pk=report.pk)
    if locked.pdf_status == PdfStatus.DONE:
        return None
    stamp = timezone.localtime(locked.created_at)
    # Rendered again when the works end (orders.reports.finish_work): a new version.
    again = locked.document_id is not None
    document = attach_document(
        locked.order,
        actor=locked.created_by,
        file=ContentFile(content),
        kind=DocumentKind.GENERATED_REPORT,
        title=report_title(locked) + (" (mis à jour à la fin des travaux)" if again else ""),
        file_name=f"rapport-intervention-{locked.order.reference}-{stamp:%Y%m%d-%H%M}{'-fin' if again else ''}.pdf",
    )
    InterventionReport.objects.filter(pk=locked.pk).update(pdf_status=PdfStatus.DONE, pdf_error="", document=document)
    return document


# A render that started this many times without finishing crashes its worker
# (the task is acknowledged late, so a killed worker's task comes back): stop.
PDF_MAX_STARTS = 6


def ask_stalled_report_pdfs_again() -> tuple[list[int], int]:
    """The sweep's half of « Relancer »: reports whose PDF has waited far longer
    than a render takes (its task lost with a broker, or a worker killed) are
    asked again; one that keeps failing that way is marked failed for a person.
    Returns (the reports to render again: the caller queues them, how many given up)."""
    requeued: list[int] = []
    given_up = 0
    cutoff = timezone.now() - PDF_STALLED_AFTER
    stalled = InterventionReport.objects.filter(
        pdf_status__in=(PdfStatus.PENDING, PdfStatus.RENDERING), pdf_requested_at__lt=cutoff
    ).values_list("pk", flat=True)
    for report_id in list(stalled):
        with transaction.atomic():
            report = (
                InterventionReport.objects.select_for_update(skip_locked=True)
                .filter(pk=report_id, pdf_status__in=(PdfStatus.PENDING, PdfStatus.RENDERING))
                .first()
            )
            if report is None or report.pdf_requested_at >= cutoff:
                continue
            if report.pdf_attempts >= PDF_MAX_STARTS:
                InterventionReport.objects.filter(pk=report.pk).update(
                    pdf_status=PdfStatus.FAILED,
                    pdf_error=f"La production a été interrompue {report.pdf_attempts} fois sans aboutir.",
                )
                logger.warning("PDF of report %s given up after %s starts", report.pk, report.pdf_attempts)
                given_up += 1
                continue
            InterventionReport.objects.filter(pk=report.pk).update(
                pdf_status=PdfStatus.PENDING, pdf_requested_at=timezone.now()
            )
            requeued.append(report.pk)
    return requeued, given_up


def _download_name(name: str, default: str) -> str:
    """What the browser proposes when saving: a plain ASCII file name ending in
    .pdf (`Rapport été.pdf` → `Rapport_ete.pdf`), which every browser takes as it is."""
    name = unicodedata.normalize("NFKD", name.replace("\\", "/").rsplit("/", 1)[-1])
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name.encode("ascii", "ignore").decode())[:150]
    stem = name[:-4] if name.lower().endswith(".pdf") else name
    return f"{stem.strip('._') or default}.pdf"


@transaction.atomic
def attach_document(
    order: Order,
    *,
    actor: User | None,
    file: File,
    kind: str,
    title: str,
    file_name: str = "",
    mime: str = "application/pdf",
) -> Document:
    """Keep a file for the order (a generated or uploaded report...), record it
    in the history and have it sent to the client's platform.

    The file must already be checked (`orders.uploads.check_pdf` for uploads)."""
    if kind == DocumentKind.GENERATED_REPORT:
        # It belongs to a report accepted earlier: kept whatever the order became since.
        locked = Order.objects.select_for_update().get(pk=order.pk)
    else:
        locked = lock_for_report(order)
    title = " ".join(title.split())[:200]
    if not title:
        raise ServiceError("Donnez un titre au document.")
    digest, size = hashlib.sha256(), 0
    for chunk in file.chunks():
        digest.update(chunk)
        size += len(chunk)
    if size == 0:
        raise ServiceError("Le fichier est vide.")
    connection = outbox.connection_for_client(locked.contract.client_id)
    if connection is not None and connection.kind == ConnectionKind.PUBSUB and pubsub.document_too_big(size):
        # One Pub/Sub message carries the document: over 10 MB it cannot go (README, "Nexxio").
        raise ServiceError(pubsub.document_too_big(size))
    document = Document(
        order=locked,
        kind=kind,
        title=title,
        file_name=_download_name(file_name or getattr(file, "name", "") or "", f"document-{locked.reference}"),
        mime=mime,
        size=size,
        sha256=digest.hexdigest(),
        created_by=actor if actor is not None and actor.pk else None,
        created_at=timezone.now().replace(microsecond=0),  # the platform keeps seconds
    )
    document.file.save(document.file_name, file, save=False)
    document.save()
    label = "Rapport d'intervention ajouté" if kind in REPORT_LABELS else f"Document ajouté : {title}"
    # Not `services.record_event`: the document message itself tells the platform, no log is sent for it.
    event = OrderEvent.objects.create(
        order=locked,
        at=timezone.now(),
        kind="document_added",
        label=label,
        actor=document.created_by,
        data={"document": document.pk, "kind": kind, "title": title},
    )
    sharing.share_document(locked, event, document)
    return document


# --- Letters to the buyer (orders.letters): their PDF, kept by the task that renders it ---


def keep_letter_pdf(letter_id: int, content: bytes) -> Letter | None:
    """Keep the rendered PDF (the task's last step); None when already kept."""
    with transaction.atomic():
        letter = Letter.objects.select_for_update().filter(pk=letter_id).first()
        if letter is None or letter.pdf_status == LetterPdf.DONE:
            return None
        letter.pdf.save(f"courrier-{letter.order.reference}-{letter.pk}.pdf", ContentFile(content), save=False)
        letter.pdf_status = LetterPdf.DONE
        letter.save(update_fields=["pdf", "pdf_status"])
        return letter


def record_letter_pdf_failure(letter_id: int) -> None:
    Letter.objects.filter(pk=letter_id).exclude(pdf_status=LetterPdf.DONE).update(pdf_status=LetterPdf.FAILED)
