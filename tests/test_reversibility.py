"""The reversibility export (issue 14, item 8): office staff ask for a client's
or a contract's zip, a task builds it with its progress, and the zip read back
holds every order with its lines, history and transmissions (JSON and CSV) and
every document's file, identical; memory stays bounded however many files."""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import tracemalloc
import zipfile
from http import HTTPStatus

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from orders import documents, reversibility
from orders.models import Document, DocumentKind, Order, OrderEvent, OrderLine
from orders.states import State
from orders.tasks import build_reversibility_export
from portal.models import ContactAccess, ExportStatus, ReversibilityExport
from portal.relay.models import OutboxMessage
from tests import factories
from tests.test_documents import pdf_bytes


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def seeded(contract, asset, service_code, technician, outbox_connection):
    other = factories.make_contract(contract.client, reference="AUTRE-2025", label="Autre marché")
    for number in range(3):
        order = factories.register_order(contract, reference=f"OPH57-{number}", asset=asset, service_code=service_code)
        order = factories.bring_to(order, State.FINISHED, technician)
        documents.attach_document(
            order,
            actor=technician,
            file=ContentFile(pdf_bytes(), name=f"Rapport {number}.pdf"),
            kind=DocumentKind.UPLOADED_REPORT,
            title=f"Rapport {number}",
        )
    factories.an_order(other, "AUTRE-1", occupant_name="=HYPERLINK(1)")
    return contract


def ask(browser, office, **data) -> ReversibilityExport:
    browser.force_login(office)
    response = browser.post("/bureau/exports/", data)
    assert response.status_code == HTTPStatus.FOUND
    export = ReversibilityExport.objects.latest("pk")
    assert response.url == f"/bureau/exports/{export.pk}/"
    return export


def test_a_clients_export_read_back_is_the_database(client, office, seeded, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        export = ask(client, office, client=seeded.client_id)
    assert len(callbacks) == 1  # the task, queued after commit
    page = client.get(f"/bureau/exports/{export.pk}/").content.decode()
    assert "Export en préparation" in page
    assert 'data-hx-trigger="every 2s"' in page

    assert build_reversibility_export(export.pk) == ExportStatus.DONE

    fragment = client.get(f"/bureau/exports/{export.pk}/", headers={"HX-Request": "true"})
    assert fragment.status_code == 286  # htmx stops polling
    assert "Export prêt" in fragment.content.decode()
    response = client.get(f"/bureau/exports/{export.pk}/telecharger/")
    assert response.status_code == HTTPStatus.OK
    assert response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))

    orders = json.loads(archive.read("commandes.json"))
    assert [order["reference"] for order in orders] == list(
        Order.objects.order_by("pk").values_list("reference", flat=True)
    )
    for record in orders:
        order = Order.objects.get(pk=record["id"])
        assert [line["label"] for line in record["lignes"]] == list(
            order.lines.order_by("position", "pk").values_list("label", flat=True)
        )
        assert [event["label"] for event in record["historique"]] == list(
            order.events.order_by("at", "pk").values_list("label", flat=True)
        )
        assert [(m["sequence"], m["status"]) for m in record["transmissions"]] == list(
            order.outbox_messages.order_by("sequence", "pk").values_list("sequence", "status")
        )
    for name, model in (
        ("commandes", Order),
        ("lignes", OrderLine),
        ("historique", OrderEvent),
        ("transmissions", OutboxMessage),
    ):
        rows = list(csv.reader(io.StringIO(archive.read(f"{name}.csv").decode("utf-8-sig")), delimiter=";"))
        assert len(rows) - 1 == model.objects.count(), name
    orders_csv = csv.DictReader(io.StringIO(archive.read("commandes.csv").decode("utf-8-sig")), delimiter=";")
    assert "'=HYPERLINK(1)" in [row["occupant_name"] for row in orders_csv]  # the CSV cells are neutralised too
    assert len(json.loads(archive.read("marches.json"))) == 2
    for document in Document.objects.select_related("order"):
        stored = archive.read(f"documents/{document.order.reference}/{document.pk}-{document.file_name}")
        assert hashlib.sha256(stored).hexdigest() == document.sha256
    access = ContactAccess.objects.get(where=ContactAccess.Where.EXPORT)
    assert (access.user, access.orders) == (office, 4)


def test_a_contracts_export_holds_its_orders_only(client, office, seeded):
    export = ask(client, office, client=seeded.client_id, contract=seeded.pk)
    build_reversibility_export(export.pk)
    export.refresh_from_db()

    with export.file.open("rb") as stream:
        archive = zipfile.ZipFile(io.BytesIO(stream.read()))
    assert [order["reference"] for order in json.loads(archive.read("commandes.json"))] == [
        "OPH57-0",
        "OPH57-1",
        "OPH57-2",
    ]
    assert (export.done_items, export.total_items, export.percent) == (6, 6, 100)


def test_a_contract_of_another_client_is_refused_in_french(client, office, seeded):
    other_client = factories.make_client(name="Batigère")
    client.force_login(office)

    response = client.post("/bureau/exports/", {"client": other_client.pk, "contract": seeded.pk})

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "Ce marché n'est pas un marché de ce client." in html.unescape(response.content.decode())
    assert not ReversibilityExport.objects.exists()


def test_memory_stays_bounded_with_many_large_documents(office, contract, asset, technician, media):
    order = factories.bring_to(factories.register_order(contract, asset=asset), State.FINISHED, technician)
    megabytes = 2 * 1024 * 1024
    for number in range(12):  # 24 MB of files
        Document.objects.create(
            order=order,
            kind=DocumentKind.UPLOADED_REPORT,
            title=f"Plan {number}",
            file=ContentFile(bytes([number]) * megabytes, name=f"plan-{number}.pdf"),
            file_name=f"plan-{number}.pdf",
            size=megabytes,
            sha256="0" * 64,
            created_by=technician,
        )
    export = ReversibilityExport.objects.create(
        client=contract.client, requested_by=office, requested_at=order.received_at
    )

    tracemalloc.start()
    try:
        assert reversibility.build_export(export.pk) == ExportStatus.DONE
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert peak < 8 * 1024 * 1024, f"peak {peak / 1024 / 1024:.1f} MB"
    export.refresh_from_db()
    assert export.size > 0


@pytest.mark.parametrize("who", ["technician", "supervisor"])
def test_only_the_office_has_the_exports(client, request, who, seeded):
    export = ReversibilityExport.objects.create(client=seeded.client, requested_at=timezone.now())
    urls = ["/bureau/exports/", f"/bureau/exports/{export.pk}/", f"/bureau/exports/{export.pk}/telecharger/"]
    for url in urls:
        assert client.get(url).status_code == HTTPStatus.FOUND  # signed out: to the login page
    client.force_login(request.getfixturevalue(who))
    for url in urls:
        assert client.get(url).status_code == HTTPStatus.FORBIDDEN
    assert client.post("/bureau/exports/", {"client": seeded.client_id}).status_code == HTTPStatus.FORBIDDEN
    assert ReversibilityExport.objects.count() == 1
