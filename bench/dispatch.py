"""The dispatch board (issue 16, item 9): 30 technicians with 5 visits each on
the day shown, and a backlog of 200 orders to plan.

1. The board (GET /pilotage/repartition/?jour=...: the day's rows in half-hour
   slots with their 150 visits, and the backlog with its filters and form)
   (goal: p95 <= 150 ms).
2. A drop: the htmx POST a drop on a technician's slot sends, answered with the
   status line, the technician's row drawn again and the order out of the
   backlog (POST .../planifier/, checked again, saved, confirmed) (goal: p95
   <= 100 ms). The warnings shown while dragging are computed in the browser.
3. A move: the htmx POST a visit of the board dragged to another technician
   and time sends, with the reason of the report (checked again, reassigned,
   replanned), answered with the row it left and the row it went to drawn
   again (same goal as a drop).
4. The check the form beside the backlog asks as it is filled in (keyboard,
   GET .../verifier/), for comparison (same goal).

The requests go through the whole Django stack in-process (middleware,
session, the view, the template): the server's time, without the network or
a browser. It prints the figures against the goals and asserts nothing.

    make bench
    .venv/bin/python bench/dispatch.py [--requests 200] [--database bench_dispatch] [--quick]

It drops and recreates the PostgreSQL database --database (default
`bench_dispatch`) at BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432),
kept afterwards; without PostgreSQL it uses a throwaway SQLite database, and says so.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from datetime import time as clock_time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ms, percentile, postgres_answers, recreate_database  # noqa: E402

PAGE_GOAL = 0.150
DROP_GOAL = CHECK_GOAL = 0.100
TECHNICIANS = 30
VISITS_EACH = 5
BACKLOG = 200


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="timed requests of each kind (default 200)")
    parser.add_argument("--database", default="bench_dispatch", help="PostgreSQL database (default bench_dispatch)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 40 requests of each kind")
    options = parser.parse_args()
    if options.quick:
        options.requests = 40
    return options


def build(chance: random.Random):  # noqa: ANN201 (the portal's objects, imported after setup)
    from django.utils import timezone

    from orders.models import Order
    from orders.states import State
    from portal.models import Role
    from tests import factories

    supervisor = factories.make_user("bench-dispatch", Role.SUPERVISOR, first_name="Nathalie", last_name="Kieffer")
    technicians = [
        factories.make_user(
            f"bench-tech-{n:02d}", Role.TECHNICIAN, first_name=f"Tech{n:02d}", last_name="Banc", password=None
        )
        for n in range(TECHNICIANS)
    ]
    client = factories.make_client()
    contract = factories.make_contract(client)
    service_code = factories.make_service_code(contract)
    asset = factories.make_asset(client)
    # The board shows tomorrow, so that every drop is in the future.
    day = timezone.localdate() + timedelta(days=1)
    opening = timezone.make_aware(datetime.combine(day, clock_time(8)))
    number = 0
    visits = []
    for technician in technicians:
        for visit in range(VISITS_EACH):
            number += 1
            order = factories.register_order(
                contract,
                reference=f"VISITE-{number:04d}",
                asset=asset,
                service_code=service_code,
                technician=technician,
            )
            when = opening + timedelta(minutes=visit * 120 + chance.choice((0, 15, 30)))
            factories.bring_to(order, State.PLANNED, technician, at=timezone.now(), appointment=when)
            visits.append(order)
    backlog = []
    for index in range(BACKLOG):
        order = factories.register_order(
            contract,
            reference=f"A-PLANIFIER-{index:04d}",
            asset=asset,
            service_code=service_code,
            description=f"Demande {index} : fuite, serrure ou volet roulant à reprendre",
        )
        backlog.append(order)
    Order.objects.filter(pk__in=[order.pk for order in backlog]).update(technician=None)
    return supervisor, technicians, backlog, visits, day


CPU_TIMES: dict[int, float] = {}


def timed(call) -> float:  # noqa: ANN001
    clock, cpu = time.perf_counter(), time.process_time()
    call()
    elapsed = time.perf_counter() - clock
    CPU_TIMES[id(elapsed)] = time.process_time() - cpu
    return elapsed


def summary(label: str, timings: list[float], goal: float) -> str:
    cpu = sorted(CPU_TIMES[id(value)] for value in timings)
    timings = sorted(timings)
    p95 = percentile(timings, 0.95)
    verdict = "met" if p95 <= goal else f"MISSED by {ms(p95 - goal).strip()}"
    return (
        f"{label}: median {ms(statistics.median(timings)).strip()}, p95 {ms(p95).strip()}, "
        f"max {ms(timings[-1]).strip()} ({len(timings)} runs; goal p95 <= {goal * 1000:g} ms: {verdict}); "
        f"CPU median {ms(statistics.median(cpu)).strip()}, p95 {ms(percentile(cpu, 0.95)).strip()}"
    )


def main() -> None:
    options = parse_arguments()
    server = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
    with tempfile.TemporaryDirectory(prefix="bench-dispatch-") as folder:
        why_not = postgres_answers(server)
        database = recreate_database(server, options.database) if not why_not else f"sqlite:///{folder}/b.sqlite3"
        os.environ.update(
            {
                "DJANGO_SETTINGS_MODULE": "portal.settings",
                "DEBUG": "1",
                "VAR_DIR": folder,
                "DATABASE_URL": database,
                "MEDIA_ROOT": f"{folder}/media",
                "LOG_LEVEL": "WARNING",
            }
        )
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection, transaction
        from django.test import Client

        print(
            f"database: {'PostgreSQL ' + options.database if not why_not else 'SQLite (PostgreSQL: ' + why_not + ')'}"
        )
        call_command("migrate", verbosity=0)
        chance = random.Random(16)
        with transaction.atomic():
            supervisor, technicians, backlog, visits, day = build(chance)
            connection.run_on_commit.clear()  # no worker: nothing to relay here
        if not why_not:
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")

        browser = Client(HTTP_HOST="127.0.0.1")
        browser.force_login(supervisor)
        page_timings, check_timings, drop_timings, move_timings = [], [], [], []
        sizes = {"page": 0, "drop": 0, "move": 0}
        slots = [f"{hour:02d}:{minute:02d}" for hour in range(7, 19) for minute in (0, 30)]

        def page() -> None:
            response = browser.get("/pilotage/repartition/", {"jour": day.isoformat()})
            assert response.status_code == 200 and b"A-PLANIFIER-0199" in response.content
            visits = response.content.count(b'class="board-visit ')
            assert visits == TECHNICIANS * VISITS_EACH, visits
            sizes["page"] = len(response.content)

        def check(order, technician, when: str) -> None:
            response = browser.get(
                "/pilotage/repartition/verifier/",
                {"commande": order.pk, "technician": technician.pk, "appointment": when},
                HTTP_HX_REQUEST="true",
            )
            assert response.status_code == 200

        def drop(order, technician, when: str) -> None:
            response = browser.post(
                "/pilotage/repartition/planifier/",
                {
                    "commande": order.pk,
                    "technician": technician.pk,
                    "appointment": when,
                    "visit_minutes": "60",
                    "force": "on",  # confirmed in the browser when it overlaps
                    "reason": "Banc d'essai",  # asked in the browser when it moves a planned order
                    "jour": day.isoformat(),
                },
                HTTP_HX_REQUEST="true",
            )
            assert response.status_code == 200 and b"board-status is-ok" in response.content, response.content[:300]
            sizes["drop"] = len(response.content)

        def move(order, technician, when: str) -> None:
            response = browser.post(
                "/pilotage/repartition/planifier/",
                {
                    "visite": order.pk,
                    "technician": technician.pk,
                    "appointment": when,
                    "visit_minutes": "60",
                    "force": "on",
                    "reason": "Technicien absent",  # typed in the dialog after the drop
                    "jour": day.isoformat(),
                },
                HTTP_HX_REQUEST="true",
            )
            assert response.status_code == 200 and b"board-status is-ok" in response.content, response.content[:300]
            sizes["move"] = len(response.content)

        timed(page)  # warm up
        for _ in range(options.requests):
            page_timings.append(timed(page))
        for _ in range(options.requests):
            order, technician = chance.choice(backlog), chance.choice(technicians)
            when = f"{day:%Y-%m-%d}T{chance.choice(slots)}"
            check_timings.append(timed(lambda: check(order, technician, when)))  # noqa: B023 (called at once)
        # Each drop takes a backlog order (the first 200), then moves those already dropped.
        for number in range(options.requests):
            order, technician = backlog[number % len(backlog)], chance.choice(technicians)
            when = f"{day:%Y-%m-%d}T{chance.choice(slots)}"
            drop_timings.append(timed(lambda: drop(order, technician, when)))  # noqa: B023 (called at once)
        # Each move takes one of the day's visits to another technician and time.
        for number in range(options.requests):
            order, technician = visits[number % len(visits)], chance.choice(technicians)
            when = f"{day:%Y-%m-%d}T{chance.choice(slots)}"
            move_timings.append(timed(lambda: move(order, technician, when)))  # noqa: B023 (called at once)

    load, cpus = os.getloadavg()[0], os.cpu_count() or 1
    busy = " (busy: the CPU times say more than the wall times)" if load > cpus else ""
    print(f"load average at the end: {load:.1f} on {cpus} CPUs{busy}")
    print(
        f"board: {sizes['page'] / 1024:.0f} KB, {TECHNICIANS} technicians, {TECHNICIANS * VISITS_EACH} visits "
        f"that day, {BACKLOG} orders to plan; a drop's answer {sizes['drop'] / 1024:.1f} KB, "
        f"a move's {sizes['move'] / 1024:.1f} KB"
    )
    print(summary("board with its backlog (GET)", page_timings, PAGE_GOAL))
    print(summary("drop (htmx POST: checked, saved, row drawn again)", drop_timings, DROP_GOAL))
    print(summary("move of a visit (htmx POST: checked, saved, both rows drawn again)", move_timings, DROP_GOAL))
    print(summary("check of the form (htmx GET)", check_timings, CHECK_GOAL))


if __name__ == "__main__":
    main()
