"""The technician's pages: their orders, and one order with the actions its state
allows; the supervisor's pages are in orders/supervisor/.

Every action is a POST to `/commandes/<id>/<action>/` that works as a plain form
(then a redirect to the order) and with htmx (then the order's panel, rendered
from the same template). A refused action shows the page again with the French
reason and what the person typed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from http import HTTPStatus
from typing import Any
from uuid import UUID

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_POST
from django_htmx.http import reswap

from orders import services
from orders.access import get_order_for
from orders.forms import (
    LineForm,
    NoteForm,
    OrderSearchForm,
    ProgressForm,
    TechnicianActionForm,
    TechnicianPlanForm,
    TechnicianSuspendForm,
)
from orders.models import ActionReceipt, Order, OrderEvent
from orders.states import DONE_STATES, WORK_STATES, Action, State
from portal.access import role_required
from portal.errors import Refused
from portal.models import Role

RECENTLY_FINISHED = timedelta(days=7)


def is_late(order: Order, now: datetime) -> bool:
    return order.due_at is not None and order.due_at < now and order.state in WORK_STATES


def _wants_fragment(request: HttpRequest) -> bool:
    # A history restore asks htmx's URL for the whole page.
    return bool(request.htmx) and not request.htmx.history_restore_request


def _render(request: HttpRequest, template: str, partial: str, context: dict[str, Any]) -> HttpResponse:
    """The whole page, or only `partial` of it for htmx: one URL serves both."""
    response = render(request, f"{template}#{partial}" if _wants_fragment(request) else template, context)
    patch_vary_headers(response, ("HX-Request",))
    return response


# --- My orders ---------------------------------------------------------------


@dataclass(frozen=True)
class Card:
    order: Order
    late: bool


@dataclass
class Section:
    title: str
    cards: list[Card] = field(default_factory=list)


def _today_bounds(now: datetime) -> tuple[datetime, datetime]:
    today = timezone.localdate(now)
    start = timezone.make_aware(datetime.combine(today, time.min))
    return start, timezone.make_aware(datetime.combine(today + timedelta(days=1), time.min))


def _is_today(order: Order, start: datetime, end: datetime) -> bool:
    if order.appointment_at is not None:
        return start <= order.appointment_at < end
    if order.planned_start is None:
        return False
    return order.planned_start < end and (order.planned_end or order.planned_start) >= start


def _sections(orders: Iterable[Order], now: datetime) -> list[Section]:
    """Sort the technician's orders into the sections of their home, each in the order it is read."""
    today, to_acknowledge, open_, finished = (
        Section("Aujourd'hui"),
        Section("À prendre en compte"),
        Section("Autres commandes en cours"),
        Section("Terminées ces 7 derniers jours"),
    )
    start, end = _today_bounds(now)
    for order in orders:
        if order.state in DONE_STATES:
            section = finished
        elif _is_today(order, start, end):
            section = today
        elif order.state == State.TO_ACKNOWLEDGE:
            section = to_acknowledge
        else:
            section = open_
        section.cards.append(Card(order, is_late(order, now)))
    never = datetime.max.replace(tzinfo=UTC)  # sorts after any date
    today.cards.sort(key=lambda card: card.order.appointment_at or card.order.planned_start)
    to_acknowledge.cards.sort(key=lambda card: (card.order.due_at or never, card.order.pk))
    # Among the other open orders, the works in progress first, then by date.
    open_.cards.sort(
        key=lambda card: (
            card.order.state != State.IN_PROGRESS,
            card.order.appointment_at or card.order.planned_start or never,
            card.order.due_at or never,
        )
    )
    finished.cards.sort(key=lambda card: card.order.actual_end, reverse=True)
    return [today, to_acknowledge, open_, finished]


@role_required(Role.TECHNICIAN)
def my_orders(request: HttpRequest) -> HttpResponse:
    """The technician's home: today's appointments, orders to acknowledge, the
    other open ones, the recently finished. One query, however many orders."""
    form = OrderSearchForm(request.GET)
    query = form.cleaned_data["q"].strip() if form.is_valid() else ""
    now = timezone.now()
    orders = (
        Order.objects.visible_to(request.user)
        .filter(Q(state__in=WORK_STATES) | Q(state__in=DONE_STATES, actual_end__gte=now - RECENTLY_FINISHED))
        .select_related("asset")
    )
    sections = _sections(orders.search(query), now)
    context = {"form": form, "query": query, "sections": sections, "count": sum(len(s.cards) for s in sections)}
    return _render(request, "orders/my_orders.html", "list", context)


# --- An order ----------------------------------------------------------------

