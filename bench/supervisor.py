"""The supervisor's pages under load with three years of orders, and the CSV export.

The portal as in production (DEBUG off, gunicorn with 3 worker processes of
one thread for 2 CPUs, PostgreSQL, static files collected, behind a pretend TLS
proxy) with 20,000 orders received over three years from four clients on six
contracts: most of the old ones closed or invoiced, the recent ones in every
state, some late; their lines (an order's value is the sum of its lines), their
history, intervention reports on most finished ones, and what the relay sent
to the platforms (delivered messages, a few refused and still waiting, breaches
of the 15-minute limit after platform outages). Ten supervisors, each signed in
with a session of their own.

1. Load: each supervisor opens the overview (`/pilotage/`), then two filtered
   lists (`/pilotage/commandes/?...`: late, late within 48 h, a state and a
   client, a search, a sort, a page past the first, a technician, a contract
   and dates, finished without a report), and again: one supervisor alone (the
   cost of a page), ten at work (a page every 1.5 to 4.5 s each), then ten flat
   out (no pause: ten requests always in flight). Server time is gunicorn's
   access log `%(D)s` (the request read by a worker to the response written;
   not the wait for a free worker); client time is what the load generator
   saw, that wait included. Goal: server p95 <= 150 ms for both pages.
2. CSV export (`/pilotage/commandes.csv`) of about 5,000 orders (one client's
   orders received since a date), alone, three times: the time to the last
   byte (goal <= 2 s), the rows parsed back against the database's count, and
   the peak memory growth of the gunicorn worker that served it (its VmHWM,
   reset before, against its VmRSS before). The same export of every order
   (20,000) shows whether that growth follows the number of rows (everything
   in memory at once) or stays flat (streamed).

    make bench                                   # every benchmark
    make bench BENCH_ARGS=--quick                # a smoke run
    .venv/bin/python bench/supervisor.py --help

bench/README.md has how long a run takes, and the figures and their history.

It drops and recreates the database `bench_supervisor` on BENCH_POSTGRES_URL
(default postgres://postgres@127.0.0.1:5432), kept afterwards for a look;
without PostgreSQL it says so and stops. The data is bulk-created (the pages
only read it; no services, no Celery). gunicorn is stopped at the end, Ctrl-C
included; its logs stay in the temporary folder printed first. The load
generator runs on the same machine as the server and takes some of its CPU.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from urllib.parse import quote, urlencode

import httpx
from _common import Processes
from _http import (
    PROXY_HEADERS,
    AccessLog,
    Phase,
    VirtualUser,
    add_load_arguments,
    children_of,
    memory_of,
    reset_peak_memory,
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

SECRET_KEY = "bench-only-secret-key-supervisor-0123456789-abcdefghijklmnopqrstuvwxyz"
DATABASE = "bench_supervisor"
SERVER_GOAL = 0.150  # s, p95 of the server's time, overview and list
CSV_GOAL = 2.0  # s, to the last byte of an export of 5,000 orders
CSV_TARGET = 5_000  # rows of the export

OVERVIEW = "overview"
LIST = "list"
OVERVIEW_PATH = "/pilotage/"
LIST_PATH = "/pilotage/commandes/"
CSV_PATH = "/pilotage/commandes.csv"


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: 3,000 orders, 6 s per phase")
    parser.add_argument("--orders", type=int, help="orders in the database (20,000; 3,000 with --quick)")
    parser.add_argument("--supervisors", type=int, default=10, help="supervisors, each a virtual user (10)")
    parser.add_argument("--technicians", type=int, default=30, help="technicians the orders go to (30)")
    add_load_arguments(parser, think=3.0)
    parser.add_argument("--csv-rows", type=int, help="orders in the CSV export (5,000; 1,000 with --quick)")
    parser.add_argument("--exports", type=int, help="times the CSV export is measured (3; 1 with --quick)")
    arguments = parser.parse_args()
    arguments.orders = arguments.orders or (3_000 if arguments.quick else 20_000)
    arguments.duration = arguments.duration or (6 if arguments.quick else 60)
    arguments.csv_rows = arguments.csv_rows or (1_000 if arguments.quick else CSV_TARGET)
    arguments.exports = arguments.exports or (1 if arguments.quick else 3)
    return arguments


def main() -> int:
    return serve_benchmark("supervisor", DATABASE, SECRET_KEY, partial(run, parse_arguments()))


def run(arguments: argparse.Namespace, environment: dict[str, str], processes: Processes, folder: Path) -> None:
    started = time.monotonic()
    data = create_data(arguments)
    say(f"  created in {time.monotonic() - started:.0f} s")
    vacuum_analyze(environment["DATABASE_URL"])
    cookies = session_cookies(data.supervisors)
    portal = start_portal(environment, processes, folder, workers=arguments.workers, threads=arguments.threads)

    variants = list_variants(data)
    labels: dict[str, str] = {}  # query string -> the list's variant, to read the access log by variant

    def users() -> list[VirtualUser]:
        return [
            VirtualUser(cookies[supervisor.pk], round_of(variants, labels), seed=supervisor.pk)
            for supervisor in data.supervisors
        ]

    results = run_phases(
        portal,
        processes,
        users,
        who="supervisor",
        warm_up=3,
        duration=arguments.duration,
        think=(arguments.think * 0.5, arguments.think * 1.5),
        report=lambda phase: report_load(phase, labels),
    )

    exports = measure_exports(
        arguments, portal.base_url, cookies[data.supervisors[0].pk], data, portal.pid, portal.access_log
    )

    say(f"\n== Against the goals (server p95 <= {SERVER_GOAL * 1000:g} ms; CSV of {arguments.csv_rows:,} <= 2 s)")
    say_against_goal(results, (OVERVIEW, LIST), SERVER_GOAL, prefix="server p95 ")
    for line in exports:
        say(f"  {line}")


# --- The data ----------------------------------------------------------------------


@dataclass
class Data:
    supervisors: list = field(default_factory=list)
    technicians: list = field(default_factory=list)
    clients: list = field(default_factory=list)
    contracts: list = field(default_factory=list)
    first_received: datetime | None = None


# name, town, postcode, platform, share of the orders, contracts:
# (reference, label, default delay in days, started months ago, ended months ago or None)
CLIENTS = [
    (
        "Office Public de l'Habitat de Metz",
        "Metz",
        "57000",
        "intent",
        0.42,
        [
            ("OPH57-MULTI-2023", "Maintenance multitechnique des logements", 15, 40, None),
            ("OPH57-CHAUF-2024", "Chauffage, ventilation et eau chaude", 7, 26, None),
        ],
    ),
    (
        "Moselis",
        "Metz",
        "57050",
        "intent",
        0.28,
        [
            ("MOS-PLB-2021", "Plomberie sanitaire", 10, 48, 18),
            ("MOS-MULTI-2024", "Maintenance multitechnique", 15, 18, None),
        ],
    ),
    (
        "Batigère Grand Est",
        "Thionville",
        "57100",
        "none",
        0.15,
        [("BAT-ELEC-2023", "Électricité courants forts et faibles", 10, 38, None)],
    ),
    ("Vivest", "Yutz", "57970", "intent", 0.15, [("VIV-SERR-2024", "Serrurerie et menuiserie", 5, 30, None)]),
]
# code, label, completion delay in hours (None: the contract's default), lines drawn from
SERVICES = [
    ("PLB-FUITE", "Recherche et réparation de fuite", 72),
    ("PLB-ENGORG", "Désengorgement de canalisation", 24),
    ("CHAUF-PANNE", "Dépannage chauffage individuel", 24),
    ("ELEC-PANNE", "Dépannage électrique", 48),
    ("SERR-PORTE", "Ouverture et remplacement de serrure", 24),
    ("MEN-VOLET", "Réparation de volet roulant", 168),
    ("REM-LOGT", "Remise en état de logement", None),
]
PRICES = [
    ("DEP", "Déplacement et diagnostic", "u", Decimal("45.00"), (1, 1)),
    ("MO", "Main d'œuvre, l'heure", "h", Decimal("52.00"), (1, 6)),
    ("SIPH", "Remplacement de siphon", "u", Decimal("38.50"), (1, 2)),
    ("MITIG", "Remplacement de mitigeur", "u", Decimal("145.00"), (1, 1)),
    ("FLEX", "Remplacement de flexible", "u", Decimal("18.90"), (1, 3)),
    ("DISJ", "Remplacement de disjoncteur", "u", Decimal("68.00"), (1, 2)),
    ("CYL", "Remplacement de cylindre de serrure", "u", Decimal("96.00"), (1, 1)),
    ("SANG", "Remplacement de sangle de volet", "u", Decimal("42.00"), (1, 2)),
    ("PEINT", "Peinture, le mètre carré", "m2", Decimal("24.50"), (8, 60)),
    ("CE200", "Remplacement de chauffe-eau 200 L", "u", Decimal("890.00"), (1, 1)),
    ("CHAUD", "Remplacement de chaudière murale", "u", Decimal("2650.00"), (1, 1)),
]
STREETS = [
    "rue des Tilleuls",
    "avenue de Strasbourg",
    "rue Mazelle",
    "boulevard Paixhans",
    "rue du Pont-Rouge",
    "rue de Pont-à-Mousson",
    "rue des Allemands",
    "avenue de Nancy",
    "rue Saint-Pierre",
    "rue de la Chapelle",
    "allée des Érables",
    "rue Paul Verlaine",
    "rue Victor Hugo",
    "place de la République",
    "rue des Jardins",
    "chemin de la Moselle",
    "rue du Général Leclerc",
    "rue Jean Moulin",
    "impasse des Lilas",
    "rue de Verdun",
]
FIRST_NAMES = ["Marie", "Nathalie", "Isabelle", "Sylvie", "Jean", "Philippe", "Michel", "Alain", "Karim", "Fatima"]
LAST_NAMES = [
    "Martin",
    "Bernard",
    "Thomas",
    "Petit",
    "Robert",
    "Richard",
    "Durand",
    "Dubois",
    "Moreau",
    "Laurent",
    "Simon",
    "Michel",
    "Muller",
    "Schmitt",
    "Weber",
    "Meyer",
    "Klein",
    "Hoffmann",
    "Becker",
    "Schneider",
    "Benali",
    "Haddad",
    "Nguyen",
    "Da Silva",
    "Kowalski",
]
YEARS = 3


def spread(chance: random.Random, now: datetime, span: timedelta) -> datetime:
    """A reception date over `span`, twice as frequent now as at its start (the
    contractor grew), on working days and hours mostly."""
    fraction = -1 + (1 + 3 * chance.random()) ** 0.5  # density 1 + t on [0, 1]
    at = now - span * (1 - fraction)
    if at.weekday() >= 5 and chance.random() < 0.85:
        at -= timedelta(days=at.weekday() - 4)
    at = at.replace(hour=chance.randint(7, 18), minute=chance.randrange(60))
    return min(at, now - timedelta(minutes=chance.randint(1, 90)))


def create_data(arguments: argparse.Namespace) -> Data:
    """Orders as three years of a contractor's work accumulate them, each
    following its own life (acknowledged, planned, started, finished mostly
    within its delay, received, invoiced, closed; some cancelled, a few forgotten
    in progress): whatever state it has reached by now is its state. The history
    and what the relay sent follow the same life."""
    from django.utils import timezone

    from orders.models import Order
    from portal.models import Asset, Role
    from tests import factories

    chance = random.Random(2026)
    now = timezone.now()
    span = timedelta(days=365 * YEARS)
    say(f"Creating {arguments.orders:,} orders over {YEARS} years...")
    data = Data()

    contracts: list[tuple] = []  # (client, share, [(contract, starts, ends, codes)], on a platform)
    for number, (name, town, postcode, kind, share, deals) in enumerate(CLIENTS):
        client = factories.make_client(name=name, address="1 place d'Armes", city=town, postcode=postcode)
        data.clients.append(client)
        factories.make_connection(
            client,
            secret=None,
            kind=kind,
            auth_base_url="https://accounts.hubintent.example" if kind == "intent" else "",
            api_base_url="https://api.hubintent.example/api" if kind == "intent" else "",
            oauth_client_id=f"prestataire-{number}" if kind == "intent" else "",
        )
        held = []
        for reference, label, delay, started, ended in deals:
            starts = now - timedelta(days=30.4 * started)
            ends = now - timedelta(days=30.4 * ended) if ended else None
            contract = factories.make_contract(
                client,
                reference=reference,
                label=label,
                starts_on=starts.date(),
                ends_on=ends.date() if ends else None,
                default_delay_days=delay,
                active=ends is None,
            )
            codes = [
                factories.make_service_code(
                    contract, code=code, label=text, intervention_delay_hours=None, completion_delay_hours=hours
                )
                for code, text, hours in SERVICES
            ]
            held.append((contract, starts, ends, codes))
            data.contracts.append(contract)
        contracts.append((client, share, held, kind == "intent"))

    assets_by_client = {}
    for client, share, _held, _platform in contracts:
        count = max(30, int(arguments.orders * share / 3))
        assets_by_client[client.pk] = Asset.objects.bulk_create(
            factories.build_asset(
                client,
                reference=f"{client.pk}-LGT-{number:05d}",
                label=f"Logement {number % 40 + 1}, bâtiment {'ABCDEF'[number % 6]}",
                address=f"{number % 140 + 1} {STREETS[(number * 7 + client.pk) % len(STREETS)]}",
                address_complement=f"Bâtiment {'ABCDEF'[number % 6]}, {number % 6}e étage" if number % 3 else "",
                postcode=client.postcode if number % 4 else "57070",
                city=client.city,
            )
            for number in range(count)
        )

    data.technicians = [
        factories.make_user(
            f"technicien-{number:02d}",
            Role.TECHNICIAN,
            password=None,
            email="",
            first_name=FIRST_NAMES[number % len(FIRST_NAMES)],
            last_name=f"{LAST_NAMES[number % len(LAST_NAMES)]}",
            mobile="06 98 76 54 32",
        )
        for number in range(1, arguments.technicians + 1)
    ]
    data.supervisors = [
        factories.make_user(
            f"conducteur-{number:02d}",
            Role.SUPERVISOR,
            password=None,
            first_name=FIRST_NAMES[(number + 3) % len(FIRST_NAMES)],
            last_name=f"Pilote {number}",
            email=f"conducteur-{number}@prestataire.example",
            mobile="06 11 22 33 44",
        )
        for number in range(1, arguments.supervisors + 1)
    ]

    lives = []
    references: Counter[str] = Counter()
    for _ in range(arguments.orders):
        client, _share, held, platform = chance.choices(contracts, [deal[1] for deal in contracts])[0]
        received = spread(chance, now, span)
        running = [deal for deal in held if deal[1] <= received and (deal[2] is None or received < deal[2])]
        contract, _starts, _ends, codes = chance.choice(running or held[-1:])
        code = chance.choices(codes, (20, 10, 12, 12, 10, 6, 3))[0]
        year = received.year
        references[f"{contract.pk}-{year}"] += 1
        reference = f"{contract.reference.split('-')[0]}_{year}_{references[f'{contract.pk}-{year}']:06d}"
        lives.append(
            Life.draw(
                chance,
                now,
                contract=contract,
                code=code,
                received=received,
                reference=reference,
                asset=chance.choice(assets_by_client[client.pk]),
                technician=chance.choice(data.technicians),
                pilot=chance.choice(data.supervisors),
                platform=platform,
            )
        )
    lives.sort(key=lambda life: life.received)
    orders = Order.objects.bulk_create((life.order() for life in lives), batch_size=1000)
    for life, order in zip(lives, orders, strict=True):
        life.saved = order
    data.first_received = lives[0].received
    write_history(chance, lives, now)
    return data


DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


@dataclass
class Life:
    """One order's life: when each step happens (None: never). Its state is the
    last step reached by now."""

    contract: object
    code: object
    asset: object
    technician: object
    pilot: object
    reference: str
    received: datetime
    due: datetime
    platform: bool
    lines: list = field(default_factory=list)  # (code, label, unit, price, quantity)
    steps: dict[str, datetime] = field(default_factory=dict)
    appointment: datetime | None = None
    period: tuple[datetime, datetime] | None = None
    suspension: tuple[datetime, datetime | None, str] | None = None
    occupant: str = ""
    critical: int = 0
    report: bool = False
    progress: int = 0
    outcome: str = "done"
    now: datetime | None = None
    saved: object = None

    @classmethod
    def draw(cls, chance: random.Random, now: datetime, **known: object) -> Life:
        from orders.states import CloseOutcome, SuspendReason

        contract, code, received = known["contract"], known["code"], known["received"]
        delay = (
            timedelta(hours=code.completion_delay_hours)
            if code.completion_delay_hours
            else contract.default_delay_days * DAY
        )
        life = cls(due=received + delay, now=now, **known)
        life.occupant = f"{chance.choice(('Mme', 'M.'))} {chance.choice(LAST_NAMES)}"
        life.critical = chance.choice((0, 0, 1, 1, 2, 3))
        for position in range(chance.choices((1, 2, 3, 4, 5, 6), (15, 30, 25, 15, 10, 5))[0]):
            price = PRICES[0] if position == 0 else chance.choices(PRICES, (0, 30, 10, 8, 10, 8, 6, 6, 5, 3, 1))[0]
            life.lines.append((price, Decimal(chance.randint(*price[4]))))
        steps = life.steps
        steps["received"] = received
        steps["assign"] = received + timedelta(minutes=chance.randint(2, 90))
        if chance.random() < 0.04:  # cancelled by the client, early on
            steps["cancel"] = received + timedelta(hours=chance.uniform(2, 240))
        steps["acknowledge"] = received + timedelta(hours=chance.uniform(0.5, 40))
        steps["plan"] = steps["acknowledge"] + timedelta(hours=chance.uniform(0.2, 24))
        # The works end mostly within the delay; one in seven late; a few are forgotten.
        if chance.random() < 0.15:
            end = received + delay * chance.uniform(1.05, 3.0)
        else:
            end = received + delay * chance.uniform(0.3, 0.95)
        # Most repairs are one visit of a few hours, on the appointment; one in five
        # takes days, planned as a period.
        several_days = chance.random() < 0.2
        works = timedelta(days=chance.uniform(1, 6)) if several_days else timedelta(hours=chance.uniform(1, 4))
        start = max(end - works, steps["plan"] + HOUR)
        end = max(end, start + HOUR)
        life.progress = chance.choice((10, 20, 30, 50, 50, 70, 80, 90))
        if several_days:
            life.period = (start, end + timedelta(hours=2))
        else:
            life.appointment = start
        steps["start"] = start
        if several_days and chance.random() < 0.4:
            held = start + (end - start) * 0.3
            reason = chance.choice(list(SuspendReason))
            life.suspension = (held, start + (end - start) * 0.8, reason.value)
        if chance.random() < 0.0015:  # forgotten: started, never finished
            if life.suspension:
                life.suspension = (life.suspension[0], None, life.suspension[2])
        else:
            steps["finish"] = end
            life.report = chance.random() < 0.8
            steps["record_reception"] = end + timedelta(days=chance.uniform(1, 20))
            steps["invoice"] = steps["record_reception"] + timedelta(days=chance.uniform(3, 30))
            steps["close"] = steps["invoice"] + timedelta(days=chance.uniform(10, 70))
            life.outcome = chance.choices(list(CloseOutcome), (80, 10, 6, 4))[0].value
        if "cancel" in steps:
            steps = {name: at for name, at in steps.items() if at <= steps["cancel"] and name != "finish"}
            for name in ("record_reception", "invoice", "close"):
                steps.pop(name, None)
            life.steps = steps
        return life

    def reached(self, step: str) -> bool:
        return step in self.steps and self.steps[step] <= self.now

    @property
    def state(self) -> str:
        from orders.states import State

        if self.reached("cancel"):
            return State.CANCELLED
        for step, state in (
            ("close", State.CLOSED),
            ("invoice", State.INVOICED),
            ("record_reception", State.RECEIVED),
            ("finish", State.FINISHED),
        ):
            if self.reached(step):
                return state
        if self.reached("start"):
            if (
                self.suspension
                and self.suspension[0] <= self.now
                and (self.suspension[1] is None or self.now < self.suspension[1])
            ):
                return State.SUSPENDED
            return State.IN_PROGRESS
        if self.reached("plan"):
            return State.PLANNED
        if self.reached("acknowledge"):
            return State.ACKNOWLEDGED
        return State.TO_ACKNOWLEDGE

    def order(self):  # noqa: ANN201 (an unsaved orders.models.Order)
        from orders.states import State
        from tests import factories

        state = self.state
        fields: dict = {}
        if self.reached("plan"):
            if self.appointment:
                fields["appointment_at"] = self.appointment
            else:
                fields["planned_start"], fields["planned_end"] = self.period
        if self.reached("start"):
            fields["actual_start"] = self.steps["start"]
        if self.reached("finish"):
            fields["actual_end"] = self.steps["finish"]
        if state == State.SUSPENDED:
            fields["suspend_reason"] = self.suspension[2]
        if self.reached("record_reception"):
            fields["reception_date"] = self.steps["record_reception"].date()
        if self.reached("invoice"):
            fields["invoice_date"] = self.steps["invoice"].date()
            fields["invoice_number"] = f"F{self.steps['invoice']:%Y%m}-{self.reference[-6:]}"
        if state == State.CLOSED:
            fields["close_outcome"] = self.outcome
        if state == State.CANCELLED:
            fields["cancel_reason"] = "Demande annulée par le gestionnaire (doublon)"
        assigned = self.reached("assign") and not (state == State.TO_ACKNOWLEDGE and self.reference.endswith("5"))
        progress = 100 if self.reached("finish") else self.progress if self.reached("start") else 0
        return factories.build_order(
            self.contract,
            self.reference,
            origin="platform" if self.platform else "manual",
            asset=self.asset,
            service_code=self.code,
            critical_level=self.critical,
            description=f"{self.code.label}. Signalé par l'occupant, intervenir en présence du gardien.",
            occupant_name=self.occupant,
            occupant_mobile="06 12 34 56 78",
            access_notes="Code 4512B" if self.reference.endswith(("1", "4", "7")) else "",
            state=state,
            received_at=self.received,
            notified_at=self.received,
            due_at=self.due,
            progress=progress,
            technician=self.technician if assigned else None,
            pilot=self.pilot,
            **fields,
        )


def copy_rows(model: type, rows: Iterable[dict], *, ids: bool = False) -> int:
    """Writes `rows` (attribute name -> value; the model's defaults for the
    others) with PostgreSQL's COPY, far faster than bulk_create for hundreds of
    thousands of events and messages (bench/README.md). With `ids`, the rows
    carry their primary keys (a fresh database), so that other rows can point
    at them."""
    from django.db import connection
    from django.db.models import JSONField

    fields = [field for field in model._meta.concrete_fields if ids or not field.primary_key]
    defaults = {field.attname: field.get_default() for field in fields}  # "" for text, None when nullable
    table = connection.ops.quote_name(model._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    json_fields = {field.attname for field in fields if isinstance(field, JSONField)}
    count = 0
    with connection.cursor() as cursor, cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            values = []
            for field in fields:
                value = row.get(field.attname, defaults.get(field.attname))
                values.append(json.dumps(value) if field.attname in json_fields and value is not None else value)
            copy.write_row(values)
            count += 1
    if not ids:
        return count
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT setval(pg_get_serial_sequence('{model._meta.db_table}', 'id'), "
            f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"
        )
    return count


EVENT_LABELS = {
    "assign": "Technicien affecté",
    "acknowledge": "Commande prise en compte",
    "plan": "Intervention planifiée",
    "start": "Travaux démarrés",
    "suspend": "Travaux suspendus",
    "resume": "Travaux repris",
    "set_progress": "Avancement : 50 %",
    "mark_line": "Ligne réalisée",
    "note": "Note de chantier : occupant prévenu, accès par le gardien",
    "finish": "Travaux terminés",
    "report_submitted": "Rapport d'intervention saisi",
    "document_added": "Rapport d'intervention (PDF) ajouté",
    "record_reception": "Travaux réceptionnés",
    "invoice": "Facture émise",
    "close": "Commande clôturée : travaux réalisés",
    "cancel": "Commande annulée : doublon",
    "received": "Commande reçue",
    "line_added": "Ligne ajoutée",
}


def moments_of(chance: random.Random, life: Life) -> list[tuple[datetime, str, object]]:
    """The events of a life, in order: (when, kind, who; None for the platform)."""
    moments: list[tuple[datetime, str, object]] = [(life.received, "received", None)]
    moments += [(life.received, "line_added", None) for _ in life.lines]
    for step, at in life.steps.items():
        if step != "received":
            actor = life.technician if step in ("start", "finish") else None if step == "cancel" else life.pilot
            moments.append((at, step, actor))
    if life.suspension:
        moments.append((life.suspension[0], "suspend", life.technician))
        if life.suspension[1]:
            moments.append((life.suspension[1], "resume", life.technician))
    if "start" in life.steps:
        start, end = life.steps["start"], life.steps.get("finish", life.steps["start"] + 3 * DAY)
        for step in range(chance.randint(0, 2)):
            moments.append((start + (end - start) * (step + 1) / 4, "set_progress", life.technician))
        if chance.random() < 0.4:
            moments.append((start + (end - start) / 2, "note", life.technician))
        if "finish" in life.steps:
            moments += [(end - timedelta(minutes=5), "mark_line", life.technician) for _ in life.lines]
            if life.report:
                moments.append((end + timedelta(minutes=3), "report_submitted", life.technician))
                moments.append((end + timedelta(minutes=4), "document_added", life.technician))
    moments.sort(key=lambda moment: moment[0])
    return moments


def write_history(chance: random.Random, lives: list[Life], now: datetime) -> None:
    """Lines, events, reports and their PDFs, and the relay's messages for every
    order; breaches after the platforms' outages, a few refusals still waiting."""
    from orders.models import Document, InterventionReport, OrderEvent, OrderLine
    from orders.states import WORK_STATES
    from portal.relay import mapping
    from portal.relay.models import Breach, Connection, MessageKind, MessageStatus, OutboxMessage
    from tests import factories

    lines = copy_rows(
        OrderLine,
        (
            {
                "order_id": life.saved.pk,
                "position": position,
                "reference": f"{position:02d}-{code}",
                "label": label,
                "quantity": quantity,
                "unit": unit,
                "unit_price": price,
                "vat_rate": Decimal("10.00"),
                "done": life.reached("finish"),
                "done_at": life.steps["finish"] if life.reached("finish") else None,
            }
            for life in lives
            for position, ((code, label, unit, price, _range), quantity) in enumerate(life.lines, start=1)
        ),
    )

    documents, document_of = [], {}
    for life in lives:
        at = life.steps["finish"] + timedelta(minutes=4) if life.report and life.reached("finish") else None
        if at is not None and at <= now:
            document = factories.build_report_pdf(
                life.saved, by=life.technician, at=at, size=chance.randint(200_000, 900_000)
            )
            documents.append(document)
            document_of[life.saved.pk] = document
    Document.objects.bulk_create(documents, batch_size=2000)
    InterventionReport.objects.bulk_create(
        (
            factories.build_rendered_report(
                document,
                works_done="Intervention réalisée, essais concluants.",
                time_on_site_minutes=chance.choice((30, 45, 60, 90, 120)),
                created_at=document.created_at - timedelta(minutes=1),
                pdf_requested_at=document.created_at - timedelta(minutes=1),
            )
            for document in documents
        ),
        batch_size=2000,
    )

    # The platforms' outages: a dozen over the years, one this month; what changed
    # during one reached the platform when it came back, past the 15-minute limit.
    connections = {connection.client_id: connection for connection in Connection.objects.all()}
    first = lives[0].received
    this_month = (now - timedelta(days=3)).replace(hour=10, minute=15)
    outages = sorted(
        (start, start + timedelta(minutes=chance.randint(25, 240)))
        for start in [first + (now - first) * chance.random() for _ in range(12)] + [this_month]
    )
    events, messages, breaches = [], [], []
    statuses: Counter[str] = Counter()
    for life in lives:
        order = life.saved
        snapshot = None
        stuck = False
        sequence = 0
        for at, kind, actor in moments_of(chance, life):
            if at > now:
                break
            event_id = len(events) + 1
            events.append(
                {
                    "id": event_id,
                    "order_id": order.pk,
                    "at": at,
                    "recorded_at": at,
                    "kind": kind,
                    "label": EVENT_LABELS[kind],
                    "actor_id": actor.pk if actor else None,
                    "data": {},
                }
            )
            if not life.platform or actor is None:  # what the platform said is not echoed back to it
                continue
            if snapshot is None:
                snapshot = order_snapshot(life, mapping)
            sequence += 1
            delivered = at + timedelta(seconds=chance.uniform(0.3, 20))
            for start, end in outages:
                if start <= at < end:
                    delivered = end + timedelta(seconds=chance.uniform(5, 90))
            status, extra = MessageStatus.DELIVERED, {}
            recent = now - at < timedelta(days=10)
            if stuck or now - at < timedelta(seconds=40):  # behind a refusal (it waits for it), or on its way
                status, delivered = MessageStatus.PENDING, None
            elif (recent and chance.random() < 0.003) or chance.random() < 0.001:
                if recent and statuses[MessageStatus.REJECTED] < 6:  # refused, waiting for a person
                    status, delivered, stuck = MessageStatus.REJECTED, None, True
                    extra = {
                        "rejected_at": at + timedelta(seconds=2),
                        "last_status_code": 422,
                        "last_error": "422 : le code prestation n'est pas autorisé pour ce marché",
                    }
                elif chance.random() < 0.3:  # given up long ago
                    status, delivered = MessageStatus.CANCELLED, None
                    extra = {"resolved_at": at + DAY, "resolution_note": "Saisi directement sur la plateforme"}
                else:  # corrected and resent the next day
                    delivered = at + timedelta(hours=chance.uniform(2, 30))
                    extra = {"resolved_at": delivered}
            document = document_of.get(order.pk) if kind == "document_added" else None
            if document is not None:
                message_kind = MessageKind.DOCUMENT
                payload = {
                    "title": document.title,
                    "elementType": "intervention",
                    "elementReference": order.reference,
                    "intent_contractReference": life.contract.reference,
                    "intent_creationDate": mapping.iso(document.created_at),
                    "document": {"id": document.pk, "fileName": document.file_name, "size": document.size},
                }
            else:
                message_kind = MessageKind.INTERVENTION_LOG
                payload = mapping.intervention_log(
                    snapshot, mapping.EventSnapshot(kind=kind, label=EVENT_LABELS[kind], at=at, data={}), logged_at=at
                )
            message_id = len(messages) + 1
            messages.append(
                {
                    "id": message_id,
                    "connection_id": connections[life.contract.client_id].pk,
                    "order_id": order.pk,
                    "event_id": event_id,
                    "sequence": sequence,
                    "kind": message_kind,
                    "payload": payload,
                    "status": status,
                    "created_at": at,
                    "next_attempt_at": at,
                    "queued_at": at,
                    "attempts": 0 if status == MessageStatus.PENDING else 1,
                    "delivered_at": delivered,
                    **extra,
                }
            )
            statuses[status] += 1
            waited = (delivered or now) - at
            if status != MessageStatus.CANCELLED and waited > timedelta(minutes=15):
                breaches.append(
                    Breach(
                        message_id=message_id,
                        connection_id=connections[life.contract.client_id].pk,
                        changed_at=at,
                        delivered_at=delivered,
                        delay_seconds=int(waited.total_seconds()),
                    )
                )
    copy_rows(OrderEvent, events, ids=True)
    copy_rows(OutboxMessage, messages, ids=True)
    Breach.objects.bulk_create(breaches, batch_size=2000)
    say(
        f"  {len(lives):,} orders, {lines:,} lines, {len(events):,} events, {len(documents):,} reports; "
        f"{len(messages):,} messages to the platforms ({', '.join(f'{n:,} {s}' for s, n in statuses.most_common())}), "
        f"{len(breaches):,} breaches of the 15-minute limit"
    )
    states = Counter(str(life.saved.state) for life in lives)
    say("  by state: " + ", ".join(f"{state} {count:,}" for state, count in states.most_common()))
    late = sum(1 for life in lives if life.saved.state in WORK_STATES and life.due < now)
    soon = sum(1 for life in lives if life.saved.state in WORK_STATES and now <= life.due < now + 2 * DAY)
    month = timezone_month_start(now)
    recent = sum(1 for breach in breaches if breach.changed_at >= month)
    say(f"  late: {late}, late within 48 h: {soon}; breaches this month: {recent}")


