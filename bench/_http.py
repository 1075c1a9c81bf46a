"""Helpers for the benchmarks that load the portal's pages over HTTP: the
portal under gunicorn as in production, signed-in sessions made directly in
the session store, a load of virtual users with their own sessions, the
server's own time per request (from gunicorn's access log), and the weight of
a page with the CSS and JavaScript it references, as sent and compressed.

Server time is gunicorn's `%(D)s`: from the moment a worker has read the
request to the moment the response is written, so the whole WSGI application
(middleware, session, queries, template, WhiteNoise) and not the time a
request waits for a free worker. The client side measures the rest.

The load runner (`start_portal`, `run_phases`) is what the page benchmarks
share: gunicorn started and awaited, a warm-up, then the same three phases (one
user alone, everyone at work with pauses, everyone flat out), each read back
from the access log and the CPU meter; the scripts only say who the users are,
what they load and how to group the figures.

No Django import at module level: the scripts set up their environment first.
`session_cookies` needs Django set up (`django.setup()`)."""

from __future__ import annotations

import argparse
import gzip
import os
import random
import re
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
from _common import (
    BASE_DIR,
    VENV_BIN,
    Processes,
    free_port,
    percentile,
    postgres_answers,
    recreate_database,
    wait_for_http,
)

try:  # WhiteNoise and httpx use it when it is installed (a dependency of WeasyPrint's fonttools).
    import brotli
except ImportError:  # pragma: no cover
    brotli = None

# One access log line per request: method, path, status, microseconds, body bytes,
# the worker's pid (`<1234>`: which process served it) and the query string (last: it may be empty).
ACCESS_LOG_FORMAT = "%(m)s %(U)s %(s)s %(D)s %(B)s %(p)s %(q)s"
# The portal runs behind a TLS-terminating proxy in production (BEHIND_PROXY=1):
# the proxy's header keeps SECURE_SSL_REDIRECT from answering every request with a 301.
PROXY_HEADERS = {"X-Forwarded-Proto": "https"}
COMPRESSED = {"Accept-Encoding": "gzip, br"}


def say(text: str = "") -> None:
    print(text, flush=True)


# --- The portal as in production -------------------------------------------------------------


