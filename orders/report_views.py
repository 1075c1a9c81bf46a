"""The intervention report (technician, on a phone), the upload of a PDF report
made elsewhere, and the documents themselves.

Everything is reached through the order: whoever may not see the order gets a
404, for its report, its upload page and its files alike.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_POST
from django_htmx.http import HTMX_STOP_POLLING

from orders import documents, reports, timing
from orders.access import get_order_for
from orders.forms import DocumentUploadForm, ReportForm
from orders.material_forms import material_formset
from orders.models import Document, DocumentKind, InterventionReport, Order
from portal.errors import Refused
from portal.htmx import render_page_or_fragment, wants_fragment


def _report_for(order: Order, report_id: int) -> InterventionReport:
    return get_object_or_404(order.reports.select_related("document", "created_by"), pk=report_id)


@login_required
def report_create(request: HttpRequest, order_id: int) -> HttpResponse:
    order = get_order_for(request, order_id)
    form = ReportForm(request.POST or None, request.FILES or None, initial={"signatory_name": order.occupant_name})
    # The supplies from the price schedule: their own formset (orders/material_forms.py, orders/_report_materials.html).
    materials = material_formset(request.POST or None, contract=order.contract)
    if request.method == "POST" and form.is_valid() and materials.accepted:
        try:
            report = reports.submit_report(
                order, actor=request.user, **form.service_arguments(), materials=materials.materials()
            )
        except Refused as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, "Rapport d'intervention enregistré.")
            return redirect("orders:report_detail", order.pk, report.pk)
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
        "accepts_reports": order.state in documents.REPORT_STATES,
    }
    failed = form.errors or not materials.accepted
    return render(request, "orders/report_form.html", context, status=400 if failed else 200)


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
