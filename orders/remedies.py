"""Observations and extensions of the execution period (CCAG-MI §3.7.2, §14.3).

The contractor's two written remedies against an order: observations on its
prescriptions, within 15 days of its receipt, and a request to extend the
execution period when a cause it is not answerable for holds the works up,
within 15 days of the cause and before the period has expired. Each is an
event of the order, relayed to the platform with its label (the order keeps
its state, and the platform its status); the buyer's answer to an extension
is recorded when it comes, and moves the due date when it grants days.
Deadlines are checked against `at`, the moment the person acts (now, from
the pages): `orders.deadlines` counts them as the CCAG does.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from orders import deadlines, services, states
from orders.formatting import format_date, format_datetime, format_deadline, iso
from orders.models import ExtensionDecision, ExtensionRequest, Observation, Order
from orders.services import ServiceError
from orders.states import State
from portal.models import User

EVENT_LABEL_LENGTH = 300  # OrderEvent.label, which the platform receives as the log's description
OBSERVATION_PREFIX = "Observations sur la commande : "
# The whole text travels in the label, so that the platform receives all of it.
OBSERVATION_MAX_LENGTH = EVENT_LABEL_LENGTH - len(OBSERVATION_PREFIX)
EXTENSION_CAUSE_MAX_LENGTH = 200  # ExtensionRequest.cause
EXTENSION_NOTE_MAX_LENGTH = 150  # ExtensionRequest.answer_note, which goes in the answer's label
EXTENSION_MAX_DAYS = 365
# A person's clock and the server's may differ a little.
CLOCK_SLACK = timedelta(minutes=5)


def _days(count: int) -> str:
    return f"{count} jour{'s' if count > 1 else ''}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _deadline_text(deadline: deadlines.Deadline) -> str:
    if deadline.at_midnight:
        return f"le {format_date(deadline.last_day)} à minuit"
    return f"le {format_datetime(deadline.ends_at)}"


@transaction.atomic
def raise_observation(order: Order, *, actor: User | None, text: str, at: datetime | None = None) -> Observation:
    """Send the buyer observations on the order (§3.7.2): refused once the 15
    days from its receipt are over, since the right is then lost."""
    at = at or timezone.now()
    line = _one_line(text)
    if not line:
        raise ServiceError("Écrivez vos observations.")
    if len(line) > OBSERVATION_MAX_LENGTH:
        raise ServiceError(
            f"Vos observations font {len(line)} caractères : {OBSERVATION_MAX_LENGTH} au plus, pour que la "
            "plateforme du client les reçoive en entier. Résumez-les."
        )
    locked = Order.objects.select_for_update().get(pk=order.pk)
    if locked.state == State.CANCELLED:
        raise ServiceError("La commande est annulée : elle n'appelle plus d'observations.")
    deadline = deadlines.observation_deadline(locked.received_at, locked.department)
    if not deadline.is_open(at):
        raise ServiceError(
            f"La commande a été reçue le {format_date(deadlines.local_date(locked.received_at))} : le délai de "
            f"{deadlines.OBSERVATION_DAYS} jours pour formuler des observations a expiré {_deadline_text(deadline)} "
            "(CCAG-MI art. 3.7.2). La commande s'exécute telle qu'elle a été notifiée."
        )
    observation = Observation.objects.create(
        order=locked, text=text.strip(), made_at=at, made_by=actor if actor is not None and actor.pk else None
    )
    event = services.record_event(
        locked,
        kind="observation",
        label=f"{OBSERVATION_PREFIX}{line}",
        actor=actor,
        at=at,
        data={"observation": observation.pk},
    )
    Observation.objects.filter(pk=observation.pk).update(event=event)
    observation.event = event
    return observation


@transaction.atomic
def request_extension(
    order: Order, *, actor: User | None, cause: str, cause_date: date, days: int, at: datetime | None = None
) -> ExtensionRequest:
    """Ask the buyer to extend the execution period by `days` (§14.3.2): within
    15 days of the cause arising, never once the period has expired (§14.3.4):
    until midnight on its last day. Several causes may be pending at once."""
    at = at or timezone.now()
    cause = _one_line(cause)
    if not cause:
        raise ServiceError("Indiquez la cause qui empêche de tenir le délai.")
    if len(cause) > EXTENSION_CAUSE_MAX_LENGTH:
        raise ServiceError(f"Décrivez la cause en {EXTENSION_CAUSE_MAX_LENGTH} caractères au plus.")
    if not 1 <= days <= EXTENSION_MAX_DAYS:
        raise ServiceError(f"La prolongation demandée doit être comprise entre 1 et {EXTENSION_MAX_DAYS} jours.")
    if cause_date > deadlines.local_date(at):
        raise ServiceError("La cause ne peut pas être apparue après la demande : vérifiez sa date.")
    locked = Order.objects.select_for_update().get(pk=order.pk)
    if locked.state not in states.WORK_STATES:
        raise ServiceError(
            f"La commande est « {locked.state_label} » : ses travaux ne sont plus en cours, il n'y a pas de délai "
            "à prolonger."
        )
    if locked.due_at is None:
        raise ServiceError("La commande n'a pas d'échéance : il n'y a pas de délai à prolonger.")
    # Several causes may be pending at once, each asked within its own 15 days (§14.3.2).
    if at >= locked.due_at:
        raise ServiceError(
            f"Le délai d'exécution a expiré le {format_deadline(locked.due_at)} : aucune demande de prolongation "
            "ne peut plus être présentée (CCAG-MI art. 14.3.4)."
        )
    deadline = deadlines.extension_deadline(cause_date, locked.due_at, locked.department)
    if not deadline.is_open(at):
        raise ServiceError(
            f"La cause est apparue le {format_date(cause_date)} : le délai de {deadlines.EXTENSION_REQUEST_DAYS} "
            f"jours pour demander une prolongation a expiré {_deadline_text(deadline)} (CCAG-MI art. 14.3.2)."
        )
    extension = ExtensionRequest.objects.create(
        order=locked,
        cause=cause,
        cause_date=cause_date,
        days=days,
        requested_at=at,
        requested_by=actor if actor is not None and actor.pk else None,
        due_at_before=locked.due_at,
    )
    services.record_event(
        locked,
        kind="extension_requested",
        label=(
            f"Demande de prolongation du délai d'exécution de {_days(days)} : {cause} "
            f"(cause apparue le {format_date(cause_date)})"
        ),
        actor=actor,
        at=at,
        data={"extension": extension.pk, "days": days, "cause_date": iso(cause_date), "due_at": iso(locked.due_at)},
    )
    return extension


@transaction.atomic
def answer_extension(
    extension: ExtensionRequest,
    *,
    actor: User | None,
    granted: bool,
    granted_days: int | None = None,
    note: str = "",
    at: datetime | None = None,
) -> ExtensionRequest:
    """Record the buyer's answer to a request for an extension, received `at`.
    Granted days move the order's due date (the extended period "has the same
    effects as the contractual one", §14.3.1)."""
    now = timezone.now()
    at = at or now
    note = _one_line(note)
    if len(note) > EXTENSION_NOTE_MAX_LENGTH:
        raise ServiceError(f"La précision tient en {EXTENSION_NOTE_MAX_LENGTH} caractères au plus.")
    if at > now + CLOCK_SLACK:
        raise ServiceError("La date de la réponse ne peut pas être dans le futur.")
    locked_order = Order.objects.select_for_update().get(pk=extension.order_id)
    locked = ExtensionRequest.objects.select_for_update().get(pk=extension.pk)
    if not locked.is_pending:
        raise ServiceError(
            f"La réponse du gestionnaire à cette demande est déjà enregistrée : « {locked.get_decision_display()} »."
        )
    if at < locked.requested_at:
        raise ServiceError(
            f"La réponse ne peut pas précéder la demande, présentée le {format_datetime(locked.requested_at)}."
        )
    changes: dict[str, Any] = {
        "answered_at": at,
        "answer_note": note,
        "answered_by": actor if actor is not None and actor.pk else None,
    }
    data: dict[str, Any] = {"extension": locked.pk}
    if granted:
        if granted_days is None or not 1 <= granted_days <= locked.days:
            raise ServiceError(f"Indiquez combien de jours le gestionnaire accorde : entre 1 et {locked.days}.")
        before = locked_order.due_at or locked.due_at_before
        after = deadlines.extended(before, granted_days, locked_order.department).ends_at
        changes |= {"decision": ExtensionDecision.GRANTED, "granted_days": granted_days, "due_at_after": after}
        Order.objects.filter(pk=locked_order.pk).update(due_at=after, updated_at=now)
        locked_order.refresh_from_db()
        kind = "extension_granted"
        label = (
            f"Prolongation du délai accordée par le gestionnaire : {_days(granted_days)}, "
            f"nouvelle échéance le {format_deadline(after)}"
        )
        data |= {"granted_days": granted_days, "due_at_before": iso(before), "due_at": iso(after)}
    else:
        changes["decision"] = ExtensionDecision.REFUSED
        kind, label = "extension_refused", "Prolongation du délai refusée par le gestionnaire"
    if note:
        label = f"{label} – {note}"
    ExtensionRequest.objects.filter(pk=locked.pk).update(**changes)
    services.record_event(locked_order, kind=kind, label=label, actor=actor, at=at, data=data)
    extension.refresh_from_db()
    return extension
