"""The contractual deadlines of an order, counted as the CCAG-MI counts them.
Pure Python, no Django: the services refuse what comes too late with them, the
pages say how long is left with them, and their tests need no database.

CCAG-MI 2021 §3.2: a period "en jours" starts at 0 h the day after the fact
that starts it, counts calendar days, and ends at midnight on its last day;
a last day that is a Saturday, a Sunday or a public holiday moves to the end
of the next working day. Times are Paris times (where the works are done).

- Observations on an order: 15 days from its receipt (§3.7.2), or the right
  is lost (*forclusion*).
- An extension of the execution period: asked within 15 days of the cause
  arising (§14.3.2), and never after the period has expired (§14.3.4); the
  buyer answers within 15 days of receiving the request (§14.3.3).

Only the national public holidays are known here. The local ones of
Alsace-Moselle (Good Friday, 26 December) would only lengthen a period, so
leaving them out errs on the safe side: the portal never promises a day the
contract does not give.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

# An order whose due date falls within this is "due soon": the overview's
# and the list's filter, and the supervisors' warning email.
DUE_SOON = timedelta(hours=48)

PARIS = ZoneInfo("Europe/Paris")

OBSERVATION_DAYS = 15  # §3.7.2
EXTENSION_REQUEST_DAYS = 15  # §14.3.2
EXTENSION_ANSWER_DAYS = 15  # §14.3.3


def easter(year: int) -> date:
    """Easter Sunday (Gregorian calendar; the anonymous algorithm, "Meeus/Jones/Butcher")."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    leap = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * leap) // 451
    month, day = divmod(h + leap - 7 * m + 114, 31)
    return date(year, month, day + 1)


@cache
def public_holidays(year: int) -> frozenset[date]:
    """The French national public holidays (Code du travail, art. L3133-1)."""
    sunday = easter(year)
    return frozenset(
        {
            date(year, 1, 1),
            sunday + timedelta(days=1),  # lundi de Pâques
            date(year, 5, 1),
            date(year, 5, 8),
            sunday + timedelta(days=39),  # Ascension
            sunday + timedelta(days=50),  # lundi de Pentecôte
            date(year, 7, 14),
            date(year, 8, 15),
            date(year, 11, 1),
            date(year, 11, 11),
            date(year, 12, 25),
        }
    )


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in public_holidays(day.year)


def last_day(start: date, days: int) -> date:
    """The last day of a period of `days` calendar days started by a fact on
    `start` (§3.2.1, §3.2.2), moved past weekends and holidays (§3.2.4)."""
    day = start + timedelta(days=days)
    while not is_working_day(day):
        day += timedelta(days=1)
    return day


def end_of(day: date) -> datetime:
    """Midnight at the end of `day` in Paris: the first instant that is too late."""
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=PARIS)


def local_date(moment: datetime) -> date:
    if moment.tzinfo is None:
        raise ValueError("naive datetime: a deadline needs to know the time zone")
    return moment.astimezone(PARIS).date()


@dataclass(frozen=True)
class Deadline:
    """A period's last day, and the instant it is over (`ends_at`, excluded)."""

    last_day: date
    ends_at: datetime

    @property
    def at_midnight(self) -> bool:
        """Whether it ends with its last day (else at a given time of it: an order's due time)."""
        return self.ends_at == end_of(self.last_day)

    def is_open(self, moment: datetime) -> bool:
        return moment < self.ends_at

    def days_left(self, moment: datetime) -> int:
        """Whole days left after the day of `moment`: 0 on the last day itself,
        negative once it is over (as `orders.penalties` counts them on the overview)."""
        return (self.last_day - local_date(moment)).days


def period(fact: date, days: int) -> Deadline:
    last = last_day(fact, days)
    return Deadline(last, end_of(last))


def observation_deadline(received_at: datetime) -> Deadline:
    """Until when observations on an order may be sent (§3.7.2)."""
    return period(local_date(received_at), OBSERVATION_DAYS)


def extension_deadline(cause_date: date, due_at: datetime | None) -> Deadline:
    """Until when an extension may be asked for a cause that arose on
    `cause_date`: 15 days (§14.3.2), but no later than the end of the execution
    period (§14.3.4), when the order has one."""
    by_cause = period(cause_date, EXTENSION_REQUEST_DAYS)
    if due_at is None or by_cause.ends_at <= due_at:
        return by_cause
    # The last day is the one the period ends in (the day before, when it ends at midnight).
    return Deadline(local_date(due_at - timedelta(microseconds=1)), due_at)


def extension_answer_deadline(requested_at: datetime) -> Deadline:
    """By when the buyer should answer a request for an extension (§14.3.3)."""
    return period(local_date(requested_at), EXTENSION_ANSWER_DAYS)
