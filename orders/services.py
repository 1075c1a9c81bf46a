"""The only code that changes orders.

One function per action. Each runs in one transaction: it asks the state
machine (`orders.states`) whether the action is allowed, applies the change
with a guarded update (so that of two concurrent requests exactly one wins),
appends an `OrderEvent` with a French label, and passes that event to
`_share`, the one place where the change is handed to the relay.

`at` is when the action happened, which may be earlier than now (a technician
acting offline); it defaults to now.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.files import File
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import formats, timezone, translation

from orders import deadlines, sharing, states
from orders.images import ProcessedImage
from orders.models import (
    PDF_STALLED_AFTER,
    Document,
    DocumentKind,
    ExtensionDecision,
    ExtensionRequest,
    InterventionReport,
    Observation,
    Order,
    OrderEvent,
    OrderLine,
    PdfStatus,
    PhotoKind,
    ReportPhoto,
    SignatureStatus,
)
from orders.states import Action, Facts, State
from portal.errors import Refused
from portal.models import Asset, Contract, ServiceCode, User

__all__ = ["ConcurrentChange", "ServiceError"]

logger = logging.getLogger(__name__)


class ServiceError(Refused):
    """A change refused for a reason people can fix; `str()` is French."""


class ConcurrentChange(ServiceError):
    def __init__(self, order: Order, current_state: str | None) -> None:
        label = states.STATE_LABELS.get(State(current_state)) if current_state else None
        detail = f" (elle est maintenant « {label} »)" if label else ""
        super().__init__(
            f"La commande {order.reference} a été modifiée entre-temps{detail}. Rechargez la page et recommencez."
        )


# Order fields that describe the order (as opposed to its execution); they can
# be edited by office staff, and each edit is recorded in the history.
DETAIL_FIELDS = (
    "billing_account",
    "asset",
    "service_code",
    "work_type",
    "critical_level",
    "description",
    "occupant_name",
    "occupant_phone",
    "occupant_mobile",
    "occupant_email",
    "access_notes",
    "notified_at",
    "due_at",
)
LINE_FIELDS = ("reference", "label", "quantity", "unit", "unit_price", "vat_rate", "price_item", "position")


def format_datetime(value: datetime) -> str:
    """`lundi 25 novembre à 8 h 30`, in Paris time, whatever language is active."""
    with translation.override("fr"):
        local = timezone.localtime(value)
        text = formats.date_format(local, "l j F")
        minutes = f"{local.minute:02d}" if local.minute else ""
        return f"{text} à {local.hour} h {minutes}".rstrip()


def format_date(value: date) -> str:
    with translation.override("fr"):
        return formats.date_format(value, "j F Y")


def compute_due_at(notified_at: datetime, contract: Contract, service_code: ServiceCode | None) -> datetime:
    """The execution period starts at notification (CCAG §14.1.2); the service
    code's completion delay wins over the contract's default delay."""
    if service_code is not None and service_code.completion_delay_hours:
        return notified_at + timedelta(hours=service_code.completion_delay_hours)
    return notified_at + timedelta(days=contract.default_delay_days)


def _share(order: Order, event: OrderEvent) -> None:
    """The seam with the relay: every change to an order passes here, inside
    the service's transaction, so the message that tells the client's platform
    is recorded atomically with the change itself."""
    sharing.share_event(order, event)


def _record(
    order: Order,
    *,
    kind: str,
    label: str,
    actor: User | None,
    at: datetime | None = None,
    before: str = "",
    after: str = "",
    data: Mapping[str, Any] | None = None,
) -> OrderEvent:
    event = OrderEvent.objects.create(
        order=order,
        at=at or timezone.now(),
        kind=kind,
        label=label,
        state_before=before,
        state_after=after,
        actor=actor if actor is not None and actor.pk else None,
        data=dict(data or {}),
    )
    _share(order, event)
    return event


def _transition(
    order: Order,
    action: Action,
    facts: Facts,
    *,
    actor: User | None,
    at: datetime,
    label: str,
    changes: Mapping[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
) -> OrderEvent:
    """Check `action` against the state machine and apply it to the row only if
    the order is still in the state we checked against."""
    before = order.state
    after = states.apply(before, action, facts)
    changes = dict(changes or {})
    updated = Order.objects.filter(pk=order.pk, state=before).update(state=after, updated_at=timezone.now(), **changes)
    if updated != 1:
        current = Order.objects.filter(pk=order.pk).values_list("state", flat=True).first()
        raise ConcurrentChange(order, current)
    order.refresh_from_db()
    return _record(order, kind=action.value, label=label, actor=actor, at=at, before=before, after=after, data=data)


def _lock(order: Order, action: Action) -> Order:
    """For updates that keep the state: lock the row, then check the action is
    allowed in the state it is really in."""
    locked = Order.objects.select_for_update().get(pk=order.pk)
    if not states.is_allowed(locked.state, action):
        raise states.IllegalTransition(State(locked.state), action)
    return locked


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


# --- Receiving and describing orders --------------------------------------


@transaction.atomic
def register_order(
    *,
    contract: Contract,
    reference: str,
    actor: User | None,
    notified_at: datetime | None = None,
    received_at: datetime | None = None,
    lines: Iterable[Mapping[str, Any]] = (),
    technician: User | None = None,
    pilot: User | None = None,
    origin: str = "manual",
    **details: Any,
) -> Order:
    """Record an order the client sent (from the platform or typed in by office staff)."""
    unknown = set(details) - set(DETAIL_FIELDS)
    if unknown:
        raise TypeError(f"Unknown order fields: {sorted(unknown)}")
    reference = reference.strip()
    if not reference:
        raise ServiceError("La référence de la commande est obligatoire.")
    now = timezone.now()
    received_at = received_at or now
    notified_at = notified_at or received_at
    if details.get("due_at") is None:
        details["due_at"] = compute_due_at(notified_at, contract, details.get("service_code"))
    _check_belongs_to_client(contract, details.get("asset"), details.get("service_code"))
    try:
        with transaction.atomic():
            order = Order.objects.create(
                contract=contract,
                reference=reference,
                received_at=received_at,
                notified_at=notified_at,
                state=State.TO_ACKNOWLEDGE,
                origin=origin,
                **details,
            )
    except IntegrityError as error:
        if Order.objects.filter(contract=contract, reference=reference).exists():
            raise ServiceError(f"Une commande {reference} existe déjà sur le marché {contract.reference}.") from error
        raise
    _record(
        order,
        kind="received",
        label=f"Commande reçue, échéance le {format_datetime(order.due_at)}",
        actor=actor,
        at=received_at,
        after=State.TO_ACKNOWLEDGE,
        data={"due_at": _iso(order.due_at)},
    )
    for position, line in enumerate(lines, start=1):
        add_line(order, actor=actor, at=received_at, **{"position": position, **line})
    if technician is not None or pilot is not None:
        assign_order(order, actor=actor, technician=technician, pilot=pilot, at=received_at)
    return order


def _check_belongs_to_client(contract: Contract, asset: Asset | None, service_code: ServiceCode | None) -> None:
    if asset is not None and asset.client_id != contract.client_id:
        raise ServiceError("Cet élément de patrimoine n'appartient pas au client du marché.")
    if service_code is not None and service_code.contract_id != contract.pk:
        raise ServiceError("Ce code prestation n'appartient pas au marché de la commande.")


def _describe(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return format_date(value)
    return str(value)


@transaction.atomic
def update_order_details(
    order: Order, *, actor: User | None, changes: Mapping[str, Any], at: datetime | None = None
) -> OrderEvent | None:
    """Correct what describes the order (asset, contacts, description...)."""
    unknown = set(changes) - set(DETAIL_FIELDS)
    if unknown:
        raise TypeError(f"Not editable here: {sorted(unknown)}")
    locked = _lock(order, Action.EDIT)
    changed = {name: value for name, value in changes.items() if getattr(locked, name) != value}
    if not changed:
        return None
    _check_belongs_to_client(
        locked.contract, changed.get("asset", locked.asset), changed.get("service_code", locked.service_code)
    )
    if "notified_at" in changed and "due_at" not in changes:
        changed["due_at"] = compute_due_at(
            changed["notified_at"], locked.contract, changed.get("service_code", locked.service_code)
        )
    before = {name: _describe(getattr(locked, name)) for name in changed}
    Order.objects.filter(pk=locked.pk).update(updated_at=timezone.now(), **changed)
    order.refresh_from_db()
    names = ", ".join(str(Order._meta.get_field(name).verbose_name) for name in changed)
    return _record(
        order,
        kind="edited",
        label=f"Commande modifiée : {names}",
        actor=actor,
        at=at,
        data={name: {"avant": before[name], "après": _describe(getattr(order, name))} for name in changed},
    )


@transaction.atomic
def add_line(order: Order, *, actor: User | None, at: datetime | None = None, **fields: Any) -> OrderLine:
    _lock(order, Action.EDIT)
    fields = _line_fields(order, fields)
    if order.lines.filter(reference=fields["reference"]).exists():
        raise ServiceError(f"La commande a déjà une ligne {fields['reference']}.")
    line = OrderLine.objects.create(order=order, **fields)
    _record(
        order,
        kind="line_added",
        label=f"Ligne ajoutée : {line.reference} – {line.label} ({line.quantity} {line.unit})",
        actor=actor,
        at=at,
        data={"line": line.reference},
    )
    return line


def _line_fields(order: Order, fields: Mapping[str, Any]) -> dict[str, Any]:
    fields = {name: value for name, value in fields.items() if name in LINE_FIELDS}
    price_item = fields.get("price_item")
    if price_item is not None:
        if price_item.contract_id != order.contract_id:
            raise ServiceError("Ce prix n'appartient pas au bordereau du marché de la commande.")
        # A line from the price schedule takes its label, unit and prices unless given.
        fields.setdefault("label", price_item.label)
        fields.setdefault("unit", price_item.unit)
        fields.setdefault("unit_price", price_item.unit_price)
        fields.setdefault("vat_rate", price_item.vat_rate)
        fields.setdefault("reference", price_item.code)
    if not str(fields.get("reference") or "").strip():
        fields["reference"] = f"L{order.lines.count() + 1}"
    if not str(fields.get("label") or "").strip():
        raise ServiceError("Une ligne de commande doit avoir un libellé.")
    if "quantity" in fields and Decimal(fields["quantity"]) <= 0:
        raise ServiceError("La quantité d'une ligne doit être positive.")
    return fields


@transaction.atomic
def update_line(line: OrderLine, *, actor: User | None, changes: Mapping[str, Any]) -> OrderEvent | None:
    order = _lock(line.order, Action.EDIT)
    changes = _line_fields(order, {**{name: getattr(line, name) for name in LINE_FIELDS}, **changes})
    current = OrderLine.objects.get(pk=line.pk)
    changed = {name: value for name, value in changes.items() if getattr(current, name) != value}
    if not changed:
        return None
    OrderLine.objects.filter(pk=line.pk).update(**changed)
    line.refresh_from_db()
    names = ", ".join(str(OrderLine._meta.get_field(name).verbose_name) for name in changed)
    return _record(
        order,
        kind="line_changed",
        label=f"Ligne {line.reference} modifiée : {names}",
        actor=actor,
        data={"line": line.reference},
    )


@transaction.atomic
def remove_line(line: OrderLine, *, actor: User | None) -> OrderEvent:
    order = _lock(line.order, Action.EDIT)
    if line.done:
        raise ServiceError(f"La ligne {line.reference} est réalisée : elle ne peut plus être retirée.")
    reference, label = line.reference, line.label
    OrderLine.objects.filter(pk=line.pk).delete()
    return _record(
        order,
        kind="line_removed",
        label=f"Ligne retirée : {reference} – {label}",
        actor=actor,
        data={"line": reference},
    )


# --- The actions of the state machine -------------------------------------


@transaction.atomic
def acknowledge_order(order: Order, *, actor: User | None, at: datetime | None = None) -> OrderEvent:
    return _transition(
        order, Action.ACKNOWLEDGE, Facts(), actor=actor, at=at or timezone.now(), label="Commande prise en compte"
    )


@transaction.atomic
def plan_order(
    order: Order,
    *,
    actor: User | None,
    appointment: datetime | None = None,
    planned_start: datetime | None = None,
    planned_end: datetime | None = None,
    at: datetime | None = None,
) -> OrderEvent:
    """Set the appointment, or the planned period; doing it again is a replanning."""
    replanning = order.state != State.ACKNOWLEDGED
    if appointment is not None:
        label = f"Rendez-vous {'reporté au' if replanning else 'fixé le'} {format_datetime(appointment)}"
    elif planned_start is not None and planned_end is not None:
        label = (
            f"Travaux {'replanifiés' if replanning else 'planifiés'} du {format_datetime(planned_start)} "
            f"au {format_datetime(planned_end)}"
        )
    else:
        label = "Planification"
    return _transition(
        order,
        Action.PLAN,
        Facts(appointment=appointment, planned_start=planned_start, planned_end=planned_end),
        actor=actor,
        at=at or timezone.now(),
        label=label,
        changes={
            "appointment_at": appointment,
            "planned_start": planned_start,
            "planned_end": planned_end,
            "suspend_reason": "",
        },
        data={
            "replanned": replanning,
            "appointment": _iso(appointment),
            "planned_start": _iso(planned_start),
            "planned_end": _iso(planned_end),
        },
    )


@transaction.atomic
def start_work(order: Order, *, actor: User | None, at: datetime | None = None) -> OrderEvent:
    at = at or timezone.now()
    return _transition(
        order,
        Action.START,
        Facts(at=at),
        actor=actor,
        at=at,
        label=f"Travaux démarrés le {format_datetime(at)}",
        changes={"actual_start": at},
    )


@transaction.atomic
def suspend_work(
    order: Order, *, actor: User | None, reason: str, note: str = "", at: datetime | None = None
) -> OrderEvent:
    reason_label = states.SUSPEND_REASON_LABELS.get(reason, "")  # type: ignore[call-overload]
    label = f"Intervention suspendue : {reason_label.lower()}" + (f" ({note.strip()})" if note.strip() else "")
    return _transition(
        order,
        Action.SUSPEND,
        Facts(reason=reason),
        actor=actor,
        at=at or timezone.now(),
        label=label,
        changes={"suspend_reason": reason},
        data={"reason": reason, "note": note.strip()},
    )


@transaction.atomic
def resume_work(order: Order, *, actor: User | None, at: datetime | None = None) -> OrderEvent:
    at = at or timezone.now()
    changes: dict[str, Any] = {"suspend_reason": ""}
    if order.actual_start is None:
        changes["actual_start"] = at
    return _transition(order, Action.RESUME, Facts(at=at), actor=actor, at=at, label="Travaux repris", changes=changes)


@transaction.atomic
def finish_work(order: Order, *, actor: User | None, at: datetime | None = None) -> OrderEvent:
    at = at or timezone.now()
    return _transition(
        order,
        Action.FINISH,
        Facts(at=at, actual_start=order.actual_start),
        actor=actor,
        at=at,
        label=f"Travaux terminés le {format_datetime(at)}",
        changes={"actual_end": at, "progress": 100},
    )


@transaction.atomic
def record_reception(
    order: Order, *, actor: User | None, reception_date: date, at: datetime | None = None
) -> OrderEvent:
    return _transition(
        order,
        Action.RECORD_RECEPTION,
        Facts(reception_date=reception_date),
        actor=actor,
        at=at or timezone.now(),
        label=f"Travaux réceptionnés le {format_date(reception_date)}",
        changes={"reception_date": reception_date},
        data={"reception_date": _iso(reception_date)},
    )


@transaction.atomic
def invoice_order(
    order: Order, *, actor: User | None, invoice_date: date, invoice_number: str, at: datetime | None = None
) -> OrderEvent:
    invoice_number = invoice_number.strip()
    return _transition(
        order,
        Action.INVOICE,
        Facts(invoice_date=invoice_date, invoice_number=invoice_number),
        actor=actor,
        at=at or timezone.now(),
        label=f"Facture {invoice_number} émise le {format_date(invoice_date)}",
        changes={"invoice_date": invoice_date, "invoice_number": invoice_number},
        data={"invoice_date": _iso(invoice_date), "invoice_number": invoice_number},
    )


@transaction.atomic
def close_order(order: Order, *, actor: User | None, outcome: str, at: datetime | None = None) -> OrderEvent:
    outcome_label = states.CLOSE_OUTCOME_LABELS.get(outcome, "")  # type: ignore[call-overload]
    return _transition(
        order,
        Action.CLOSE,
        Facts(outcome=outcome),
        actor=actor,
        at=at or timezone.now(),
        label=f"Commande clôturée : {outcome_label.lower()}",
        changes={"close_outcome": outcome},
        data={"outcome": outcome},
    )


@transaction.atomic
def cancel_order(order: Order, *, actor: User | None, reason: str, at: datetime | None = None) -> OrderEvent:
    reason = reason.strip()
    return _transition(
        order,
        Action.CANCEL,
        Facts(reason=reason),
        actor=actor,
        at=at or timezone.now(),
        label=f"Commande annulée : {reason}",
        changes={"cancel_reason": reason},
        data={"reason": reason},
    )


# --- Updates that keep the state ------------------------------------------


@transaction.atomic
def set_progress(order: Order, *, actor: User | None, progress: int, at: datetime | None = None) -> OrderEvent | None:
    states.apply(order.state, Action.SET_PROGRESS, Facts(progress=progress))
    locked = _lock(order, Action.SET_PROGRESS)
    if locked.progress == progress:
        return None
    Order.objects.filter(pk=locked.pk).update(progress=progress, updated_at=timezone.now())
    order.refresh_from_db()
    return _record(
        order,
        kind=Action.SET_PROGRESS.value,
        label=f"Avancement : {progress} %",
        actor=actor,
        at=at,
        data={"progress": progress, "previous": locked.progress},
    )


NOTE_LABEL_LENGTH = 300


@transaction.atomic
def add_note(order: Order, *, actor: User | None, text: str, at: datetime | None = None) -> OrderEvent:
    """A note on an open order (what was seen, what is missing): an event of its
    history, relayed to the platform with the text as its label."""
    text = " ".join(text.split())
    if not text:
        raise ServiceError("Écrivez la note avant de l'enregistrer.")
    locked = Order.objects.select_for_update().get(pk=order.pk)
    if not locked.is_open:
        raise ServiceError(f"La commande est « {locked.state_label} » : on n'y ajoute plus de note.")
    label = f"Note : {text}"
    if len(label) > NOTE_LABEL_LENGTH:
        label = label[: NOTE_LABEL_LENGTH - 1] + "…"
    return _record(order, kind="note", label=label, actor=actor, at=at, data={"text": text})


@transaction.atomic
def mark_line(line: OrderLine, *, actor: User | None, done: bool, at: datetime | None = None) -> OrderEvent | None:
    """Mark a line done or not done; marking it as it already is changes nothing."""
    order = _lock(line.order, Action.MARK_LINE)
    at = at or timezone.now()
    updated = OrderLine.objects.filter(pk=line.pk, order=order, done=not done).update(
        done=done, done_at=at if done else None
    )
    line.refresh_from_db()
    if not updated:
        return None
    return _record(
        order,
        kind=Action.MARK_LINE.value,
        label=f"Ligne {line.reference} {'réalisée' if done else 'non réalisée'} : {line.label}",
        actor=actor,
        at=at,
        data={"line": line.reference, "done": done},
    )


_UNSET: Any = object()


@transaction.atomic
def assign_order(
    order: Order,
    *,
    actor: User | None,
    technician: User | None = _UNSET,
    pilot: User | None = _UNSET,
    at: datetime | None = None,
) -> list[OrderEvent]:
    """Give the order to a technician and/or a pilot (None takes it away)."""
    locked = _lock(order, Action.ASSIGN)
    events = []
    for field, person, noun in (("technician", technician, "Technicien"), ("pilot", pilot, "Pilote")):
        if person is _UNSET or getattr(locked, f"{field}_id") == (person.pk if person else None):
            continue
        if person is not None and not person.is_active:
            raise ServiceError(f"{person} n'est plus actif : choisissez une autre personne.")
        if field == "technician" and person is not None and not person.is_technician:
            raise ServiceError(f"{person} n'est pas technicien.")
        Order.objects.filter(pk=locked.pk).update(**{field: person}, updated_at=timezone.now())
        label = f"{noun} : {person}" if person else f"{noun} retiré"
        data: dict[str, Any] = {field: person.pk if person else None}
        if field == "pilot" and person is not None:
            data["pilot_name"] = person.get_full_name()
            data["pilot_mobile"] = person.mobile
        events.append((label, data))
    order.refresh_from_db()
    return [
        _record(order, kind=Action.ASSIGN.value, label=label, actor=actor, at=at, data=data) for label, data in events
    ]


# --- Intervention reports and documents -----------------------------------

# A report (or a PDF made elsewhere) follows a visit: from the start of the
# works on, the order's closure included (a report often comes in after it).
REPORT_STATES = frozenset(
    {State.IN_PROGRESS, State.SUSPENDED, State.FINISHED, State.RECEIVED, State.INVOICED, State.CLOSED}
)
MAX_TIME_ON_SITE_MINUTES = 24 * 60
REPORT_LABELS = {DocumentKind.GENERATED_REPORT, DocumentKind.UPLOADED_REPORT}


@dataclass(frozen=True)
class ReportPhotoUpload:
    """A photo already checked and shrunk by `orders.images.process_photo`."""

    kind: PhotoKind
    image: ProcessedImage


def _lock_for_report(order: Order) -> Order:
    locked = Order.objects.select_for_update().get(pk=order.pk)
    if locked.state not in REPORT_STATES:
        raise ServiceError(
            f"La commande est à l'état « {locked.get_state_display()} » : un rapport d'intervention ne peut y être "
            "joint qu'une fois les travaux démarrés."
        )
    return locked


def _queue_report_pdf(report_id: int) -> None:
    from orders.tasks import render_report_pdf

    # After commit, so that the worker finds the report; `robust` because a
    # broker that is down must not turn a saved report into an error page: the
    # report stays "en attente" and the page offers to ask again later.
    transaction.on_commit(functools.partial(render_report_pdf.delay, report_id), robust=True)


@transaction.atomic
def submit_report(
    order: Order,
    *,
    actor: User | None,
    works_done: str,
    time_on_site_minutes: int,
    signature_status: str,
    signature: ProcessedImage | None = None,
    signatory_name: str = "",
    observations: str = "",
    materials_used: str = "",
    quote_needed: bool = False,
    quote_description: str = "",
    photos: Sequence[ReportPhotoUpload] = (),
    at: datetime | None = None,
) -> InterventionReport:
    """Store the technician's report with its photos and signature, record it in
    the order's history, and have its PDF rendered once the transaction commits."""
    works_done, quote_description = works_done.strip(), quote_description.strip()
    if not works_done:
        raise ServiceError("Décrivez les travaux réalisés.")
    if not 0 < time_on_site_minutes <= MAX_TIME_ON_SITE_MINUTES:
        raise ServiceError("Le temps passé sur place doit être compris entre 1 minute et 24 heures.")
    if signature_status not in SignatureStatus.values:
        raise ServiceError("Indiquez si l'occupant a signé, était absent ou a refusé de signer.")
    if (signature_status == SignatureStatus.SIGNED) != (signature is not None):
        raise ServiceError("Une signature n'accompagne que le choix « l'occupant signe ».")
    if quote_needed and not quote_description:
        raise ServiceError("Décrivez les travaux qui demandent un devis.")
    locked = _lock_for_report(order)
    now = at or timezone.now()
    report = InterventionReport(
        order=locked,
        works_done=works_done,
        observations=observations.strip(),
        materials_used=materials_used.strip(),
        time_on_site_minutes=time_on_site_minutes,
        signature_status=signature_status,
        signatory_name=signatory_name.strip() if signature is not None else "",
        quote_needed=quote_needed,
        quote_description=quote_description if quote_needed else "",
        created_by=actor if actor is not None and actor.pk else None,
        created_at=now,
        pdf_requested_at=timezone.now(),
    )
    if signature is not None:
        report.signature.save("signature.png", ContentFile(signature.content), save=False)
    report.save()
    positions = dict.fromkeys(PhotoKind.values, 0)
    for photo in photos:
        positions[photo.kind] += 1
        row = ReportPhoto(
            report=report,
            kind=photo.kind,
            position=positions[photo.kind],
            width=photo.image.width,
            height=photo.image.height,
        )
        row.image.save("photo.jpg", ContentFile(photo.image.content), save=False)
        row.save()
    _record(
        locked,
        kind="report_submitted",
        label="Rapport d'intervention saisi",
        actor=actor,
        at=now,
        data={
            "report": report.pk,
            "photos": len(photos),
            "signature": signature_status,
            "quote_needed": quote_needed,
        },
    )
    _queue_report_pdf(report.pk)
    return report


