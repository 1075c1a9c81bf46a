"""A report's photos sent ahead of the report: as soon as the technician
chooses them, in parts, so that a weak signal loses at most one part and the
phone resumes where the server says it stopped.

Apart from `orders.models` (which imports them, so that `from orders.models
import ...` finds them) so that neither grows past a screenful. Nothing here
changes a row: `orders.report_photos` does, and `orders.reports` takes the
photos into the report that names them.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone


class PhotoKind(models.TextChoices):
    BEFORE = "before", "Avant"
    AFTER = "after", "Après"


class StagedPhotoStatus(models.TextChoices):
    RECEIVING = "receiving", "En cours d'envoi"
    READY = "ready", "Reçue"
    REFUSED = "refused", "Refusée"


class StagedPhoto(models.Model):
    """A photo received before its report. `key` is the phone's (a UUID it gave
    the photo when it was chosen); `received` is the offset the server confirms,
    from which the phone sends the next part. Once whole, the photo is checked
    by its content and shrunk (`orders.images.process_photo`): `content` is then
    the JPEG the report will keep, and the parts are gone."""

    key = models.UUIDField("clé", unique=True)
    order = models.ForeignKey("orders.Order", models.CASCADE, related_name="staged_photos", verbose_name="commande")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="+", verbose_name="envoyée par")
    kind = models.CharField("moment", max_length=10, choices=PhotoKind)
    name = models.CharField("nom du fichier", max_length=200, blank=True)
    size = models.PositiveIntegerField("taille annoncée (octets)")
    received = models.PositiveIntegerField("octets reçus", default=0)
    status = models.CharField("état", max_length=10, choices=StagedPhotoStatus, default=StagedPhotoStatus.RECEIVING)
    error = models.CharField("motif du refus", max_length=500, blank=True)
    content = models.BinaryField("photo réduite (JPEG)", blank=True, default=b"")
    width = models.PositiveIntegerField("largeur (px)", default=0)
    height = models.PositiveIntegerField("hauteur (px)", default=0)
    created_at = models.DateTimeField("reçue le", default=timezone.now, db_index=True)

    class Meta:
        verbose_name = "photo en cours d'envoi"
        verbose_name_plural = "photos en cours d'envoi"
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=PhotoKind.values), name="%(app_label)s_%(class)s_kind_valid"),
            models.CheckConstraint(
                condition=Q(status__in=StagedPhotoStatus.values), name="%(app_label)s_%(class)s_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(received__lte=F("size")), name="%(app_label)s_%(class)s_received_within_size"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name or self.key} ({self.received}/{self.size})"


class StagedPhotoPart(models.Model):
    """One part of a photo being received, at its offset; joined, then deleted,
    once the photo is whole. In the database rather than the file storage: an
    object storage cannot append, and a part is a few hundred kilobytes."""

    photo = models.ForeignKey(StagedPhoto, models.CASCADE, related_name="parts", verbose_name="photo")
    offset = models.PositiveIntegerField("position (octets)")
    data = models.BinaryField("octets")

    class Meta:
        verbose_name = "morceau de photo"
        verbose_name_plural = "morceaux de photo"
        constraints = [
            models.UniqueConstraint(fields=["photo", "offset"], name="%(app_label)s_%(class)s_one_per_offset"),
        ]

    def __str__(self) -> str:
        return f"{self.photo_id} @ {self.offset}"


class TakenPhoto(models.Model):
    """The key of a staged photo a report took (the photo itself is the
    report's now): a part of it arriving late (sent twice, its answer lost, or
    by the page and its service worker at once) is told the report has it,
    rather than opening the photo again. Forgotten with the staged photos."""

    key = models.UUIDField("clé", unique=True)
    order = models.ForeignKey("orders.Order", models.CASCADE, related_name="+", verbose_name="commande")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="+", verbose_name="envoyée par")
    taken_at = models.DateTimeField("prise le", default=timezone.now, db_index=True)

    class Meta:
        verbose_name = "photo prise par un rapport"
        verbose_name_plural = "photos prises par un rapport"

    def __str__(self) -> str:
        return str(self.key)
