"""A report with 8 photos of 12 MP sent from a phone on a throttled 3G link
(issue 16, item 2): the time from the last photo chosen to the report saved,
and the bytes sent.

The portal as in production (DEBUG off, gunicorn, PostgreSQL, static files
collected), served over plain HTTP on 127.0.0.1 (no pretend proxy: a browser
cannot add its header to every request). Debian's Chromium, driven by
Playwright, is a phone (390 x 844, touch) whose network is throttled through
the DevTools protocol (`Network.emulateNetworkConditions`, DevTools' own "3G"
profile by default: 562.5 ms of latency, 1.44 Mbit/s down, 675 kbit/s up) and
whose CPU is slowed down 4 times (`Emulation.setCPUThrottlingRate`, as
Lighthouse does for a mid-range phone).

The report's page is open and its text typed (with network, before the clock
starts); the technician then chooses 8 photos of 12 MP (4000 x 3000, about
5 MB each as a camera writes them, with a GPS position in their EXIF) in the
gallery and taps « Enregistrer le rapport » at once. The clock stops when the
report's page opens (the report saved). On the way: when the phone had shrunk
them all (static/js/report-form.js: at most 1600 px, JPEG, no EXIF), when the
last one was up (one at a time, in 512 KB parts, static/js/report-store.js), the bytes sent
(each request's body as Chromium sent it, and its headers), the CPU the
phone's Chromium and the server (gunicorn and PostgreSQL) spent, and, for
comparison, how long the same 8 photos would take as the camera wrote them
(the form without JavaScript sends them whole), computed at the profile's
upload rate; `--plain` runs that form instead (JavaScript off: the photos as
the camera wrote them, in the form's one request, as before issue 16). It
prints figures and asserts nothing but that the report was saved with its
photos.

    make bench
    .venv/bin/python bench/report_upload.py [--photos 8] [--runs 3] [--profile 3g|slow3g] [--cpu-slowdown 4]
                                            [--plain] [--quick]

It drops and recreates the PostgreSQL database `bench_report_upload` at
BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432); without
PostgreSQL or /usr/bin/chromium it says so and stops.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Processes  # noqa: E402
from _http import (  # noqa: E402
    _cpu_of,
    children_of,
    load_average,
    say,
    serve_benchmark,
    session_cookies,
    start_portal,
)

DATABASE = "bench_report_upload"
SECRET_KEY = "bench-report-upload-" + "x" * 40
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
# Chrome DevTools' presets (front_end/core/sdk/NetworkManager.ts): bytes per second, latency in ms.
PROFILES = {
    "3g": {"title": "DevTools' 3G", "latency": 562.5, "downloadThroughput": 180_000, "uploadThroughput": 84_375},
    "slow3g": {"title": "DevTools' Slow 3G", "latency": 2000, "downloadThroughput": 50_000, "uploadThroughput": 50_000},
}


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=8, help="photos of 12 MP in the report (default 8, at most 8)")
    parser.add_argument("--runs", type=int, default=3, help="reports sent, one after the other (default 3)")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="3g", help="the network (default 3g)")
    parser.add_argument("--cpu-slowdown", type=float, default=4, help="the phone's CPU, times slower (default 4)")
    parser.add_argument(
        "--plain",
        action="store_true",
        help="the form without JavaScript (as before issue 16): the photos as the camera wrote them, with the form",
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 photos, one run")
    options = parser.parse_args()
    if options.quick:
        options.photos, options.runs = 2, 1
    options.photos = max(1, min(options.photos, 8))
    return options


def main() -> int:
    if not CHROMIUM.exists():
        say(f"report_upload benchmark skipped: needs Debian's chromium at {CHROMIUM}")
        return 0
    return serve_benchmark("report-upload", DATABASE, SECRET_KEY, partial(run, parse_arguments()))


def create_order():  # noqa: ANN201 (the portal's objects, imported after setup)
    from orders.states import State
    from portal.models import Role
    from tests import factories

    technician = factories.make_user("bench-photos", Role.TECHNICIAN, first_name="Karim", last_name="Haddad")
    client = factories.make_client()
    contract = factories.make_contract(client)
    order = factories.register_order(
        contract,
        asset=factories.make_asset(client),
        service_code=factories.make_service_code(contract),
        technician=technician,
    )
    return technician, factories.bring_to(order, State.IN_PROGRESS, technician)


def chromium_cpu() -> float:
    """CPU seconds of this process's Chromium processes (browser, renderers, GPU, network), all so far."""
    total, pending = 0.0, [os.getpid()]
    while pending:
        pid = pending.pop()
        for child in children_of(pid):
            pending.append(child)
            try:
                name = Path(f"/proc/{child}/comm").read_text().strip()
            except OSError:
                continue
            if name.startswith("chrom"):
                total += _cpu_of(child)
    return total


