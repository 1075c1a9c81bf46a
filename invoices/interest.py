"""Late-payment interest and the recovery indemnity (CCAP §10.4; Code de la
commande publique, R2192-31 to R2192-36 and D2192-35). Pure: dates and Decimals.

- The payment period (30 days) runs from the day the buyer received the invoice;
  interest runs from the day after it ends up to the day of payment, inclusive.
- The rate is the ECB's main refinancing rate in force on the first day of the
  half-year (1 January or 1 July) during which interest started to run, plus 8
  points; it stays the same until paid, even across a later half-year.
- Interest is simple, on a 365-day year, per amount paid late: a partial payment
  stops the interest on its own amount only. Each amount's interest is rounded
  to the cent (half up).
- The indemnity for recovery costs is a flat 40 € per invoice paid late.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

POINTS = Decimal("8.00")
INDEMNITY = Decimal("40.00")
DAYS_IN_YEAR = Decimal(365)
CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def due_date(received_on: date, payment_days: int) -> date:
    return received_on + timedelta(days=payment_days)


def half_year_start(day: date) -> date:
    return date(day.year, 1 if day.month <= 6 else 7, 1)


def ecb_rate_on(day: date, rates: Iterable[tuple[date, Decimal]]) -> Decimal | None:
    """The rate in force on `day`: the one with the latest start on or before it."""
    known = [(start, rate) for start, rate in rates if start <= day]
    return max(known)[1] if known else None


@dataclass(frozen=True)
class Late:
    amount: Decimal
    start: date  # the first day of interest
    end: date  # the day of payment (or of the computation, for what is still unpaid)
    days: int
    rate: Decimal  # the ECB rate plus 8 points
    interest: Decimal
    paid: bool


@dataclass(frozen=True)
class Situation:
    due_on: date
    paid: Decimal
    outstanding: Decimal
    late: tuple[Late, ...]
    interest: Decimal
    indemnity: Decimal
    overdue: bool
    rate: Decimal | None

    @property
    def owed(self) -> Decimal:
        return self.interest + self.indemnity


def interest_for(amount: Decimal, days: int, rate: Decimal) -> Decimal:
    return (amount * rate / Decimal(100) * Decimal(days) / DAYS_IN_YEAR).quantize(CENT, rounding=ROUND_HALF_UP)


def _interest(amount: Decimal, days: int, rate: Decimal | None) -> Decimal:
    """No rate known for the half-year (the office has not entered it yet): no interest counted, the
    indemnity still due."""
    return interest_for(amount, days, rate) if rate is not None else ZERO


def situation(
    total: Decimal,
    *,
    received_on: date,
    payment_days: int,
    payments: Sequence[tuple[date, Decimal]],
    today: date,
    rates: Iterable[tuple[date, Decimal]],
) -> Situation:
    """Where an invoice of `total` (incl. VAT) stands on `today`."""
    due_on = due_date(received_on, payment_days)
    start = due_on + timedelta(days=1)
    ecb = ecb_rate_on(half_year_start(start), list(rates))
    rate = ecb + POINTS if ecb is not None else None
    late: list[Late] = []
    paid = Decimal("0.00")
    for paid_on, amount in sorted(payments):
        amount = min(amount, total - paid)
        if amount <= 0:
            continue
        paid += amount
        if paid_on >= start:
            days = (paid_on - due_on).days
            late.append(Late(amount, start, paid_on, days, rate or ZERO, _interest(amount, days, rate), True))
    outstanding = total - paid
    if outstanding > 0 and today >= start:
        days = (today - due_on).days
        late.append(Late(outstanding, start, today, days, rate or ZERO, _interest(outstanding, days, rate), False))
    indemnity = INDEMNITY if late else Decimal("0.00")
    return Situation(
        due_on=due_on,
        paid=paid,
        outstanding=outstanding,
        late=tuple(late),
        interest=sum((entry.interest for entry in late), Decimal("0.00")),
        indemnity=indemnity,
        overdue=outstanding > 0 and today > due_on,
        rate=rate,
    )
