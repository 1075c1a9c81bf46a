"""The report's supplies from the price schedule (issue 16, item 7): a formset
of (code, quantity) rows, in its own module and template include
(orders/_report_materials.html) beside the report's form, which it joins.

A code is looked up in the order's contract's schedule, whatever its case;
the same code on two rows counts once, quantities added up."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms

from orders.materials import MaterialUse
from portal.models import Contract, PriceItem

PREFIX = "fournitures"
ROWS = 3  # empty rows offered; a script adds more (static/js/report_materials.js)
MOST = 30


class MaterialForm(forms.Form):
    code = forms.CharField(
        label="Code du bordereau",
        required=False,
        max_length=50,
        widget=forms.TextInput(
            attrs={"list": "bordereau", "autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"}
        ),
    )
    quantity = forms.DecimalField(
        label="Quantité",
        required=False,
        max_digits=10,
        decimal_places=2,
        min_value=Decimal("0.01"),
        widget=forms.NumberInput(attrs={"step": "0.01", "min": "0.01", "inputmode": "decimal"}),
        error_messages={
            "min_value": "La quantité doit être positive.",
            "max_decimal_places": "Deux décimales au plus.",
            "invalid": "Saisissez un nombre, par exemple 2,5.",
        },
    )

    def __init__(self, *args: Any, prices: dict[str, PriceItem], contract: Contract | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.prices = prices
        self.contract = contract

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        code, quantity = (data.get("code") or "").strip(), data.get("quantity")
        if not code and quantity is None:
            return data  # an empty row
        if not code:
            self.add_error("code", "Indiquez le code du bordereau de cette fourniture.")
        elif code.upper() not in self.prices:
            reference = f" du marché {self.contract.reference}" if self.contract else ""
            self.add_error("code", f"« {code} » n'est pas au bordereau{reference} : choisissez un code de la liste.")
        else:
            data["price_item"] = self.prices[code.upper()]
        if quantity is None and "quantity" not in self.errors:
            self.add_error("quantity", "Indiquez la quantité posée.")
        return data


class BaseMaterialFormSet(forms.BaseFormSet):
    def __init__(self, *args: Any, contract: Contract, **kwargs: Any) -> None:
        self.contract = contract
        items = PriceItem.objects.filter(contract=contract).order_by("code")
        self.price_items = list(items)
        self.prices = {item.code.upper(): item for item in self.price_items}
        kwargs.setdefault("prefix", PREFIX)
        super().__init__(*args, **kwargs)

    def get_form_kwargs(self, index: int | None) -> dict[str, Any]:
        return {"prices": self.prices, "contract": self.contract}

    @property
    def accepted(self) -> bool:
        """Valid, or not sent at all (a report sent from a page without the rows)."""
        return not self.is_bound or self.is_valid()

    def materials(self) -> list[MaterialUse]:
        """The supplies given, one per code (quantities added up), in the order typed."""
        if not self.is_bound:
            return []
        totals: dict[int, MaterialUse] = {}
        for form in self.forms:
            price = form.cleaned_data.get("price_item")
            if price is None:
                continue
            before = totals.get(price.pk)
            quantity = form.cleaned_data["quantity"] + (before.quantity if before else 0)
            totals[price.pk] = MaterialUse(price, quantity)
        return list(totals.values())


MaterialFormSet = forms.formset_factory(
    MaterialForm, formset=BaseMaterialFormSet, extra=ROWS, max_num=MOST, validate_max=True, absolute_max=MOST
)


def material_formset(data: Any, *, contract: Contract) -> BaseMaterialFormSet:
    """The rows sent with the report, or empty ones: a report posted without
    them (a page kept from before, the offline queue's) has no supplies."""
    sent = data is not None and f"{PREFIX}-TOTAL_FORMS" in data
    return MaterialFormSet(data if sent else None, contract=contract)
