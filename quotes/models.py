"""Quotes (*devis*) and supplementary-works quotes (*devis de travaux
complémentaires*, CCAG-MI §53): their lines from the contract's price schedule
or out of it, the two parts lists of §52, their versions and their history.

Nothing here changes a quote: `quotes.services` does, and only it.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q, Value
from django.utils import timezone

from portal.models import VAT_RATES, Asset, Contract, PriceItem, ServiceCode
from quotes import pricing


class QuoteState(models.TextChoices):
    DRAFT = "draft", "Brouillon"
    SENT = "sent", "Envoyé"
    ACCEPTED = "accepted", "Accepté"
    REFUSED = "refused", "Refusé"
    EXPIRED = "expired", "Expiré"
    CANCELLED = "cancelled", "Annulé"
    # A sent version replaced by a newer one (kept, never edited).
    SUPERSEDED = "superseded", "Remplacé"


# Waiting for the buyer's answer.
AWAITING_STATES = (QuoteState.SENT,)
# The editor is open only on a draft.
EDITABLE_STATES = (QuoteState.DRAFT,)
# A quote in these states holds the report supplies on its lines (orders.materials,
# quotes.supplies): a draft or a sent quote may still be executed, an accepted
# one was. Out of them (refused, expired, cancelled, superseded), its lines
# will not be executed and its supplies go back to « à reprendre ».
HOLDING_STATES = (QuoteState.DRAFT, QuoteState.SENT, QuoteState.ACCEPTED)


class PdfStatus(models.TextChoices):
    NONE = "none", "Aucun"
    PENDING = "pending", "En attente"
    DONE = "done", "Produit"
    FAILED = "failed", "Échec"


class QuoteTerms(models.Model):
    """What a contract says of its quotes (office staff set it in the admin)."""

    contract = models.OneToOneField(Contract, models.CASCADE, related_name="quote_terms", verbose_name="marché")
    validity_days = models.PositiveSmallIntegerField("validité des devis (jours)", default=90)
    technicians_see_prices = models.BooleanField(
        "les techniciens voient les prix des devis",
        default=False,
        help_text="Sinon, ils voient seulement qu'un devis est en attente.",
    )

    class Meta:
        verbose_name = "conditions des devis d'un marché"
        verbose_name_plural = "conditions des devis des marchés"

    def __str__(self) -> str:
        return f"Devis du marché {self.contract.reference}"


DEFAULT_VALIDITY_DAYS = 90


class QuoteNumber(models.Model):
    """The last number given in a year: the next is taken under a row lock, in
    the transaction that creates the quote, so numbers have neither gap nor
    duplicate (a rolled-back creation gives its number back)."""

    year = models.PositiveSmallIntegerField("année", unique=True)
    last = models.PositiveIntegerField("dernier numéro", default=0)

    class Meta:
        verbose_name = "numérotation des devis"
        verbose_name_plural = "numérotation des devis"

    def __str__(self) -> str:
        return f"{self.year} : {self.last}"


def pdf_path(quote: Quote, filename: str) -> str:
    return f"quotes/{timezone.now():%Y/%m}/{secrets.token_urlsafe(18)}.pdf"


class QuoteQuerySet(models.QuerySet):
    def current(self) -> QuoteQuerySet:
        """The latest version of each quote."""
        return self.exclude(state=QuoteState.SUPERSEDED).filter(replaced_by__isnull=True)


class Quote(models.Model):
    number = models.CharField("numéro", max_length=20, help_text="D2026-0042 : année et rang dans l'année.")
    year = models.PositiveSmallIntegerField("année")
    rank = models.PositiveIntegerField("rang dans l'année")
    version = models.PositiveSmallIntegerField("version", default=1)
    previous = models.OneToOneField(
        "self", models.PROTECT, null=True, blank=True, related_name="replaced_by", verbose_name="version précédente"
    )
    contract = models.ForeignKey(Contract, models.PROTECT, related_name="quotes", verbose_name="marché")
    asset = models.ForeignKey(
        Asset, models.PROTECT, null=True, blank=True, related_name="quotes", verbose_name="patrimoine"
    )
    service_code = models.ForeignKey(
        ServiceCode, models.PROTECT, null=True, blank=True, related_name="quotes", verbose_name="code prestation"
    )
    order = models.ForeignKey(
        "orders.Order",
        models.PROTECT,
        null=True,
        blank=True,
        related_name="quotes",
        verbose_name="commande parente",
        help_text="Pour un devis de travaux complémentaires (CCAG-MI §53).",
    )
    report = models.ForeignKey(
        "orders.InterventionReport",
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="quotes",
        verbose_name="rapport d'origine",
    )
    title = models.CharField("objet", max_length=200)
    works = models.TextField("travaux proposés", blank=True)
    valid_until = models.DateField("valable jusqu'au")
    works_wait = models.BooleanField(
        "les travaux attendent ce devis",
        default=False,
        help_text="La commande parente est suspendue (devis nécessaire) jusqu'à la réponse.",
    )
    state = models.CharField("état", max_length=20, choices=QuoteState, default=QuoteState.DRAFT, db_index=True)
    total_excl_vat = models.DecimalField("total HT (€)", max_digits=14, decimal_places=2, default=Decimal("0.00"))
    total_vat = models.DecimalField("TVA (€)", max_digits=14, decimal_places=2, default=Decimal("0.00"))
    total_incl_vat = models.DecimalField("total TTC (€)", max_digits=14, decimal_places=2, default=Decimal("0.00"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+", verbose_name="créé par"
    )
    created_at = models.DateTimeField("créé le", default=timezone.now)
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+", verbose_name="envoyé par"
    )
    sent_at = models.DateTimeField("envoyé le", null=True, blank=True)
    answer_due_on = models.DateField("réponse attendue au plus tard le", null=True, blank=True)
    decided_at = models.DateTimeField("réponse reçue le", null=True, blank=True)
    cancel_reason = models.TextField("motif d'annulation", blank=True)
    pdf_status = models.CharField("état du PDF", max_length=20, choices=PdfStatus, default=PdfStatus.NONE)
    pdf_file = models.FileField("PDF", upload_to=pdf_path, blank=True, max_length=255)
    pdf_size = models.PositiveBigIntegerField("taille du PDF (octets)", default=0)
    pdf_sha256 = models.CharField("empreinte SHA-256 du PDF", max_length=64, blank=True)
    pdf_error = models.TextField("erreur de production du PDF", blank=True)
    pdf_requested_at = models.DateTimeField("PDF demandé le", null=True, blank=True)

    objects = QuoteQuerySet.as_manager()

    class Meta:
        verbose_name = "devis"
        verbose_name_plural = "devis"
        ordering = ["-year", "-rank", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["number", "version"], name="%(app_label)s_%(class)s_unique_version"),
            models.UniqueConstraint(
                fields=["year", "rank"], condition=Q(version=1), name="%(app_label)s_%(class)s_unique_rank"
            ),
            models.CheckConstraint(
                condition=Q(state__in=QuoteState.values), name="%(app_label)s_%(class)s_state_valid"
            ),
            models.CheckConstraint(condition=Q(version__gte=1), name="%(app_label)s_%(class)s_version_positive"),
            models.CheckConstraint(
                condition=Q(version=1, previous__isnull=True) | Q(version__gt=1, previous__isnull=False),
                name="%(app_label)s_%(class)s_version_has_previous",
            ),
            # Incl. VAT = excl. VAT + VAT (within a thousandth: SQLite adds decimals as floats).
            models.CheckConstraint(
                condition=Q(total_excl_vat__gte=0)
                & Q(total_vat__gte=0)
                & Q(total_incl_vat__gte=F("total_excl_vat") + F("total_vat") - Value(Decimal("0.001")))
                & Q(total_incl_vat__lte=F("total_excl_vat") + F("total_vat") + Value(Decimal("0.001"))),
                name="%(app_label)s_%(class)s_totals_add_up",
            ),
            models.CheckConstraint(
                condition=Q(state="draft")
                | Q(sent_at__isnull=False, answer_due_on__isnull=False)
                | Q(state="cancelled"),
                name="%(app_label)s_%(class)s_sent_has_date",
            ),
            models.CheckConstraint(
                condition=~Q(state="cancelled") | ~Q(cancel_reason=""),
                name="%(app_label)s_%(class)s_cancelled_has_reason",
            ),
            models.CheckConstraint(
                condition=~Q(state__in=["accepted", "refused"]) | Q(decided_at__isnull=False),
                name="%(app_label)s_%(class)s_decision_has_date",
            ),
            models.CheckConstraint(
                condition=~Q(pdf_status="done") | ~Q(pdf_file=""), name="%(app_label)s_%(class)s_pdf_done_has_file"
            ),
        ]

    def __str__(self) -> str:
        return self.display_number

    @property
    def display_number(self) -> str:
        return self.number if self.version == 1 else f"{self.number} v{self.version}"

    @property
    def is_supplementary(self) -> bool:
        return self.order_id is not None

    @property
    def is_editable(self) -> bool:
        return self.state in EDITABLE_STATES

    @property
    def is_awaiting(self) -> bool:
        return self.state in AWAITING_STATES

    @property
    def pdf_in_progress(self) -> bool:
        return self.pdf_status == PdfStatus.PENDING

    @property
    def pdf_stalled(self) -> bool:
        return (
            self.pdf_in_progress
            and self.pdf_requested_at is not None
            and timezone.now() - self.pdf_requested_at > PDF_STALLED_AFTER
        )

    def pricing_lines(self) -> list[pricing.Line]:
        return [line.pricing_line() for line in self.lines.all()]

    def totals(self) -> pricing.Totals:
        return pricing.totals(self.pricing_lines())


PDF_STALLED_AFTER = timedelta(minutes=10)


class QuoteLine(models.Model):
    """A line from the contract's price schedule (BPU), or out of schedule
    (marked, with the reason why it has no schedule price)."""

    quote = models.ForeignKey(Quote, models.CASCADE, related_name="lines", verbose_name="devis")
    position = models.PositiveSmallIntegerField("position", default=0)
    price_item = models.ForeignKey(
        PriceItem, models.PROTECT, null=True, blank=True, related_name="+", verbose_name="prix du bordereau"
    )
    code = models.CharField("code", max_length=50, blank=True)
    label = models.CharField("libellé", max_length=300)
    unit = models.CharField("unité", max_length=20, default="u")
    quantity = models.DecimalField(
        "quantité", max_digits=12, decimal_places=2, default=Decimal(1), validators=[MinValueValidator(Decimal("0.01"))]
    )
    unit_price = models.DecimalField(
        "prix unitaire HT (€)", max_digits=12, decimal_places=2, validators=[MinValueValidator(Decimal(0))]
    )
    vat_rate = models.DecimalField("taux de TVA (%)", max_digits=5, decimal_places=2, choices=VAT_RATES)
    out_of_schedule = models.BooleanField("hors bordereau", default=False)
    justification = models.TextField("justification du prix hors bordereau", blank=True)
    # The report's supply this line quotes (quotes.services.quote_materials),
    # carried over to the quote's next versions: what gives it back when the
    # quote will not be executed (quotes.supplies).
    material = models.ForeignKey(
        "orders.ReportMaterial",
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="quote_lines",
        verbose_name="fourniture du rapport",
    )

    class Meta:
        verbose_name = "ligne de devis"
        verbose_name_plural = "lignes de devis"
        ordering = ["quote", "position", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="%(app_label)s_%(class)s_quantity_positive"),
            models.CheckConstraint(condition=Q(unit_price__gte=0), name="%(app_label)s_%(class)s_price_positive"),
            models.CheckConstraint(
                condition=Q(vat_rate__gte=0) & Q(vat_rate__lte=100), name="%(app_label)s_%(class)s_vat_rate_range"
            ),
            # A schedule line names its price; an out-of-schedule line says why it has none.
            models.CheckConstraint(
                condition=Q(out_of_schedule=False, price_item__isnull=False)
                | (Q(out_of_schedule=True, price_item__isnull=True) & ~Q(justification="")),
                name="%(app_label)s_%(class)s_schedule_or_justified",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code or 'HB'} – {self.label}"

    def pricing_line(self) -> pricing.Line:
        return pricing.Line(quantity=self.quantity, unit_price=self.unit_price, vat_rate=self.vat_rate)

    @property
    def amount_excl_vat(self) -> Decimal:
        return pricing.line_net_amount(self.pricing_line())


class PartSupplier(models.TextChoices):
    CONTRACTOR = "contractor", "Fournies par le titulaire"
    BUYER = "buyer", "Fournies par l'acheteur"


class QuotePart(models.Model):
    """A part to replace (CCAG-MI §52): supplied by the contractor or by the buyer."""

    quote = models.ForeignKey(Quote, models.CASCADE, related_name="parts", verbose_name="devis")
    supplied_by = models.CharField("fourniture", max_length=20, choices=PartSupplier)
    position = models.PositiveSmallIntegerField("position", default=0)
    description = models.CharField("pièce", max_length=300)
    quantity = models.DecimalField(
        "quantité", max_digits=10, decimal_places=2, default=Decimal(1), validators=[MinValueValidator(Decimal("0.01"))]
    )

    class Meta:
        verbose_name = "pièce à remplacer"
        verbose_name_plural = "pièces à remplacer"
        ordering = ["quote", "supplied_by", "position", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(supplied_by__in=PartSupplier.values), name="%(app_label)s_%(class)s_supplier_valid"
            ),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="%(app_label)s_%(class)s_quantity_positive"),
            models.CheckConstraint(condition=~Q(description=""), name="%(app_label)s_%(class)s_has_description"),
        ]

    def __str__(self) -> str:
        return self.description


class QuoteEvent(models.Model):
    """One entry of a quote's history. Append-only."""

    quote = models.ForeignKey(Quote, models.CASCADE, related_name="events", verbose_name="devis")
    at = models.DateTimeField("date", default=timezone.now, db_index=True)
    kind = models.CharField("nature", max_length=30)
    label = models.CharField("libellé", max_length=300)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+", verbose_name="auteur"
    )
    data = models.JSONField("données", default=dict, blank=True)

    class Meta:
        verbose_name = "événement de devis"
        verbose_name_plural = "historique des devis"
        ordering = ["quote", "at", "pk"]

    def __str__(self) -> str:
        return self.label

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise ValueError("L'historique d'un devis ne se modifie pas.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("L'historique d'un devis ne se supprime pas.")
