"""The one table of what people can do to an order: for each action of the state
machine (`orders.states.Action`), the service that applies it, the forms that
ask for it (the technician's, also used on the supervisor's page, and the
office's in the admin), what it is called, what it asks to confirm, and in which
states it is the next step.

The technician's views (orders/views.py, orders/urls.py), the supervisor's order
page (orders/supervisor/order.py) and the admin (orders/admin.py) read it;
nothing else lists actions. The state machine stays the judge of what is allowed
when: this table only says how each action reaches a page. The labels stay in
`orders.states` (its French refusals name the action) and are read from there.

The cleaned data of an action's form are exactly the keyword arguments of its
service, called as `service(order, actor=..., **cleaned_data)`, or with the
order's line for an action on a line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django import forms

from orders import planning, receiving, reports, services
from orders.forms import (
    AcknowledgeForm,
    AtForm,
    CancelForm,
    CloseForm,
    InvoiceForm,
    LineForm,
    PlanForm,
    ProgressForm,
    ReceptionForm,
    SuspendForm,
    TechnicianActionForm,
    TechnicianPlanForm,
    TechnicianSuspendForm,
)
from orders.models import Order, OrderLine
from orders.states import ACTION_LABELS, STATE_LABELS, TRANSITIONS, Action, State


@dataclass(frozen=True)
class ActionSpec:
    action: Action
    # Applies it: service(order or line, actor=..., **form.cleaned_data).
    service: Callable[..., Any]
    # Its page in the admin (None: changed elsewhere in the admin, or not at all).
    admin_form: type[forms.Form] | None = None
    # The technician's form, posted to `commandes/<pk>/<path>/` named `orders:<url>`.
    technician_form: type[TechnicianActionForm] | None = None
    path: str = ""
    url: str = ""
    # The technician's words for it, on its button.
    button: str = ""
    # Asked before it is sent (the phone's own dialog).
    confirm: str = ""
    # The states in which it is the next step, in the bar at the bottom of the phone's screen.
    main_in: frozenset[State] = field(default_factory=frozenset)
    # Shown in a section of its own on the order's page (the progress, the lines),
    # not among the action buttons.
    own_section: bool = False
    # Its name in the page (the form's ids, which form a refusal shows again) and in
    # the receipts of actions sent from a phone; the action's value unless said.
    key: str = ""
    # Applied to one of the order's lines (the URL carries `line_pk`), not to the order.
    on_line: bool = False

    @property
    def label(self) -> str:
        return ACTION_LABELS[self.action]

    @property
    def name(self) -> str:
        return self.key or self.action.value

    @property
    def url_name(self) -> str:
        return f"orders:{self.url}"


# In the order the actions are shown on the pages.
TABLE: tuple[ActionSpec, ...] = (
    ActionSpec(
        Action.ACKNOWLEDGE,
        services.acknowledge_order,
        admin_form=AcknowledgeForm,
        technician_form=TechnicianActionForm,
        path="prendre-en-compte",
        url="acknowledge",
        button="Prendre en compte",
        main_in=frozenset({State.TO_ACKNOWLEDGE}),
    ),
    ActionSpec(
        Action.PLAN,
        planning.plan_order,
        admin_form=PlanForm,
        technician_form=TechnicianPlanForm,
        path="planifier",
        url="plan",
        button="Fixer le rendez-vous",
        main_in=frozenset({State.ACKNOWLEDGED}),
    ),
    ActionSpec(
        Action.START,
        services.start_work,
        admin_form=AtForm,
        technician_form=TechnicianActionForm,
        path="demarrer",
        url="start",
        button="Démarrer les travaux",
        main_in=frozenset({State.PLANNED}),
    ),
    ActionSpec(
        Action.RESUME,
        services.resume_work,
        admin_form=AtForm,
        technician_form=TechnicianActionForm,
        path="reprendre",
        url="resume",
        button="Reprendre les travaux",
        main_in=frozenset({State.SUSPENDED}),
    ),
    ActionSpec(
        Action.SUSPEND,
        services.suspend_work,
        admin_form=SuspendForm,
        technician_form=TechnicianSuspendForm,
        path="suspendre",
        url="suspend",
        button="Suspendre l'intervention",
    ),
    ActionSpec(
        Action.FINISH,
        reports.finish_work,
        admin_form=AtForm,
        technician_form=TechnicianActionForm,
        path="terminer",
        url="finish",
        button="Terminer les travaux",
        confirm="Terminer les travaux ? La commande passera à « Terminé » et le client en sera informé.",
        main_in=frozenset({State.IN_PROGRESS}),
    ),
    ActionSpec(Action.RECORD_RECEPTION, services.record_reception, admin_form=ReceptionForm),
    ActionSpec(Action.INVOICE, services.invoice_order, admin_form=InvoiceForm),
    ActionSpec(Action.CLOSE, services.close_order, admin_form=CloseForm),
    ActionSpec(Action.CANCEL, services.cancel_order, admin_form=CancelForm),
    ActionSpec(
        Action.SET_PROGRESS,
        services.set_progress,
        technician_form=ProgressForm,
        path="avancement",
        url="progress",
        button="Enregistrer l'avancement",
        own_section=True,
        key="progress",
    ),
    ActionSpec(
        Action.MARK_LINE,
        services.mark_line,
        technician_form=LineForm,
        path="lignes/<int:line_pk>",
        url="mark_line",
        own_section=True,
        key="line",
        on_line=True,
    ),
    # In the admin, through the order's own form (OrderAdmin.save_model); on the
    # supervisor's page, through forms of their own (orders/supervisor/order.py).
    ActionSpec(Action.ASSIGN, services.assign_order),
    ActionSpec(Action.EDIT, receiving.update_order_details),
)
ACTIONS: dict[Action, ActionSpec] = {spec.action: spec for spec in TABLE}


def get(value: str) -> ActionSpec | None:
    """The action called `value` (as in a URL), or None."""
    try:
        return ACTIONS[Action(value)]
    except ValueError:
        return None


def technician_actions() -> Iterator[ActionSpec]:
    """The actions a technician takes from their pages, each at a URL of its own."""
    return (spec for spec in TABLE if spec.technician_form is not None)


def admin_actions() -> Iterator[ActionSpec]:
    """The actions with a page in the admin."""
    return (spec for spec in TABLE if spec.admin_form is not None)


def main_action(state: State | str) -> Action | None:
    """The next step of an order in `state`, if there is one."""
    return next((spec.action for spec in TABLE if State(state) in spec.main_in), None)


# --- The action buttons of the order's pages -------------------------------------------


@dataclass(frozen=True)
class ActionButton:
    """One action on an order's page: its form, where it posts, what it says."""

    key: str
    label: str
    url: str
    form: forms.Form
    confirm: str = ""
    main: bool = False
    # The state the order will be in once done (shown by the phone while the action waits to be sent).
    leads_to: str = ""


