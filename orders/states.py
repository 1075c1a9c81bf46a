"""The order state machine: which action is allowed from which state, and what
each action needs. Pure Python, no Django: the services consult it before every
write, the views ask it which buttons to show, and its tests cover every
(state, action) pair without a database.

States follow the contracts' list (requirements D3) plus "suspendu" and
"annulé". An action either moves the order to another state or, for the
updates that are not state changes (progress, lines, assignment, ...), leaves
it where it is; both kinds are refused outside the states listed for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from portal.errors import Refused


class State(StrEnum):
    TO_ACKNOWLEDGE = "to_acknowledge"
    ACKNOWLEDGED = "acknowledged"
    PLANNED = "planned"
    IN_PROGRESS = "in_progress"
    SUSPENDED = "suspended"
    FINISHED = "finished"
    RECEIVED = "received"
    INVOICED = "invoiced"
    CLOSED = "closed"
    CANCELLED = "cancelled"


STATE_LABELS: dict[State, str] = {
    State.TO_ACKNOWLEDGE: "À prendre en compte",
    State.ACKNOWLEDGED: "Pris en compte",
    State.PLANNED: "Planifié",
    State.IN_PROGRESS: "En cours",
    State.SUSPENDED: "Suspendu",
    State.FINISHED: "Terminé",
    State.RECEIVED: "Réceptionné",
    State.INVOICED: "Facturé",
    State.CLOSED: "Clôturé",
    State.CANCELLED: "Annulé",
}

# States in which the order still needs work or paperwork from the contractor.
OPEN_STATES = frozenset(STATE_LABELS) - {State.CLOSED, State.CANCELLED}
# Until its works are finished an order can be late (CCAG §14.1); after, it is done.
WORK_STATES = (State.TO_ACKNOWLEDGE, State.ACKNOWLEDGED, State.PLANNED, State.IN_PROGRESS, State.SUSPENDED)
DONE_STATES = (State.FINISHED, State.RECEIVED, State.INVOICED, State.CLOSED)


class Action(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    PLAN = "plan"
    START = "start"
    SUSPEND = "suspend"
    RESUME = "resume"
    FINISH = "finish"
    RECORD_RECEPTION = "record_reception"
    INVOICE = "invoice"
    CLOSE = "close"
    CANCEL = "cancel"
    SET_PROGRESS = "set_progress"
    MARK_LINE = "mark_line"
    ASSIGN = "assign"
    EDIT = "edit"


ACTION_LABELS: dict[Action, str] = {
    Action.ACKNOWLEDGE: "Prendre en compte",
    Action.PLAN: "Planifier",
    Action.START: "Démarrer les travaux",
    Action.SUSPEND: "Suspendre",
    Action.RESUME: "Reprendre",
    Action.FINISH: "Terminer les travaux",
    Action.RECORD_RECEPTION: "Enregistrer la réception",
    Action.INVOICE: "Facturer",
    Action.CLOSE: "Clôturer",
    Action.CANCEL: "Annuler",
    Action.SET_PROGRESS: "Indiquer l'avancement",
    Action.MARK_LINE: "Marquer une ligne",
    Action.ASSIGN: "Affecter",
    Action.EDIT: "Modifier la commande",
}


class SuspendReason(StrEnum):
    """Why work stops; each maps to an Intent `hold/<reason>` event."""

    OCCUPANT_ABSENT = "occupant_absent"
    QUOTE_REQUEST = "quote_request"


SUSPEND_REASON_LABELS: dict[SuspendReason, str] = {
    SuspendReason.OCCUPANT_ABSENT: "Occupant absent",
    SuspendReason.QUOTE_REQUEST: "Devis nécessaire",
}


class CloseOutcome(StrEnum):
    """How an order ends; each maps to an Intent `closed/<outcome>` event."""

    DONE = "done"
    SOLVED = "solved"
    PARTIAL_REPAIR = "partial_repair"
    OCCUPANT_ABSENT = "occupant_absent"


CLOSE_OUTCOME_LABELS: dict[CloseOutcome, str] = {
    CloseOutcome.DONE: "Travaux réalisés",
    CloseOutcome.SOLVED: "Problème résolu",
    CloseOutcome.PARTIAL_REPAIR: "Réparation partielle",
    CloseOutcome.OCCUPANT_ABSENT: "Occupant absent",
}

S = State
_SAME = None  # target of an update that keeps the state

# action -> {state the action is allowed from: state it leads to (None: unchanged)}
TRANSITIONS: dict[Action, dict[State, State | None]] = {
    Action.ACKNOWLEDGE: {S.TO_ACKNOWLEDGE: S.ACKNOWLEDGED},
    # Planning again (replanning) is allowed while the work has not started,
    # and after a suspension (e.g. the occupant was absent at the appointment).
    Action.PLAN: {
        S.ACKNOWLEDGED: S.PLANNED,
        S.PLANNED: S.PLANNED,
        S.SUSPENDED: S.PLANNED,
    },
    # An emergency can be started without an appointment.
    Action.START: {S.ACKNOWLEDGED: S.IN_PROGRESS, S.PLANNED: S.IN_PROGRESS},
    Action.SUSPEND: {S.PLANNED: S.SUSPENDED, S.IN_PROGRESS: S.SUSPENDED},
    Action.RESUME: {S.SUSPENDED: S.IN_PROGRESS},
    Action.FINISH: {S.IN_PROGRESS: S.FINISHED},
    Action.RECORD_RECEPTION: {S.FINISHED: S.RECEIVED},
    Action.INVOICE: {S.FINISHED: S.INVOICED, S.RECEIVED: S.INVOICED},
    # An order whose occupant never lets the technician in can be closed from
    # a suspension ("closed/occupant_absent").
    Action.CLOSE: {
        S.FINISHED: S.CLOSED,
        S.RECEIVED: S.CLOSED,
        S.INVOICED: S.CLOSED,
        S.SUSPENDED: S.CLOSED,
    },
    Action.CANCEL: {
        S.TO_ACKNOWLEDGE: S.CANCELLED,
        S.ACKNOWLEDGED: S.CANCELLED,
        S.PLANNED: S.CANCELLED,
        S.IN_PROGRESS: S.CANCELLED,
        S.SUSPENDED: S.CANCELLED,
    },
    Action.SET_PROGRESS: {
        S.ACKNOWLEDGED: _SAME,
        S.PLANNED: _SAME,
        S.IN_PROGRESS: _SAME,
        S.SUSPENDED: _SAME,
    },
    Action.MARK_LINE: {
        S.ACKNOWLEDGED: _SAME,
        S.PLANNED: _SAME,
        S.IN_PROGRESS: _SAME,
        S.SUSPENDED: _SAME,
        S.FINISHED: _SAME,
    },
    Action.ASSIGN: dict.fromkeys(OPEN_STATES, _SAME),
    Action.EDIT: dict.fromkeys(OPEN_STATES, _SAME),
}


class TransitionError(Refused):
    """An action the state machine refuses. `str()` is a French sentence for people."""

    def __init__(self, state: State, action: Action, message: str) -> None:
        self.state = State(state)
        self.action = Action(action)
        self.message = message
        super().__init__(message)


class IllegalTransition(TransitionError):
    def __init__(self, state: State, action: Action) -> None:
        state, action = State(state), Action(action)
        allowed = ", ".join(f"« {STATE_LABELS[s]} »" for s in TRANSITIONS[action])
        super().__init__(
            state,
            action,
            f"Action « {ACTION_LABELS[action]} » impossible : la commande est à l'état "
            f"« {STATE_LABELS[state]} » (possible seulement à l'état {allowed}).",
        )


class MissingRequirement(TransitionError):
    def __init__(self, state: State, action: Action, detail: str) -> None:
        state, action = State(state), Action(action)
        super().__init__(
            state,
            action,
            f"Action « {ACTION_LABELS[action]} » impossible à l'état « {STATE_LABELS[state]} » : {detail}",
        )


@dataclass(frozen=True)
class Facts:
    """What an action brings, and the order's current values it is checked against."""

    appointment: datetime | None = None
    planned_start: datetime | None = None
    planned_end: datetime | None = None
    at: datetime | None = None  # when the action happened
    actual_start: datetime | None = None  # the order's, for finishing
    reason: str = ""
    outcome: str = ""
    reception_date: date | None = None
    invoice_date: date | None = None
    invoice_number: str = ""
    progress: int | Decimal | None = None