def production_environment(
    base: dict[str, str], *, database_url: str, var_dir: Path, secret_key: str
) -> dict[str, str]:
    """DEBUG off, a real secret key, the host we call, behind a (pretend) TLS proxy;
    static files collected under `var_dir` (compressed and hashed by WhiteNoise)."""
    environment = {
        **base,
        "DEBUG": "0",
        "SECRET_KEY": secret_key,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "BEHIND_PROXY": "1",
        "DATABASE_URL": database_url,
        "VAR_DIR": str(var_dir),
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("REDIS_URL", "STATIC_ROOT", "MEDIA_ROOT", "S3_BUCKET", "SANDBOX_ENABLED"):
        environment.pop(name, None)
    return environment


def serve_benchmark(
    name: str, database: str, secret_key: str, run: Callable[[dict[str, str], Processes, Path], None]
) -> int:
    """What every page benchmark does around its own work: PostgreSQL or a clean
    skip, a fresh database, production settings, a folder for the logs, the
    migrations and static files, Django set up in this process (which writes the
    data with the server's settings), everything stopped at the end."""
    postgres_url = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
    if problem := postgres_answers(postgres_url):
        say(f"{name} benchmark skipped: needs PostgreSQL at {postgres_url} ({problem})")
        return 0
    folder = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    say(f"Logs and static files in {folder}")
    environment = production_environment(
        {**os.environ, "PYTHONPATH": str(BASE_DIR), "DJANGO_SETTINGS_MODULE": "portal.settings"},
        database_url=recreate_database(postgres_url, database),
        var_dir=folder / "var",
        secret_key=secret_key,
    )
    try:
        with Processes(folder) as processes:
            say(f"Migrating {database} and collecting the static files...")
            processes.run("migrate", [sys.executable, "manage.py", "migrate", "--noinput"], environment)
            processes.run("collectstatic", [sys.executable, "manage.py", "collectstatic", "--noinput"], environment)
            os.environ.update(environment)
            import django

            django.setup()
            run(environment, processes, folder)
    except KeyboardInterrupt:
        say("\nInterrupted; gunicorn stopped.")
        return 130
    return 0


def gunicorn_command(*, port: int, workers: int, threads: int, access_log: Path) -> list[str]:
    """gunicorn's gthread workers (with `threads=1`, one request at a time per
    process as the README's deployment), the access log in `ACCESS_LOG_FORMAT`."""
    return [
        str(VENV_BIN / "gunicorn"),
        "portal.wsgi",
        "--worker-class",
        "gthread",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--bind",
        f"127.0.0.1:{port}",
        "--timeout",
        "60",
        "--keep-alive",
        "5",
        "--access-logfile",
        str(access_log),
        "--access-logformat",
        ACCESS_LOG_FORMAT,
    ]


@dataclass(frozen=True)
class Served:
    """One request as the server saw it."""

    method: str
    path: str
    status: int
    seconds: float
    size: int
    pid: int = 0
    query: str = ""


class AccessLog:
    """gunicorn's access log, read from a mark: the requests of one phase."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def mark(self) -> None:
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def since_mark(self) -> list[Served]:
        if not self.path.exists():
            return []
        with self.path.open("rb") as log:
            log.seek(self.offset)
            text = log.read().decode("utf-8", "replace")
        served = []
        for line in text.splitlines():
            parts = line.split(maxsplit=6)
            if len(parts) < 5 or not parts[3].isdigit():
                continue
            size = int(parts[4]) if parts[4].isdigit() else 0
            pid = parts[5].strip("<>") if len(parts) > 5 else ""
            query = parts[6] if len(parts) > 6 else ""
            served.append(
                Served(
                    parts[0],
                    parts[1],
                    int(parts[2]),
                    int(parts[3]) / 1e6,
                    size,
                    int(pid) if pid.isdigit() else 0,
                    query,
                )
            )
        return served


def session_cookies(users: Iterable[Any]) -> dict[int, str]:
    """A signed-in session per user, written straight into the session store
    (as a sign-in would, without the password hashing): user pk -> Cookie header."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    engine = import_module(settings.SESSION_ENGINE)
    cookies = {}
    for user in users:
        store = engine.SessionStore()
        store[SESSION_KEY] = user._meta.pk.value_to_string(user)
        store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        store[HASH_SESSION_KEY] = user.get_session_auth_hash()
        store.save(must_create=True)
        cookies[user.pk] = f"{settings.SESSION_COOKIE_NAME}={store.session_key}"
    return cookies


# --- CPU ------------------------------------------------------------------------------------


def _cpu_of(pid: int) -> float:
    """User + system CPU seconds of a process (0 if it has gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if parent == pid:
                found.append(int(entry.name))
    return found


class CpuMeter:
    """The CPU the server's processes spend during a phase: gunicorn's workers
    and the PostgreSQL backends connected to the benchmark's database. On a
    machine shared with other work, CPU per request holds where latencies do not
    (/proc: Linux only; the database on this machine)."""

    def __init__(self, gunicorn_pid: int, database_url: str) -> None:
        self.gunicorn_pid = gunicorn_pid
        self.database_url = database_url
        self.start: dict[str, dict[int, float]] = {}

    def _backends(self) -> list[int]:
        import psycopg

        try:
            with psycopg.connect(self.database_url, connect_timeout=3) as connection:
                rows = connection.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
                ).fetchall()
        except psycopg.Error:
            return []
        return [row[0] for row in rows]

    def _snapshot(self) -> dict[str, dict[int, float]]:
        return {
            "gunicorn": {pid: _cpu_of(pid) for pid in children_of(self.gunicorn_pid)},
            "postgres": {pid: _cpu_of(pid) for pid in self._backends()},
        }

    def mark(self) -> None:
        self.start = self._snapshot()

    def spent(self) -> dict[str, float]:
        """CPU seconds per side since the mark (new processes counted from 0)."""
        end = self._snapshot()
        return {
            side: sum(max(0.0, cpu - self.start.get(side, {}).get(pid, 0.0)) for pid, cpu in end[side].items())
            for side in end
        }


# --- Memory ---------------------------------------------------------------------------------


def memory_of(pid: int) -> dict[str, int]:
    """A process's resident memory now (`VmRSS`) and at its peak (`VmHWM`), in
    bytes; empty if it has gone."""
    found = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                found[name] = int(value.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        return {}
    return found


def reset_peak_memory(pid: int) -> bool:
    """Brings a process's `VmHWM` down to its current resident size (Linux 4.0+,
    our own processes): the peak of what follows is then measured alone."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


# --- Load -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One request as the client saw it."""

    label: str
    status: int  # 0: no answer (an exception)
    seconds: float
    size: int


