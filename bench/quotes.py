"""The quotes: the PDF of a 120-line quote, and the editor's htmx requests with
a 2,000-item price schedule.

1. The PDF of a quote of 120 lines (three VAT rates, both parts lists, the
   contractor's logo), rendered once to warm up, then --runs times in the same
   process, as a warm Celery worker does (goal: median <= 1 s).
2. The editor adding a line (POST /pilotage/devis/<pk>/lignes/ as htmx sends
   it, answered with the lines and totals redrawn), on a quote of 20 lines
   that stays at 20 (each added line is removed again, untimed), picking among
   2,000 price items (goal: p95 <= 80 ms).
3. The price-item search as one types (GET /pilotage/devis/<pk>/prix/?q=...,
   a code prefix or a word of a label) in the same schedule (goal: p95 <= 50 ms).

The requests go through the whole Django stack in-process (middleware,
session, CSRF, the view, the template): the server's time, without the
network or a browser. It prints the figures against the goals and asserts
nothing.

    make bench
    .venv/bin/python bench/quotes.py [--runs 10] [--requests 300] [--out devis.pdf] [--quick]

It drops and recreates the PostgreSQL database `bench_quotes` at
BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432), kept
afterwards; without PostgreSQL it uses a throwaway SQLite database, and says so.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ms, percentile, postgres_answers, recreate_database  # noqa: E402

PDF_GOAL = 1.0
ADD_GOAL = 0.080
SEARCH_GOAL = 0.050
SCHEDULE = 2_000
WORDS = ["robinet", "peinture", "carrelage", "serrure", "radiateur", "interrupteur", "joint", "vitrage", "porte"]
RATES = [Decimal("20.00"), Decimal("10.00"), Decimal("5.50")]


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="timed PDF renders (default 10; 3 with --quick)")
    parser.add_argument("--requests", type=int, default=300, help="timed requests of each kind (default 300)")
    parser.add_argument("--out", type=Path, help="also write the 120-line quote's PDF there")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 3 renders, 60 requests of each kind")
    options = parser.parse_args()
    if options.quick:
        options.runs, options.requests = 3, 60
    return options


def build(chance: random.Random):  # noqa: ANN201 (a tuple of the portal's objects, imported after setup)
    from orders.states import State
    from portal.models import PriceItem, Role
    from quotes import drafts, services
    from tests import factories

    factories.make_company(logo=logo_png(), vat_number="FR55832147656", address="7 rue Graham Bell")
    supervisor = factories.make_user("bench-conducteur", Role.SUPERVISOR, first_name="Nathalie", last_name="Kieffer")
    technician = factories.make_user("bench-technicien", Role.TECHNICIAN, password=None)
    client = factories.make_client()
    contract = factories.make_contract(client)
    service_code = factories.make_service_code(contract)
    asset = factories.make_asset(client)
    PriceItem.objects.bulk_create(
        PriceItem(
            contract=contract,
            code=f"BPU-{index:04d}",
            label=f"{chance.choice(WORDS).capitalize()} – prestation {index} du bordereau, fourniture et pose",
            unit=chance.choice(["u", "m²", "ml", "h", "ens"]),
            unit_price=Decimal(chance.randint(500, 90_000)) / 100,
            vat_rate=chance.choice(RATES),
        )
        for index in range(SCHEDULE)
    )
    order = factories.register_order(contract, asset=asset, service_code=service_code, technician=technician)
    order = factories.bring_to(order, State.IN_PROGRESS, technician)
    items = list(PriceItem.objects.filter(contract=contract).order_by("code"))

    big = services.create_quote_for_order(order, actor=supervisor)
    for item in items[:120]:
        drafts.add_line(big, actor=supervisor, price_item=item, quantity=str(chance.randint(1, 40)))
    drafts.add_part(big, actor=supervisor, supplied_by="contractor", description="Mitigeur thermostatique")
    drafts.add_part(big, actor=supervisor, supplied_by="buyer", description="Faïence assortie")
    services.send_quote(big, actor=supervisor)

    draft = services.create_quote_for_order(order, actor=supervisor)
    for item in chance.sample(items, 20):
        drafts.add_line(draft, actor=supervisor, price_item=item, quantity="2")
    return supervisor, items, big, draft


def logo_png() -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (480, 160), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((4, 4, 156, 156), radius=28, fill=(11, 92, 173, 255))
    draw.text((180, 50), "MULTITECH", fill=(28, 36, 48, 255), font_size=48)
    output = io.BytesIO()
    image.save(output, "PNG")
    return output.getvalue()


CPU_TIMES: dict[int, float] = {}


def timed(call) -> float:  # noqa: ANN001
    """The wall time of `call()`; its CPU time (this process's) is kept beside it
    (on a busy machine the CPU time says what an idle one would take)."""
    clock, cpu = time.perf_counter(), time.process_time()
    call()
    elapsed = time.perf_counter() - clock
    CPU_TIMES[id(elapsed)] = time.process_time() - cpu
    return elapsed


def summary(label: str, timings: list[float], goal: float, *, median_goal: bool = False) -> str:
    cpu = sorted(CPU_TIMES[id(value)] for value in timings)
    timings = sorted(timings)
    median, p95 = statistics.median(timings), percentile(timings, 0.95)
    measured = median if median_goal else p95
    verdict = "met" if measured <= goal else f"MISSED by {ms(measured - goal).strip()}"
    name = "median" if median_goal else "p95"
    return (
        f"{label}: median {ms(median).strip()}, p95 {ms(p95).strip()}, max {ms(timings[-1]).strip()} "
        f"({len(timings)} runs; goal {name} <= {goal * 1000:g} ms: {verdict}); "
        f"CPU median {ms(statistics.median(cpu)).strip()}, p95 {ms(percentile(cpu, 0.95)).strip()}"
    )


def main() -> None:
    options = parse_arguments()
    server = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
    with tempfile.TemporaryDirectory(prefix="bench-quotes-") as folder:
        why_not = postgres_answers(server)
        database = recreate_database(server, "bench_quotes") if not why_not else f"sqlite:///{folder}/bench.sqlite3"
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
        from pypdf import PdfReader

        from quotes import drafts, pdf
        from quotes.models import QuoteLine

        print(f"database: {'PostgreSQL bench_quotes' if not why_not else 'SQLite (PostgreSQL: ' + why_not + ')'}")
        call_command("migrate", verbosity=0)
        chance = random.Random(12)
        with transaction.atomic():
            supervisor, items, big, draft = build(chance)
            # The benchmark renders the PDF itself: no task for a worker.
            connection.run_on_commit.clear()
        if not why_not:
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")

        # 1. The PDF.
        content = b""

        def render() -> None:
            nonlocal content
            content = pdf.render_quote(big)

        first = timed(render)
        pdf_timings = [timed(render) for _ in range(options.runs)]
        pages = len(PdfReader(io.BytesIO(content)).pages)
        if options.out:
            options.out.write_bytes(content)

        # 2. and 3. The editor's requests, as htmx sends them (the CSRF token in a header).
        browser = Client(enforce_csrf_checks=True, HTTP_HOST="127.0.0.1")
        browser.force_login(supervisor)
        page = browser.get(f"/pilotage/devis/{draft.pk}/")
        token = page.cookies["csrftoken"].value
        headers = {"HTTP_HX_REQUEST": "true", "HTTP_X_CSRFTOKEN": token}
        add_timings, search_timings = [], []
        for _ in range(options.requests):
            item = chance.choice(items)

            def add(item=item) -> None:
                response = browser.post(
                    f"/pilotage/devis/{draft.pk}/lignes/", {"price_item": item.pk, "quantity": "3"}, **headers
                )
                assert response.status_code == 200 and b"Ligne ajout" in response.content, response.content[:300]

            add_timings.append(timed(add))
            drafts.remove_line(QuoteLine.objects.filter(quote=draft).latest("pk"), actor=None)
            query = chance.choice([f"BPU-{chance.randint(0, 199):d}"[:6], chance.choice(WORDS)[:5], "bpu-01"])

            def search(query=query) -> None:
                response = browser.get(f"/pilotage/devis/{draft.pk}/prix/", {"q": query}, **headers)
                assert response.status_code == 200

            search_timings.append(timed(search))

    load, cpus = os.getloadavg()[0], os.cpu_count() or 1
    busy = " (busy: the CPU times say more than the wall times)" if load > cpus else ""
    print(f"load average at the end: {load:.1f} on {cpus} CPUs{busy}")
    print(
        f"quote of 120 lines: {pages} pages, PDF {len(content) / 1024:.0f} KB; first render (cold) {ms(first).strip()}"
    )
    print(summary("quote PDF, warm process", pdf_timings, PDF_GOAL, median_goal=True))
    print(summary(f"editor: add a line (htmx, {SCHEDULE:,} price items, 20 lines)", add_timings, ADD_GOAL))
    print(summary(f"editor: price-item search as you type ({SCHEDULE:,} items)", search_timings, SEARCH_GOAL))
    if options.out:
        print(f"PDF written to {options.out}")


if __name__ == "__main__":
    main()
