"""Rendering an intervention report's PDF in a warm process.

A report of two pages with four photos (12-megapixel camera pictures, shrunk
at upload as the portal does), the occupant's signature and the contractor's
logo is rendered once to warm up, then 10 times; the median and the 95th
percentile of the render time are printed (goal: median <= 500 ms). The
photos' processing at upload is timed too. It asserts nothing.

    make bench
    .venv/bin/python bench/report_pdf.py [--runs 10] [--out rapport.pdf] [--quick]

It needs nothing but the virtualenv: a throwaway SQLite database and media
folder in a temporary directory, removed at the end.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest rank."""
    index = min(len(sorted_values) - 1, max(0, int(round(fraction * len(sorted_values) + 0.5)) - 1))
    return sorted_values[index]


def camera_photo(seed: int) -> bytes:
    """A 4032 x 3024 JPEG with texture, about the weight of a phone's picture."""
    from PIL import Image, ImageDraw, ImageFilter

    width, height = 4032, 3024
    gradient = Image.linear_gradient("L").resize((width, height))
    noise = Image.effect_noise((width, height), 40 + seed * 5).filter(ImageFilter.GaussianBlur(1.2))
    red = Image.blend(gradient, noise, 0.35)
    green = Image.blend(gradient.rotate(90, expand=False), noise, 0.25)
    blue = Image.blend(gradient.transpose(Image.Transpose.FLIP_LEFT_RIGHT), noise, 0.3)
    image = Image.merge("RGB", (red, green, blue))
    draw = ImageDraw.Draw(image)
    for index in range(6):
        left = 300 + index * 580 + seed * 40
        draw.rectangle((left, 700 + seed * 90, left + 420, 2300), outline=(240, 240, 240), width=18)
    output = io.BytesIO()
    image.save(output, "JPEG", quality=92)
    return output.getvalue()


def logo_png() -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (480, 160), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((4, 4, 156, 156), radius=28, fill=(11, 92, 173, 255))
    draw.polygon([(40, 120), (80, 40), (120, 120)], fill=(255, 255, 255, 255))
    draw.text((180, 50), "MULTITECH", fill=(28, 36, 48, 255), font_size=48)
    draw.text((182, 104), "Lorraine", fill=(91, 102, 117, 255), font_size=30)
    output = io.BytesIO()
    image.save(output, "PNG")
    return output.getvalue()


def signature_data_url() -> str:
    import base64

    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (1200, 360), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    points = [(80 + x * 9, 200 + int(70 * ((x % 23) / 23 - 0.5) * (1 if x % 2 else -1))) for x in range(110)]
    draw.line(points, fill=(16, 42, 67, 255), width=6, joint="curve")
    draw.line([(700, 120), (760, 260), (820, 140), (900, 250), (1050, 180)], fill=(16, 42, 67, 255), width=6)
    output = io.BytesIO()
    image.save(output, "PNG")
    return "data:image/png;base64," + base64.b64encode(output.getvalue()).decode()


