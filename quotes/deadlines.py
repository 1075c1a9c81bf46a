"""A quote's deadlines. Pure Python, no Django (in the style of orders.deadlines).

- CCAG-MI §52: the buyer answers a work proposal within 30 days; without an
  answer by then, the contractor carries out the works. Counted as §3.2 counts
  (the day after the quote is sent, calendar days, a last day on a weekend or
  a public holiday moved to the next working day): `orders.deadlines.period`.
- The quote's own validity: it may be accepted until its last valid day
  included; the day after, it has expired.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from orders.deadlines import Deadline, local_date, period

ANSWER_DAYS = 30  # §52


def answer_deadline(sent_at: datetime) -> Deadline:
    """By when the buyer should answer the quote sent at `sent_at` (§52)."""
    return period(local_date(sent_at), ANSWER_DAYS)


def valid_until(sent_or_created_on: date, validity_days: int) -> date:
    """The quote's last valid day: `validity_days` after the day it is dated."""
    return sent_or_created_on + timedelta(days=validity_days)


def has_expired(valid_until: date, moment: datetime) -> bool:
    return local_date(moment) > valid_until


@dataclass(frozen=True)
class Waiting:
    """Where a sent quote stands with the buyer's answer, for the pages."""

    days_left: int  # 0 on the last day, negative once it is over
    over: bool

    @property
    def label(self) -> str:
        if self.over:
            return "Délai de réponse dépassé : les travaux peuvent être engagés (CCAG-MI §52)"
        if self.days_left == 0:
            return "Dernier jour de réponse"
        return f"{self.days_left} jour{'s' if self.days_left > 1 else ''} pour répondre"


def waiting(answer_due_on: date, moment: datetime) -> Waiting:
    days_left = (answer_due_on - local_date(moment)).days
    return Waiting(days_left=days_left, over=days_left < 0)
