"""The demo's story engine: what happens to each order, and when, then the
same told through the order services.

Planning is pure Python: each line of `data.SCENARIOS` picks a contract and one
of its problems, and a `Script` tells the order's story forward from its
receipt (acknowledged, assigned, planned, started, lines done, finished...),
one `Step` per action, in working hours, from the fixed random seed and
today's date. `replay` then makes the order through the order services
(`orders.services`, `orders.receiving`, `orders.planning`), action by action,
each dated with `at=`, so that every order has the history it would have had.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import F, Max
from django.utils import timezone

from orders import deadlines, planning, receiving, services
from orders.demo import contracts, data
from orders.demo.world import World
from orders.models import Order, OrderEvent, Origin
from orders.states import CloseOutcome, SuspendReason
from portal.models import AssetKind

# --- Planning: what happens to each order, and when -------------------------


@dataclass
class Step:
    """One action of an order's story: when, what (a case of `replay`), and with what."""

    at: datetime
    action: str
    args: dict[str, Any] = field(default_factory=dict)


def _local(day: date, moment: time) -> datetime:
    return datetime.combine(day, moment, tzinfo=timezone.get_default_timezone())


def _working_day(day: date) -> date:
    """The day itself, or the Monday after a weekend."""
    return day + timedelta(days=max(0, 7 - day.weekday())) if day.weekday() >= 5 else day


