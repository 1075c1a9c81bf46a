"""The technician's pages: their orders, and one order with the actions its state
allows; the supervisor's pages are in orders/supervisor/.

Every action is a POST to `/commandes/<id>/<action>/`, one URL per action of the
table in orders.actions, all served by `order_action`. It works as a plain form
(then a redirect to the order) and with htmx (then the order's panel, rendered
from the same template). A refused action shows the page again with the French
reason and what the person typed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import OuterRef, Q, Subquery
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from orders import actions, conflicts, dispatch, offline, services
from orders.access import get_order_for
from orders.forms import NoteForm, OrderSearchForm, TechnicianActionForm, add_refusal
from orders.models import Order, OrderEvent, OrderLine, OrderSeen
from orders.queries import is_late
from orders.states import DONE_STATES, WORK_STATES, Action, State
from portal.access import role_required
from portal.errors import Refused
from portal.htmx import render_page_or_fragment, show_from_the_top
from portal.models import ContactAccess, Role
from portal.privacy import record_contact_access

RECENTLY_FINISHED = timedelta(days=7)


# --- My orders ---------------------------------------------------------------


@dataclass(frozen=True)
class Card:
    order: Order
    late: bool

    @property
    def news(self) -> str:
        """« nouveau »: an order to do never opened; « modifié »: given, moved or
        changed by someone else since it was last opened (annotated by `my_orders`)."""
        seen_at, changed_at = getattr(self.order, "seen_at", None), getattr(self.order, "changed_at", None)
        if self.order.state not in WORK_STATES:
            return ""
        if seen_at is None:
            return "nouveau"
        return "modifié" if changed_at is not None and changed_at > seen_at else ""


# What someone else may do to a technician's order that they should look at again.
NEWS_KINDS = (
    Action.ASSIGN.value,
    Action.PLAN.value,
    "edited",
    "address",
    "line_added",
    "line_changed",
    "line_removed",
)


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
        .select_related("asset", "service_code")
        .annotate(
            seen_at=Subquery(OrderSeen.objects.filter(order=OuterRef("pk"), user=request.user).values("seen_at")[:1]),
            changed_at=Subquery(
                OrderEvent.objects.filter(order=OuterRef("pk"), kind__in=NEWS_KINDS)
                .exclude(actor=request.user)
                .order_by("-recorded_at")
                .values("recorded_at")[:1]
            ),
        )
    )
    sections = _sections(orders.search(query), now)
    context = {"form": form, "query": query, "sections": sections, "count": sum(len(s.cards) for s in sections)}
    return render_page_or_fragment(request, "orders/my_orders.html", "list", context)


# --- An order ----------------------------------------------------------------


@dataclass(frozen=True)
class Submission:
    """An action as sent: its form, bound to what was typed; shown again, with the
    reason, when the action is refused or badly filled in."""

    key: str
    form: TechnicianActionForm
    label: str = ""
    url: str = ""


def _order_context(order: Order, *, notice: str = "", refused: Submission | None = None) -> dict[str, Any]:
    buttons = [
        button
        for button in actions.buttons(order, lambda spec: reverse(spec.url_name, args=[order.pk]))
        # A refused action is shown once, with its reason, at the top.
        if not (refused and refused.key == button.key)
    ]
    lines = list(order.lines.all())
    progress = actions.ACTIONS[Action.SET_PROGRESS]
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
        # What « Terminer les travaux » asks is worked out again by the phone (static/js/offline.js)
        # from the lines and the report waiting in its queue: these are its parts.
        "has_report": order.reports.exists(),
        "finish_question": actions.ACTIONS[Action.FINISH].confirm,
        "progress_form": (
            actions.technician_form(progress, order, initial={"progress": order.progress})
            if Action.SET_PROGRESS in order.allowed_actions and not (refused and refused.key == progress.name)
            else None
        ),
        "note_form": (
            NoteForm(auto_id="note-%s") if order.is_open and not (refused and refused.key == "note") else None
        ),
        "events": order.events.select_related("actor").order_by("-at", "-pk"),
    }


def _render_order(request: HttpRequest, order: Order, **context: Any) -> HttpResponse:
    return render_page_or_fragment(request, "orders/order_detail.html", "panel", _order_context(order, **context))


@login_required
def order_detail(request: HttpRequest, pk: int) -> HttpResponse:
    if (lost := conflicts.was_assigned(pk, request.user)) is not None:
        # Given to someone else: back to their list, saying so, rather than a 404.
        messages.warning(request, conflicts.reassigned(lost, request.user, acted=False).reason)
        return redirect("orders:my_orders")
    order = get_order_for(request, pk)
    record_contact_access(request.user, ContactAccess.Where.ORDER_PAGE, order_id=order.pk, detail=order.reference)
    dispatch.mark_seen(order, request.user)
    return _render_order(request, order)


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
    applied once (orders.offline.apply_once). The phone's offline queue replays
    actions with the `X-Portal-Replay` header and gets JSON back instead of a page."""
    form = submission.form
    replay = offline.is_replay(request)
    refusal: conflicts.Refusal | None = None
    if form.is_valid():
        try:
            outcome = offline.apply_once(
                lambda: service(order if target is None else target, actor=request.user, **form.cleaned_data),
                key=form.action_key,
                user=request.user,
                order=order,
                action=submission.key,
            )
        except Refused as error:
            add_refusal(form, error)
            refusal = conflicts.refused(order, error, form.cleaned_data.get("at") or timezone.now())
        else:
            if replay:
                return JsonResponse({"status": outcome.status, "label": outcome.label})
            if not request.htmx:
                messages.success(request, outcome.notice)
                return redirect("orders:detail", pk=order.pk)
            return _render_order(request, get_order_for(request, order.pk), notice=outcome.notice)
    if replay:
        # Kept on the server, and told to the phone with what to do next (orders.conflicts).
        errors = [str(error) for errors in form.errors.values() for error in errors]
        line = target.reference if isinstance(target, OrderLine) else ""
        return offline.refuse_replay(
            request,
            order,
            refusal or conflicts.invalid(order, errors),
            action=submission.key,
            button=submission.label,
            line_reference=line,
        )
    # Reloaded: the order may have changed under the person's feet.
    response = _render_order(request, get_order_for(request, order.pk), refused=submission)
    return show_from_the_top(request, response)


