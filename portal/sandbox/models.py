"""What the stand-in platform keeps: its API clients and tokens, the operations
and every log received (duplicates included, in order), the documents with
their bytes, the webhooks it sent, its reference data (contracts, assets) and
the misbehaviour switches.

Field names follow the portal's English; JSON names follow Intent's
camelCase, and the translation lives in `services.py`.
"""

from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q


class OperationType(models.TextChoices):
    INTERVENTION = "intervention", "Intervention"
    QUOTATION = "quotation", "Devis"
    RESERVATION = "reservation", "Réserve"


class OperationStatus(models.TextChoices):
    OPEN = "open", "Ouverte"
    PENDING = "pending", "En cours"
    HOLD = "hold", "Suspendue"
    CLOSED = "closed", "Clôturée"
    DENIED = "denied", "Refusée / annulée"


class WorkType(models.TextChoices):
    CORRECTIVE = "corrective", "Curatif"
    PREVENTIVE = "preventive", "Préventif"


class CriticalLevel(models.IntegerChoices):
    UNSPECIFIED = 0, "Non précisé"
    NOT_URGENT = 1, "Non urgent"
    URGENT = 2, "Urgent"
    STRATEGIC = 3, "Stratégique"
    PRIORITY = 4, "Prioritaire"


class ApiClient(models.Model):
    """An OAuth client (client credentials), i.e. one contractor's connection.

    The secret is kept in clear on purpose: this is a sandbox, and the person
    trying the demo needs to read it back to configure the portal."""

    client_id = models.CharField("identifiant client", max_length=100, unique=True)
    client_secret = models.CharField("secret client", max_length=200)
    label = models.CharField("nom", max_length=200, blank=True)
    created_at = models.DateTimeField("créé le", auto_now_add=True)

    class Meta:
        verbose_name = "client API"
        verbose_name_plural = "clients API"
        ordering = ["client_id"]

    def __str__(self) -> str:
        return self.label or self.client_id


class AccessToken(models.Model):
    token = models.CharField("jeton", max_length=100, unique=True)
    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="tokens", verbose_name="client")
    issued_at = models.DateTimeField("émis le")
    expires_at = models.DateTimeField("expire le")

    class Meta:
        verbose_name = "jeton d'accès"
        verbose_name_plural = "jetons d'accès"
        ordering = ["-issued_at"]

    def __str__(self) -> str:
        return f"{self.client} → {self.expires_at:%d/%m/%Y %H:%M}"


class Contract(models.Model):
    """A contract (*marché*) as the platform describes it, with its catalogue of
    service codes: [{code, label, sla: {maxTimeToIntervention: {value, unit},
    maxTimeToRecovery: {value, unit}}}]."""

    reference = models.CharField("référence", max_length=100, unique=True)
    label = models.CharField("libellé", max_length=200)
    topic = models.CharField("thème", max_length=100, blank=True)
    manager_name = models.CharField("bailleur", max_length=200, blank=True)
    service_codes = models.JSONField("codes prestation", default=list, blank=True)
    via_bus = models.BooleanField(
        "échanges par Nexxio (Pub/Sub)",
        default=False,
        help_text="Demandes et réponses publiées sur le bus, sans webhook.",
    )

    class Meta:
        verbose_name = "marché"
        verbose_name_plural = "marchés"
        ordering = ["reference"]

    def __str__(self) -> str:
        return f"{self.reference} – {self.label}"

    def clean(self) -> None:
        if not isinstance(self.service_codes, list) or not all(
            isinstance(item, dict) and isinstance(item.get("code"), str) and item["code"] for item in self.service_codes
        ):
            raise ValidationError(
                {"service_codes": "Une liste d'objets {code, label, sla} avec un code non vide est attendue."}
            )

    def service(self, code: str) -> dict | None:
        return next((item for item in self.service_codes if item.get("code") == code), None)