# An appointment this long before the moment it is set is still taken (set
# on the doorstep, or a phone's clock a little late); earlier, it is refused.
PAST_APPOINTMENT_GRACE = timedelta(minutes=30)


def _require_plan(f: Facts) -> str | None:
    if f.appointment is None and (f.planned_start is None or f.planned_end is None):
        return "il faut un rendez-vous, ou une date de début et une date de fin prévues."
    if f.appointment is not None and (f.planned_start or f.planned_end):
        return "indiquez soit un rendez-vous, soit une période prévue, pas les deux."
    if f.planned_start and f.planned_end and f.planned_end <= f.planned_start:
        return "la fin prévue doit être après le début prévu."
    if f.at is not None and f.appointment is not None and f.appointment < f.at - PAST_APPOINTMENT_GRACE:
        return "ce rendez-vous est déjà passé : indiquez une date et une heure à venir."
    if f.at is not None and f.planned_end is not None and f.planned_end < f.at - PAST_APPOINTMENT_GRACE:
        return "cette période de travaux est déjà passée : indiquez des dates à venir."
    return None


def _require_at(f: Facts) -> str | None:
    return "il faut la date et l'heure." if f.at is None else None


def _require_finish(f: Facts) -> str | None:
    if f.at is None:
        return "il faut la date et l'heure de fin des travaux."
    if f.actual_start is not None and f.at < f.actual_start:
        return "la fin des travaux ne peut pas précéder leur début."
    return None


