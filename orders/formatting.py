"""How dates and times read in French, in the history, the labels sent to the
platform and the pages' messages: one definition for every layer of orders."""

from __future__ import annotations

from datetime import date, datetime

from django.utils import formats, timezone, translation

from orders import deadlines
from portal import moments


def format_datetime(value: datetime) -> str:
    """`lun. 25 nov. à 8 h 30` (the year when not this year's), in Paris time:
    the pages' one format (portal.moments), in the history and the labels sent."""
    return moments.moment(value)


def format_deadline(ends_at: datetime, *, short: bool = False) -> str:
    """When a period ends: `mardi 22 avril 2025 à minuit` for a period in days
    (it ends with its last day, CCAG-MI §3.2.2), `jeudi 6 mars 2025 à 15 h` for
    one in hours; `22/04/2025 à minuit`, `06/03/2025 à 15:00` when `short`."""
    deadline = deadlines.deadline_of(ends_at)
    with translation.override("fr"):
        day = formats.date_format(deadline.last_day, "d/m/Y" if short else "l j F Y")
    if deadline.at_midnight:
        return f"{day} à minuit"
    local = timezone.localtime(ends_at)
    if short:
        return f"{day} à {local:%H:%M}"
    return f"{day} à {local.hour} h {local.minute:02d}" if local.minute else f"{day} à {local.hour} h"


def format_date(value: date) -> str:
    with translation.override("fr"):
        return formats.date_format(value, "j F Y")


def iso(value: datetime | date | None) -> str | None:
    """A date or time as the events' data keeps it (ISO 8601), or None."""
    return value.isoformat() if value is not None else None


def describe(value: object) -> str:
    """A field's value as the history shows a correction: dates in French, "—" for nothing."""
    if value is None or value == "":
        return "—"
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return format_date(value)
    return str(value)