def megabytes(size: float) -> str:
    return f"{size / 1e6:.2f} MB"


def seconds(value: float) -> str:
    return f"{value:.1f} s" if value < 120 else f"{int(value // 60)} min {int(value % 60):02d} s"


def run(arguments: argparse.Namespace, environment: dict[str, str], processes: Processes, folder: Path) -> None:
    from playwright.sync_api import sync_playwright

    from tests.photos import write_camera_photos

    profile = PROFILES[arguments.profile]
    technician, order = create_order()
    say(f"Writing {arguments.photos} photos of 12 MP...")
    photos = write_camera_photos(folder / "photos", arguments.photos)
    originals = sum(path.stat().st_size for path in photos)
    cookie = session_cookies([technician])[technician.pk]
    # Plain HTTP on the loopback (Chromium keeps secure cookies there); no proxy header to add.
    served = {**environment, "BEHIND_PROXY": "0", "SECURE_SSL_REDIRECT": "0"}
    portal = start_portal(served, processes, folder, workers=2, threads=1)
    down, up = profile["downloadThroughput"] * 8 / 1e6, profile["uploadThroughput"] * 8 / 1e3
    say(
        f"Network: {profile['title']} (latency {profile['latency']} ms, {down:.2f} Mbit/s down, {up:.0f} kbit/s up); "
        f"the phone's CPU {arguments.cpu_slowdown:g} times slower."
    )
    say(f"{arguments.photos} photos of 4000 x 3000 as a camera writes them: {megabytes(originals)}")

    # Playwright's sync API keeps an asyncio loop in this thread, and Django then
    # refuses the ORM's calls (the check of the report saved): the documented way out.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    results = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            for number in range(1, arguments.runs + 1):
                result = send_report(
                    browser, portal, order, cookie, photos, profile, arguments.cpu_slowdown, plain=arguments.plain
                )
                results.append(result)
                say_run(number, result, arguments.photos)
        finally:
            browser.close()

    upload_rate = profile["uploadThroughput"]
    say("\n== Summary")
    walls = sorted(result["wall"] for result in results)
    median = seconds(walls[len(walls) // 2])
    say(f"  last photo chosen -> report saved: {', '.join(seconds(wall) for wall in walls)} (median {median})")
    sent = results[-1]["sent"]
    say(
        f"  bytes sent: {megabytes(sent)} with the headers, for {megabytes(originals)} of photos as the camera wrote "
        f"them ({100 * sent / originals:.1f} %)"
    )
    if not arguments.plain:
        say(
            f"  the same photos sent whole (the form without JavaScript, --plain): at least "
            f"{seconds(originals / upload_rate)} at this upload rate (computed here)"
        )
    say(f"  load average {load_average()} on {os.cpu_count()} CPUs")


def send_report(
    browser, portal, order, cookie: str, photos: list[Path], profile: dict, slowdown: float, *, plain: bool
) -> dict:
    from orders.models import InterventionReport

    base = portal.base_url
    context = browser.new_context(
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
        locale="fr-FR",
        timezone_id="Europe/Paris",
        java_script_enabled=not plain,
    )
    context.set_default_timeout(600_000)
    name, value = cookie.split("=", 1)
    context.add_cookies([{"name": name, "value": value, "url": base}])
    # The page's marks (each photo kept, each photo up), told as they happen: the page
    # that holds them is gone once the report's page opens.
    marks: dict[str, list[float]] = {"report-photo-kept": [], "report-photo-sent": []}
    if not plain:
        context.expose_function("benchMark", lambda name, at: marks[name].append(at))
        context.add_init_script(
            "new PerformanceObserver(list => list.getEntries().forEach(entry => {"
            " if (entry.name.startsWith('report-photo-'))"
            "   window.benchMark(entry.name, performance.timeOrigin + entry.startTime);"
            "})).observe({type: 'mark'});"
        )
    page = context.new_page()
    try:
        page.goto(f"{base}/commandes/{order.pk}/rapport/")
        if not plain:
            page.wait_for_function("() => window.portal && window.portal.reports")
        page.get_by_label("Travaux réalisés").fill("Remplacement du groupe de sécurité et du flexible, essai en eau")
        page.get_by_label("Temps passé sur place (en minutes)").fill("85")
        page.get_by_role("radio", name="Occupant absent").check()
        before = InterventionReport.objects.filter(order=order).count()

        devtools = context.new_cdp_session(page)
        devtools.send("Network.enable")
        devtools.send("Performance.enable")
        devtools.send(
            "Network.emulateNetworkConditions",
            {"offline": False, **{key: profile[key] for key in ("latency", "downloadThroughput", "uploadThroughput")}},
        )
        devtools.send("Emulation.setCPUThrottlingRate", {"rate": slowdown})
        requests = []
        page.on("request", lambda request: requests.append(request))
        phone_cpu, server_cpu = chromium_cpu(), None
        portal.cpu.mark()

        chosen = time.time() * 1000
        started = time.monotonic()
        page.get_by_label("Choisir dans la galerie (après travaux)").set_input_files(photos)
        page.get_by_role("button", name="Enregistrer le rapport").click()
        page.wait_for_url(f"{base}/commandes/{order.pk}/rapports/*/", timeout=1_800_000)
        wall = time.monotonic() - started
        server_cpu = portal.cpu.spent()
        phone_cpu = chromium_cpu() - phone_cpu
        # What the report sent: its POSTs (the photos opened, their parts, the report); the
        # report's page that opens at the end is not part of it.
        posts = [request for request in requests if request.url.startswith(base) and request.method == "POST"]
        bodies = {"part": 0, "report": 0, "other": 0}
        headers = received = parts = 0
        for request in posts:
            sizes = request.sizes()
            headers += sizes["requestHeadersSize"]
            received += sizes["responseBodySize"] + sizes["responseHeadersSize"]
            length = int(request.all_headers().get("content-length") or 0)
            if "upload-offset" in request.headers:
                bodies["part"] += length
                parts += 1
            elif request.url.endswith("/rapport/"):
                bodies["report"] += length
            else:
                bodies["other"] += length
    finally:
        context.close()

    report = InterventionReport.objects.filter(order=order).order_by("-pk").first()
    assert report is not None and InterventionReport.objects.filter(order=order).count() == before + 1
    assert report.photos.count() == len(photos), report.photos.count()
    return {
        "wall": wall,
        "kept": (max(marks["report-photo-kept"]) - chosen) / 1000 if marks["report-photo-kept"] else None,
        "sent_photos": (max(marks["report-photo-sent"]) - chosen) / 1000 if marks["report-photo-sent"] else None,
        "bodies": bodies,
        "parts": parts,
        "sent": sum(bodies.values()) + headers,
        "headers": headers,
        "received": received,
        "requests": len(posts),
        "phone_cpu": phone_cpu,
        "server_cpu": server_cpu,
        "photo_bytes": [photo.image.size for photo in report.photos.all()],
    }


def say_run(number: int, result: dict, count: int) -> None:
    bodies = result["bodies"]
    say(f"\n== Run {number}: last photo chosen -> report saved (its page open): {seconds(result['wall'])}")
    if result["kept"] is not None:
        each = result["kept"] / count
        say(f"  the {count} photos shrunk and kept on the phone after {seconds(result['kept'])} ({each:.2f} s each)")
    if result["sent_photos"] is not None:
        rest = seconds(result["wall"] - result["sent_photos"])
        say(f"  the last photo up after {seconds(result['sent_photos'])}; the report itself then took {rest}")
    say(
        f"  sent: {megabytes(result['sent'])} in {result['requests']} requests = photos {megabytes(bodies['part'])} "
        f"in {result['parts']} parts + the report {bodies['report'] / 1e3:.1f} KB "
        f"+ headers {result['headers'] / 1e3:.1f} KB; received {result['received'] / 1e3:.1f} KB"
    )
    kept = sum(result["photo_bytes"])
    say(f"  photos as the server keeps them: {megabytes(kept)} ({megabytes(kept / count)} each)")
    cpu = result["server_cpu"] or {}
    say(
        f"  CPU: the phone's Chromium {result['phone_cpu']:.1f} s (all its processes); "
        f"the server {cpu.get('gunicorn', 0):.2f} s (gunicorn: each photo checked and shrunk again) "
        f"+ {cpu.get('postgres', 0):.2f} s (PostgreSQL)"
    )
    say(f"  load average {load_average()}")


if __name__ == "__main__":
    sys.exit(main())
