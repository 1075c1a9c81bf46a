"""The office's admin for orders.

Every change to an order goes through the order services (`orders.services`,
`orders.receiving`), as everywhere else: adding an order registers it,
editing it records what changed, its lines are added, changed and removed one
by one, and the state changes only through the
action pages (one per action with an admin form in the table of orders.actions). Nothing here calls
`Order.save()` or `formset.save()`.

A service refuses a change with a French TransitionError or ServiceError; the
admin shows it on the form the person filled in, never as a server error.

The records the office only looks at (reports, documents, the CCAG's paperwork)
have their pages in `orders.records_admin`, the personal data's in
`orders.privacy_admin`: both are imported here, which registers them.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Max, QuerySet
from django.forms import BaseInlineFormSet, ModelForm
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import formats

from orders import actions, receiving, services, states
from orders.forms import OrderForm, OrderLineForm, add_refusal
from orders.models import Order, OrderEvent, OrderLine
from orders.records_admin import UnappliedActionInline
from orders.states import Action
from portal.dates import admin_overrides
from portal.errors import Refused
from portal.models import ContactAccess
from portal.privacy import record_contact_access

# What the execution of the order sets: shown, never typed in.
EXECUTION_FIELDS = (
    "state",
    "appointment_at",
    "planned_start",
    "planned_end",
    "actual_start",
    "actual_end",
    "progress",
    "suspend_reason",
    "reception_date",
    "invoice_date",
    "invoice_number",
    "close_outcome",
    "cancel_reason",
    "received_at",
    "created_at",
    "updated_at",
)


def _line_values(form: ModelForm) -> dict[str, Any]:
    """What the person typed on a line. Fields left as they were are not
    passed, so that a line from the price schedule takes the price's label,
    unit and prices, and a typed line the model's defaults."""
    return {name: form.cleaned_data[name] for name in form.changed_data if name in receiving.LINE_FIELDS}


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    form = OrderLineForm
    fields = ("position", "reference", "price_item", "label", "quantity", "unit", "unit_price", "vat_rate", "done")
    # Technicians mark lines done, from their own pages.
    readonly_fields = ("done",)
    autocomplete_fields = ("price_item",)

    def get_fields(self, request: HttpRequest, obj: Order | None = None) -> Any:
        fields = super().get_fields(request, obj)
        return fields if obj is not None else [name for name in fields if name != "done"]

    def get_extra(self, request: HttpRequest, obj: Order | None = None, **kwargs: Any) -> int:
        return 1 if obj is not None else 3

    # The state machine allows no edit of a closed or cancelled order.
    def has_add_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        return super().has_add_permission(request, obj) and (obj is None or obj.is_open)

    def has_change_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        return super().has_change_permission(request, obj) and (obj is None or obj.is_open)

    def has_delete_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        return super().has_delete_permission(request, obj) and (obj is None or obj.is_open)