# The actions a technician takes from the order page, in the order they are shown.
ACTION_FORMS: dict[Action, type[TechnicianActionForm]] = {
    Action.ACKNOWLEDGE: TechnicianActionForm,
    Action.PLAN: TechnicianPlanForm,
    Action.START: TechnicianActionForm,
    Action.RESUME: TechnicianActionForm,
    Action.SUSPEND: TechnicianSuspendForm,
    Action.FINISH: TechnicianActionForm,
}
ACTION_URLS = {
    Action.ACKNOWLEDGE: "orders:acknowledge",
    Action.PLAN: "orders:plan",
    Action.START: "orders:start",
    Action.RESUME: "orders:resume",
    Action.SUSPEND: "orders:suspend",
    Action.FINISH: "orders:finish",
}
BUTTON_LABELS = {
    Action.ACKNOWLEDGE: "Prendre en compte",
    Action.PLAN: "Fixer le rendez-vous",
    Action.START: "Démarrer les travaux",
    Action.RESUME: "Reprendre les travaux",
    Action.SUSPEND: "Suspendre l'intervention",
    Action.FINISH: "Terminer les travaux",
}
CONFIRMATIONS = {
    Action.FINISH: "Terminer les travaux ? La commande passera à « Terminé » et le client en sera informé.",
}
# The next step in each state, in the bar at the bottom of the screen.
MAIN_ACTIONS = {
    State.TO_ACKNOWLEDGE: Action.ACKNOWLEDGE,
    State.ACKNOWLEDGED: Action.PLAN,
    State.PLANNED: Action.START,
    State.IN_PROGRESS: Action.FINISH,
    State.SUSPENDED: Action.RESUME,
}


def action_form(action: Action, data: Any = None, **kwargs: Any) -> TechnicianActionForm:
    # Distinct ids per form: several forms share the page.
    return ACTION_FORMS[action](data, auto_id=f"{action.value}-%s", **kwargs)


@dataclass(frozen=True)
class ActionButton:
    """One action on the order page: its form, where it posts, what it says."""

    key: str
    label: str
    url: str
    form: forms.Form
    confirm: str = ""
    main: bool = False


@dataclass(frozen=True)
class Submission:
    """An action as sent: its form, bound to what was typed; shown again, with the
    reason, when the action is refused or badly filled in."""

    key: str
    form: forms.Form
    label: str = ""
    url: str = ""


def _plan_initial(order: Order) -> dict[str, Any]:
    return {"appointment": order.appointment_at, "planned_start": order.planned_start, "planned_end": order.planned_end}


def _buttons(order: Order, refused: Submission | None) -> list[ActionButton]:
    main = MAIN_ACTIONS.get(State(order.state))
    buttons = []
    for action in ACTION_FORMS:
        if action not in order.allowed_actions or (refused and refused.key == action.value):
            continue
        label = BUTTON_LABELS[action]
        if action == Action.PLAN and (order.appointment_at or order.planned_start):
            label = "Changer le rendez-vous"
        form = action_form(action, initial=_plan_initial(order) if action == Action.PLAN else None)
        url = reverse(ACTION_URLS[action], args=[order.pk])
        buttons.append(ActionButton(action.value, label, url, form, CONFIRMATIONS.get(action, ""), action == main))
    return buttons


def _order_context(order: Order, *, notice: str = "", refused: Submission | None = None) -> dict[str, Any]:
    buttons = _buttons(order, refused)
    lines = list(order.lines.all())
    return {
        "order": order,
        "late": is_late(order, timezone.now()),
        "notice": notice,
        "refused": refused,
        "main_action": next((button for button in buttons if button.main), None),
        # The main action's form is in the card too when it has something to fill in.
        "other_actions": [button for button in buttons if not button.main or button.form.visible_fields()],
        "can_mark_lines": Action.MARK_LINE in order.allowed_actions,
        "lines": lines,
        "lines_done": sum(line.done for line in lines),
        "progress_form": (
            ProgressForm(initial={"progress": order.progress}, auto_id="progress-%s")
            if Action.SET_PROGRESS in order.allowed_actions and not (refused and refused.key == "progress")
            else None
        ),
        "note_form": (
            NoteForm(auto_id="note-%s") if order.is_open and not (refused and refused.key == "note") else None
        ),
        "events": order.events.select_related("actor").order_by("-at", "-pk"),
    }


def _render_order(request: HttpRequest, order: Order, **context: Any) -> HttpResponse:
    return _render(request, "orders/order_detail.html", "panel", _order_context(order, **context))


@login_required
def order_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _render_order(request, get_order_for(request, pk))


REPLAY_HEADER = "X-Portal-Replay"


