"""The office's reversibility exports (orders.reversibility): ask for one, watch
its progress (htmx polls the status every 2 s until it is ready), download it."""

from __future__ import annotations

from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import patch_cache_control
from django_htmx.http import HTMX_STOP_POLLING

from orders import reversibility
from orders.forms import ReversibilityExportForm
from portal.access import role_required
from portal.errors import Refused
from portal.htmx import render_page_or_fragment, wants_fragment
from portal.models import ExportStatus, ReversibilityExport, Role

office_only = role_required(Role.OFFICE)


@office_only
def export_list(request: HttpRequest) -> HttpResponse:
    form = ReversibilityExportForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            export = reversibility.request_export(
                client=form.cleaned_data["client"], contract=form.cleaned_data["contract"], actor=request.user
            )
        except Refused as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, "Export demandé : il se prépare, cette page suit son avancement.")
            return redirect("orders:export_detail", export.pk)
    exports = ReversibilityExport.objects.select_related("client", "contract", "requested_by")[:50]
    context = {"form": form, "exports": exports}
    return render(request, "orders/exports.html", context, status=400 if form.errors else 200)


@office_only
def export_detail(request: HttpRequest, export_id: int) -> HttpResponse:
    """The export's progress; for htmx's polling only the status, with 286 (stop) once it is over."""
    export = get_object_or_404(ReversibilityExport.objects.select_related("client", "contract"), pk=export_id)
    response = render_page_or_fragment(request, "orders/export_detail.html", "status", {"export": export})
    if wants_fragment(request) and export.status in (ExportStatus.DONE, ExportStatus.FAILED):
        response.status_code = HTMX_STOP_POLLING
    return response


@office_only
def export_download(request: HttpRequest, export_id: int) -> FileResponse:
    export = get_object_or_404(ReversibilityExport, pk=export_id, status=ExportStatus.DONE)
    try:
        stream = export.file.open("rb")
    except FileNotFoundError as error:
        raise Http404("Fichier introuvable.") from error
    filename = str(export.file.name).rsplit("/", 1)[-1].split("-", 1)[-1]
    response = FileResponse(stream, content_type="application/zip", as_attachment=True, filename=filename)
    patch_cache_control(response, private=True, no_store=True)
    return response
