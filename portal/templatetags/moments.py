"""`{% load moments %}`: the filters `moment` (`sam. 5 déc. à 14 h 00`), `day`
(`sam. 5 déc.`) and `hour` (`14 h 00`) of portal.moments; empty for no value.
`iso` writes a `<time datetime>` value: local time to the second (HTML allows
at most three digits of a second's fraction; Django's `date:'c'` writes six)."""

from __future__ import annotations

from datetime import date, datetime

from django import template

from portal import moments

register = template.Library()


@register.filter(name="moment")
def moment(value: datetime | None) -> str:
    return moments.moment(value) if isinstance(value, datetime) else ""


@register.filter(name="day")
def day(value: date | datetime | None) -> str:
    return moments.day(value) if isinstance(value, date) else ""


@register.filter(name="hour")
def hour(value: datetime | None) -> str:
    return moments.hour(value) if isinstance(value, datetime) else ""


@register.filter(name="iso", expects_localtime=True)
def iso(value: date | datetime | None) -> str:
    if isinstance(value, datetime):
        return value.replace(microsecond=0).isoformat()
    return value.isoformat() if isinstance(value, date) else ""
