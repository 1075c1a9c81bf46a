"""The relay with a real Celery worker on Redis and PostgreSQL: a change made
through a service reaches the sandbox (served over real HTTP by the live
server) with no test calling a task, and every fault ends with each change on
the platform exactly once and in order: the worker killed mid-delivery, the
broker's queued task lost, the platform down for a while.

The worker is `celery -A portal worker --beat`, the default prefork pool as in
production, in a process group of its own, on the test database. Each run
takes a Redis database of its own (`broker_url`), and the test process
publishes there too, so that tasks left on the suite's Redis by other tests or
by a developer's `make run` never reach this worker, and purging it harms no
one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from http import HTTPStatus
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import pytest
import redis
from django.db import connection as database
from django.utils import timezone
from kombu import pools

from orders import planning, services
from orders.models import Order
from portal.celery import app as celery_app
from portal.models import User
from portal.relay.models import Connection, DeliveryAttempt, MessageStatus
from portal.sandbox import services as sandbox_services

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

BASE_DIR = Path(__file__).resolve().parent.parent
CELERY = Path(sys.executable).with_name("celery")
CLIENT_ID = "portail-tests-relais"
CLIENT_SECRET = "secret-des-tests-du-relais-42"
# A Redis database in use by a run of these tests (expires, so that a run that
# died does not keep it forever), and one that such a run used (kept, so that
# what a dead run left there may be wiped by the next).
LOCK = "portal:private-database:lock"  # shared with bench/_common.py
MARKER = "portal-tests:relay-worker:database"
# Worker settings that make the faults quick to recover from. In production the
# lease outlasts any delivery; shorter, a slow send could be taken over and doubled.
LEASE_SECONDS = "8"
REQUEUE_SECONDS = "5"
# The sweep runs every 5 s (15 s before): a recovery takes up to two of its rounds, with room.
RECOVERY_TIMEOUT = 40.0


# --- The broker -----------------------------------------------------------------


def claim_redis_database(base_url: str) -> str:
    """The URL of a Redis database no other run is using, emptied. A database
    is taken only if it is empty or was a previous run's (so a developer's
    data in another database is never wiped)."""
    parts = urlsplit(base_url)
    own = parts.path.strip("/") or "0"
    token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"
    for number in range(15, 0, -1):
        if str(number) == own:
            continue
        url = parts._replace(path=f"/{number}").geturl()
        candidate = redis.Redis.from_url(url, socket_timeout=5)
        if not candidate.set(LOCK, token, nx=True, ex=900):
            continue  # another run is using it
        if candidate.dbsize() > 1 and not candidate.exists(MARKER):
            candidate.delete(LOCK)  # someone else's data
            continue
        for key in candidate.scan_iter(count=1000):
            if key.decode() != LOCK:
                candidate.delete(key)
        candidate.set(MARKER, token)
        return url
    raise AssertionError("No free Redis database (1 to 15) for the worker tests.")


def use_broker(url: str, transport_options: dict) -> None:
    """Point this process's Celery app at `url`. The app read the settings at
    import and keeps connection pools made from them: close and drop those, so
    that the next `delay()` (the services' on-commit queueing) connects anew.
    They come from kombu's registry, keyed by the broker's URL, which would
    hand a closed pool to the next module claiming the same Redis database
    (tests/test_nexxio_worker.py uses this fixture too): emptied with them."""
    pools.reset()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    celery_app.conf.broker_url = url
    celery_app.conf.broker_transport_options = transport_options


@pytest.fixture(scope="module")
def broker_url() -> Iterator[str]:
    base_url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(base_url, socket_timeout=2).ping()
    except redis.RedisError as error:
        if os.environ.get("REQUIRE_POSTGRES"):
            pytest.fail(f"The worker tests need Redis at {base_url}: {error}")
        pytest.skip(f"needs Redis ({base_url}: {error})")
    url = claim_redis_database(base_url)
    saved = (celery_app.conf.broker_url, celery_app.conf.broker_transport_options)
    use_broker(url, {"visibility_timeout": 3600})
    yield url
    use_broker(*saved)
    redis.Redis.from_url(url).flushdb()  # the marker and the lock too: an empty database is free


# --- The worker -----------------------------------------------------------------


def database_url() -> str:
    """The test database, which the worker must use (not the one in DATABASE_URL)."""
    settings = database.settings_dict
    credentials = quote(settings["USER"] or "", safe="")
    if settings["PASSWORD"]:
        credentials += ":" + quote(settings["PASSWORD"], safe="")
    host = settings["HOST"] or "127.0.0.1"
    port = settings["PORT"] or 5432
    return f"postgres://{credentials}@{host}:{port}/{quote(settings['NAME'], safe='')}"


class Workers:
    """Celery workers started by a test; each in its own process group, so that
    a kill reaches its pool processes and its beat too."""

    def __init__(self, environment: dict[str, str], folder: Path) -> None:
        self.environment = environment
        self.folder = folder
        self.started: list[tuple[subprocess.Popen, Path]] = []

    def start(self, **settings: str) -> subprocess.Popen:
        number = len(self.started) + 1
        name = f"relay-test-{number}@{socket.gethostname()}"
        log_path = self.folder / f"worker-{number}.log"
        environment = {**self.environment, "VAR_DIR": str(self.folder / f"var-{number}"), **settings}
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    str(CELERY),
                    "-A",
                    "portal",
                    "worker",
                    "--beat",
                    "--concurrency=2",
                    "--loglevel=info",
                    f"--hostname={name}",
                    # Nothing to learn from other workers: start faster.
                    "--without-mingle",
                    "--without-gossip",
                ],
                cwd=BASE_DIR,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started.append((process, log_path))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"The worker stopped (exit status {process.returncode}).\n{self.logs()}")
            if celery_app.control.ping(destination=[name], timeout=0.5):
                return process
        pytest.fail(f"The worker did not answer within 60 s.\n{self.logs()}")

    def kill(self, process: subprocess.Popen) -> None:
        """SIGKILL, as the OOM killer or a lost machine would: nothing is cleaned up."""
        with contextlib.suppress(ProcessLookupError):  # already gone
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop_all(self) -> None:
        for process, _ in self.started:
            self.kill(process)

    def logs(self, lines: int = 150) -> str:
        parts = []
        for number, (_, path) in enumerate(self.started, start=1):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- worker {number} ({path}) ---\n" + "\n".join(text))
        return "\n".join(parts)


@pytest.fixture
def workers(broker_url, live_server, tmp_path) -> Iterator[Workers]:
    # Depends on live_server (and so on the test database): stopped before
    # the database is flushed, which the worker's connections would block.
    environment = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": broker_url,
        "DEBUG": "1",
        "PYTHONUNBUFFERED": "1",
        "RELAY_LEASE_SECONDS": LEASE_SECONDS,
        "RELAY_REQUEUE_SECONDS": REQUEUE_SECONDS,
    }
    pool = Workers(environment, tmp_path)
    yield pool
    pool.stop_all()


# --- The platform ---------------------------------------------------------------


@pytest.fixture
def sandbox_url(live_server) -> str:
    return f"{live_server.url}/sandbox"


@pytest.fixture
def platform(order, sandbox_url) -> Connection:
    """The order's client connected to the sandbox. After the order, so that
    only the changes a test makes are relayed."""
    sandbox_services.setup_client(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, label="Tests du relais")
    connection = Connection(
        client=order.contract.client,
        kind="intent",
        auth_base_url=sandbox_url,
        api_base_url=f"{sandbox_url}/api",
        oauth_client_id=CLIENT_ID,
        timeout_seconds=10,
    )
    connection.client_secret = CLIENT_SECRET
    connection.save()
    return connection


def set_behaviour(sandbox_url: str, **changes) -> None:
    response = httpx.post(f"{sandbox_url}/comportement.json", json=changes, timeout=10)
    assert response.status_code == HTTPStatus.OK, response.text


def received_logs(sandbox_url: str, order: Order) -> list[dict]:
    response = httpx.get(f"{sandbox_url}/logs.json", params={"reference": order.reference}, timeout=10)
    assert response.status_code == HTTPStatus.OK
    return response.json()["logs"]


def make_changes(order: Order, actor: User) -> None:
    """Three changes, three messages: pris en compte, planifié, en cours."""
    services.acknowledge_order(order, actor=actor)
    planning.plan_order(order, actor=actor, appointment=timezone.now() + timedelta(days=1))
    services.start_work(order, actor=actor)


def wait_until(condition: Callable[[], bool], timeout: float, workers: Workers, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"Not within {timeout:.0f} s: {what}.\n{workers.logs()}")
        time.sleep(0.2)


def wait_for_delivery(order: Order, sandbox_url: str, workers: Workers, *, timeout: float) -> list[dict]:
    """Until the platform has every message of the order and the relay knows it;
    then what the platform received for the order."""
    expected = order.outbox_messages.count()

    def done() -> bool:
        undelivered = order.outbox_messages.exclude(status=MessageStatus.DELIVERED).exists()
        return not undelivered and len(received_logs(sandbox_url, order)) >= expected

    wait_until(done, timeout, workers, f"the {expected} messages of {order.reference} delivered")
    return received_logs(sandbox_url, order)


def assert_once_and_in_order(order: Order, logs: list[dict], workers: Workers) -> None:
    sent = list(order.outbox_messages.order_by("sequence").values_list("payload", flat=True))
    assert [log["raw"] for log in logs] == sent, workers.logs()


# --- The tests ------------------------------------------------------------------


def test_a_change_made_through_a_service_reaches_the_platform_without_calling_a_task(
    platform, order, technician, sandbox_url, workers
):
    workers.start()

    make_changes(order, technician)

    logs = wait_for_delivery(order, sandbox_url, workers, timeout=30)
    assert [(log["status"], log["event"]) for log in logs] == [
        ("open", "acknowledged"),
        ("open", "planned"),
        ("pending", "start"),
    ]
    assert_once_and_in_order(order, logs, workers)


def test_a_worker_killed_mid_delivery_leaves_each_change_on_the_platform_once_and_in_order(
    platform, order, technician, sandbox_url, workers
):
    first_worker = workers.start()
    services.acknowledge_order(order, actor=technician)
    wait_for_delivery(order, sandbox_url, workers, timeout=30)  # a first change goes through
    # The platform stores the next log at once and answers 5 s later: the worker is waiting.
    set_behaviour(sandbox_url, timeout_after_store_rate=1, timeout_after_store_seconds=5)
    planning.plan_order(order, actor=technician, appointment=timezone.now() + timedelta(days=1))
    message = order.outbox_messages.order_by("sequence").last()
    wait_until(lambda: len(received_logs(sandbox_url, order)) == 2, 10, workers, "the log stored by the platform")
    workers.kill(first_worker)
    set_behaviour(sandbox_url, timeout_after_store_rate=0)
    services.start_work(order, actor=technician)

    workers.start()

    logs = wait_for_delivery(order, sandbox_url, workers, timeout=RECOVERY_TIMEOUT)
    assert_once_and_in_order(order, logs, workers)
    # The killed worker recorded nothing; once its lease expired the next claim
    # read the operation back and found the log there, instead of sending it again.
    assert list(message.attempts_log.values_list("outcome", flat=True)) == [DeliveryAttempt.Outcome.ALREADY_THERE]


def test_tasks_deleted_from_the_broker_are_queued_again_by_the_sweep(platform, order, technician, sandbox_url, workers):
    # No worker yet: the first change's task waits on Redis (the two changes
    # behind it queue none: the task that delivers the first goes on with them).
    make_changes(order, technician)
    assert celery_app.control.purge() == 1

    workers.start()

    logs = wait_for_delivery(order, sandbox_url, workers, timeout=RECOVERY_TIMEOUT)
    assert_once_and_in_order(order, logs, workers)


def test_changes_made_while_the_platform_is_down_arrive_once_and_in_order_when_it_is_back(
    platform, order, technician, sandbox_url, workers
):
    # The production re-queue delay: a retry must come after its backoff (seconds),
    # not a minute later.
    workers.start(RELAY_REQUEUE_SECONDS="60")
    set_behaviour(sandbox_url, down=True)

    make_changes(order, technician)

    first = order.outbox_messages.order_by("sequence").first()
    wait_until(
        lambda: first.attempts_log.filter(status_code=HTTPStatus.SERVICE_UNAVAILABLE).count() >= 2,
        RECOVERY_TIMEOUT,
        workers,
        "the first message tried twice while the platform is down",
    )
    assert received_logs(sandbox_url, order) == []
    set_behaviour(sandbox_url, down=False)

    logs = wait_for_delivery(order, sandbox_url, workers, timeout=RECOVERY_TIMEOUT)
    assert_once_and_in_order(order, logs, workers)


def test_a_worker_killed_while_it_sends_one_batch_and_records_another_leaves_each_change_once_and_in_order(
    platform, order, technician, sandbox_url, workers
):
    """A backlog drains with two batches per task (one sent by the sender
    thread while the other is recorded): killed in the middle of that, nothing
    is lost, doubled or reordered."""
    from tests import factories

    orders = [order] + [
        factories.register_order(
            order.contract,
            reference=f"OPH57_2411220931{number:02d}",
            asset=order.asset,
            service_code=order.service_code,
            technician=technician,
        )
        for number in range(8)
    ]
    for each in orders:  # queued on Redis, no worker yet: a backlog of 27 messages over 9 orders
        make_changes(each, technician)
    # The platform stores each log at once and answers a second later: sends are out when the kill comes.
    set_behaviour(sandbox_url, timeout_after_store_rate=1, timeout_after_store_seconds=1)
    # A batch's lease covers its sends' timeouts one after the other (and the
    # batch sent before it): a short timeout keeps the leases the kill leaves
    # behind short (at most 8 + 3 x 6 + 2 x 6 s here).
    Connection.objects.filter(pk=platform.pk).update(timeout_seconds=3)
    first_worker = workers.start(RELAY_BATCH="3")
    wait_until(
        lambda: sum(len(received_logs(sandbox_url, each)) for each in orders) >= 5,
        30,
        workers,
        "five logs stored by the platform",
    )
    workers.kill(first_worker)
    set_behaviour(sandbox_url, timeout_after_store_rate=0)

    workers.start(RELAY_BATCH="3")

    for each in orders:
        logs = wait_for_delivery(each, sandbox_url, workers, timeout=RECOVERY_TIMEOUT + 40)
        assert_once_and_in_order(each, logs, workers)
    # The kill came after the first worker had recorded a batch (the next one out meanwhile).
    assert DeliveryAttempt.objects.filter(outcome=DeliveryAttempt.Outcome.DELIVERED).count() >= 3
