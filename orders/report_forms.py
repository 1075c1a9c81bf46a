"""Forms of the intervention report and of a PDF report's upload.

They parse and check what comes in (photos and PDFs by their content, through
`orders.images` and `orders.uploads`); the services store it."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.files.uploadedfile import UploadedFile

from orders import images, uploads
from orders.models import PhotoKind, SignatureStatus
from orders.reports import MAX_TIME_ON_SITE_MINUTES, ReportPhotoUpload

MAX_PHOTOS_PER_KIND = 8


class MultiplePhotoInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class PhotosField(forms.FileField):
    """Several photos from one `<input type=file multiple>`; each is checked,
    oriented, shrunk and stripped of its EXIF as it is cleaned."""

    def __init__(self, *, kind: PhotoKind, **kwargs: Any) -> None:
        self.kind = kind
        attrs = {"accept": "image/*", "capture": "environment", "multiple": True}
        kwargs.setdefault("widget", MultiplePhotoInput(attrs=attrs))
        super().__init__(required=False, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> list[ReportPhotoUpload]:
        uploads_ = [item for item in (data if isinstance(data, list | tuple) else [data]) if item]
        if len(uploads_) > MAX_PHOTOS_PER_KIND:
            raise forms.ValidationError(f"{MAX_PHOTOS_PER_KIND} photos au plus.")
        photos, errors = [], []
        for upload in uploads_:
            upload = super().clean(upload, initial)
            try:
                image = images.process_photo(upload, name=upload.name or "sans nom", size=upload.size)
            except images.ImageRefused as error:
                errors.append(str(error))
                continue
            photos.append(ReportPhotoUpload(kind=self.kind, image=image))
        if errors:
            raise forms.ValidationError(errors)
        return photos


class ReportForm(forms.Form):
    works_done = forms.CharField(label="Travaux réalisés", max_length=10_000, widget=forms.Textarea(attrs={"rows": 5}))
    observations = forms.CharField(
        label="Observations", required=False, max_length=10_000, widget=forms.Textarea(attrs={"rows": 3})
    )
    materials_used = forms.CharField(
        label="Matériel et fournitures utilisés",
        required=False,
        max_length=10_000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    time_on_site_minutes = forms.IntegerField(
        label="Temps passé sur place (en minutes)",
        min_value=1,
        max_value=MAX_TIME_ON_SITE_MINUTES,
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )
    photos_before = PhotosField(kind=PhotoKind.BEFORE, label="Photos avant travaux")
    photos_after = PhotosField(kind=PhotoKind.AFTER, label="Photos après travaux")
    signature_status = forms.ChoiceField(
        label="Signature de l'occupant",
        choices=[
            (SignatureStatus.SIGNED, "L'occupant signe"),
            (SignatureStatus.ABSENT, "Occupant absent"),
            (SignatureStatus.REFUSED, "Refusé : l'occupant ne veut pas signer"),
        ],
        widget=forms.RadioSelect,
    )
    signatory_name = forms.CharField(label="Nom du signataire", required=False, max_length=200)
    # Filled in by static/js/signature.js with the canvas as a PNG data URL.
    signature = forms.CharField(required=False, widget=forms.HiddenInput, max_length=800_000)
    quote_needed = forms.BooleanField(label="Un devis est nécessaire", required=False)
    quote_description = forms.CharField(
        label="Travaux à chiffrer",
        required=False,
        max_length=10_000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Pour le conducteur de travaux : ce qu'il faut faire, les pièces, les quantités.",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        data["signature_image"] = None
        if data.get("signature_status") == SignatureStatus.SIGNED:
            if not data.get("signature"):
                self.add_error(
                    "signature_status", "Faites signer l'occupant dans le cadre, ou choisissez un autre cas."
                )
            else:
                try:
                    data["signature_image"] = images.read_signature(data["signature"])
                except images.ImageRefused as error:
                    self.add_error("signature_status", str(error))
        if data.get("quote_needed") and not data.get("quote_description", "").strip():
            self.add_error("quote_description", "Décrivez les travaux qui demandent un devis.")
        return data

    def service_arguments(self) -> dict[str, Any]:
        """The keyword arguments of `reports.submit_report`."""
        data = self.cleaned_data
        return {
            "works_done": data["works_done"],
            "observations": data["observations"],
            "materials_used": data["materials_used"],
            "time_on_site_minutes": data["time_on_site_minutes"],
            "signature_status": data["signature_status"],
            "signature": data["signature_image"],
            "signatory_name": data["signatory_name"],
            "quote_needed": data["quote_needed"],
            "quote_description": data["quote_description"],
            "photos": [*data["photos_before"], *data["photos_after"]],
        }


class DocumentUploadForm(forms.Form):
    file = forms.FileField(
        label="Rapport au format PDF (20 Mo au plus)",
        widget=forms.ClearableFileInput(attrs={"accept": "application/pdf,.pdf"}),
        error_messages={"required": "Choisissez le fichier PDF du rapport.", "empty": "Ce fichier est vide."},
    )
    title = forms.CharField(
        label="Titre",
        required=False,
        max_length=200,
        help_text="Par défaut : « Rapport d'intervention » et la référence de la commande.",
    )

    def clean_file(self) -> UploadedFile:
        upload = self.cleaned_data["file"]
        try:
            uploads.check_pdf(upload, size=upload.size)
        except uploads.PdfRefused as error:
            raise forms.ValidationError(str(error)) from error
        return upload
