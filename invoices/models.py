"""Invoices and credit notes (*factures*, *avoirs*) to public buyers, and
what follows them until paid.

Nothing here changes an invoice: `invoices.services` does, and only it. An
issued invoice (or credit note) is frozen: `save()` and `delete()` refuse it,
and so does the database (triggers of migration 0002), whoever writes.
"""

from __future__ import annotations

import secrets
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from orders.models import Order
from portal.models import BillingAccount, Company, Contract
from portal.relay.models import Connection


class Frozen(Exception):
    """An issued invoice was about to be changed."""


def validate_iban(value: str) -> None:
    """ISO 13616: country, check digits, then the account; mod 97 of the
    rearranged number is 1."""
    iban = value.replace(" ", "").upper()
    if not (15 <= len(iban) <= 34) or not iban[:2].isalpha() or not iban[2:4].isdigit() or not iban.isalnum():
        raise ValidationError("Cet IBAN n'a pas la bonne forme (FR76 suivi de 23 caractères pour la France).")
    digits = "".join(str(int(char, 36)) for char in iban[4:] + iban[:4])
    if int(digits) % 97 != 1:
        raise ValidationError("Cet IBAN n'est pas valide (clé de contrôle incorrecte).")


bic_validator = RegexValidator(
    r"^[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?$", "Un BIC compte 8 ou 11 caractères, par exemple CCBPFRPPNAN."
)


class IssuerDetails(models.Model):
    """What an invoice says of the contractor besides `portal.Company`: the
    legal mentions (legal form, capital, RCS or RM) and the bank account."""

    company = models.OneToOneField(
        Company, models.CASCADE, related_name="invoicing", verbose_name="entreprise", primary_key=True
    )
    legal_form = models.CharField("forme juridique", max_length=50, blank=True, help_text="SARL, SAS, EURL…")
    share_capital = models.DecimalField("capital social (€)", max_digits=14, decimal_places=2, null=True, blank=True)
    registration = models.CharField(
        "immatriculation RCS ou RM", max_length=100, blank=True, help_text="Par exemple : RCS Nancy 823 456 789"
    )
    iban = models.CharField("IBAN", max_length=34, blank=True, validators=[validate_iban])
    bic = models.CharField("BIC", max_length=11, blank=True, validators=[bic_validator])

    class Meta:
        verbose_name = "mentions de facturation de l'entreprise"
        verbose_name_plural = "mentions de facturation de l'entreprise"

    def __str__(self) -> str:
        return str(self.company)

    def clean(self) -> None:
        self.iban = self.iban.replace(" ", "").upper()
        self.bic = self.bic.replace(" ", "").upper()


class ContractInvoicing(models.Model):
    """How a contract's orders are invoiced: the public buyer's commitment
    number (*numéro d'engagement*, EJ) and the payment period."""

    contract = models.OneToOneField(
        Contract, models.CASCADE, related_name="invoicing", verbose_name="marché", primary_key=True
    )
    public_buyer = models.BooleanField(
        "acheteur public (Chorus Pro)",
        default=True,
        help_text="Les factures portent alors le code service et le numéro d'engagement (CCAP §10.3).",
    )
    commitment_number = models.CharField(
        "numéro d'engagement (EJ)", max_length=30, blank=True, help_text="Fourni à la notification, ex. 4500123456."
    )
    payment_days = models.PositiveSmallIntegerField("délai global de paiement (jours)", default=30)

    class Meta:
        verbose_name = "facturation du marché"
        verbose_name_plural = "facturation des marchés"

    def __str__(self) -> str:
        return str(self.contract)


class ConnectionInvoicing(models.Model):
    """Whether a client's platform receives the invoice PDF (annex item D11,
    optional), and under which document type and family."""

    connection = models.OneToOneField(
        Connection, models.CASCADE, related_name="invoicing", verbose_name="connexion", primary_key=True
    )
    share_pdf = models.BooleanField("transmettre le PDF des factures", default=True)
    document_type = models.CharField("type de document", max_length=100, default="facture")
    document_family = models.CharField("famille de document", max_length=100, default="factures")

    class Meta:
        verbose_name = "partage des factures"
        verbose_name_plural = "partage des factures"

    def __str__(self) -> str:
        return str(self.connection)


class Kind(models.TextChoices):
    INVOICE = "invoice", "Facture"
    CREDIT_NOTE = "credit_note", "Avoir"


class InvoiceState(models.TextChoices):
    DRAFT = "draft", "Brouillon"
    ISSUED = "issued", "Émise"


