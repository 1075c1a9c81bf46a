"""The intervention report (technician, on a phone) with its photos sent ahead
of it (orders.report_photos), the upload of a PDF report made elsewhere, and
the documents themselves.

Everything is reached through the order: whoever may not see the order gets a
404, for its report, its upload page and its files alike.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import OperationalError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_POST
from django_htmx.http import HTMX_STOP_POLLING

from orders import conflicts, documents, offline, report_photos, reports, timing
from orders.access import get_order_for
from orders.forms import DocumentUploadForm, PhotoOpeningForm, ReportForm
from orders.material_forms import BaseMaterialFormSet, material_formset
from orders.models import Document, DocumentKind, InterventionReport, Order, OrderEvent, StagedPhoto
from orders.states import State
from portal.errors import Refused
from portal.htmx import render_page_or_fragment, wants_fragment

# A part that found its photo held by another request too long comes again this much later.
PART_RETRY_SECONDS = 1


def _report_for(order: Order, report_id: int) -> InterventionReport:
    return get_object_or_404(order.reports.select_related("document", "created_by"), pk=report_id)


def _photo_state(photo: StagedPhoto) -> dict[str, Any]:
    """What the phone needs of a photo it sends: where to resume, and whether it is whole, or refused and why."""
    return {
        "key": str(photo.key),
        "received": photo.received,
        "size": photo.size,
        "status": photo.status,
        "error": photo.error,
    }


def _submit_once(
    request: HttpRequest, order: Order, form: ReportForm, materials: BaseMaterialFormSet
) -> tuple[offline.Outcome, InterventionReport | None]:
    """Save the report once, however often the phone's queue sends it (its key)."""
    saved: list[InterventionReport] = []

    def submit() -> OrderEvent:
        arguments = form.service_arguments()
        report = reports.submit_report(order, actor=request.user, **arguments, materials=materials.materials())
        saved.append(report)
        return order.events.filter(kind="report_submitted").latest("pk")

    outcome = offline.apply_once(submit, key=form.action_key, user=request.user, order=order, action="report")
    return outcome, (saved[0] if saved else None)


def _report_saved(
    request: HttpRequest, order: Order, outcome: offline.Outcome, report: InterventionReport | None
) -> HttpResponse:
    # Sent again (its answer lost): the first one was saved; the order's page lists it.
    url = (
        reverse("orders:report_detail", args=[order.pk, report.pk])
        if report
        else reverse("orders:detail", args=[order.pk])
    )
    if offline.is_replay(request):
        return JsonResponse({"status": outcome.status, "label": outcome.label, "url": url})
    messages.success(request, "Rapport d'intervention enregistré." if report else outcome.notice)
    return redirect(url)


REPORT_LABEL = "Rapport d'intervention"


def _report_refused(
    request: HttpRequest,
    order: Order,
    form: ReportForm,
    materials: BaseMaterialFormSet,
    refusal: conflicts.Refusal | None = None,
) -> JsonResponse:
    """For the phone: every reason (the queue shows them), and each field's own (the form shows them by the
    field); the phone keeps the report to correct it. Kept on the server too, as every offline action not
    applied (orders.conflicts), with the photos it names, which stay on the server."""
    fields = {name: [str(message) for message in messages] for name, messages in form.errors.items()}
    if materials.is_bound and not materials.is_valid():
        for number, errors in enumerate(materials.errors):
            for name, messages in errors.items():
                fields[f"{materials.prefix}-{number}-{name}"] = [str(message) for message in messages]
        if materials.non_form_errors():
            fields.setdefault("__all__", []).extend(str(message) for message in materials.non_form_errors())
    errors = [message for messages in fields.values() for message in messages]
    refusal = refusal or conflicts.invalid(order, errors)
    offline.keep_refused(request, order, refusal, action="report", button=REPORT_LABEL)
    answer = refusal.answer()
    return JsonResponse({**answer, "errors": errors or answer["errors"], "fields": fields}, status=HTTPStatus.CONFLICT)