def order_snapshot(life: Life, mapping):  # noqa: ANN001, ANN201 (portal.relay.mapping and its OrderSnapshot)
    """What the relay tells the platform of the order (as it stands now, for every message)."""
    order = life.saved
    return mapping.OrderSnapshot(
        reference=order.reference,
        contract_reference=life.contract.reference,
        state=order.state,
        service_code=life.code.code,
        critical_level=order.critical_level,
        asset_reference=life.asset.reference,
        appointment_at=order.appointment_at,
        planned_start=order.planned_start,
        planned_end=order.planned_end,
        actual_start=order.actual_start,
        actual_end=order.actual_end,
        progress=order.progress,
        lines=tuple(
            mapping.Line(f"{n:02d}-{line[0][0]}", order.progress == 100) for n, line in enumerate(life.lines, 1)
        ),
        pilot=mapping.Person(life.pilot.first_name, life.pilot.last_name, life.pilot.mobile, life.pilot.email),
    )


def timezone_month_start(now: datetime) -> datetime:
    from django.utils import timezone

    return timezone.localtime(now).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def vacuum_analyze(database_url: str) -> None:
    """What autovacuum would have done by the time a real database holds this:
    the planner's statistics and the visibility map."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")


# --- The load -------------------------------------------------------------------------


Variant = tuple[str, Callable[[random.Random], dict]]


def list_variants(data: Data) -> list[Variant]:
    """Filtered lists as supervisors ask for them (the overview links to most)."""
    clients = [client.pk for client in data.clients]
    contracts = [contract.pk for contract in data.contracts]
    technicians = [technician.pk for technician in data.technicians]
    words = ["Tilleuls", "Muller", "Strasbourg", "57070", "Schmitt", "Verlaine", "2025_0001", "Thionville"]

    def dates(chance: random.Random) -> dict:
        from django.utils import timezone

        first = timezone.localdate(data.first_received)
        start = first + timedelta(days=chance.randrange(max(1, (timezone.localdate() - first).days - 90)))
        return {"du": start.isoformat(), "au": (start + timedelta(days=chance.choice((30, 90)))).isoformat()}

    return [
        ("late", lambda chance: {"retard": "oui"}),
        ("late 48 h", lambda chance: {"retard": "48h", "tri": "echeance"}),
        (
            "state + client",
            lambda chance: {
                "etat": chance.sample(["acknowledged", "planned", "in_progress", "suspended", "finished"], 2),
                "client": chance.choice(clients),
            },
        ),
        ("search", lambda chance: {"q": chance.choice(words)}),
        ("search + state + p2", lambda chance: {"q": chance.choice(("Metz", "Martin")), "etat": "closed", "page": 2}),
        (
            "sort",
            lambda chance: {
                "tri": chance.choice(("client", "-echeance", "technicien", "etat", "reference", "-marche"))
            },
        ),
        ("page 2+", lambda chance: {"page": chance.randint(2, 80)}),
        ("technician", lambda chance: {"technicien": chance.choice(technicians), "tri": "-echeance", "page": 2}),
        ("contract + dates", lambda chance: {"marche": chance.choice(contracts), **dates(chance)}),
        ("no report", lambda chance: {"etat": ["finished", "received"], "rapport": "sans"}),
    ]


def round_of(variants: list[Variant], labels: dict[str, str]):
    """A supervisor's round: the overview, then two filtered lists, and again."""
    position = 0

    def next_url(chance: random.Random) -> tuple[str, str]:
        nonlocal position
        position += 1
        if position % 3 == 1:
            return OVERVIEW, OVERVIEW_PATH
        name, parameters = chance.choice(variants)
        query = urlencode(parameters(chance), doseq=True, quote_via=quote)
        labels[query] = name
        return f"{LIST} · {name}", f"{LIST_PATH}?{query}"

    return next_url


