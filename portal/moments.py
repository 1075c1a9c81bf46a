"""One French way to write a date and time on every page and email:
`sam. 5 déc. à 14 h 00`, with the year when it is not the current one
(`mar. 5 janv. 2027 à 9 h 05`), in Paris time whatever the language."""

from __future__ import annotations

from datetime import date, datetime

from django.utils import timezone

DAYS = ("lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim.")
MONTHS = ("janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc.")


def day(value: date | datetime, *, today: date | None = None) -> str:
    """`sam. 5 déc.`, `mar. 5 janv. 2027` (the year when not this year's)."""
    if isinstance(value, datetime):
        value = timezone.localtime(value).date()
    today = today or timezone.localdate()
    year = f" {value.year}" if value.year != today.year else ""
    return f"{DAYS[value.weekday()]} {value.day} {MONTHS[value.month - 1]}{year}"


def hour(value: datetime) -> str:
    """`14 h 00`, `9 h 05`."""
    local = timezone.localtime(value)
    return f"{local.hour} h {local.minute:02d}"


def moment(value: datetime, *, today: date | None = None) -> str:
    """`sam. 5 déc. à 14 h 00`, `mar. 5 janv. 2027 à 9 h 05`."""
    return f"{day(value, today=today)} à {hour(value)}"
