"""The reversibility export (seed 000): everything about a client's or a
contract's orders in one zip, for the client or the contractor who takes over.

The zip holds:
- `marches.json`, `patrimoine.json`, `commandes.json` (each order with its
  lines, its history and the outcome of each message sent to the platform);
- the same as CSV for a spreadsheet: `marches.csv`, `patrimoine.csv`,
  `commandes.csv`, `lignes.csv`, `historique.csv`, `transmissions.csv`;
- `documents/<order reference>/<document id>-<file name>`: every document's file
  (the reports' PDFs included), as stored;
- `LISEZMOI.txt`: what is where.

Memory stays bounded whatever the size: the orders are read from the database
in chunks, each JSON file is written one record at a time, files are copied
1 MB at a time, and the zip is built in a temporary file on disk, then copied
to the storage in chunks. Progress (`done_items` of `total_items`: one per
order, one per document) is written as it goes.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from typing import IO, Any

from celery import current_app
from django.core.files import File
from django.db import models, transaction
from django.db.models import QuerySet
from django.utils import timezone

from orders.models import Document, Order, OrderEvent, OrderLine
from portal.errors import Refused
from portal.models import Asset, Client, ContactAccess, Contract, ExportStatus, ReversibilityExport, User
from portal.privacy import record_contact_access
from portal.relay.models import OutboxMessage
from portal.spreadsheets import safe_cell

logger = logging.getLogger(__name__)

BUILD_TASK = "orders.tasks.build_reversibility_export"
CHUNK = 1024 * 1024
ORDERS_PER_QUERY = 200
PROGRESS_EVERY = 50
README = """Export de réversibilité du portail prestataire.

marches.json / marches.csv              les marchés
patrimoine.json / patrimoine.csv        les éléments de patrimoine du client
commandes.json                          chaque commande avec ses lignes ("lignes"), son historique
                                        ("historique") et ses transmissions à la plateforme ("transmissions")
commandes.csv, lignes.csv, historique.csv, transmissions.csv
                                        les mêmes, un fichier par nature (colonne "order_id" : la commande)
documents/<référence>/                  les documents de chaque commande (rapports PDF compris)