class InvoiceNumber(models.Model):
    """The last number given in a series and year. The next is taken under this
    row's lock inside the issuing transaction: a rolled-back issue gives it back,
    so numbers have neither gap nor duplicate."""

    series = models.CharField("série", max_length=5)
    year = models.PositiveSmallIntegerField("année")
    last = models.PositiveIntegerField("dernier numéro", default=0)

    class Meta:
        verbose_name = "numérotation des factures"
        verbose_name_plural = "numérotation des factures"
        constraints = [
            models.UniqueConstraint(fields=["series", "year"], name="%(app_label)s_%(class)s_unique_series_year"),
        ]

    def __str__(self) -> str:
        return f"{self.series}{self.year} : {self.last}"


def pdf_path(invoice: Invoice, filename: str) -> str:
    return f"invoices/{timezone.now():%Y/%m}/{secrets.token_urlsafe(18)}.pdf"


class Invoice(models.Model):
    kind = models.CharField("nature", max_length=20, choices=Kind, default=Kind.INVOICE)
    state = models.CharField("état", max_length=10, choices=InvoiceState, default=InvoiceState.DRAFT)
    number = models.CharField("numéro", max_length=20, blank=True, help_text="F2026-0042 ; attribué à l'émission.")
    issue_date = models.DateField("date d'émission", null=True, blank=True)
    contract = models.ForeignKey(Contract, models.PROTECT, related_name="+", verbose_name="marché")
    billing_account = models.ForeignKey(
        BillingAccount, models.PROTECT, related_name="invoices", verbose_name="compte de facturation"
    )
    orders = models.ManyToManyField(Order, related_name="invoices", verbose_name="commandes", blank=True)
    credited = models.ForeignKey(
        "self", models.PROTECT, null=True, blank=True, related_name="credit_notes", verbose_name="facture annulée"
    )
    reason = models.CharField("motif", max_length=300, blank=True)
    # The public buyer's references (CCAP §10.3), copied at issue.
    service_code = models.CharField("code service", max_length=100, blank=True)
    commitment_number = models.CharField("numéro d'engagement", max_length=30, blank=True)
    buyer_siret = models.CharField("SIRET de l'acheteur", max_length=14, blank=True)
    order_numbers = models.CharField("bons de commande", max_length=500, blank=True)
    execution_date = models.DateField("date d'exécution", null=True, blank=True)
    payment_days = models.PositiveSmallIntegerField("délai de paiement (jours)", default=30)
    # Everything else the document says of both parties, as issued.
    parties = models.JSONField("émetteur et destinataire", default=dict, blank=True)
    total_excl_vat = models.DecimalField("total HT", max_digits=14, decimal_places=2, default=Decimal(0))
    total_vat = models.DecimalField("total TVA", max_digits=14, decimal_places=2, default=Decimal(0))
    total_incl_vat = models.DecimalField("total TTC", max_digits=14, decimal_places=2, default=Decimal(0))
    vat_breakdown = models.JSONField("ventilation de la TVA", default=list, blank=True)
    pdf_file = models.FileField("PDF Factur-X", upload_to=pdf_path, blank=True)
    pdf_sha256 = models.CharField(max_length=64, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+", verbose_name="créée par"
    )
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+", verbose_name="émise par"
    )
    created_at = models.DateTimeField("créée le", default=timezone.now)
    issued_at = models.DateTimeField("émise le", null=True, blank=True)

    class Meta:
        verbose_name = "facture"
        ordering = ["-issue_date", "-number", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["number"], condition=~Q(number=""), name="%(app_label)s_%(class)s_unique_number"
            ),
            models.CheckConstraint(condition=Q(kind__in=Kind.values), name="%(app_label)s_%(class)s_kind_valid"),
            models.CheckConstraint(
                condition=Q(state__in=InvoiceState.values), name="%(app_label)s_%(class)s_state_valid"
            ),
            # A draft has no number; an issued invoice has its number, date and file.
            models.CheckConstraint(
                condition=(Q(state="draft", number="", issue_date__isnull=True))
                | (Q(state="issued", issue_date__isnull=False) & ~Q(number="") & ~Q(pdf_file="")),
                name="%(app_label)s_%(class)s_number_at_issue",
            ),
            models.CheckConstraint(
                condition=Q(kind="invoice", credited__isnull=True) | Q(kind="credit_note", credited__isnull=False),
                name="%(app_label)s_%(class)s_credit_note_refers",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.number or '(brouillon)'}"

    def save(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        if self._stored_state() == InvoiceState.ISSUED:
            raise Frozen(f"{self} est émise : elle ne se modifie plus (faites un avoir).")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if self._stored_state() == InvoiceState.ISSUED:
            raise Frozen(f"{self} est émise : elle ne se supprime pas (faites un avoir).")
        return super().delete(*args, **kwargs)

    @property
    def is_issued(self) -> bool:
        return self.state == InvoiceState.ISSUED

    @property
    def is_credit_note(self) -> bool:
        return self.kind == Kind.CREDIT_NOTE

    def _stored_state(self) -> str | None:
        if self.pk is None:
            return None
        return Invoice.objects.filter(pk=self.pk).values_list("state", flat=True).first()


class InvoiceLine(models.Model):
    """A line copied from an order's done line (or, on a credit note, from the
    invoice it credits): later edits to the order never change it."""

    invoice = models.ForeignKey(Invoice, models.CASCADE, related_name="lines", verbose_name="facture")
    position = models.PositiveSmallIntegerField("position", default=0)
    order_reference = models.CharField("bon de commande", max_length=100, blank=True)
    reference = models.CharField("référence", max_length=100, blank=True)
    label = models.CharField("désignation", max_length=300)
    quantity = models.DecimalField("quantité", max_digits=10, decimal_places=2)
    unit = models.CharField("unité", max_length=20, default="u")
    unit_price = models.DecimalField("prix unitaire HT (€)", max_digits=12, decimal_places=2)
    vat_rate = models.DecimalField("taux de TVA (%)", max_digits=5, decimal_places=2)
    amount_excl_vat = models.DecimalField("montant HT", max_digits=14, decimal_places=2, default=Decimal(0))

    class Meta:
        verbose_name = "ligne de facture"
        verbose_name_plural = "lignes de facture"
        ordering = ["invoice", "position", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="%(app_label)s_%(class)s_quantity_positive"),
            models.CheckConstraint(condition=Q(unit_price__gte=0), name="%(app_label)s_%(class)s_price_positive"),
        ]

    def __str__(self) -> str:
        return self.label

    def save(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        if Invoice.objects.filter(pk=self.invoice_id, state=InvoiceState.ISSUED).exists():
            raise Frozen("Les lignes d'une facture émise ne se modifient plus.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if Invoice.objects.filter(pk=self.invoice_id, state=InvoiceState.ISSUED).exists():
            raise Frozen("Les lignes d'une facture émise ne se suppriment pas.")
        return super().delete(*args, **kwargs)


class Receipt(models.Model):
    """When the buyer received the invoice: the 30 days start there (CCAP §10.4)."""

    invoice = models.OneToOneField(
        Invoice, models.PROTECT, related_name="receipt", verbose_name="facture", primary_key=True
    )
    received_on = models.DateField("reçue par l'acheteur le")
    source = models.CharField("source", max_length=100, default="saisie", help_text="Saisie, Chorus Pro…")
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+", verbose_name="saisie par"
    )

    class Meta:
        verbose_name = "réception par l'acheteur"
        verbose_name_plural = "réceptions par l'acheteur"

    def __str__(self) -> str:
        return f"{self.invoice} reçue le {self.received_on:%d/%m/%Y}"


class Payment(models.Model):
    invoice = models.ForeignKey(Invoice, models.PROTECT, related_name="payments", verbose_name="facture")
    paid_on = models.DateField("payé le")
    amount = models.DecimalField(
        "montant (€)", max_digits=14, decimal_places=2, validators=[MinValueValidator(Decimal("0.01"))]
    )
    note = models.CharField("note", max_length=200, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+", verbose_name="saisi par"
    )
    recorded_at = models.DateTimeField("saisi le", default=timezone.now)

    class Meta:
        verbose_name = "paiement"
        ordering = ["invoice", "paid_on", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="%(app_label)s_%(class)s_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.amount} € le {self.paid_on:%d/%m/%Y}"


class EcbRate(models.Model):
    """The ECB's main refinancing operations rate from a date (office-maintained)."""

    valid_from = models.DateField("en vigueur depuis le", unique=True)
    rate = models.DecimalField("taux (%)", max_digits=5, decimal_places=2)

    class Meta:
        verbose_name = "taux de refinancement BCE"
        verbose_name_plural = "taux de refinancement BCE"
        ordering = ["-valid_from"]

    def __str__(self) -> str:
        return f"{self.rate} % depuis le {self.valid_from:%d/%m/%Y}"


class BatchState(models.TextChoices):
    RUNNING = "running", "En cours"
    DONE = "done", "Terminé"


class IssueBatch(models.Model):
    """Drafts issued together by a background task, for the progress display."""

    invoice_ids = models.JSONField("factures", default=list)
    done = models.PositiveIntegerField("émises", default=0)
    failures = models.JSONField("échecs", default=list, blank=True)
    state = models.CharField("état", max_length=10, choices=BatchState, default=BatchState.RUNNING)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+", verbose_name="lancé par"
    )
    created_at = models.DateTimeField("lancé le", default=timezone.now)

    class Meta:
        verbose_name = "émission groupée"
        verbose_name_plural = "émissions groupées"

    def __str__(self) -> str:
        return f"Émission de {self.total} factures le {self.created_at:%d/%m/%Y %H:%M}"

    @property
    def total(self) -> int:
        return len(self.invoice_ids)

    @property
    def percent(self) -> int:
        return 100 if not self.total else round(100 * (self.done + len(self.failures)) / self.total)
