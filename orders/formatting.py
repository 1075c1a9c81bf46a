"""How dates and times read in French, in the history, the labels sent to the
platform and the pages' messages: one definition for every layer of orders."""

from __future__ import annotations

from datetime import date, datetime

from django.utils import formats, timezone, translation


def format_datetime(value: datetime) -> str:
    """`lundi 25 novembre à 8 h 30`, in Paris time, whatever language is active."""
    with translation.override("fr"):
        local = timezone.localtime(value)
        text = formats.date_format(local, "l j F")
        minutes = f"{local.minute:02d}" if local.minute else ""
        return f"{text} à {local.hour} h {minutes}".rstrip()


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
