"""The office's admin for the records it looks at and does not edit: the
technicians' offline actions not applied, the documents and intervention
reports, and the CCAG's paperwork (observations, extensions, the buyer's
decisions, the letters).

Apart from `orders.admin` (the orders themselves, edited through the services),
which imports it, so that Django's admin discovery registers these pages too.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from orders import reports, services
from orders.models import (
    AdmissionStep,
    BuyerStop,
    Document,
    ExtensionRequest,
    InterventionReport,
    Letter,
    Observation,
    ReportMaterial,
    ReportPhoto,
    UnappliedAction,
)

# --- Reports and documents: read-mostly --------------------------------------
# They are written by the technicians' pages and the render task, through the
# services; the office looks at them, opens the files, and relaunches a PDF
# whose production failed.


class ReadOnlyMixin:
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _file_link(document: Document | None) -> str:
    if document is None:
        return "—"
    return format_html('<a href="{}">{}</a>', reverse("orders:document", args=[document.pk]), document.file_name)


class UnappliedActionInline(ReadOnlyMixin, admin.TabularInline):
    """What technicians did without network that was not applied (orders.conflicts)."""

    model = UnappliedAction
    fields = ("acted_at", "received_at", "user", "label", "kind", "reason")
    readonly_fields = fields
    extra = 0
    verbose_name_plural = "actions hors ligne non appliquées"


@admin.register(UnappliedAction)
class UnappliedActionAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("received_at", "order", "user", "label", "kind", "acted_at", "notified_at")
    list_filter = ("kind",)
    search_fields = ("order__reference", "label", "reason")
    list_select_related = ("order", "user")
    date_hierarchy = "received_at"
    fields = (
        "order",
        "user",
        "label",
        "line_reference",
        "kind",
        "reason",
        "advice",
        "acted_at",
        "received_at",
        "notified_at",
        "notified_to",
        "key",
        "data",
    )
    readonly_fields = fields


@admin.register(Document)
class DocumentAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("title", "order", "kind", "created_at", "created_by", "size")
    list_filter = ("kind",)
    search_fields = ("title", "order__reference")
    list_select_related = ("order", "created_by")
    date_hierarchy = "created_at"
    fields = ("order", "kind", "title", "file_link", "mime", "size", "sha256", "created_by", "created_at")
    readonly_fields = fields

    @admin.display(description="fichier")
    def file_link(self, document: Document) -> str:
        return _file_link(document)


class ReportPhotoInline(ReadOnlyMixin, admin.TabularInline):
    model = ReportPhoto
    fields = ("kind", "position", "width", "height")
    readonly_fields = fields
    extra = 0
    can_delete = False


class ReportMaterialInline(ReadOnlyMixin, admin.TabularInline):
    model = ReportMaterial
    fields = ("code", "label", "quantity", "unit", "destination", "order_line")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(InterventionReport)
class InterventionReportAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("__str__", "created_by", "signature_status", "quote_needed", "pdf_status")
    list_filter = ("pdf_status", "quote_needed", "signature_status")
    search_fields = ("order__reference",)
    list_select_related = ("order", "created_by")
    date_hierarchy = "created_at"
    fields = (
        "order",
        "created_by",
        "created_at",
        "works_done",
        "observations",
        "materials_used",
        "time_on_site_minutes",
        "signature_status",
        "signatory_name",
        "quote_needed",
        "quote_description",
        "pdf_status",
        "pdf_error",
        "pdf_attempts",
        "pdf_link",
    )
    readonly_fields = fields
    inlines = (ReportPhotoInline, ReportMaterialInline)
    actions = ("retry_pdf",)

    @admin.display(description="PDF")
    def pdf_link(self, report: InterventionReport) -> str:
        return _file_link(report.document)

    def has_retry_pdf_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("orders.view_interventionreport")

    @admin.action(description="Relancer la production du PDF", permissions=["retry_pdf"])
    def retry_pdf(self, request: HttpRequest, queryset: QuerySet[InterventionReport]) -> None:
        for report in queryset:
            try:
                reports.retry_report_pdf(report, actor=request.user)
            except services.ServiceError as error:
                messages.error(request, f"{report} : {error}")
            else:
                messages.success(request, f"{report} : production du PDF relancée.")


# --- Observations and extensions: written from the supervisor's order page ----------
# (through the services, which check the CCAG's deadlines); looked at here.


@admin.register(Observation)
class ObservationAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("order", "made_at", "made_by")
    search_fields = ("order__reference", "text")
    list_select_related = ("order", "made_by")
    date_hierarchy = "made_at"
    fields = ("order", "made_at", "made_by", "text")
    readonly_fields = fields


@admin.register(ExtensionRequest)
class ExtensionRequestAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("order", "requested_at", "days", "decision", "granted_days", "answered_at")
    list_filter = ("decision",)
    search_fields = ("order__reference", "cause")
    list_select_related = ("order",)
    date_hierarchy = "requested_at"
    fields = (
        "order",
        "cause",
        "cause_date",
        "days",
        "requested_at",
        "requested_by",
        "due_at_before",
        "decision",
        "granted_days",
        "answered_at",
        "answer_note",
        "answered_by",
        "due_at_after",
    )
    readonly_fields = fields


# --- The buyer's decisions and the letters (orders.buyer, orders.letters): looked at here ---


@admin.register(BuyerStop)
class BuyerStopAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("order", "kind", "starts_on", "ends_on", "reason")
    list_filter = ("kind",)
    search_fields = ("order__reference", "reason")
    list_select_related = ("order",)
    fields = ("order", "kind", "starts_on", "ends_on", "reason", "recorded_by", "due_at_before", "due_at_after")
    readonly_fields = fields


@admin.register(AdmissionStep)
class AdmissionStepAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("order", "kind", "on", "source", "note")
    list_filter = ("kind", "source")
    search_fields = ("order__reference",)
    list_select_related = ("order",)
    fields = ("order", "kind", "on", "source", "note", "recorded_by", "recorded_at")
    readonly_fields = fields


@admin.register(Letter)
class LetterAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("order", "kind", "written_at", "sent_on", "received_on", "pdf_status")
    list_filter = ("kind", "pdf_status")
    search_fields = ("order__reference", "body")
    list_select_related = ("order",)
    fields = (
        "order",
        "kind",
        "addressee",
        "body",
        "written_at",
        "written_by",
        "notice_received_on",
        "pdf",
        "sent_on",
        "received_on",
    )
    readonly_fields = fields
