"""Plausible dates: every date or time a person types goes through one of these
fields, so that year 1 or year 9999 gets a French message instead of failing
deeper (Python's datetime overflows when Paris time is turned into UTC at year
1, `date + timedelta` at year 9999, and the databases refuse both).

The range is wide enough for any real order, contract or appointment (ten
years back: archives typed late; five years ahead: a framework contract's
renewals) and narrow enough that every computation on it stays in range.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django import forms
from django.contrib.admin import widgets as admin_widgets
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

YEARS_BACK = 10
YEARS_AHEAD = 5


def plausible_bounds(today: date | None = None) -> tuple[date, date]:
    """The first and last plausible days, counted in whole years from `today`."""
    today = today or timezone.localdate()
    return date(today.year - YEARS_BACK, 1, 1), date(today.year + YEARS_AHEAD, 12, 31)


def validate_plausible(value: date | datetime) -> None:
    """Refuses a date (or the day of a moment) outside `plausible_bounds()`."""
    # A datetime is a date too; its own day (as typed) is what is checked, before
    # any conversion of time zone, which is what overflows.
    day = value.date() if isinstance(value, datetime) else value
    first, last = plausible_bounds()
    if not first <= day <= last:
        raise ValidationError(
            f"Date hors de la période plausible : indiquez une date entre le {first:%d/%m/%Y} et le {last:%d/%m/%Y}.",
            code="implausible",
        )


class PlausibleDateField(forms.DateField):
    default_validators = [validate_plausible]


class PlausibleDateTimeField(forms.DateTimeField):
    default_validators = [validate_plausible]


class PlausibleSplitDateTimeField(forms.SplitDateTimeField):
    default_validators = [validate_plausible]


def admin_overrides() -> dict[type[models.Field], dict[str, Any]]:
    """`formfield_overrides` for a ModelAdmin: its dates get the plausible range."""
    return {
        models.DateTimeField: {"form_class": PlausibleSplitDateTimeField, "widget": admin_widgets.AdminSplitDateTime},
        models.DateField: {"form_class": PlausibleDateField, "widget": admin_widgets.AdminDateWidget},
    }
