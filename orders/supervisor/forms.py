"""The forms of the supervisors' pages: the order page (order.py), the order
list's filters (listing.py), the planning's change of one order (planning.py)
and the dispatch board's backlog filters and drop (board.py).

They only parse what people type; whether the change is allowed is the
services' business (their French refusal is shown on the form). The cleaned
data of each form is the keyword arguments of its service, unless said otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS
from django.db import models
from django.db.models import Case, F, QuerySet, Value, When
from django.http import QueryDict
from django.utils import timezone

from orders import remedies
from orders.models import AdmissionKind, CriticalLevel, Order, StopKind, WorkType
from orders.states import STATE_LABELS, State
from portal.dates import PlausibleDateField, PlausibleDateTimeField
from portal.models import Asset, Client, Contract, PriceItem, Role, ServiceCode, User


def _date_input() -> forms.DateInput:
    return forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def _datetime_input() -> forms.DateTimeInput:
    return forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


def _now_to_the_minute() -> datetime:
    return timezone.localtime().replace(second=0, microsecond=0)


class PersonChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: User) -> str:
        return obj.get_full_name() or obj.username


def technicians() -> QuerySet[User]:
    return User.objects.filter(role=Role.TECHNICIAN, is_active=True).order_by("last_name", "first_name", "pk")


def pilots() -> QuerySet[User]:
    """Whoever may answer for an order on the platform (requirement D2)."""
    return User.objects.filter(is_active=True, role__in=[Role.SUPERVISOR, Role.TECHNICIAN]).order_by(
        "last_name", "first_name", "pk"
    )


class AssignForm(forms.Form):
    """Who does the works and who answers for them; empty takes the person away."""

    technician = PersonChoiceField(
        label="Technicien", queryset=User.objects.none(), required=False, empty_label="— Aucun —"
    )
    pilot = PersonChoiceField(
        label="Pilote",
        queryset=User.objects.none(),
        required=False,
        empty_label="— Aucun —",
        help_text="Son nom et son mobile sont transmis à la plateforme du client.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["technician"].queryset = technicians()
        self.fields["pilot"].queryset = pilots()


class DetailsForm(forms.Form):
    """What the platform checks in every log and may refuse: the service code,
    the element of the property, the kind of works and the criticality. The
    cleaned data is the `changes` of `orders.receiving.update_order_details`."""

    service_code = forms.ModelChoiceField(
        label="Code prestation", queryset=ServiceCode.objects.none(), required=False, empty_label="— Aucun —"
    )
    asset_reference = forms.CharField(
        label="Patrimoine (référence)",
        max_length=100,
        required=False,
        help_text="La référence de l'élément de patrimoine chez le client, par exemple LGT-0412.",
    )
    work_type = forms.ChoiceField(label="Type de travaux", choices=WorkType.choices)
    critical_level = forms.TypedChoiceField(label="Criticité", choices=CriticalLevel.choices, coerce=int)

    def __init__(self, *args: Any, order: Order, **kwargs: Any) -> None:
        self.order = order
        kwargs.setdefault(
            "initial",
            {
                "service_code": order.service_code_id,
                "asset_reference": order.asset.reference if order.asset_id else "",
                "work_type": order.work_type,
                "critical_level": order.critical_level,
            },
        )
        super().__init__(*args, **kwargs)
        self.fields["service_code"].queryset = ServiceCode.objects.filter(contract_id=order.contract_id).order_by(
            "code"
        )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        reference = (cleaned.pop("asset_reference", "") or "").strip()
        if not reference:
            cleaned["asset"] = None
            return cleaned
        asset = Asset.objects.filter(client_id=self.order.contract.client_id, reference=reference).first()
        if asset is None:
            self.add_error(
                "asset_reference",
                f"Aucun élément de patrimoine « {reference} » chez {self.order.contract.client.name}.",
            )
        cleaned["asset"] = asset
        return cleaned


class LineEditForm(forms.Form):
    """One line of the order, as the supervisor corrects it."""

    reference = forms.CharField(label="Référence", max_length=100)
    label = forms.CharField(label="Libellé", max_length=300)
    quantity = forms.DecimalField(label="Quantité", max_digits=10, decimal_places=2, min_value=0.01)
    unit = forms.CharField(label="Unité", max_length=20)
    unit_price = forms.DecimalField(label="Prix unitaire HT (€)", max_digits=12, decimal_places=2, min_value=0)


class NewLineForm(forms.Form):
    """A line added to the order: from the contract's price schedule (what is
    left empty is taken from the price), or typed in."""

    price_item = forms.ModelChoiceField(
        label="Prix du bordereau", queryset=PriceItem.objects.none(), required=False, empty_label="— Hors bordereau —"
    )
    reference = forms.CharField(label="Référence", max_length=100, required=False)
    label = forms.CharField(label="Libellé", max_length=300, required=False)
    quantity = forms.DecimalField(label="Quantité", max_digits=10, decimal_places=2, min_value=0.01, initial=1)
    unit_price = forms.DecimalField(
        label="Prix unitaire HT (€)", max_digits=12, decimal_places=2, min_value=0, required=False
    )

    def __init__(self, *args: Any, order: Order, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["price_item"].queryset = PriceItem.objects.filter(contract_id=order.contract_id).order_by("code")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        if cleaned.get("price_item") is None and not (cleaned.get("label") or "").strip():
            raise forms.ValidationError("Choisissez un prix du bordereau, ou donnez un libellé à la ligne.")
        # Empty means "the price's": left out, so that the service takes it from the price schedule.
        return {name: value for name, value in cleaned.items() if value not in (None, "")}


class ObservationForm(forms.Form):
    text = forms.CharField(
        label="Observations",
        max_length=remedies.OBSERVATION_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=f"{remedies.OBSERVATION_MAX_LENGTH} caractères au plus : elles sont transmises telles quelles à "
        "la plateforme du client.",
        error_messages={"required": "Écrivez vos observations."},
    )


class ExtensionRequestForm(forms.Form):
    cause = forms.CharField(
        label="Cause",
        max_length=remedies.EXTENSION_CAUSE_MAX_LENGTH,
        help_text="Ce qui empêche de tenir le délai, du fait du gestionnaire ou d'un cas de force majeure.",
        error_messages={"required": "Indiquez la cause qui empêche de tenir le délai."},
    )
    cause_date = PlausibleDateField(
        label="Cause apparue le",
        widget=_date_input(),
        error_messages={"required": "Indiquez la date à laquelle la cause est apparue."},
    )
    days = forms.IntegerField(
        label="Prolongation demandée (jours)",
        min_value=1,
        max_value=remedies.EXTENSION_MAX_DAYS,
        error_messages={"required": "Indiquez de combien de jours prolonger le délai."},
    )


class ExtensionAnswerForm(forms.Form):
    """The buyer's answer; its cleaned data is the keyword arguments of
    `remedies.answer_extension` (`at`: when the answer was received)."""

    decision = forms.TypedChoiceField(
        label="Réponse du gestionnaire",
        choices=[("granted", "Accordée"), ("refused", "Refusée")],
        coerce=lambda value: value == "granted",
        widget=forms.RadioSelect,
        error_messages={"required": "Indiquez si la prolongation est accordée ou refusée."},
    )
    granted_days = forms.IntegerField(
        label="Jours accordés", min_value=1, max_value=remedies.EXTENSION_MAX_DAYS, required=False
    )
    at = PlausibleDateTimeField(label="Réponse reçue le", initial=_now_to_the_minute, widget=_datetime_input())
    note = forms.CharField(label="Précision", max_length=remedies.EXTENSION_NOTE_MAX_LENGTH, required=False)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if "decision" in cleaned:
            cleaned["granted"] = cleaned.pop("decision")
            if cleaned["granted"] and not cleaned.get("granted_days") and "granted_days" not in self.errors:
                self.add_error("granted_days", "Indiquez combien de jours le gestionnaire accorde.")
            if not cleaned["granted"]:
                cleaned["granted_days"] = None
        return cleaned


def extension_answer_form(data: Any = None, *, extension_pk: int, **kwargs: Any) -> ExtensionAnswerForm:
    # Distinct ids per form: a page may show several.
    return ExtensionAnswerForm(data, auto_id=f"answer-{extension_pk}-%s", **kwargs)


# --- The order list's query string ------------------------------------------------

NO_TECHNICIAN = "aucun"


class TechnicianChoiceIterator(forms.models.ModelChoiceIterator):
    """The technicians, after « Non affecté » (`technicien=aucun`)."""

    def __iter__(self) -> Iterator[tuple[Any, str]]:
        iterator = super().__iter__()
        if self.field.empty_label is not None:
            yield next(iterator)
        yield (NO_TECHNICIAN, "Non affecté")
        yield from iterator

    def __len__(self) -> int:
        return super().__len__() + 1


class TechnicianField(forms.ModelChoiceField):
    """A technician, or `aucun` for the orders nobody is assigned to."""

    iterator = TechnicianChoiceIterator

    def to_python(self, value: Any) -> Any:
        if value == NO_TECHNICIAN:
            return NO_TECHNICIAN
        return super().to_python(value)

    def label_from_instance(self, obj: User) -> str:
        name = obj.get_full_name() or obj.username
        return name if obj.is_active else f"{name} (inactif)"


class ContractField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Contract) -> str:
        return f"{obj.client.name} · {obj.reference}"


@dataclass(frozen=True)
class Sort:
    label: str
    fields: tuple[Any, ...]


# The order of the state machine, not the alphabet: « À prendre en compte » first.
STATE_POSITION = Case(*(When(state=state, then=Value(index)) for index, state in enumerate(State)), default=Value(99))

SORTS: dict[str, Sort] = {
    "reference": Sort("Référence", (F("reference"),)),
    "client": Sort("Client", (F("contract__client__name"),)),
    "marche": Sort("Marché", (F("contract__reference"),)),
    "etat": Sort("État", (STATE_POSITION,)),
    "technicien": Sort("Technicien", (F("technician__last_name"), F("technician__first_name"))),
    "recue": Sort("Reçue le", (F("received_at"),)),
    "echeance": Sort("Échéance", (F("due_at"),)),
}
DEFAULT_SORT = "-recue"
SORT_CHOICES = [(key, sort.label) for key, sort in SORTS.items()] + [
    (f"-{key}", f"{sort.label} (décroissant)") for key, sort in SORTS.items()
]


def _date_field(label: str) -> PlausibleDateField:
    return PlausibleDateField(
        label=label,
        required=False,
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )


class OrderFilterForm(forms.Form):
    """The list's query string. Names are French and short because people see
    them in the address bar and other pages link to them (`?etat=to_acknowledge`)."""

    q = forms.CharField(
        label="Rechercher",
        required=False,
        max_length=100,
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": "Référence, adresse ou occupant", "autocomplete": "off"}
        ),
    )
    etat = forms.MultipleChoiceField(
        label="État",
        required=False,
        choices=[(state.value, label) for state, label in STATE_LABELS.items()],
        widget=forms.CheckboxSelectMultiple,
    )
    client = forms.ModelChoiceField(
        label="Client", queryset=Client.objects.all(), required=False, empty_label="Tous les clients"
    )
    marche = ContractField(
        label="Marché",
        queryset=Contract.objects.select_related("client"),
        required=False,
        empty_label="Tous les marchés",
    )
    technicien = TechnicianField(
        label="Technicien",
        queryset=User.objects.filter(role=Role.TECHNICIAN).order_by("-is_active", "last_name", "first_name", "pk"),
        required=False,
        empty_label="Tous les techniciens",
    )
    retard = forms.ChoiceField(
        label="Retard",
        required=False,
        choices=[("", "Indifférent"), ("oui", "En retard"), ("48h", "En retard sous 48 h")],
    )
    rapport = forms.ChoiceField(
        label="Rapport d'intervention",
        required=False,
        choices=[("", "Indifférent"), ("avec", "Avec rapport"), ("sans", "Sans rapport")],
    )
    du = _date_field("Reçue du")
    au = _date_field("au")
    tri = forms.ChoiceField(label="Tri", required=False, choices=SORT_CHOICES, widget=forms.HiddenInput)

    def __init__(self, data: QueryDict | None = None, **kwargs: Any) -> None:
        # An unknown state among known ones drops that state only, not the whole filter.
        self.unknown_states: list[str] = []
        if data is not None and "etat" in data:
            known = {state.value for state in State}
            states = data.getlist("etat")
            self.unknown_states = [value for value in states if value not in known]
            if self.unknown_states:
                data = data.copy()
                data.setlist("etat", [value for value in states if value in known])
        super().__init__(data, **kwargs)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        start, end = cleaned.get("du"), cleaned.get("au")
        if start and end and start > end:
            del cleaned["du"], cleaned["au"]
            raise forms.ValidationError("la date de début est après la date de fin.")
        return cleaned

    def notes(self) -> list[str]:
        """What was ignored, and why, in French."""
        notes = [f"État inconnu ignoré : « {value} »." for value in self.unknown_states]
        for name, errors in self.errors.items():
            label = "Dates de réception" if name == NON_FIELD_ERRORS else self.fields[name].label
            notes.append(f"Filtre « {label} » ignoré : {' '.join(errors)}")
        return notes


# --- The planning's change of one order ----------------------------------------------


def _datetime_field(label: str) -> PlausibleDateTimeField:
    widget = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
    return PlausibleDateTimeField(label=label, required=False, widget=widget)


class PlanningChangeForm(forms.Form):
    """One order's technician and appointment (or planned period), as the
    planning's form sends them; what is unchanged is left alone."""

    technician = forms.ModelChoiceField(
        label="Technicien",
        queryset=User.objects.filter(role=Role.TECHNICIAN),
        required=False,
        empty_label="Non attribuée",
        error_messages={"invalid_choice": "Choisissez un technicien de la liste."},
    )
    appointment = _datetime_field("Rendez-vous")
    planned_start = _datetime_field("Début prévu")
    planned_end = _datetime_field("Fin prévue")
    # Required by `orders.planning.plan_order` when the date moves (then relayed to the
    # client with it); changing the technician alone needs none.
    reason = forms.CharField(label="Motif du report", required=False, max_length=200)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        appointment, start, end = (cleaned.get(name) for name in ("appointment", "planned_start", "planned_end"))
        if appointment is not None and (start or end):
            raise forms.ValidationError("Indiquez soit un rendez-vous, soit une période de travaux, pas les deux.")
        if (start is None) != (end is None):
            raise forms.ValidationError("Une période de travaux a un début et une fin.")
        if start is not None and end is not None and end <= start:
            raise forms.ValidationError("La fin prévue doit être après le début prévu.")
        return cleaned