def start_report_pdf(report_id: int) -> bool:
    """The render task begins (again): False when the PDF is already there."""
    updated = (
        InterventionReport.objects.filter(pk=report_id)
        .exclude(pdf_status=PdfStatus.DONE)
        .update(pdf_status=PdfStatus.RENDERING, pdf_attempts=F("pdf_attempts") + 1)
    )
    return updated == 1


def record_report_pdf_error(report_id: int, *, error: str, final: bool) -> None:
    """A render failed: it waits for the task's next try, or, `final`, for a
    person to ask again (the page then offers « Relancer »)."""
    InterventionReport.objects.filter(pk=report_id).exclude(pdf_status=PdfStatus.DONE).update(
        pdf_status=PdfStatus.FAILED if final else PdfStatus.PENDING, pdf_error=error[:5000]
    )


def report_title(report: InterventionReport) -> str:
    return f"Rapport d'intervention {report.order.reference} du {timezone.localtime(report.created_at):%d/%m/%Y}"


@transaction.atomic
def attach_report_pdf(report: InterventionReport, *, content: bytes) -> Document | None:
    """Keep the rendered PDF as the report's document. Of two renders of the same
    report (a task run twice), the first to get here wins; the other's PDF is dropped."""
    locked = InterventionReport.objects.select_for_update().select_related("order").get(pk=report.pk)
    if locked.pdf_status == PdfStatus.DONE:
        return None
    stamp = timezone.localtime(locked.created_at)
    document = attach_document(
        locked.order,
        actor=locked.created_by,
        file=ContentFile(content),
        kind=DocumentKind.GENERATED_REPORT,
        title=report_title(locked),
        file_name=f"rapport-intervention-{locked.order.reference}-{stamp:%Y%m%d-%H%M}.pdf",
    )
    InterventionReport.objects.filter(pk=locked.pk).update(pdf_status=PdfStatus.DONE, pdf_error="", document=document)
    return document


