"""Helpers for the benchmarks that load the portal's pages over HTTP: the
portal under gunicorn as in production, signed-in sessions made directly in
the session store, a load of virtual users with their own sessions, the
server's own time per request (from gunicorn's access log), and the weight of
a page with the CSS and JavaScript it references, as sent and compressed.

Server time is gunicorn's `%(D)s`: from the moment a worker has read the
request to the moment the response is written, so the whole WSGI application
(middleware, session, queries, template, WhiteNoise) and not the time a
request waits for a free worker. The client side measures the rest.

No Django import at module level: the scripts set up their environment first.
`session_cookies` needs Django set up (`django.setup()`)."""

from __future__ import annotations

import gzip
import os
import random
import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
from _common import BASE_DIR, VENV_BIN, Processes, percentile, postgres_answers, recreate_database

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
