"""What the contracts' clauses on delays cost, computed from plain figures.

Pure Python, no Django: Decimals, datetimes and dataclasses in; Decimals and French
explanations out, so that every figure the supervisor's overview shows can say
how it was obtained (on hover or click) and is tested by hand-computed cases.

Two rules (docs/requirements.md §2 and §3; the clauses in shared/seeds/):

- **Late penalty**, CCAG-MI 2021 art. 15.1: ``P = V × R / 3000``, V the value
  excluding VAT of the late order, R the number of days late. Art. 15.2 caps the
  penalties at 10 % of the value of "le marché, la tranche ou le bon de
  commande": under a framework contract the order is the unit, so the cap is
  10 % of the order's value. Art. 15.3 exempts the contractor from penalties
  whose total for the whole contract does not exceed 1,000 EUR: the exemption
  is all or nothing (at 1,000.00 EUR nothing is due; at 1,000.01 EUR all of it).
- **Data-sharing penalty**, the platform annex (seed 000, §3.1 with §2.9): 150
  EUR per day for not sharing a change within 15 minutes, not capped. It is a
  clause of its own, outside art. 15, so neither the 10 % cap nor the 1,000 EUR
  exemption applies to it.

Every amount is rounded to the cent, half up, once per figure: each order's
penalty and its cap are rounded, and the contract's total is the sum of the
rounded amounts (what an invoice deduction would show, line by line).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from orders.durations import duration
from portal.limits import SHARING_LIMIT

CENT = Decimal("0.01")
LATE_DIVISOR = 3000
LATE_CAP_PERCENT = 10
EXEMPTION_THRESHOLD = Decimal("1000.00")
DATA_SHARING_PER_DAY = Decimal("150.00")
DAY = timedelta(days=1)
NBSP = "\u00a0"  # between thousands, and before units, as French typography wants


def to_cent(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def euros(amount: Decimal) -> str:
    """`1 234,56 €`, with no-break spaces, rounded half up to the cent."""
    rounded = to_cent(amount)
    units, cents = f"{abs(rounded):.2f}".split(".")
    groups: list[str] = []
    while units:
        groups.insert(0, units[-3:])
        units = units[:-3]
    sign = "-" if rounded < 0 else ""
    return f"{sign}{NBSP.join(groups)},{cents}{NBSP}€"


def _days(count: int) -> str:
    return f"{count}{NBSP}j"


# --- Late penalties (CCAG-MI art. 15) ----------------------------------------


def days_late(due_at: datetime | None, at: datetime) -> int:
    """R: the whole days (24 hours each) elapsed between the due moment and `at`.

    Whole days, not started ones: an order 30 hours late is 1 day late, and one
    late by less than a day costs nothing yet although it already shows as late.
    This is the exposure while the order is still open; the buyer, counting in
    calendar days from the day after the expiry (art. 15.1, 3.2), may count one
    day more once the works end on a later day. No due date, or not due yet: 0."""
    if due_at is None or at <= due_at:
        return 0
    return (at - due_at) // DAY


@dataclass(frozen=True)
class LateOrder:
    """One late order, as the page knows it. `value` is V, the value excluding
    VAT of what is late: the whole order (the sum of its lines) unless only a
    part of it is late, in which case `order_value` is the whole order's, on
    which the 10 % cap is taken. `key` identifies the order for the caller (its
    id, for a link)."""

    reference: str
    value: Decimal
    days_late: int
    key: Hashable = None
    order_value: Decimal | None = None


@dataclass(frozen=True)
class OrderLatePenalty:
    order: LateOrder
    formula: Decimal  # V × R / 3000, rounded
    cap: Decimal  # 10 % of V, rounded
    amount: Decimal  # the smaller of the two
    explanation: str

    @property
    def capped(self) -> bool:
        return self.formula > self.cap


def order_late_penalty(order: LateOrder) -> OrderLatePenalty:
    """P = V × R / 3000 for one order, capped at 10 % of V (art. 15.1, 15.2).

    A negative R (not late) counts as 0; a negative value cannot come from
    order lines (their prices and quantities are positive) and is refused."""
    whole = order.value if order.order_value is None else order.order_value
    if order.value < 0 or whole < 0:
        raise ValueError(f"La valeur d'une commande ne peut pas être négative ({order.value}, {whole}).")
    if order.value > whole:
        raise ValueError(f"La partie en retard ({order.value}) dépasse la valeur de la commande ({whole}).")
    days = max(0, order.days_late)
    value, whole = to_cent(order.value), to_cent(whole)
    formula = to_cent(value * days / LATE_DIVISOR)
    cap = to_cent(whole * LATE_CAP_PERCENT / 100)
    amount = min(formula, cap)
    if days == 0:
        explanation = f"Moins d'un jour entier de retard : pas de pénalité ({euros(amount)})."
    elif value == 0:
        explanation = f"Valeur HT nulle (aucune ligne chiffrée) : {euros(amount)}."
    else:
        part = " (partie en retard)" if value != whole else ""
        explanation = f"{euros(value)} HT{part} × {_days(days)} / {LATE_DIVISOR} = {euros(formula)}"
        if formula > cap:
            of = "de la valeur HT" if value == whole else f"de la valeur HT de la commande ({euros(whole)})"
            explanation += f", plafonné à {LATE_CAP_PERCENT}{NBSP}% {of} : {euros(cap)}"
        explanation += "."
    return OrderLatePenalty(order=order, formula=formula, cap=cap, amount=amount, explanation=explanation)


@dataclass(frozen=True)
class ContractLatePenalty:
    orders: tuple[OrderLatePenalty, ...]
    total: Decimal  # the sum of the orders' capped penalties, before the exemption
    exempt: bool
    due: Decimal  # what the buyer may apply: 0 when exempt
    explanation: str

    @property
    def order_count(self) -> int:
        return len(self.orders)


def contract_late_penalty(orders: Iterable[LateOrder]) -> ContractLatePenalty:
    """The late penalties of one contract's orders, with the 1,000 EUR exemption
    of art. 15.3 applied to their total: at most 1,000.00 EUR, nothing is due."""
    penalties = tuple(order_late_penalty(order) for order in orders)
    total = sum((penalty.amount for penalty in penalties), Decimal("0.00"))
    exempt = total <= EXEMPTION_THRESHOLD
    count = len(penalties)
    counted = f"{count} commande{'s' if count > 1 else ''} en retard"
    if total == 0:
        explanation = (
            f"{counted.capitalize()}, aucune d'un jour entier : rien n'est dû."
            if count
            else "Aucune commande en retard : rien n'est dû."
        )
    elif exempt:
        explanation = (
            f"Total des pénalités de retard : {euros(total)} ({counted}), "
            f"pas plus de {euros(EXEMPTION_THRESHOLD)} pour l'ensemble du marché : "
            "exonération (CCAG-MI art. 15.3), rien n'est dû."
        )
    else:
        explanation = (
            f"Total des pénalités de retard : {euros(total)} ({counted}), "
            f"au-delà de {euros(EXEMPTION_THRESHOLD)} pour l'ensemble du marché : "
            "pas d'exonération (CCAG-MI art. 15.3), tout est dû."
        )
    return ContractLatePenalty(
        orders=penalties,
        total=total,
        exempt=exempt,
        due=Decimal("0.00") if exempt else total,
        explanation=explanation,
    )


def late_penalties_by_contract(orders: Iterable[tuple[Hashable, LateOrder]]) -> dict[Hashable, ContractLatePenalty]:
    """`(contract key, late order)` pairs in, one ContractLatePenalty per contract
    out: the exemption is per contract, never across contracts."""
    grouped: dict[Hashable, list[LateOrder]] = {}
    for contract, order in orders:
        grouped.setdefault(contract, []).append(order)
    return {contract: contract_late_penalty(late) for contract, late in grouped.items()}


# --- Data-sharing penalties (platform annex §3.1) ----------------------------


def breach_days(delay: timedelta) -> int:
    """The days of delay of one breach of the 15-minute limit: **started** days,
    counted from the moment the limit passed, i.e. ceil((delay − 15 min) / 24 h).

    `delay` is the time from the change to its delivery (the relay's
    `Breach.delay_seconds`), 15 minutes allowed included. A message delivered
    16 minutes after the change is late by one started day (150 EUR); one
    delivered 24 h 10 min after it, late by 23 h 55 min, still by one; 24 h 20
    min, by two. Counting from the change instead (ceil(delay / 24 h)) would
    differ only for delays within 15 minutes past a whole number of days.
    Within the limit: 0."""
    late = delay - SHARING_LIMIT
    if late <= timedelta(0):
        return 0
    return -(-late // DAY)  # ceiling division of timedeltas


@dataclass(frozen=True)
class SharingBreach:
    """One change shared late (or not yet shared): `delay` from the change to its
    delivery, or to now while it waits; `key` and `reference` identify the order."""

    delay: timedelta
    reference: str = ""
    key: Hashable = None
    delivered: bool = True


@dataclass(frozen=True)
class BreachPenalty:
    breach: SharingBreach
    days: int
    amount: Decimal
    explanation: str


@dataclass(frozen=True)
class DataSharingPenalty:
    breaches: tuple[BreachPenalty, ...]
    days: int
    total: Decimal
    explanation: str

    @property
    def breach_count(self) -> int:
        return len(self.breaches)


def breach_penalty(breach: SharingBreach) -> BreachPenalty:
    days = breach_days(breach.delay)
    amount = to_cent(DATA_SHARING_PER_DAY * days)
    shared = "Transmis" if breach.delivered else "Toujours pas transmis"
    explanation = (
        f"{shared} {duration(breach.delay)} après la modification (limite {duration(SHARING_LIMIT)}) : "
        f"{_days(days)} de retard commencé{'s' if days > 1 else ''} × {euros(DATA_SHARING_PER_DAY)} = {euros(amount)}."
    )
    return BreachPenalty(breach=breach, days=days, amount=amount, explanation=explanation)


def data_sharing_penalty(breaches: Iterable[SharingBreach]) -> DataSharingPenalty:
    """150 EUR per started day of delay, for each breach, summed; not capped."""
    penalties = tuple(breach_penalty(breach) for breach in breaches)
    days = sum(penalty.days for penalty in penalties)
    total = sum((penalty.amount for penalty in penalties), Decimal("0.00"))
    count = len(penalties)
    if not count:
        explanation = "Aucun dépassement du délai de 15 minutes : rien n'est dû."
    else:
        explanation = (
            f"{count} dépassement{'s' if count > 1 else ''} du délai de 15 minutes, "
            f"{_days(days)} de retard commencé{'s' if days > 1 else ''} × {euros(DATA_SHARING_PER_DAY)} "
            f"= {euros(total)} (pénalité non plafonnée)."
        )
    return DataSharingPenalty(breaches=penalties, days=days, total=total, explanation=explanation)


def data_sharing_by_contract(
    breaches: Iterable[tuple[Hashable, SharingBreach]],
) -> dict[Hashable, DataSharingPenalty]:
    grouped: dict[Hashable, list[SharingBreach]] = {}
    for contract, breach in breaches:
        grouped.setdefault(contract, []).append(breach)
    return {contract: data_sharing_penalty(items) for contract, items in grouped.items()}


@dataclass(frozen=True)
class Exposure:
    """What one contract may cost: its late penalties (after the exemption) and
    its data-sharing penalties."""

    late: ContractLatePenalty
    sharing: DataSharingPenalty

    @property
    def total(self) -> Decimal:
        return self.late.due + self.sharing.total

    @property
    def explanation(self) -> str:
        return (
            f"Pénalités de retard dues {euros(self.late.due)} + pénalités de partage des données "
            f"{euros(self.sharing.total)} = {euros(self.total)}."
        )


def exposure(late: ContractLatePenalty | None, sharing: DataSharingPenalty | None) -> Exposure:
    return Exposure(late or contract_late_penalty(()), sharing or data_sharing_penalty(()))