@login_required
def report_create(request: HttpRequest, order_id: int) -> HttpResponse:
    """The report's form, also offline (the service worker keeps it; static/js/report-form.js keeps
    what is typed and photographed on the phone and sends it with the queue). A report sent by the
    phone (`X-Portal-Replay`) is answered in JSON; one whose photos have not all arrived, with 424."""
    if (lost := conflicts.was_assigned(order_id, request.user)) is not None:
        # Given to someone else meanwhile: said, and a report sent from the phone kept (orders.conflicts).
        if request.method == "POST" and offline.is_replay(request):
            return offline.refuse_replay(
                request, lost, conflicts.reassigned(lost, request.user), action="report", button=REPORT_LABEL
            )
        messages.warning(request, conflicts.reassigned(lost, request.user, acted=False).reason)
        return redirect("orders:my_orders")
    order = get_order_for(request, order_id)
    form = ReportForm(request.POST or None, request.FILES or None, initial={"signatory_name": order.occupant_name})
    # The supplies from the price schedule: their own formset (orders/material_forms.py, orders/_report_materials.html).
    materials = material_formset(request.POST or None, contract=order.contract)
    if request.method == "POST":
        if form.is_valid() and materials.accepted:
            try:
                return _report_saved(request, order, *_submit_once(request, order, form, materials))
            except report_photos.PhotosPending as pending:
                if offline.is_replay(request):
                    missing = [str(key) for key in pending.missing]
                    return JsonResponse({"status": "waiting", "missing": missing}, status=HTTPStatus.FAILED_DEPENDENCY)
                form.add_error(None, str(pending))
            except Refused as error:
                form.add_error(None, str(error))
                if offline.is_replay(request):
                    refusal = conflicts.refused(order, error, offline.acted_at(request))
                    return _report_refused(request, order, form, materials, refusal)
        if offline.is_replay(request):
            return _report_refused(request, order, form, materials)
    return _report_page(request, order, form, materials)


def _report_page(request: HttpRequest, order: Order, form: ReportForm, materials: BaseMaterialFormSet) -> HttpResponse:
    # Shown again after an error: the photos already sent, and those sent with it, stay (no JavaScript).
    kept = (
        report_photos.show_again(
            order, actor=request.user, keys=form.cleaned_data.get("photo_keys", []), new=form.new_photos
        )
        if form.is_bound
        else []
    )
    counted = timing.counted_so_far(order)
    if counted.counted is not None:  # what an empty field would count, shown beside it
        form.fields["time_on_site_minutes"].help_text = (
            f"Laissez vide : calculé d'après le début, la fin et les suspensions des travaux "
            f"({counted.display} à cette heure)."
        )
    context = {
        "order": order,
        "form": form,
        "materials": materials,
        "kept_photos": kept,
        "open_to_reports": order.state != State.CANCELLED,
        "works_started": order.state in documents.REPORT_STATES,
    }
    failed = form.errors or not materials.accepted
    return render(request, "orders/report_form.html", context, status=400 if failed else 200)