class Asset(models.Model):
    """A property element (building, dwelling, equipment) of the manager's estate."""

    class Type(models.TextChoices):
        SITE = "site", "Site"
        BUILDING = "building", "Bâtiment"
        DWELLING = "dwelling", "Logement"
        COMMON_AREA = "common_area", "Parties communes"
        EQUIPMENT = "equipment", "Équipement"

    code = models.CharField("code", max_length=100, unique=True)
    label = models.CharField("libellé", max_length=200)
    type = models.CharField("type", max_length=20, choices=Type, default=Type.DWELLING)
    way = models.CharField("voie", max_length=200, blank=True)
    zip = models.CharField("code postal", max_length=10, blank=True)
    city = models.CharField("ville", max_length=100, blank=True)
    country = models.CharField("pays", max_length=100, blank=True, default="France")
    complement = models.CharField("complément", max_length=200, blank=True)
    parent_reference = models.CharField("élément parent", max_length=100, blank=True)

    class Meta:
        verbose_name = "élément de patrimoine"
        verbose_name_plural = "éléments de patrimoine"
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} – {self.label}"

    @property
    def address(self) -> dict:
        return {
            "way": self.way,
            "zip": self.zip,
            "city": self.city,
            "country": self.country,
            "complement": self.complement,
        }


class Operation(models.Model):
    """An intervention, quote or snag, identified by (contract_reference, reference).

    Its descriptive fields come from the first log (or the manager's request);
    status, event and last_update_date follow the latest log received."""

    uid = models.UUIDField("identifiant", default=uuid.uuid4, unique=True, editable=False)
    type = models.CharField("type", max_length=20, choices=OperationType)
    contract_reference = models.CharField("marché", max_length=100)
    reference = models.CharField("référence", max_length=100)
    status = models.CharField("statut", max_length=20, choices=OperationStatus)
    event = models.CharField("événement", max_length=100)
    description = models.TextField("description", blank=True)
    service_code = models.CharField("code prestation", max_length=100, blank=True)
    work_type = models.CharField("type de travaux", max_length=20, blank=True)
    critical_level = models.PositiveSmallIntegerField("criticité", choices=CriticalLevel, default=0)
    location = models.JSONField("localisation", default=dict, blank=True)
    contacts = models.JSONField("contacts (vCard)", default=list, blank=True)
    issuer = models.JSONField("émetteur", default=dict, blank=True)
    parent_reference = models.CharField("opération parente", max_length=100, blank=True)
    creation_date = models.DateTimeField("créée le")
    last_update_date = models.DateTimeField("mise à jour le")

    class Meta:
        verbose_name = "opération"
        verbose_name_plural = "opérations"
        ordering = ["-last_update_date", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["contract_reference", "reference"], name="%(app_label)s_%(class)s_unique_reference"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reference} ({self.contract_reference})"

    @property
    def asset_reference(self) -> str:
        value = self.location.get("assetReference", "") if isinstance(self.location, dict) else ""
        return value if isinstance(value, str) else ""

    @property
    def is_open_quote(self) -> bool:
        return self.type == OperationType.QUOTATION and self.status not in {
            OperationStatus.CLOSED,
            OperationStatus.DENIED,
        }


class Log(models.Model):
    """One log accepted by the platform. Nothing is ever de-duplicated: a log
    posted twice is stored twice, so a test can prove exactly-once delivery."""

    class Source(models.TextChoices):
        API = "api", "API (prestataire)"
        MANAGER = "manager", "Gestionnaire"

    sequence = models.PositiveBigIntegerField("n° d'ordre", unique=True)
    received_at = models.DateTimeField("reçu le")
    operation = models.ForeignKey(Operation, on_delete=models.CASCADE, related_name="logs", verbose_name="opération")
    type = models.CharField("type", max_length=20, choices=OperationType)
    source = models.CharField("origine", max_length=10, choices=Source, default=Source.API)
    client = models.ForeignKey(
        ApiClient, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name="client"
    )
    contract_reference = models.CharField("marché", max_length=100)
    reference = models.CharField("référence", max_length=100)
    status = models.CharField("statut", max_length=20, choices=OperationStatus)
    event = models.CharField("événement", max_length=100)
    event_date = models.DateTimeField("date de l'événement")
    log_date = models.DateTimeField("date du log")
    description = models.TextField("description", blank=True)
    tags = models.JSONField("étiquettes", default=dict, blank=True)
    raw = models.JSONField("JSON reçu")

    class Meta:
        verbose_name = "log reçu"
        verbose_name_plural = "logs reçus"
        ordering = ["sequence"]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.reference} {self.status}/{self.event}"