@login_required
@require_POST
def order_action(request: HttpRequest, pk: int, action: Action, line_pk: int | None = None) -> HttpResponse:
    """Every technician's action on an order, or on one of its lines (`line_pk`):
    one URL per action (orders/urls.py, from the table in orders.actions), the
    action given by the URL."""
    spec = actions.ACTIONS[action]
    if (lost := conflicts.was_assigned(pk, request.user)) is not None:
        line_reference = lost.lines.filter(pk=line_pk).values_list("reference", flat=True).first() or ""
        return _no_longer_assigned(request, lost, spec.name, spec.button, line_reference)
    order = get_order_for(request, pk)
    line = order.lines.filter(pk=line_pk).first() if spec.on_line else None
    if spec.on_line and line is None:
        if not conflicts.removed_line_reference(order, line_pk):
            raise Http404("Pas de telle ligne sur cette commande.")
        return _line_removed(request, order, line_pk, spec.name)
    form = actions.technician_form(spec, order, request.POST, line=line)
    url = reverse(spec.url_name, args=[order.pk] if line is None else [order.pk, line.pk])
    label = "Changer le rendez-vous" if "reason" in form.fields else spec.button
    return _act(request, order, Submission(spec.name, form, label, url), spec.service, target=line)


def _no_longer_assigned(
    request: HttpRequest, order: Order, action: str, button: str, line_reference: str = ""
) -> HttpResponse:
    """An action on an order given to someone else since: kept and explained to a
    replay (the phone forgets the order); otherwise back to the list, saying so."""
    refusal = conflicts.reassigned(order, request.user)  # type: ignore[arg-type]  # login_required
    if offline.is_replay(request):
        return offline.refuse_replay(
            request, order, refusal, action=action, button=button, line_reference=line_reference
        )
    messages.warning(request, f"{refusal.reason} {refusal.advice}")
    if request.htmx:
        return HttpResponseClientRedirect(reverse("orders:my_orders"))
    return redirect("orders:my_orders")


def _line_removed(request: HttpRequest, order: Order, line_pk: int | None, action: str) -> HttpResponse:
    """A tick on a line removed since: the reason (and, to the office, that it had been done)."""
    refusal = conflicts.line_removed(order, line_pk, done=bool(request.POST.get("done")))
    if offline.is_replay(request):
        reference = conflicts.removed_line_reference(order, line_pk)
        return offline.refuse_replay(request, order, refusal, action=action, line_reference=reference)
    if request.htmx:
        return _render_order(request, order, notice=refusal.reason)
    messages.warning(request, refusal.reason)
    return redirect("orders:detail", pk=order.pk)


@login_required
@require_POST
def order_note(request: HttpRequest, pk: int) -> HttpResponse:
    """A note: not an action of the state machine, taken like one."""
    if (lost := conflicts.was_assigned(pk, request.user)) is not None:
        return _no_longer_assigned(request, lost, "note", "Note")
    order = get_order_for(request, pk)
    form = NoteForm(request.POST, auto_id="note-%s")
    url = reverse("orders:note", args=[order.pk])
    return _act(request, order, Submission("note", form, "Enregistrer la note", url), services.add_note)