@login_required
def report_photo(request: HttpRequest, order_id: int, key: UUID) -> HttpResponse:
    """POST: the photo's next part, its offset in `Upload-Offset`, its bytes as
    the body; the first part also says the photo's size, kind and name
    (`Upload-Length`, `Upload-Kind`, `Upload-Name`). GET: the photo as kept,
    for its thumbnail on a form shown again.

    Every answer is one the phone acts on (static/js/report-queue.js): 200 with
    where the server stands; 409 with the offset to resume from (a part lost,
    or sent twice at once); 404 "unknown" (send it again from the start); 410
    "taken" (its report has it: nothing more to send); 400/413 refused, with
    the reason; 503 with Retry-After when another request held the photo too
    long (the part comes again as it was)."""
    order = get_order_for(request, order_id)
    if request.method == "GET":
        photo = get_object_or_404(report_photos.ready_photos(order, actor=request.user), key=key)
        response = HttpResponse(bytes(photo.content), content_type="image/jpeg")
        response["X-Content-Type-Options"] = "nosniff"
        patch_cache_control(response, private=True, no_store=True)
        return response
    if request.method != "POST":
        return HttpResponseNotAllowed(["GET", "POST"])
    try:
        offset = int(request.headers.get("Upload-Offset", ""))
        length = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        return _part_refused("Position du morceau illisible.", HTTPStatus.BAD_REQUEST)
    if length > report_photos.MAX_PART_BYTES:
        return _part_refused("Morceau de photo trop gros.", HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
    opening = PhotoOpeningForm.from_headers(request.headers)
    if opening is not None and not opening.is_valid():
        return _part_refused(next(iter(opening.errors.values()))[0], HTTPStatus.BAD_REQUEST)
    try:
        photo = report_photos.receive_part(
            order,
            actor=request.user,
            key=key,
            offset=offset,
            data=request.body,
            opening=report_photos.Opening(**opening.cleaned_data) if opening else None,
        )
    except report_photos.UnknownPhoto:
        return JsonResponse({"status": "unknown", "received": 0}, status=HTTPStatus.NOT_FOUND)
    except report_photos.PartOutOfStep as step:
        return JsonResponse({"status": "receiving", "received": step.received}, status=HTTPStatus.CONFLICT)
    except report_photos.PhotoTaken:
        return JsonResponse({"status": "taken", "key": str(key)}, status=HTTPStatus.GONE)
    except OperationalError as error:
        if not report_photos.is_transient(error):
            raise
        response = JsonResponse({"status": "busy", "retry": PART_RETRY_SECONDS}, status=HTTPStatus.SERVICE_UNAVAILABLE)
        response["Retry-After"] = str(PART_RETRY_SECONDS)
        return response
    except Refused as error:
        return _part_refused(str(error), HTTPStatus.BAD_REQUEST)
    return JsonResponse(_photo_state(photo))


def _part_refused(error: str, status: HTTPStatus) -> JsonResponse:
    return JsonResponse({"status": "refused", "error": error}, status=status)


@login_required
@require_POST
def report_photo_remove(request: HttpRequest, order_id: int, key: UUID) -> JsonResponse:
    """« Retirer »: the photo is not sent on, nor kept."""
    order = get_order_for(request, order_id)
    report_photos.forget_upload(order, actor=request.user, key=key)
    return JsonResponse({"status": "removed", "key": str(key)})


@login_required
def report_detail(request: HttpRequest, order_id: int, report_id: int) -> HttpResponse:
    """The report and its PDF's progress; for htmx's polling, only the progress,
    with 286 (stop polling) once the PDF is there or has failed."""
    order = get_order_for(request, order_id)
    report = _report_for(order, report_id)
    context = {"order": order, "report": report}
    if not wants_fragment(request):
        context["on_site"] = timing.time_on_site(report)
        context["report_materials"] = list(report.materials.all())
    response = render_page_or_fragment(request, "orders/report_detail.html", "pdf-status", context)
    if wants_fragment(request) and not report.pdf_in_progress:
        response.status_code = HTMX_STOP_POLLING
    return response


@login_required
@require_POST
def report_retry(request: HttpRequest, order_id: int, report_id: int) -> HttpResponse:
    order = get_order_for(request, order_id)
    report = _report_for(order, report_id)
    try:
        reports.retry_report_pdf(report, actor=request.user)
    except Refused as error:
        messages.error(request, str(error))
    else:
        messages.success(request, "La production du PDF est relancée.")
    return redirect("orders:report_detail", order.pk, report.pk)


@login_required
def document_upload(request: HttpRequest, order_id: int) -> HttpResponse:
    order = get_order_for(request, order_id)
    form = DocumentUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        title = form.cleaned_data["title"] or (
            f"Rapport d'intervention {order.reference} déposé le {timezone.localdate():%d/%m/%Y}"
        )
        try:
            documents.attach_document(
                order,
                actor=request.user,
                file=upload,
                kind=DocumentKind.UPLOADED_REPORT,
                title=title,
                file_name=upload.name or "",
            )
        except Refused as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, "Rapport déposé : il part vers la plateforme du client.")
            return redirect("orders:detail", order.pk)
    context = {"order": order, "form": form, "accepts_reports": order.state in documents.REPORT_STATES}
    return render(request, "orders/report_upload.html", context, status=400 if form.errors else 200)


@login_required
def document_download(request: HttpRequest, document_id: int) -> FileResponse:
    """The file, streamed from the storage to those who may see its order (never
    through /media/); `?telecharger` saves it instead of opening it."""
    visible = Document.objects.filter(order__in=Order.objects.visible_to(request.user))
    document = get_object_or_404(visible, pk=document_id)
    try:
        stream = document.file.open("rb")
    except FileNotFoundError as error:
        raise Http404("Fichier introuvable.") from error
    response = FileResponse(
        stream, content_type=document.mime, as_attachment="telecharger" in request.GET, filename=document.file_name
    )
    response["X-Content-Type-Options"] = "nosniff"
    patch_cache_control(response, private=True, no_store=True)
    return response
