"""The office's admin for invoices.

Invoices are made and issued through `invoices.services` (the office's pages,
or this admin's action): the admin never saves an invoice itself. An issued
invoice or credit note shows read-only, cannot be deleted, and its PDF is a
link; corrections are credit notes. The invoicing settings (the company's
legal mentions and bank account, each contract's commitment number and
payment period, each connection's sharing of PDFs, the ECB rates) are plain
settings the office maintains here."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from invoices import services
from invoices.models import (
    ConnectionInvoicing,
    ContractInvoicing,
    EcbRate,
    Invoice,
    InvoiceLine,
    InvoiceState,
    IssuerDetails,
    Payment,
    Receipt,
)


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class InvoiceLineInline(ReadOnlyInline):
    model = InvoiceLine
    fields = ("position", "order_reference", "label", "unit", "quantity", "unit_price", "vat_rate", "amount_excl_vat")
    readonly_fields = fields


class PaymentInline(ReadOnlyInline):
    model = Payment
    fields = ("paid_on", "amount", "note", "recorded_by", "recorded_at")
    readonly_fields = fields


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    list_display = ("__str__", "issue_date", "billing_account", "order_numbers", "total_incl_vat", "state")
    list_filter = ("state", "kind", "issue_date")
    search_fields = ("number", "order_numbers", "commitment_number", "billing_account__label")
    date_hierarchy = "issue_date"
    inlines = [InvoiceLineInline, PaymentInline]
    actions = ["issue_drafts"]
    fields = (
        "kind",
        "state",
        "number",
        "issue_date",
        "contract",
        "billing_account",
        "credited",
        "reason",
        "service_code",
        "commitment_number",
        "buyer_siret",
        "order_numbers",
        "execution_date",
        "payment_days",
        "total_excl_vat",
        "total_vat",
        "total_incl_vat",
        "pdf_link",
        "issued_by",
        "issued_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Invoice | None = None) -> bool:
        # Viewing needs no change permission; nothing here is edited in place.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Invoice | None = None) -> bool:
        return obj is not None and obj.state == InvoiceState.DRAFT and super().has_delete_permission(request, obj)

    def delete_model(self, request: HttpRequest, obj: Invoice) -> None:
        services.discard_draft(obj, actor=request.user)  # type: ignore[arg-type]

    @admin.display(description="PDF Factur-X")
    def pdf_link(self, obj: Invoice) -> str:
        if not obj.is_issued:
            return "—"
        return format_html('<a href="{}">Télécharger</a>', reverse("invoices:pdf", args=[obj.pk]))

    @admin.action(description="Émettre les brouillons sélectionnés")
    def issue_drafts(self, request: HttpRequest, queryset: Any) -> None:
        issued, failures = services.issue_many(
            queryset.filter(state=InvoiceState.DRAFT).order_by("pk"),
            actor=request.user,  # type: ignore[arg-type]
        )
        if issued:
            numbers = ", ".join(invoice.number for invoice in issued)
            self.message_user(request, f"Émises : {numbers}.", messages.SUCCESS)
        for _, reason in failures:
            self.message_user(request, reason, messages.ERROR)


@admin.register(IssuerDetails)
class IssuerDetailsAdmin(admin.ModelAdmin):
    list_display = ("company", "legal_form", "registration", "iban")


@admin.register(ContractInvoicing)
class ContractInvoicingAdmin(admin.ModelAdmin):
    list_display = ("contract", "public_buyer", "commitment_number", "payment_days")


@admin.register(ConnectionInvoicing)
class ConnectionInvoicingAdmin(admin.ModelAdmin):
    list_display = ("connection", "share_pdf", "document_type", "document_family")


@admin.register(EcbRate)
class EcbRateAdmin(admin.ModelAdmin):
    list_display = ("valid_from", "rate")


@admin.register(Receipt)
class ReceiptAdmin(admin.ModelAdmin):
    list_display = ("invoice", "received_on", "source")
    readonly_fields = ("invoice",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
