"""Documents and intervention reports: the files attached to an order and
shared with the client's platform, and what the technician wrote on site (its
photos, its supplies from the price schedule, the occupant's signature).

Apart from `orders.models` (which imports them, so that `from orders.models
import ...` finds them, the upload paths the migrations name included) so that
neither grows past a screenful. Nothing here changes a row: `orders.reports`,
`orders.documents` and `orders.materials` do.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from orders.photo_models import PhotoKind
from portal.models import PriceItem


def document_path(document: Document, filename: str) -> str:
    """`documents/2026/11/<random>.pdf`: a name nobody can guess, whatever the
    person called the file (the name they gave is kept in `file_name`)."""
    suffix = Path(filename).suffix.lower()[:10] or ".bin"
    return f"documents/{timezone.now():%Y/%m}/{secrets.token_urlsafe(18)}{suffix}"


def photo_path(photo: ReportPhoto, filename: str) -> str:
    return f"reports/photos/{timezone.now():%Y/%m}/{secrets.token_urlsafe(18)}.jpg"


def signature_path(report: InterventionReport, filename: str) -> str:
    return f"reports/signatures/{timezone.now():%Y/%m}/{secrets.token_urlsafe(18)}.png"


class DocumentKind(models.TextChoices):
    GENERATED_REPORT = "generated_report", "Rapport généré"
    UPLOADED_REPORT = "uploaded_report", "Rapport déposé"
    OTHER = "other", "Autre"


class Document(models.Model):
    """A file attached to an order and shared with the client's platform.

    The file lives in the media storage (never under the static files) and is
    served only by the `orders:document` view, to those who may see the order."""

    order = models.ForeignKey("orders.Order", models.CASCADE, related_name="documents", verbose_name="commande")
    kind = models.CharField("nature", max_length=20, choices=DocumentKind)
    title = models.CharField("titre", max_length=200)
    file = models.FileField("fichier", upload_to=document_path, max_length=255)
    file_name = models.CharField("nom du fichier", max_length=255, help_text="Le nom proposé au téléchargement.")
    mime = models.CharField("type MIME", max_length=100, default="application/pdf")
    size = models.PositiveBigIntegerField("taille (octets)")
    sha256 = models.CharField("empreinte SHA-256", max_length=64)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+", verbose_name="ajouté par"
    )
    created_at = models.DateTimeField("ajouté le", default=timezone.now)

    class Meta:
        verbose_name = "document"
        verbose_name_plural = "documents"
        ordering = ["order", "created_at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=DocumentKind.values), name="%(app_label)s_%(class)s_kind_valid"
            ),
            models.CheckConstraint(condition=~Q(title=""), name="%(app_label)s_%(class)s_has_title"),
        ]

    def __str__(self) -> str:
        return self.title


class SignatureStatus(models.TextChoices):
    SIGNED = "signed", "Signé par l'occupant"
    ABSENT = "absent", "Occupant absent"
    REFUSED = "refused", "Signature refusée par l'occupant"


class PdfStatus(models.TextChoices):
    PENDING = "pending", "En attente"
    RENDERING = "rendering", "En cours de production"
    DONE = "done", "Produit"
    FAILED = "failed", "Échec"


class InterventionReport(models.Model):
    """What the technician wrote on site; its PDF is rendered in the background
    (`orders.tasks.render_report_pdf`) and attached to the order as a Document."""

    order = models.ForeignKey("orders.Order", models.CASCADE, related_name="reports", verbose_name="commande")
    works_done = models.TextField("travaux réalisés")
    observations = models.TextField("observations", blank=True)
    materials_used = models.TextField("matériel et fournitures utilisés", blank=True)
    time_on_site_minutes = models.PositiveIntegerField(
        "temps sur place (minutes)",
        null=True,
        blank=True,
        help_text="Saisi par le technicien ; vide, il est calculé d'après le début, la fin et les suspensions des "
        "travaux (orders.timing.time_on_site).",
    )
    signature_status = models.CharField("signature", max_length=20, choices=SignatureStatus)
    signature = models.FileField("signature de l'occupant (PNG)", upload_to=signature_path, blank=True)
    signatory_name = models.CharField("nom du signataire", max_length=200, blank=True)
    quote_needed = models.BooleanField("un devis est nécessaire", default=False)
    quote_description = models.TextField("travaux à chiffrer", blank=True)
    pdf_status = models.CharField(
        "état du PDF", max_length=20, choices=PdfStatus, default=PdfStatus.PENDING, db_index=True
    )
    pdf_error = models.TextField("erreur de production du PDF", blank=True)
    pdf_attempts = models.PositiveSmallIntegerField("essais de production", default=0)
    pdf_requested_at = models.DateTimeField("PDF demandé le", default=timezone.now)
    document = models.OneToOneField(
        Document, models.SET_NULL, null=True, blank=True, related_name="report", verbose_name="PDF"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+", verbose_name="saisi par"
    )
    created_at = models.DateTimeField("saisi le", default=timezone.now)

    class Meta:
        verbose_name = "rapport d'intervention"
        verbose_name_plural = "rapports d'intervention"
        ordering = ["order", "created_at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(signature_status__in=SignatureStatus.values),
                name="%(app_label)s_%(class)s_signature_status_valid",
            ),
            models.CheckConstraint(
                condition=(Q(signature_status="signed") & ~Q(signature=""))
                | (~Q(signature_status="signed") & Q(signature="")),
                name="%(app_label)s_%(class)s_signature_only_when_signed",
            ),
            models.CheckConstraint(
                condition=Q(quote_needed=False) | ~Q(quote_description=""),
                name="%(app_label)s_%(class)s_quote_has_description",
            ),
            models.CheckConstraint(
                condition=Q(pdf_status__in=PdfStatus.values), name="%(app_label)s_%(class)s_pdf_status_valid"
            ),
            models.CheckConstraint(
                condition=~Q(pdf_status="done") | Q(document__isnull=False),
                name="%(app_label)s_%(class)s_done_has_document",
            ),
        ]

    def __str__(self) -> str:
        return f"Rapport d'intervention {self.order} du {timezone.localtime(self.created_at):%d/%m/%Y}"

    @property
    def pdf_in_progress(self) -> bool:
        return self.pdf_status in (PdfStatus.PENDING, PdfStatus.RENDERING)

    @property
    def pdf_stalled(self) -> bool:
        """Waiting far longer than a render takes: the task was lost (a broker
        down when it was queued); a person may ask again."""
        return self.pdf_in_progress and timezone.now() - self.pdf_requested_at > PDF_STALLED_AFTER

    @property
    def can_retry_pdf(self) -> bool:
        return self.pdf_status == PdfStatus.FAILED or self.pdf_stalled


PDF_STALLED_AFTER = timedelta(minutes=10)


class ReportPhoto(models.Model):
    """A photo of the report, resized once at upload (at most 1600 px, JPEG,
    without any EXIF: no location)."""

    report = models.ForeignKey(InterventionReport, models.CASCADE, related_name="photos", verbose_name="rapport")
    kind = models.CharField("moment", max_length=10, choices=PhotoKind)
    position = models.PositiveSmallIntegerField("position", default=0)
    image = models.ImageField("photo", upload_to=photo_path)
    width = models.PositiveIntegerField("largeur (px)")
    height = models.PositiveIntegerField("hauteur (px)")
    shows_person = models.BooleanField(
        "montre une personne", default=False, help_text="Effacée avec les données personnelles à la fin du marché."
    )

    class Meta:
        verbose_name = "photo"
        verbose_name_plural = "photos"
        ordering = ["report", "kind", "position", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=PhotoKind.values), name="%(app_label)s_%(class)s_kind_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.position}"


class MaterialDestination(models.TextChoices):
    """Where a supply of a report goes: the supervisor decides (orders.materials)."""

    PENDING = "pending", "À reprendre"
    ORDER = "order", "Ajoutée aux lignes de la commande"
    QUOTE = "quote", "Mise dans un devis"


class ReportMaterial(models.Model):
    """A supply the technician used, picked from the contract's price schedule
    (its code, a quantity), as the report records it: the supervisor then adds
    it to the order's lines, done, which the invoice bills, or puts it in a
    supplementary-works quote for the buyer to accept first (orders.materials).
    The price's code, label and unit are copied as they were that day."""

    report = models.ForeignKey(InterventionReport, models.CASCADE, related_name="materials", verbose_name="rapport")
    position = models.PositiveSmallIntegerField("position", default=0)
    price_item = models.ForeignKey(PriceItem, models.PROTECT, related_name="+", verbose_name="prix du bordereau")
    code = models.CharField("code", max_length=50)
    label = models.CharField("libellé", max_length=300)
    unit = models.CharField("unité", max_length=20)
    quantity = models.DecimalField("quantité", max_digits=10, decimal_places=2)
    destination = models.CharField(
        "suite donnée", max_length=10, choices=MaterialDestination, default=MaterialDestination.PENDING
    )
    order_line = models.ForeignKey(
        "orders.OrderLine", models.SET_NULL, null=True, blank=True, related_name="+", verbose_name="ligne de commande"
    )

    class Meta:
        verbose_name = "fourniture du rapport"
        verbose_name_plural = "fournitures du rapport"
        ordering = ["report", "position", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="%(app_label)s_%(class)s_quantity_positive"),
            models.CheckConstraint(
                condition=Q(destination__in=MaterialDestination.values),
                name="%(app_label)s_%(class)s_destination_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} × {self.quantity.normalize():f} {self.unit}"

    @property
    def amount(self) -> Decimal:
        """At the schedule's price today, excluding VAT (its price item read along)."""
        return (self.quantity * self.price_item.unit_price).quantize(Decimal("0.01"))