@dataclass
class VirtualUser:
    """A person with their own session; `next_url(random)` says what they load next,
    as (label, path)."""

    cookie: str
    next_url: Callable[[random.Random], tuple[str, str]]
    seed: int = 0
    samples: list[Sample] = field(default_factory=list)


def run_load(
    base_url: str,
    users: Sequence[VirtualUser],
    *,
    duration: float,
    think: tuple[float, float] = (0.0, 0.0),
    headers: dict[str, str] | None = None,
    max_requests: int = 0,
) -> tuple[list[Sample], float]:
    """Each user in a thread of its own, with its own keep-alive connection, loads
    a page, waits a think time drawn in `think` (seconds), and again, until
    `duration` has passed (or each has made `max_requests`). Returns the samples
    and the elapsed time."""
    stop_at = time.monotonic() + duration
    base_headers = {**PROXY_HEADERS, **COMPRESSED, **(headers or {})}

    def work(user: VirtualUser) -> None:
        chance = random.Random(user.seed)
        # A think time before the first request too, so that the users do not all start at once.
        time.sleep(chance.uniform(0, max(think[1], 0.05)))
        with httpx.Client(base_url=base_url, headers={**base_headers, "Cookie": user.cookie}, timeout=60) as client:
            made = 0
            while time.monotonic() < stop_at and (not max_requests or made < max_requests):
                label, url = user.next_url(chance)
                started = time.perf_counter()
                try:
                    response = client.get(url)
                    status, size = response.status_code, response.num_bytes_downloaded
                except httpx.HTTPError:
                    status, size = 0, 0
                user.samples.append(Sample(label, status, time.perf_counter() - started, size))
                made += 1
                if think[1] > 0:
                    time.sleep(chance.uniform(*think))

    threads = [threading.Thread(target=work, args=(user,), daemon=True) for user in users]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    return [sample for user in users for sample in user.samples], elapsed


def load_average() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


@dataclass
class Portal:
    """The portal served by gunicorn for a page benchmark: where it answers, its
    master process, its access log and the CPU meter of its processes."""

    base_url: str
    pid: int
    access_log: AccessLog
    cpu: CpuMeter


