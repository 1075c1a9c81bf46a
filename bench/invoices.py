"""Issuing invoices in one batch, and the month's export for the accountant.

1. 200 drafts (one finished order each, a 20 %, a 10 % and a 5.5 % line) are
   issued in one batch by the batch task's code in this one process (one
   worker): numbering, Factur-X XML (drafthorse, checked against the schema by
   factur-x), PDF/A-3 (WeasyPrint), the order moved to "facturé" and its relay
   messages (the log, then the PDF as a document) recorded in the outbox. Total
   and per-invoice median (goal: <= 400 ms per invoice).
2. The month's export of 1,000 invoices (the 200 issued, and 800 more rows
   copied from them with their PDFs): the CSV with totals per VAT rate, and the
   zip of the PDFs and the CSV (goal: <= 30 s).

    make bench
    .venv/bin/python bench/invoices.py [--invoices 200] [--export 1000] [--quick]

A throwaway SQLite database and media folder in a temporary directory, removed
at the end. It asserts nothing; it prints the figures.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def setup(count: int):
    from invoices import services
    from invoices.models import ConnectionInvoicing
    from portal.models import Role
    from tests import factories
    from tests import invoicing_cast as cast

    office = factories.make_user("bureau", Role.OFFICE, password=None)
    cast.make_issuer()
    client = factories.make_client()
    contract = factories.make_contract(client)
    cast.make_billing(contract)
    connection = factories.make_connection(client)
    ConnectionInvoicing.objects.create(connection=connection, share_pdf=True)
    drafts = []
    for index in range(count):
        order = cast.finished_order(contract, f"OPH57_{index:05d}")
        drafts.append(services.create_draft([order], actor=office))
    return office, drafts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--invoices", type=int, default=200)
    parser.add_argument("--export", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="20 invoices, an export of 100")
    options = parser.parse_args()
    count, exported = (20, 100) if options.quick else (options.invoices, options.export)

    with tempfile.TemporaryDirectory(prefix="bench-invoices-") as folder:
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
        os.environ.pop("REDIS_URL", None)
        sys.path.insert(0, str(BASE_DIR))
        import django

        django.setup()
        from django.core.files.base import ContentFile
        from django.core.management import call_command
        from django.utils import timezone

        from invoices import export, pdf, tasks
        from invoices.models import Invoice, IssueBatch
        from portal.relay.models import MessageKind, OutboxMessage

        call_command("migrate", verbosity=0)
        clock = time.perf_counter()
        office, drafts = setup(count)
        print(f"setup: {count} finished orders and their drafts in {time.perf_counter() - clock:.1f} s")
        pdf.stylesheets()  # the worker's warm-up: the stylesheet is parsed once per process

        # 1. The batch, as the worker runs it.
        batch = IssueBatch.objects.create(invoice_ids=[draft.pk for draft in drafts], created_by=office)
        clock = time.perf_counter()
        done = tasks.run_batch(batch.pk)
        total = time.perf_counter() - clock
        issued = list(Invoice.objects.filter(state="issued").order_by("issued_at"))
        gaps = [(b.issued_at - a.issued_at).total_seconds() for a, b in zip(issued, issued[1:], strict=False)]
        logs = OutboxMessage.objects.filter(kind=MessageKind.INTERVENTION_LOG).count()
        documents = OutboxMessage.objects.filter(kind=MessageKind.DOCUMENT).count()
        size = statistics.median(invoice.pdf_file.size for invoice in issued[:20])
        print(
            f"issue: {done.done} invoices in one batch, {len(done.failures)} refused; outbox: {logs} logs, "
            f"{documents} documents; PDF/A-3 median {size / 1024:.0f} KB"
        )
        print(
            f"issue: total {total:.1f} s, {total / max(done.done, 1) * 1000:.0f} ms per invoice on average, "
            f"median {statistics.median(gaps) * 1000:.0f} ms, max {max(gaps) * 1000:.0f} ms "
            f"(goal: <= 400 ms per invoice on one worker)"
        )

        # 2. The month's export: the rows copied up to `exported`, each with its own PDF file.
        clock = time.perf_counter()
        year = timezone.localdate().year
        copies = []
        for index in range(exported - len(issued)):
            source = issued[index % len(issued)]
            copy = Invoice(
                kind=source.kind,
                state="issued",
                number=f"X{year}-{index + 1:05d}",
                issue_date=source.issue_date,
                contract_id=source.contract_id,
                billing_account_id=source.billing_account_id,
                service_code=source.service_code,
                commitment_number=source.commitment_number,
                buyer_siret=source.buyer_siret,
                order_numbers=source.order_numbers,
                parties=source.parties,
                total_excl_vat=source.total_excl_vat,
                total_vat=source.total_vat,
                total_incl_vat=source.total_incl_vat,
                vat_breakdown=source.vat_breakdown,
                issued_at=source.issued_at,
            )
            with source.pdf_file.open("rb") as stream:
                copy.pdf_file.save(f"{copy.number}.pdf", ContentFile(stream.read()), save=False)
            copies.append(copy)
        Invoice.objects.bulk_create(copies, batch_size=200)
        print(
            f"export setup: {exported - len(issued)} more issued invoices copied in {time.perf_counter() - clock:.1f} s"
        )
        today = timezone.localdate()
        clock = time.perf_counter()
        rows = export.csv_bytes(export.of_month(today.year, today.month))
        csv_time = time.perf_counter() - clock
        buffer = io.BytesIO()
        clock = time.perf_counter()
        documents = export.write_zip(buffer, today.year, today.month)
        zip_time = time.perf_counter() - clock
        lines = rows.count(b"\r\n") - 1
        print(f"export: CSV of {lines} rows in {csv_time * 1000:.0f} ms")
        print(
            f"export: zip of {documents} PDFs and the CSV ({len(buffer.getvalue()) / 1024 / 1024:.1f} MB) in "
            f"{zip_time:.1f} s; CSV + zip {csv_time + zip_time:.1f} s (goal: <= 30 s for 1,000 invoices)"
        )


if __name__ == "__main__":
    main()
