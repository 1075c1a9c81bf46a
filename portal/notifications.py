"""Emails to supervisors and office staff, in French (text and HTML), each
person choosing which they receive on « Mes notifications ».

Four emails: a new order arrived; an order will be late within 48 hours; a
message was refused by a client's platform; and the relay's warning when an
information has waited 5 minutes (the last two are sent by `portal.relay`,
through `recipients` here). Everything is sent by Celery tasks, never inside
a database transaction.

The order emails are sent by beat jobs rather than from the services: a job
that runs every minute finds the orders received since it last ran (those not
announced yet) and announces them in one email, and every 15 minutes another
warns about the orders that will be late within 48 hours. Each order is
recorded (`OrderNotification`) before its email goes, so that it goes once
whatever runs twice; if the mail server is down the record is dropped again
and the next run tries once more.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.mail import EmailMultiAlternatives, mailers
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from orders.models import Order
from orders.states import State
from portal.access import role_required
from portal.models import (
    DEFAULT_NOTIFICATIONS,
    NotificationKind,
    NotificationPreference,
    OrderNotification,
    Role,
    User,
)

logger = logging.getLogger(__name__)

# Who may receive them (and open the preferences page).
NOTIFIED_ROLES = (Role.SUPERVISOR, Role.OFFICE)
# An order received longer ago than this is no news: not announced (a job that
# was down for a day, the demo data, the orders already there when this began).
NEW_ORDER_LOOKBACK = timedelta(hours=24)
LATE_SOON_WITHIN = timedelta(hours=48)
# Orders listed in one email at most; the rest go with the next run.
MAX_ORDERS_PER_EMAIL = 100


# --- Who receives what -------------------------------------------------------------


def recipients(kind: NotificationKind | str) -> list[str]:
    """The addresses of the active supervisors and office staff who want `kind`:
    those who chose it, and those who never chose whose role has it by default.
    People without an email address are skipped."""
    kind = NotificationKind(kind)
    default_roles = [role for role, kinds in DEFAULT_NOTIFICATIONS.items() if kind in kinds]
    wants = Q(**{f"notification_preference__{kind.value}": True}) | Q(
        notification_preference__isnull=True, role__in=default_roles
    )
    users = User.objects.filter(wants, is_active=True, role__in=NOTIFIED_ROLES).exclude(email="")
    return sorted(set(users.values_list("email", flat=True)))


def preference_for(user: User) -> NotificationPreference:
    """The person's choices, or their role's defaults if they never chose (not saved)."""
    return NotificationPreference.objects.filter(user=user).first() or NotificationPreference.defaults_for(user)


# --- Sending -----------------------------------------------------------------------


def send(template: str, context: Mapping[str, Any], to: Iterable[str]) -> int:
    """Render `emails/<template>_subject.txt`, `.txt` and `.html` and send one
    email per recipient (colleagues do not see each other's addresses), over
    one connection. Raises OSError when the mail server is unreachable."""
    to = list(to)
    if not to:
        return 0
    preferences_url = settings.SITE_URL + reverse("notification_preferences")
    context = {"site_url": settings.SITE_URL, "preferences_url": preferences_url, **context}
    with translation.override("fr"), timezone.override(settings.TIME_ZONE):
        subject = " ".join(render_to_string(f"emails/{template}_subject.txt", context).split())
        text = render_to_string(f"emails/{template}.txt", context)
        html = render_to_string(f"emails/{template}.html", context)
    emails = []
    for address in to:
        email = EmailMultiAlternatives(subject, text, to=[address])
        email.attach_alternative(html, "text/html")
        emails.append(email)
    return mailers.default.send_messages(emails) or 0


def _order_link(order: Order) -> str:
    from orders.supervisor.planning import order_url

    return settings.SITE_URL + order_url(order.pk)


def _claim(order: Order, kind: NotificationKind) -> OrderNotification | None:
    """Record that `order` is being notified; None if it already was (another
    run got there first: the unique constraints decide)."""
    due_at = order.due_at if kind == NotificationKind.LATE_SOON else None
    try:
        with transaction.atomic():
            return OrderNotification.objects.create(order=order, kind=kind, due_at=due_at)
    except IntegrityError:
        return None


def _notify_orders(kind: NotificationKind, orders: QuerySet[Order], template: str, now: datetime) -> int:
    """Claim each order, then send one email listing the claimed ones to whoever
    wants `kind`. The number of orders notified."""
    candidates = list(
        orders.select_related("contract__client", "asset", "service_code", "technician")[:MAX_ORDERS_PER_EMAIL]
    )
    claimed = [(order, notice) for order in candidates if (notice := _claim(order, kind)) is not None]
    if not claimed:
        return 0
    notice_ids = [notice.pk for _, notice in claimed]
    to = recipients(kind)
    items = [{"order": order, "url": _order_link(order)} for order, _ in claimed]
    try:
        send(template, {"items": items, "count": len(items), "now": now}, to)
    except OSError:
        # The mail server is down: forget the claims, the next run tries again.
        OrderNotification.objects.filter(pk__in=notice_ids).delete()
        logger.exception("Could not send the %s email for %s orders", kind, len(items))
        return 0
    OrderNotification.objects.filter(pk__in=notice_ids).update(sent_at=timezone.now(), recipients=len(to))
    return len(items)


def announce_new_orders(now: datetime | None = None) -> int:
    """(a) The orders received in the last 24 hours not announced yet, oldest first."""
    now = now or timezone.now()
    announced = OrderNotification.objects.filter(order=OuterRef("pk"), kind=NotificationKind.NEW_ORDER)
    orders = (
        Order.objects.filter(received_at__gte=now - NEW_ORDER_LOOKBACK)
        .exclude(state=State.CANCELLED)
        .exclude(Exists(announced))
        .order_by("received_at", "pk")
    )
    return _notify_orders(NotificationKind.NEW_ORDER, orders, "new_orders", now)


def warn_late_soon(now: datetime | None = None) -> int:
    """(b) The orders that will be late within 48 hours, each once per due date,
    the most urgent first."""
    now = now or timezone.now()
    warned = OrderNotification.objects.filter(
        order=OuterRef("pk"), kind=NotificationKind.LATE_SOON, due_at=OuterRef("due_at")
    )
    orders = Order.objects.late_within(now, LATE_SOON_WITHIN).exclude(Exists(warned)).order_by("due_at", "pk")
    return _notify_orders(NotificationKind.LATE_SOON, orders, "late_soon", now)


# --- « Mes notifications » ------------------------------------------------------------

HELP_TEXTS = {
    NotificationKind.NEW_ORDER: "Un e-mail par arrivée, avec la ou les commandes reçues depuis le précédent.",
    NotificationKind.LATE_SOON: "Une fois par commande : celles dont l'échéance tombe dans les 48 heures.",
    NotificationKind.RELAY_REJECTED: "La donnée refusée est à corriger et à renvoyer (obligation du contrat).",
    NotificationKind.RELAY_LATE: "Une information attend depuis 5 minutes ; au-delà de 15, la pénalité court.",
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
            _save(user, form.cleaned_data)
            messages.success(request, "Vos préférences de notification sont enregistrées.")
            return redirect("notification_preferences")
    else:
        preference = preference_for(user)
        initial = {"email": user.email, **{kind: getattr(preference, kind) for kind in NotificationKind.values}}
        form = PreferencesForm(initial=initial)
    return render(request, "notifications/preferences.html", {"form": form, "has_email": bool(user.email)})


def _save(user: User, data: Mapping[str, Any]) -> None:
    with transaction.atomic():
        email = data["email"].strip()
        if email != user.email:
            user.email = email
            user.save(update_fields=["email"])
        NotificationPreference.objects.update_or_create(
            user=user, defaults={kind: data[kind] for kind in NotificationKind.values}
        )
