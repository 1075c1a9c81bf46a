"""Nexxio's relay over Google's Pub/Sub emulator: PostgreSQL, Redis, one Celery
worker (two processes) with its beat, and the emulator, all on this machine.

1. Latency: changes made through the services at 20/s for 60 s over 200
   orders (each in its own transaction); for each, the time from its commit
   to the message read on a subscription of the topic (a streaming-pull
   subscriber in this process, same clock). Goals: p50 <= 100 ms, p99 <= 1 s.
2. Backlog: with the worker stopped (the outage), 10,000 messages are
   recorded; the worker starts again and the drain is timed until the last
   message is read on the subscription. A plain publisher (the same client,
   the same concurrency: 2 threads, each with as many publishes in flight as
   a relay batch, RELAY_BATCH; the same message sizes) is timed on the same
   emulator in the same run. Goal: the drain >= 50 % of the plain rate.
Every message is checked: none lost; each order's messages in sequence.

    make bench BENCH_ARGS=--quick           # 10 s of changes, a 1,000 backlog
    .venv/bin/python bench/nexxio.py        # the full run

It drops and recreates the database `nexxio_bench` on BENCH_POSTGRES_URL
(default postgres://postgres@127.0.0.1:5432) and uses Redis database 10 of
NEXXIO_BENCH_REDIS_URL (default redis://127.0.0.1:6379/10), emptied before and
after. Without PostgreSQL, Redis or gcloud it says so and stops.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import redis
from _common import (
    BASE_DIR,
    VENV_BIN,
    Processes,
    StandInAutovacuum,
    ms,
    percentile,
    postgres_answers,
    recreate_database,
)

SECRET_KEY = "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
PROJECT = "banc-nexxio"
TOPIC, SUBSCRIPTION = "portail-sortant", "gestionnaire"


def say(text: str = "") -> None:
    print(text, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 s of changes and a 1,000-message backlog")
    arguments, _ = parser.parse_known_args()  # BENCH_ARGS goes to every script: the others' options are not ours
    seconds, backlog = (10, 1000) if arguments.quick else (60, 10_000)
    postgres_url = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
    redis_url = os.environ.get("NEXXIO_BENCH_REDIS_URL", "redis://127.0.0.1:6379/10")
    if problem := postgres_answers(postgres_url):
        say(f"Nexxio benchmark skipped: needs PostgreSQL at {postgres_url} ({problem})")
        return 0
    try:
        redis.Redis.from_url(redis_url, socket_timeout=3).flushdb()
    except redis.RedisError as error:
        say(f"Nexxio benchmark skipped: needs Redis at {redis_url} ({error})")
        return 0
    sys.path.insert(0, str(BASE_DIR))
    from tests.pubsub_emulator import Emulator, unavailable

    if reason := unavailable():
        say(f"Nexxio benchmark skipped: {reason}")
        return 0
    folder = Path(tempfile.mkdtemp(prefix="bench-nexxio-"))
    say(f"Logs in {folder}")
    environment = {
        **os.environ,
        "SECRET_KEY": SECRET_KEY,
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": str(BASE_DIR),
        "DEBUG": "0",
        "DATABASE_URL": recreate_database(postgres_url, "nexxio_bench"),
        "REDIS_URL": redis_url,
        "VAR_DIR": str(folder / "portal"),
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "portal.settings",
    }
    emulator = Emulator()
    try:
        emulator.start()
        vacuum = StandInAutovacuum(environment["DATABASE_URL"], ["relay_outboxmessage"])
        say(vacuum.describe())
        with Processes(folder) as processes, vacuum:
            run(environment, processes, emulator, seconds=seconds, backlog=backlog)
    except KeyboardInterrupt:
        say("\nInterrupted; every process stopped.")
        return 130
    finally:
        emulator.close()
        redis.Redis.from_url(redis_url, socket_timeout=3).flushdb()
    return 0


class Reader:
    """The manager's side: a streaming pull on the topic's subscription; the
    time each message is read, by its messageId, and its order per key."""

    def __init__(self, emulator, subscription: str) -> None:
        _, self.subscriber = emulator.clients()
        self.read_at: dict[str, float] = {}
        self.copies: dict[str, int] = defaultdict(int)
        self.per_key: dict[str, list[int]] = defaultdict(list)
        self.lock = threading.Lock()
        self.future = self.subscriber.subscribe(subscription, self.received)

    def received(self, message) -> None:
        now = time.time()
        message_id = message.attributes.get("messageId", "")
        with self.lock:
            self.read_at.setdefault(message_id, now)
            self.copies[message_id] += 1
            if message.ordering_key:
                self.per_key[message.ordering_key].append(int(message_id.rsplit("-", 1)[-1]))
        message.ack()

    def wait_for(self, ids: set[str], timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if ids <= self.read_at.keys():
                    return max(self.read_at[i] for i in ids)
            time.sleep(0.05)
        missing = len(ids - self.read_at.keys())
        raise RuntimeError(f"{missing} message(s) never read on the subscription within {timeout:.0f} s")

    def close(self) -> None:
        self.future.cancel()


def run(environment: dict[str, str], processes: Processes, emulator, *, seconds: int, backlog: int) -> None:
    names = ("DEBUG", "DATABASE_URL", "REDIS_URL", "VAR_DIR", "SECRET_KEY", "LOG_LEVEL", "DJANGO_SETTINGS_MODULE")
    os.environ.update({name: environment[name] for name in names})
    processes.run("migrate", [sys.executable, "manage.py", "migrate", "--noinput"], environment)
    import django

    django.setup()
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    from orders.states import State
    from portal.models import Role
    from tests import factories

    emulator.create(PROJECT, TOPIC, SUBSCRIPTION, ack_deadline=60)
    client = factories.make_client(name="Bailleur Nexxio du banc")
    contract = factories.make_contract(client, reference="NEXXIO-BENCH")
    service_code = factories.make_service_code(contract)
    asset = factories.make_asset(client)
    technician = factories.make_user("technicien-banc", Role.TECHNICIAN, password=None, email="")
    say("Creating 200 orders in progress (before the connection: not relayed)...")
    orders = [
        factories.bring_to(
            factories.register_order(
                contract,
                reference=f"NX-BENCH-{n:04d}",
                asset=asset,
                service_code=service_code,
                notified_at=None,
                technician=technician,
            ),
            State.IN_PROGRESS,
            technician,
            appointment=timezone.now() + timedelta(days=1),
        )
        for n in range(200)
    ]
    connection = factories.make_connection(
        client,
        secret=None,
        kind="pubsub",
        gcp_project=PROJECT,
        pubsub_topic=TOPIC,
        pubsub_subscription="",
        pubsub_emulator_host=emulator.host,
        timeout_seconds=10,
    )
    reader = Reader(emulator, f"projects/{PROJECT}/subscriptions/{SUBSCRIPTION}")
    Path(environment["VAR_DIR"]).mkdir(parents=True, exist_ok=True)

    def start_relay(round_: int) -> list:
        """Two workers of one process each, and the beat, as bench/relay.py runs them."""
        started = [
            processes.start(
                f"worker-{round_}-{number}",
                [
                    str(VENV_BIN / "celery"),
                    "-A",
                    "portal",
                    "worker",
                    "--concurrency=1",
                    "--loglevel=warning",
                    f"--hostname=nexxio-{round_}-{number}@%h",
                ],
                environment,
            )
            for number in (1, 2)
        ]
        schedule = Path(environment["VAR_DIR"]) / f"beat-{round_}"
        started.append(
            processes.start(
                f"beat-{round_}",
                [str(VENV_BIN / "celery"), "-A", "portal", "beat", "--loglevel=warning", f"--schedule={schedule}"],
                environment,
            )
        )
        from portal.celery import app

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(app.control.ping(timeout=1)) < 2:
            processes.check_alive()
        return started

    relay = start_relay(1)
    say(f"Relay: 2 Celery workers x 1 process, one beat; batch {settings.RELAY_BATCH}; emulator {emulator.host}.")

    # 1. Latency at 20 changes/s.
    from django.db import transaction

    from orders import services
    from portal.relay import outbox

    commits: dict[str, float] = {}
    interval, started = 1 / 20, time.monotonic()
    for number in range(seconds * 20):
        time.sleep(max(0.0, started + number * interval - time.monotonic()))
        order = orders[number % len(orders)]
        stamp: list[float] = []
        with transaction.atomic():
            transaction.on_commit(lambda stamp=stamp: stamp.append(time.time()))
            services.set_progress(order, actor=technician, progress=order.progress % 99 + 1)
        message_id = outbox.last_message_id(order.pk)
        if message_id is not None and stamp:
            commits[f"portail-{message_id}"] = stamp[0]
        order.refresh_from_db()
    reader.wait_for(set(commits), 120)
    latencies = sorted(reader.read_at[i] - commits[i] for i in commits)
    say(f"Latency, commit -> read on the subscription, {len(latencies)} messages at 20 changes/s for {seconds} s:")
    say(f"  p50 {ms(percentile(latencies, 0.5))}   p99 {ms(percentile(latencies, 0.99))}   max {ms(latencies[-1])}")
    say(
        f"  goals p50 <= 100 ms: {'met' if percentile(latencies, 0.5) <= 0.1 else 'NOT met'}; "
        f"p99 <= 1 s: {'met' if percentile(latencies, 0.99) <= 1.0 else 'NOT met'}"
    )

    # 2. The backlog: the worker stopped, messages recorded, the worker back.
    for process in relay:
        processes.stop(process)
    processes.started = [entry for entry in processes.started if entry[1] not in relay]
    from portal.relay.models import DeliveryAttempt, MessageKind, MessageStatus, OutboxMessage

    payload = OutboxMessage.objects.filter(connection=connection).order_by("-pk").values_list("payload", flat=True)[0]
    size = len(json.dumps(payload).encode())
    ids: set[str] = set()
    for start in range(0, backlog, 100):
        with transaction.atomic():
            for number in range(start, min(start + 100, backlog)):
                order = orders[number % len(orders)]
                message = outbox.record(
                    connection, kind=MessageKind.INTERVENTION_LOG, payload=payload, order_id=order.pk
                )
                ids.add(f"portail-{message.pk}")
    # The outage lost the queued tasks too (a broker restart): the relay finds them in the database.
    redis.Redis.from_url(environment["REDIS_URL"]).flushdb()
    OutboxMessage.objects.filter(status=MessageStatus.PENDING).update(queued_at=None)
    say(f"Backlog: {len(ids)} messages of {size} bytes recorded while the relay was down.")
    began = time.time()
    start_relay(2)
    from django.db.models import Min

    from portal.relay import tasks

    tasks.sweep_outbox.delay()  # what the beat does within 5 s
    last = reader.wait_for(ids, 1800)
    pks = [int(i.rsplit("-", 1)[-1]) for i in ids]
    first = DeliveryAttempt.objects.filter(message_id__in=pks).aggregate(first=Min("started_at"))["first"]
    drain_seconds = last - first.timestamp()
    drain_rate = len(ids) / drain_seconds
    say(
        f"  drained in {drain_seconds:.1f} s from the first send ({drain_rate:.0f} messages/s); "
        f"{last - began:.1f} s with the relay's start"
    )

    # The plain publisher: same client, 2 threads x RELAY_BATCH in flight, same sizes.
    from portal.relay import pubsub

    data = json.dumps({**payload, "kind": "intervention_log"}).encode()
    publisher = pubsub.publisher_for(connection)
    topic = pubsub.topic_path(connection)
    batch = settings.RELAY_BATCH
    plain_ids = [f"plain-{n}" for n in range(len(ids))]

    def publish(thread: int) -> None:
        mine = plain_ids[thread::2]
        for start in range(0, len(mine), batch):
            futures = [
                publisher.publish(topic, data, ordering_key=f"plain:{(start + k) % 200}:{thread}", messageId=i)
                for k, i in enumerate(mine[start : start + batch])
            ]
            for future in futures:
                future.result(timeout=60)

    began = time.time()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(publish, range(2)))
    last = reader.wait_for(set(plain_ids), 600)
    plain_rate = len(plain_ids) / (last - began)
    ratio = drain_rate / plain_rate
    say(
        f"  plain publisher: {plain_rate:.0f} messages/s; the relay's drain is {ratio:.0%} of it "
        f"(goal >= 50 %: {'met' if ratio >= 0.5 else 'NOT met'})"
    )

    # Checks: none lost (read above), none left pending, each order's messages in order on the bus.
    pending = OutboxMessage.objects.filter(status=MessageStatus.PENDING).count()
    sequences = dict(OutboxMessage.objects.values_list("pk", "sequence"))
    disordered = sum(
        1
        for key, message_ids in reader.per_key.items()
        if key.startswith("order:")
        and [sequences[m] for m in dict.fromkeys(message_ids)] != sorted(sequences[m] for m in set(message_ids))
    )
    copies = sum(1 for i, count in reader.copies.items() if i.startswith("portail-") and count > 1)
    say(f"  checks: {pending} pending, {disordered} order(s) out of sequence, {copies} message(s) read twice")
    reader.close()


if __name__ == "__main__":
    sys.exit(main())
