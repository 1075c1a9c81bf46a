"""The CCAG's paperwork between the contractor and the buyer about an order:
observations and extension requests (CCAG-MI §3.7.2, §14.3), the buyer's
suspensions and *sursis* (§24, §30.5), the admission of the works (§33-34), and
the letters that carry the contractor's side with proof of their dates.

Apart from `orders.models` so that neither grows past a screenful of screens;
`orders.models` imports them, so `from orders.models import ...` finds them.
Nothing here changes a row: `orders.remedies`, `orders.buyer` and
`orders.letters` do.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from orders.formatting import format_deadline

# --- Observations and extensions of the execution period (CCAG-MI §3.7.2, §14.3) ---
# Written by `orders.remedies.raise_observation`, `request_extension` and
# `answer_extension`, which check the contractual deadlines (orders.deadlines).


class Observation(models.Model):
    """Observations the contractor sends the buyer on an order's prescriptions,
    within 15 days of its receipt (§3.7.2); the order is executed all the same."""

    order = models.ForeignKey("orders.Order", models.CASCADE, related_name="observations", verbose_name="commande")
    text = models.TextField("observations")
    made_at = models.DateTimeField("formulées le")
    made_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+", verbose_name="par"
    )
    event = models.OneToOneField(
        "orders.OrderEvent", models.SET_NULL, null=True, blank=True, related_name="+", verbose_name="événement"
    )

    class Meta:
        verbose_name = "observation sur une commande"
        verbose_name_plural = "observations sur les commandes"
        ordering = ["order", "made_at", "pk"]
        constraints = [
            models.CheckConstraint(condition=~Q(text=""), name="%(app_label)s_%(class)s_has_text"),
        ]

    def __str__(self) -> str:
        return f"Observations sur {self.order} du {timezone.localtime(self.made_at):%d/%m/%Y}"


class ExtensionDecision(models.TextChoices):
    PENDING = "pending", "En attente de la réponse du gestionnaire"
    GRANTED = "granted", "Accordée"
    REFUSED = "refused", "Refusée"


class ExtensionRequest(models.Model):
    """A request to extend an order's execution period (§14.3): its cause, when
    the cause arose and how many days are asked; then the buyer's answer. A
    granted extension moves the order's due date."""

    order = models.ForeignKey(
        "orders.Order", models.CASCADE, related_name="extension_requests", verbose_name="commande"
    )
    cause = models.CharField("cause", max_length=200)
    cause_date = models.DateField("cause apparue le")
    days = models.PositiveSmallIntegerField("prolongation demandée (jours)")
    requested_at = models.DateTimeField("demandée le")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+", verbose_name="demandée par"
    )
    due_at_before = models.DateTimeField("échéance au moment de la demande")
    decision = models.CharField(
        "réponse", max_length=20, choices=ExtensionDecision, default=ExtensionDecision.PENDING, db_index=True
    )
    granted_days = models.PositiveSmallIntegerField("prolongation accordée (jours)", null=True, blank=True)
    answered_at = models.DateTimeField("réponse du gestionnaire le", null=True, blank=True)
    answer_note = models.CharField("précision sur la réponse", max_length=200, blank=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name="réponse enregistrée par",
    )
    due_at_after = models.DateTimeField("nouvelle échéance", null=True, blank=True)

    class Meta:
        verbose_name = "demande de prolongation de délai"
        verbose_name_plural = "demandes de prolongation de délai"
        ordering = ["order", "requested_at", "pk"]
        constraints = [
            models.CheckConstraint(condition=~Q(cause=""), name="%(app_label)s_%(class)s_has_cause"),
            models.CheckConstraint(condition=Q(days__gt=0), name="%(app_label)s_%(class)s_days_positive"),
            models.CheckConstraint(
                condition=Q(decision__in=ExtensionDecision.values), name="%(app_label)s_%(class)s_decision_valid"
            ),
            # Pending: no answer yet; granted: how long, when, and the new due date; refused: when, nothing granted.
            models.CheckConstraint(
                condition=(
                    Q(decision="pending", answered_at__isnull=True, granted_days__isnull=True, due_at_after=None)
                    | Q(
                        decision="granted",
                        answered_at__isnull=False,
                        granted_days__gt=0,
                        granted_days__lte=F("days"),
                        due_at_after__isnull=False,
                    )
                    | Q(decision="refused", answered_at__isnull=False, granted_days__isnull=True, due_at_after=None)
                ),
                name="%(app_label)s_%(class)s_answer_consistent",
            ),
        ]

    def __str__(self) -> str:
        return f"Prolongation de {self.days} j demandée pour {self.order}"

    @property
    def is_pending(self) -> bool:
        return self.decision == ExtensionDecision.PENDING

    @property
    def due_after_label(self) -> str:
        return format_deadline(self.due_at_after) if self.due_at_after else "—"