class Script:
    """One order's story, told forward from its receipt. The technician's and
    the office's actions fall in working hours, on weekdays; the platform's
    receipt may come at any hour."""

    def __init__(self, rng: random.Random, received_at: datetime) -> None:
        self.rng = rng
        self.received_at = received_at
        self.t = received_at
        self.steps: list[Step] = []
        self.appointment: datetime | None = None
        self.planned: tuple[datetime, datetime] | None = None

    # time
    def _working(self, moment: datetime) -> datetime:
        local = timezone.localtime(moment)
        day, morning = local.date(), local.time() < data.DAY_START
        if local.time() > data.DAY_END:
            day, morning = day + timedelta(days=1), True
        if day.weekday() >= 5:
            day, morning = _working_day(day), True
        if not morning:
            return moment
        return _local(day, data.DAY_START) + timedelta(minutes=self.rng.randint(0, 75))

    def _after(self, low: int, high: int) -> datetime:
        self.t = self._working(self.t + timedelta(minutes=self.rng.randint(low, high)))
        return self.t

    def _days_later(self, low: int, high: int) -> datetime:
        day = timezone.localtime(self.t).date() + timedelta(days=self.rng.randint(low, high))
        moment = _local(day, time(self.rng.randint(8, 17), self.rng.choice((0, 10, 20, 30, 40, 50))))
        self.t = self._working(max(moment, self.t + timedelta(minutes=30)))
        return self.t

    def _slot(self, low: int, high: int) -> datetime:
        day = _working_day(timezone.localtime(self.t).date() + timedelta(days=self.rng.randint(low, high)))
        return _local(day, self.rng.choice(data.SLOTS))

    def _go_to(self, moment: datetime, late_minutes: int = 15) -> datetime:
        self.t = max(self.t, moment) + timedelta(minutes=self.rng.randint(0, late_minutes))
        return self.t

    def _add(self, action: str, **args: Any) -> None:
        assert not self.steps or self.t >= self.steps[-1].at
        self.steps.append(Step(self.t, action, args))

    # actions
    def assign(self, low: int = 2, high: int = 30) -> Script:
        self._after(low, high)
        self._add("assign")
        return self

    def acknowledge(self) -> Script:
        self._after(15, 240)
        self._add("acknowledge")
        return self.assign()

    def plan(self, appointment: datetime | None = None, *, days: tuple[int, int] = (1, 3)) -> Script:
        self._after(10, 180)
        # A date after an absence replaces the missed one: it says why (planning.plan_order).
        again = {"reason": "Occupant absent au premier rendez-vous"} if self.appointment or self.planned else {}
        self.appointment = appointment or self._slot(*days)
        self.planned = None
        self._add("plan", appointment=self.appointment, **again)
        return self

    def plan_period(self, period: tuple[datetime, datetime] | None = None) -> Script:
        self._after(10, 180)
        if period is None:
            start = self._slot(2, 4).replace(hour=8, minute=0)
            period = (start, _local(_working_day(start.date() + timedelta(days=1)), time(17, 0)))
        self.planned, self.appointment = period, None
        self._add("plan", planned_start=period[0], planned_end=period[1])
        return self

    def replan(self, appointment: datetime | None = None, *, days: tuple[int, int] = (1, 4)) -> Script:
        """The occupant calls the next day and asks for another appointment."""
        self._days_later(1, 1)
        self.appointment = appointment or self._slot(*days)
        self._add("plan", appointment=self.appointment, reason="À la demande de l'occupant")
        return self

    def start(self) -> Script:
        if self.planned:
            self._go_to(self.planned[0], 30)
        elif self.appointment:
            self._go_to(self.appointment)
        else:  # an emergency: straight from the acknowledgment
            self._after(30, 150)
        self._add("start")
        return self

    def progress(self, percent: int) -> Script:
        if self.planned and percent >= 50:  # the end of the first day of works
            self._go_to(_local(timezone.localtime(self.planned[0]).date(), time(17, 0)), 20)
        else:
            self._after(40, 150)
        self._add("progress", progress=percent)
        return self

    def mark(self, *positions: int) -> Script:
        for position in positions:
            self._after(10, 80)
            self._add("mark", line=position)
        return self

    def finish(self) -> Script:
        if self.planned:
            self._go_to(self.planned[1] - timedelta(hours=self.rng.randint(1, 3)), 40)
        else:
            self._after(15, 90)
        self._add("finish")
        return self

    def work(self, lines: int) -> Script:
        """Start, do every line, finish."""
        self.start()
        if self.planned:  # works over two days: half-way the first evening
            self.progress(50).mark(*range(1, lines + 1))
        elif lines > 1:
            self.mark(1).progress(50).mark(*range(2, lines + 1))
        else:
            self.mark(1)
        return self.finish()

    def suspend_absent(self) -> Script:
        self._go_to(self.appointment or self.t, 25)
        self._add("suspend", reason=SuspendReason.OCCUPANT_ABSENT, note=self.rng.choice(data.ABSENT_NOTES))
        return self

    def suspend_quote(self) -> Script:
        self._after(30, 120)
        self._add("suspend", reason=SuspendReason.QUOTE_REQUEST, note=self.rng.choice(data.QUOTE_NOTES))
        return self

    def resume(self) -> Script:
        self._days_later(2, 5)
        self._add("resume")
        return self

    def reception(self) -> Script:
        self._days_later(1, 4)
        self._add("reception", reception_date=timezone.localtime(self.t).date())
        return self

    def invoice(self) -> Script:
        self._days_later(1, 5)
        self._add("invoice", invoice_date=timezone.localtime(self.t).date())
        return self

    def close(self, outcome: CloseOutcome, low: int = 4, high: int = 12) -> Script:
        self._days_later(low, high)
        self._add("close", outcome=outcome)
        return self

    def cancel(self, reason: str) -> Script:
        self._days_later(0, 1)
        self._add("cancel", reason=reason)
        return self


