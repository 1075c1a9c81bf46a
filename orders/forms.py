"""Forms of the office admin: the order and its lines, and one small form per
action of the state machine.

The forms only parse what people type. Whether an action is allowed, and with
what, is the state machine's business: the services raise a French
TransitionError or ServiceError, which the admin shows on the form. The
cleaned data of an action form is exactly the keyword arguments of its service.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django import forms
from django.contrib.admin import widgets as admin_widgets
from django.utils import timezone

from orders.models import Order, OrderLine
from orders.services import DETAIL_FIELDS, LINE_FIELDS
from orders.states import CLOSE_OUTCOME_LABELS, SUSPEND_REASON_LABELS, Action


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
    appointment = forms.SplitDateTimeField(label="Rendez-vous", required=False, widget=admin_widgets.AdminSplitDateTime)
    planned_start = forms.SplitDateTimeField(
        label="Début prévu",
        required=False,
        widget=admin_widgets.AdminSplitDateTime,
        help_text="Sans rendez-vous : la période prévue des travaux, début et fin.",
    )
    planned_end = forms.SplitDateTimeField(label="Fin prévue", required=False, widget=admin_widgets.AdminSplitDateTime)


class AtForm(forms.Form):
    """Starting, resuming or finishing: when it happened (now by default)."""

    at = forms.SplitDateTimeField(label="Date et heure", initial=_now, widget=admin_widgets.AdminSplitDateTime)


class SuspendForm(forms.Form):
    reason = forms.ChoiceField(label="Motif", choices=list(SUSPEND_REASON_LABELS.items()))
    note = forms.CharField(label="Précision", required=False, max_length=200)


class ReceptionForm(forms.Form):
    reception_date = forms.DateField(label="Date de réception", initial=_today, widget=admin_widgets.AdminDateWidget)


class InvoiceForm(forms.Form):
    invoice_date = forms.DateField(label="Date de facture", initial=_today, widget=admin_widgets.AdminDateWidget)
    invoice_number = forms.CharField(label="N° de facture", max_length=50)


class CloseForm(forms.Form):
    outcome = forms.ChoiceField(label="Issue", choices=list(CLOSE_OUTCOME_LABELS.items()))


class CancelForm(forms.Form):
    reason = forms.CharField(label="Motif d'annulation", widget=forms.Textarea(attrs={"rows": 3}))


# The actions with a page of their own; progress, lines and assignment are
# changed elsewhere (the technician's pages, the order's form).
ACTION_FORMS: dict[Action, type[forms.Form]] = {
    Action.ACKNOWLEDGE: AcknowledgeForm,
    Action.PLAN: PlanForm,
    Action.START: AtForm,
    Action.SUSPEND: SuspendForm,
    Action.RESUME: AtForm,
    Action.FINISH: AtForm,
    Action.RECORD_RECEPTION: ReceptionForm,
    Action.INVOICE: InvoiceForm,
    Action.CLOSE: CloseForm,
    Action.CANCEL: CancelForm,
}