def page_of(path: str) -> str:
    return {OVERVIEW_PATH: OVERVIEW, LIST_PATH: LIST, CSV_PATH: "csv"}.get(path, "other")


def report_load(phase: Phase, labels: dict[str, str]) -> dict[str, list[float]]:
    """Prints the figures, per page and per list variant; returns the server's times by page."""
    say_requests(phase)
    server = times_by(phase.served, lambda request: page_of(request.path))
    variants = times_by(
        (request for request in phase.served if page_of(request.path) == LIST),
        lambda request: labels.get(request.query, "?"),
    )
    client = times_by(phase.samples, lambda sample: sample.label.partition(" · ")[0])
    client_variants = times_by(
        (sample for sample in phase.samples if " · " in sample.label),
        lambda sample: sample.label.partition(" · ")[2],
    )
    say("  server time (gunicorn %(D)s), ms:")
    say_times([(page, server[page]) for page in (OVERVIEW, LIST)], width=22)
    say_times([(name, variants[name]) for name in sorted(variants)], width=20, indent=6)
    say("  client time (request sent -> response read, incl. the wait for a free worker), ms:")
    say_times([(page, client[page]) for page in (OVERVIEW, LIST)], width=22)
    say_times([(name, client_variants[name]) for name in sorted(client_variants)], width=20, indent=6)
    return server


