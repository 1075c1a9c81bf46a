"""The planning: one week, one row per technician, one column per day, with
each order's appointment or planned period of works; reassign or reschedule an
order from it with a plain form; overlaps in one technician's day are flagged.

The week is Monday to Sunday in Paris time, named in the URL as an ISO week
(`?semaine=2026-W49`), the value an `<input type="week">` sends. The page reads
the technicians and the week's orders in two queries, however many there are:
the grid, the overlaps and the forms are built in Python from those.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cached_property

from django import forms
from django.contrib import messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from orders import dispatch
from orders.access import get_order_for
from orders.forms import add_refusal
from orders.models import DEFAULT_VISIT, Order
from orders.planning import plans_again
from orders.queries import is_late
from orders.states import WORK_STATES, Action, State
from orders.supervisor.forms import PlanningChangeForm
from portal import moments
from portal.access import role_required
from portal.errors import Refused
from portal.models import Role, User

# An appointment holds its technician for its visit's duration (`Order.visit_length`:
# its own, else its service code's, else an hour); the longest allowed is a day,
# hence how far back to look. Planned works without an end hold them for SLOT.
# Planned periods overlap when they intersect.
SLOT = DEFAULT_VISIT
LONGEST_VISIT = timedelta(days=1)


WEEK_PARAM = "semaine"
WEEK_PATTERN = re.compile(r"^(\d{4})-W(\d{1,2})$")
# Far enough for any real planning, near enough that a week after it still exists.
FIRST_YEAR, LAST_YEAR = 2000, 2200


# --- Weeks -----------------------------------------------------------------------


def parse_week(value: str) -> date | None:
    """The Monday of ISO week `2026-W49`, or None if `value` is not one."""
    match = WEEK_PATTERN.match(value.strip())
    if match is None:
        return None
    year, week = int(match[1]), int(match[2])
    if not FIRST_YEAR <= year <= LAST_YEAR:
        return None
    try:
        return date.fromisocalendar(year, week, 1)
    except ValueError:  # week 0, or 53 in a year of 52 weeks
        return None


def week_param(monday: date) -> str:
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


def week_url(monday: date) -> str:
    return f"{reverse('orders:planning')}?{WEEK_PARAM}={week_param(monday)}"


def _midnight(day: date) -> datetime:
    """Midnight in Paris time (the current time zone), daylight saving included."""
    return timezone.make_aware(datetime.combine(day, time.min))


# --- The grid --------------------------------------------------------------------


def _moment(value: datetime) -> str:
    return moments.moment(value)


KEEP_TYPED = "keep"


@dataclass(frozen=True)
class Typed:
    """An order's planning form as it was sent and refused: shown again so, the
    reasons inside it (the form is a handful of inputs written in the template)."""

    technician: int | None | str  # KEEP_TYPED: not sent, or not one of the list
    appointment: str
    planned_start: str
    planned_end: str
    reason: str
    errors: list[str]
    reason_errors: list[str]

    @classmethod
    def of(cls, form: forms.Form) -> Typed:
        data = form.data
        sent = data.get("technician")
        technician: int | None | str = KEEP_TYPED
        if sent == "":
            technician = None
        elif sent is not None and sent.isdigit() and "technician" not in form.errors:
            technician = int(sent)
        errors = [str(error) for name, found in form.errors.items() if name != "reason" for error in found]
        return cls(
            technician,
            *(str(data.get(name, ""))[:200] for name in ("appointment", "planned_start", "planned_end", "reason")),
            errors,
            [str(error) for error in form.errors.get("reason", [])],
        )


@dataclass
class Item:
    """An order's appointment or planned period, as placed on the planning."""

    order: Order
    start: datetime
    end: datetime
    is_appointment: bool
    open_ended: bool  # a planned start without an end
    url: str
    conflicts: list[Item] = field(default_factory=list)
    can_assign: bool = False
    can_plan: bool = False
    asks_reason: bool = False  # planned before: moving its date asks why (`orders.planning.plans_again`)
    typed: Typed | None = None  # its form as sent, when it was refused

    @property
    def chosen_technician_id(self) -> int | None:
        """The technician its form shows chosen: the one typed, else the order's."""
        if self.typed is not None and not isinstance(self.typed.technician, str):
            return self.typed.technician
        return self.order.technician_id

    @cached_property
    def description(self) -> str:
        """`rendez-vous lun. 30 nov. à 9 h 30`, `travaux du lun. 30 nov. à 8 h 00 au mer. 2 déc. à 17 h 00`."""
        if self.is_appointment:
            return f"rendez-vous {_moment(self.start)}"
        if self.open_ended:
            return f"travaux à partir du {_moment(self.start)}"
        return f"travaux du {_moment(self.start)} au {_moment(self.end)}"

    @cached_property
    def late(self) -> bool:
        return is_late(self.order, timezone.now())