def start_portal(
    environment: dict[str, str], processes: Processes, folder: Path, *, workers: int, threads: int
) -> Portal:
    """gunicorn on a free port with the production environment, once it answers
    `/healthz`; says how it runs, and warns when the machine is already busy
    (the times then include waiting for other work)."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    access_log = AccessLog(folder / "access.log")
    server = processes.start(
        "gunicorn",
        gunicorn_command(port=port, workers=workers, threads=threads, access_log=access_log.path),
        environment,
    )
    portal = Portal(base_url, server.pid, access_log, CpuMeter(server.pid, environment["DATABASE_URL"]))
    wait_for_http(f"{base_url}/healthz", processes)
    say(
        f"gunicorn on {base_url}: {workers} processes x {threads} threads (gthread), "
        f"DEBUG=0, PostgreSQL; {os.cpu_count()} CPUs shared with PostgreSQL and the load generator."
    )
    if os.getloadavg()[0] > (os.cpu_count() or 1):
        say(
            f"Warning: the machine is busy (load average {load_average()} on {os.cpu_count()} CPUs): the times "
            "below include waiting for other work; the CPU per request holds better."
        )
    return portal


@dataclass(frozen=True)
class Phase:
    """What one load phase gave: the requests as the clients saw them, as the
    server logged them, how long it lasted and the CPU the server spent."""

    name: str
    samples: list[Sample]
    served: list[Served]
    elapsed: float
    spent: dict[str, float]


def add_load_arguments(parser: argparse.ArgumentParser, *, think: float) -> None:
    """The options of the load runner and of the server it loads, the same in
    every page benchmark: a phase's length, the pause at work, gunicorn's shape."""
    parser.add_argument("--duration", type=float, help="seconds of each load phase (60; 6 with --quick)")
    parser.add_argument("--think", type=float, default=think, help=f"mean pause between pages at work, s ({think:g})")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes (3: CPUs + 1)")
    # One thread per process: on 2 CPUs, threads share a process's GIL and only
    # stretch each request's time (bench/README.md has the figures).
    parser.add_argument("--threads", type=int, default=1, help="threads per gunicorn worker (1)")


def run_phases(
    portal: Portal,
    processes: Processes,
    users: Callable[[], list[VirtualUser]],
    *,
    who: str,
    warm_up: int,
    duration: float,
    think: tuple[float, float],
    report: Callable[[Phase], dict[str, list[float]]],
) -> list[tuple[str, dict[str, list[float]]]]:
    """The load of a page benchmark. A warm-up (each user loads `warm_up` pages,
    all answered 200 or it stops), then three phases: one user alone with no
    pause (the cost of a page; at most 20 s), every user at work (a pause drawn
    in `think` between pages), every user flat out (no pause: the server
    saturated). `users()` makes fresh users (each phase starts its rounds
    anew); `who` names one of them ("technician"). `report` prints a phase's
    figures and returns the server's times by page; returned per phase name
    ("alone", "at work", "flat out")."""
    say(f"\nWarming up (each {who} loads {warm_up} pages)...")
    samples, _ = run_load(portal.base_url, users(), duration=120, max_requests=warm_up)
    refused = [sample for sample in samples if sample.status != 200]
    if refused:
        raise RuntimeError(
            f"{len(refused)} of {len(samples)} warm-up requests failed "
            f"(statuses {sorted({s.status for s in refused})}); see {processes.folder}/gunicorn.log"
        )

    count = len(users())
    results = []
    for name, title, crowd, pause in (
        ("alone", f"one {who} alone, no pause (the cost of a page)", users()[:1], (0.0, 0.0)),
        ("at work", f"{count} {who}s at work, a page every {think[0]:g} to {think[1]:g} s each", users(), think),
        ("flat out", f"{count} {who}s flat out, no pause ({count} requests always in flight)", users(), (0.0, 0.0)),
    ):
        length = min(duration, 20) if name == "alone" else duration
        say(f"\n== Load: {title}, {length:g} s (load average before: {load_average()})")
        portal.access_log.mark()
        portal.cpu.mark()
        samples, elapsed = run_load(portal.base_url, crowd, duration=length, think=pause)
        processes.check_alive()
        phase = Phase(name, samples, portal.access_log.since_mark(), elapsed, portal.cpu.spent())
        results.append((name, report(phase)))
    return results


def say_requests(phase: Phase) -> None:
    """A phase's count of requests, those not answered 200, and the CPU the
    server spent per request (with the rate that CPU would allow on this machine)."""
    samples = phase.samples
    failed = [sample for sample in samples if sample.status != 200]
    say(
        f"  {len(samples)} requests in {phase.elapsed:.1f} s ({len(samples) / phase.elapsed:.1f}/s); "
        f"{len(failed)} not answered 200"
        + (f" (statuses {sorted({s.status for s in failed})})" if failed else "")
        + f"; load average after: {load_average()}"
    )
    if samples:
        per_request = {side: seconds / len(samples) for side, seconds in phase.spent.items()}
        total = sum(per_request.values())
        say(
            f"  CPU per request: gunicorn {per_request['gunicorn'] * 1000:.1f} ms + PostgreSQL "
            f"{per_request['postgres'] * 1000:.1f} ms"
            + (f": at most {(os.cpu_count() or 1) / total:.0f} requests/s on {os.cpu_count()} CPUs" if total else "")
        )


def times_by(requests: Iterable[Sample | Served], key: Callable[[Any], str]) -> dict[str, list[float]]:
    """The times of the requests answered 200, grouped by `key(request)`."""
    grouped: dict[str, list[float]] = defaultdict(list)
    for request in requests:
        if request.status == 200:
            grouped[key(request)].append(request.seconds)
    return grouped


def say_times(rows: Iterable[tuple[str, Sequence[float]]], *, width: int, indent: int = 4) -> None:
    """One line per row: its name, its count of requests and their figures."""
    for name, values in rows:
        say(f"{' ' * indent}{name:<{width}} {len(values):6d} req  {figures(values)}")


def say_against_goal(
    results: Sequence[tuple[str, dict[str, list[float]]]], pages: Sequence[str], goal: float, *, prefix: str = ""
) -> None:
    """The server's p95 of each page in each phase, against `goal` (seconds)."""
    width = max(len(page) for page in pages)
    for title, by_page in results:
        for page in pages:
            if by_page.get(page):
                say(f"  {page:<{width}} {title:<9} {prefix}{verdict(p95(by_page[page]), goal)}")


def figures(values: Sequence[float]) -> str:
    """p50 / p95 / p99 / max in milliseconds."""
    ordered = sorted(values)
    if not ordered:
        return "no requests"
    return "  ".join(
        f"{name} {percentile(ordered, fraction) * 1000:6.1f}"
        for name, fraction in (("p50", 0.50), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))
    )


def p95(values: Sequence[float]) -> float:
    return percentile(sorted(values), 0.95)


