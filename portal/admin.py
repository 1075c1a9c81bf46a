"""The office's admin for the shared core: the company, people, clients,
contracts with their catalogue and price schedule, and the clients' property."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import Model
from django.forms import ModelForm
from django.http import HttpRequest

from portal.dates import admin_overrides
from portal.models import (
    Asset,
    BillingAccount,
    Client,
    Company,
    Contract,
    NotificationPreference,
    OrderNotification,
    PriceItem,
    Role,
    ServiceCode,
    User,
)
from portal.roles import OFFICE_GROUP, sync_office_group

ADDRESS_FIELDS = ("address", "address_complement", ("postcode", "city"))


class ReadOnlyInline(admin.TabularInline):
    """A list of related rows with links to their own pages, changed there only."""

    extra = 0
    can_delete = False
    show_change_link = True

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        return self.fields

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(Company)
class CompanyAdmin(admin.ModelAdmin):
    list_display = ("name", "siret", "city", "phone", "email")
    search_fields = ("name", "siret")
    fieldsets = (
        (None, {"fields": ("name", "siret", "vat_number", "logo")}),
        ("Coordonnées", {"fields": (*ADDRESS_FIELDS, "phone", "email")}),
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        # The portal runs for one contractor.
        return super().has_add_permission(request) and not Company.objects.exists()


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "last_name", "first_name", "role", "mobile", "email", "is_active", "is_staff")
    list_filter = ("role", "is_active", "is_staff", "is_superuser")
    search_fields = ("username", "first_name", "last_name", "email", "mobile")
    ordering = ("last_name", "first_name")
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Identité et rôle", {"fields": ("first_name", "last_name", "role", "email", "mobile")}),
        (
            "Droits",
            {
                "fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions"),
                "description": "Le rôle « Bureau » donne l'accès à l'administration ; les autres rôles ne l'ont pas.",
            },
        ),
        ("Dates importantes", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        *DjangoUserAdmin.add_fieldsets,
        ("Identité et rôle", {"classes": ("wide",), "fields": ("first_name", "last_name", "role", "email", "mobile")}),
    )

    def get_readonly_fields(self, request: HttpRequest, obj: User | None = None) -> Any:
        readonly = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            # Office staff manage people, not privileges: staff status and the
            # office group follow the role.
            readonly += ["is_staff", "is_superuser", "groups", "user_permissions"]
        return readonly

    def has_change_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        # Otherwise office staff could take over a superuser's account.
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: User, form: ModelForm, change: bool) -> None:
        if obj.role == Role.OFFICE:
            obj.is_staff = True
        elif not obj.is_superuser:
            obj.is_staff = False
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: ModelForm, formsets: Any, change: bool) -> None:
        # After the form's own groups are saved, which would undo this.
        super().save_related(request, form, formsets, change)
        user = form.instance
        if user.role == Role.OFFICE:
            user.groups.add(sync_office_group())
        else:
            user.groups.remove(*user.groups.filter(name=OFFICE_GROUP))


class ContractInline(ReadOnlyInline):
    model = Contract
    fields = ("reference", "label", "starts_on", "ends_on", "active")


class BillingAccountInline(ReadOnlyInline):
    model = BillingAccount
    fields = ("reference", "label", "service_code", "city")


@admin.register(Client)
class ClientAdmin(admin.ModelAdmin):
    list_display = ("name", "siret", "city", "phone", "email")
    search_fields = ("name", "siret", "city")
    fieldsets = (
        (None, {"fields": ("name", "siret")}),
        ("Coordonnées", {"fields": (*ADDRESS_FIELDS, "phone", "email")}),
    )
    inlines = (ContractInline, BillingAccountInline)


@admin.register(BillingAccount)
class BillingAccountAdmin(admin.ModelAdmin):
    list_display = ("label", "reference", "client", "service_code", "siret", "city")
    list_filter = ("client",)
    search_fields = ("label", "reference", "service_code", "siret", "client__name")
    list_select_related = ("client",)
    autocomplete_fields = ("client",)
    fieldsets = (
        (None, {"fields": ("client", "reference", "label", "siret", "service_code", "email")}),
        ("Adresse", {"fields": ADDRESS_FIELDS}),
    )


class ServiceCodeInline(admin.TabularInline):
    model = ServiceCode
    fields = ("code", "label", "intervention_delay_hours", "completion_delay_hours")
    extra = 1


class PriceItemInline(admin.TabularInline):
    model = PriceItem
    fields = ("code", "label", "unit", "unit_price", "vat_rate")
    extra = 3


@admin.register(Contract)
class ContractAdmin(admin.ModelAdmin):
    formfield_overrides = admin_overrides()
    list_display = ("reference", "label", "client", "starts_on", "ends_on", "default_delay_days", "active")
    list_filter = ("active", "client")
    search_fields = ("reference", "label", "client__name")
    date_hierarchy = "starts_on"
    list_select_related = ("client",)
    autocomplete_fields = ("client", "billing_account")
    fields = (
        "client",
        "reference",
        "label",
        ("starts_on", "ends_on"),
        "default_delay_days",
        "billing_account",
        "buyer_representative",
        "active",
        ("late_penalty_divisor", "late_penalty_per_day"),
        ("late_penalty_cap_percent", "late_penalty_exemption"),
        ("sharing_penalty_per_day", "sharing_penalty_counting"),
        "verification_days",
        "retention_days",
    )
    # The catalogue and the price schedule (BPU) are typed in with the contract.
    inlines = (ServiceCodeInline, PriceItemInline)


@admin.register(Asset)
class AssetAdmin(admin.ModelAdmin):
    list_display = ("reference", "label", "kind", "client", "parent", "city")
    list_filter = ("kind", "client")
    search_fields = ("reference", "label", "address", "city", "client__name")
    list_select_related = ("client", "parent")
    autocomplete_fields = ("client", "parent")
    fieldsets = (
        (None, {"fields": ("client", "reference", "label", "kind", "parent")}),
        ("Adresse", {"fields": ADDRESS_FIELDS}),
    )


@admin.register(ServiceCode)
class ServiceCodeAdmin(admin.ModelAdmin):
    list_display = ("code", "label", "contract", "intervention_delay_hours", "completion_delay_hours", "visit_minutes")
    list_filter = ("contract",)
    search_fields = ("code", "label", "contract__reference")
    list_select_related = ("contract",)
    autocomplete_fields = ("contract",)


@admin.register(PriceItem)
class PriceItemAdmin(admin.ModelAdmin):
    list_display = ("code", "label", "unit", "unit_price", "vat_rate", "contract")
    list_filter = ("contract", "vat_rate")
    search_fields = ("code", "label")
    list_select_related = ("contract",)
    autocomplete_fields = ("contract",)


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(admin.ModelAdmin):
    """Each person sets their own on « Mes notifications »; the office may look, and correct."""

    list_display = ("user", "new_order", "late_soon", "relay_rejected", "relay_late", "updated_at")
    list_filter = ("new_order", "late_soon", "relay_rejected", "relay_late")
    search_fields = ("user__username", "user__first_name", "user__last_name", "user__email")
    list_select_related = ("user",)
    autocomplete_fields = ("user",)


@admin.register(OrderNotification)
class OrderNotificationAdmin(admin.ModelAdmin):
    """What was emailed about which order: a record, never edited."""

    list_display = ("order", "kind", "due_at", "created_at", "sent_at", "recipients")
    list_filter = ("kind",)
    search_fields = ("order__reference",)
    list_select_related = ("order",)
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False
