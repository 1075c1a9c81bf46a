"""The quotes' forms: they read what people typed; the services judge it
(with French messages) and the views show their refusals."""

from __future__ import annotations

from typing import Any

from django import forms

from portal.models import Asset, Client, Contract, ServiceCode
from quotes.models import PartSupplier, Quote, QuoteState

RATE_CHOICES = [("20.00", "20 %"), ("10.00", "10 %"), ("5.50", "5,5 %"), ("0.00", "0 %")]


class QuoteFilterForm(forms.Form):
    state = forms.ChoiceField(
        label="État", required=False, choices=[("", "Tous"), ("waiting", "En attente de réponse"), *QuoteState.choices]
    )
    client = forms.ModelChoiceField(label="Client", required=False, queryset=Client.objects.all(), empty_label="Tous")
    contract = forms.ModelChoiceField(
        label="Marché", required=False, queryset=Contract.objects.select_related("client"), empty_label="Tous"
    )


class NewQuoteForm(forms.Form):
    contract = forms.ModelChoiceField(
        label="Marché", queryset=Contract.objects.filter(active=True).select_related("client")
    )
    title = forms.CharField(label="Objet", max_length=200)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "new_%s")  # beside the filters' "Marché" on the same page: ids of its own
        super().__init__(*args, **kwargs)


class DetailsForm(forms.ModelForm):
    class Meta:
        model = Quote
        fields = ["title", "works", "valid_until", "asset", "service_code", "works_wait"]
        widgets = {
            "works": forms.Textarea(attrs={"rows": 4}),
            "valid_until": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        quote = self.instance
        asset_field = self.fields["asset"]
        code_field = self.fields["service_code"]
        assert isinstance(asset_field, forms.ModelChoiceField) and isinstance(code_field, forms.ModelChoiceField)
        asset_field.queryset = Asset.objects.filter(client_id=quote.contract.client_id)
        code_field.queryset = ServiceCode.objects.filter(contract_id=quote.contract_id)
        if quote.order_id is None:
            del self.fields["works_wait"]


class LineForm(forms.Form):
    """Add a schedule line (`price_item`) or an out-of-schedule one (the rest)."""

    price_item = forms.IntegerField(required=False, widget=forms.HiddenInput)
    quantity = forms.CharField(label="Quantité", max_length=20, initial="1")
    vat_rate = forms.ChoiceField(label="TVA", choices=[("", "Celle du prix"), *RATE_CHOICES], required=False)
    label = forms.CharField(label="Libellé", max_length=300, required=False)
    unit = forms.CharField(label="Unité", max_length=20, required=False)
    unit_price = forms.CharField(label="Prix unitaire HT (€)", max_length=20, required=False)
    justification = forms.CharField(
        label="Justification du prix hors bordereau", required=False, widget=forms.Textarea(attrs={"rows": 2})
    )


class LineChangeForm(forms.Form):
    quantity = forms.CharField(label="Quantité", max_length=20)
    vat_rate = forms.ChoiceField(label="TVA", choices=RATE_CHOICES)


class PartForm(forms.Form):
    supplied_by = forms.ChoiceField(label="Fournie par", choices=PartSupplier.choices)
    description = forms.CharField(label="Pièce", max_length=300)
    quantity = forms.CharField(label="Quantité", max_length=20, initial="1")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "part_%s")  # beside the line form's "Quantité" in the editor: ids of its own
        super().__init__(*args, **kwargs)


class CancelForm(forms.Form):
    reason = forms.CharField(label="Motif", max_length=500)
