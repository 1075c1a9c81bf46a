"""What the buyer decides about an order, recorded by the office: suspensions
of the services (CCAG-MI §24) and *sursis* (§30.5), which stop the execution
period's clock; the admission of the works (§33-34); and the office's own
reading that the delay of a part makes the whole order unusable (§15.1).

These are the buyer's acts (or the office's assessment), not the execution
data the contract asks the contractor to share: each is written in the
order's history without a message to the platform, which already knows its
own decisions. The periods are counted by `orders.deadlines`, the admission's
status by `orders.admission`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from orders import admission, deadlines
from orders.formatting import format_date, format_deadline, iso
from orders.models import AdmissionKind, AdmissionSource, AdmissionStep, BuyerStop, Order, OrderEvent, StopKind
from orders.services import ServiceError
from orders.states import DONE_STATES, WORK_STATES
from portal.models import User

REASON_MAX_LENGTH = 200


def _history(order: Order, *, kind: str, label: str, actor: User | None, at: datetime, data: dict[str, Any]) -> None:
    # Not `services.record_event`: the buyer's own decisions are not sent back to its platform.
    OrderEvent.objects.create(
        order=order, at=at, kind=kind, label=label[:300], actor=actor if actor and actor.pk else None, data=data
    )


def _today(at: datetime) -> date:
    return deadlines.local_date(at)


@transaction.atomic
def set_late_scope(order: Order, *, actor: User | None, whole_unusable: bool, at: datetime | None = None) -> Order:
    """Say whether the delay of a part makes the whole order unusable: V is then
    the whole order's value, not the late part's (§15.1)."""
    at = at or timezone.now()
    locked = Order.objects.select_for_update().get(pk=order.pk)
    if locked.late_whole_unusable == whole_unusable:
        return locked
    Order.objects.filter(pk=locked.pk).update(late_whole_unusable=whole_unusable, updated_at=timezone.now())
    label = (
        "Pénalités de retard sur toute la commande : le retard d'une partie rend l'ensemble inutilisable "
        "(CCAG-MI art. 15.1)"
        if whole_unusable
        else "Pénalités de retard sur la seule partie en retard (CCAG-MI art. 15.1)"
    )
    _history(locked, kind="late_scope", label=label, actor=actor, at=at, data={"whole_unusable": whole_unusable})
    locked.refresh_from_db()
    return locked


# --- Suspensions and sursis: the clock stops ---------------------------------------------


@transaction.atomic
def stop_clock(
    order: Order, *, actor: User | None, kind: str, starts_on: date, reason: str, at: datetime | None = None
) -> BuyerStop:
    """Record a suspension (§24) or a *sursis* (§30.5) the buyer decided, from
    `starts_on`: the order is no longer late or due while it lasts."""
    at = at or timezone.now()
    reason = " ".join(reason.split())
    if kind not in StopKind.values:
        raise ServiceError("Choisissez une suspension (art. 24) ou un sursis (art. 30.5).")
    if not reason:
        raise ServiceError("Indiquez le motif donné par l'acheteur.")
    if len(reason) > REASON_MAX_LENGTH:
        raise ServiceError(f"Le motif tient en {REASON_MAX_LENGTH} caractères au plus.")
    if starts_on > _today(at):
        raise ServiceError("La suspension ne peut pas commencer après aujourd'hui : enregistrez-la le jour venu.")
    locked = Order.objects.select_for_update().get(pk=order.pk)
    if locked.state not in WORK_STATES or locked.due_at is None:
        raise ServiceError("Les travaux de la commande ne sont plus en cours : il n'y a pas de délai à arrêter.")
    if locked.clock_stopped_on is not None:
        raise ServiceError(
            f"Le délai est déjà arrêté depuis le {format_date(locked.clock_stopped_on)} : enregistrez d'abord la "
            "reprise."
        )
    stop = BuyerStop.objects.create(
        order=locked,
        kind=kind,
        starts_on=starts_on,
        reason=reason,
        recorded_by=actor if actor and actor.pk else None,
        recorded_at=at,
        due_at_before=locked.due_at,
    )
    Order.objects.filter(pk=locked.pk).update(clock_stopped_on=starts_on, updated_at=timezone.now())
    what = "Suspension des prestations" if kind == StopKind.SUSPENSION else "Sursis"
    _history(
        locked,
        kind="clock_stopped",
        label=f"{what} décidé par l'acheteur à compter du {format_date(starts_on)} : {reason}",
        actor=actor,
        at=at,
        data={"stop": stop.pk, "kind": kind, "starts_on": iso(starts_on)},
    )
    return stop


@transaction.atomic
def restart_clock(stop: BuyerStop, *, actor: User | None, ends_on: date, at: datetime | None = None) -> BuyerStop:
    """The suspension or the sursis ends on `ends_on`: the period is longer by
    its days (§30.6: "pour un temps égal à sa durée"), counted as §3.2 says."""
    at = at or timezone.now()
    locked_order = Order.objects.select_for_update().get(pk=stop.order_id)
    locked = BuyerStop.objects.select_for_update().get(pk=stop.pk)
    if locked.ends_on is not None:
        raise ServiceError(f"Cette suspension a déjà pris fin le {format_date(locked.ends_on)}.")
    if ends_on < locked.starts_on:
        raise ServiceError(f"La reprise ne peut pas précéder le début, le {format_date(locked.starts_on)}.")
    if ends_on > _today(at):
        raise ServiceError("La reprise ne peut pas être dans le futur : enregistrez-la le jour venu.")
    days = (ends_on - locked.starts_on).days
    before = locked_order.due_at or locked.due_at_before
    after = deadlines.extended(before, days, locked_order.department).ends_at if before and days else before
    BuyerStop.objects.filter(pk=locked.pk).update(ends_on=ends_on, due_at_after=after)
    Order.objects.filter(pk=locked_order.pk).update(clock_stopped_on=None, due_at=after, updated_at=timezone.now())
    _history(
        locked_order,
        kind="clock_restarted",
        label=(
            f"Reprise le {format_date(ends_on)} après {days} jour{'s' if days > 1 else ''} d'arrêt : "
            f"nouvelle échéance le {format_deadline(after) if after else '—'}"
        ),
        actor=actor,
        at=at,
        data={"stop": locked.pk, "days": days, "due_at_before": iso(before), "due_at": iso(after)},
    )
    locked.refresh_from_db()
    return locked


# --- Admission (§33-34) ----------------------------------------------------------------------

STEP_LABELS = {
    AdmissionKind.ADMITTED: "Admission des prestations notifiée le {on} (CCAG-MI art. 34.1)",
    AdmissionKind.ADJOURNED: "Ajournement de l'admission notifié le {on} (CCAG-MI art. 34.2)",
    AdmissionKind.ADJOURNMENT_ACCEPTED: "Ajournement accepté le {on} (CCAG-MI art. 34.2.1)",
    AdmissionKind.PRESENTED: "Prestations mises au point présentées à nouveau le {on} (CCAG-MI art. 34.2.2)",
    AdmissionKind.REJECTED: "Rejet des prestations notifié le {on} (CCAG-MI art. 34.4)",
}


def status_of(order: Order, today: date, steps: list[AdmissionStep] | None = None) -> admission.AdmissionStatus:
    """Where the order's admission stands (its steps read once, or given)."""
    steps = list(order.admission_steps.all()) if steps is None else steps
    return admission.admission_status(
        deadlines.local_date(order.actual_end) if order.actual_end else None,
        [(step.kind, step.on) for step in steps],
        today,
        verification_days=order.contract.verification_days,
        reception_date=order.reception_date,
        department=order.department,
    )