# --- The CSV export ----------------------------------------------------------------------


@dataclass
class Export:
    rows: int
    expected: int
    header_ok: bool
    first_byte: float
    last_byte: float
    wire: int
    raw: int
    encoding: str
    pid: int
    server: float
    growth: int  # peak resident memory over the resident memory before, bytes
    rss_before: int


def export_query(data: Data, wanted: int) -> tuple[str, int]:
    """One client's orders received since a date, the date chosen for about
    `wanted` rows: the query string and the database's count of that list."""
    from django.utils import timezone

    from orders.models import Order

    client = max(data.clients, key=lambda client: Order.objects.filter(contract__client=client).count())
    received = list(
        Order.objects.filter(contract__client=client).order_by("-received_at").values_list("received_at", flat=True)
    )
    since = timezone.localdate(received[min(wanted, len(received)) - 1])
    query = urlencode({"client": client.pk, "du": since.isoformat()})
    expected = count_of(query)
    if abs(expected - wanted) > wanted * 0.05:  # one client has too few: every client's orders
        received = list(Order.objects.order_by("-received_at").values_list("received_at", flat=True))
        query = urlencode({"du": timezone.localdate(received[min(wanted, len(received)) - 1]).isoformat()})
        expected = count_of(query)
    return query, expected


def count_of(query: str) -> int:
    """The number of orders of the list for `query`, by the list's own filters."""
    from django.http import QueryDict
    from django.utils import timezone

    from orders.supervisor.forms import OrderFilterForm
    from orders.supervisor.listing import Filters, filtered_orders
    from portal.models import Role, User

    supervisor = User.objects.filter(role=Role.SUPERVISOR).first()
    filters = Filters.from_form(OrderFilterForm(QueryDict(query)))
    return filtered_orders(supervisor, filters, timezone.now()).count()


