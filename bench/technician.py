"""The technician's pages under load, and their weight on a phone's network.

The portal as in production (DEBUG off, gunicorn with 3 worker processes
for 2 CPUs, PostgreSQL, static files hashed and compressed by WhiteNoise's
CompressedManifestStaticFilesStorage, behind a pretend TLS proxy) with 2,000
orders spread over 30 technicians, in every state, with their lines, history
and documents. Each technician has a signed-in session of their own.

1. Load: the 30 technicians each load "my orders" (`/mes-commandes/`), then
   three of their orders (`/commandes/<id>/`), and again: first at work (a page
   every 1 to 3 s each, already far busier than people on site), then flat out
   (no pause: 30 requests always in flight, the server saturated). For each
   page: the server's own time per request (gunicorn's access log, `%(D)s`: from
   the request read by a worker to the response written; not the wait for a
   free worker), and the time the client saw (same machine, so that wait
   included), and the CPU per request of gunicorn and PostgreSQL (which holds
   when the machine is shared with other work). Goal: server p95 <= 100 ms.
2. Weight: the first load of "my orders" with an empty cache (the HTML and
   every stylesheet and script it references, as sent to a client that accepts
   `gzip, br`; goal <= 60 KB), then an order page's HTML (goal <= 15 KB,
   compressed). The HTML is measured as sent, raw, and as it would be
   compressed (gzip -6 as Django's GZipMiddleware or nginx would, brotli -5).

    make bench                                   # every benchmark
    make bench BENCH_ARGS=--quick                # a smoke run
    .venv/bin/python bench/technician.py --help

bench/README.md has how long a run takes, the figures and their history, and
why the HTML is only gzip'd (BREACH).

It drops and recreates the database `bench_technician` on BENCH_POSTGRES_URL
(default postgres://postgres@127.0.0.1:5432), kept afterwards for a look;
without PostgreSQL it says so and stops. The data is bulk-created (the pages
only read it; no services, no outbox). gunicorn is stopped at the end, Ctrl-C
included; its logs and the collected static files stay in the temporary
folder printed first. The load generator runs on the same machine as the
server and takes some of its CPU.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path

import httpx
from _common import Processes
from _http import (
    PROXY_HEADERS,
    Phase,
    Resource,
    VirtualUser,
    add_load_arguments,
    fetch,
    kb,
    p95,
    page_weight,
    print_weight,
    run_phases,
    say,
    say_against_goal,
    say_requests,
    say_times,
    serve_benchmark,
    session_cookies,
    start_portal,
    times_by,
    verdict,
)

SECRET_KEY = "bench-only-secret-key-technician-0123456789-abcdefghijklmnopqrstuvwxyz"
DATABASE = "bench_technician"
SERVER_GOAL = 0.100  # s, p95 of the server's time
FIRST_LOAD_GOAL = 60 * 1024  # bytes: HTML + CSS + JS of "my orders", compressed
LATER_PAGE_GOAL = 15 * 1024  # bytes: an order page's HTML, compressed

LIST = "my orders"
ORDER = "order page"
ORDER_PATH = re.compile(r"^/commandes/\d+/$")


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: 300 orders, 6 s per phase")
    parser.add_argument("--orders", type=int, help="orders in the database (2,000; 300 with --quick)")
    parser.add_argument("--technicians", type=int, default=30, help="technicians, each a virtual user (30)")
    add_load_arguments(parser, think=2.0)
    parser.add_argument("--sample", type=int, help="order pages weighed (200; 30 with --quick)")
    arguments = parser.parse_args()
    arguments.orders = arguments.orders or (300 if arguments.quick else 2_000)
    arguments.duration = arguments.duration or (6 if arguments.quick else 60)
    arguments.sample = arguments.sample or (30 if arguments.quick else 200)
    return arguments


def main() -> int:
    return serve_benchmark("technician", DATABASE, SECRET_KEY, partial(run, parse_arguments()))


def run(arguments: argparse.Namespace, environment: dict[str, str], processes: Processes, folder: Path) -> None:
    people = create_data(arguments)
    cookies = session_cookies(people.technicians)
    portal = start_portal(environment, processes, folder, workers=arguments.workers, threads=arguments.threads)

    def users() -> list[VirtualUser]:
        return [
            VirtualUser(cookies[technician.pk], round_of(people.listed[technician.pk]), seed=technician.pk)
            for technician in people.technicians
        ]

    results = run_phases(
        portal,
        processes,
        users,
        who="technician",
        warm_up=4,
        duration=arguments.duration,
        think=(arguments.think * 0.5, arguments.think * 1.5),
        report=report_load,
    )

    with httpx.Client(base_url=portal.base_url, headers=PROXY_HEADERS, timeout=30) as client:
        weigh(client, people, cookies, arguments.sample)

    say("\n== Server time against the goal (p95 <= 100 ms)")
    say_against_goal(results, (LIST, ORDER), SERVER_GOAL)


class People:
    technicians: list
    listed: dict[int, list[int]]  # technician pk -> the orders their home lists


def create_data(arguments: argparse.Namespace) -> People:
    """Orders as a contractor accumulates them: most closed or invoiced, a third
    at work, a few finished this week; appointments spread over two weeks, some
    today; deadlines passed for some (late). Lines, a history by the technician
    and the supervisor, a report's PDF on the finished ones."""
    from django.utils import timezone

    from orders.models import Document, InterventionReport, Order, OrderEvent, OrderLine
    from orders.states import DONE_STATES, WORK_STATES, State
    from portal.models import Asset, Role
    from tests import factories

    chance = random.Random(2026)
    now = timezone.now()
    say(f"Creating {arguments.orders} orders for {arguments.technicians} technicians...")
    clients = [factories.make_client(), factories.make_client(name="Moselis")]
    contracts = [
        factories.make_contract(client, reference=f"BENCH-{number}", starts_on=(now - timedelta(days=400)).date())
        for number, client in enumerate(clients)
    ]
    codes = [
        factories.make_service_code(
            contract, code=code, label=label, intervention_delay_hours=None, completion_delay_hours=hours
        )
        for contract in contracts
        for code, label, hours in (
            ("PLB-FUITE", "Recherche et réparation de fuite", 72),
            ("ELEC-PANNE", "Dépannage électrique", 24),
            ("SERR-PORTE", "Ouverture et remplacement de serrure", 48),
        )
    ]
    streets = ["rue des Tilleuls", "avenue de Strasbourg", "rue Mazelle", "boulevard Paixhans", "rue du Pont-Rouge"]
    assets = Asset.objects.bulk_create(
        factories.build_asset(
            clients[number % 2],
            reference=f"LGT-{number:05d}",
            label=f"Logement {number % 40 + 1}, bâtiment {'ABCDEF'[number % 6]}, {number % 5}e étage",
            address=f"{number % 120 + 1} {streets[number % len(streets)]}",
            postcode="57000" if number % 3 else "57070",
            city="Metz",
        )
        for number in range(max(50, arguments.orders // 4))
    )
    technicians = [
        factories.make_user(
            f"technicien-{number:02d}",
            Role.TECHNICIAN,
            password=None,
            email="",
            first_name=f"Technicien {number}",
            last_name="Banc",
            mobile="06 98 76 54 32",
        )
        for number in range(1, arguments.technicians + 1)
    ]
    supervisor = factories.make_user(
        "conducteur-banc", Role.SUPERVISOR, password=None, email="", first_name="Sophie", last_name="Lambert"
    )
    states = [
        (State.TO_ACKNOWLEDGE, 6),
        (State.ACKNOWLEDGED, 8),
        (State.PLANNED, 16),
        (State.IN_PROGRESS, 8),
        (State.SUSPENDED, 4),
        (State.FINISHED, 10),
        (State.RECEIVED, 12),
        (State.INVOICED, 14),
        (State.CLOSED, 18),
        (State.CANCELLED, 4),
    ]
    orders = []
    for number in range(arguments.orders):
        state = chance.choices([state for state, _ in states], [weight for _, weight in states])[0]
        notified = now - timedelta(days=chance.uniform(0, 40) if state in WORK_STATES else chance.uniform(5, 300))
        fields: dict = {}
        if state in (State.ACKNOWLEDGED, State.PLANNED, State.IN_PROGRESS, State.SUSPENDED) and chance.random() < 0.8:
            if chance.random() < 0.85:
                day = 0 if chance.random() < 0.2 else chance.randint(-2, 14)
                fields["appointment_at"] = (now + timedelta(days=day)).replace(
                    hour=chance.randint(7, 17), minute=chance.choice((0, 15, 30, 45))
                )
            else:
                fields["planned_start"] = now - timedelta(days=chance.randint(0, 3))
                fields["planned_end"] = fields["planned_start"] + timedelta(days=chance.randint(1, 5))
        if state in (State.IN_PROGRESS, State.SUSPENDED) or state in DONE_STATES:
            fields["actual_start"] = min(now, notified + timedelta(days=chance.uniform(0.5, 4)))
        if state in DONE_STATES:
            ended = now - timedelta(days=chance.uniform(0, 20)) if state == State.FINISHED else None
            fields["actual_end"] = max(ended or fields["actual_start"] + timedelta(hours=3), fields["actual_start"])
        if state == State.SUSPENDED:
            fields["suspend_reason"] = chance.choice(("occupant_absent", "quote_request"))
        if state == State.INVOICED:
            fields["invoice_date"] = now.date()
            fields["invoice_number"] = f"F-{number:05d}"
        if state == State.CANCELLED:
            fields["cancel_reason"] = "Doublon de la demande"
        code = codes[number % len(codes)]
        orders.append(
            factories.build_order(
                code.contract,
                f"OPH57_{number:06d}",
                asset=assets[chance.randrange(len(assets))],
                service_code=code,
                critical_level=chance.choice((0, 0, 0, 1, 2, 3)),
                description="Fuite sous l'évier de la cuisine, le meuble bas est gorgé d'eau. "
                "Prévoir le remplacement du siphon et un contrôle de l'alimentation.",
                occupant_name=f"Mme Occupante {number}",
                occupant_mobile="06 12 34 56 78",
                occupant_phone="03 87 00 00 00" if number % 3 else "",
                access_notes="Code 4512B, 3e étage gauche" if number % 2 else "",
                state=state,
                received_at=notified,
                notified_at=notified,
                due_at=notified + timedelta(days=15),
                progress=100 if state in DONE_STATES else chance.choice((0, 0, 20, 50, 80)),
                technician=technicians[number % len(technicians)],
                pilot=supervisor,
                **fields,
            )
        )
    orders = Order.objects.bulk_create(orders, batch_size=500)

    lines, events, documents = [], [], []
    labels = ["Recherche de fuite", "Remplacement du siphon", "Remplacement du flexible", "Essais et contrôle"]
    for order in orders:
        for position in range(chance.randint(1, 6)):
            done = order.state in DONE_STATES or (order.state == State.IN_PROGRESS and chance.random() < 0.5)
            lines.append(
                factories.build_line(
                    order,
                    position,
                    reference=f"L{position + 1}",
                    label=labels[position % len(labels)],
                    quantity=Decimal(chance.randint(1, 3)),
                    unit_price=Decimal("48.50"),
                    done=done,
                    done_at=order.actual_start if done else None,
                )
            )
        at = order.notified_at
        for step in range(chance.randint(3, 6) + (6 if order.state in DONE_STATES else 0)):
            at += timedelta(hours=chance.uniform(1, 20))
            events.append(
                OrderEvent(
                    order=order,
                    at=min(at, now),
                    kind="note" if step else "received",
                    label="Commande reçue" if not step else f"Note de chantier {step}",
                    actor=(order.technician if step % 3 else supervisor) if step else None,
                )
            )
        if order.state in DONE_STATES:
            documents.append(
                factories.build_report_pdf(
                    order, by=order.technician, at=order.actual_end, size=chance.randint(200_000, 900_000)
                )
            )
    OrderLine.objects.bulk_create(lines, batch_size=2000)
    OrderEvent.objects.bulk_create(events, batch_size=2000)
    documents = Document.objects.bulk_create(documents, batch_size=1000)
    InterventionReport.objects.bulk_create(
        (
            factories.build_rendered_report(
                document, works_done="Remplacement du siphon, essais concluants.", time_on_site_minutes=90
            )
            for document in documents
        ),
        batch_size=1000,
    )
    say(f"  {len(orders)} orders, {len(lines)} lines, {len(events)} events, {len(documents)} documents")

    people = People()
    people.technicians = technicians
    people.listed = defaultdict(list)
    recently = now - timedelta(days=7)
    for order in orders:
        if order.state in WORK_STATES or (order.state in DONE_STATES and order.actual_end >= recently):
            people.listed[order.technician_id].append(order.pk)
    counts = sorted(len(people.listed[technician.pk]) for technician in technicians)
    say(f"  orders on a technician's home: {counts[0]} to {counts[-1]} (median {statistics.median(counts):g})")
    return people


def round_of(listed: list[int]):
    """A technician's round: their home, then three of its orders, and again."""
    position = 0

    def next_url(chance: random.Random) -> tuple[str, str]:
        nonlocal position
        position += 1
        if position % 4 == 1 or not listed:
            return LIST, "/mes-commandes/"
        return ORDER, f"/commandes/{chance.choice(listed)}/"

    return next_url


def page_of(path: str) -> str:
    if path == "/mes-commandes/":
        return LIST
    return ORDER if ORDER_PATH.match(path) else "other"


def report_load(phase: Phase) -> dict[str, list[float]]:
    """Prints the figures; returns the server's times by page."""
    say_requests(phase)
    server = times_by(phase.served, lambda request: page_of(request.path))
    client = times_by(phase.samples, lambda sample: sample.label)
    say("  server time (gunicorn %(D)s), ms:")
    say_times([(page, server[page]) for page in (LIST, ORDER)], width=11)
    say_times([("all", [t for v in server.values() for t in v])], width=11)
    say("  client time (request sent -> response read, incl. the wait for a free worker), ms:")
    say_times([(page, client[page]) for page in (LIST, ORDER)], width=11)
    return server


def weigh(client: httpx.Client, people: People, cookies: dict[int, str], sample_size: int) -> None:
    """The first load of "my orders" for the technician with the median number of
    orders on it; the HTML of every technician's home; a sample of order pages."""
    by_count = sorted(people.technicians, key=lambda technician: len(people.listed[technician.pk]))
    typical = by_count[len(by_count) // 2]
    client.headers["Cookie"] = cookies[typical.pk]
    say(
        f'\n== Weight of the first load of "my orders" ({typical.username}, {len(people.listed[typical.pk])} '
        "orders listed; empty cache; Accept-Encoding: gzip, br)"
    )
    resources = page_weight(client, "/mes-commandes/")
    print_weight(resources)
    core = [resource for resource in resources if resource.core]
    others = [resource for resource in resources if not resource.core]
    html = core[0]
    as_sent = sum(resource.sent for resource in core)
    html_gzipped = as_sent - html.sent + html.gzip
    say(f"  HTML + CSS + JS as sent today:      {kb(as_sent)}   goal <= 60 KB: {weight_verdict(as_sent, 60)}")
    say(f"  the same with the HTML gzip'd (-6): {kb(html_gzipped)}   goal <= 60 KB: {weight_verdict(html_gzipped, 60)}")
    say("  (gzip -6 is what Django's GZipMiddleware sends, plus its 0 to 100 random bytes against BREACH.)")
    if others:
        names = ", ".join(sorted({resource.kind for resource in others}))
        say(f"  also fetched on a first visit ({names}): {kb(sum(r.sent for r in others)).strip()} as sent")
    statics = [resource for resource in resources[1:] if resource.url.startswith("/static/")]
    immutable = all("immutable" in resource.cache_control for resource in statics)
    say(
        "  static files: "
        + (f'hashed names, Cache-Control "{statics[0].cache_control}"' if statics else "none")
        + (": later pages fetch only their HTML." if immutable else ": NOT cached for good by the browser.")
    )

    homes: list[Resource] = []
    for technician in people.technicians:
        client.headers["Cookie"] = cookies[technician.pk]
        homes.append(fetch_html(client, "/mes-commandes/"))
    say_sizes(f'"my orders" HTML of each of the {len(homes)} technicians', homes)

    chance = random.Random(7)
    sample = [(technician, pk) for technician in people.technicians for pk in people.listed[technician.pk]]
    sample = chance.sample(sample, min(sample_size, len(sample)))
    pages = []
    for technician, pk in sample:
        client.headers["Cookie"] = cookies[technician.pk]
        pages.append(fetch_html(client, f"/commandes/{pk}/"))
    say(f"\n== Weight of later pages: an order page's HTML ({len(pages)} orders of the technicians' homes)")
    say_sizes("order page HTML", pages)
    say(
        f"  goal <= 15 KB compressed: gzip p95 {weight_verdict(p95([p.gzip for p in pages]), 15)}; "
        f"as sent today (uncompressed) p95 {weight_verdict(p95([p.sent for p in pages]), 15)}"
    )


def fetch_html(client: httpx.Client, url: str) -> Resource:
    resource, _ = fetch(client, "html", url)
    return resource


def say_sizes(title: str, resources: list[Resource]) -> None:
    say(f"  {title}:")
    for name, values in (
        ("as sent", [r.sent for r in resources]),
        ("raw", [r.identity for r in resources]),
        ("gzip -6", [r.gzip for r in resources]),
        ("br -5", [r.brotli for r in resources]),
    ):
        ordered = sorted(values)
        say(
            f"    {name:<8} median {kb(int(statistics.median(ordered)))}   p95 {kb(int(p95(ordered)))}   "
            f"max {kb(ordered[-1])}"
        )


def weight_verdict(size: float, goal_kb: float) -> str:
    return verdict(size / 1024, goal_kb, unit="KB", scale=1)


if __name__ == "__main__":
    sys.exit(main())