# --- The buyer's decisions: suspensions and *sursis*, admission (CCAG-MI §24, §30.5, §33-34) ---
# Written by `orders.buyer`; `orders.admission` reads them.


class StopKind(models.TextChoices):
    SUSPENSION = "suspension", "Suspension prononcée par l'acheteur (art. 24)"
    SURSIS = "sursis", "Sursis accordé par l'acheteur (art. 30.5)"


class BuyerStop(models.Model):
    """A suspension of the services (§24) or a *sursis* (§30.5) the buyer
    decided: while it lasts, the execution period's clock stops; when it ends,
    the due date moves by its length (§30.6 "pour un temps égal à sa durée")."""

    order = models.ForeignKey("orders.Order", models.CASCADE, related_name="buyer_stops", verbose_name="commande")
    kind = models.CharField("nature", max_length=20, choices=StopKind)
    starts_on = models.DateField("du")
    ends_on = models.DateField("au", null=True, blank=True, help_text="Vide tant qu'elle dure.")
    reason = models.CharField("motif", max_length=200)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+", verbose_name="par"
    )
    recorded_at = models.DateTimeField("enregistrée le", default=timezone.now)
    due_at_before = models.DateTimeField("échéance avant", null=True, blank=True)
    due_at_after = models.DateTimeField("échéance après", null=True, blank=True)

    class Meta:
        verbose_name = "suspension ou sursis de l'acheteur"
        verbose_name_plural = "suspensions et sursis de l'acheteur"
        ordering = ["order", "starts_on", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=StopKind.values), name="%(app_label)s_%(class)s_kind_valid"),
            models.CheckConstraint(condition=~Q(reason=""), name="%(app_label)s_%(class)s_has_reason"),
            models.CheckConstraint(
                condition=Q(ends_on__isnull=True) | Q(ends_on__gte=F("starts_on")),
                name="%(app_label)s_%(class)s_ends_after_start",
            ),
            # One stop at a time per order: the clock cannot be stopped twice.
            models.UniqueConstraint(
                fields=["order"], condition=Q(ends_on__isnull=True), name="%(app_label)s_%(class)s_one_open"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} : {self.order}"

    @property
    def days(self) -> int | None:
        return (self.ends_on - self.starts_on).days if self.ends_on else None


class AdmissionKind(models.TextChoices):
    PRESENTED = "presented", "Prestations présentées à nouveau"
    ADMITTED = "admitted", "Admission"
    ADJOURNED = "adjourned", "Ajournement"
    ADJOURNMENT_ACCEPTED = "adjournment_accepted", "Ajournement accepté par le titulaire"
    REJECTED = "rejected", "Rejet"


class AdmissionSource(models.TextChoices):
    PLATFORM = "platform", "Plateforme du client"
    OFFICE = "office", "Saisie du bureau"