@transaction.atomic
def retry_report_pdf(report: InterventionReport, *, actor: User | None) -> InterventionReport:
    """« Relancer »: a render that failed, or that never started (its task lost), is asked again."""
    locked = InterventionReport.objects.select_for_update().get(pk=report.pk)
    if not locked.can_retry_pdf:
        raise ServiceError("Le PDF de ce rapport est déjà produit, ou en cours de production : patientez un instant.")
    InterventionReport.objects.filter(pk=locked.pk).update(
        pdf_status=PdfStatus.PENDING, pdf_error="", pdf_requested_at=timezone.now()
    )
    logger.info("PDF of report %s asked again by %s", locked.pk, actor)
    _queue_report_pdf(locked.pk)
    locked.refresh_from_db()
    return locked


# A render that started this many times without finishing crashes its worker
# (the task is acknowledged late, so a killed worker's task comes back): stop.
PDF_MAX_STARTS = 6


def requeue_stalled_report_pdfs() -> tuple[int, int]:
    """The sweep's half of « Relancer »: reports whose PDF has waited far longer
    than a render takes (its task lost with a broker, or a worker killed) are
    asked again; one that keeps failing that way is marked failed for a person.
    Returns (asked again, given up)."""
    requeued = given_up = 0
    cutoff = timezone.now() - PDF_STALLED_AFTER
    stalled = InterventionReport.objects.filter(
        pdf_status__in=(PdfStatus.PENDING, PdfStatus.RENDERING), pdf_requested_at__lt=cutoff
    ).values_list("pk", flat=True)
    for report_id in list(stalled):
        with transaction.atomic():
            report = (
                InterventionReport.objects.select_for_update(skip_locked=True)
                .filter(pk=report_id, pdf_status__in=(PdfStatus.PENDING, PdfStatus.RENDERING))
                .first()
            )
            if report is None or report.pdf_requested_at >= cutoff:
                continue
            if report.pdf_attempts >= PDF_MAX_STARTS:
                InterventionReport.objects.filter(pk=report.pk).update(
                    pdf_status=PdfStatus.FAILED,
                    pdf_error=f"La production a été interrompue {report.pdf_attempts} fois sans aboutir.",
                )
                logger.warning("PDF of report %s given up after %s starts", report.pk, report.pdf_attempts)
                given_up += 1
                continue
            InterventionReport.objects.filter(pk=report.pk).update(
                pdf_status=PdfStatus.PENDING, pdf_requested_at=timezone.now()
            )
            _queue_report_pdf(report.pk)
            requeued += 1
    return requeued, given_up