# --- The dispatch board (board.py) ---------------------------------------------------


class Missing(models.TextChoices):
    """What a backlog order lacks: a technician, a date, or either."""

    TECHNICIAN = "technicien", "Sans technicien"
    DATE = "date", "Sans date (affectées)"


class BacklogFilterForm(forms.Form):
    """The backlog's filters, in the address (`?q=fuite&criticite=2`): each one
    narrows the list; one that cannot be read is ignored and said so."""

    q = forms.CharField(
        label="Rechercher",
        required=False,
        max_length=100,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Référence, adresse, description…"}),
    )
    echeance = PlausibleDateField(label="Échéance jusqu'au", required=False, widget=_date_input())
    criticite = forms.TypedChoiceField(
        label="Criticité",
        required=False,
        coerce=int,
        empty_value=None,
        choices=[
            ("", "Toutes"),
            *(
                (level.value, f"{level.label} ou plus")
                for level in CriticalLevel
                if 1 <= level < CriticalLevel.PRIORITY
            ),
            (CriticalLevel.PRIORITY.value, CriticalLevel.PRIORITY.label),
        ],
    )
    code = forms.ChoiceField(label="Code prestation", required=False)
    client = forms.TypedChoiceField(label="Client", required=False, coerce=int, empty_value=None)
    manque = forms.ChoiceField(
        label="Il manque", required=False, choices=[("", "Technicien ou date"), *Missing.choices]
    )

    def __init__(self, *args: Any, codes: list[tuple[str, str]], clients: list[tuple[int, str]], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["code"].choices = [("", "Tous"), *codes]
        self.fields["client"].choices = [("", "Tous"), *clients]

    def notes(self) -> list[str]:
        return [
            f"Filtre « {self.fields[name].label} » ignoré : {' '.join(errors)}" for name, errors in self.errors.items()
        ]

    def filters(self) -> dict[str, Any]:
        """The valid filters, by name; those that could not be read are left out."""
        if not self.is_bound:
            return {}
        self.is_valid()  # cleans: `cleaned_data` keeps the fields that could be read
        return {name: value for name, value in self.cleaned_data.items() if value not in (None, "")}


class DispatchForm(forms.Form):
    """An order of the backlog, or a visit of the board, to a technician at a
    time, for a duration: what a drop on the board sends, and the form beside it
    (keyboard, no JavaScript). The order itself is `commande` (a radio button of
    the list) or `visite` (the select of the day's visits)."""

    technician = forms.ModelChoiceField(
        label="Technicien",
        queryset=User.objects.filter(role=Role.TECHNICIAN, is_active=True).order_by("last_name", "first_name", "pk"),
        empty_label="Choisissez…",
        error_messages={
            "required": "Choisissez le technicien.",
            "invalid_choice": "Choisissez un technicien de la liste.",
        },
    )
    appointment = PlausibleDateTimeField(
        label="Rendez-vous",
        widget=_datetime_input(),
        error_messages={"required": "Indiquez le jour et l'heure du rendez-vous."},
    )
    visit_minutes = forms.IntegerField(
        label="Durée (minutes)",
        required=False,
        min_value=5,
        max_value=24 * 60,
        widget=forms.NumberInput(attrs={"step": 5, "inputmode": "numeric"}),
        help_text="Vide : celle de son code prestation.",
        error_messages={
            "min_value": "La durée d'une visite va de 5 minutes à 24 heures.",
            "max_value": "La durée d'une visite va de 5 minutes à 24 heures.",
        },
    )
    force = forms.BooleanField(label="Planifier malgré les alertes", required=False)
    # Asked when the order already has an appointment and it moves (board.py checks it,
    # as the technician's form asks it): relayed to the platform with the new date.
    reason = forms.CharField(
        label="Motif du report",
        required=False,
        max_length=200,
        help_text="Demandé pour déplacer un rendez-vous, et transmis au client.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )


# --- The buyer's decisions (orders.buyer) -------------------------------------------


class BuyerStopForm(forms.Form):
    """A suspension (§24) or a *sursis* (§30.5): the keyword arguments of `buyer.stop_clock`."""

    kind = forms.ChoiceField(label="Décision de l'acheteur", choices=StopKind.choices, initial=StopKind.SUSPENSION)
    starts_on = forms.DateField(
        label="À compter du", widget=_date_input(), error_messages={"required": "Indiquez le premier jour d'arrêt."}
    )
    reason = forms.CharField(
        label="Motif", max_length=200, error_messages={"required": "Indiquez le motif donné par l'acheteur."}
    )


class RestartForm(forms.Form):
    ends_on = forms.DateField(
        label="Reprise le", widget=_date_input(), error_messages={"required": "Indiquez le jour de la reprise."}
    )


class AdmissionStepForm(forms.Form):
    """An admission step: the keyword arguments of `buyer.record_admission_step`."""

    kind = forms.ChoiceField(label="Étape", choices=AdmissionKind.choices, initial=AdmissionKind.ADMITTED)
    on = forms.DateField(
        label="Notifiée le", widget=_date_input(), error_messages={"required": "Indiquez la date de la décision."}
    )
    note = forms.CharField(label="Précision", max_length=200, required=False)


class LateScopeForm(forms.Form):
    whole_unusable = forms.BooleanField(
        label="Le retard d'une partie rend l'ensemble inutilisable (pénalités sur toute la commande)", required=False
    )


class LetterDatesForm(forms.Form):
    """When a letter to the buyer went, and when the buyer received it (`letters.record_letter_dates`)."""

    sent_on = forms.DateField(label="Envoyé le", widget=_date_input(), required=False)
    received_on = forms.DateField(label="Reçu par l'acheteur le", widget=_date_input(), required=False)


class PenaltyAnswerForm(forms.Form):
    """The answer to a penalty notice (`letters.answer_penalty_notice`)."""

    notice_received_on = forms.DateField(
        label="Invitation de l'acheteur reçue le",
        widget=_date_input(),
        error_messages={"required": "Indiquez quand l'invitation de l'acheteur a été reçue."},
    )
    text = forms.CharField(
        label="Vos observations sur les pénalités envisagées",
        widget=forms.Textarea(attrs={"rows": 4}),
        max_length=5000,
        error_messages={"required": "Écrivez vos observations sur les pénalités envisagées."},
    )