def verdict(value: float, goal: float, unit: str = "ms", scale: float = 1000) -> str:
    shown, target = value * scale, goal * scale
    if value <= goal:
        return f"{shown:.1f} {unit} <= {target:g} {unit}: met"
    return f"{shown:.1f} {unit} > {target:g} {unit}: MISSED by {shown - target:.1f} {unit} ({value / goal:.1f}x)"


# --- Weight -----------------------------------------------------------------------------------


class _References(HTMLParser):
    """The resources a page makes a browser fetch at once: stylesheets and
    scripts, and (reported apart) the manifest, icons and service worker."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str]] = []  # (kind, url)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "link" and values.get("href"):
            rel = values.get("rel", "").lower().split()
            if "stylesheet" in rel:
                self.found.append(("css", values["href"]))
            elif "modulepreload" in rel or ("preload" in rel and values.get("as") == "script"):
                self.found.append(("js", values["href"]))
            elif rel:
                self.found.append((" ".join(rel), values["href"]))
        elif tag == "script" and values.get("src"):
            self.found.append(("js", values["src"]))
        if values.get("data-service-worker"):
            self.found.append(("service worker", values["data-service-worker"]))


def page_references(html: str) -> list[tuple[str, str]]:
    parser = _References()
    parser.feed(html)
    seen: set[str] = set()
    return [(kind, url) for kind, url in parser.found if not (url in seen or seen.add(url))]


CSS_URL = re.compile(r"url\(\s*['\"]?([^'\")]+)['\"]?\s*\)")


@dataclass(frozen=True)
class Resource:
    """One response: its size raw, gzip'd (level 6, as Django's GZipMiddleware
    and nginx do), brotli'd (quality 5, a server's on-the-fly setting), and as
    the server sent it to a client that accepts `gzip, br`."""

    kind: str
    url: str
    identity: int
    gzip: int
    brotli: int
    sent: int
    encoding: str
    cache_control: str

    @property
    def core(self) -> bool:
        """Part of what the task counts: the HTML, its CSS and its JavaScript."""
        return self.kind in ("html", "css", "js")


def compressed_sizes(body: bytes) -> tuple[int, int]:
    gzipped = len(gzip.compress(body, compresslevel=6, mtime=0))
    brotlied = len(brotli.compress(body, quality=5)) if brotli else -1
    return gzipped, brotlied


def fetch(client: httpx.Client, kind: str, url: str) -> tuple[Resource, bytes]:
    """The resource as sent (`Accept-Encoding: gzip, br`, the bytes on the wire)
    and its raw body."""
    with client.stream("GET", url, headers=COMPRESSED) as response:
        body = response.read()
        sent = response.num_bytes_downloaded
        encoding = response.headers.get("content-encoding", "identity")
        cache_control = response.headers.get("cache-control", "")
        response.raise_for_status()
    gzipped, brotlied = compressed_sizes(body)
    return Resource(kind, url, len(body), gzipped, brotlied, sent, encoding, cache_control), body


def page_weight(client: httpx.Client, url: str) -> list[Resource]:
    """A first load of `url` with an empty cache: the page, then every resource it
    references (and what the CSS references in turn), once each."""
    page, body = fetch(client, "html", url)
    resources = [page]
    base = str(client.base_url.join(url))
    queue = [(kind, urljoin(base, href)) for kind, href in page_references(body.decode("utf-8", "replace"))]
    done: set[str] = set()
    while queue:
        kind, absolute = queue.pop(0)
        if absolute in done or urlsplit(absolute).netloc != client.base_url.netloc.decode():
            continue
        done.add(absolute)
        resource, content = fetch(client, kind, urlsplit(absolute).path)
        resources.append(resource)
        if kind == "css":
            text = content.decode("utf-8", "replace")
            queue += [
                ("css asset", urljoin(absolute, ref)) for ref in CSS_URL.findall(text) if not ref.startswith("data:")
            ]
    return resources


def kb(size: int) -> str:
    return f"{size / 1024:7.1f} KB" if size >= 0 else "      n/a"


def print_weight(resources: Sequence[Resource]) -> None:
    say(f"  {'resource':<44} {'raw':>10} {'gzip -6':>10} {'br -5':>10} {'as sent':>10}  encoding")
    for resource in resources:
        name = f"{resource.kind}: {resource.url}"
        if len(name) > 44:
            name = name[:20] + "…" + name[-23:]
        say(
            f"  {name:<44} {kb(resource.identity)} {kb(resource.gzip)} {kb(resource.brotli)} "
            f"{kb(resource.sent)}  {resource.encoding}"
        )