def download(base_url: str, cookie: str, url: str, gunicorn_pid: int, access_log: AccessLog, expected: int) -> Export:
    """The export as a browser gets it (gzip), timed to its first and last byte,
    with the serving worker's peak memory."""
    workers = children_of(gunicorn_pid)
    before = {}
    for pid in workers:
        reset_peak_memory(pid)
        before[pid] = memory_of(pid)
    access_log.mark()
    headers = {**PROXY_HEADERS, "Cookie": cookie, "Accept-Encoding": "gzip"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=120) as client:
        started = time.perf_counter()
        first = None
        body = bytearray()
        with client.stream("GET", url) as response:
            response.raise_for_status()
            for chunk in response.iter_bytes():
                if first is None:
                    first = time.perf_counter() - started
                body += chunk
            last = time.perf_counter() - started
            wire = response.num_bytes_downloaded
            encoding = response.headers.get("content-encoding", "identity")
    served = []
    for _ in range(50):  # the access log line is written once the response is
        served = [request for request in access_log.since_mark() if request.path == CSV_PATH]
        if served:
            break
        time.sleep(0.05)
    pid = served[0].pid if served else 0
    after = memory_of(pid) if pid else {}
    growth = after.get("VmHWM", 0) - before.get(pid, {}).get("VmRSS", 0) if after else -1
    text = bytes(body).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))
    from orders.supervisor.listing import CSV_COLUMNS

    return Export(
        rows=len(rows) - 1,
        expected=expected,
        header_ok=bool(rows) and rows[0] == CSV_COLUMNS,
        first_byte=first or last,
        last_byte=last,
        wire=wire,
        raw=len(body),
        encoding=encoding,
        pid=pid,
        server=served[0].seconds if served else float("nan"),
        growth=growth,
        rss_before=before.get(pid, {}).get("VmRSS", 0),
    )