@dataclass
class Entry:
    """An item in one day's cell: a period of several days has an entry per day."""

    item: Item
    starts_here: bool
    ends_here: bool
    first_shown: bool  # the entry that carries the item's form


@dataclass
class Row:
    technician: User | None
    cells: list[list[Entry]]

    @property
    def label(self) -> str:
        if self.technician is None:
            return "Non attribuées"
        name = str(self.technician)
        return name if self.technician.is_active else f"{name} (inactif)"

    @property
    def conflicts(self) -> int:
        """How many of the row's orders overlap another."""
        return len({entry.item.order.pk for cell in self.cells for entry in cell if entry.item.conflicts})

    @property
    def count(self) -> int:
        return len({entry.item.order.pk for cell in self.cells for entry in cell})


def _item(order: Order, url: str) -> Item | None:
    if order.appointment_at is not None:
        return Item(order, order.appointment_at, order.appointment_at + order.visit_length, True, False, url)
    if order.planned_start is not None:
        if order.planned_end is None:
            return Item(order, order.planned_start, order.planned_start + SLOT, False, True, url)
        return Item(order, order.planned_start, order.planned_end, False, False, url)
    return None


def _days_of(item: Item) -> tuple[date, date]:
    """First and last day (Paris time) the item covers; a period ending at
    midnight does not cover the day that begins then."""
    first = timezone.localdate(item.start)
    if item.is_appointment or item.open_ended:
        return first, first
    return first, max(first, timezone.localdate(item.end - timedelta(microseconds=1)))


def flag_overlaps(items: list[Item]) -> None:
    """Link every pair of one technician's items whose times intersect. Only the
    works still to do count: what is finished or cancelled holds nobody."""
    ordered = sorted(
        (item for item in items if item.order.state in WORK_STATES), key=lambda item: (item.start, item.order.pk)
    )
    running: list[Item] = []
    for item in ordered:
        running = [other for other in running if other.end > item.start]
        for other in running:
            other.conflicts.append(item)
            item.conflicts.append(other)
        running.append(item)
    for item in ordered:
        item.conflicts.sort(key=lambda other: (other.start, other.order.pk))


def build_rows(
    orders: list[Order], technicians: list[User], monday: date, refused: tuple[int, Typed] | None = None
) -> list[Row]:
    """One row per active technician (and per inactive one still holding an
    order this week), then the orders nobody is assigned to; the order whose
    form was `refused` shows it as it was sent."""
    days = [monday + timedelta(days=offset) for offset in range(7)]
    # The path reversed once and the pk put in for each order: reverse() for
    # each of a busy week's orders is most of the page's time.
    prefix = reverse("orders:supervisor_order", args=[0]).removesuffix("0/")

    def make_url(pk: int) -> str:
        return f"{prefix}{pk}/"

    by_technician: dict[int | None, list[Item]] = {}
    people = {technician.pk: technician for technician in technicians}
    for order in orders:
        item = _item(order, make_url(order.pk))
        if item is None:
            continue
        allowed = order.allowed_actions
        item.can_assign, item.can_plan = Action.ASSIGN in allowed, Action.PLAN in allowed
        item.asks_reason = item.can_plan and plans_again(order)
        if refused is not None and refused[0] == order.pk:
            item.typed = refused[1]
        by_technician.setdefault(order.technician_id, []).append(item)
        if order.technician_id is not None and order.technician_id not in people:
            people[order.technician_id] = order.technician
    rows = []
    for key in [*people, None]:
        items = by_technician.get(key, [])
        if key is not None:
            flag_overlaps(items)
        cells: list[list[Entry]] = [[] for _ in days]
        for item in sorted(items, key=lambda item: (item.start, item.order.reference)):
            first, last = _days_of(item)
            shown = False
            for index, day in enumerate(days):
                if first <= day <= last:
                    cells[index].append(Entry(item, day == first, day == last, not shown))
                    shown = True
        rows.append(Row(people.get(key) if key is not None else None, cells))
    return rows


def week_orders(user: User, start: datetime, end: datetime) -> list[Order]:
    """The orders with an appointment or planned works in [start, end), plus an
    appointment just before it (its slot may run into the week and overlap)."""
    return list(orders_between(user, start, end))


