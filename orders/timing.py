"""A report's, or an order's, time on site (issue 16, item 7): counted from
the order's history (the stints of orders/onsite.py) unless the technician
typed it, with where the figure comes from, for every page and the PDF."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from orders import onsite
from orders.models import InterventionReport, Order


@dataclass(frozen=True)
class TimeOnSite:
    """A report's (or an order's) time on site: counted from the history, and typed when it was."""

    counted: int | None  # minutes; None when the works never started
    typed: int | None = None
    running: bool = False  # the works go on: counted up to now

    @property
    def minutes(self) -> int | None:
        return self.typed if self.typed is not None else self.counted

    @property
    def display(self) -> str:
        """`1 h 30`, or `—` when it is neither typed nor known."""
        return onsite.display(self.minutes) if self.minutes is not None else "—"

    @property
    def source(self) -> str:
        """Where the figure comes from, in French, for the supervisor and the technician."""
        if self.typed is not None:
            counted = f" ; calculé : {onsite.display(self.counted)}" if self.counted not in (None, self.typed) else ""
            return f"saisi par le technicien{counted}"
        if self.counted is None:
            return "travaux non démarrés"
        running = ", travaux en cours" if self.running else ""
        return f"calculé d'après le début, la fin et les suspensions des travaux{running}"


def _stints(order: Order) -> list[onsite.Stint]:
    events = order.events.filter(kind__in=onsite.KINDS).order_by("at", "pk").values_list("kind", "at")
    return onsite.stints(events)


def counted_so_far(order: Order, *, until: datetime | None = None) -> TimeOnSite:
    """The time on site a new report would count: since the latest report, up
    to the end of the works or `until` (now)."""
    until = min(order.actual_end, until or timezone.now()) if order.actual_end else until or timezone.now()
    latest = order.reports.filter(created_at__lte=until).order_by("-created_at", "-pk").first()
    found = _stints(order)
    if not found:
        return TimeOnSite(None)
    counted = onsite.on_site(found, since=latest.created_at if latest else None, until=until)
    return TimeOnSite(onsite.minutes(counted), running=found[-1].end is None)


def time_on_site(report: InterventionReport, *, now: datetime | None = None) -> TimeOnSite:
    """The report's time on site: the time typed, else the time counted from
    the history since the report before it, up to its own writing, or, for the
    latest, up to the end of the works (or now while they run): the PDF made
    again when the works finish shows the whole visit."""
    order = report.order
    found = _stints(order)
    others = order.reports.exclude(pk=report.pk)
    before = Q(created_at__lt=report.created_at) | Q(created_at=report.created_at, pk__lt=report.pk)
    previous = others.filter(before).order_by("-created_at", "-pk").first()
    following = others.exclude(before).order_by("created_at", "pk").first()
    until = report.created_at if following else (order.actual_end or now or timezone.now())
    running = bool(found) and found[-1].end is None and following is None
    counted = onsite.minutes(onsite.on_site(found, since=previous.created_at if previous else None, until=until))
    return TimeOnSite(counted if found else None, report.time_on_site_minutes, running)


def order_time_on_site(order: Order, *, now: datetime | None = None) -> tuple[TimeOnSite, str]:
    """The whole order's time on site, counted (the supervisor's page), and
    what its reports typed in all (`1 h 30`), empty when none did."""
    found = _stints(order)
    typed = [minutes for minutes in order.reports.values_list("time_on_site_minutes", flat=True) if minutes]
    counted = onsite.minutes(onsite.on_site(found, until=order.actual_end or now or timezone.now()))
    running = bool(found) and found[-1].end is None
    return TimeOnSite(counted if found else None, running=running), onsite.display(sum(typed)) if typed else ""