def _require_suspend(f: Facts) -> str | None:
    if f.reason not in set(SuspendReason):
        return "il faut un motif de suspension (occupant absent ou devis nécessaire)."
    return None


def _require_reception(f: Facts) -> str | None:
    return "il faut la date de réception." if f.reception_date is None else None


def _require_invoice(f: Facts) -> str | None:
    if f.invoice_date is None:
        return "il faut la date de la facture."
    if not f.invoice_number.strip():
        return "il faut le numéro de la facture."
    return None


def _require_close(f: Facts) -> str | None:
    if f.outcome not in set(CloseOutcome):
        return "il faut préciser l'issue de l'intervention."
    return None


def _require_reason(f: Facts) -> str | None:
    return "il faut un motif d'annulation." if not f.reason.strip() else None


def _require_progress(f: Facts) -> str | None:
    if f.progress is None or not 0 <= f.progress <= 100:
        return "l'avancement doit être un pourcentage entre 0 et 100."
    return None


REQUIREMENTS: Mapping[Action, Any] = {
    Action.PLAN: _require_plan,
    Action.START: _require_at,
    Action.RESUME: _require_at,
    Action.FINISH: _require_finish,
    Action.SUSPEND: _require_suspend,
    Action.RECORD_RECEPTION: _require_reception,
    Action.INVOICE: _require_invoice,
    Action.CLOSE: _require_close,
    Action.CANCEL: _require_reason,
    Action.SET_PROGRESS: _require_progress,
}


def is_allowed(state: State | str, action: Action | str) -> bool:
    return State(state) in TRANSITIONS[Action(action)]


def allowed_actions(state: State | str) -> list[Action]:
    """The actions a person may take on an order in `state`, in a stable order."""
    return [action for action in Action if State(state) in TRANSITIONS[action]]


def apply(state: State | str, action: Action | str, facts: Facts | None = None) -> State:
    """Return the state `action` leads to from `state`, or raise a TransitionError."""
    state, action = State(state), Action(action)
    targets = TRANSITIONS[action]
    if state not in targets:
        raise IllegalTransition(state, action)
    check = REQUIREMENTS.get(action)
    problem = check(facts or Facts()) if check else None
    if problem:
        raise MissingRequirement(state, action, problem)
    target = targets[state]
    return state if target is None else target