def _share_document(order: Order, event: OrderEvent, document: Document) -> None:
    """The seam with the relay for documents: the file goes to the platform as a
    document message, in sequence with the order's logs (same outbox)."""
    sharing.share_document(order, event, document)


def _download_name(name: str, default: str) -> str:
    """What the browser proposes when saving: a plain ASCII file name ending in
    .pdf (`Rapport été.pdf` → `Rapport_ete.pdf`), which every browser takes as it is."""
    name = unicodedata.normalize("NFKD", name.replace("\\", "/").rsplit("/", 1)[-1])
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name.encode("ascii", "ignore").decode())[:150]
    stem = name[:-4] if name.lower().endswith(".pdf") else name
    return f"{stem.strip('._') or default}.pdf"


@transaction.atomic
def attach_document(
    order: Order,
    *,
    actor: User | None,
    file: File,
    kind: str,
    title: str,
    file_name: str = "",
    mime: str = "application/pdf",
) -> Document:
    """Keep a file for the order (a generated or uploaded report...), record it
    in the history and have it sent to the client's platform.

    The file must already be checked (`orders.uploads.check_pdf` for uploads)."""
    if kind == DocumentKind.GENERATED_REPORT:
        # It belongs to a report accepted earlier: kept whatever the order became since.
        locked = Order.objects.select_for_update().get(pk=order.pk)
    else:
        locked = _lock_for_report(order)
    title = " ".join(title.split())[:200]
    if not title:
        raise ServiceError("Donnez un titre au document.")
    digest, size = hashlib.sha256(), 0
    for chunk in file.chunks():
        digest.update(chunk)
        size += len(chunk)
    if size == 0:
        raise ServiceError("Le fichier est vide.")
    document = Document(
        order=locked,
        kind=kind,
        title=title,
        file_name=_download_name(file_name or getattr(file, "name", "") or "", f"document-{locked.reference}"),
        mime=mime,
        size=size,
        sha256=digest.hexdigest(),
        created_by=actor if actor is not None and actor.pk else None,
        created_at=timezone.now().replace(microsecond=0),  # the platform keeps seconds
    )
    document.file.save(document.file_name, file, save=False)
    document.save()
    label = "Rapport d'intervention ajouté" if kind in REPORT_LABELS else f"Document ajouté : {title}"
    # Not `_record`: the document message itself tells the platform, no log is sent for it.
    event = OrderEvent.objects.create(
        order=locked,
        at=timezone.now(),
        kind="document_added",
        label=label,
        actor=document.created_by,
        data={"document": document.pk, "kind": kind, "title": title},
    )
    _share_document(locked, event, document)
    return document