def build_report():
    """The demo's report: the company, a client's order in progress, the report with its photos."""
    from decimal import Decimal

    from orders import images, reports, services
    from orders.models import PhotoKind, SignatureStatus
    from orders.states import State
    from portal.models import Role
    from tests import factories

    factories.make_company(
        logo=logo_png(),
        vat_number="FR55832147656",
        address="7 rue Graham Bell",
        address_complement="Technopôle Metz",
        phone="03 87 21 45 60",
        email="contact@multitech-lorraine.fr",
    )
    technician = factories.make_user(
        "julien",
        Role.TECHNICIAN,
        password=None,
        email="",
        first_name="Julien",
        last_name="Schmitt",
        mobile="06 12 48 73 90",
    )
    client = factories.make_client()
    contract = factories.make_contract(client)
    service_code = factories.make_service_code(contract, intervention_delay_hours=None)
    asset = factories.make_asset(client, label="Logement 12, bâtiment B, 3e étage")
    start = datetime(2026, 11, 23, 8, 40, tzinfo=factories.PARIS)
    order = factories.register_order(
        contract,
        notified_at=start - timedelta(days=3),
        asset=asset,
        service_code=service_code,
        description="Fuite sous l'évier de la cuisine, le meuble bas est gorgé d'eau.",
        access_notes="Bâtiment B, code 4512B, 3e étage gauche",
        lines=[{"reference": "L1", "label": "Recherche de fuite", "unit_price": Decimal("65.00")}],
        technician=technician,
    )
    at = start - timedelta(days=2)
    factories.bring_to(order, State.PLANNED, technician, at=at, appointment=start - timedelta(minutes=10))
    services.start_work(order, actor=technician, at=start)
    services.finish_work(order, actor=technician, at=start + timedelta(minutes=95))
    timings = []
    photos = []
    for seed in range(4):
        raw = camera_photo(seed)
        clock = time.perf_counter()
        processed = images.process_photo(io.BytesIO(raw), name=f"IMG_{seed}.jpg")
        timings.append(time.perf_counter() - clock)
        kind = PhotoKind.BEFORE if seed < 2 else PhotoKind.AFTER
        photos.append(reports.ReportPhotoUpload(kind=kind, image=processed))
    report = reports.submit_report(
        order,
        actor=technician,
        works_done=(
            "Recherche de fuite sous l'évier : joint du siphon fendu et écrou de vidange desserré.\n"
            "Remplacement du siphon d'évier complet (PVC, 40 mm), resserrage des raccords d'alimentation, "
            "essai en eau pendant 15 minutes : plus aucune fuite."
        ),
        observations=(
            "Le fond du meuble bas est détérioré par l'humidité (panneau gonflé). L'occupante a été prévenue "
            "qu'il doit sécher plusieurs jours portes ouvertes."
        ),
        materials_used="1 siphon d'évier PVC 40 mm\n2 joints fibre 15x21\n1 rouleau de ruban PTFE",
        time_on_site_minutes=95,
        signature_status=SignatureStatus.SIGNED,
        signature=images.read_signature(signature_data_url()),
        signatory_name="Claire Martin",
        quote_needed=True,
        quote_description="Remplacement du fond du meuble bas sous évier (panneau hydrofuge 60 x 58 cm).",
        photos=photos,
        at=start + timedelta(minutes=100),
    )
    return report, timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="timed renders (default 10)")
    parser.add_argument("--out", type=Path, help="also write the PDF there")
    parser.add_argument("--quick", action="store_true", help="3 runs (a smoke run)")
    options = parser.parse_args()
    runs = 3 if options.quick else options.runs

    with tempfile.TemporaryDirectory(prefix="bench-report-pdf-") as folder:
        os.environ.update(
            {
                "DJANGO_SETTINGS_MODULE": "portal.settings",
                "DEBUG": "1",
                "VAR_DIR": folder,
                "DATABASE_URL": f"sqlite:///{folder}/bench.sqlite3",
                "MEDIA_ROOT": f"{folder}/media",
                "LOG_LEVEL": "WARNING",
            }
        )
        sys.path.insert(0, str(BASE_DIR))
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import transaction
        from pypdf import PdfReader

        from orders import pdf

        call_command("migrate", verbosity=0)
        with transaction.atomic():
            report, photo_timings = build_report()
            # The benchmark renders the PDF itself: no task for a worker.
            transaction.get_connection().run_on_commit.clear()

        clock = time.perf_counter()
        content = pdf.render_report(report)
        first = time.perf_counter() - clock
        timings = []
        for _ in range(runs):
            clock = time.perf_counter()
            content = pdf.render_report(report)
            timings.append(time.perf_counter() - clock)
        timings.sort()
        pages = len(PdfReader(io.BytesIO(content)).pages)
        if options.out:
            options.out.write_bytes(content)

    photo_timings.sort()
    print(f"report: {pages} pages, 4 photos (1600 px JPEG), signature, logo; PDF {len(content) / 1024:.0f} KB")
    print(f"photo processing at upload (12 MP JPEG): median {statistics.median(photo_timings) * 1000:.0f} ms")
    print(f"first render (cold): {first * 1000:.0f} ms")
    print(
        f"render, {runs} runs in a warm process: median {statistics.median(timings) * 1000:.0f} ms, "
        f"p95 {percentile(timings, 0.95) * 1000:.0f} ms, min {timings[0] * 1000:.0f} ms, "
        f"max {timings[-1] * 1000:.0f} ms (goal: median <= 500 ms)"
    )
    if options.out:
        print(f"PDF written to {options.out}")


if __name__ == "__main__":
    main()
