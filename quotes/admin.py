"""The office's admin for quotes.

Office staff see every quote; a draft's description can be corrected here
(through `quotes.drafts`, which records it), its lines are edited on the
supervisor's editor (linked); once sent, a quote is read-only: a new version
replaces it. Nothing here calls `Quote.save()`. The contracts' quote terms
(validity, whether technicians see the prices) are plain settings.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from portal.errors import Refused
from quotes import drafts
from quotes.models import Quote, QuoteEvent, QuoteLine, QuotePart, QuoteTerms

DRAFT_FIELDS = ("title", "works", "valid_until", "asset", "service_code", "works_wait")


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class QuoteLineInline(ReadOnlyInline):
    model = QuoteLine
    fields = (
        "position",
        "code",
        "label",
        "unit",
        "quantity",
        "unit_price",
        "vat_rate",
        "out_of_schedule",
        "justification",
    )
    readonly_fields = fields


class QuotePartInline(ReadOnlyInline):
    model = QuotePart
    fields = ("supplied_by", "description", "quantity")
    readonly_fields = fields


class QuoteEventInline(ReadOnlyInline):
    model = QuoteEvent
    fields = ("at", "label", "actor")
    readonly_fields = fields
    ordering = ("-at", "-pk")


@admin.register(Quote)
class QuoteAdmin(admin.ModelAdmin):
    list_display = ("__str__", "title", "contract", "order", "state", "total_excl_vat", "sent_at", "answer_due_on")
    list_filter = ("state", "contract__client", "contract")
    search_fields = ("number", "title", "order__reference")
    list_select_related = ("contract__client", "order")
    inlines = [QuoteLineInline, QuotePartInline, QuoteEventInline]
    fields = (
        "number_display",
        "editor_link",
        "contract",
        "order",
        "report",
        *DRAFT_FIELDS,
        "state",
        "total_excl_vat",
        "total_vat",
        "total_incl_vat",
        "sent_at",
        "sent_by",
        "answer_due_on",
        "decided_at",
        "cancel_reason",
        "pdf_status",
        "pdf_file",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # quotes are made on the supervisors' pages, from a contract, an order or a report

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a quote is cancelled, never deleted: its number stays used

    def get_readonly_fields(self, request: HttpRequest, obj: Quote | None = None) -> tuple[str, ...]:
        editable = DRAFT_FIELDS if obj is not None and obj.is_editable else ()
        return tuple(name for name in self.fields if name not in editable)

    @admin.display(description="numéro")
    def number_display(self, quote: Quote) -> str:
        return quote.display_number

    @admin.display(description="éditeur")
    def editor_link(self, quote: Quote) -> str:
        return format_html(
            '<a href="{}">Ouvrir le devis sur les pages de pilotage</a>', reverse("quotes:edit", args=[quote.pk])
        )

    def save_model(self, request: HttpRequest, obj: Quote, form: Any, change: bool) -> None:
        changes = {name: form.cleaned_data[name] for name in DRAFT_FIELDS if name in form.changed_data}
        if not changes:
            return
        try:
            drafts.update_quote(Quote.objects.get(pk=obj.pk), actor=request.user, changes=changes)  # type: ignore[arg-type]
        except Refused as error:
            messages.error(request, str(error))

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        """The inlines are read-only: nothing to save."""

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Nothing related is written here (no `form.save_m2m()`)."""

    def construct_change_message(self, request: HttpRequest, form: Any, formsets: Any, add: bool = False) -> list:
        # The read-only inlines saved nothing (Django's message would read their saved objects).
        return [{"changed": {"fields": list(form.changed_data)}}] if form.changed_data else []


@admin.register(QuoteTerms)
class QuoteTermsAdmin(admin.ModelAdmin):
    list_display = ("contract", "validity_days", "technicians_see_prices")
    list_select_related = ("contract__client",)