# Each story, from the receipt to the state the order is left in.
# `fixed` is the appointment (or period) the story must end with, if any.
STORIES: dict[str, Callable[[Script, Any, int], Script]] = {
    "new": lambda s, fixed, n: s.assign(5, 40),
    "duplicate": lambda s, fixed, n: s.assign(5, 40).cancel(data.CANCEL_DUPLICATE),
    "acknowledged": lambda s, fixed, n: s.acknowledge(),
    "planned": lambda s, fixed, n: s.acknowledge().plan(fixed),
    "replanned": lambda s, fixed, n: s.acknowledge().plan(days=(2, 3)).replan(fixed),
    "planned_period": lambda s, fixed, n: s.acknowledge().plan_period(fixed),
    "cancelled_planned": lambda s, fixed, n: (
        s.acknowledge().plan(days=(3, 5)).cancel(s.rng.choice(data.CANCEL_REASONS))
    ),
    "in_progress": lambda s, fixed, n: s.acknowledge().plan().start().mark(1).progress(40 if n > 1 else 60),
    "emergency_in_progress": lambda s, fixed, n: s.acknowledge().start().progress(30),
    "period_in_progress": lambda s, fixed, n: s.acknowledge().plan_period().start().progress(50),
    "resumed": lambda s, fixed, n: s.acknowledge().plan().start().suspend_quote().resume().progress(60),
    "suspended_absent": lambda s, fixed, n: s.acknowledge().plan().suspend_absent(),
    "suspended_quote": lambda s, fixed, n: s.acknowledge().plan().start().suspend_quote(),
    "suspended_quote_progress": lambda s, fixed, n: s.acknowledge().start().mark(1).progress(40).suspend_quote(),
    "finished": lambda s, fixed, n: s.acknowledge().plan().work(n),
    "finished_emergency": lambda s, fixed, n: s.acknowledge().work(n),
    "finished_after_absence": lambda s, fixed, n: s.acknowledge().plan().suspend_absent().plan().work(n),
    "received": lambda s, fixed, n: s.acknowledge().plan().work(n).reception(),
    "invoiced": lambda s, fixed, n: s.acknowledge().plan().work(n).invoice(),
    "invoiced_received": lambda s, fixed, n: s.acknowledge().plan().work(n).reception().invoice(),
    "closed": lambda s, fixed, n: s.acknowledge().plan().work(n).invoice().close(CloseOutcome.DONE, 10, 20),
    "closed_received": lambda s, fixed, n: (
        s.acknowledge().plan().work(n).reception().invoice().close(CloseOutcome.DONE, 10, 20)
    ),
    "closed_solved": lambda s, fixed, n: s.acknowledge().plan().start().mark(1).finish().close(CloseOutcome.SOLVED),
    "closed_absent": lambda s, fixed, n: (
        s.acknowledge().plan().suspend_absent().plan().suspend_absent().close(CloseOutcome.OCCUPANT_ABSENT, 1, 3)
    ),
}


# Which problems suit a story, from the service code's completion delay: a
# story that takes days needs a problem that allows days.
PACES: dict[str, Callable[[contracts.Problem, int], bool]] = {
    "urgent": lambda problem, hours: not problem.long and hours <= 48,
    "normal": lambda problem, hours: not problem.long and hours >= 72,
    "slow": lambda problem, hours: not problem.long and hours >= 168,
    "long": lambda problem, hours: problem.long,
    "any": lambda problem, hours: not problem.long,
    # The two programmed renovations (Problem.major), one scenario each.
    "chaufferie": lambda problem, hours: problem.major == "chaufferie",
    "chaudieres": lambda problem, hours: problem.major == "chaudieres",
}


def _fixed(when: tuple[int, time | None] | None, today: date) -> Any:
    """The appointment (or the period of works) a planned order ends with.
    Today and tomorrow are taken as they come, weekend or not; later days are
    working days."""
    if when is None:
        return None
    days, moment = when
    day = today + timedelta(days=days)
    if days > 1:
        day = _working_day(day)
    if moment is None:  # two days of works
        return _local(day, time(8, 0)), _local(_working_day(day + timedelta(days=1)), time(17, 0))
    return _local(day, moment)


@dataclass
class OrderPlan:
    contract: dict[str, Any]
    problem: contracts.Problem
    technician: str
    reference: str
    received_at: datetime
    steps: list[Step]
    lines: list[tuple[str, Decimal]]
    asset_reference: str
    occupant: dict[str, str]
    access_extra: str


def _story(story: str, seed: int, age: int, fixed: Any, lines: int, now: datetime) -> tuple[datetime, list[Step]]:
    """Tell the story from a receipt `age` days ago, or earlier until it all fits before now."""
    today = timezone.localdate(now)
    for extra in range(60):
        rng = random.Random(seed)  # the same story, told from an earlier day
        received_day = today - timedelta(days=age + extra)
        received_at = _local(received_day, time(rng.randint(6, 20), rng.randint(0, 59), rng.randint(0, 59)))
        script = STORIES[story](Script(rng, received_at), fixed, lines)
        last = script.steps[-1].at if script.steps else received_at
        plans_ahead = all(
            step.at < (step.args.get("appointment") or step.args.get("planned_start"))
            for step in script.steps
            if step.action == "plan"
        )
        if last <= now - timedelta(minutes=5) and plans_ahead:
            return received_at, script.steps
    raise RuntimeError(f"Histoire {story!r} impossible à placer avant maintenant.")


