"""The state machine, without a database: every (state, action) pair."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from orders.states import (
    ACTION_LABELS,
    STATE_LABELS,
    Action,
    CloseOutcome,
    Facts,
    IllegalTransition,
    MissingRequirement,
    State,
    SuspendReason,
    allowed_actions,
    apply,
)

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 11, 22, 9, 30, tzinfo=PARIS)

A, S = Action, State
TO_ACK, ACK, PLANNED, IN_PROGRESS, SUSPENDED = S.TO_ACKNOWLEDGE, S.ACKNOWLEDGED, S.PLANNED, S.IN_PROGRESS, S.SUSPENDED
FINISHED, RECEIVED, INVOICED, CLOSED, CANCELLED = S.FINISHED, S.RECEIVED, S.INVOICED, S.CLOSED, S.CANCELLED
SAME = "same"

# Written out by hand from the contracts' workflow, independently of the
# module's table: (action, state) -> the state it leads to, SAME, or absent
# when the action is refused.
EXPECTED: dict[tuple[Action, State], State | str] = {
    (A.ACKNOWLEDGE, TO_ACK): ACK,
    (A.PLAN, ACK): PLANNED,
    (A.PLAN, PLANNED): PLANNED,
    (A.PLAN, SUSPENDED): PLANNED,
    (A.START, ACK): IN_PROGRESS,
    (A.START, PLANNED): IN_PROGRESS,
    (A.SUSPEND, PLANNED): SUSPENDED,
    (A.SUSPEND, IN_PROGRESS): SUSPENDED,
    (A.RESUME, SUSPENDED): IN_PROGRESS,
    (A.FINISH, IN_PROGRESS): FINISHED,
    (A.RECORD_RECEPTION, FINISHED): RECEIVED,
    (A.INVOICE, FINISHED): INVOICED,
    (A.INVOICE, RECEIVED): INVOICED,
    (A.CLOSE, FINISHED): CLOSED,
    (A.CLOSE, RECEIVED): CLOSED,
    (A.CLOSE, INVOICED): CLOSED,
    (A.CLOSE, SUSPENDED): CLOSED,
    (A.CANCEL, TO_ACK): CANCELLED,
    (A.CANCEL, ACK): CANCELLED,
    (A.CANCEL, PLANNED): CANCELLED,
    (A.CANCEL, IN_PROGRESS): CANCELLED,
    (A.CANCEL, SUSPENDED): CANCELLED,
    **{(A.SET_PROGRESS, s): SAME for s in (ACK, PLANNED, IN_PROGRESS, SUSPENDED)},
    **{(A.MARK_LINE, s): SAME for s in (ACK, PLANNED, IN_PROGRESS, SUSPENDED, FINISHED)},
    **{(A.ASSIGN, s): SAME for s in State if s not in (CLOSED, CANCELLED)},
    **{(A.EDIT, s): SAME for s in State if s not in (CLOSED, CANCELLED)},
}

# Facts that satisfy each action's requirements.
VALID_FACTS: dict[Action, Facts] = {
    A.PLAN: Facts(appointment=NOW + timedelta(days=2)),
    A.START: Facts(at=NOW),
    A.RESUME: Facts(at=NOW),
    A.FINISH: Facts(at=NOW, actual_start=NOW - timedelta(hours=2)),
    A.SUSPEND: Facts(reason=SuspendReason.OCCUPANT_ABSENT),
    A.RECORD_RECEPTION: Facts(reception_date=date(2026, 11, 22)),
    A.INVOICE: Facts(invoice_date=date(2026, 11, 22), invoice_number="F2026-0042"),
    A.CLOSE: Facts(outcome=CloseOutcome.DONE),
    A.CANCEL: Facts(reason="Doublon de la commande OPH57_2611"),
    A.SET_PROGRESS: Facts(progress=40),
}

ALL_PAIRS = [(state, action) for state in State for action in Action]


def test_the_table_covers_every_pair():
    assert len(ALL_PAIRS) == len(State) * len(Action) == 140


@pytest.mark.parametrize(("state", "action"), ALL_PAIRS, ids=[f"{s}-{a}" for s, a in ALL_PAIRS])
def test_every_state_and_action_pair_is_allowed_or_refused_as_the_workflow_says(state, action):
    expected = EXPECTED.get((action, state))
    facts = VALID_FACTS.get(action, Facts())
    if expected is None:
        with pytest.raises(IllegalTransition) as refused:
            apply(state, action, facts)
        assert refused.value.state == state
        assert refused.value.action == action
        message = str(refused.value)
        assert f"« {ACTION_LABELS[action]} »" in message
        assert f"« {STATE_LABELS[state]} »" in message
        assert action not in allowed_actions(state)
    else:
        assert apply(state, action, facts) == (state if expected == SAME else expected)
        assert action in allowed_actions(state)


@pytest.mark.parametrize("state", list(State))
def test_closed_and_cancelled_orders_accept_nothing(state):
    if state in (CLOSED, CANCELLED):
        assert allowed_actions(state) == []
    else:
        assert allowed_actions(state)


def test_a_refusal_names_the_state_and_the_action_in_french():
    with pytest.raises(IllegalTransition) as refused:
        apply(CLOSED, A.START, Facts(at=NOW))
    assert str(refused.value) == (
        "Action « Démarrer les travaux » impossible : la commande est à l'état « Clôturé » "
        "(possible seulement à l'état « Pris en compte », « Planifié »)."
    )


def test_states_and_actions_accept_their_string_values():
    assert apply("planned", "start", Facts(at=NOW)) == IN_PROGRESS


# --- What each action requires ----------------------------------------------

REQUIREMENT_CASES = [
    (A.PLAN, ACK, Facts(), "il faut un rendez-vous"),
    (A.PLAN, ACK, Facts(planned_start=NOW), "il faut un rendez-vous"),
    (A.PLAN, ACK, Facts(planned_start=NOW, planned_end=NOW), "la fin prévue doit être après le début prévu"),
    (A.PLAN, ACK, Facts(planned_start=NOW, planned_end=NOW - timedelta(hours=1)), "la fin prévue doit être après"),
    (A.PLAN, ACK, Facts(appointment=NOW, planned_start=NOW, planned_end=NOW + timedelta(days=1)), "pas les deux"),
    (A.START, PLANNED, Facts(), "il faut la date et l'heure"),
    (A.RESUME, SUSPENDED, Facts(), "il faut la date et l'heure"),
    (A.FINISH, IN_PROGRESS, Facts(), "il faut la date et l'heure de fin"),
    (A.FINISH, IN_PROGRESS, Facts(at=NOW, actual_start=NOW + timedelta(minutes=1)), "ne peut pas précéder leur début"),
    (A.SUSPEND, IN_PROGRESS, Facts(), "il faut un motif de suspension"),
    (A.SUSPEND, IN_PROGRESS, Facts(reason="pluie"), "il faut un motif de suspension"),
    (A.RECORD_RECEPTION, FINISHED, Facts(), "il faut la date de réception"),
    (A.INVOICE, FINISHED, Facts(), "il faut la date de la facture"),
    (A.INVOICE, FINISHED, Facts(invoice_date=date(2026, 11, 22), invoice_number="  "), "il faut le numéro"),
    (A.CLOSE, FINISHED, Facts(), "il faut préciser l'issue"),
    (A.CLOSE, FINISHED, Facts(outcome="perfect"), "il faut préciser l'issue"),
    (A.CANCEL, PLANNED, Facts(), "il faut un motif d'annulation"),
    (A.CANCEL, PLANNED, Facts(reason="   "), "il faut un motif d'annulation"),
    (A.SET_PROGRESS, IN_PROGRESS, Facts(), "entre 0 et 100"),
    (A.SET_PROGRESS, IN_PROGRESS, Facts(progress=-1), "entre 0 et 100"),
    (A.SET_PROGRESS, IN_PROGRESS, Facts(progress=101), "entre 0 et 100"),
]


@pytest.mark.parametrize(("action", "state", "facts", "message"), REQUIREMENT_CASES)
def test_an_action_without_what_it_requires_is_refused_with_the_reason(action, state, facts, message):
    with pytest.raises(MissingRequirement) as refused:
        apply(state, action, facts)
    assert message in str(refused.value)
    assert f"« {ACTION_LABELS[action]} »" in str(refused.value)
    assert f"« {STATE_LABELS[state]} »" in str(refused.value)


def test_planning_accepts_a_period_instead_of_an_appointment():
    facts = Facts(planned_start=NOW, planned_end=NOW + timedelta(days=3))
    assert apply(ACK, A.PLAN, facts) == PLANNED


def test_finishing_at_the_very_moment_work_started_is_allowed():
    assert apply(IN_PROGRESS, A.FINISH, Facts(at=NOW, actual_start=NOW)) == FINISHED


@pytest.mark.parametrize("progress", [0, 100])
def test_progress_bounds_are_included(progress):
    assert apply(IN_PROGRESS, A.SET_PROGRESS, Facts(progress=progress)) == IN_PROGRESS


def test_an_illegal_action_is_refused_before_its_requirements_are_checked():
    with pytest.raises(IllegalTransition):
        apply(CLOSED, A.CANCEL, Facts())