def mb(size: int) -> str:
    return f"{size / 2**20:.1f} MB" if size >= 0 else "n/a"


def measure_exports(
    arguments: argparse.Namespace, base_url: str, cookie: str, data: Data, gunicorn_pid: int, access_log: AccessLog
) -> list[str]:
    query, expected = export_query(data, arguments.csv_rows)
    say(f"\n== CSV export: {CSV_PATH}?{query} ({expected:,} orders), alone, {arguments.exports} times")
    runs = [
        download(base_url, cookie, f"{CSV_PATH}?{query}", gunicorn_pid, access_log, expected)
        for _ in range(arguments.exports)
    ]
    total = count_of("")
    say(f"   and every order ({total:,}), once, to see whether memory follows the rows")
    everything = download(base_url, cookie, CSV_PATH, gunicorn_pid, access_log, total)
    say(
        f"  {'export':<16} {'rows (db)':>15} {'1st byte':>9} {'last byte':>9} {'server':>8} "
        f"{'sent':>9} {'raw':>9} {'worker RSS':>10} {'peak growth':>11}"
    )
    for name, export in [(f"{expected:,} #{n + 1}", export) for n, export in enumerate(runs)] + [
        (f"all {total:,}", everything)
    ]:
        check = "" if export.rows == export.expected and export.header_ok else " !"
        say(
            f"  {name:<16} {export.rows:>7,} ({export.expected:,}){check:2} {export.first_byte * 1000:7.0f} ms "
            f"{export.last_byte:7.2f} s {export.server:6.2f} s {export.wire / 1024:6.0f} KB "
            f"{export.raw / 1024:6.0f} KB "
            f"{mb(export.rss_before):>10} {mb(export.growth):>11}"
        )
    say(f"  (sent {runs[0].encoding}; worker: the gunicorn process that served it, from the access log)")
    worst = max(runs, key=lambda export: export.last_byte)
    lines = [
        f"CSV of {expected:,} orders, slowest of {len(runs)} to the last byte: "
        + verdict(worst.last_byte, CSV_GOAL, "s", 1),
    ]
    wrong = [export for export in [*runs, everything] if export.rows != export.expected or not export.header_ok]
    lines.append(
        "CSV rows parsed back against the database's count: "
        + ("all equal, header as expected: met" if not wrong else f"MISSED: {len(wrong)} exports differ")
    )
    growth = statistics.median(export.growth for export in runs)
    flat = everything.growth <= max(growth * 2, growth + 8 * 2**20)
    lines.append(
        f"CSV worker's peak memory growth: {mb(int(growth))} for {expected:,} rows, {mb(everything.growth)} for "
        f"{total:,}: " + ("flat, the rows are streamed: met" if flat else "grows with the rows: MISSED")
    )
    return lines


if __name__ == "__main__":
    sys.exit(main())