class RejectedLog(models.Model):
    """A log POST answered 400: invalid, or refused on purpose by a misbehaviour switch."""

    class Reason(models.TextChoices):
        INVALID = "invalid", "Log invalide"
        REJECT_NEXT = "reject_next", "Refus programmé (prochains logs)"
        REJECT_REFERENCE = "reject_reference", "Refus programmé (référence)"

    received_at = models.DateTimeField("reçu le")
    type = models.CharField("type", max_length=20, choices=OperationType)
    contract_reference = models.CharField("marché", max_length=100, blank=True)
    reference = models.CharField("référence", max_length=100, blank=True)
    reason = models.CharField("motif", max_length=20, choices=Reason)
    message = models.CharField("message", max_length=200)
    errors = models.JSONField("erreurs", default=list, blank=True)
    raw = models.TextField("corps reçu", blank=True)

    class Meta:
        verbose_name = "log refusé"
        verbose_name_plural = "logs refusés"
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.reference or '?'} : {self.message}"


class Document(models.Model):
    """An uploaded document; the bytes stay in the database (sandbox volumes are small)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    element_type = models.CharField("type d'élément", max_length=20, choices=OperationType)
    element_reference = models.CharField("référence de l'élément", max_length=100)
    contract_reference = models.CharField("marché", max_length=100)
    title = models.CharField("titre", max_length=200)
    description = models.TextField("description", blank=True)
    document_type = models.CharField("type de document", max_length=100)
    document_family = models.CharField("famille de document", max_length=100)
    creation_date = models.DateTimeField("date du document")
    file_name = models.CharField("nom du fichier", max_length=255)
    content_type = models.CharField("type MIME", max_length=100)
    size = models.PositiveBigIntegerField("taille (octets)")
    sha256 = models.CharField("empreinte SHA-256", max_length=64)
    content = models.BinaryField("contenu")
    client = models.ForeignKey(
        ApiClient, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name="client"
    )
    uploaded_at = models.DateTimeField("reçu le")

    class Meta:
        verbose_name = "document"
        verbose_name_plural = "documents"
        ordering = ["uploaded_at", "pk"]
        indexes = [models.Index(fields=["element_type", "element_reference"], name="sandbox_document_element")]

    def __str__(self) -> str:
        return f"{self.title} ({self.element_reference})"


class WebhookTarget(models.Model):
    """Where the platform sends its webhooks (the portal's inbound URL)."""

    url = models.URLField("URL", max_length=500)
    secret = models.CharField(
        "secret HMAC", max_length=200, blank=True, help_text="Si renseigné, l'en-tête X-Intent-Signature est envoyé."
    )
    is_active = models.BooleanField("active", default=True)
    created_at = models.DateTimeField("créée le", auto_now_add=True)

    class Meta:
        verbose_name = "cible de webhook"
        verbose_name_plural = "cibles de webhook"
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.url


class WebhookDelivery(models.Model):
    """One attempt to send one notification to one target."""

    operation = models.ForeignKey(
        Operation, on_delete=models.CASCADE, related_name="webhook_deliveries", verbose_name="opération"
    )
    notification_id = models.UUIDField("identifiant de notification")
    notification_type = models.CharField("type de notification", max_length=100)
    target = models.ForeignKey(
        WebhookTarget, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name="cible"
    )
    url = models.CharField("URL", max_length=500, blank=True)
    body = models.TextField("corps envoyé")
    created_at = models.DateTimeField("créé le", auto_now_add=True)
    sent_at = models.DateTimeField("envoyé le", null=True, blank=True)
    status_code = models.PositiveSmallIntegerField("code de réponse", null=True, blank=True)
    error = models.TextField("erreur", blank=True)
    duration_ms = models.PositiveIntegerField("durée (ms)", null=True, blank=True)

    class Meta:
        verbose_name = "envoi de webhook"
        verbose_name_plural = "envois de webhook"
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.notification_type} → {self.url or '(aucune cible)'}"

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def pending(self) -> bool:
        return self.sent_at is None and not self.error


