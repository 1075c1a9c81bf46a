"""What the contracts' clauses on delays cost, computed from plain figures.

Pure Python, no Django: Decimals, datetimes and dataclasses in; Decimals and French
explanations out, so that every figure the supervisor's overview shows can say
how it was obtained (on hover or click) and is tested by hand-computed cases.

Two rules (docs/requirements.md §2 and §3; the clauses in shared/seeds/):

- **Late penalty**, CCAG-MI 2021 art. 15.1: ``P = V × R / 3000``, V the value
  excluding VAT of the part of the order that is late (the whole order when the
  delay of a part makes the whole unusable), R the days late, counted by
  `orders.deadlines.days_late` (calendar days from the day after the period
  expired). Art. 15.2 caps the penalties at 10 % of the value of "le marché, la
  tranche ou le bon de commande": under a framework contract the order is the
  unit, so the cap is 10 % of the order's value. Art. 15.3 exempts the
  contractor from penalties whose total for the whole contract does not exceed
  1,000 EUR: the exemption is all or nothing (at 1,000.00 EUR nothing is due; at
  1,000.01 EUR all of it). A contract's CCAP may depart from all three (seed
  004 §14.1: a fixed amount per day, no exemption): `PenaltyTerms`.
- **Data-sharing penalty**, the platform annex (seed 000, §3.1 with §2.9): 150
  EUR per day for not sharing a change within 15 minutes, not capped. It is a
  clause of its own, outside art. 15, so neither the 10 % cap nor the 1,000 EUR
  exemption applies to it. "150 euros par jour" does not say whether ten late
  changes during one outage are one day or ten: each contract says how it
  counts (`SharingCounting`), per change by default, the stricter reading.

Every amount is rounded to the cent, half up, once per figure: each order's
penalty and its cap are rounded, and the contract's total is the sum of the
rounded amounts (what an invoice deduction would show, line by line).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from orders.deadlines import INSTANT, local_date
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


def _percent(value: Decimal) -> str:
    return f"{value.normalize():f}".replace(".", ",")


@dataclass(frozen=True)
class PenaltyTerms:
    """How one contract counts its late penalties: the CCAG-MI's by default
    (V × R / 3000, capped at 10 %, exempt up to 1,000 EUR), or its CCAP's: a
    fixed amount per day instead of the formula, another cap or none, another
    exemption threshold or none."""

    divisor: int | None = LATE_DIVISOR
    daily_amount: Decimal | None = None
    cap_percent: Decimal | None = Decimal(LATE_CAP_PERCENT)
    exemption: Decimal | None = EXEMPTION_THRESHOLD

    def __post_init__(self) -> None:
        if (self.divisor is None) == (self.daily_amount is None):
            raise ValueError("Pénalités de retard : un diviseur ou un montant par jour, l'un ou l'autre.")
        if self.divisor is not None and self.divisor <= 0:
            raise ValueError("Le diviseur des pénalités de retard doit être positif.")

    @property
    def is_ccag(self) -> bool:
        return self == CCAG_TERMS

    @property
    def formula(self) -> str:
        if self.daily_amount is not None:
            return f"{euros(self.daily_amount)} par jour de retard"
        return f"V × R / {self.divisor}"

    @property
    def explanation(self) -> str:
        """The terms in French, with where they come from."""
        if self.is_ccag:
            return (
                f"Conditions du CCAG-MI (art. 15) : P = V × R / {LATE_DIVISOR}, plafonnées à {LATE_CAP_PERCENT} % "
                f"de la commande, exonération si le total du marché ne dépasse pas {euros(EXEMPTION_THRESHOLD)}."
            )
        cap = (
            f"plafonnées à {_percent(self.cap_percent)} % de la commande"
            if self.cap_percent is not None
            else "sans plafond"
        )
        exemption = (
            f"exonération si le total du marché ne dépasse pas {euros(self.exemption)}"
            if self.exemption is not None
            else "sans exonération"
        )
        formula = "P = V × R / " + str(self.divisor) if self.divisor is not None else f"P = {self.formula}"
        return f"Conditions propres au marché (CCAP, dérogeant au CCAG-MI) : {formula}, {cap}, {exemption}."


CCAG_TERMS = PenaltyTerms()


@dataclass(frozen=True)
class LateOrder:
    """One late order, as the page knows it. `value` is V, the value excluding
    VAT of what is late: the lines not done by the end of the period, or the
    whole order when the delay of a part makes the whole unusable (art. 15.1);
    `order_value` is the whole order's, on which the cap is taken (the same as
    V when it is None). `days_late` is R, frozen at the works' end once they are
    finished (`finished`). `key` identifies the order for the caller (its id,
    for a link)."""

    reference: str
    value: Decimal
    days_late: int
    key: Hashable = None
    order_value: Decimal | None = None
    finished: bool = False
    whole_unusable: bool = False
    last_day: date | None = None  # the period's last day, and the day R is counted to, to say so
    until: date | None = None


@dataclass(frozen=True)
class OrderLatePenalty:
    order: LateOrder
    formula: Decimal  # V × R / 3000 (or the daily amount × R), rounded
    cap: Decimal | None  # 10 % of the order, rounded; None without a cap
    amount: Decimal  # the smaller of the two
    explanation: str

    @property
    def capped(self) -> bool:
        return self.cap is not None and self.formula > self.cap


def order_late_penalty(order: LateOrder, terms: PenaltyTerms = CCAG_TERMS) -> OrderLatePenalty:
    """P = V × R / 3000 for one order, capped at 10 % of the order (art. 15.1,
    15.2), or as the contract's own `terms` say.

    A negative R (not late) counts as 0; a negative value cannot come from
    order lines (their prices and quantities are positive) and is refused."""
    whole = order.value if order.order_value is None else order.order_value
    if order.value < 0 or whole < 0:
        raise ValueError(f"La valeur d'une commande ne peut pas être négative ({order.value}, {whole}).")
    if order.value > whole:
        raise ValueError(f"La partie en retard ({order.value}) dépasse la valeur de la commande ({whole}).")
    days = max(0, order.days_late)
    value, whole = to_cent(order.value), to_cent(whole)
    if terms.daily_amount is not None:
        formula = to_cent(terms.daily_amount * days)
    else:
        formula = to_cent(value * days / (terms.divisor or LATE_DIVISOR))
    cap = to_cent(whole * terms.cap_percent / 100) if terms.cap_percent is not None else None
    amount = formula if cap is None else min(formula, cap)
    frozen = " (arrêté à la fin des travaux)" if order.finished else ""
    if days == 0:
        explanation = f"Aucun jour de retard après le dernier jour du délai : pas de pénalité ({euros(amount)})."
    elif terms.daily_amount is None and value == 0:
        explanation = (
            f"Valeur HT en retard nulle (lignes réalisées dans le délai, ou aucune ligne chiffrée) : {euros(amount)}."
        )
    else:
        if terms.daily_amount is not None:
            explanation = f"{euros(terms.daily_amount)} par jour × {_days(days)}{frozen} = {euros(formula)}"
        else:
            if order.whole_unusable and order.order_value is not None:
                part = " (l'ensemble, que le retard rend inutilisable)"
            else:
                part = " (partie en retard)" if value != whole else ""
            explanation = f"{euros(value)} HT{part} × {_days(days)}{frozen} / {terms.divisor} = {euros(formula)}"
        if cap is not None and formula > cap:
            of = "de la valeur HT" if value == whole else f"de la valeur HT de la commande ({euros(whole)})"
            explanation += f", plafonné à {_percent(terms.cap_percent or Decimal(0))}{NBSP}% {of} : {euros(cap)}"
        explanation += "."
    if days and order.last_day is not None and order.until is not None:
        end = " (fin des travaux)" if order.finished else ""
        explanation += (
            f" Dernier jour du délai : {order.last_day:%d/%m/%Y} ; jours de retard comptés du "
            f"{order.last_day + timedelta(days=1):%d/%m/%Y} au {order.until:%d/%m/%Y}{end} (CCAG-MI art. 3.2, 15.1)."
        )
    return OrderLatePenalty(order=order, formula=formula, cap=cap, amount=amount, explanation=explanation)


@dataclass(frozen=True)
class ContractLatePenalty:
    orders: tuple[OrderLatePenalty, ...]
    total: Decimal  # the sum of the orders' capped penalties, before the exemption
    exempt: bool
    due: Decimal  # what the buyer may apply: 0 when exempt
    explanation: str
    terms: PenaltyTerms = CCAG_TERMS

    @property
    def order_count(self) -> int:
        return len(self.orders)


def contract_late_penalty(orders: Iterable[LateOrder], terms: PenaltyTerms = CCAG_TERMS) -> ContractLatePenalty:
    """The late penalties of one contract's orders, with the 1,000 EUR exemption
    of art. 15.3 applied to their total: at most 1,000.00 EUR, nothing is due
    (or the contract's own threshold, or none)."""
    penalties = tuple(order_late_penalty(order, terms) for order in orders)
    total = sum((penalty.amount for penalty in penalties), Decimal("0.00"))
    exempt = terms.exemption is not None and total <= terms.exemption
    count = len(penalties)
    counted = f"{count} commande{'s' if count > 1 else ''} en retard"
    clause = "CCAG-MI art. 15.3" if terms.exemption == EXEMPTION_THRESHOLD else "CCAP du marché"
    if total == 0:
        explanation = (
            f"{counted.capitalize()}, aucune d'un jour entier : rien n'est dû."
            if count
            else "Aucune commande en retard : rien n'est dû."
        )
    elif terms.exemption is None:
        explanation = (
            f"Total des pénalités de retard : {euros(total)} ({counted}) ; le CCAP du marché ne prévoit "
            "aucune exonération : tout est dû."
        )
    elif exempt:
        explanation = (
            f"Total des pénalités de retard : {euros(total)} ({counted}), "
            f"pas plus de {euros(terms.exemption)} pour l'ensemble du marché : "
            f"exonération ({clause}), rien n'est dû."
        )
    else:
        explanation = (
            f"Total des pénalités de retard : {euros(total)} ({counted}), "
            f"au-delà de {euros(terms.exemption)} pour l'ensemble du marché : "
            f"pas d'exonération ({clause}), tout est dû."
        )
    return ContractLatePenalty(
        orders=penalties,
        total=total,
        exempt=exempt,
        due=Decimal("0.00") if exempt else total,
        explanation=explanation,
        terms=terms,
    )


def late_penalties_by_contract(
    orders: Iterable[tuple[Hashable, LateOrder]], terms: Mapping[Hashable, PenaltyTerms] | None = None
) -> dict[Hashable, ContractLatePenalty]:
    """`(contract key, late order)` pairs in, one ContractLatePenalty per contract
    out, each with its own terms (the CCAG's when `terms` has none for it): the
    exemption is per contract, never across contracts."""
    grouped: dict[Hashable, list[LateOrder]] = {}
    for contract, order in orders:
        grouped.setdefault(contract, []).append(order)
    terms = terms or {}
    return {
        contract: contract_late_penalty(late, terms.get(contract, CCAG_TERMS)) for contract, late in grouped.items()
    }


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


class SharingCounting(StrEnum):
    """How "150 euros par jour" counts (a contract's setting): each late change
    for its own started days, or each calendar day on which at least one change
    was late, however many were."""

    PER_CHANGE = "per_change"
    PER_DAY = "per_day"


@dataclass(frozen=True)
class SharingBreach:
    """One change shared late (or not yet shared): `delay` from the change to its
    delivery, to the moment the office typed it on the platform by hand
    (`by_hand`), or to now while it waits; `key` and `reference` identify the
    order; `changed_at`, when known, places its days in the calendar."""

    delay: timedelta
    reference: str = ""
    key: Hashable = None
    delivered: bool = True
    changed_at: datetime | None = None
    by_hand: bool = False

    @property
    def late_days(self) -> frozenset[date]:
        """The calendar days (Paris) on which this change was late: from the
        end of its 15 minutes to its delivery, both included."""
        if self.changed_at is None or self.delay <= SHARING_LIMIT:
            return frozenset()
        first = local_date(self.changed_at + SHARING_LIMIT)
        last = local_date(self.changed_at + self.delay - INSTANT)
        return frozenset(first + timedelta(days=offset) for offset in range((last - first).days + 1))


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
    counting: SharingCounting = SharingCounting.PER_CHANGE

    @property
    def breach_count(self) -> int:
        return len(self.breaches)


def breach_penalty(breach: SharingBreach, per_day: Decimal = DATA_SHARING_PER_DAY) -> BreachPenalty:
    days = breach_days(breach.delay)
    amount = to_cent(per_day * days)
    if breach.by_hand:
        shared = "Saisi à la main sur la plateforme"
    else:
        shared = "Transmis" if breach.delivered else "Toujours pas transmis"
    explanation = (
        f"{shared} {duration(breach.delay)} après la modification (limite {duration(SHARING_LIMIT)}) : "
        f"{_days(days)} de retard commencé{'s' if days > 1 else ''} × {euros(per_day)} = {euros(amount)}."
    )
    return BreachPenalty(breach=breach, days=days, amount=amount, explanation=explanation)


COUNTING_EXPLANATIONS = {
    SharingCounting.PER_CHANGE: "chaque modification transmise en retard compte ses jours de retard commencés",
    SharingCounting.PER_DAY: (
        "chaque jour calendaire où au moins une modification était en retard compte une fois, "
        "quel que soit le nombre de modifications"
    ),
}


def data_sharing_penalty(
    breaches: Iterable[SharingBreach],
    counting: SharingCounting = SharingCounting.PER_CHANGE,
    per_day: Decimal = DATA_SHARING_PER_DAY,
) -> DataSharingPenalty:
    """150 EUR per day, not capped (annex §3.1): per change, the started days of
    each breach, summed; per calendar day, the days on which any was late."""
    penalties = tuple(breach_penalty(breach, per_day) for breach in breaches)
    count = len(penalties)
    if counting == SharingCounting.PER_DAY:
        covered: set[date] = set()
        for penalty in penalties:
            covered |= penalty.breach.late_days
        days = len(covered)
        unit = f"{_days(days)} calendaire{'s' if days > 1 else ''} de non-conformité"
    else:
        days = sum(penalty.days for penalty in penalties)
        unit = f"{_days(days)} de retard commencé{'s' if days > 1 else ''}"
    total = to_cent(per_day * days)
    if not count:
        explanation = "Aucun dépassement du délai de 15 minutes : rien n'est dû."
    else:
        explanation = (
            f"{count} dépassement{'s' if count > 1 else ''} du délai de 15 minutes, "
            f"{unit} × {euros(per_day)} = {euros(total)} (pénalité non plafonnée ; "
            f"{COUNTING_EXPLANATIONS[counting]})."
        )
    return DataSharingPenalty(breaches=penalties, days=days, total=total, explanation=explanation, counting=counting)


@dataclass(frozen=True)
class SharingTerms:
    """A contract's data-sharing penalty: how much per day, and how days count."""

    per_day: Decimal = DATA_SHARING_PER_DAY
    counting: SharingCounting = SharingCounting.PER_CHANGE


def data_sharing_by_contract(
    breaches: Iterable[tuple[Hashable, SharingBreach]], terms: Mapping[Hashable, SharingTerms] | None = None
) -> dict[Hashable, DataSharingPenalty]:
    grouped: dict[Hashable, list[SharingBreach]] = {}
    for contract, breach in breaches:
        grouped.setdefault(contract, []).append(breach)
    terms = terms or {}
    result = {}
    for contract, items in grouped.items():
        own = terms.get(contract, SharingTerms())
        result[contract] = data_sharing_penalty(items, own.counting, own.per_day)
    return result


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
