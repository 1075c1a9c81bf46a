"""The supervisor's home, /pilotage/: the morning's questions on one page.

What came in and where each order stands, per client and contract; what waits
to be acknowledged and how many of the 15 days for observations are left; what
is late or will be within 48 hours; what that may cost in penalties; whether
the platform got everything; who goes where today. Every count leads to the
orders behind it (the all-orders list, `orders:order_list`, filtered through its
query string) and every amount explains itself (a `title` to hover, a
`<details>` to open), the figures coming from the pure `orders.penalties`.

The page runs a fixed number of queries whatever the number of orders: counts
are GROUP BYs, an order's value is a subquery, lists are sliced; only the late
orders (every one of them weighs in its contract's penalties) and today's
appointments are fetched whole, each in one query.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from itertools import groupby
from typing import Any
from urllib.parse import urlencode

from django.db.models import Count, DecimalField, F, Q, QuerySet
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from orders import admission, buyer, deadlines, durations, penalties
from orders.models import Order
from orders.states import STATE_LABELS, WORK_STATES, State
from orders.supervisor import exposure
from portal.access import role_required
from portal.models import Client, Contract, Role, User
from portal.relay import watch

LIST_LIMIT = 10  # rows of each list on the page; its count links to all of them
MONEY = DecimalField(max_digits=14, decimal_places=2)
ZERO = Decimal("0.00")


def list_url(**filters: Any) -> str:
    """The all-orders list filtered by its GET parameters (`etat`, repeatable;
    `client`, `marche`, `technicien`: primary keys; `retard`: `oui` or `48h`)."""
    return _with_query(reverse("orders:order_list"), filters)


def _with_query(path: str, filters: dict[str, Any]) -> str:
    query = urlencode({name: value for name, value in filters.items() if value not in (None, "")}, doseq=True)
    return f"{path}?{query}" if query else path


# --- Orders by state, per client and contract --------------------------------------


@dataclass(frozen=True)
class Cell:
    count: int
    url: str | None  # no link to an empty list


@dataclass(frozen=True)
class StateRow:
    cells: list[Cell]
    total: Cell
    contract: Contract | None = None


@dataclass(frozen=True)
class ClientBlock:
    client: Client
    subtotal: StateRow
    rows: list[StateRow]


@dataclass(frozen=True)
class StateTable:
    states: list[tuple[str, str]]  # (value, French label)
    clients: list[ClientBlock]
    totals: StateRow
    unassigned: int = 0  # open orders without a technician

    def count(self, state: State) -> int:
        return self.totals.cells[list(State).index(state)].count


def state_table(orders: QuerySet[Order]) -> tuple[StateTable, dict[int, Contract]]:
    """Two queries: the counts grouped by contract and state, and the contracts
    (the active ones, and any other that still has orders)."""
    # The list's path once: reverse() costs more than the rest of a cell, and
    # there are a hundred cells with six contracts.
    path = reverse("orders:order_list")

    def _cell(count: int, **filters: Any) -> Cell:
        return Cell(count, _with_query(path, filters) if count else None)

    counts: dict[tuple[int, str], int] = {}
    unassigned = 0  # open orders without a technician, counted in the same query
    grouped = (
        orders.order_by()
        .values_list("contract_id", "state")
        .annotate(n=Count("*"), without_technician=Count("pk", filter=Q(technician__isnull=True)))
    )
    for contract_id, state, count, without_technician in grouped:
        counts[(contract_id, state)] = count
        if state in WORK_STATES:
            unassigned += without_technician
    used = {contract_id for contract_id, _state in counts}
    contracts = list(
        Contract.objects.filter(Q(active=True) | Q(pk__in=used))
        .select_related("client")
        .order_by("client__name", "client_id", "reference")
    )
    blocks = []
    for _client_id, group in groupby(contracts, key=lambda contract: contract.client_id):
        group = list(group)
        client = group[0].client
        rows = []
        for contract in group:
            numbers = [counts.get((contract.pk, state), 0) for state in State]
            rows.append(
                StateRow(
                    [_cell(n, etat=state.value, marche=contract.pk) for n, state in zip(numbers, State, strict=True)],
                    _cell(sum(numbers), marche=contract.pk),
                    contract,
                )
            )
        sums = [sum(row.cells[index].count for row in rows) for index in range(len(State))]
        subtotal = StateRow(
            [_cell(n, etat=state.value, client=client.pk) for n, state in zip(sums, State, strict=True)],
            _cell(sum(sums), client=client.pk),
        )
        blocks.append(ClientBlock(client, subtotal, rows))
    sums = [sum(n for (_contract, s), n in counts.items() if s == state) for state in State]
    totals = StateRow(
        [_cell(n, etat=state.value) for n, state in zip(sums, State, strict=True)],
        Cell(sum(sums), path),
    )
    table = StateTable([(state.value, STATE_LABELS[state]) for state in State], blocks, totals, unassigned)
    return table, {contract.pk: contract for contract in contracts}


# --- Waiting to be acknowledged: the 15 days for observations ----------------------


@dataclass(frozen=True)
class Waiting:
    order: Order
    last_day: date
    days_left: int
    explanation: str

    @property
    def urgency(self) -> str:
        if self.days_left < 0:
            return "expired"
        return "soon" if self.days_left <= 3 else ""


def waiting_orders(orders: QuerySet[Order], now: datetime) -> list[Waiting]:
    """The oldest orders still to acknowledge, with what is left of the 15 days
    for observations (CCAG-MI §3.7.2, counted by `orders.deadlines`)."""
    rows = []
    oldest = orders.filter(state=State.TO_ACKNOWLEDGE).select_related("contract__client", "asset")
    for order in oldest.order_by("received_at", "pk")[:LIST_LIMIT]:
        deadline = deadlines.observation_deadline(order.received_at, order.department)
        left = deadline.days_left(now)
        received = timezone.localdate(order.received_at)
        text = (
            f"Reçue le {received:%d/%m/%Y} : observations possibles pendant {deadlines.OBSERVATION_DAYS} jours "
            f"(CCAG-MI art. 3.7.2), jusqu'au {deadline.last_day:%d/%m/%Y} inclus"
        )
        if left < 0:
            text += " ; délai expiré, la commande s'exécute telle quelle."
        elif left == 0:
            text += " ; c'est aujourd'hui le dernier jour."
        else:
            text += f" ; encore {left} jour{'s' if left > 1 else ''} après aujourd'hui."
        rows.append(Waiting(order, deadline.last_day, left, text))
    return rows


# --- Late orders, and what they may cost (orders.supervisor.exposure) -------------------


@dataclass(frozen=True)
class SoonRow:
    order: Order
    due_in: str


def soon_late(orders: QuerySet[Order], now: datetime) -> tuple[int, list[SoonRow]]:
    soon = orders.due_soon(now)
    rows = soon.select_related("contract__client", "technician").order_by("due_at", "pk")[:LIST_LIMIT]
    return soon.count(), [SoonRow(order, durations.duration(order.due_at - now)) for order in rows]


def _late_url(contract_id: int) -> str:
    return list_url(retard="oui", marche=contract_id)


# --- Admission of finished works (CCAG-MI §33-34) ------------------------------------


@dataclass(frozen=True)
class AdmissionRow:
    order: Order
    status: admission.AdmissionStatus


def admissions(orders: QuerySet[Order], now: datetime) -> list[AdmissionRow]:
    """Finished works not received yet, with where their admission stands: the
    buyer's countdown, tacit admission (with its date of effect), adjournment.
    Two queries: the orders, and their admission steps."""
    today = timezone.localdate(now)
    finished = (
        orders.filter(state=State.FINISHED, actual_end__isnull=False)
        .select_related("contract__client", "asset")
        .prefetch_related("admission_steps")
        .order_by("actual_end", "pk")
    )
    rows = [AdmissionRow(order, buyer.status_of(order, today, list(order.admission_steps.all()))) for order in finished]
    # The open countdowns first (the most urgent first), then what is settled.
    return sorted(rows, key=lambda row: (row.status.days_left is None, row.status.days_left or 0))


# --- Today's appointments, by technician -------------------------------------------


@dataclass(frozen=True)
class Visit:
    order: Order
    when: str


def todays_visits(orders: QuerySet[Order], now: datetime) -> list[tuple[User | None, list[Visit]]]:
    """Appointments today (Paris time), and works planned over a period that
    includes today, per technician (the unassigned last)."""
    today = timezone.localdate(now)
    start = timezone.make_aware(datetime.combine(today, time.min))
    end = timezone.make_aware(datetime.combine(today + timedelta(days=1), time.min))
    visits = (
        orders.exclude(state=State.CANCELLED)
        .filter(
            Q(appointment_at__gte=start, appointment_at__lt=end)
            | Q(appointment_at__isnull=True, planned_start__lt=end, planned_end__gt=start)
        )
        .select_related("technician", "contract__client", "asset")
        .order_by(
            F("technician__last_name").asc(nulls_last=True),
            "technician__first_name",
            "technician_id",
            Coalesce("appointment_at", "planned_start"),
            "pk",
        )
    )
    groups = []
    for _technician_id, group in groupby(visits, key=lambda order: order.technician_id):
        group = list(group)
        groups.append((group[0].technician, [Visit(order, _when(order)) for order in group]))
    return groups


def _when(order: Order) -> str:
    if order.appointment_at is not None:
        return f"{timezone.localtime(order.appointment_at):%H:%M}"
    start, end = timezone.localtime(order.planned_start), timezone.localtime(order.planned_end)
    return f"Travaux du {start:%d/%m %H:%M} au {end:%d/%m %H:%M}"


# --- The page ---------------------------------------------------------------------


@role_required(Role.SUPERVISOR, Role.OFFICE)
def overview(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    orders = Order.objects.visible_to(request.user)
    states, contracts = state_table(orders)
    penalised = exposure.penalised_orders(orders, now)
    late = [row for row in penalised if row.open]
    soon_count, soon = soon_late(orders, now)
    health = watch.health(now)
    context = {
        "now": now,
        "states": states,
        "waiting": waiting_orders(orders, now),
        "waiting_count": states.count(State.TO_ACKNOWLEDGE),
        "waiting_url": list_url(etat=State.TO_ACKNOWLEDGE.value),
        "late": late[:LIST_LIMIT],
        "late_count": len(late),
        "late_url": list_url(retard="oui"),
        "soon": soon,
        "soon_count": soon_count,
        "soon_url": list_url(retard="48h"),
        "exposure": exposure.exposure_table(penalised, contracts, now, _late_url),
        "health": health,
        "relay": relay_summary(health),
        "visits": todays_visits(orders, now),
        "admissions": admissions(orders, now),
        "today": timezone.localdate(now),
        "unassigned_count": states.unassigned,
    }
    return render(request, "orders/overview.html", context)


@dataclass(frozen=True)
class RelaySummary:
    waiting: int
    rejected: int
    breaches: int
    oldest_age: timedelta | None

    @property
    def oldest(self) -> str:
        return durations.duration(self.oldest_age) if self.oldest_age is not None else ""

    @property
    def level(self) -> str:
        """`danger` past the 15-minute limit; `warn` past the relay's 5-minute
        warning, or when the platform refused something (it waits for a person
        and holds back the order's later changes); `ok` otherwise."""
        if self.oldest_age is not None and self.oldest_age > penalties.SHARING_LIMIT:
            return "danger"
        if self.rejected or (self.oldest_age is not None and self.oldest_age >= watch.WARN_AFTER):
            return "warn"
        return "ok"


def relay_summary(health: Iterable[watch.Health]) -> RelaySummary:
    health = list(health)
    ages = [item.oldest_age for item in health if item.oldest_age is not None]
    return RelaySummary(
        waiting=sum(item.waiting for item in health),
        rejected=sum(item.rejected for item in health),
        breaches=sum(item.breaches_this_month for item in health),
        oldest_age=max(ages) if ages else None,
    )