@transaction.atomic
def record_admission_step(
    order: Order,
    *,
    actor: User | None,
    kind: str,
    on: date,
    source: str = AdmissionSource.OFFICE,
    note: str = "",
    at: datetime | None = None,
) -> AdmissionStep:
    """Record the buyer's decision (admission, adjournment, rejection) notified
    on `on`, or the contractor's answer to an adjournment, after the works end."""
    at = at or timezone.now()
    note = " ".join(note.split())
    if kind not in AdmissionKind.values:
        raise ServiceError("Choisissez une étape de l'admission.")
    if len(note) > REASON_MAX_LENGTH:
        raise ServiceError(f"La précision tient en {REASON_MAX_LENGTH} caractères au plus.")
    locked = Order.objects.select_for_update().get(pk=order.pk)
    if locked.state not in DONE_STATES or locked.actual_end is None:
        raise ServiceError("Les travaux ne sont pas terminés : il n'y a encore rien à admettre.")
    ended = deadlines.local_date(locked.actual_end)
    if on < ended:
        raise ServiceError(f"Cette date précède la fin des travaux, le {format_date(ended)}.")
    if on > _today(at):
        raise ServiceError("Cette date est dans le futur.")
    current = status_of(locked, on)
    if current.status not in (admission.Status.VERIFYING, admission.Status.ADJOURNED):
        raise ServiceError(f"L'admission est déjà réglée : « {current.label} ».")
    if kind in (AdmissionKind.ADJOURNMENT_ACCEPTED, AdmissionKind.PRESENTED) and (
        current.status != admission.Status.ADJOURNED
    ):
        raise ServiceError("Il n'y a pas d'ajournement en cours.")
    step = AdmissionStep.objects.create(
        order=locked,
        kind=kind,
        on=on,
        source=source,
        note=note,
        recorded_by=actor if actor and actor.pk else None,
        recorded_at=at,
    )
    label = STEP_LABELS[AdmissionKind(kind)].format(on=format_date(on)) + (f" – {note}" if note else "")
    _history(locked, kind=f"admission_{kind}", label=label, actor=actor, at=at, data={"step": step.pk})
    return step
