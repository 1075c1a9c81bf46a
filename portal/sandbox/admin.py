"""The sandbox in the admin: reference data and settings are editable; what was
received or sent is read-only (it is the evidence tests and people rely on)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from portal.sandbox.models import (
    AccessToken,
    ApiClient,
    Asset,
    Behaviour,
    Contract,
    Document,
    Log,
    Operation,
    RejectedLog,
    WebhookDelivery,
    WebhookTarget,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class LogInline(admin.TabularInline):
    model = Log
    fields = ["sequence", "received_at", "source", "status", "event", "event_date", "description"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ["sequence"]

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Operation)
class OperationAdmin(ReadOnlyAdmin):
    list_display = ["reference", "contract_reference", "type", "status", "event", "last_update_date"]
    list_filter = ["type", "status"]
    search_fields = ["reference", "contract_reference", "description"]
    inlines = [LogInline]


@admin.register(Log)
class LogAdmin(ReadOnlyAdmin):
    list_display = ["sequence", "received_at", "reference", "contract_reference", "status", "event", "source"]
    list_filter = ["type", "source", "status"]
    search_fields = ["reference", "contract_reference"]


@admin.register(RejectedLog)
class RejectedLogAdmin(ReadOnlyAdmin):
    list_display = ["received_at", "reference", "reason", "message"]
    list_filter = ["reason"]
    search_fields = ["reference"]


@admin.register(Document)
class DocumentAdmin(ReadOnlyAdmin):
    list_display = ["title", "element_type", "element_reference", "file_name", "size", "uploaded_at"]
    search_fields = ["element_reference", "title"]
    exclude = ["content"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "notification_type", "operation", "url", "status_code", "error"]
    list_filter = ["notification_type"]


@admin.register(AccessToken)
class AccessTokenAdmin(ReadOnlyAdmin):
    list_display = ["client", "issued_at", "expires_at"]
    exclude = ["token"]


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    list_display = ["client_id", "label", "created_at"]


@admin.register(WebhookTarget)
class WebhookTargetAdmin(admin.ModelAdmin):
    list_display = ["url", "is_active", "created_at"]


@admin.register(Contract)
class ContractAdmin(admin.ModelAdmin):
    list_display = ["reference", "label", "topic", "manager_name"]
    search_fields = ["reference", "label"]


@admin.register(Asset)
class AssetAdmin(admin.ModelAdmin):
    list_display = ["code", "label", "type", "city", "parent_reference"]
    list_filter = ["type"]
    search_fields = ["code", "label"]


@admin.register(Behaviour)
class BehaviourAdmin(admin.ModelAdmin):
    list_display = ["__str__", "down", "delay_ms", "error_rate_500", "error_rate_429", "reject_next_logs"]

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return not Behaviour.objects.exists()