class Behaviour(models.Model):
    """The misbehaviour switches: one row (pk=1), read on every API call, so
    that every process serving the sandbox obeys the same settings."""

    down = models.BooleanField("en panne (503)", default=False)
    delay_ms = models.PositiveIntegerField(
        "délai avant réponse (ms)", default=0, validators=[MaxValueValidator(120_000)]
    )
    error_rate_500 = models.FloatField(
        "part d'erreurs 500", default=0, validators=[MinValueValidator(0), MaxValueValidator(1)]
    )
    error_rate_429 = models.FloatField(
        "part de réponses 429", default=0, validators=[MinValueValidator(0), MaxValueValidator(1)]
    )
    reject_next_logs = models.PositiveIntegerField("refuser les N prochains logs", default=0)
    reject_reference = models.CharField("refuser les logs de la référence", max_length=100, blank=True)
    timeout_after_store_rate = models.FloatField(
        "part de logs enregistrés puis sans réponse à temps",
        default=0,
        validators=[MinValueValidator(0), MaxValueValidator(1)],
    )
    timeout_after_store_seconds = models.FloatField(
        "attente après enregistrement (s)", default=30, validators=[MinValueValidator(0), MaxValueValidator(600)]
    )
    token_expires_in = models.PositiveIntegerField(
        "durée de vie des jetons (s)", default=3600, validators=[MinValueValidator(1)]
    )
    # A stricter platform, as an outside integrator's stand-in was: required
    # fields refused with a list of reasons, documents listed under their
    # multipart field names, text parts without a declared charset read as
    # Latin-1 (as many Java stacks do).
    strict = models.BooleanField("mode strict", default=False)
    gateway_error_after_store_rate = models.FloatField(
        "part de logs enregistrés puis répondus 502",
        default=0,
        validators=[MinValueValidator(0), MaxValueValidator(1)],
    )

    class Meta:
        verbose_name = "comportement"
        verbose_name_plural = "comportement"
        constraints = [
            models.CheckConstraint(condition=Q(pk=1), name="%(app_label)s_%(class)s_singleton"),
            models.CheckConstraint(
                condition=Q(error_rate_500__gte=0, error_rate_500__lte=1)
                & Q(error_rate_429__gte=0, error_rate_429__lte=1)
                & Q(timeout_after_store_rate__gte=0, timeout_after_store_rate__lte=1)
                & Q(gateway_error_after_store_rate__gte=0, gateway_error_after_store_rate__lte=1),
                name="%(app_label)s_%(class)s_rates_between_0_and_1",
            ),
        ]

    def __str__(self) -> str:
        return "Comportement du bac à sable"

    @classmethod
    def load(cls) -> Behaviour:
        behaviour, _ = cls.objects.get_or_create(pk=1)
        return behaviour

    @property
    def is_normal(self) -> bool:
        defaults = Behaviour()
        return all(
            getattr(self, field.name) == getattr(defaults, field.name)
            for field in self._meta.concrete_fields
            if field.name not in {"id", "token_expires_in", "timeout_after_store_seconds"}
        )


class SequenceCounter(models.Model):
    """The global order of received logs. Its row is locked while a log is
    stored, so sequence numbers are committed in the order they are given."""

    value = models.PositiveBigIntegerField(default=0)

    class Meta:
        verbose_name = "compteur de logs"
        constraints = [models.CheckConstraint(condition=Q(pk=1), name="%(app_label)s_%(class)s_singleton")]

    def __str__(self) -> str:
        return str(self.value)