class OrderEventInline(admin.TabularInline):
    """The order's history, append-only: looked at, never changed here."""

    model = OrderEvent
    fields = ("at", "label", "state_before", "state_after", "actor")
    readonly_fields = fields
    ordering = ("at", "pk")
    extra = 0
    can_delete = False
    # Not "historique" alone: the admin's own "Historique" button lists the admin's edits.
    verbose_name_plural = "historique de la commande"

    def get_queryset(self, request: HttpRequest) -> QuerySet[OrderEvent]:
        return super().get_queryset(request).select_related("actor")

    def has_add_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        return False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    form = OrderForm
    formfield_overrides = admin_overrides()
    list_display = (
        "reference",
        "contract",
        "asset",
        "state",
        "technician",
        "due_at",
        "appointment_at",
        "progress_display",
    )
    list_filter = (
        "state",
        "contract",
        ("contract__client", admin.RelatedOnlyFieldListFilter),
        ("technician", admin.RelatedOnlyFieldListFilter),
        "work_type",
        "critical_level",
    )
    search_fields = ("reference", "description", "occupant_name", "asset__reference", "asset__address", "site_address")
    date_hierarchy = "received_at"
    list_select_related = ("contract", "asset", "technician")
    autocomplete_fields = ("contract", "billing_account", "asset", "service_code", "technician", "pilot")
    actions = ("acknowledge_selected",)
    change_form_template = "admin/orders/order/change_form.html"

    place_fields = (
        "access_notes",
        "description",
        "occupant_name",
        ("occupant_phone", "occupant_mobile"),
        "occupant_email",
    )
    add_fieldsets = (
        (None, {"fields": ("contract", "reference", "billing_account", "service_code", "work_type", "critical_level")}),
        ("Lieu et occupant", {"fields": ("asset", *place_fields)}),
        ("Délais", {"fields": ("notified_at", "due_at")}),
        ("Affectation", {"fields": ("technician", "pilot")}),
    )
    change_fieldsets = (
        add_fieldsets[0],
        # The address as people read it: the asset's, else the one the platform gave without an asset.
        ("Lieu et occupant", {"fields": ("asset", "works_address", *place_fields)}),
        ("Délais", {"fields": ("received_at", "notified_at", "due_at")}),
        add_fieldsets[3],
        (
            "Exécution",
            {
                "description": "Ces informations changent par les actions (boutons en haut de la page).",
                "fields": (
                    ("state", "progress"),
                    "appointment_at",
                    ("planned_start", "planned_end"),
                    ("actual_start", "actual_end"),
                    "suspend_reason",
                    "reception_date",
                    ("invoice_date", "invoice_number"),
                    "close_outcome",
                    "cancel_reason",
                    "value",
                    ("created_at", "updated_at"),
                ),
            },
        ),
    )

    # --- Lists and pages ----------------------------------------------------

    @admin.display(description="avancement", ordering="progress")
    def progress_display(self, order: Order) -> str:
        return f"{order.progress} %"

    @admin.display(description="adresse des travaux")
    def works_address(self, order: Order) -> str:
        """The asset's address, else the one the platform gave without an asset (Order.full_address)."""
        return order.full_address or "—"

    @admin.display(description="montant HT")
    def value(self, order: Order) -> str:
        return f"{formats.number_format(order.value_excl_vat(), 2, use_l10n=True)} €"

    def get_fieldsets(self, request: HttpRequest, obj: Order | None = None) -> Any:
        return self.change_fieldsets if obj is not None else self.add_fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Order | None = None) -> Any:
        if obj is None:
            return ()
        # The contract and the reference identify the order on the client's platform.
        return ("contract", "reference", "works_address", *EXECUTION_FIELDS, "value")

    def get_inlines(self, request: HttpRequest, obj: Order | None) -> Any:
        if obj is None:
            return (OrderLineInline,)
        # The technicians' actions not applied, when there are some (orders.conflicts).
        unapplied = (UnappliedActionInline,) if obj.unapplied_actions.exists() else ()
        return (OrderLineInline, OrderEventInline, *unapplied)

    def has_change_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        # A closed or cancelled order can be looked at, no longer edited.
        return super().has_change_permission(request, obj) and (obj is None or obj.is_open)

    def has_delete_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        # An order is closed or cancelled, never deleted: the client's platform has it.
        return False

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        order = self.get_object(request, unquote(object_id))
        buttons = []
        if order is not None and request.method == "GET":
            record_contact_access(request.user, ContactAccess.Where.ADMIN, order_id=order.pk, detail=order.reference)
        if order is not None and self.has_change_permission(request):
            buttons = [
                {"url": self._action_url(order, spec.action), "label": spec.label, "action": spec.action.value}
                for spec in actions.admin_actions()
                if spec.action in order.allowed_actions
            ]
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), "order_actions": buttons})

    # --- Saving through the services ----------------------------------------

    def changeform_view(
        self, request: HttpRequest, object_id: str | None = None, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except Refused as error:
            # The admin saved in a transaction, now rolled back: nothing was
            # written. Show the same form again, as it was filled in, with the
            # service's refusal as the form's error (see get_form).
            messages.error(request, f"La commande n'a pas été enregistrée : {error}")
            request.order_refusal = str(error)
            return super().changeform_view(request, object_id, form_url, extra_context)

    def get_form(self, request: HttpRequest, obj: Order | None = None, change: bool = False, **kwargs: Any) -> Any:
        form_class = super().get_form(request, obj, change, **kwargs)
        refusal = getattr(request, "order_refusal", "")
        if not refusal:
            return form_class

        def clean(form: ModelForm) -> dict[str, Any]:
            raise ValidationError(refusal)

        return type(form_class.__name__, (form_class,), {"clean": clean})

    def save_model(self, request: HttpRequest, obj: Order, form: ModelForm, change: bool) -> None:
        if not change:
            # Registered in save_related: register_order takes the lines, which
            # are in the inline formset, not in this form.
            return
        details = {name: form.cleaned_data[name] for name in form.changed_data if name in receiving.DETAIL_FIELDS}
        if details:
            receiving.update_order_details(obj, actor=request.user, changes=details)
        people = {name: form.cleaned_data[name] for name in ("technician", "pilot") if name in form.changed_data}
        if people:
            services.assign_order(obj, actor=request.user, **people)

    def save_related(
        self, request: HttpRequest, form: ModelForm, formsets: list[BaseInlineFormSet], change: bool
    ) -> None:
        # The admin's change message reads what each formset saved.
        for formset in formsets:
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        line_formsets = [formset for formset in formsets if formset.model is OrderLine]
        if change:
            for formset in line_formsets:
                self._save_lines(request, form.instance, formset)
            return
        new_line_forms = [
            line_form
            for formset in line_formsets
            for line_form in formset.extra_forms
            if line_form.has_changed() and line_form not in formset.deleted_forms
        ]
        data = form.cleaned_data
        order = receiving.register_order(
            contract=data["contract"],
            reference=data["reference"],
            actor=request.user,
            lines=[_line_values(line_form) for line_form in new_line_forms],
            technician=data.get("technician"),
            pilot=data.get("pilot"),
            **{name: data[name] for name in receiving.DETAIL_FIELDS if name in data},
        )
        # The admin goes on (change message, redirect) with the form's
        # instance: make it the order just registered.
        instance = form.instance
        instance.pk = order.pk
        instance._state.adding = False
        instance.refresh_from_db()
        for formset in line_formsets:
            formset.new_objects = list(order.lines.all())

    def _save_lines(self, request: HttpRequest, order: Order, formset: BaseInlineFormSet) -> None:
        actor = request.user
        for line_form in formset.deleted_forms:
            if line_form.instance.pk is not None:
                receiving.remove_line(line_form.instance, actor=actor)
                formset.deleted_objects.append(line_form.instance)
        for line_form in formset.initial_forms:
            if line_form in formset.deleted_forms or not line_form.has_changed():
                continue
            receiving.update_line(line_form.instance, actor=actor, changes=_line_values(line_form))
            formset.changed_objects.append((line_form.instance, line_form.changed_data))
        for line_form in formset.extra_forms:
            if line_form in formset.deleted_forms or not line_form.has_changed():
                continue
            values = _line_values(line_form)
            if "position" not in values:
                values["position"] = (order.lines.aggregate(last=Max("position"))["last"] or 0) + 1
            formset.new_objects.append(receiving.add_line(order, actor=actor, **values))

    # --- Actions --------------------------------------------------------------

    def get_urls(self) -> list:
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "<path:object_id>/action/<str:action>/",
                self.admin_site.admin_view(self.action_view),
                name="{}_{}_action".format(*info),
            ),
            *super().get_urls(),
        ]

    def _action_url(self, order: Order, action: Action) -> str:
        return reverse(
            f"{self.admin_site.name}:orders_order_action",
            args=[order.pk, action.value],
            current_app=self.admin_site.name,
        )

    def action_view(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        """One action on one order: parse its form, call its service, go back to the order."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        order = self.get_object(request, unquote(object_id))
        spec = actions.get(action)
        if order is None or spec is None or spec.admin_form is None:
            raise Http404("Cette commande ou cette action n'existe pas.")
        form_class = spec.admin_form
        change_url = reverse(
            f"{self.admin_site.name}:orders_order_change", args=[order.pk], current_app=self.admin_site.name
        )
        if request.method == "POST":
            form = form_class(request.POST)
            if form.is_valid():
                try:
                    event = spec.service(order, actor=request.user, **form.cleaned_data)
                except Refused as error:
                    add_refusal(form, error)
                else:
                    messages.success(request, event.label)
                    return HttpResponseRedirect(change_url)
        else:
            form = form_class()
        # A refusal the state machine already knows is said before the form
        # is filled in; after a refused POST the form says it, once is enough.
        allowed = states.is_allowed(order.state, spec.action)
        refusal = "" if allowed else str(states.IllegalTransition(order.state, spec.action))
        context = {
            **self.admin_site.each_context(request),
            "title": spec.label,
            "subtitle": f"Commande {order.reference} – {order.state_label}",
            "opts": self.opts,
            "original": order,
            "action_label": spec.label,
            "form": form,
            "allowed": allowed,
            "refusal": "" if refusal in form.non_field_errors() else refusal,
            "change_url": change_url,
            "media": self.media + form.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/orders/order/action_form.html", context)

    @admin.action(description="Prendre en compte les commandes sélectionnées", permissions=["change"])
    def acknowledge_selected(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        acknowledged = 0
        for order in queryset:
            try:
                services.acknowledge_order(order, actor=request.user)
            except Refused as error:
                messages.error(request, f"{order.reference} : {error}")
            else:
                acknowledged += 1
        if acknowledged:
            noun = "commande prise" if acknowledged == 1 else "commandes prises"
            messages.success(request, f"{acknowledged} {noun} en compte.")


from orders import privacy_admin  # noqa: E402, F401  (registers the personal-data pages)
