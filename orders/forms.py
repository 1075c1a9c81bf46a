"""Forms of the office admin (the order and its lines, and one small form per
action of the state machine) and of the technician's pages (actions, the
intervention report and a PDF report's upload). Which form serves which action
is said in the table of orders.actions. Photos and PDFs are checked by their
content (`orders.images`, `orders.uploads`).

The forms only parse what people type. Whether an action is allowed, and with
what, is the state machine's business: the services raise a French
TransitionError or ServiceError, which the admin shows on the form. The
cleaned data of an action form is exactly the keyword arguments of its service.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import unquote
from uuid import UUID

from django import forms
from django.contrib.admin import widgets as admin_widgets
from django.core.files.uploadedfile import UploadedFile
from django.utils import timezone

from orders import images, uploads
from orders.models import Order, OrderLine, PhotoKind, SignatureStatus
from orders.planning import REASON_NEEDED
from orders.receiving import DETAIL_FIELDS, LINE_FIELDS
from orders.reports import MAX_PHOTOS_PER_KIND, MAX_TIME_ON_SITE_MINUTES, ReportPhotoUpload
from orders.sharing import missing_for_platform, platform_requirement_message
from orders.states import CLOSE_OUTCOME_LABELS, SUSPEND_REASON_LABELS
from portal.dates import PlausibleDateField, PlausibleDateTimeField, PlausibleSplitDateTimeField
from portal.errors import Refused
from portal.models import Client, Contract


def add_refusal(form: forms.Form, error: Refused) -> None:
    """A service's refusal shown on `form`: on the field it is about when the
    form has it (a reschedule's missing reason, `orders.planning.ReasonNeeded`), else
    above the form."""
    field = getattr(error, "field", None)
    form.add_error(field if field in form.fields else None, str(error))


class OrderForm(forms.ModelForm):
    class Meta:
        model = Order
        fields = ("contract", "reference", *DETAIL_FIELDS, "technician", "pilot")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is None and "notified_at" in self.fields:
            # register_order takes the reception time when the order has no
            # notification date of its own.
            self.fields["notified_at"].required = False
            self.fields["notified_at"].help_text = "Si vide : maintenant. " + str(self.fields["notified_at"].help_text)
        if "due_at" in self.fields:
            self.fields["due_at"].help_text = "Si vide : calculée d'après le code prestation ou le marché."

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        contract = data.get("contract") or (self.instance.contract if self.instance.contract_id else None)
        if contract is None:
            return data
        # A connected client's platform refuses the logs of an order without
        # them: a new order cannot lack them, an edit cannot take them away.
        asset = data.get("asset", self.instance.asset)
        service_code = data.get("service_code", self.instance.service_code)
        for name in missing_for_platform(contract, asset, service_code):
            if name in self.errors or name not in self.fields:
                continue
            if self.instance.pk is None or name in self.changed_data:
                self.add_error(name, platform_requirement_message(contract, name))
        return data


class OrderLineForm(forms.ModelForm):
    """A line either typed in, or taken from the price schedule (BPU): the
    service then fills in what is left empty from the price."""

    class Meta:
        model = OrderLine
        fields = LINE_FIELDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("reference", "label"):
            if name in self.fields:
                self.fields[name].required = False


def _now() -> datetime:
    return timezone.localtime().replace(second=0, microsecond=0)


def _today() -> date:
    return timezone.localdate()


class AcknowledgeForm(forms.Form):
    pass


class PlanForm(forms.Form):
    appointment = PlausibleSplitDateTimeField(
        label="Rendez-vous", required=False, widget=admin_widgets.AdminSplitDateTime
    )
    planned_start = PlausibleSplitDateTimeField(
        label="Début prévu",
        required=False,
        widget=admin_widgets.AdminSplitDateTime,
        help_text="Sans rendez-vous : la période prévue des travaux, début et fin.",
    )
    planned_end = PlausibleSplitDateTimeField(
        label="Fin prévue", required=False, widget=admin_widgets.AdminSplitDateTime
    )
    reason = forms.CharField(
        label="Motif du report",
        required=False,
        max_length=200,
        help_text="Obligatoire pour déplacer un rendez-vous ou des travaux déjà planifiés : transmis au client.",
    )


class AtForm(forms.Form):
    """Starting, resuming or finishing: when it happened (now by default)."""

    at = PlausibleSplitDateTimeField(label="Date et heure", initial=_now, widget=admin_widgets.AdminSplitDateTime)


class SuspendForm(forms.Form):
    reason = forms.ChoiceField(label="Motif", choices=list(SUSPEND_REASON_LABELS.items()))
    note = forms.CharField(label="Précision", required=False, max_length=200)


class ReceptionForm(forms.Form):
    reception_date = PlausibleDateField(label="Date de réception", initial=_today, widget=admin_widgets.AdminDateWidget)


class InvoiceForm(forms.Form):
    invoice_date = PlausibleDateField(label="Date de facture", initial=_today, widget=admin_widgets.AdminDateWidget)
    invoice_number = forms.CharField(label="N° de facture", max_length=50)


class CloseForm(forms.Form):
    outcome = forms.ChoiceField(label="Issue", choices=list(CLOSE_OUTCOME_LABELS.items()))


class CancelForm(forms.Form):
    reason = forms.CharField(label="Motif d'annulation", widget=forms.Textarea(attrs={"rows": 3}))


# --- The technician's pages ------------------------------------------------
#
# Each action form carries `client_at`: when the technician took the action,
# as their phone saw it (filled in by static/js/portal.js, later by the offline
# queue). An action sent late keeps the time it was taken; a missing, unreadable
# or implausible time means "now".

CLIENT_AT_MAX_AGE = timedelta(days=7)
CLIENT_AT_MAX_AHEAD = timedelta(minutes=5)


def plausible_client_time(value: str, now: datetime) -> datetime | None:
    """The time in `value` (ISO 8601 with an offset) if it is plausible: not more
    than 7 days ago, nor more than 5 minutes ahead (a phone's clock drifts)."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if timezone.is_naive(moment):
        return None  # without an offset, the phone's time zone is a guess
    if not now - CLIENT_AT_MAX_AGE <= moment <= now + CLIENT_AT_MAX_AHEAD:
        return None
    return moment


class TechnicianActionForm(forms.Form):
    """Acknowledging, starting, resuming, finishing: nothing to type. The cleaned
    data of a technician's form are the keyword arguments of its service; the
    action's key (`idempotency_key`, given by the phone) is kept apart in
    `self.action_key`."""

    client_at = forms.CharField(required=False, widget=forms.HiddenInput)
    idempotency_key = forms.UUIDField(required=False, widget=forms.HiddenInput)

    action_key: UUID | None = None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        now = timezone.now()
        cleaned["at"] = plausible_client_time(cleaned.pop("client_at", "") or "", now) or now
        self.action_key = cleaned.pop("idempotency_key", None)
        return cleaned


def _datetime_field(label: str, **options: Any) -> PlausibleDateTimeField:
    # A native date and time picker: the phone's own, big enough for gloves.
    widget = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
    return PlausibleDateTimeField(label=label, required=False, widget=widget, **options)


class TechnicianPlanForm(TechnicianActionForm):
    appointment = _datetime_field("Rendez-vous")
    planned_start = _datetime_field("Début prévu")
    planned_end = _datetime_field("Fin prévue")
    reason = forms.CharField(
        label="Motif du report",
        required=False,
        max_length=200,
        help_text="Transmis au client avec la nouvelle date.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
        error_messages={"required": REASON_NEEDED},
    )

    def __init__(self, *args: Any, replanning: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # An order planned before (`orders.planning.plans_again`): the form is only
        # there to move its date, so the reason is asked, here and by the phone
        # before it queues the action offline. Whether a date really moves is
        # `plan_order`'s rule, which refuses a move without its reason.
        if replanning:
            self.fields["reason"].required = True
        else:
            del self.fields["reason"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        appointment, start, end = (cleaned.get(name) for name in ("appointment", "planned_start", "planned_end"))
        if self.errors:
            return cleaned
        if appointment is None and start is None and end is None:
            raise forms.ValidationError("Indiquez la date et l'heure du rendez-vous, ou une période de travaux.")
        if appointment is not None and (start or end):
            raise forms.ValidationError("Indiquez soit un rendez-vous, soit une période de travaux, pas les deux.")
        if appointment is None and (start is None or end is None):
            raise forms.ValidationError("Une période de travaux a un début et une fin.")
        if start and end and end <= start:
            self.add_error("planned_end", "La fin prévue doit être après le début prévu.")
        return cleaned


class TechnicianSuspendForm(TechnicianActionForm):
    reason = forms.ChoiceField(
        label="Motif", choices=list(SUSPEND_REASON_LABELS.items()), widget=forms.RadioSelect, required=True
    )
    note = forms.CharField(
        label="Précision",
        required=False,
        max_length=200,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Facultatif : ce que vous avez constaté, la pièce à chiffrer…",
    )


class RangeInput(forms.NumberInput):
    """A slider. Never `required` (HTML allows it on no range: a slider always has a value)."""

    input_type = "range"

    def use_required_attribute(self, initial: object) -> bool:
        return False


class ProgressForm(TechnicianActionForm):
    progress = forms.IntegerField(
        label="Avancement des travaux (%)",
        min_value=0,
        max_value=100,
        step_size=10,
        widget=RangeInput(attrs={"list": "progress-steps"}),
    )


class LineForm(TechnicianActionForm):
    """Mark a line done or not done: the state wanted, not a toggle, so that
    sending it twice (a double tap, a replay) changes nothing the second time."""

    done = forms.BooleanField(required=False, widget=forms.HiddenInput)


class NoteForm(TechnicianActionForm):
    text = forms.CharField(
        label="Note",
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Ce que le client et le conducteur de travaux doivent savoir. Elle est transmise au client.",
        error_messages={"required": "Écrivez la note avant de l'enregistrer."},
    )


class OrderSearchForm(forms.Form):
    q = forms.CharField(label="Rechercher", required=False, max_length=100)


# --- The intervention report and a PDF report's upload -------------------------------


class MultiplePhotoInput(forms.ClearableFileInput):
    allow_multiple_selected = True


@dataclass(frozen=True)
class PhotoBatch:
    """What one kind's photos gave: those kept, and a French sentence for each refused."""

    photos: list[ReportPhotoUpload]
    refused: list[str]


class PhotosField(forms.FileField):
    """Several photos sent with the form (without JavaScript; with it, each photo
    goes ahead on its own, orders.report_photos): from the gallery's `<input
    type=file multiple>` and the camera's input of the same name, which the
    template adds. No `capture` here: on a phone it would open the camera only,
    and an existing photo could not be chosen. Each is checked, oriented, shrunk
    and stripped of its EXIF as it is cleaned; the field never fails as a whole,
    so that the photos that are fine are kept when one is refused."""

    def __init__(self, *, kind: PhotoKind, **kwargs: Any) -> None:
        self.kind = kind
        attrs = {"accept": "image/*", "multiple": True}
        kwargs.setdefault("widget", MultiplePhotoInput(attrs=attrs))
        super().__init__(required=False, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> PhotoBatch:  # type: ignore[override]
        uploads_ = [item for item in (data if isinstance(data, list | tuple) else [data]) if item]
        photos: list[ReportPhotoUpload] = []
        refused: list[str] = []
        for upload in uploads_:
            if len(photos) == MAX_PHOTOS_PER_KIND:
                refused.append(f"{MAX_PHOTOS_PER_KIND} photos au plus : « {upload.name} » n'est pas gardée.")
                continue
            try:
                upload = super().clean(upload, initial)
                image = images.process_photo(upload, name=upload.name or "sans nom", size=upload.size)
            except forms.ValidationError as error:
                refused.extend(f"« {upload.name} » : {message}" for message in error.messages)
            except images.ImageRefused as error:
                refused.append(str(error))
            else:
                photos.append(ReportPhotoUpload(kind=self.kind, image=image))
        return PhotoBatch(photos, refused)


class PhotoKeysField(forms.Field):
    """The keys of the photos sent ahead of the report (by the phone, or kept
    from a form that came back with an error), in the form's order."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value: Any) -> list[UUID]:
        keys: list[UUID] = []
        for item in value or []:
            try:
                keys.append(UUID(str(item)))
            except ValueError as error:
                raise forms.ValidationError(
                    "Une photo envoyée est méconnaissable : choisissez-la à nouveau."
                ) from error
        if len(keys) > 2 * MAX_PHOTOS_PER_KIND:
            raise forms.ValidationError(f"{MAX_PHOTOS_PER_KIND} photos au plus avant travaux, autant après.")
        return list(dict.fromkeys(keys))


class ReportForm(TechnicianActionForm):
    """The intervention report; `client_at` and `idempotency_key` (from
    TechnicianActionForm) give it the technician's time and send it once
    however often the phone's queue sends it."""

    works_done = forms.CharField(label="Travaux réalisés", max_length=10_000, widget=forms.Textarea(attrs={"rows": 5}))
    observations = forms.CharField(
        label="Observations", required=False, max_length=10_000, widget=forms.Textarea(attrs={"rows": 3})
    )
    materials_used = forms.CharField(
        label="Autres fournitures (hors bordereau)",
        required=False,
        max_length=10_000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    # Empty: counted from the start, the end and the suspensions (orders.timing.time_on_site).
    time_on_site_minutes = forms.IntegerField(
        label="Temps passé sur place (en minutes)",
        required=False,
        min_value=1,
        max_value=MAX_TIME_ON_SITE_MINUTES,
        help_text="Laissez vide : il est calculé d'après le début, la fin et les suspensions des travaux.",
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )
    photos_before = PhotosField(kind=PhotoKind.BEFORE, label="Choisir des photos avant travaux")
    photos_after = PhotosField(kind=PhotoKind.AFTER, label="Choisir des photos après travaux")
    photo_keys = PhotoKeysField(required=False)
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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.new_photos: list[ReportPhotoUpload] = []

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        # The photos that are fine, even when the form is not: kept for it to name again.
        self.new_photos = []
        for name in ("photos_before", "photos_after"):
            batch = data.pop(name, None)
            if batch is not None:
                self.new_photos.extend(batch.photos)
                for message in batch.refused:
                    self.add_error(name, message)
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
            "photos": self.new_photos,
            "staged_photos": data["photo_keys"],
            "at": data["at"],
        }


class PhotoOpeningForm(forms.Form):
    """What the phone says of a report's photo with its first part, in headers
    (orders.report_photos): its kind, its size, its name (percent-encoded)."""

    kind = forms.ChoiceField(choices=PhotoKind.choices)
    size = forms.IntegerField(min_value=1, error_messages={"min_value": "Cette photo est vide."})
    name = forms.CharField(required=False, max_length=1000)

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> PhotoOpeningForm | None:
        if "Upload-Length" not in headers:
            return None
        data = {
            "kind": headers.get("Upload-Kind", ""),
            "size": headers.get("Upload-Length", ""),
            "name": unquote(headers.get("Upload-Name", "")),
        }
        return cls(data)


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


class ReversibilityExportForm(forms.Form):
    """Whose data to export: a client's, or one of its contracts only."""

    client = forms.ModelChoiceField(label="Client", queryset=Client.objects.order_by("name"))
    contract = forms.ModelChoiceField(
        label="Marché",
        queryset=Contract.objects.select_related("client").order_by("client__name", "reference"),
        required=False,
        empty_label="— Tous les marchés du client —",
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        client, contract = cleaned.get("client"), cleaned.get("contract")
        if client is not None and contract is not None and contract.client_id != client.pk:
            self.add_error("contract", "Ce marché n'est pas un marché de ce client.")
        return cleaned
