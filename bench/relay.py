"""The relay end to end, under load: PostgreSQL, Redis, two Celery worker
processes and one beat, and the sandbox served by gunicorn in its own process
(with its own database, as the real platform would be).

1. Latency: changes made through the services at a steady rate (20/s, then
   50/s, each for 60 s, over 200 orders, each change in its own transaction); for each, the time from
   its commit to the platform's acknowledgement (the sandbox's `received_at`,
   same machine clock; the relay's `delivered_at` is shown too).
2. Backlog: a plain HTTP load generator (a thread pool posting valid logs with
   a token, as many threads as the relay has worker processes) measures what
   the sandbox accepts; then the platform goes down, 10,000 changes are made,
   the platform comes back, and the relay's drain is timed. The generator runs
   again after the drain; the ratio is taken against the better of its two
   rates.
Every message is checked against what the platform received: none lost, none
doubled, each order's messages in sequence.

    make bench                                  # the full run
    make bench BENCH_ARGS=--quick               # a smoke run
    .venv/bin/python bench/relay.py --help

bench/README.md has how long a run takes, and the figures and their history.

It drops and recreates the databases `portal_bench` and `portal_bench_sandbox`
on BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432) and uses a
Redis database of its own on BENCH_REDIS_URL (else REDIS_URL, else
redis://127.0.0.1:6379/0), emptied at the end. Without them it says so and
stops. Every process it starts is stopped at the end, Ctrl-C included; their
logs are kept in a temporary folder, printed at the start.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import redis
from _common import (
    BASE_DIR,
    VENV_BIN,
    Processes,
    StandInAutovacuum,
    claim_redis_database,
    cpu_seconds,
    cpu_spent,
    free_port,
    ms,
    percentile,
    postgres_answers,
    recreate_database,
    release_redis_database,
    wait_for_http,
)

SECRET_KEY = "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
CLIENT_ID = "banc-d-essai"
CLIENT_SECRET = "secret-du-banc-d-essai-42"
CONTRACT = "BENCH-2026"


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: 20 s, a backlog of 1,000")
    parser.add_argument("--rates", default="20,50", help="changes per second in phase 1, one run per rate (20,50)")
    parser.add_argument("--duration", type=float, help="seconds of phase 1 (60; 20 with --quick)")
    parser.add_argument("--backlog", type=int, help="messages in the backlog (10,000; 1,000 with --quick)")
    parser.add_argument("--raw-posts", type=int, help="posts of the HTTP load generator (2,000; 500 with --quick)")
    parser.add_argument("--orders", type=int, default=200, help="orders the changes are spread over (200)")
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes (2)")
    parser.add_argument("--concurrency", type=int, default=1, help="pool processes per worker (1)")
    arguments = parser.parse_args()
    arguments.rates = [float(rate) for rate in arguments.rates.split(",") if rate.strip()]
    arguments.duration = arguments.duration or (20 if arguments.quick else 60)
    arguments.backlog = arguments.backlog or (1_000 if arguments.quick else 10_000)
    arguments.raw_posts = arguments.raw_posts or (500 if arguments.quick else 2_000)
    return arguments


def say(text: str = "") -> None:
    print(text, flush=True)


@dataclass
class Setup:
    folder: Path
    portal_environment: dict[str, str]
    sandbox_environment: dict[str, str]
    sandbox_url: str


def main() -> int:
    arguments = parse_arguments()
    postgres_url = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
    redis_base = os.environ.get("BENCH_REDIS_URL") or os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    if problem := postgres_answers(postgres_url):
        say(f"relay benchmark skipped: needs PostgreSQL at {postgres_url} ({problem})")
        return 0
    try:
        redis.Redis.from_url(redis_base, socket_timeout=3).ping()
    except redis.RedisError as error:
        say(f"relay benchmark skipped: needs Redis at {redis_base} ({error})")
        return 0

    folder = Path(tempfile.mkdtemp(prefix="bench-relay-"))
    redis_url = claim_redis_database(redis_base)
    say(f"Logs and state in {folder}; broker {redis_url}")
    base = {**os.environ, "SECRET_KEY": SECRET_KEY, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(BASE_DIR)}
    base.pop("REDIS_URL", None)
    sandbox_port = free_port()
    setup = Setup(
        folder=folder,
        # The portal as in production (DEBUG off), but for the HTTP of the sandbox.
        portal_environment={
            **base,
            "DEBUG": "0",
            "DATABASE_URL": recreate_database(postgres_url, "portal_bench"),
            "REDIS_URL": redis_url,
            "VAR_DIR": str(folder / "portal"),
            "LOG_LEVEL": "WARNING",
            # No reconciliation during the run: the generator's logs make
            # operations the manager never created, which it would bring in as
            # orders (200 a round, and their messages) in the middle of a timed
            # phase; it ran during the drain or the generator's second run.
            "RELAY_RECONCILE_SECONDS": "86400",
        },
        sandbox_environment={
            **base,
            "DEBUG": "1",
            "SANDBOX_ENABLED": "1",
            "DATABASE_URL": recreate_database(postgres_url, "portal_bench_sandbox"),
            "VAR_DIR": str(folder / "sandbox"),
            "LOG_LEVEL": "ERROR",
        },
        sandbox_url=f"http://127.0.0.1:{sandbox_port}/sandbox",
    )
    try:
        with Processes(folder) as processes:
            run(arguments, setup, processes, sandbox_port)
    except KeyboardInterrupt:
        say("\nInterrupted; every process stopped.")
        return 130
    finally:
        release_redis_database(redis_url)
    return 0


def run(arguments: argparse.Namespace, setup: Setup, processes: Processes, sandbox_port: int) -> None:
    # This process is the portal too (it makes the changes): configure it first.
    os.environ.update({key: setup.portal_environment[key] for key in ("DEBUG", "DATABASE_URL", "REDIS_URL", "VAR_DIR")})
    os.environ.update(SECRET_KEY=SECRET_KEY, LOG_LEVEL="WARNING", DJANGO_SETTINGS_MODULE="portal.settings")

    say("Migrating the two databases...")
    processes.run("migrate-portal", [sys.executable, "manage.py", "migrate", "--noinput"], setup.portal_environment)
    processes.run("migrate-sandbox", [sys.executable, "manage.py", "migrate", "--noinput"], setup.sandbox_environment)
    processes.run(
        "sandbox-setup",
        [sys.executable, "manage.py", "sandbox_setup", f"--client-id={CLIENT_ID}", f"--client-secret={CLIENT_SECRET}"],
        setup.sandbox_environment,
    )

    import django

    django.setup()
    bench = Bench(arguments, setup)
    bench.create_orders()

    processes.start(
        "sandbox-gunicorn",
        [
            str(VENV_BIN / "gunicorn"),
            "portal.wsgi",
            "-k",
            "gthread",
            "--threads",
            "8",
            "--workers",
            "2",
            "--timeout",
            "60",
            # No keep-alive: each request goes to whichever sandbox process
            # accepts it, as a load balancer in front of a platform spreads
            # requests. With keep-alive, a client's two connections land on the
            # same process (then its GIL serialises them) or on two, by chance,
            # for the whole run: eight runs of the plain generator against the
            # same sandbox gave 146 to 225 logs/s, in two groups, and the ratio
            # measured that lottery more than the relay (bench/README.md).
            "--keep-alive",
            "0",
            "--bind",
            f"127.0.0.1:{sandbox_port}",
        ],
        setup.sandbox_environment,
    )
    for number in range(1, arguments.workers + 1):
        processes.start(
            f"worker-{number}",
            [
                str(VENV_BIN / "celery"),
                "-A",
                "portal",
                "worker",
                f"--concurrency={arguments.concurrency}",
                "--loglevel=info",
                f"--hostname=bench-{number}@%h",
            ],
            setup.portal_environment,
        )
    processes.start(
        "beat", [str(VENV_BIN / "celery"), "-A", "portal", "beat", "--loglevel=info"], setup.portal_environment
    )
    wait_for_http(f"{setup.sandbox_url}/comportement.json", processes)
    bench.wait_for_workers(processes)
    say(
        f"Sandbox: gunicorn gthread, 2 processes x 8 threads, no keep-alive, {setup.sandbox_url}. "
        f"Relay: {arguments.workers} worker(s) x {arguments.concurrency} process(es), one beat."
    )

    vacuum = StandInAutovacuum(setup.portal_environment["DATABASE_URL"], ["relay_outboxmessage"])
    say(vacuum.describe())
    with vacuum:
        for rate in arguments.rates:
            bench.phase_latency(processes, rate)
        first_raw = bench.raw_rate(processes)
        bench.phase_backlog(processes)
        second_raw = bench.raw_rate(processes)
        bench.report_backlog(max(first_raw, second_raw), after=second_raw)
        bench.report_totals(processes)


class Bench:
    def __init__(self, arguments: argparse.Namespace, setup: Setup) -> None:
        self.arguments = arguments
        self.setup = setup
        self.http = httpx.Client(timeout=30)
        self.commits: dict[int, float] = {}  # OrderEvent id -> commit time (epoch seconds)
        self.sandbox_sequence = 0  # the last log read from the sandbox
        self.logs: list[dict] = []
        self.relay_processes = arguments.workers * arguments.concurrency

    # --- Set-up ------------------------------------------------------------------

    def create_orders(self) -> None:
        """Orders in progress, made before the connection exists (not relayed)."""
        from datetime import date, timedelta

        from django.utils import timezone

        from orders.states import State
        from portal.models import Role
        from tests import factories

        say(f"Creating {self.arguments.orders} orders...")
        client = factories.make_client(name="Bailleur du banc d'essai")
        contract = factories.make_contract(client, reference=CONTRACT, label="Banc d'essai", starts_on=date(2026, 1, 1))
        service_code = factories.make_service_code(contract)
        asset = factories.make_asset(
            client, reference="LGT-0001", label="Logement 1", address="1 rue du Banc", postcode=""
        )
        self.technician = factories.make_user(
            "technicien-banc",
            Role.TECHNICIAN,
            password=None,
            email="",
            first_name="Karim",
            last_name="Haddad",
            mobile="06 98 76 54 32",
        )
        self.orders = []
        for number in range(self.arguments.orders):
            order = factories.register_order(
                contract,
                reference=f"BENCH-{number:05d}",
                notified_at=None,
                asset=asset,
                service_code=service_code,
                description="Fuite sous l'évier",
                occupant_name="",
                occupant_mobile="",
                lines=[{"reference": "L1", "label": "Recherche de fuite"}],
                technician=self.technician,
            )
            appointment = timezone.now() + timedelta(days=1)
            self.orders.append(factories.bring_to(order, State.IN_PROGRESS, self.technician, appointment=appointment))
        factories.make_connection(
            client,
            secret=CLIENT_SECRET,
            auth_base_url=self.setup.sandbox_url,
            api_base_url=f"{self.setup.sandbox_url}/api",
            oauth_client_id=CLIENT_ID,
            timeout_seconds=10,
        )

    def wait_for_workers(self, processes: Processes) -> None:
        from portal.celery import app

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            processes.check_alive()
            if len(app.control.ping(timeout=1)) >= self.arguments.workers:
                return
        raise RuntimeError("the workers did not answer within 60 s")

    # --- Changes ------------------------------------------------------------------

    def change(self, order) -> None:
        """One change through a service, in its own transaction; its commit time
        is taken by the first on-commit callback (before the delivery is queued)."""
        from django.db import transaction

        from orders import services

        committed: list[float] = []
        with transaction.atomic():
            transaction.on_commit(lambda: committed.append(time.time()))
            event = services.set_progress(order, actor=self.technician, progress=order.progress % 99 + 1)
        self.commits[event.pk] = committed[0]

    def last_message_id(self) -> int:
        from portal.relay.models import OutboxMessage

        return OutboxMessage.objects.order_by("-pk").values_list("pk", flat=True).first() or 0

    def wait_until_delivered(
        self, processes: Processes, timeout: float, *, progress_every: float = 0, up_to_id: int | None = None
    ) -> float:
        """Until no message is pending (of those up to `up_to_id`); returns the time it happened."""
        from portal.relay.models import MessageStatus, OutboxMessage

        deadline = time.monotonic() + timeout
        shown = time.monotonic()
        pending_messages = OutboxMessage.objects.filter(status=MessageStatus.PENDING)
        if up_to_id is not None:
            pending_messages = pending_messages.filter(pk__lte=up_to_id)
        while True:
            pending = pending_messages.count()
            if not pending:
                return time.time()
            if time.monotonic() > deadline:
                say(f"  still {pending} messages pending after {timeout:.0f} s: giving up waiting")
                return time.time()
            if progress_every and time.monotonic() - shown >= progress_every:
                say(f"  {pending} pending")
                shown = time.monotonic()
            processes.check_alive()
            time.sleep(0.2)

    def set_behaviour(self, **changes: object) -> None:
        response = self.http.post(f"{self.setup.sandbox_url}/comportement.json", json=changes)
        response.raise_for_status()

    def read_sandbox(self) -> None:
        """Every log the sandbox accepted since the last read, in its order."""
        while True:
            response = self.http.get(
                f"{self.setup.sandbox_url}/logs.json", params={"since": self.sandbox_sequence, "limit": 5000}
            )
            response.raise_for_status()
            body = response.json()
            self.logs.extend(body["logs"])
            self.sandbox_sequence = body["lastSequence"]
            if not body["more"]:
                return

    def messages(self, after_id: int = 0, up_to_id: int | None = None) -> list[dict]:
        from portal.relay.models import OutboxMessage

        rows = OutboxMessage.objects.filter(pk__gt=after_id)
        if up_to_id is not None:
            rows = rows.filter(pk__lte=up_to_id)
        return list(
            rows.order_by("order_id", "sequence").values(
                "pk", "event_id", "order__reference", "sequence", "payload", "delivered_at", "status"
            )
        )

    def first_receipts(self) -> dict[tuple[str, str], float]:
        """(reference, payload) -> when the platform first received it."""
        receipts: dict[tuple[str, str], float] = {}
        for log in self.logs:
            key = (log["reference"], canonical(log["raw"]))
            receipts.setdefault(key, datetime.fromisoformat(log["received_at"]).timestamp())
        return receipts

    # --- Phase 1 --------------------------------------------------------------------

    def phase_latency(self, processes: Processes, rate: float) -> None:
        duration = self.arguments.duration
        total = int(rate * duration)
        say(f"\n== Phase 1: {total} changes at {rate:g}/s for {duration:g} s over {len(self.orders)} orders")
        before = self.last_message_id()
        cpu_before = cpu_seconds(processes, DATABASES)
        start = time.monotonic()
        late = 0
        for number in range(total):
            wait = start + number / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            elif wait < -0.05:
                late += 1
            self.change(self.orders[number % len(self.orders)])
        elapsed = time.monotonic() - start
        say(f"  made in {elapsed:.1f} s ({total / elapsed:.1f}/s; {late} changes more than 50 ms behind schedule)")
        self.wait_until_delivered(processes, timeout=120)
        # The bench process makes the changes through the services: its CPU is
        # the portal's web side; the relay's is the workers' and the beat's.
        say("  " + cpu_per_message(cpu_spent(cpu_before, cpu_seconds(processes, DATABASES)), total, elapsed))
        self.read_sandbox()
        messages = self.messages(after_id=before)
        receipts = self.first_receipts()
        to_platform = []
        to_relay = []
        for message in messages:
            committed = self.commits.get(message["event_id"])
            received = receipts.get((message["order__reference"], canonical(message["payload"])))
            if committed is None:
                continue
            if received is not None:
                to_platform.append(received - committed)
            if message["delivered_at"] is not None:
                to_relay.append(message["delivered_at"].timestamp() - committed)
        to_platform.sort()
        to_relay.sort()
        say(f"  commit -> platform's acknowledgement ({len(to_platform)} of {len(messages)} messages):")
        say(
            "    p50 "
            + ms(percentile(to_platform, 0.50))
            + "   p95 "
            + ms(percentile(to_platform, 0.95))
            + "   p99 "
            + ms(percentile(to_platform, 0.99))
            + "   max "
            + ms(to_platform[-1] if to_platform else float("nan"))
        )
        say(
            "  commit -> relay records it delivered:\n    p50 "
            + ms(percentile(to_relay, 0.50))
            + "   p99 "
            + ms(percentile(to_relay, 0.99))
        )
        p50, p99 = percentile(to_platform, 0.5), percentile(to_platform, 0.99)
        if rate >= 50:
            say(f"  goal at {rate:g}/s, p99 <= 100 ms: {'met' if p99 <= 0.1 else 'MISSED'}")
        else:
            goals = f"p50 <= 100 ms: {'met' if p50 <= 0.1 else 'MISSED'}; p99 <= 1 s: {'met' if p99 <= 1 else 'MISSED'}"
            say(f"  goal at {rate:g}/s, {goals}")
        say("  " + verdict(check(messages, self.logs)))

    # --- Phase 2 --------------------------------------------------------------------

    def raw_rate(self, processes: Processes) -> float:
        """What the sandbox accepts from plain HTTP: valid logs, shaped like the
        relay's, posted by as many threads as the relay has worker processes."""
        posts, threads = self.arguments.raw_posts, self.relay_processes
        from portal.relay.models import OutboxMessage

        template = OutboxMessage.objects.order_by("pk").values_list("payload", flat=True).first()
        response = self.http.post(
            f"{self.setup.sandbox_url}/oauth/token",
            data={"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
        )
        response.raise_for_status()
        headers = {
            "authorization": f"Bearer {response.json()['access_token']}",
            "accept": "application/json+hal",
            "content-type": "application/json; charset=utf-8",
        }
        round_number = getattr(self, "_raw_rounds", 0) + 1
        self._raw_rounds = round_number
        bodies = [
            json.dumps(
                {
                    **template,
                    "reference": f"RAW{round_number}-{number % len(self.orders):05d}",
                    "description": f"Charge brute {number}",
                },
                ensure_ascii=False,
            ).encode()
            for number in range(posts)
        ]
        url = f"{self.setup.sandbox_url}/api/operations/v2/interventions/logs"
        with httpx.Client(timeout=30, headers=headers, limits=httpx.Limits(max_connections=threads)) as client:

            def post(body: bytes) -> int:
                return client.post(url, content=body).status_code

            cpu_before = cpu_seconds(processes, DATABASES)
            start = time.perf_counter()
            with ThreadPoolExecutor(threads) as pool:
                codes = Counter(pool.map(post, bodies))
            elapsed = time.perf_counter() - start
            spent = cpu_spent(cpu_before, cpu_seconds(processes, DATABASES))
        rate = posts / elapsed
        say(
            f"\n== Plain HTTP load generator: {posts} posts, {threads} threads: {rate:.0f} logs/s "
            f"(answers: {dict(codes)})"
        )
        say("  " + cpu_per_message(spent, posts, elapsed))
        self.read_sandbox()  # past its logs
        processes.check_alive()
        return rate

    def phase_backlog(self, processes: Processes) -> None:
        from portal.relay.models import DeliveryAttempt

        count = self.arguments.backlog
        say(f"\n== Phase 2: backlog of {count} messages, platform down, then back")
        self.backlog_after = self.last_message_id()
        attempts_before = DeliveryAttempt.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        self.set_behaviour(down=True)
        down_at = time.monotonic()
        start = time.monotonic()
        for number in range(count):
            self.change(self.orders[number % len(self.orders)])
            if (number + 1) % 2000 == 0:
                say(f"  {number + 1} changes made")
        created = time.monotonic() - start
        self.backlog_up_to = self.last_message_id()
        say(f"  made {count} changes in {created:.0f} s ({count / created:.0f}/s); platform down for {created:.0f} s")
        cpu_before = cpu_seconds(processes, DATABASES)
        self.set_behaviour(down=False)
        self.up_at = time.time()
        say(f"  platform back after {time.monotonic() - down_at:.0f} s down; draining...")
        self.drained_at = self.wait_until_delivered(processes, timeout=900, progress_every=10)
        spent = cpu_spent(cpu_before, cpu_seconds(processes, DATABASES))
        say("  " + cpu_per_message(spent, count, self.drained_at - self.up_at))
        self.read_sandbox()
        outcomes = Counter(
            DeliveryAttempt.objects.filter(pk__gt=attempts_before).values_list("outcome", flat=True).order_by()
        )
        say(f"  delivery attempts during the phase: {dict(outcomes)}")

    def report_backlog(self, raw_rate: float, *, after: float) -> None:
        """`raw_rate`: the plain generator's best run (the goal's measure); `after`:
        its run right after the drain, against the sandbox as the drain left it
        (the first run meets a sandbox with 10,000 fewer logs: 201 against 137
        logs/s in one run), shown beside it."""
        messages = self.messages(after_id=self.backlog_after, up_to_id=self.backlog_up_to)
        receipts = self.first_receipts()
        received = sorted(
            receipts[key]
            for message in messages
            if (key := (message["order__reference"], canonical(message["payload"]))) in receipts
        )
        say(f"\n== Backlog drain ({len(messages)} messages)")
        if not received:
            say("  nothing received")
            return
        first, last = received[0] - self.up_at, received[-1] - self.up_at
        drain_rate = len(received) / last if last > 0 else float("inf")
        steady = len(received) / (last - first) if last > first else float("inf")
        say(f"  first delivered {first:.1f} s after the platform came back, last after {last:.1f} s")
        say(f"  drain rate {drain_rate:.0f} msg/s (from the platform's return; {steady:.0f}/s from the first delivery)")
        say(f"  plain HTTP rate (best of two) {raw_rate:.0f} logs/s; ratio {drain_rate / raw_rate:.0%}")
        say(f"  (right after the drain, against the same sandbox: {after:.0f} logs/s; ratio {drain_rate / after:.0%})")
        say(f"  goal >= 90 %: {'met' if drain_rate >= raw_rate * 0.9 else 'MISSED'}")
        say("  " + verdict(check(messages, self.logs)))

    def report_totals(self, processes: Processes) -> None:
        say("\n== Every message of the run")
        # The portal may have made messages of its own since the drain (the
        # reconciliation, every 5 minutes, corrects the orders' descriptions
        # from the sandbox's operations, which took them from the first logs):
        # those made until now are delivered before the count. One made after
        # (the bench stops the workers next) is not the run's: once, a
        # reconciliation's message made while the sandbox was read counted as lost.
        up_to = self.last_message_id()
        self.wait_until_delivered(processes, timeout=120, up_to_id=up_to)
        self.read_sandbox()
        say("  " + verdict(check(self.messages(up_to_id=up_to), self.logs)))


# The PostgreSQL databases whose backends' CPU is counted (the portal's, the sandbox's).
DATABASES = ("portal_bench", "portal_bench_sandbox")


def cpu_per_message(spent: dict[str, float], count: int, elapsed: float) -> str:
    """Who spent the CPU of a phase, per message (the bench process counts the
    generator's threads, or its own polling during the drain)."""
    total = sum(spent.values())
    parts = [
        f"{name} {seconds / count * 1000:.2f}"
        for name, seconds in sorted(spent.items(), key=lambda item: -item[1])
        if seconds >= 0.005
    ]
    return (
        f"CPU per message (ms): {', '.join(parts)}; total {total / count * 1000:.2f} ms "
        f"({total / elapsed:.2f} CPUs busy of {os.cpu_count()})"
    )


def canonical(payload: dict) -> str:
    return json.dumps(payload, sort_keys=True, ensure_ascii=False)


def check(messages: list[dict], logs: list[dict]) -> dict[str, int]:
    """Lost, doubled and out of order, per order, comparing the outbox with
    what the platform received (in the platform's order)."""
    expected: dict[str, list[str]] = defaultdict(list)
    for message in messages:  # by order, then sequence
        expected[message["order__reference"]].append(canonical(message["payload"]))
    received: dict[str, list[str]] = defaultdict(list)
    for log in logs:
        if log["reference"] in expected:
            received[log["reference"]].append(canonical(log["raw"]))
    figures = Counter(messages=len(messages), lost=0, doubled=0, orders_out_of_order=0)
    for reference, keys in expected.items():
        wanted = set(keys)
        got = [key for key in received[reference] if key in wanted]
        counts = Counter(got)
        figures["lost"] += sum(1 for key in keys if not counts[key])
        figures["doubled"] += sum(number - 1 for number in counts.values())
        if list(dict.fromkeys(got)) != [key for key in keys if counts[key]]:
            figures["orders_out_of_order"] += 1
    figures["not_delivered"] = sum(1 for message in messages if message["status"] != "delivered")
    return dict(figures)


def verdict(figures: dict[str, int]) -> str:
    return (
        f"{figures['messages']} messages: {figures['lost']} lost, {figures['doubled']} doubled, "
        f"{figures['orders_out_of_order']} orders out of order, {figures['not_delivered']} not delivered"
    )


if __name__ == "__main__":
    sys.exit(main())
