"""The overview's penalty figures: what each contract's late orders and late
data sharing may cost, read from the database in a fixed number of queries
and computed by the pure `orders.penalties` with each contract's own terms.

- Late penalties (CCAG-MI art. 15): every order late now, and every order
  whose works ended after its period (the delay frozen at their end, the
  penalty kept whatever comes next); V is the part not done by the end of the
  period, or the whole order when the office says the delay makes it unusable.
- Data-sharing penalties (platform annex §3.1): the breaches of the 15-minute
  limit, each in the month of its change; one still waiting grows until it is
  delivered or typed on the platform by hand, never after.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import F, QuerySet
from django.utils import timezone

from orders import deadlines, durations, penalties
from orders.models import Order
from orders.states import WORK_STATES
from portal.models import Contract
from portal.relay.models import Breach, MessageStatus

ZERO = Decimal("0.00")
HISTORY_MONTHS = 12
WAITING = (MessageStatus.PENDING, MessageStatus.REJECTED)


def late_terms(contract: Contract) -> penalties.PenaltyTerms:
    """The contract's late-penalty terms (the CCAG-MI's unless its CCAP departs from them)."""
    return penalties.PenaltyTerms(
        divisor=contract.late_penalty_divisor,
        daily_amount=contract.late_penalty_per_day,
        cap_percent=contract.late_penalty_cap_percent,
        exemption=contract.late_penalty_exemption,
    )


def sharing_terms(contract: Contract) -> penalties.SharingTerms:
    return penalties.SharingTerms(
        per_day=contract.sharing_penalty_per_day,
        counting=penalties.SharingCounting(contract.sharing_penalty_counting),
    )


# --- Late penalties ------------------------------------------------------------------


@dataclass(frozen=True)
class LateRow:
    order: Order
    late_by: str
    penalty: penalties.OrderLatePenalty

    @property
    def open(self) -> bool:
        return not self.penalty.order.finished


def late_order(order: Order, now: datetime) -> penalties.LateOrder:
    """An order read with `with_value()` and `with_value_on_time()` as the penalty module takes it."""
    finished = order.state not in WORK_STATES
    until = order.actual_end if finished and order.actual_end else now
    whole = order.value
    late_part = whole if order.late_whole_unusable else max(ZERO, whole - order.value_on_time)
    return penalties.LateOrder(
        reference=order.reference,
        value=late_part,
        days_late=deadlines.days_late(order.due_at, until),
        key=order.pk,
        order_value=whole,
        finished=finished,
        whole_unusable=order.late_whole_unusable,
        last_day=deadlines.expiry_day(order.due_at),
        until=deadlines.local_date(until),
    )


def penalised_orders(orders: QuerySet[Order], now: datetime) -> list[LateRow]:
    """Every order that owes late penalties (late now, or finished late), most
    late first, with its value and the value done on time in the same query."""
    rows = (
        orders.penalised(now)
        .with_value()
        .with_value_on_time()
        .select_related("contract__client", "technician")
        .order_by("due_at", "pk")
    )
    result = []
    for order in rows:
        late = late_order(order, now)
        if late.finished:
            late_by = f"terminée {durations.duration(order.actual_end - order.due_at)} après l'échéance"
        else:
            late_by = durations.duration(now - order.due_at)
        result.append(LateRow(order, late_by, penalties.order_late_penalty(late, late_terms(order.contract))))
    return result


# --- Data-sharing penalties ------------------------------------------------------------


def month_of(moment: datetime) -> date:
    return timezone.localtime(moment).date().replace(day=1)


def months_back(start: date, count: int) -> date:
    index = start.year * 12 + start.month - 1 - count
    return date(index // 12, index % 12 + 1, 1)


def breaches_since(since: datetime, now: datetime) -> list[tuple[int, date, penalties.SharingBreach]]:
    """(contract id, month of the change, breach) for every breach of the
    15-minute limit since `since`. A message still waiting is late by now minus
    its change; one typed on the platform by hand, until then; one given up
    without that date, until it was given up. Not narrowed to `visible_to`: the
    page is for supervisors and office staff, who see every order."""
    rows = (
        Breach.objects.filter(changed_at__gte=since)
        .order_by("-changed_at", "-pk")
        .values(
            "changed_at",
            "delivered_at",
            "delay_seconds",
            "entered_by_hand_at",
            status=F("message__status"),
            resolved_at=F("message__resolved_at"),
            order_id=F("message__order_id"),
            reference=F("message__order__reference"),
            contract_id=F("message__order__contract_id"),
        )
    )
    breaches = []
    for row in rows:
        changed_at = row["changed_at"]
        delay = timedelta(seconds=row["delay_seconds"])
        by_hand = row["entered_by_hand_at"] is not None
        if by_hand:
            delay = row["entered_by_hand_at"] - changed_at
        elif row["delivered_at"] is None and row["status"] in WAITING:
            delay = max(delay, now - changed_at)
        elif row["delivered_at"] is None and row["resolved_at"] is not None:
            delay = max(delay, row["resolved_at"] - changed_at)
        breach = penalties.SharingBreach(
            delay=delay,
            reference=row["reference"],
            key=row["order_id"],
            delivered=row["delivered_at"] is not None,
            changed_at=changed_at,
            by_hand=by_hand,
        )
        breaches.append((row["contract_id"], month_of(changed_at), breach))
    return breaches


@dataclass(frozen=True)
class MonthRow:
    month: date
    contract: Contract
    sharing: penalties.DataSharingPenalty


def monthly_history(
    breaches: Iterable[tuple[int, date, penalties.SharingBreach]], contracts: dict[int, Contract], current: date
) -> list[MonthRow]:
    """The past months' data-sharing penalties per contract, newest first: a
    breach stays in the month of its change after that month ends."""
    grouped: dict[tuple[date, int], list[penalties.SharingBreach]] = {}
    for contract_id, month, breach in breaches:
        if month < current:
            grouped.setdefault((month, contract_id), []).append(breach)
    rows = []
    for (month, contract_id), items in sorted(grouped.items(), key=lambda item: (-item[0][0].toordinal(), item[0][1])):
        contract = contracts.get(contract_id)
        if contract is None:  # a contract the state table does not list has no order, hence no breach
            continue
        terms = sharing_terms(contract)
        rows.append(MonthRow(month, contract, penalties.data_sharing_penalty(items, terms.counting, terms.per_day)))
    return rows


# --- Per contract ---------------------------------------------------------------------


@dataclass(frozen=True)
class ExposureRow:
    contract: Contract
    exposure: penalties.Exposure
    late_url: str

    @property
    def late(self) -> penalties.ContractLatePenalty:
        return self.exposure.late

    @property
    def sharing(self) -> penalties.DataSharingPenalty:
        return self.exposure.sharing

    @property
    def open_late_count(self) -> int:
        return sum(1 for penalty in self.late.orders if not penalty.order.finished)

    @property
    def finished_late_count(self) -> int:
        return self.late.order_count - self.open_late_count

    @property
    def sharing_terms(self) -> str:
        terms = sharing_terms(self.contract)
        return (
            f"{penalties.euros(terms.per_day)} par jour, non plafonnés ; "
            f"{penalties.COUNTING_EXPLANATIONS[terms.counting]}."
        )


@dataclass
class ExposureTable:
    rows: list[ExposureRow] = field(default_factory=list)
    history: list[MonthRow] = field(default_factory=list)

    @property
    def late_total(self) -> Decimal:
        return sum((row.late.total for row in self.rows), ZERO)

    @property
    def late_due(self) -> Decimal:
        return sum((row.late.due for row in self.rows), ZERO)

    @property
    def sharing(self) -> Decimal:
        return sum((row.sharing.total for row in self.rows), ZERO)

    @property
    def total(self) -> Decimal:
        return sum((row.exposure.total for row in self.rows), ZERO)

    @property
    def explanation(self) -> str:
        parts = " + ".join(penalties.euros(row.exposure.total) for row in self.rows)
        return f"Somme des marchés : {parts} = {penalties.euros(self.total)}." if self.rows else ""


def exposure_table(
    late: list[LateRow],
    contracts: dict[int, Contract],
    now: datetime,
    late_url: Callable[[int], str],
) -> ExposureTable:
    """Per contract: its late penalties (each with its terms: cap per order,
    exemption on the contract's total) and this month's data-sharing penalties;
    the past months' data-sharing penalties below. One query for the breaches."""
    current = month_of(now)
    since = timezone.make_aware(datetime.combine(months_back(current, HISTORY_MONTHS), time.min))
    breaches = breaches_since(since, now)
    terms = {contract.pk: late_terms(contract) for contract in contracts.values()}
    late_by_contract = penalties.late_penalties_by_contract(
        ((row.order.contract_id, row.penalty.order) for row in late), terms
    )
    sharing_by_contract = penalties.data_sharing_by_contract(
        ((contract_id, breach) for contract_id, month, breach in breaches if month == current),
        {contract.pk: sharing_terms(contract) for contract in contracts.values()},
    )
    keys = set(late_by_contract) | set(sharing_by_contract)
    table = ExposureTable(history=monthly_history(breaches, contracts, current))
    for contract in contracts.values():  # in the state table's order: client, then reference
        if contract.pk in keys:
            late_penalty = late_by_contract.get(contract.pk) or penalties.contract_late_penalty((), terms[contract.pk])
            exposure = penalties.exposure(late_penalty, sharing_by_contract.get(contract.pk))
            table.rows.append(ExposureRow(contract, exposure, late_url(contract.pk)))
    return table
