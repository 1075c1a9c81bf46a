from __future__ import annotations

import secrets

from django import forms

from portal.sandbox import bus
from portal.sandbox.models import ApiClient, Asset, Behaviour, Contract, CriticalLevel, WebhookTarget, WorkType
from portal.sandbox.services import RequestInput


class InterventionRequestForm(forms.Form):
    """The manager's new intervention request."""

    contract = forms.ModelChoiceField(Contract.objects.all(), label="Marché", empty_label=None)
    service_code = forms.ChoiceField(label="Prestation")
    description = forms.CharField(label="Description", max_length=2000, widget=forms.Textarea(attrs={"rows": 3}))
    work_type = forms.ChoiceField(label="Type de travaux", choices=WorkType.choices, initial=WorkType.CORRECTIVE)
    critical_level = forms.TypedChoiceField(
        label="Criticité", choices=CriticalLevel.choices, coerce=int, initial=CriticalLevel.URGENT
    )
    asset = forms.ModelChoiceField(
        Asset.objects.all(), label="Élément de patrimoine", required=False, empty_label="— aucun —"
    )
    way = forms.CharField(label="Adresse (si différente de celle de l'élément)", max_length=200, required=False)
    zip = forms.CharField(label="Code postal", max_length=10, required=False)
    city = forms.CharField(label="Ville", max_length=100, required=False)
    complement = forms.CharField(label="Complément d'adresse", max_length=200, required=False)
    occupant_title = forms.ChoiceField(
        label="Civilité de l'occupant", choices=[("", "—"), ("Mme", "Mme"), ("M.", "M.")], required=False
    )
    occupant_first_name = forms.CharField(label="Prénom de l'occupant", max_length=100, required=False)
    occupant_last_name = forms.CharField(label="Nom de l'occupant", max_length=100, required=False)
    occupant_home_phone = forms.CharField(label="Téléphone fixe", max_length=20, required=False)
    occupant_mobile_phone = forms.CharField(label="Téléphone mobile", max_length=20, required=False)
    occupant_email = forms.EmailField(label="E-mail de l'occupant", required=False)
    requester_name = forms.CharField(label="Demandé par (gestionnaire)", max_length=100, initial="Sophie Bernard")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        over_the_bus = bool(bus.emulator_host())
        # Which platform the request goes through: the Nexxio client's contracts travel over the bus.
        self.fields["contract"].label_from_instance = lambda contract: (  # type: ignore[attr-defined]
            f"{contract} · Nexxio (bus Pub/Sub)" if over_the_bus and contract.via_bus else str(contract)
        )
        self.fields["service_code"].choices = [
            (contract.reference, [(item["code"], f"{item['code']} – {item.get('label', '')}") for item in codes])
            for contract in Contract.objects.all()
            if (codes := [item for item in contract.service_codes if isinstance(item, dict) and item.get("code")])
        ]

    def clean(self) -> dict:
        data = super().clean()
        contract, code = data.get("contract"), data.get("service_code")
        if contract and code and contract.service(code) is None:
            self.add_error("service_code", "Cette prestation n'appartient pas au marché choisi.")
        return data

    def to_input(self) -> RequestInput:
        data = self.cleaned_data
        return RequestInput(
            contract=data["contract"],
            description=data["description"],
            service_code=data["service_code"],
            work_type=data["work_type"],
            critical_level=data["critical_level"],
            asset=data["asset"],
            address={key: data[key] for key in ("way", "zip", "city", "complement")},
            occupant_title=data["occupant_title"],
            occupant_first_name=data["occupant_first_name"],
            occupant_last_name=data["occupant_last_name"],
            occupant_home_phone=data["occupant_home_phone"],
            occupant_mobile_phone=data["occupant_mobile_phone"],
            occupant_email=data["occupant_email"],
            requester_name=data["requester_name"],
        )


class BehaviourForm(forms.ModelForm):
    class Meta:
        model = Behaviour
        fields = [
            "down",
            "delay_ms",
            "error_rate_500",
            "error_rate_429",
            "reject_next_logs",
            "reject_reference",
            "timeout_after_store_rate",
            "timeout_after_store_seconds",
            "token_expires_in",
            "strict",
            "gateway_error_after_store_rate",
        ]
        help_texts = {
            "down": "Toute requête à l'API, jeton compris, reçoit 503.",
            "delay_ms": "Attente avant chaque réponse de l'API.",
            "error_rate_500": "Entre 0 et 1 : part des appels qui reçoivent 500.",
            "error_rate_429": "Entre 0 et 1 : part des appels qui reçoivent 429 (Retry-After: 1).",
            "reject_next_logs": "Les N prochains logs reçoivent 400 « Code prestation inconnu » et ne sont pas gardés.",
            "reject_reference": "Tant que c'est renseigné, les logs de cette référence reçoivent 400.",
            "timeout_after_store_rate": "Entre 0 et 1 : part des logs enregistrés puis répondus trop tard.",
            "timeout_after_store_seconds": "Attente après l'enregistrement de ces logs.",
            "strict": "Champs obligatoires refusés avec la liste des motifs, documents listés sous leurs noms de "
            "champs multipart, textes sans jeu de caractères déclaré lus en Latin-1.",
            "gateway_error_after_store_rate": "Entre 0 et 1 : part des logs enregistrés puis répondus 502.",
        }


class ApiClientForm(forms.ModelForm):
    class Meta:
        model = ApiClient
        fields = ["client_id", "client_secret", "label"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["client_secret"].initial = secrets.token_urlsafe(24)


class WebhookTargetForm(forms.ModelForm):
    class Meta:
        model = WebhookTarget
        fields = ["url", "secret", "is_active"]
