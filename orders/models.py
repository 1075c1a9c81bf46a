"""Orders (*bons de commande*), their lines and their history.

Nothing here changes an order: `orders.services` and the modules built on its
core (`orders.receiving`, `orders.planning`) do, and only they.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from orders import deadlines
from orders.durations import duration
from orders.formatting import format_deadline
from orders.photo_models import PhotoKind, StagedPhoto, StagedPhotoPart, StagedPhotoStatus, TakenPhoto
from orders.queries import OrderQuerySet, line_total
from orders.states import (
    CLOSE_OUTCOME_LABELS,
    OPEN_STATES,
    STATE_LABELS,
    SUSPEND_REASON_LABELS,
    Action,
    allowed_actions,
)
from portal.models import VAT_RATES, Asset, BillingAccount, Contract, PriceItem, Role, ServiceCode

if TYPE_CHECKING:
    pass

StateChoices = models.TextChoices("StateChoices", [(s.name, (s.value, label)) for s, label in STATE_LABELS.items()])


class WorkType(models.TextChoices):
    CORRECTIVE = "corrective", "Curatif"
    PREVENTIVE = "preventive", "Préventif"


class CriticalLevel(models.IntegerChoices):
    UNSPECIFIED = 0, "Non précisée"
    NOT_URGENT = 1, "Non urgent"
    URGENT = 2, "Urgent"
    STRATEGIC = 3, "Stratégique"
    PRIORITY = 4, "Prioritaire"


class Origin(models.TextChoices):
    PLATFORM = "platform", "Plateforme du client"
    MANUAL = "manual", "Saisie manuelle"


# An appointment without a duration of its own or a service code holds its technician this long.
DEFAULT_VISIT = timedelta(hours=1)


class Order(models.Model):
    contract = models.ForeignKey(Contract, models.PROTECT, related_name="orders", verbose_name="marché")
    reference = models.CharField("référence", max_length=100, help_text="La référence de la plateforme du client.")
    origin = models.CharField("origine", max_length=20, choices=Origin, default=Origin.MANUAL, editable=False)
    billing_account = models.ForeignKey(
        BillingAccount, models.PROTECT, null=True, blank=True, verbose_name="compte de facturation"
    )
    asset = models.ForeignKey(
        Asset, models.PROTECT, null=True, blank=True, related_name="orders", verbose_name="patrimoine"
    )
    service_code = models.ForeignKey(
        ServiceCode, models.PROTECT, null=True, blank=True, related_name="orders", verbose_name="code prestation"
    )
    work_type = models.CharField("type de travaux", max_length=20, choices=WorkType, default=WorkType.CORRECTIVE)
    critical_level = models.PositiveSmallIntegerField("criticité", choices=CriticalLevel, default=0)
    description = models.TextField("description", blank=True)

    occupant_name = models.CharField("occupant", max_length=200, blank=True)
    occupant_phone = models.CharField("téléphone de l'occupant", max_length=30, blank=True)
    occupant_mobile = models.CharField("mobile de l'occupant", max_length=30, blank=True)
    occupant_email = models.EmailField("e-mail de l'occupant", blank=True)
    access_notes = models.CharField("accès", max_length=300, blank=True, help_text="Bâtiment, étage, code…")
    # Where the works are when the order names no element of the client's
    # property: the address the platform's operation gave without an asset
    # reference (docs/platform.md). An asset's own address comes first (it is
    # shared by the asset's orders): see `full_address`.
    site_address = models.CharField("adresse des travaux", max_length=200, blank=True)
    site_postcode = models.CharField("code postal des travaux", max_length=10, blank=True)
    site_city = models.CharField("ville des travaux", max_length=100, blank=True)

    state = models.CharField(
        "état", max_length=20, choices=StateChoices, default=StateChoices.TO_ACKNOWLEDGE, db_index=True
    )
    received_at = models.DateTimeField("reçue le")
    notified_at = models.DateTimeField("notifiée le", help_text="Début du délai d'exécution (CCAG §14.1.2).")
    due_at = models.DateTimeField("échéance", null=True, blank=True, db_index=True)
    appointment_at = models.DateTimeField("rendez-vous", null=True, blank=True, db_index=True)
    planned_start = models.DateTimeField("début prévu", null=True, blank=True)
    planned_end = models.DateTimeField("fin prévue", null=True, blank=True)
    visit_minutes = models.PositiveSmallIntegerField(
        "durée de la visite (minutes)",
        null=True,
        blank=True,
        validators=[MinValueValidator(5), MaxValueValidator(24 * 60)],
        help_text="Vide : la durée de visite de son code prestation.",
    )
    actual_start = models.DateTimeField("début réel", null=True, blank=True)
    actual_end = models.DateTimeField("fin réelle", null=True, blank=True)
    progress = models.PositiveSmallIntegerField(
        "avancement (%)", default=0, validators=[MinValueValidator(0), MaxValueValidator(100)]
    )
    # When the progress now shown was given (the person's time, a phone's for an
    # action taken offline): an older value arriving later does not replace it
    # (orders.services.set_progress, docs/architecture.md « Offline conflicts »).
    progress_at = models.DateTimeField("avancement indiqué le", null=True, blank=True, editable=False)
    suspend_reason = models.CharField(
        "motif de suspension", max_length=30, blank=True, choices=list(SUSPEND_REASON_LABELS.items())
    )
    reception_date = models.DateField("date de réception", null=True, blank=True)
    invoice_date = models.DateField("date de facture", null=True, blank=True)
    invoice_number = models.CharField("n° de facture", max_length=50, blank=True)
    close_outcome = models.CharField("issue", max_length=30, blank=True, choices=list(CLOSE_OUTCOME_LABELS.items()))
    cancel_reason = models.TextField("motif d'annulation", blank=True)
    clock_stopped_on = models.DateField(
        "délai arrêté depuis",
        null=True,
        blank=True,
        editable=False,
        help_text="Une suspension ou un sursis de l'acheteur est en cours depuis cette date (CCAG-MI art. 24, 30.5).",
    )
    late_whole_unusable = models.BooleanField(
        "le retard rend l'ensemble inutilisable",
        default=False,
        help_text="Pénalités de retard sur la valeur de toute la commande, et non de la seule partie en retard "
        "(CCAG-MI art. 15.1).",
    )

    technician = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="assigned_orders",
        limit_choices_to={"role": Role.TECHNICIAN, "is_active": True},
        verbose_name="technicien",
    )
    pilot = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="piloted_orders",
        limit_choices_to={"is_active": True, "role__in": [Role.SUPERVISOR, Role.TECHNICIAN]},
        verbose_name="pilote",
    )
    created_at = models.DateTimeField("créée le", auto_now_add=True)
    updated_at = models.DateTimeField("modifiée le", auto_now=True)

    objects = OrderQuerySet.as_manager()

    class Meta:
        verbose_name = "commande"
        verbose_name_plural = "commandes"
        ordering = ["-received_at", "-pk"]
        indexes = [
            models.Index(fields=["technician", "state"], name="orders_order_tech_state_idx"),
            # The overview's orders by contract and state, counted from the index alone.
            models.Index(fields=["contract", "state"], name="orders_order_contract_state"),
            # Works planned over a period that includes today (the overview's visits, the planning):
            # the periods that end later, not every period ever planned.
            models.Index(fields=["planned_end"], name="orders_order_planned_end"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["contract", "reference"], name="%(app_label)s_%(class)s_unique_reference"),
            models.CheckConstraint(
                condition=Q(state__in=StateChoices.values), name="%(app_label)s_%(class)s_state_valid"
            ),
            models.CheckConstraint(
                condition=Q(progress__gte=0) & Q(progress__lte=100), name="%(app_label)s_%(class)s_progress_range"
            ),
            models.CheckConstraint(
                condition=Q(critical_level__gte=0) & Q(critical_level__lte=4),
                name="%(app_label)s_%(class)s_critical_level_range",
            ),
            models.CheckConstraint(
                condition=Q(visit_minutes__isnull=True) | Q(visit_minutes__gte=5, visit_minutes__lte=24 * 60),
                name="%(app_label)s_%(class)s_visit_minutes_range",
            ),
            models.CheckConstraint(
                condition=Q(actual_end__isnull=True) | Q(actual_start__isnull=False, actual_end__gte=F("actual_start")),
                name="%(app_label)s_%(class)s_end_after_start",
            ),
            models.CheckConstraint(
                condition=Q(planned_end__isnull=True)
                | Q(planned_start__isnull=False, planned_end__gt=F("planned_start")),
                name="%(app_label)s_%(class)s_planned_end_after_start",
            ),
            models.CheckConstraint(
                condition=~Q(state="invoiced") | Q(invoice_date__isnull=False),
                name="%(app_label)s_%(class)s_invoiced_has_date",
            ),
            models.CheckConstraint(
                condition=~Q(state="cancelled") | ~Q(cancel_reason=""),
                name="%(app_label)s_%(class)s_cancelled_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return self.reference

    @property
    def state_label(self) -> str:
        return self.get_state_display()

    @property
    def allowed_actions(self) -> list[Action]:
        return allowed_actions(self.state)

    @property
    def visit_length(self) -> timedelta:
        """How long its appointment holds its technician: its own duration, else
        its service code's (`visit_minutes`), else an hour (service code read along)."""
        if self.visit_minutes:
            return timedelta(minutes=self.visit_minutes)
        if self.service_code_id:
            return timedelta(minutes=self.service_code.visit_minutes)
        return DEFAULT_VISIT

    @property
    def visit_length_minutes(self) -> int:
        return int(self.visit_length.total_seconds() // 60)

    @property
    def visit_label(self) -> str:
        """`1 h 30 min`: its visit's duration as people read it."""
        return duration(self.visit_length)

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    def progress_from_lines(self) -> int:
        """The share of its lines done, in % (0 without lines)."""
        flags = list(self.lines.values_list("done", flat=True))
        return round(100 * sum(flags) / len(flags)) if flags else 0

    def previous_reports(self) -> models.QuerySet[InterventionReport]:
        """The reports of the other visits to the same asset, latest first (five at most)."""
        if self.asset_id is None:
            return InterventionReport.objects.none()
        return (
            InterventionReport.objects.filter(order__asset_id=self.asset_id)
            .exclude(order_id=self.pk)
            .select_related("order__service_code")
            .order_by("-created_at", "-pk")[:5]
        )

    def missing_to_finish(self) -> list[str]:
        """What is not done yet, in French, for the confirmation of « Terminer les travaux »."""
        missing = []
        lines = list(self.lines.all())
        left = [line for line in lines if not line.done]
        if left:
            names = ", ".join(f"{line.reference} {line.label}" for line in left)
            verb = "n'est pas réalisée" if len(left) == 1 else "ne sont pas réalisées"
            missing.append(f"{len(left)} ligne{'s' if len(left) > 1 else ''} sur {len(lines)} {verb} ({names})")
        if not self.reports.exists():
            missing.append("aucun rapport d'intervention n'est saisi")
        return missing

    @property
    def full_address(self) -> str:
        """Where the works are, as people read it: the asset's address, else the
        order's own (an operation that named no asset); "" when neither is known."""
        if self.asset_id and self.asset and self.asset.full_address:
            return self.asset.full_address
        town = " ".join(part for part in (self.site_postcode, self.site_city) if part)
        return ", ".join(part for part in (self.site_address, town) if part)

    @property
    def postcode(self) -> str:
        """The postcode of `full_address`."""
        if self.asset_id and self.asset and self.asset.full_address:
            return self.asset.postcode
        return self.site_postcode

    @property
    def department(self) -> str | None:
        """Where the works are done: whose public holidays count (CCAG-MI §3.2.4)."""
        return deadlines.department_of(self.postcode)

    @property
    def due_label(self) -> str:
        """`22/04/2025 à minuit`: the due date as people read it (a period in days ends with its last day)."""
        return format_deadline(self.due_at, short=True) if self.due_at else "—"

    @property
    def due_label_long(self) -> str:
        return format_deadline(self.due_at) if self.due_at else "—"

    @property
    def deadline(self) -> deadlines.Deadline | None:
        """The execution period's end as a Deadline (its last day, and the instant after)."""
        return deadlines.deadline_of(self.due_at) if self.due_at else None

    def value_excl_vat(self) -> Decimal:
        """The order's value: the sum of its lines, excluding VAT (as the
        `with_value()` annotation computes it in a list's query)."""
        total = self.lines.aggregate(total=line_total())["total"]
        return Decimal(total or 0).quantize(Decimal("0.01"))


class OrderLine(models.Model):
    order = models.ForeignKey(Order, models.CASCADE, related_name="lines", verbose_name="commande")
    position = models.PositiveSmallIntegerField("position", default=0)
    reference = models.CharField("référence", max_length=100)
    price_item = models.ForeignKey(
        PriceItem, models.PROTECT, null=True, blank=True, related_name="+", verbose_name="prix du bordereau"
    )
    label = models.CharField("libellé", max_length=300)
    quantity = models.DecimalField(
        "quantité", max_digits=10, decimal_places=2, default=Decimal(1), validators=[MinValueValidator(Decimal("0.01"))]
    )
    unit = models.CharField("unité", max_length=20, default="u")
    unit_price = models.DecimalField(
        "prix unitaire HT (€)",
        max_digits=12,
        decimal_places=2,
        default=Decimal(0),
        validators=[MinValueValidator(Decimal(0))],
    )
    vat_rate = models.DecimalField(
        "taux de TVA (%)", max_digits=5, decimal_places=2, choices=VAT_RATES, default=Decimal("10.00")
    )
    done = models.BooleanField("réalisée", default=False)
    done_at = models.DateTimeField("réalisée le", null=True, blank=True)
    # When it was last marked done or not done (the person's time): an older tick
    # arriving later does not undo a newer one (orders.services.mark_line).
    marked_at = models.DateTimeField("marquée le", null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "ligne de commande"
        verbose_name_plural = "lignes de commande"
        ordering = ["order", "position", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["order", "reference"], name="%(app_label)s_%(class)s_unique_reference"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="%(app_label)s_%(class)s_quantity_positive"),
            models.CheckConstraint(condition=Q(unit_price__gte=0), name="%(app_label)s_%(class)s_price_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.reference} – {self.label}"

    @property
    def amount_excl_vat(self) -> Decimal:
        return (self.quantity * self.unit_price).quantize(Decimal("0.01"))


class OrderEvent(models.Model):
    """One entry of an order's history. Append-only: never changed, never deleted."""

    order = models.ForeignKey(Order, models.CASCADE, related_name="events", verbose_name="commande")
    at = models.DateTimeField("date", db_index=True, help_text="Quand cela s'est produit.")
    recorded_at = models.DateTimeField("enregistré le", auto_now_add=True)
    kind = models.CharField("nature", max_length=30)
    label = models.CharField("libellé", max_length=300)
    state_before = models.CharField("état avant", max_length=20, choices=StateChoices, blank=True)
    state_after = models.CharField("état après", max_length=20, choices=StateChoices, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+", verbose_name="auteur"
    )
    data = models.JSONField("données", default=dict, blank=True)

    class Meta:
        verbose_name = "événement"
        verbose_name_plural = "historique"
        ordering = ["order", "at", "pk"]
        indexes = [models.Index(fields=["order", "at"], name="orders_event_order_at_idx")]

    def __str__(self) -> str:
        return self.label

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise ValueError("L'historique d'une commande ne se modifie pas.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("L'historique d'une commande ne se supprime pas.")


class OrderSeen(models.Model):
    """When a technician last opened an order's page: their list marks the
    orders given or moved to them by someone else since (« nouveau », « modifié »)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="+", verbose_name="technicien")
    order = models.ForeignKey(Order, models.CASCADE, related_name="seen_by", verbose_name="commande")
    seen_at = models.DateTimeField("vue le")

    class Meta:
        verbose_name = "commande vue"
        verbose_name_plural = "commandes vues"
        constraints = [models.UniqueConstraint(fields=["user", "order"], name="orders_orderseen_once")]

    def __str__(self) -> str:
        return f"{self.order_id} vue par {self.user_id} le {self.seen_at:%Y-%m-%d %H:%M}"


class UnappliedReason(models.TextChoices):
    REFUSED = "refused", "Refusée (état de la commande)"
    REASSIGNED = "reassigned", "Commande plus attribuée au technicien"
    LINE_REMOVED = "line_removed", "Ligne retirée entre-temps"
    SUPERSEDED = "superseded", "Valeur plus récente gardée"
    INVALID = "invalid", "Données refusées"


class UnappliedAction(models.Model):
    """An action a technician took without network that the server did not apply
    when it arrived: refused (the order changed state meanwhile, was given to
    someone else, lost the line), or older than a value set meanwhile (conflict).
    Kept so that nobody's work disappears without a trace: shown on the order's
    timeline to supervisors and office staff, in the admin, and emailed
    (orders.notifications.tell_unapplied_actions). Written by orders.conflicts."""

    order = models.ForeignKey(Order, models.CASCADE, related_name="unapplied_actions", verbose_name="commande")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="+", verbose_name="technicien")
    key = models.UUIDField("clé", unique=True, null=True, blank=True, help_text="La clé que le téléphone lui a donnée.")
    action = models.CharField("action", max_length=30)
    label = models.CharField("ce qui a été fait", max_length=300)
    line_reference = models.CharField("ligne", max_length=100, blank=True)
    data = models.JSONField("données envoyées", default=dict, blank=True)
    acted_at = models.DateTimeField("fait le", help_text="L'heure du téléphone du technicien.")
    received_at = models.DateTimeField("reçu le", default=timezone.now)
    kind = models.CharField("nature", max_length=20, choices=UnappliedReason)
    reason = models.TextField("motif")
    advice = models.CharField("conduite à tenir", max_length=300, blank=True)
    notified_at = models.DateTimeField("signalé le", null=True, blank=True)
    notified_to = models.PositiveIntegerField("destinataires", default=0)

    class Meta:
        verbose_name = "action hors ligne non appliquée"
        verbose_name_plural = "actions hors ligne non appliquées"
        ordering = ["-received_at", "-pk"]
        indexes = [models.Index(fields=["notified_at"], name="orders_unapplied_notified_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=UnappliedReason.values), name="%(app_label)s_%(class)s_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label} ({self.order_id}) : {self.get_kind_display()}"


class ActionReceipt(models.Model):
    """A technician's action, by the key their phone gave it: sent again (a
    replay after a lost connection, a double tap), it is recognised and not
    applied twice. Written in the same transaction as the action."""

    key = models.UUIDField("clé", unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="+", verbose_name="auteur")
    order = models.ForeignKey(Order, models.CASCADE, related_name="action_receipts", verbose_name="commande")
    action = models.CharField("action", max_length=30)
    label = models.CharField("résultat", max_length=300, blank=True)
    created_at = models.DateTimeField("reçue le", auto_now_add=True)

    class Meta:
        verbose_name = "action reçue"
        verbose_name_plural = "actions reçues"

    def __str__(self) -> str:
        return f"{self.action} ({self.key})"


# Documents and intervention reports, in a module of its own (registered with
# this app all the same). Imported here, and before the CCAG's (hence the split
# below), so that the app's models register in the order they always had: lists
# of the app's models (dumpdata, deletions) come out as before.
from orders.report_models import (  # noqa: E402
    PDF_STALLED_AFTER,
    Document,
    DocumentKind,
    InterventionReport,
    MaterialDestination,
    PdfStatus,
    ReportMaterial,
    ReportPhoto,
    SignatureStatus,
    document_path,
    photo_path,
    signature_path,
)

# isort: split
# The CCAG's paperwork, in a module of its own (registered with this app all the same).
from orders.ccag_models import (  # noqa: E402
    AdmissionKind,
    AdmissionSource,
    AdmissionStep,
    BuyerStop,
    ExtensionDecision,
    ExtensionRequest,
    Letter,
    LetterKind,
    LetterPdf,
    Observation,
    StopKind,
)

__all__ = [
    "PhotoKind",
    "StagedPhoto",
    "StagedPhotoPart",
    "StagedPhotoStatus",
    "TakenPhoto",
    "PDF_STALLED_AFTER",
    "Document",
    "DocumentKind",
    "InterventionReport",
    "MaterialDestination",
    "PdfStatus",
    "ReportMaterial",
    "ReportPhoto",
    "SignatureStatus",
    "document_path",
    "photo_path",
    "signature_path",
    "AdmissionKind",
    "AdmissionSource",
    "AdmissionStep",
    "BuyerStop",
    "ExtensionDecision",
    "ExtensionRequest",
    "Letter",
    "LetterKind",
    "LetterPdf",
    "Observation",
    "StopKind",
]