class AdmissionStep(models.Model):
    """A step of the admission of an order's works after they ended (§33-34):
    the buyer's decision (admission, adjournment, rejection) on the date it was
    notified, or the contractor's (accepting an adjournment, presenting again).
    Tacit admission is never written: `orders.admission` infers it from the
    silence past the verification period."""

    order = models.ForeignKey("orders.Order", models.CASCADE, related_name="admission_steps", verbose_name="commande")
    kind = models.CharField("étape", max_length=30, choices=AdmissionKind)
    on = models.DateField("le", help_text="Date de notification de la décision, ou de la présentation.")
    source = models.CharField("origine", max_length=20, choices=AdmissionSource, default=AdmissionSource.OFFICE)
    note = models.CharField("précision", max_length=200, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+", verbose_name="par"
    )
    recorded_at = models.DateTimeField("enregistrée le", default=timezone.now)

    class Meta:
        verbose_name = "étape de l'admission"
        verbose_name_plural = "étapes de l'admission"
        ordering = ["order", "on", "recorded_at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=AdmissionKind.values), name="%(app_label)s_%(class)s_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(source__in=AdmissionSource.values), name="%(app_label)s_%(class)s_source_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} le {self.on:%d/%m/%Y} : {self.order}"


# --- Letters to the buyer, with proof of their dates (issue 11) -------------------------


def letter_path(letter: Letter, filename: str) -> str:
    return f"letters/{timezone.now():%Y/%m}/{secrets.token_urlsafe(18)}.pdf"


class LetterKind(models.TextChoices):
    OBSERVATIONS = "observations", "Observations sur le bon de commande (CCAG-MI art. 3.7.2)"
    EXTENSION = "extension", "Demande de prolongation du délai d'exécution (CCAG-MI art. 14.3)"
    PENALTY_ANSWER = "penalty_answer", "Observations sur les pénalités envisagées (CCAG-MI art. 15.1)"


class LetterPdf(models.TextChoices):
    PENDING = "pending", "En cours de production"
    DONE = "done", "Produit"
    FAILED = "failed", "Échec"


class Letter(models.Model):
    """A letter to the buyer's representative (CCAG-MI §3.3) carrying the
    contractor's observations, an extension request or its answer to a penalty
    notice, as a French PDF; with the date it was sent and the date the buyer
    received it, typed by the office from the acknowledgement, since the
    platform's log proves neither. Its text is kept as written: the PDF is made
    from it, in the background (`orders.tasks.render_letter_pdf`)."""

    order = models.ForeignKey("orders.Order", models.CASCADE, related_name="letters", verbose_name="commande")
    kind = models.CharField("objet", max_length=20, choices=LetterKind)
    addressee = models.CharField("destinataire", max_length=200, help_text="Le représentant de l'acheteur.")
    body = models.TextField("texte")
    written_at = models.DateTimeField("rédigé le", default=timezone.now)
    written_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+", verbose_name="par"
    )
    observation = models.OneToOneField(
        Observation, models.SET_NULL, null=True, blank=True, related_name="letter", verbose_name="observations"
    )
    extension = models.OneToOneField(
        ExtensionRequest, models.SET_NULL, null=True, blank=True, related_name="letter", verbose_name="prolongation"
    )
    notice_received_on = models.DateField(
        "invitation de l'acheteur reçue le",
        null=True,
        blank=True,
        help_text="Pour une réponse à un projet de pénalités : 15 jours pour présenter ses observations.",
    )
    pdf = models.FileField("PDF", upload_to=letter_path, blank=True)
    pdf_status = models.CharField("PDF", max_length=20, choices=LetterPdf, default=LetterPdf.PENDING)
    sent_on = models.DateField("envoyé le", null=True, blank=True)
    received_on = models.DateField("reçu par l'acheteur le", null=True, blank=True)

    class Meta:
        verbose_name = "courrier à l'acheteur"
        verbose_name_plural = "courriers à l'acheteur"
        ordering = ["order", "written_at", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=LetterKind.values), name="%(app_label)s_%(class)s_kind_valid"),
            models.CheckConstraint(condition=~Q(body=""), name="%(app_label)s_%(class)s_has_body"),
            models.CheckConstraint(
                condition=Q(received_on__isnull=True) | Q(sent_on__isnull=False, received_on__gte=F("sent_on")),
                name="%(app_label)s_%(class)s_received_after_sent",
            ),
            models.CheckConstraint(
                condition=~Q(kind="penalty_answer") | Q(notice_received_on__isnull=False),
                name="%(app_label)s_%(class)s_penalty_answer_has_notice",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} : {self.order}"

    @property
    def subject(self) -> str:
        return str(self.get_kind_display())
