"""How orders are read: who sees which, the search, late and due soon, and an
order's value. One definition each, for every page, task and admin."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from django.contrib.postgres.expressions import ArraySubquery
from django.db import connections, models
from django.db.models import BooleanField, DecimalField, F, Func, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from orders.deadlines import DUE_SOON
from orders.states import DONE_STATES, OPEN_STATES, WORK_STATES
from portal.models import Asset, Role

if TYPE_CHECKING:
    from orders.models import Order  # noqa: F401  (named in the queryset's type below)
    from portal.models import User

MONEY = DecimalField(max_digits=14, decimal_places=2)


def line_total() -> Sum:
    """The sum of lines' amounts excluding VAT (quantity × unit price)."""
    return Sum(F("quantity") * F("unit_price"), output_field=MONEY)


class _EqualsAny(Func):
    """`value = ANY(array)`, PostgreSQL's membership test that an index serves."""

    arg_joiner = " = ANY("
    template = "%(expressions)s)"
    output_field = BooleanField()


def late_condition(now: datetime) -> Q:
    """Late: the works are not finished, the period is over (`due_at` is the
    first instant too late: midnight after the last day, CCAG-MI §3.2.2) and
    the buyer has not stopped the clock (a suspension or a *sursis* running).
    The one definition, for filters and annotations alike; `is_late` agrees."""
    return Q(state__in=WORK_STATES, due_at__lte=now, clock_stopped_on=None)


def is_late(order: Order, now: datetime) -> bool:
    """`late_condition` for an order already read (a card, an order's page)."""
    return (
        order.state in WORK_STATES
        and order.due_at is not None
        and order.due_at <= now
        and order.clock_stopped_on is None
    )


def finished_late_condition() -> Q:
    """Works finished after the period: the delay is frozen at their end (§14.2.1)
    and the penalty stays, whatever happens next (reception, invoice, closure)."""
    return Q(state__in=DONE_STATES, actual_end__isnull=False, due_at__lte=F("actual_end"))


def due_soon_condition(now: datetime) -> Q:
    """Due soon: not late yet, but will be within `deadlines.DUE_SOON` (48 hours)."""
    return Q(state__in=WORK_STATES, due_at__gt=now, due_at__lte=now + DUE_SOON, clock_stopped_on=None)


class OrderQuerySet(models.QuerySet["Order"]):
    def visible_to(self, user: User) -> OrderQuerySet:
        """Technicians see the orders assigned to them; supervisors and office staff see all."""
        if not user.is_authenticated or not user.is_active:
            return self.none()
        if user.is_superuser or user.role in (Role.SUPERVISOR, Role.OFFICE):
            return self
        if user.role == Role.TECHNICIAN:
            return self.filter(technician=user)
        return self.none()

    def open(self) -> OrderQuerySet:
        return self.filter(state__in=OPEN_STATES)

    def to_dispatch(self) -> OrderQuerySet:
        """The dispatch board's backlog: works still to do, without a technician
        or without a date (neither an appointment nor planned works)."""
        return self.filter(state__in=WORK_STATES).filter(
            Q(technician__isnull=True) | Q(appointment_at__isnull=True, planned_start__isnull=True)
        )

    def search(self, query: str) -> OrderQuerySet:
        """Every word found in the reference, the description, the address, the
        asset's label or the occupant's name (the technician's and the supervisors' search)."""
        orders = self
        postgresql = connections[self.db].vendor == "postgresql"
        for word in query.split():
            assets = (
                Asset.objects.filter(
                    Q(address__icontains=word)
                    | Q(address_complement__icontains=word)
                    | Q(postcode__icontains=word)
                    | Q(city__icontains=word)
                    | Q(label__icontains=word)
                )
                .order_by()
                .values("pk")
            )
            # On PostgreSQL the matching assets are computed once into an array
            # (an InitPlan): `asset_id = ANY(array)` is then an index condition
            # like the trigram ones (migration 0009), and PostgreSQL ORs the
            # three indexes instead of reading every order (see bench/README.md).
            at_asset = _EqualsAny(F("asset_id"), ArraySubquery(assets)) if postgresql else Q(asset__in=assets)
            orders = orders.filter(
                Q(reference__icontains=word)
                | Q(occupant_name__icontains=word)
                | Q(description__icontains=word)
                | at_asset
            )
        return orders

    def late(self, now: datetime) -> OrderQuerySet:
        """Orders whose works are not finished and whose due date has passed."""
        return self.filter(late_condition(now))

    def late_within(self, now: datetime, delta: timedelta) -> OrderQuerySet:
        """Orders not late yet that will be if their works are not finished within `delta`."""
        return self.filter(state__in=WORK_STATES, due_at__gt=now, due_at__lte=now + delta, clock_stopped_on=None)

    def penalised(self, now: datetime) -> OrderQuerySet:
        """Orders that owe late penalties (CCAG-MI art. 15): late now, or whose
        works ended after their period."""
        return self.filter(late_condition(now) | finished_late_condition())

    def due_soon(self, now: datetime) -> OrderQuerySet:
        """Orders not late yet that will be within `deadlines.DUE_SOON` (48 hours)."""
        return self.filter(due_soon_condition(now))

    def with_value(self) -> OrderQuerySet:
        """Each order with `value`: the sum of its lines excluding VAT, in the
        same query (as `Order.value_excl_vat()` computes it for one order)."""
        line_model = self.model._meta.get_field("lines").related_model  # OrderLine, defined after this
        assert isinstance(line_model, type) and issubclass(line_model, models.Model)
        lines = line_model._default_manager.filter(order=OuterRef("pk")).order_by().values("order")
        total = Subquery(lines.annotate(total=line_total()).values("total"), output_field=MONEY)
        return self.annotate(value=Coalesce(total, Value(Decimal(0)), output_field=MONEY))

    def with_value_on_time(self) -> OrderQuerySet:
        """Each order with `value_on_time`: the lines done before the end of its
        period, which are not in V (CCAG-MI art. 15.1: V is the late part)."""
        line_model = self.model._meta.get_field("lines").related_model
        assert isinstance(line_model, type) and issubclass(line_model, models.Model)
        lines = (
            line_model._default_manager.filter(order=OuterRef("pk"), done=True, done_at__lt=OuterRef("due_at"))
            .order_by()
            .values("order")
        )
        total = Subquery(lines.annotate(total=line_total()).values("total"), output_field=MONEY)
        return self.annotate(value_on_time=Coalesce(total, Value(Decimal(0)), output_field=MONEY))