def _mobile(rng: random.Random) -> str:
    return f"0{rng.choice('67')} {rng.randint(10, 99)} " + " ".join(f"{rng.randint(0, 99):02d}" for _ in range(3))


class Decks:
    """Draw without repeating until every card has come out, then shuffle again."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.decks: dict[Any, list[Any]] = {}

    def draw(self, key: Any, cards: list[Any]) -> Any:
        deck = self.decks.setdefault(key, [])
        if not deck:
            deck.extend(self.rng.sample(cards, len(cards)))
        return deck.pop()


def plan_orders(now: datetime) -> list[OrderPlan]:
    """Everything that will happen, decided up front from the seed and today's date."""
    rng = random.Random(data.SEED)
    today = timezone.localdate(now)
    decks = Decks(rng)

    # Who lives where: one household per dwelling; a caretaker per client.
    dwellings = [
        (client, dwelling[0], city)
        for client, sites in data.SITES.items()
        for _site, _label, _street, _postcode, city, buildings in sites
        for _building, _letter, _address, units in buildings
        for dwelling in units
    ]
    residents: dict[str, dict[str, str]] = {}
    for (_client, reference, city), name in zip(dwellings, rng.sample(data.OCCUPANTS, len(dwellings)), strict=True):
        residents[reference] = {"occupant_name": name, "occupant_mobile": _mobile(rng)}
        if rng.random() < 0.4:
            residents[reference]["occupant_phone"] = f"03 {data.AREA_CODES[city]} " + " ".join(
                f"{rng.randint(0, 99):02d}" for _ in range(3)
            )
    caretakers = {
        client: {"occupant_name": name, "occupant_mobile": _mobile(rng)}
        for client, name in zip(data.SITES, data.CARETAKERS, strict=True)
    }

    plans: list[OrderPlan] = []
    references: set[str] = set()
    for story, technician, age, when, pace in data.SCENARIOS:
        suits = PACES[pace]

        def problems(contract: dict[str, Any], suits=suits, pace=pace) -> list[contracts.Problem]:
            delays = {code: completion for code, _label, _intervention, completion in contract["service_codes"]}
            return [
                problem
                for problem in contract["problems"]
                if suits(problem, delays[problem.service_code]) and problem.major in ("", pace)
            ]

        candidates = [contract for contract in contracts.CONTRACTS if problems(contract)]
        contract = rng.choices(candidates, [contract["weight"] for contract in candidates])[0]
        problem = decks.draw((contract["reference"], pace), problems(contract))
        count = rng.randint(max(1, len(problem.lines) - 1), len(problem.lines))
        lines = [(code, Decimal(rng.choice(quantities))) for code, quantities in problem.lines[:count]]
        received_at, steps = _story(story, rng.getrandbits(32), age, _fixed(when, today), len(lines), now)

        reference = f"{contract['order_prefix']}{timezone.localtime(received_at):%y%m%d%H%M%S}"
        while reference in references:
            reference = reference[:-2] + f"{(int(reference[-2:]) + 1) % 60:02d}"
        references.add(reference)

        client = contract["client"]
        if problem.on == AssetKind.EQUIPMENT:
            asset = decks.draw(
                (client, "equipment"), [reference for reference, _label, _parent in data.EQUIPMENT[client]]
            )
            occupant, access = caretakers[client], " – clés du local technique chez le gardien"
        elif problem.on == AssetKind.BUILDING:
            asset = decks.draw((client, "building"), _buildings(client))
            occupant, access = caretakers[client], " – clés du local technique chez le gardien"
        else:
            asset = decks.draw((client, "dwelling"), [ref for owner, ref, _city in dwellings if owner == client])
            occupant, access = residents[asset], rng.choice(data.ACCESS_EXTRAS)
        plans.append(
            OrderPlan(
                contract=contract,
                problem=problem,
                technician=technician,
                reference=reference,
                received_at=received_at,
                steps=steps,
                lines=lines,
                asset_reference=asset,
                occupant=occupant,
                access_extra=access,
            )
        )

    # Invoice numbers: one continuous sequence, in the order the invoices were issued.
    invoices = sorted((step.at, step) for plan in plans for step in plan.steps if step.action == "invoice")
    for number, (_, step) in enumerate(invoices, start=data.FIRST_INVOICE_NUMBER):
        step.args["invoice_number"] = f"FA{step.args['invoice_date']:%Y}-{number:05d}"
    return plans


