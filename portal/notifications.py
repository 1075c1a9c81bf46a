"""« Mes notifications »: each supervisor and office person chooses which
emails they receive (`portal.emails`), and the address they go to."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from portal import services
from portal.access import role_required
from portal.emails import NOTIFIED_ROLES
from portal.models import NotificationKind, NotificationPreference, User


def preference_for(user: User) -> NotificationPreference:
    """The person's choices, or their role's defaults if they never chose (not saved)."""
    return NotificationPreference.objects.filter(user=user).first() or NotificationPreference.defaults_for(user)


HELP_TEXTS = {
    NotificationKind.NEW_ORDER: "Un e-mail par arrivée, avec la ou les commandes reçues depuis le précédent.",
    NotificationKind.LATE_SOON: "Une fois par commande : celles dont l'échéance tombe dans les 48 heures.",
    NotificationKind.RELAY_REJECTED: "La donnée refusée est à corriger et à renvoyer (obligation du contrat).",
    NotificationKind.RELAY_LATE: "Une information attend depuis 5 minutes ; au-delà de 15, la pénalité court.",
    NotificationKind.OFFLINE_UNAPPLIED: "Ce qu'un technicien a fait sans réseau et que le portail n'a pas appliqué "
    "(commande annulée ou réattribuée entre-temps, ligne retirée, valeur plus récente gardée).",
}


class PreferencesForm(forms.Form):
    email = forms.EmailField(
        label="Adresse e-mail",
        required=False,
        max_length=254,
        help_text="Où vous recevez les notifications. Sans adresse, vous n'en recevez aucune.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for kind in NotificationKind:
            self.fields[kind.value] = forms.BooleanField(label=kind.label, required=False, help_text=HELP_TEXTS[kind])

    def kind_fields(self) -> list[forms.BoundField]:
        return [self[kind.value] for kind in NotificationKind]


@role_required(*NOTIFIED_ROLES)
def preferences(request: HttpRequest) -> HttpResponse:
    """The signed-in person's choice of emails, and the address they go to."""
    user = request.user
    if request.method == "POST":
        form = PreferencesForm(request.POST)
        if form.is_valid():
            services.save_notification_preferences(user, email=form.cleaned_data["email"], choices=form.cleaned_data)
            messages.success(request, "Vos préférences de notification sont enregistrées.")
            return redirect("notification_preferences")
    else:
        preference = preference_for(user)
        initial = {"email": user.email, **{kind: getattr(preference, kind) for kind in NotificationKind.values}}
        form = PreferencesForm(initial=initial)
    return render(request, "notifications/preferences.html", {"form": form, "has_email": bool(user.email)})
