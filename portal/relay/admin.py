"""The relay in the admin: platform connections, the messages and their error
queue (*reprise sur erreur*), notifications received, breaches of the 15 minutes."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from portal.admin import ContractAdmin
from portal.errors import Refused
from portal.models import Contract
from portal.relay import catalogue, intent, pubsub, services, tasks, watch
from portal.relay.forms import ResolveInAdminForm
from portal.relay.models import (
    Breach,
    Connection,
    DeliveryAttempt,
    InboundNotification,
    MessageAudit,
    MessageStatus,
    NotificationStatus,
    OutboxMessage,
    ServiceLevelWarning,
)


class ConnectionForm(forms.ModelForm):
    """Secrets are written, never shown back: an empty field keeps the stored one."""

    client_secret = forms.CharField(
        label="Secret client OAuth",
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Laissez vide pour conserver le secret enregistré.",
    )
    webhook_hmac_secret = forms.CharField(
        label="Secret HMAC du webhook",
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Facultatif. Si la plateforme signe ses appels, la signature est vérifiée. "
        "Laissez vide pour conserver ; saisissez « - » pour le retirer.",
    )

    service_account_key = forms.CharField(
        label="Clé du compte de service (JSON)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "autocomplete": "off"}),
        help_text="Nexxio : collez le fichier JSON de la clé. Elle est chiffrée et n'est jamais réaffichée ; "
        "laissez vide pour conserver la clé enregistrée.",
    )

    class Meta:
        model = Connection
        fields = [
            "client",
            "kind",
            "enabled",
            "auth_base_url",
            "api_base_url",
            "oauth_client_id",
            "gcp_project",
            "pubsub_topic",
            "pubsub_subscription",
            "pubsub_emulator_host",
            "document_type",
            "document_family",
            "timeout_seconds",
        ]

    def clean_service_account_key(self) -> str:
        key = self.cleaned_data.get("service_account_key", "").strip()
        if not key:
            return ""
        try:
            parsed = json.loads(key)
        except ValueError:
            raise forms.ValidationError("Ce n'est pas un JSON lisible : collez le fichier de clé tel quel.") from None
        missing = [
            name for name in ("client_email", "private_key") if not isinstance(parsed, dict) or not parsed.get(name)
        ]
        if missing:
            raise forms.ValidationError(
                "Ce JSON n'est pas une clé de compte de service (manque : " + ", ".join(missing) + ")."
            )
        return key

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("kind") == "intent" and cleaned.get("enabled"):
            for name in ("auth_base_url", "api_base_url", "oauth_client_id"):
                if not cleaned.get(name):
                    self.add_error(name, "Obligatoire pour une connexion Intent active.")
            if not cleaned.get("client_secret") and not self.instance.client_secret_encrypted:
                self.add_error("client_secret", "Obligatoire pour une connexion Intent active.")
        if cleaned.get("kind") == "pubsub" and cleaned.get("enabled"):
            for name in ("gcp_project", "pubsub_topic", "pubsub_subscription"):
                if not cleaned.get(name):
                    self.add_error(name, "Obligatoire pour une connexion Nexxio active.")
            has_key = cleaned.get("service_account_key") or self.instance.service_account_key_encrypted
            if not has_key and not cleaned.get("pubsub_emulator_host"):
                self.add_error("service_account_key", "Obligatoire pour une connexion Nexxio active (hors émulateur).")
        return cleaned

    def save(self, commit: bool = True):
        connection = super().save(commit=False)
        if self.cleaned_data.get("client_secret"):
            connection.client_secret = self.cleaned_data["client_secret"]
            # A new secret invalidates the cached token.
            connection.access_token_encrypted = ""
            connection.token_expires_at = None
        if self.cleaned_data.get("service_account_key"):
            connection.service_account_key = self.cleaned_data["service_account_key"]
        hmac_secret = self.cleaned_data.get("webhook_hmac_secret")
        if hmac_secret == "-":
            connection.webhook_hmac_secret = ""
        elif hmac_secret:
            connection.webhook_hmac_secret = hmac_secret
        if commit:
            connection.save()
        return connection


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
    form = ConnectionForm
    list_display = ["client", "kind", "enabled", "api_base_url", "waiting", "oldest_waiting"]
    list_filter = ["kind", "enabled"]
    readonly_fields = ["webhook_address", "secret_state", "token_expires_at", "failing_since", "created_at"]
    fieldsets = [
        (None, {"fields": ["client", "kind", "enabled"]}),
        (
            "Accès à l'API",
            {"fields": ["auth_base_url", "api_base_url", "oauth_client_id", "client_secret", "timeout_seconds"]},
        ),
        (
            "Nexxio (Google Pub/Sub)",
            {
                "fields": [
                    "gcp_project",
                    "pubsub_topic",
                    "pubsub_subscription",
                    "service_account_key",
                    "pubsub_emulator_host",
                ]
            },
        ),
        ("Webhook (appels de la plateforme)", {"fields": ["webhook_address", "webhook_hmac_secret", "secret_state"]}),
        ("Documents", {"fields": ["document_type", "document_family"]}),
        ("État", {"fields": ["token_expires_at", "failing_since", "created_at"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("client")

    def changelist_view(self, request: HttpRequest, extra_context=None):
        self._health = {item.connection.pk: item for item in watch.health()}
        return super().changelist_view(request, extra_context)

    @admin.display(description="en attente")
    def waiting(self, connection: Connection) -> int:
        item = getattr(self, "_health", {}).get(connection.pk)
        return item.waiting + item.rejected if item else 0

    @admin.display(description="plus ancien en attente")
    def oldest_waiting(self, connection: Connection) -> str:
        item = getattr(self, "_health", {}).get(connection.pk)
        if not item or item.oldest_age is None:
            return "—"
        return f"{int(item.oldest_age.total_seconds() // 60)} min"

    @admin.display(description="adresse à déclarer sur la plateforme")
    def webhook_address(self, connection: Connection) -> str:
        return connection.webhook_url if connection.pk else "Disponible après l'enregistrement."

    @admin.display(description="secrets enregistrés")
    def secret_state(self, connection: Connection) -> str:
        oauth = "oui" if connection.client_secret_encrypted else "non"
        signing = "oui" if connection.webhook_hmac_secret_encrypted else "non"
        key = "oui" if connection.service_account_key_encrypted else "non"
        return f"Secret OAuth : {oauth} · Secret HMAC : {signing} · Clé Pub/Sub : {key}"

    actions = ["test_connection"]

    @admin.action(description="Tester la connexion")
    def test_connection(self, request: HttpRequest, queryset: QuerySet) -> None:
        for connection in queryset:
            if connection.kind != "pubsub":
                self.message_user(request, f"{connection} : test disponible pour les connexions Nexxio.", "warning")
                continue
            problems = pubsub.check_connection(connection)
            if problems:
                self.message_user(request, f"{connection} : " + " ".join(problems), messages.ERROR)
            else:
                self.message_user(
                    request, f"{connection} : le sujet et l'abonnement existent, la clé peut publier et lire."
                )


class AttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    fields = ["started_at", "outcome", "status_code", "duration_ms", "error", "response_body", "worker"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class AuditInline(admin.TabularInline):
    model = MessageAudit
    extra = 0
    can_delete = False
    fields = ["at", "actor", "action", "note"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    """All messages; filtered on « Refusé par la plateforme » it is the error queue."""

    list_display = ["order_link", "sequence", "kind", "description", "status", "created_at", "delivered_at", "error"]
    list_filter = ["status", "kind", "connection"]
    search_fields = ["order__reference", "last_error"]
    date_hierarchy = "created_at"
    list_select_related = ["order", "connection__client"]
    inlines = [AttemptInline, AuditInline]
    readonly_fields = [
        "connection",
        "order_link",
        "sequence",
        "kind",
        "status",
        "payload_pretty",
        "created_at",
        "next_attempt_at",
        "attempts",
        "ambiguous",
        "last_status_code",
        "last_error",
        "reasons",
        "last_response_body",
        "delivered_at",
        "rejected_at",
        "resolved_at",
        "resolved_by",
        "resolution_note",
    ]
    fields = readonly_fields
    change_form_template = "admin/relay/outboxmessage/change_form.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="commande", ordering="order__reference")
    def order_link(self, message: OutboxMessage) -> str:
        if message.order_id is None:
            return message.subject
        url = reverse("admin:orders_order_change", args=[message.order_id])
        return format_html('<a href="{}">{}</a>', url, message.order.reference)

    @admin.display(description="libellé")
    def description(self, message: OutboxMessage) -> str:
        return str(message.payload.get("description", ""))[:80]

    @admin.display(description="erreur")
    def error(self, message: OutboxMessage) -> str:
        return message.last_error[:120]

    @admin.display(description="motifs de la plateforme")
    def reasons(self, message: OutboxMessage) -> str:
        if not message.last_reasons:
            return "—"
        items = format_html_join(
            "",
            "<li>{}{}</li>",
            (
                (reason, format_html("<br><small>{}</small>", hint) if hint else "")
                for reason, hint in message.explained_reasons
            ),
        )
        return format_html("La plateforme a refusé :<ul>{}</ul>", items)

    @admin.display(description="données envoyées")
    def payload_pretty(self, message: OutboxMessage) -> str:
        return format_html("<pre>{}</pre>", json.dumps(message.payload, ensure_ascii=False, indent=2))

    def get_urls(self):
        return [
            path(
                "<int:message_id>/renvoyer/",
                self.admin_site.admin_view(self.resolve_view),
                {"action": "resend"},
                name="relay_outboxmessage_resend",
            ),
            path(
                "<int:message_id>/abandonner/",
                self.admin_site.admin_view(self.resolve_view),
                {"action": "cancel"},
                name="relay_outboxmessage_cancel",
            ),
            *super().get_urls(),
        ]

    def resolve_view(self, request: HttpRequest, message_id: int, action: str) -> HttpResponse:
        message = get_object_or_404(OutboxMessage.objects.select_related("order"), pk=message_id)
        if not self.has_change_permission(request, message):
            raise PermissionDenied
        form = ResolveInAdminForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                if action == "resend":
                    services.resend_message(message, actor=request.user, note=form.cleaned_data["note"])
                    self.message_user(request, "Message renvoyé : il part dans les secondes qui viennent.")
                else:
                    services.cancel_message(
                        message,
                        actor=request.user,
                        reason=form.cleaned_data["note"],
                        entered_by_hand_at=form.cleaned_data["entered_by_hand_at"],
                    )
                    self.message_user(request, "Message abandonné.", messages.WARNING)
                return HttpResponseRedirect(reverse("admin:relay_outboxmessage_change", args=[message.pk]))
            except Refused as error:
                form.add_error(None, str(error))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "message_obj": message,
            "form": form,
            "action": action,
            "title": "Renvoyer le message" if action == "resend" else "Abandonner le message",
            "order_url": reverse("admin:orders_order_change", args=[message.order_id]) if message.order_id else "",
        }
        return render(request, "admin/relay/outboxmessage/resolve.html", context)

    @admin.action(description="Renvoyer les messages refusés sélectionnés (données actuelles)")
    def resend_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        done, failed = 0, []
        for message in queryset.filter(status=MessageStatus.REJECTED):
            try:
                services.resend_message(message, actor=request.user)
                done += 1
            except Refused as error:
                failed.append(f"{message}: {error}")
        self.message_user(request, f"{done} message(s) renvoyé(s).")
        for line in failed:
            self.message_user(request, line, messages.ERROR)

    actions = ["resend_selected"]


@admin.register(InboundNotification)
class InboundNotificationAdmin(admin.ModelAdmin):
    list_display = ["notification_id", "type", "connection", "status", "received_at", "order", "error"]
    list_filter = ["status", "type", "connection"]
    search_fields = ["notification_id", "error"]
    date_hierarchy = "received_at"
    readonly_fields = [
        "connection",
        "notification_id",
        "type",
        "body_pretty",
        "received_at",
        "status",
        "attempts",
        "processed_at",
        "error",
        "order",
    ]
    fields = readonly_fields
    actions = ["process_again"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="contenu")
    def body_pretty(self, notification: InboundNotification) -> str:
        return format_html("<pre>{}</pre>", json.dumps(notification.body, ensure_ascii=False, indent=2))

    @admin.action(description="Traiter à nouveau (après correction, par exemple création du marché)")
    def process_again(self, request: HttpRequest, queryset: QuerySet) -> None:
        ids = list(queryset.exclude(status=NotificationStatus.PROCESSED).values_list("pk", flat=True))
        InboundNotification.objects.filter(pk__in=ids).update(status=NotificationStatus.RECEIVED, error="")
        for notification_id in ids:
            tasks.ingest_notification.delay(notification_id)
        self.message_user(request, f"{len(ids)} notification(s) remise(s) en traitement.")


@admin.register(Breach)
class BreachAdmin(admin.ModelAdmin):
    list_display = ["message", "connection", "changed_at", "delivered_at", "delay_minutes"]
    list_filter = ["connection"]
    date_hierarchy = "changed_at"
    readonly_fields = ["message", "connection", "changed_at", "delivered_at", "delay_seconds", "recorded_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="retard")
    def delay_minutes(self, breach: Breach) -> str:
        minutes = breach.delay_seconds // 60
        still = " (toujours en attente)" if breach.delivered_at is None else ""
        return f"{minutes} min{still}"


@admin.register(ServiceLevelWarning)
class ServiceLevelWarningAdmin(admin.ModelAdmin):
    list_display = ["connection", "sent_at", "age_seconds"]
    readonly_fields = ["connection", "oldest_message", "sent_at", "age_seconds"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


# The contract's admin (portal.admin) with the relay's action: the core does not know the relay.
admin.site.unregister(Contract)


@admin.register(Contract)
class ContractWithPlatformAdmin(ContractAdmin):
    actions = ("sync_from_platform",)

    @admin.action(description="Synchroniser les codes prestation depuis la plateforme du client")
    def sync_from_platform(self, request: HttpRequest, queryset: QuerySet) -> None:
        for contract in queryset.select_related("client"):
            connection = Connection.objects.filter(client=contract.client, enabled=True, kind="intent").first()
            if connection is None:
                self.message_user(request, f"{contract} : le client n'a pas de connexion Intent active.", "error")
                continue
            try:
                count = catalogue.sync_contract(connection, contract)
            except intent.PlatformError as error:
                self.message_user(request, f"{contract} : {error.message}", "error")
                continue
            self.message_user(request, f"{contract} : {count} code(s) prestation à jour.")