def _buildings(client: str) -> list[str]:
    return [building[0] for site in data.SITES[client] for building in site[5]]


# --- Replaying: the services, each step dated with `at=` --------------------

# What the history records without writing the order's row (nor its `updated_at`).
ROW_UNCHANGED = ("line_added", "line_changed", "line_removed", "mark_line", "note")


def replay(plan: OrderPlan, world: World) -> Order:
    """Make the order of `plan` through the services, one step after another."""
    contract = world.contracts[plan.contract["reference"]]
    technician = world.users[plan.technician]
    supervisor, office = world.users[data.SUPERVISOR], world.users[data.OFFICE]
    asset = world.assets[plan.asset_reference]
    delay_days = plan.problem.delay_days
    order = receiving.register_order(
        contract=contract,
        reference=plan.reference,
        actor=None,  # from the client's platform
        origin=Origin.PLATFORM,
        received_at=plan.received_at,
        notified_at=plan.received_at,
        # The order's own period in days, counted as the CCAG does (§3.2); else the service code's.
        due_at=deadlines.execution_period(
            plan.received_at, days=delay_days, department=deadlines.department_of(asset.postcode)
        ).ends_at
        if delay_days
        else None,
        lines=[
            {"price_item": world.price_items[contract.reference, code], "quantity": quantity}
            for code, quantity in plan.lines
        ],
        pilot=supervisor,
        asset=asset,
        service_code=world.service_codes[contract.reference, plan.problem.service_code],
        work_type=plan.problem.work_type,
        critical_level=plan.problem.critical,
        description=plan.problem.description,
        access_notes=asset.address_complement + plan.access_extra,
        **plan.occupant,
    )
    lines = list(order.lines.order_by("position"))
    for step in plan.steps:
        at, args = step.at, step.args
        match step.action:
            case "acknowledge":
                services.acknowledge_order(order, actor=supervisor, at=at)
            case "assign":
                services.assign_order(order, actor=supervisor, technician=technician, at=at)
            case "plan":
                actor = technician if args.get("appointment") else supervisor
                planning.plan_order(order, actor=actor, at=at, **args)
            case "start":
                services.start_work(order, actor=technician, at=at)
            case "progress":
                services.set_progress(order, actor=technician, progress=args["progress"], at=at)
            case "mark":
                services.mark_line(lines[args["line"] - 1], actor=technician, done=True, at=at)
            case "finish":
                services.finish_work(order, actor=technician, at=at)
            case "suspend":
                services.suspend_work(order, actor=technician, reason=args["reason"], note=args["note"], at=at)
            case "resume":
                services.resume_work(order, actor=technician, at=at)
            case "reception":
                services.record_reception(order, actor=supervisor, reception_date=args["reception_date"], at=at)
            case "invoice":
                services.invoice_order(order, actor=office, at=at, **args)
            case "close":
                actor = office if args["outcome"] == CloseOutcome.DONE else supervisor
                services.close_order(order, actor=actor, outcome=args["outcome"], at=at)
            case "cancel":
                actor = office if args["reason"] == data.CANCEL_DUPLICATE else supervisor
                services.cancel_order(order, actor=actor, reason=args["reason"], at=at)
            case _:
                raise ValueError(step.action)
    _date_rows(order)
    order.refresh_from_db()
    return order


def _date_rows(order: Order) -> None:
    """Put what the database stamps itself on the story's time.

    The services date what happened with `at=`, but three columns say when a
    row was written, from the clock: the event's `recorded_at` (from which the
    relay counts the platform's 15 minutes) and the order's `created_at` and
    `updated_at`. In the demo each was written when it happened: the receipt,
    each event's own time, the last event that changed the order's row."""
    events = OrderEvent.objects.filter(order=order)
    events.update(recorded_at=F("at"))
    last_change = events.exclude(kind__in=ROW_UNCHANGED).aggregate(last=Max("at"))["last"]
    Order.objects.filter(pk=order.pk).update(created_at=order.received_at, updated_at=last_change)