def orders_between(user: User, start: datetime, end: datetime) -> QuerySet[Order]:
    """`week_orders` as a query, for any span (the board's day, one technician's)."""
    return (
        Order.objects.visible_to(user)
        .exclude(state=State.CANCELLED)
        .filter(
            Q(appointment_at__gte=start - LONGEST_VISIT, appointment_at__lt=end)
            | Q(appointment_at__isnull=True, planned_start__lt=end, planned_end__gt=start)
            | Q(
                appointment_at__isnull=True,
                planned_end__isnull=True,
                planned_start__gte=start - SLOT,
                planned_start__lt=end,
            )
        )
        .select_related("asset", "technician", "contract__client", "service_code")
        .order_by("pk")
    )


@role_required(Role.SUPERVISOR, Role.OFFICE)
def planning(request: HttpRequest) -> HttpResponse:
    """The week's planning (two queries, whatever the number of orders)."""
    return _week_page(request, request.GET.get(WEEK_PARAM, ""))


def _week_page(request: HttpRequest, asked: str, *, refused: tuple[int, Typed] | None = None) -> HttpResponse:
    """The page of week `asked` (this week if empty or unreadable, said so),
    with the form of an order that was `refused` as it was sent."""
    today = timezone.localdate()  # read once: at midnight, two readings may be two days
    this_monday = today - timedelta(days=today.weekday())
    asked = asked.strip()
    monday = parse_week(asked) if asked else this_monday
    week_error = ""
    if monday is None:
        week_error = f"« {asked[:20]} » n'est pas une semaine : écrivez-la sous la forme {week_param(this_monday)}."
        monday = this_monday
    start, end = _midnight(monday), _midnight(monday + timedelta(days=7))
    technicians = list(User.objects.filter(role=Role.TECHNICIAN, is_active=True).order_by("last_name", "first_name"))
    rows = build_rows(week_orders(request.user, start, end), technicians, monday, refused)
    context = {
        "rows": rows,
        "days": [monday + timedelta(days=offset) for offset in range(7)],
        "today": today,
        "today_index": (today - monday).days,
        "monday": monday,
        "sunday": monday + timedelta(days=6),
        "week": week_param(monday),
        "week_number": monday.isocalendar().week,
        "week_error": week_error,
        "is_this_week": monday == this_monday,
        "previous_url": week_url(monday - timedelta(days=7)),
        "next_url": week_url(monday + timedelta(days=7)),
        "this_week_url": reverse("orders:planning"),
        "technicians": technicians,
        "slot_minutes": int(SLOT.total_seconds() // 60),
        "conflicts": sum(row.conflicts for row in rows),
        "backlog_count": Order.objects.visible_to(request.user).to_dispatch().count(),
    }
    return render(request, "orders/planning.html", context)


# --- Reassigning and rescheduling -------------------------------------------------


def _errors(form: forms.Form) -> str:
    return " ".join(str(error) for errors in form.errors.values() for error in errors)


@role_required(Role.SUPERVISOR, Role.OFFICE)
@require_POST
def planning_change(request: HttpRequest, pk: int) -> HttpResponse:
    """The planning's form for one order: back to the same week, with what
    changed; refused, the same week again, the form as it was sent and,
    in French, why nothing changed (a moved date without its reason, too)."""
    order = get_order_for(request, pk)
    week = request.POST.get(WEEK_PARAM, "")
    monday = parse_week(week)
    form, unchanged = PlanningChangeForm(request.POST), ""
    if form.is_valid():
        data = dict(form.cleaned_data)
        if "technician" not in request.POST:  # a form without the select leaves the technician alone
            data["technician"] = dispatch.KEEP
        try:
            events = dispatch.reschedule_order(order, actor=request.user, **data)
        except Refused as error:
            add_refusal(form, error)
            unchanged = "rien n'a été modifié. "
        else:
            labels = [event.label for event in events]
            if labels:
                messages.success(request, f"Commande {order.reference} : {' ; '.join(labels)}.")
            else:
                messages.info(request, f"Commande {order.reference} : rien à changer.")
            back = week_url(monday) if monday else reverse("orders:planning")
            return redirect(back + f"#commande-{order.pk}")
    messages.error(request, f"Commande {order.reference} : {unchanged}{_errors(form)}")
    refused = (order.pk, Typed.of(form))
    # 200, as the order pages answer a refused form: the browser shows the page, not a failed load.
    return _week_page(request, week if monday else "", refused=refused)