Dates en ISO 8601 (UTC), montants en euros hors taxes, point décimal dans les JSON.
"""


# --- Asking for one -----------------------------------------------------------------


def request_export(*, client: Client, contract: Contract | None, actor: User) -> ReversibilityExport:
    """Record the request and queue its task after commit (by name: the tasks
    module imports this one)."""
    if contract is not None and contract.client_id != client.pk:
        raise Refused("Ce marché n'est pas un marché de ce client.")
    with transaction.atomic():
        export = ReversibilityExport.objects.create(
            client=client, contract=contract, requested_by=actor, requested_at=timezone.now()
        )
        transaction.on_commit(lambda: current_app.send_task(BUILD_TASK, args=[export.pk]), robust=True)
    return export


# --- Rows ---------------------------------------------------------------------------


def _row(instance: models.Model) -> dict[str, Any]:
    """Every concrete field of `instance`, foreign keys as their id."""
    return {field.attname: getattr(instance, field.attname) for field in instance._meta.concrete_fields}


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return safe_cell(str(value))


def _write_json(entry: IO[bytes], records: Iterable[dict[str, Any]]) -> None:
    """A JSON array, written one record at a time."""
    entry.write(b"[\n")
    for number, record in enumerate(records):
        entry.write((b",\n" if number else b"") + json.dumps(record, ensure_ascii=False, default=str).encode())
    entry.write(b"\n]\n")


def _write_csv(entry: IO[bytes], model: type[models.Model], rows: Iterable[models.Model]) -> None:
    text = io.TextIOWrapper(entry, encoding="utf-8-sig", newline="")
    writer = csv.writer(text, delimiter=";")
    writer.writerow([field.attname for field in model._meta.concrete_fields])
    for instance in rows:
        writer.writerow([_text(value) for value in _row(instance).values()])
    text.flush()
    text.detach()


# --- Building it --------------------------------------------------------------------


def _orders(export: ReversibilityExport) -> QuerySet[Order]:
    orders = Order.objects.filter(contract__client_id=export.client_id)
    if export.contract_id:
        orders = orders.filter(contract_id=export.contract_id)
    return orders.order_by("pk")


def _contracts(export: ReversibilityExport) -> QuerySet[Contract]:
    contracts = Contract.objects.filter(client_id=export.client_id)
    return contracts.filter(pk=export.contract_id) if export.contract_id else contracts.order_by("pk")


def _order_records(orders: QuerySet[Order], progress: _Progress) -> Iterator[dict[str, Any]]:
    prefetched = orders.prefetch_related(
        models.Prefetch("lines", OrderLine.objects.order_by("position", "pk")),
        models.Prefetch("events", OrderEvent.objects.order_by("at", "pk")),
        models.Prefetch("outbox_messages", OutboxMessage.objects.order_by("sequence", "pk")),
        models.Prefetch("documents", Document.objects.order_by("pk")),
    )
    for order in prefetched.iterator(chunk_size=ORDERS_PER_QUERY):
        yield {
            **_row(order),
            "lignes": [_row(line) for line in order.lines.all()],
            "historique": [_row(event) for event in order.events.all()],
            "transmissions": [_row(message) for message in order.outbox_messages.all()],
            "documents": [
                {**_row(document), "chemin": _document_path(order, document)} for document in order.documents.all()
            ],
        }
        progress.step()


def _document_path(order: Order, document: Document) -> str:
    name = (document.file_name or str(document.file.name).rsplit("/", 1)[-1]).replace("/", "_")
    reference = order.reference.replace("/", "_")
    return f"documents/{reference}/{document.pk}-{name}"


class _Progress:
    def __init__(self, export: ReversibilityExport) -> None:
        self.export, self.done = export, 0

    def step(self) -> None:
        self.done += 1
        if self.done % PROGRESS_EVERY == 0:
            ReversibilityExport.objects.filter(pk=self.export.pk).update(done_items=self.done)


def build_export(export_id: int) -> str:
    """The task's work: build the zip and store it. Safe to run twice (a done
    export is left alone, a failed or interrupted one is built again)."""
    export = ReversibilityExport.objects.select_related("client", "contract").get(pk=export_id)
    if export.status == ExportStatus.DONE:
        return export.status
    orders = _orders(export)
    documents = Document.objects.filter(order__in=orders).select_related("order").order_by("pk")
    order_count = orders.count()
    total = order_count + documents.count()
    ReversibilityExport.objects.filter(pk=export.pk).update(
        status=ExportStatus.RUNNING, total_items=total, done_items=0, error=""
    )
    progress = _Progress(export)
    try:
        with tempfile.TemporaryFile() as spool:
            with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                archive.writestr("LISEZMOI.txt", README)
                contracts = _contracts(export)
                assets = Asset.objects.filter(client_id=export.client_id).order_by("pk")
                for name, queryset in (("marches", contracts), ("patrimoine", assets)):
                    with archive.open(f"{name}.json", "w") as entry:
                        _write_json(entry, (_row(item) for item in queryset.iterator()))
                    with archive.open(f"{name}.csv", "w") as entry:
                        _write_csv(entry, queryset.model, queryset.iterator())
                with archive.open("commandes.json", "w") as entry:
                    _write_json(entry, _order_records(orders, progress))
                for name, model, rows in (
                    ("commandes", Order, orders),
                    (
                        "lignes",
                        OrderLine,
                        OrderLine.objects.filter(order__in=orders).order_by("order", "position", "pk"),
                    ),
                    (
                        "historique",
                        OrderEvent,
                        OrderEvent.objects.filter(order__in=orders).order_by("order", "at", "pk"),
                    ),
                    (
                        "transmissions",
                        OutboxMessage,
                        OutboxMessage.objects.filter(order__in=orders).order_by("order", "sequence", "pk"),
                    ),
                ):
                    with archive.open(f"{name}.csv", "w") as entry:
                        _write_csv(entry, model, rows.iterator(chunk_size=2000))
                for document in documents.iterator(chunk_size=ORDERS_PER_QUERY):
                    with (
                        document.file.open("rb") as source,
                        archive.open(_document_path(document.order, document), "w", force_zip64=True) as entry,
                    ):
                        shutil.copyfileobj(source, entry, CHUNK)
                    progress.step()
            size = spool.tell()
            spool.seek(0)
            scope = export.contract.reference if export.contract else export.client.name
            name = f"reversibilite-{slug(scope)}-{timezone.localdate():%Y-%m-%d}.zip"
            export.file.save(name, File(spool), save=False)
    except Exception as error:
        logger.exception("Reversibility export %s failed", export.pk)
        ReversibilityExport.objects.filter(pk=export.pk).update(status=ExportStatus.FAILED, error=repr(error)[:2000])
        return ExportStatus.FAILED
    ReversibilityExport.objects.filter(pk=export.pk).update(
        status=ExportStatus.DONE, file=export.file.name, size=size, done_items=total, finished_at=timezone.now()
    )
    if export.requested_by is not None:
        record_contact_access(
            export.requested_by,
            ContactAccess.Where.EXPORT,
            orders=order_count,
            detail=f"Export de réversibilité n° {export.pk} ({scope})",
        )
    return ExportStatus.DONE


def slug(text: str) -> str:
    kept = "".join(character if character.isalnum() else "-" for character in text.lower())
    return "-".join(part for part in kept.split("-") if part)[:60] or "export"
