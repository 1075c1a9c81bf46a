"""The contractual deadlines of an order, counted as the CCAG-MI counts them.
Pure Python, no Django: the services compute and check due dates with them,
the pages say how long is left with them, and their tests need no database.

CCAG-MI 2021 §3.2 (seed 002):

- §3.2.1: a period starts at 0 h the day after the fact that starts it; a
  period in hours starts at the hour following the one the fact happened in
  (notified at 14:20, a 72 h period runs from 15:00).
- §3.2.2: days are calendar days, and a period in days ends at midnight on
  its last day.
- §3.2.3: months run from date to date; with no such date in the last month,
  the period ends on that month's last day.
- §3.2.4: a last day on a Saturday, a Sunday or a public holiday moves to the
  end of the next working day.

Times are Paris times (where the works are done). Public holidays come from
the `holidays` library (maintained, so Easter and the laws that change the
list are not ours to keep), with Alsace-Moselle's two extra days (Good Friday,
26 December) for the works in Moselle, Bas-Rhin and Haut-Rhin (57, 67, 68).

A period in hours ends at its hour, not moved by §3.2.4, which speaks of the
"last day" of a period: an emergency repair due within 72 hours is due on the
Saturday when that is where the hours end.

- Observations on an order: 15 days from its receipt (§3.7.2), or the right
  is lost (*forclusion*).
- An extension of the execution period: asked within 15 days of the cause
  arising (§14.3.2), and never after the period has expired (§14.3.4); the
  buyer answers within 15 days of receiving the request (§14.3.3).
- Days late (§15.1): counted "from the day after the one the period expired":
  calendar days from the day after the last day up to the day the works
  ended (or today).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import holidays

# An order whose due date falls within this is "due soon": the overview's
# and the list's filter, and the supervisors' warning email.
DUE_SOON = timedelta(hours=48)

PARIS = ZoneInfo("Europe/Paris")
UTC = ZoneInfo("UTC")
INSTANT = timedelta(microseconds=1)
HOUR = timedelta(hours=1)

OBSERVATION_DAYS = 15  # §3.7.2
EXTENSION_REQUEST_DAYS = 15  # §14.3.2
EXTENSION_ANSWER_DAYS = 15  # §14.3.3

# The departments where the local law of Alsace-Moselle adds Good Friday and
# 26 December to the public holidays (Code du travail, art. L3134-13).
ALSACE_MOSELLE = frozenset({"57", "67", "68"})


def department_of(postcode: str) -> str | None:
    """The department of a French postcode (`57000` → `57`), or None."""
    digits = postcode.strip().replace(" ", "")
    if len(digits) != 5 or not digits.isdigit():
        return None
    return digits[:3] if digits.startswith("97") else digits[:2]


@cache
def public_holidays(year: int, department: str | None = None) -> frozenset[date]:
    """The public holidays of `year` where the works are done: the national ones,
    and Alsace-Moselle's two more in departments 57, 67 and 68."""
    # The library files the local law of Alsace-Moselle under Moselle's code.
    subdiv = "57" if department in ALSACE_MOSELLE else None
    return frozenset(holidays.country_holidays("FR", subdiv=subdiv, years=year))


def is_working_day(day: date, department: str | None = None) -> bool:
    return day.weekday() < 5 and day not in public_holidays(day.year, department)


def working_day_from(day: date, department: str | None = None) -> date:
    """`day` itself if it is a working day, else the next one (§3.2.4)."""
    while not is_working_day(day, department):
        day += timedelta(days=1)
    return day


def last_day(start: date, days: int, department: str | None = None) -> date:
    """The last day of a period of `days` calendar days started by a fact on
    `start` (§3.2.1, §3.2.2), moved past weekends and holidays (§3.2.4)."""
    return working_day_from(start + timedelta(days=days), department)


def add_months(start: date, months: int) -> date:
    """From date to date (§3.2.3): 31 January + 1 month is 28 or 29 February."""
    index = start.year * 12 + start.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def end_of(day: date) -> datetime:
    """Midnight at the end of `day` in Paris: the first instant that is too late."""
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=PARIS)


def local_date(moment: datetime) -> date:
    if moment.tzinfo is None:
        raise ValueError("naive datetime: a deadline needs to know the time zone")
    return moment.astimezone(PARIS).date()


