"""Intervention reports: the technician's account of a visit (works done,
time on site, the supplies used from the price schedule, photos, the
occupant's signature, a quote needed), saved and then rendered as a PDF by a
task, which keeps it as the order's document.

The time on site is counted from the order's history (orders/timing.py) unless
the technician typed it."""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from orders import documents, report_photos, services, tasks, timing
from orders.images import ProcessedImage
from orders.materials import MaterialUse
from orders.models import (
    InterventionReport,
    Order,
    OrderEvent,
    PdfStatus,
    PhotoKind,
    ReportMaterial,
    ReportPhoto,
    SignatureStatus,
)
from orders.report_photos import ReportPhotoUpload
from orders.services import ServiceError
from portal.models import User

logger = logging.getLogger(__name__)

MAX_TIME_ON_SITE_MINUTES = 24 * 60
MAX_PHOTOS_PER_KIND = 8


def _queue_report_pdf(report_id: int) -> None:
    # After commit, so that the worker finds the report; `robust` (which
    # Celery's `delay_on_commit` is not) because a broker that is down must not
    # turn a saved report into an error page: the report stays "en attente",
    # the sweep asks again, and the page offers to ask again later.
    transaction.on_commit(functools.partial(tasks.render_report_pdf.delay, report_id), robust=True)


@transaction.atomic
def submit_report(
    order: Order,
    *,
    actor: User | None,
    works_done: str,
    time_on_site_minutes: int | None = None,
    signature_status: str,
    signature: ProcessedImage | None = None,
    signatory_name: str = "",
    observations: str = "",
    materials_used: str = "",
    materials: Sequence[MaterialUse] = (),
    quote_needed: bool = False,
    quote_description: str = "",
    photos: Sequence[ReportPhotoUpload] = (),
    staged_photos: Sequence[UUID] = (),
    at: datetime | None = None,
) -> InterventionReport:
    """Store the technician's report with its photos, supplies and signature,
    record it in the order's history, and have its PDF rendered once the
    transaction commits. Without a typed time on site, it is counted from the
    order's history (refused when that cannot be: no start, or over 24 hours).

    `staged_photos` names the photos the phone sent ahead (orders.report_photos),
    before those of `photos`; the report is not saved until they have all
    arrived (report_photos.PhotosPending)."""
    works_done, quote_description = works_done.strip(), quote_description.strip()
    if not works_done:
        raise ServiceError("Décrivez les travaux réalisés.")
    if time_on_site_minutes is not None and not 0 < time_on_site_minutes <= MAX_TIME_ON_SITE_MINUTES:
        raise ServiceError("Le temps passé sur place doit être compris entre 1 minute et 24 heures.")
    if signature_status not in SignatureStatus.values:
        raise ServiceError("Indiquez si l'occupant a signé, était absent ou a refusé de signer.")
    if (signature_status == SignatureStatus.SIGNED) != (signature is not None):
        raise ServiceError("Une signature n'accompagne que le choix « l'occupant signe ».")
    if quote_needed and not quote_description:
        raise ServiceError("Décrivez les travaux qui demandent un devis.")
    locked = documents.lock_for_report(order)
    photos = [*report_photos.take_photos(locked, actor=actor, keys=staged_photos), *photos]
    for kind in PhotoKind:
        if sum(photo.kind == kind for photo in photos) > MAX_PHOTOS_PER_KIND:
            raise ServiceError(f"{MAX_PHOTOS_PER_KIND} photos au plus « {kind.label.lower()} travaux » : retirez-en.")
    now = at or timezone.now()
    if time_on_site_minutes is None:
        _check_counted(timing.counted_so_far(locked, until=now))
    for material in materials:
        if material.price_item.contract_id != locked.contract_id:
            raise ServiceError(f"{material.price_item.code} n'est pas au bordereau du marché de la commande.")
        if material.quantity <= 0:
            raise ServiceError(f"{material.price_item.code} : la quantité doit être positive.")
    report = InterventionReport(
        order=locked,
        works_done=works_done,
        observations=observations.strip(),
        materials_used=materials_used.strip(),
        time_on_site_minutes=time_on_site_minutes,
        signature_status=signature_status,
        signatory_name=signatory_name.strip() if signature is not None else "",
        quote_needed=quote_needed,
        quote_description=quote_description if quote_needed else "",
        created_by=actor if actor is not None and actor.pk else None,
        created_at=now,
        pdf_requested_at=timezone.now(),
    )
    if signature is not None:
        report.signature.save("signature.png", ContentFile(signature.content), save=False)
    report.save()
    positions = dict.fromkeys(PhotoKind.values, 0)
    for photo in photos:
        positions[photo.kind] += 1
        row = ReportPhoto(
            report=report,
            kind=photo.kind,
            position=positions[photo.kind],
            width=photo.image.width,
            height=photo.image.height,
        )
        row.image.save("photo.jpg", ContentFile(photo.image.content), save=False)
        row.save()
    ReportMaterial.objects.bulk_create(
        ReportMaterial(
            report=report,
            position=position,
            price_item=material.price_item,
            code=material.price_item.code,
            label=material.price_item.label,
            unit=material.price_item.unit,
            quantity=material.quantity,
        )
        for position, material in enumerate(materials, start=1)
    )
    services.record_event(
        locked,
        kind="report_submitted",
        label="Rapport d'intervention saisi",
        actor=actor,
        at=now,
        data={
            "report": report.pk,
            "photos": len(photos),
            "materials": len(materials),
            "signature": signature_status,
            "quote_needed": quote_needed,
        },
    )
    _queue_report_pdf(report.pk)
    return report


def _check_counted(counted: timing.TimeOnSite) -> None:
    if counted.counted is None:
        raise ServiceError(
            "Indiquez le temps passé sur place : les travaux n'ont pas été démarrés dans le portail, "
            "il ne peut pas être calculé."
        )
    if counted.counted > MAX_TIME_ON_SITE_MINUTES:
        raise ServiceError(
            "Le temps calculé d'après le début et la fin des travaux dépasse 24 heures : "
            "indiquez le temps réellement passé sur place."
        )
    if counted.counted < 1:
        raise ServiceError("Indiquez le temps passé sur place : moins d'une minute s'est écoulée depuis le début.")


@transaction.atomic
def retry_report_pdf(report: InterventionReport, *, actor: User | None) -> InterventionReport:
    """« Relancer »: a render that failed, or that never started (its task lost), is asked again."""
    locked = InterventionReport.objects.select_for_update().get(pk=report.pk)
    if not locked.can_retry_pdf:
        raise ServiceError("Le PDF de ce rapport est déjà produit, ou en cours de production : patientez un instant.")
    InterventionReport.objects.filter(pk=locked.pk).update(
        pdf_status=PdfStatus.PENDING, pdf_error="", pdf_requested_at=timezone.now()
    )
    logger.info("PDF of report %s asked again by %s", locked.pk, actor)
    _queue_report_pdf(locked.pk)
    locked.refresh_from_db()
    return locked


@transaction.atomic
def finish_work(order: Order, *, actor: User | None, at: datetime | None = None) -> OrderEvent:
    """« Terminer les travaux », then the PDF of the order's latest report
    rendered again, so that it shows the end of the works and the lines done."""
    event = services.finish_work(order, actor=actor, at=at)
    latest = order.reports.order_by("-created_at", "-pk").first()
    if latest is not None:
        InterventionReport.objects.filter(pk=latest.pk).update(
            pdf_status=PdfStatus.PENDING, pdf_error="", pdf_requested_at=timezone.now()
        )
        _queue_report_pdf(latest.pk)
    return event
