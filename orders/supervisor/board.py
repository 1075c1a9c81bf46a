"""The dispatch board (issue 16, item 9): one day, a row per technician across
the hours from 7:00 to 19:00 in half-hour slots, and beside it the backlog
« À planifier » of the open orders without a technician or a date, the most
urgent first, filterable (words, due date, criticality, service code, client,
what is missing).

An order is dispatched by dragging it from the backlog onto a technician's
slot (static/js/dispatch.js, with the vendored SortableJS). While it is
dragged, the script compares it with the row's visits, drawn with their start,
end and label, and with its due date: the conflicts and a due date passed show
before it is let go. Letting it go posts the form beside the backlog through
htmx; the answer is a line saying what changed, the technician's row drawn
again and the order taken out of the backlog. The same form works by keyboard
and without JavaScript (a plain POST, then back to the board). The server
checks again when saving (`check_slot`, the same rules): a conflict or a due
date passed is saved only when the dispatcher confirmed it (`force`).

A visit already on the board (an appointment not begun) is moved the same way:
dragged to another time or another technician's row (or, by keyboard and
without JavaScript, chosen in the form's « Visite à déplacer »). Moving an
appointment is a reschedule: the reason is asked before saving (a dialog after
the drop, a field of the form), refused when empty, and relayed to the
platform in the log's description (`dispatch.reschedule_order`'s `reason`, as
every reschedule). The answer draws again the row it left and the row it went to.

The page reads the technicians, the day's visits, the backlog and its
filters' choices in a constant number of queries, whatever their numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.contrib import messages
from django.db.models import F, Q
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.html import format_html_join
from django.utils.safestring import SafeString
from django.views.decorators.http import require_POST

from orders import dispatch, planning
from orders.models import Order
from orders.queries import OrderQuerySet
from orders.states import WORK_STATES
from orders.supervisor import board_html
from orders.supervisor.forms import BacklogFilterForm, DispatchForm, Missing
from orders.supervisor.planning import (
    LONGEST_VISIT,
    SLOT,
    Item,
    _item,
    flag_overlaps,
    orders_between,
    week_url,
)
from portal import moments
from portal.access import role_required
from portal.errors import Refused
from portal.htmx import wants_fragment
from portal.models import Client, Role, ServiceCode, User

DAY_PARAM = "jour"
OPENING_HOUR, CLOSING_HOUR = 7, 19  # the hours drawn; a visit outside them is drawn at the edge
SLOT_MINUTES = 30  # what an order is dropped on
QUARTER = timedelta(minutes=15)  # what visits are drawn on
QUARTERS = (CLOSING_HOUR - OPENING_HOUR) * 4
BACKLOG_LIMIT = 300  # shown at most, the most urgent; the filters narrow it


def _midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _at(day: date, hour: int) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(hour)))


def parse_day(value: str) -> date | None:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        return None


def day_url(day: date) -> str:
    return f"{reverse('orders:dispatch_board')}?{DAY_PARAM}={day.isoformat()}"


def _milliseconds(moment: datetime) -> int:
    """For the script, which compares instants as JavaScript does."""
    return int(moment.timestamp() * 1000)


# The half-hour slots of a row, the same in every row: written once.
SLOTS = SafeString(
    '<div class="board-slots" aria-hidden="true">'
    + format_html_join(
        "",
        '<span class="board-slot" data-time="{}"></span>',
        (
            (f"{hour:02d}:{minute:02d}",)
            for hour in range(OPENING_HOUR, CLOSING_HOUR)
            for minute in range(0, 60, SLOT_MINUTES)
        ),
    )
    + "</div>"
)


# --- The board -------------------------------------------------------------------


@dataclass
class Block:
    """A visit drawn on a row: its columns on the grid of quarter hours."""

    item: Item
    first: int  # the first column, from 1
    span: int
    when: str  # `9 h 00 – 10 h 30`, `… – 17 h 00` for works begun another day

    @property
    def shown_when(self) -> str:
        """What fits on the block: the whole span from an hour and a half (six quarters), else its start."""
        return self.when if self.span >= 6 else self.when.split(" – ")[0]

    @property
    def holds(self) -> bool:
        """Its works are still to do: it holds its technician (as `flag_overlaps` counts)."""
        return self.item.order.state in WORK_STATES

    @property
    def start_ms(self) -> int:
        return _milliseconds(self.item.start)

    @property
    def end_ms(self) -> int:
        return _milliseconds(self.item.end)

    @property
    def movable(self) -> bool:
        """It can be dragged elsewhere: an appointment whose works have not begun
        (a period of works is moved from the week's planning or its page)."""
        return self.item.is_appointment and not dispatch.not_movable(self.item.order)

    @property
    def html(self) -> SafeString:
        return board_html.visit(self)


@dataclass
class BoardRow:
    technician: User
    blocks: list[Block] = field(default_factory=list)

    @property
    def label(self) -> str:
        name = str(self.technician)
        return name if self.technician.is_active else f"{name} (inactif)"

    @property
    def conflicts(self) -> int:
        return sum(1 for block in self.blocks if block.item.conflicts)


def _block(item: Item, day: date) -> Block:
    opening = _at(day, OPENING_HOUR)
    first = math.floor((item.start - opening) / QUARTER)
    last = math.ceil((item.end - opening) / QUARTER)
    first = min(max(first, 0), QUARTERS - 1)
    last = min(max(last, first + 1), QUARTERS)
    begins = moments.hour(item.start) if timezone.localdate(item.start) == day else "…"
    ends = moments.hour(item.end) if item.end <= _midnight(day + timedelta(days=1)) else "…"
    if item.open_ended:
        ends = "…"
    return Block(item, first + 1, last - first, f"{begins} – {ends}")


def board_rows(orders: list[Order], technicians: list[User], day: date) -> list[BoardRow]:
    """A row per active technician (and per inactive one still holding a visit
    that day), with the day's visits, overlaps flagged."""
    start, end = _midnight(day), _midnight(day + timedelta(days=1))
    rows = {technician.pk: BoardRow(technician) for technician in technicians}
    items: dict[int, list[Item]] = {}
    prefix = _order_prefix()
    for order in orders:
        if order.technician_id is None:
            continue
        item = _item(order, f"{prefix}{order.pk}/")
        if item is None or item.end <= start or item.start >= end:
            continue
        items.setdefault(order.technician_id, []).append(item)
        if order.technician_id not in rows:
            rows[order.technician_id] = BoardRow(order.technician)
    for technician_id, theirs in items.items():
        flag_overlaps(theirs)
        theirs.sort(key=lambda item: (item.start, item.order.reference))
        rows[technician_id].blocks = [_block(item, day) for item in theirs]
    return list(rows.values())


def _order_prefix() -> str:
    """The path of the supervisors' order pages less the pk: reverse() for each of
    hundreds of orders would be most of the page's time."""
    return reverse("orders:supervisor_order", args=[0]).removesuffix("0/")


def _technicians() -> list[User]:
    return list(User.objects.filter(role=Role.TECHNICIAN, is_active=True).order_by("last_name", "first_name", "pk"))


def technician_rows(user: User, technicians: list[User], day: date) -> list[BoardRow]:
    """Some technicians' rows, drawn again after a drop (one query)."""
    if not technicians:
        return []
    start, end = _midnight(day), _midnight(day + timedelta(days=1))
    orders = list(orders_between(user, start, end).filter(technician__in=technicians))
    return board_rows(orders, technicians, day)


# --- The backlog -----------------------------------------------------------------


def backlog_orders(user: User, filters: Mapping[str, Any] | None = None) -> list[Order]:
    """Open orders without a technician or without a date, as the filters
    narrow them: due first (no due date last), then the most critical, then the oldest."""
    filters = filters or {}
    orders: OrderQuerySet = (
        Order.objects.visible_to(user)
        .to_dispatch()
        .select_related("asset", "service_code", "contract__client", "technician")
        .order_by(F("due_at").asc(nulls_last=True), "-critical_level", "pk")
    )
    if filters.get("echeance"):
        orders = orders.filter(due_at__lte=_midnight(filters["echeance"] + timedelta(days=1)))
    if filters.get("criticite") is not None:
        orders = orders.filter(critical_level__gte=filters["criticite"])
    if filters.get("code"):
        orders = orders.filter(service_code__code=filters["code"])
    if filters.get("client"):
        orders = orders.filter(contract__client_id=filters["client"])
    if filters.get("manque") == Missing.TECHNICIAN:
        orders = orders.filter(technician__isnull=True)
    elif filters.get("manque") == Missing.DATE:
        orders = orders.filter(technician__isnull=False, appointment_at__isnull=True, planned_start__isnull=True)
    if filters.get("q"):
        orders = orders.search(filters["q"])
    return list(orders[:BACKLOG_LIMIT])


def backlog_filter_form(user: User, data: QueryDict | None) -> BacklogFilterForm:
    """The filters, with the service codes and clients of the backlog as choices (two queries)."""
    backlog = Order.objects.visible_to(user).to_dispatch().order_by()
    codes = ServiceCode.objects.filter(pk__in=backlog.values("service_code_id")).order_by("code", "pk")
    labels: dict[str, str] = {}
    for code, label in codes.values_list("code", "label"):
        labels.setdefault(code, f"{code} – {label}")
    clients = Client.objects.filter(pk__in=backlog.values("contract__client_id")).order_by("name")
    return BacklogFilterForm(
        data if data is not None and any(name in data for name in BacklogFilterForm.base_fields) else None,
        codes=list(labels.items()),
        clients=list(clients.values_list("pk", "name")),
    )


@dataclass(frozen=True)
class Check:
    warnings: list[str]
    checked: bool  # a technician and a time were given
    reason_asked: bool = False  # it moves an appointment: the reason of the report is needed


def check_slot(
    order: Order, technician: User | None, appointment: datetime | None, minutes: int | None = None
) -> Check:
    """What goes wrong if `order` is given to `technician` at `appointment` for
    `minutes` (else its visit's duration): their visits it overlaps, a due date
    passed. static/js/dispatch.js says the same while an order is dragged."""
    if appointment is None:
        return Check([], False)
    warnings = []
    end = appointment + (timedelta(minutes=minutes) if minutes else order.visit_length)
    if order.due_at is not None and end > order.due_at:
        warnings.append(f"Après l'échéance du {moments.moment(order.due_at)}.")
    if technician is not None:
        theirs = (
            Order.objects.filter(technician=technician, state__in=WORK_STATES)
            .exclude(pk=order.pk)
            .filter(
                Q(appointment_at__gt=appointment - LONGEST_VISIT, appointment_at__lt=end)
                | Q(appointment_at__isnull=True, planned_start__lt=end, planned_end__gt=appointment)
                | Q(
                    appointment_at__isnull=True,
                    planned_end__isnull=True,
                    planned_start__gt=appointment - SLOT,
                    planned_start__lt=end,
                )
            )
            .select_related("service_code")
            .order_by("appointment_at", "planned_start", "pk")
        )
        for other in theirs:
            item = _item(other, "")
            if item is not None and item.end > appointment:
                warnings.append(f"Chevauche {other.reference} ({item.description}) de {technician}.")
    return Check(warnings, technician is not None)


NOTHING_PICKED = (
    "Choisissez la commande à planifier dans la liste. "
    "Pour déplacer une visite, choisissez-la dans « Ou une visite à déplacer »."
)


def _picked(request: HttpRequest, data: QueryDict) -> tuple[Order | None, str]:
    """The order chosen, a backlog order (`commande`) or a visit of the board
    (`visite`), if the person may see it; else why none was."""
    given = [value for value in (str(data.get(name, "")).strip() for name in ("commande", "visite")) if value]
    if len(given) > 1:
        return None, "Choisissez soit une commande à planifier, soit une visite à déplacer, pas les deux."
    if not given or not given[0].isdigit():
        return None, NOTHING_PICKED
    orders = Order.objects.visible_to(request.user).select_related("service_code", "technician")
    order = orders.filter(pk=int(given[0])).first()
    return order, "" if order is not None else NOTHING_PICKED


# --- The views -------------------------------------------------------------------


def _backlog_context(request: HttpRequest, picked: int | None = None) -> dict[str, Any]:
    filters = backlog_filter_form(request.user, request.GET)
    prefix = _order_prefix()
    backlog = backlog_orders(request.user, filters.filters())
    return {
        "backlog": [board_html.backlog_item(order, picked=picked, prefix=prefix) for order in backlog],
        "backlog_limit": BACKLOG_LIMIT,
        "filters": filters,
        "filtered": bool(filters.filters()),
        # The filters go with the form, for the board shown again after it (without JavaScript).
        "filtered_query": request.GET.urlencode(),
    }


def _board_context(request: HttpRequest, day: date, *, picked: int | None = None, **extra: Any) -> dict[str, Any]:
    start, end = _midnight(day), _midnight(day + timedelta(days=1))
    today = timezone.localdate()
    monday = day - timedelta(days=day.weekday())
    rows = board_rows(list(orders_between(request.user, start, end)), _technicians(), day)
    return {
        "day": day,
        "today": today,
        "rows": rows,
        "visit_options": board_html.visit_options(rows, picked=picked),
        "slots": SLOTS,
        "hours": range(OPENING_HOUR, CLOSING_HOUR),
        "opening_ms": _milliseconds(_at(day, OPENING_HOUR)),
        "now_ms": _milliseconds(timezone.now()),
        **_backlog_context(request, picked),
        "backlog_count": Order.objects.visible_to(request.user).to_dispatch().count(),
        "form": DispatchForm(initial={"appointment": _at(day, 8)}),
        "previous_url": day_url(day - timedelta(days=1)),
        "next_url": day_url(day + timedelta(days=1)),
        "today_url": reverse("orders:dispatch_board"),
        "week_url": week_url(monday),
        "week_number": monday.isocalendar().week,
        **extra,
    }


def _day_of(data: QueryDict) -> tuple[date, str]:
    asked = data.get(DAY_PARAM, "").strip()
    day = parse_day(asked) if asked else timezone.localdate()
    if day is None:
        return timezone.localdate(), f"« {asked[:20]} » n'est pas une date : choisissez le jour dans le calendrier."
    return day, ""


@role_required(Role.SUPERVISOR, Role.OFFICE)
def dispatch_board(request: HttpRequest) -> HttpResponse:
    """The board of a day (`?jour=2026-12-08`, today by default) with the
    backlog; for htmx's filters, the backlog's list alone."""
    day, day_error = _day_of(request.GET)
    if wants_fragment(request):
        context = {**_backlog_context(request), "fragment": True}
        response = render(request, "orders/board.html#backlog", context)
    else:
        response = render(request, "orders/board.html", _board_context(request, day, day_error=day_error))
    patch_vary_headers(response, ("HX-Request",))
    return response


@role_required(Role.SUPERVISOR, Role.OFFICE)
def dispatch_check(request: HttpRequest) -> HttpResponse:
    """htmx: the warnings of the form beside the backlog, as it is filled in."""
    order, _ = _picked(request, request.GET)
    form = DispatchForm(request.GET)
    form.is_valid()
    data = form.cleaned_data
    result = (
        Check([], False)
        if order is None
        else check_slot(order, data.get("technician"), data.get("appointment"), data.get("visit_minutes"))
    )
    if order is not None and data.get("appointment") and planning.is_replanning(order, appointment=data["appointment"]):
        result = Check(result.warnings, result.checked, reason_asked=True)
    return render(request, "orders/_dispatch_check.html", {"check": result, "order": order})


CONFIRM = "Cochez « Planifier malgré les alertes » pour confirmer."


@dataclass
class Outcome:
    saved: bool
    text: str
    warnings: list[str] = field(default_factory=list)
    order: Order | None = None
    technician: User | None = None
    appointment: datetime | None = None
    left: tuple[User, datetime, datetime] | None = None  # the technician and visit it was moved from
    from_backlog: bool = False


def _dispatch(request: HttpRequest, order: Order | None, problem: str, form: DispatchForm) -> Outcome:
    """Check again, then save unless something is wrong that was not confirmed."""
    if order is None:
        return Outcome(False, problem)
    if why := dispatch.not_movable(order):
        return Outcome(False, f"Commande {order.reference} : rien n'a été modifié. {why}", order=order)
    if not form.is_valid():
        errors = " ".join(str(error) for errors in form.errors.values() for error in errors)
        return Outcome(False, f"Commande {order.reference} : {errors}", order=order)
    data = form.cleaned_data
    technician, appointment, minutes = data["technician"], data["appointment"], data["visit_minutes"]
    if planning.is_replanning(order, appointment=appointment) and not data["reason"].strip():
        text = f"Commande {order.reference} : rien n'a été enregistré. {planning.REASON_NEEDED}"
        return Outcome(False, text, order=order)
    warnings = check_slot(order, technician, appointment, minutes).warnings
    if warnings and not data["force"]:
        text = f"Commande {order.reference} : rien n'a été enregistré. {CONFIRM}"
        return Outcome(False, text, warnings, order)
    visit = _item(order, "")
    left = (order.technician, visit.start, visit.end) if order.technician and visit else None
    from_backlog = in_backlog(order)
    try:
        events = dispatch.reschedule_order(
            order,
            actor=request.user,
            technician=technician,
            appointment=appointment,
            visit_minutes=minutes,
            reason=data["reason"],
        )
    except Refused as error:
        return Outcome(False, f"Commande {order.reference} : rien n'a été modifié. {error}", order=order)
    labels = " ; ".join(event.label for event in events) or "rien à changer"
    text = f"Commande {order.reference} : {labels}."
    return Outcome(True, text, warnings, order, technician, appointment, left, from_backlog)


def in_backlog(order: Order) -> bool:
    """`OrderQuerySet.to_dispatch` for an order already read: it is in the backlog."""
    dated = order.appointment_at is not None or order.planned_start is not None
    return order.state in WORK_STATES and (order.technician_id is None or not dated)


def _redrawn_rows(user: User, outcome: Outcome, day: date) -> list[BoardRow]:
    """The rows of the board's day a saved drop changed: the technician's it went
    to, and the one it left (once when it stays in the row)."""
    if not outcome.saved:
        return []
    start, end = _midnight(day), _midnight(day + timedelta(days=1))
    technicians = []
    if outcome.technician and outcome.appointment and timezone.localdate(outcome.appointment) == day:
        technicians.append(outcome.technician)
    if outcome.left:
        previous, visit_start, visit_end = outcome.left
        if visit_start < end and visit_end > start and previous not in technicians:
            technicians.append(previous)
    return technician_rows(user, technicians, day)


@role_required(Role.SUPERVISOR, Role.OFFICE)
@require_POST
def dispatch_plan(request: HttpRequest) -> HttpResponse:
    """A drop on the board (htmx) or the form beside the backlog (a plain POST):
    a backlog order or a visit to a technician at a time, checked again before saving."""
    day = parse_day(request.POST.get(DAY_PARAM, "")) or timezone.localdate()
    form = DispatchForm(request.POST)
    outcome = _dispatch(request, *_picked(request, request.POST), form)
    if wants_fragment(request):
        rows = _redrawn_rows(request.user, outcome, day)
        context = {"outcome": outcome, "rows": rows, "slots": SLOTS, "fragment": True}
        if outcome.saved:
            context["backlog_count"] = Order.objects.visible_to(request.user).to_dispatch().count()
        return render(request, "orders/board.html#dropped", context)
    if outcome.saved:
        messages.success(request, outcome.text)
        filters = request.GET.copy()
        filters[DAY_PARAM] = day.isoformat()
        return redirect(f"{reverse('orders:dispatch_board')}?{filters.urlencode()}#tableau")
    picked = outcome.order.pk if outcome.order else None
    context = _board_context(request, day, form=form, outcome=outcome, picked=picked)
    return render(request, "orders/board.html", context, status=400)