def expiry_day(ends_at: datetime) -> date:
    """The day a period expires in: its last day when it ends at midnight, the
    day of its hour otherwise."""
    return local_date(ends_at - INSTANT)


@dataclass(frozen=True)
class Deadline:
    """A period's last day, and the instant it is over (`ends_at`, excluded)."""

    last_day: date
    ends_at: datetime

    @property
    def at_midnight(self) -> bool:
        """Whether it ends with its last day (else at an hour of it: a period in hours)."""
        return self.ends_at == end_of(self.last_day)

    def is_open(self, moment: datetime) -> bool:
        return moment < self.ends_at

    def days_left(self, moment: datetime) -> int:
        """Whole days left after the day of `moment`: 0 on the last day itself,
        negative once it is over (as `orders.penalties` counts them on the overview)."""
        return (self.last_day - local_date(moment)).days


def deadline_of(ends_at: datetime) -> Deadline:
    """The deadline an instant stands for (an order's `due_at`)."""
    return Deadline(expiry_day(ends_at), ends_at)


def period(fact: date, days: int, department: str | None = None) -> Deadline:
    """A period of `days` days from a fact on `fact` (§3.2.1, §3.2.2, §3.2.4)."""
    last = last_day(fact, days, department)
    return Deadline(last, end_of(last))


def period_in_months(fact: date, months: int, department: str | None = None) -> Deadline:
    """A period of `months` months (§3.2.3, §3.2.4)."""
    last = working_day_from(add_months(fact, months), department)
    return Deadline(last, end_of(last))


def period_in_hours(moment: datetime, hours: int) -> Deadline:
    """A period of `hours` hours from `moment` (§3.2.1): it starts at the next
    full hour, Paris time, and ends `hours` hours later."""
    # In UTC: hours are real hours, whatever change of time falls inside the
    # period (Paris is a whole number of hours from UTC, so full hours agree).
    start = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0) + HOUR
    return deadline_of((start + timedelta(hours=hours)).astimezone(PARIS))


def execution_period(
    notified_at: datetime, *, days: int | None = None, hours: int | None = None, department: str | None = None
) -> Deadline:
    """An order's execution period from its notification (§14.1.2): in hours
    (a service code's completion delay) or in days (the contract's)."""
    if hours:
        return period_in_hours(notified_at, hours)
    if days is None:
        raise ValueError("an execution period needs days or hours")
    return period(local_date(notified_at), days, department)


def extended(ends_at: datetime, days: int, department: str | None = None) -> Deadline:
    """The period `ends_at` closes, longer by `days` days (an extension granted,
    §14.3.1, or the time a *sursis* or a suspension stopped it, §30.6): a period
    in days gets a new last day, moved past weekends and holidays; one in hours
    ends as many days later at the same hour."""
    deadline = deadline_of(ends_at)
    if deadline.at_midnight:
        return period(deadline.last_day, days, department)
    return deadline_of(ends_at.astimezone(PARIS) + timedelta(days=days))  # the same Paris hour


def days_late(ends_at: datetime | None, until: datetime) -> int:
    """R (§15.1): the calendar days from the day after the period expired up
    to the day of `until` (the works' end, or now). On its last day an order is
    not late; works ending on 25 March after a period that ended on 18 March at
    midnight are 7 days late (19 to 25 March). No period: 0."""
    if ends_at is None:
        return 0
    return max(0, (local_date(until) - expiry_day(ends_at)).days)


def observation_deadline(received_at: datetime, department: str | None = None) -> Deadline:
    """Until when observations on an order may be sent (§3.7.2)."""
    return period(local_date(received_at), OBSERVATION_DAYS, department)


def extension_deadline(cause_date: date, due_at: datetime | None, department: str | None = None) -> Deadline:
    """Until when an extension may be asked for a cause that arose on
    `cause_date`: 15 days (§14.3.2), but no later than the end of the execution
    period (§14.3.4), when the order has one."""
    by_cause = period(cause_date, EXTENSION_REQUEST_DAYS, department)
    if due_at is None or by_cause.ends_at <= due_at:
        return by_cause
    return deadline_of(due_at)


def extension_answer_deadline(requested_at: datetime, department: str | None = None) -> Deadline:
    """By when the buyer should answer a request for an extension (§14.3.3)."""
    return period(local_date(requested_at), EXTENSION_ANSWER_DAYS, department)