def technician_form(
    spec: ActionSpec, order: Order, data: Any = None, *, line: OrderLine | None = None, **kwargs: Any
) -> TechnicianActionForm:
    """The technician's form of `spec` for `order` (for one of its lines: `line`),
    the same on the page and when it is posted, by the technician or a supervisor."""
    if spec.technician_form is None:
        raise LookupError(f"{spec.action} has no technician's form")
    if spec.action == Action.PLAN:
        # Planned before: the form moves its date, and asks the reason.
        kwargs["replanning"] = planning.plans_again(order)
    # Distinct ids per form: several forms share the page.
    auto_id = f"{spec.name}-{line.pk}-%s" if line is not None else f"{spec.name}-%s"
    return spec.technician_form(data, auto_id=auto_id, **kwargs)


def buttons(order: Order, url: Callable[[ActionSpec], str]) -> list[ActionButton]:
    """The action buttons of `order`: those of the technician's actions its state
    allows, each posting to `url(spec)`, with the next step marked `main`."""
    main = main_action(order.state)
    found = []
    for spec in technician_actions():
        if spec.own_section or spec.action not in order.allowed_actions:
            continue
        label, initial = spec.button, None
        if spec.action == Action.PLAN:
            # Planning again: the form starts from the current appointment or period.
            initial = {
                "appointment": order.appointment_at,
                "planned_start": order.planned_start,
                "planned_end": order.planned_end,
            }
            if order.appointment_at or order.planned_start:
                label = "Changer le rendez-vous"
        confirm = spec.confirm
        if spec.action == Action.FINISH and (missing := order.missing_to_finish()):
            confirm = f"Attention : {' et '.join(missing)}. Terminer quand même les travaux ? " + confirm.removeprefix(
                "Terminer les travaux ? "
            )
        form = technician_form(spec, order, initial=initial)
        target = TRANSITIONS[spec.action].get(State(order.state))
        leads_to = STATE_LABELS[target] if target is not None else ""
        found.append(ActionButton(spec.name, label, url(spec), form, confirm, spec.action == main, leads_to))
    return found