def _act(
    request: HttpRequest,
    order: Order,
    submission: Submission,
    service: Callable[..., OrderEvent | None],
    target: Any = None,
) -> HttpResponse:
    """The end of every action view: give the form's data to the service, then
    show the order (a redirect; for htmx, its panel). A refusal or an invalid
    form shows the order again, the reason above, what was typed kept.

    An action that carries a key (`idempotency_key`, given by the phone) is
    applied once: sent again, it is recognised by its receipt, written in the
    same transaction. The phone's offline queue replays actions with the
    `X-Portal-Replay` header and gets JSON back instead of a page."""
    form = submission.form
    replay = request.headers.get(REPLAY_HEADER) == "1"
    if form.is_valid():
        key = form.action_key
        try:
            outcome = _apply_once(
                request,
                order,
                submission.key,
                key,
                lambda: service(order if target is None else target, actor=request.user, **form.cleaned_data),
            )
        except Refused as error:
            form.add_error(None, str(error))
        else:
            if replay:
                return JsonResponse({"status": outcome.status, "label": outcome.label})
            if not request.htmx:
                messages.success(request, outcome.notice)
                return redirect("orders:detail", pk=order.pk)
            return _render_order(request, get_order_for(request, order.pk), notice=outcome.notice)
    if replay:
        errors = [str(error) for errors in form.errors.values() for error in errors]
        return JsonResponse({"status": "refused", "errors": errors}, status=HTTPStatus.CONFLICT)
    # Reloaded: the order may have changed under the person's feet.
    response = _render_order(request, get_order_for(request, order.pk), refused=submission)
    # The reason is at the top of the panel: show it there.
    return reswap(response, "outerHTML show:window:top") if request.htmx else response


@dataclass(frozen=True)
class Outcome:
    status: str  # "applied", or "duplicate" when the key had been seen
    label: str  # the event's label; empty when nothing changed

    @property
    def notice(self) -> str:
        if self.status == "duplicate":
            return "Cette action avait déjà été reçue : elle n'a pas été appliquée une seconde fois."
        return self.label or "C'était déjà fait : rien n'a changé."


def _apply_once(
    request: HttpRequest, order: Order, action: str, key: UUID | None, apply: Callable[[], OrderEvent | None]
) -> Outcome:
    if key is None:
        event = apply()
        return Outcome("applied", event.label if event else "")
    seen = ActionReceipt.objects.filter(key=key).first()
    if seen is None:
        try:
            with transaction.atomic():
                event = apply()
                label = event.label if event else ""
                ActionReceipt.objects.create(key=key, user=request.user, order=order, action=action, label=label)
            return Outcome("applied", label)
        except IntegrityError:
            # The same key, sent twice at once: the other one won; this one rolled back.
            seen = ActionReceipt.objects.filter(key=key).first()
            if seen is None:
                raise
    if seen.user_id != request.user.pk or seen.order_id != order.pk or seen.action != action:
        raise services.ServiceError("Cette action a déjà été reçue pour une autre commande : elle n'est pas appliquée.")
    return Outcome("duplicate", seen.label)


def _submission(request: HttpRequest, order: Order, action: Action) -> Submission:
    url = reverse(ACTION_URLS[action], args=[order.pk])
    return Submission(action.value, action_form(action, request.POST), BUTTON_LABELS[action], url)


@login_required
@require_POST
def order_acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    order = get_order_for(request, pk)
    return _act(request, order, _submission(request, order, Action.ACKNOWLEDGE), services.acknowledge_order)


@login_required
@require_POST
def order_plan(request: HttpRequest, pk: int) -> HttpResponse:
    order = get_order_for(request, pk)
    return _act(request, order, _submission(request, order, Action.PLAN), services.plan_order)


@login_required
@require_POST
def order_start(request: HttpRequest, pk: int) -> HttpResponse:
    order = get_order_for(request, pk)
    return _act(request, order, _submission(request, order, Action.START), services.start_work)


@login_required
@require_POST
def order_suspend(request: HttpRequest, pk: int) -> HttpResponse:
    order = get_order_for(request, pk)
    return _act(request, order, _submission(request, order, Action.SUSPEND), services.suspend_work)


@login_required
@require_POST
def order_resume(request: HttpRequest, pk: int) -> HttpResponse:
    order = get_order_for(request, pk)
    return _act(request, order, _submission(request, order, Action.RESUME), services.resume_work)


@login_required
@require_POST
def order_finish(request: HttpRequest, pk: int) -> HttpResponse:
    order = get_order_for(request, pk)
    return _act(request, order, _submission(request, order, Action.FINISH), services.finish_work)


@login_required
@require_POST
def order_progress(request: HttpRequest, pk: int) -> HttpResponse:
    order = get_order_for(request, pk)
    form = ProgressForm(request.POST, auto_id="progress-%s")
    url = reverse("orders:progress", args=[order.pk])
    return _act(request, order, Submission("progress", form, "Enregistrer l'avancement", url), services.set_progress)


@login_required
@require_POST
def order_mark_line(request: HttpRequest, pk: int, line_pk: int) -> HttpResponse:
    order = get_order_for(request, pk)
    line = get_object_or_404(order.lines, pk=line_pk)
    form = LineForm(request.POST, auto_id=f"line-{line.pk}-%s")
    return _act(request, order, Submission("line", form), services.mark_line, target=line)


@login_required
@require_POST
def order_note(request: HttpRequest, pk: int) -> HttpResponse:
    order = get_order_for(request, pk)
    form = NoteForm(request.POST, auto_id="note-%s")
    url = reverse("orders:note", args=[order.pk])
    return _act(request, order, Submission("note", form, "Enregistrer la note", url), services.add_note)
