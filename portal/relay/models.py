"""The link with the managers' platforms: connections, the outbox, inbound notifications."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from portal.models import Client
from portal.relay import crypto, hints


class ConnectionKind(models.TextChoices):
    INTENT = "intent", "Intent (API REST)"
    PUBSUB = "pubsub", "Nexxio (Google Pub/Sub)"
    NONE = "none", "Aucune (saisie sur les écrans du gestionnaire)"


# The kinds whose messages the relay delivers (Intent over HTTP, Nexxio over Pub/Sub).
DELIVERING_KINDS = (ConnectionKind.INTENT, ConnectionKind.PUBSUB)


def new_webhook_token() -> str:
    return secrets.token_urlsafe(32)


class Connection(models.Model):
    """One client's platform: where to send, how to authenticate, how it calls us."""

    client = models.OneToOneField(Client, models.PROTECT, related_name="connection", verbose_name="client")
    kind = models.CharField("plateforme", max_length=20, choices=ConnectionKind, default=ConnectionKind.INTENT)
    auth_base_url = models.URLField(
        "URL d'authentification", blank=True, help_text="Par exemple https://accounts.hubintent.com"
    )
    api_base_url = models.URLField("URL de l'API", blank=True, help_text="Par exemple https://api.hubintent.com/api")
    oauth_client_id = models.CharField("identifiant client OAuth", max_length=200, blank=True)
    client_secret_encrypted = models.TextField("secret client OAuth (chiffré)", blank=True, editable=False)
    webhook_token = models.CharField(
        "jeton du webhook", max_length=64, unique=True, default=new_webhook_token, editable=False
    )
    webhook_hmac_secret_encrypted = models.TextField("secret HMAC du webhook (chiffré)", blank=True, editable=False)
    document_type = models.CharField("type de document par défaut", max_length=100, default="rapport_intervention")
    document_family = models.CharField(
        "famille de document par défaut", max_length=100, default="rapports_intervention"
    )
    timeout_seconds = models.FloatField("délai d'attente des appels (s)", default=10)
    # Nexxio (Google Cloud Pub/Sub): one topic out, one subscription in.
    gcp_project = models.CharField("projet Google Cloud", max_length=100, blank=True)
    pubsub_topic = models.CharField(
        "sujet (topic) des messages envoyés",
        max_length=255,
        blank=True,
        help_text="Nom court (portail-sortant) ou complet (projects/…/topics/…).",
    )
    pubsub_subscription = models.CharField(
        "abonnement (subscription) des messages reçus",
        max_length=255,
        blank=True,
        help_text="Nom court (portail-entrant) ou complet (projects/…/subscriptions/…).",
    )
    service_account_key_encrypted = models.TextField("clé du compte de service (chiffrée)", blank=True, editable=False)
    pubsub_emulator_host = models.CharField(
        "adresse de l'émulateur Pub/Sub",
        max_length=200,
        blank=True,
        help_text="Développement et tests seulement (comme PUBSUB_EMULATOR_HOST) : par exemple 127.0.0.1:8085. "
        "Laissez vide en production.",
    )
    enabled = models.BooleanField("active", default=True)
    # The OAuth token, shared by every worker; renewed shortly before it expires.
    access_token_encrypted = models.TextField(blank=True, editable=False)
    token_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Set at the first send that fails for want of the platform (down, 5xx, a
    # timeout), cleared by the next that goes through: the relay then retries at
    # once the messages that were waiting out their backoff.
    failing_since = models.DateTimeField("en échec depuis", null=True, blank=True, editable=False)
    # Pub/Sub: the pull under way holds the subscription until then (one pull
    # at a time per connection, so messages are applied in the order pulled).
    pull_lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField("créée le", auto_now_add=True)

    class Meta:
        verbose_name = "connexion plateforme"
        verbose_name_plural = "connexions plateformes"
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=ConnectionKind.values), name="%(app_label)s_%(class)s_kind_valid"
            ),
            models.CheckConstraint(condition=Q(timeout_seconds__gt=0), name="%(app_label)s_%(class)s_timeout_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.client} – {self.get_kind_display()}"

    @property
    def client_secret(self) -> str:
        return crypto.decrypt(self.client_secret_encrypted)

    @client_secret.setter
    def client_secret(self, value: str) -> None:
        self.client_secret_encrypted = crypto.encrypt(value)

    @property
    def webhook_hmac_secret(self) -> str:
        return crypto.decrypt(self.webhook_hmac_secret_encrypted)

    @webhook_hmac_secret.setter
    def webhook_hmac_secret(self, value: str) -> None:
        self.webhook_hmac_secret_encrypted = crypto.encrypt(value)

    @property
    def service_account_key(self) -> str:
        return crypto.decrypt(self.service_account_key_encrypted)

    @service_account_key.setter
    def service_account_key(self, value: str) -> None:
        self.service_account_key_encrypted = crypto.encrypt(value)

    @property
    def webhook_path(self) -> str:
        return reverse("relay:webhook", args=[self.webhook_token])

    @property
    def webhook_url(self) -> str:
        return f"{settings.SITE_URL}{self.webhook_path}"

    @property
    def delivers(self) -> bool:
        return self.enabled and self.kind in DELIVERING_KINDS


class MessageKind(models.TextChoices):
    INTERVENTION_LOG = "intervention_log", "Journal d'intervention"
    QUOTATION_LOG = "quotation_log", "Journal de devis"
    DOCUMENT = "document", "Document"


class MessageStatus(models.TextChoices):
    PENDING = "pending", "À envoyer"
    DELIVERED = "delivered", "Transmis"
    REJECTED = "rejected", "Refusé par la plateforme"
    CANCELLED = "cancelled", "Abandonné"


# What holds back the following messages of its stream.
UNDELIVERED = [MessageStatus.PENDING, MessageStatus.REJECTED]


class OutboxMessage(models.Model):
    """One thing to tell the platform, written in the same transaction as the change.

    Messages of one order are delivered strictly in `sequence` order: a message
    waits while an earlier one of its order is not delivered (or cancelled).
    A worker claims a message by setting `lease_until`; a claim that outlives
    its lease (a killed worker) is simply taken again.
    """

    connection = models.ForeignKey(Connection, models.PROTECT, related_name="messages", verbose_name="connexion")
    # The ordering key: messages of one stream are delivered strictly in
    # `sequence` order. "order:<id>" for an order's messages (the default);
    # an app may use its own ("quote:<id>") for what belongs to no order.
    stream = models.CharField("file d'envoi", max_length=60)
    order = models.ForeignKey(
        "orders.Order",
        models.CASCADE,
        null=True,
        blank=True,
        related_name="outbox_messages",
        verbose_name="commande",
    )
    event = models.ForeignKey(
        "orders.OrderEvent", models.SET_NULL, null=True, blank=True, related_name="+", verbose_name="événement"
    )
    sequence = models.PositiveIntegerField("n° d'ordre")
    kind = models.CharField("nature", max_length=20, choices=MessageKind)
    payload = models.JSONField("données envoyées")
    document = models.FileField("document", upload_to="outbox/", blank=True)
    status = models.CharField("état", max_length=20, choices=MessageStatus, default=MessageStatus.PENDING)
    created_at = models.DateTimeField("créé le", default=timezone.now, db_index=True)
    next_attempt_at = models.DateTimeField("prochain essai", default=timezone.now)
    lease_until = models.DateTimeField("réservé jusqu'à", null=True, blank=True)
    queued_at = models.DateTimeField("mis en file le", null=True, blank=True)
    attempts = models.PositiveIntegerField("essais", default=0)
    ambiguous = models.BooleanField(
        "issue incertaine", default=False, help_text="Le dernier envoi a peut-être abouti (délai dépassé)."
    )
    last_error = models.TextField("dernière erreur", blank=True)
    last_status_code = models.PositiveSmallIntegerField("dernier code HTTP", null=True, blank=True)
    # What the platform answered to the last failed attempt: its body (8 KB at
    # most) and the reasons read from it, shown to whoever must correct the order.
    last_response_body = models.TextField("dernière réponse de la plateforme", blank=True)
    last_reasons = models.JSONField("motifs de la plateforme", default=list, blank=True)
    delivered_at = models.DateTimeField("transmis le", null=True, blank=True)
    rejected_at = models.DateTimeField("refusé le", null=True, blank=True)
    resolved_at = models.DateTimeField("traité le", null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+", verbose_name="traité par"
    )
    resolution_note = models.TextField("motif", blank=True)

    class Meta:
        verbose_name = "message à transmettre"
        verbose_name_plural = "messages à transmettre"
        ordering = ["created_at", "pk"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="relay_outbox_due_idx"),
            models.Index(fields=["stream", "status", "sequence"], name="relay_outbox_stream_idx"),
            # The undelivered messages only (few, beside every message ever sent):
            # the first of each stream, and what waits behind it.
            models.Index(
                fields=["stream", "sequence"],
                condition=Q(status__in=["pending", "rejected"]),
                name="relay_outbox_undelivered_idx",
            ),
            models.Index(fields=["order", "sequence"], name="relay_outbox_order_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["stream", "sequence"], name="%(app_label)s_%(class)s_unique_sequence"),
            models.CheckConstraint(
                condition=Q(status__in=MessageStatus.values), name="%(app_label)s_%(class)s_status_valid"
            ),
            models.CheckConstraint(condition=~Q(stream=""), name="%(app_label)s_%(class)s_stream_set"),
            models.CheckConstraint(
                condition=~Q(status="delivered") | Q(delivered_at__isnull=False),
                name="%(app_label)s_%(class)s_delivered_has_date",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subject} #{self.sequence} ({self.get_kind_display()})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self.stream and self.order_id is not None:
            self.stream = f"order:{self.order_id}"
        super().save(*args, **kwargs)

    @property
    def subject(self) -> str:
        """What the message is about, for people: the platform's reference of the
        operation, quote or element it is sent for."""
        payload = self.payload or {}
        return str(payload.get("reference") or payload.get("elementReference") or self.stream)

    @property
    def age(self) -> timedelta:
        return (self.delivered_at or timezone.now()) - self.created_at

    @property
    def explained_reasons(self) -> list[tuple[str, str]]:
        """The platform's reasons, each with what to correct and where in French
        ("" for a field the portal does not know): the pages and the email show both."""
        element = {
            MessageKind.QUOTATION_LOG: hints.Element.QUOTE,
            MessageKind.DOCUMENT: hints.Element.DOCUMENT,
        }.get(self.kind, hints.Element.ORDER)
        return [(str(reason), hints.hint_for(str(reason), element)) for reason in self.last_reasons or []]


class DeliveryAttempt(models.Model):
    """Each try to deliver a message, whatever came of it: the audit of the relay."""

    class Outcome(models.TextChoices):
        DELIVERED = "delivered", "Transmis"
        ALREADY_THERE = "already_there", "Déjà présent sur la plateforme"
        RETRY = "retry", "Échec temporaire"
        AMBIGUOUS = "ambiguous", "Issue incertaine"
        REJECTED = "rejected", "Refusé"

    message = models.ForeignKey(OutboxMessage, models.CASCADE, related_name="attempts_log", verbose_name="message")
    started_at = models.DateTimeField("début")
    duration_ms = models.PositiveIntegerField("durée (ms)")
    outcome = models.CharField("résultat", max_length=20, choices=Outcome)
    status_code = models.PositiveSmallIntegerField("code HTTP", null=True, blank=True)
    error = models.TextField("erreur", blank=True)
    response_body = models.TextField("réponse de la plateforme", blank=True, help_text="8 Ko au plus.")
    worker = models.CharField("processus", max_length=100, blank=True)
    bus_message_id = models.CharField(
        "identifiant sur le bus", max_length=100, blank=True, help_text="Pub/Sub : l'identifiant donné par le bus."
    )

    class Meta:
        verbose_name = "tentative d'envoi"
        verbose_name_plural = "tentatives d'envoi"
        ordering = ["message", "started_at", "pk"]

    def __str__(self) -> str:
        return f"{self.get_outcome_display()} ({self.started_at:%d/%m/%Y %H:%M:%S})"


class MessageAudit(models.Model):
    """What a person did about a message of the error queue."""

    message = models.ForeignKey(OutboxMessage, models.CASCADE, related_name="audits", verbose_name="message")
    at = models.DateTimeField("le", default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, related_name="+", verbose_name="par"
    )
    action = models.CharField("action", max_length=20)
    note = models.TextField("détail", blank=True)
    payload_before = models.JSONField("données avant", null=True, blank=True)

    class Meta:
        verbose_name = "action sur un message"
        verbose_name_plural = "actions sur les messages"
        ordering = ["message", "at", "pk"]

    def __str__(self) -> str:
        return f"{self.action} – {self.note}"


class Breach(models.Model):
    """A message that reached the platform more than 15 minutes after the change
    (or is still waiting past that, or was typed there by hand late): the basis
    of the 150 EUR/day penalty. It belongs to the month of the change."""

    message = models.OneToOneField(OutboxMessage, models.CASCADE, related_name="breach", verbose_name="message")
    connection = models.ForeignKey(Connection, models.PROTECT, related_name="breaches", verbose_name="connexion")
    changed_at = models.DateTimeField("modification le")
    delivered_at = models.DateTimeField("transmis le", null=True, blank=True)
    delay_seconds = models.PositiveIntegerField("retard (s)")
    recorded_at = models.DateTimeField("constaté le", auto_now_add=True)
    # The message was given up because the office typed the data on the
    # platform's own screens: the breach ends there (its delay is frozen).
    entered_by_hand_at = models.DateTimeField("saisi à la main sur la plateforme le", null=True, blank=True)

    class Meta:
        verbose_name = "dépassement du délai de 15 minutes"
        verbose_name_plural = "dépassements du délai de 15 minutes"
        ordering = ["-changed_at"]

    def __str__(self) -> str:
        return f"{self.message} : {self.delay_seconds // 60} min"

    @property
    def delay(self) -> timedelta:
        return timedelta(seconds=self.delay_seconds)

    @property
    def closed(self) -> bool:
        """Whether the data reached the platform, by the relay or by hand."""
        return self.delivered_at is not None or self.entered_by_hand_at is not None


class ServiceLevelWarning(models.Model):
    """An email sent because a connection's oldest waiting message passed 5 minutes."""

    connection = models.ForeignKey(Connection, models.CASCADE, related_name="warnings", verbose_name="connexion")
    oldest_message = models.ForeignKey(OutboxMessage, models.CASCADE, related_name="+", verbose_name="message")
    sent_at = models.DateTimeField("envoyé le", auto_now_add=True)
    age_seconds = models.PositiveIntegerField("ancienneté (s)")

    class Meta:
        verbose_name = "alerte de délai"
        verbose_name_plural = "alertes de délai"
        ordering = ["-sent_at"]
        constraints = [
            models.UniqueConstraint(fields=["oldest_message"], name="%(app_label)s_%(class)s_once_per_message"),
        ]

    def __str__(self) -> str:
        return f"{self.connection} : {self.age_seconds // 60} min"


class NotificationStatus(models.TextChoices):
    RECEIVED = "received", "Reçue"
    PROCESSED = "processed", "Traitée"
    FAILED = "failed", "En erreur"
    IGNORED = "ignored", "Non prise en charge"


class InboundNotification(models.Model):
    """A notification the platform sent to our webhook, kept raw, exactly once."""

    connection = models.ForeignKey(Connection, models.PROTECT, related_name="notifications", verbose_name="connexion")
    notification_id = models.CharField("identifiant", max_length=200)
    type = models.CharField("type", max_length=100, blank=True)
    body = models.JSONField("contenu")
    received_at = models.DateTimeField("reçue le", auto_now_add=True, db_index=True)
    status = models.CharField(
        "état", max_length=20, choices=NotificationStatus, default=NotificationStatus.RECEIVED, db_index=True
    )
    attempts = models.PositiveIntegerField("essais", default=0)
    processed_at = models.DateTimeField("traitée le", null=True, blank=True)
    error = models.TextField("erreur", blank=True)
    order = models.ForeignKey(
        "orders.Order", models.SET_NULL, null=True, blank=True, related_name="+", verbose_name="commande"
    )

    class Meta:
        verbose_name = "notification reçue"
        verbose_name_plural = "notifications reçues"
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "notification_id"], name="%(app_label)s_%(class)s_unique_notification"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type or 'notification'} {self.notification_id}"
