"""Helpers for the benchmarks: the processes they start (stopped whatever
happens, Ctrl-C included), fresh PostgreSQL databases, a Redis database of
their own, and a few figures. No Django import here: the scripts set up their
environment before Django reads it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
import redis

BASE_DIR = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
# The scripts import the portal (`portal.settings`) whether or not they are run
# through `make bench`, which also sets PYTHONPATH and DJANGO_SETTINGS_MODULE.
if str(BASE_DIR) not in sys.path:
    sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")


class Processes:
    """Child processes, each in a process group of its own (so that a stop
    reaches Celery's pool processes too); all stopped on leaving the `with`
    block, also on Ctrl-C or SIGTERM."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.started: list[tuple[str, subprocess.Popen, Path]] = []

    def __enter__(self) -> Processes:
        # SIGTERM (a CI timeout, `kill`) leaves through the same `finally` as Ctrl-C.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop_all()

    def start(self, name: str, command: Sequence[str], environment: dict[str, str]) -> subprocess.Popen:
        log_path = self.folder / f"{name}.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                list(command),
                cwd=BASE_DIR,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started.append((name, process, log_path))
        return process

    def run(self, name: str, command: Sequence[str], environment: dict[str, str]) -> None:
        """Start, wait for the end (stopped too on Ctrl-C), raise if it failed."""
        process = self.start(name, command, environment)
        process.wait()
        self.started = [entry for entry in self.started if entry[1] is not process]
        if process.returncode:
            raise RuntimeError(f"{name} failed (exit status {process.returncode}); see {self.folder / name}.log")

    def check_alive(self) -> None:
        for name, process, log_path in self.started:
            if process.poll() is not None:
                raise RuntimeError(f"{name} stopped (exit status {process.returncode}); see {log_path}")

    def stop(self, process: subprocess.Popen, *, grace: float = 5.0) -> None:
        """SIGTERM to the group, SIGKILL to whatever is left after `grace`."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)

    def stop_all(self) -> None:
        for _, process, _ in reversed(self.started):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for _, process, _ in self.started:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
        for _, process, _ in self.started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        self.started.clear()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_http(url: str, processes: Processes, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        processes.check_alive()
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code < 500:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def recreate_database(server_url: str, name: str) -> str:
    """Drops and creates `name` on the PostgreSQL server; returns its URL."""
    with psycopg.connect(f"{server_url.rstrip('/')}/postgres", autocommit=True) as admin:
        admin.execute("SET client_min_messages = warning")
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    return f"{server_url.rstrip('/')}/{name}"


def postgres_answers(server_url: str) -> str:
    """'' when the server answers, else why not."""
    try:
        with psycopg.connect(f"{server_url.rstrip('/')}/postgres", connect_timeout=3):
            return ""
    except psycopg.Error as error:
        return str(error).strip()


# Shared with tests/test_relay_worker.py: a database in use by a run (expires);
# and one a benchmark used (kept, so that a dead run's leftovers may be wiped).
LOCK = "portal:private-database:lock"
MARKER = "portal-bench:database"


def claim_redis_database(base_url: str) -> str:
    """The URL of an emptied Redis database (15 down to 1) that no other run
    uses and that holds nobody else's data."""
    parts = urlsplit(base_url)
    own = parts.path.strip("/") or "0"
    token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"
    for number in range(15, 0, -1):
        if str(number) == own:
            continue
        url = parts._replace(path=f"/{number}").geturl()
        candidate = redis.Redis.from_url(url, socket_timeout=5)
        if not candidate.set(LOCK, token, nx=True, ex=3600):
            continue
        if candidate.dbsize() > 1 and not candidate.exists(MARKER):
            candidate.delete(LOCK)
            continue
        for key in candidate.scan_iter(count=1000):
            if key.decode() != LOCK:
                candidate.delete(key)
        candidate.set(MARKER, token)
        return url
    raise RuntimeError("no free Redis database (1 to 15)")


def release_redis_database(url: str) -> None:
    with contextlib.suppress(redis.RedisError):
        redis.Redis.from_url(url, socket_timeout=5).flushdb()


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest rank."""
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, int(round(fraction * len(sorted_values) + 0.5)) - 1))
    return sorted_values[index]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _process_cpu(pid: str) -> tuple[int, str, float] | None:
    """(process group, command line, CPU seconds) of a live process, from /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    # After the command: state, ppid, pgrp, ..., utime (14th field) and stime (15th).
    return int(fields[2]), command, (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def cpu_seconds(processes: Processes, databases: Sequence[str] = ()) -> dict[str, float]:
    """CPU seconds used so far by each started process's group (Celery's pool
    processes and gunicorn's workers included, while they live), by this
    process, and by the PostgreSQL backends of each named database (their
    command lines name the database). Differences between two readings say
    who spent the CPU of a phase."""
    groups = {process.pid: name for name, process, _ in processes.started}
    totals: dict[str, float] = dict.fromkeys([*groups.values(), *(f"postgres:{db}" for db in databases)], 0.0)
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        found = _process_cpu(pid)
        if found is None:
            continue
        group, command, seconds = found
        if group in groups:
            totals[groups[group]] += seconds
        elif command.startswith("postgres: "):
            for database in databases:
                if f" {database} " in command:
                    totals[f"postgres:{database}"] += seconds
    own = os.times()
    totals["bench"] = own.user + own.system
    return totals


def cpu_spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """What each one spent between two readings of `cpu_seconds` (a process
    that ended between them counts for what it had at the first reading)."""
    return {name: max(0.0, after.get(name, 0.0) - before.get(name, 0.0)) for name in after}


class StandInAutovacuum:
    """Production's PostgreSQL vacuums and analyzes the outbox as it churns
    (autovacuum is on by default, and the relay's migration 0009 asks it to
    act after every 1,000 changed rows). A server run with `autovacuum = off`
    (some test machines are) never does, and the relay's queries then plan
    without statistics over thousands of dead rows. On such a server this
    does what autovacuum would: VACUUM (ANALYZE) of the given tables every
    `interval` seconds, in a thread, until stopped. It says which it is."""

    def __init__(self, database_url: str, tables: Sequence[str], interval: float = 15.0) -> None:
        import threading

        self.database_url, self.tables, self.interval = database_url, tables, interval
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.runs = 0
        with psycopg.connect(database_url, autocommit=True) as connection:
            row = connection.execute("SHOW autovacuum").fetchone()
        self.needed = row is not None and row[0] == "off"

    def describe(self) -> str:
        if not self.needed:
            return "PostgreSQL's autovacuum is on: it keeps the outbox's statistics."
        return (
            f"PostgreSQL runs with autovacuum off here: the bench vacuums and analyzes "
            f"{', '.join(self.tables)} every {self.interval:g} s, as autovacuum would in production."
        )

    def __enter__(self) -> StandInAutovacuum:
        if self.needed:
            self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopped.set()
        if self.thread.is_alive():
            self.thread.join(timeout=60)

    def _run(self) -> None:
        while not self.stopped.wait(self.interval):
            with contextlib.suppress(psycopg.Error), psycopg.connect(self.database_url, autocommit=True) as db:
                for table in self.tables:
                    db.execute(f"VACUUM (ANALYZE) {table}")
                self.runs += 1