# --- Observations and extensions of the execution period (CCAG-MI §3.7.2, §14.3) ---
#
# The contractor's two written remedies against an order: observations on its
# prescriptions, within 15 days of its receipt, and a request to extend the
# execution period when a cause it is not answerable for holds the works up,
# within 15 days of the cause and before the period has expired. Each is an
# event of the order, relayed to the platform with its label (the order keeps
# its state, and the platform its status); the buyer's answer to an extension
# is recorded when it comes, and moves the due date when it grants days.
# Deadlines are checked against `at`, the moment the person acts (now, from
# the pages): `orders.deadlines` counts them as the CCAG does.

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
    deadline = deadlines.observation_deadline(locked.received_at)
    if not deadline.is_open(at):
        raise ServiceError(
            f"La commande a été reçue le {format_date(deadlines.local_date(locked.received_at))} : le délai de "
            f"{deadlines.OBSERVATION_DAYS} jours pour formuler des observations a expiré {_deadline_text(deadline)} "
            "(CCAG-MI art. 3.7.2). La commande s'exécute telle qu'elle a été notifiée."
        )
    observation = Observation.objects.create(
        order=locked, text=text.strip(), made_at=at, made_by=actor if actor is not None and actor.pk else None
    )
    event = _record(
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
    15 days of the cause arising, never once the period has expired (§14.3.4),
    one request at a time."""
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
    pending = locked.extension_requests.filter(decision=ExtensionDecision.PENDING).first()
    if pending is not None:
        raise ServiceError(
            f"La demande de prolongation du {format_date(deadlines.local_date(pending.requested_at))} attend encore "
            "la réponse du gestionnaire : enregistrez-la avant d'en présenter une autre."
        )
    if at >= locked.due_at:
        raise ServiceError(
            f"Le délai d'exécution a expiré le {format_datetime(locked.due_at)} : aucune demande de prolongation "
            "ne peut plus être présentée (CCAG-MI art. 14.3.4)."
        )
    deadline = deadlines.extension_deadline(cause_date, locked.due_at)
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
    _record(
        locked,
        kind="extension_requested",
        label=(
            f"Demande de prolongation du délai d'exécution de {_days(days)} : {cause} "
            f"(cause apparue le {format_date(cause_date)})"
        ),
        actor=actor,
        at=at,
        data={"extension": extension.pk, "days": days, "cause_date": _iso(cause_date), "due_at": _iso(locked.due_at)},
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
        after = before + timedelta(days=granted_days)
        changes |= {"decision": ExtensionDecision.GRANTED, "granted_days": granted_days, "due_at_after": after}
        Order.objects.filter(pk=locked_order.pk).update(due_at=after, updated_at=now)
        locked_order.refresh_from_db()
        kind = "extension_granted"
        label = (
            f"Prolongation du délai accordée par le gestionnaire : {_days(granted_days)}, "
            f"nouvelle échéance le {format_datetime(after)}"
        )
        data |= {"granted_days": granted_days, "due_at_before": _iso(before), "due_at": _iso(after)}
    else:
        changes["decision"] = ExtensionDecision.REFUSED
        kind, label = "extension_refused", "Prolongation du délai refusée par le gestionnaire"
    if note:
        label = f"{label} – {note}"
    ExtensionRequest.objects.filter(pk=locked.pk).update(**changes)
    _record(locked_order, kind=kind, label=label, actor=actor, at=at, data=data)
    extension.refresh_from_db()
    return extension
