"""The operation's address (issue 10, item 7), through the sandbox over real
HTTP: the address belongs to the asset (the orders of one dwelling share it)
and the platform's latest word on it is what the technician sees; the
operation's complement (floor, door) is the order's access notes. An operation
that names no asset keeps its address on the order, and no asset reference is
made up for the logs. A change of the address is in the order's history, and
is not sent back to the platform."""

from __future__ import annotations

import html
import io
import re
from http import HTTPStatus

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from orders import services
from orders.models import Order
from portal.models import Asset
from portal.relay import inbound
from portal.relay.models import Connection, InboundNotification, MessageStatus, NotificationStatus
from portal.sandbox import services as sandbox_services
from portal.sandbox.models import Asset as PlatformAsset
from portal.sandbox.models import Operation
from tests.conftest import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET
from tests.test_relay_refusals import ASSET_HINT, drain, platform_logs, set_behaviour, text_of
from tests.test_relay_sandbox import CONTRACT, as_the_manager, request_form, the_manager_requests

pytestmark = pytest.mark.usefixtures("database_before_the_live_server")


@pytest.fixture
def connection(sandbox_connection) -> Connection:
    return sandbox_connection


@pytest.fixture
def webhooks(platform, connection, live_server) -> None:
    """The platform, with its contract and assets, sends its webhooks to our connection."""
    call_command("sandbox_seed", stdout=io.StringIO())
    call_command(
        "sandbox_setup",
        f"--client-id={SANDBOX_CLIENT_ID}",
        f"--client-secret={SANDBOX_CLIENT_SECRET}",
        f"--webhook-url={live_server.url}{connection.webhook_path}",
        stdout=io.StringIO(),
    )


def technicians_address_section(client, order: Order, technician) -> str:
    """The text of the "Adresse" card of the order's page, as the technician sees it."""
    client.force_login(technician)
    page = client.get(f"/commandes/{order.pk}/")
    assert page.status_code == HTTPStatus.OK
    text = page.content.decode()
    section = text[text.index('id="address-title"') :]
    section = re.sub(r"<[^>]+>", " ", section[: section.index("</section>")])
    return " ".join(html.unescape(section).split())


def the_manager_changes_the_address(operation: Operation, address: dict, platform: str) -> None:
    """The manager corrects where the work is on the platform, then sends the update webhook."""
    operation_url = f"{platform}/api/operations/v2/operations/{operation.reference}?contractReference={CONTRACT}"
    with transaction.atomic():
        operation.location = {**operation.location, "address": {**operation.location["address"], **address}}
        operation.last_update_date = timezone.now()
        operation.save(update_fields=["location", "last_update_date"])
        sandbox_services.queue_webhook(operation, sandbox_services.UPDATE, operation_url)


def test_the_operations_address_reaches_the_technician_and_follows_an_update(
    platform, connection, contract, webhooks, client, technician, live_server
):
    # The platform's estate knows the dwelling without its address: the operation carries it.
    PlatformAsset.objects.filter(code="LGT-0415").update(way="", zip="", city="", complement="")
    form = request_form(way="7 rue Mazelle", zip="57000", city="Metz", complement="Escalier A, 2e étage")
    assert client.post("/sandbox/nouvelle-demande/", form, headers=as_the_manager(live_server)).status_code == 302
    operation = Operation.objects.get()
    assert inbound.process_notification(InboundNotification.objects.get().pk) == NotificationStatus.PROCESSED
    order = Order.objects.get()
    services.assign_order(order, actor=None, technician=technician)

    section = technicians_address_section(client, order, technician)
    assert "Adresse non renseignée" not in section
    assert "7 rue Mazelle, 57000 Metz" in section
    assert "Accès : Escalier A, 2e étage" in section

    the_manager_changes_the_address(
        operation, {"way": "2 place Saint-Louis", "zip": "57000", "city": "Metz", "complement": "Porte 3"}, platform
    )
    update = InboundNotification.objects.get(type="operations:intervention:update")
    assert inbound.process_notification(update.pk) == NotificationStatus.PROCESSED

    section = technicians_address_section(client, order, technician)
    assert "2 place Saint-Louis, 57000 Metz" in section
    assert "Accès : Porte 3" in section
    assert "Mazelle" not in section and "Escalier A" not in section
    order.refresh_from_db()
    assert (order.asset.reference, order.asset.address, order.access_notes) == (
        "LGT-0415",
        "2 place Saint-Louis",
        "Porte 3",
    )
    # The change is in the order's history, the platform as its author, and is not sent back.
    changed = "Adresse modifiée par le gestionnaire : 7 rue Mazelle, 57000 Metz → 2 place Saint-Louis, 57000 Metz"
    event = order.events.get(kind="address")
    assert (event.label, event.actor, event.data) == (
        changed,
        None,
        {"avant": "7 rue Mazelle, 57000 Metz", "après": "2 place Saint-Louis, 57000 Metz"},
    )
    client.force_login(technician)
    assert changed in text_of(client.get(f"/commandes/{order.pk}/"))
    assert not order.outbox_messages.filter(event=event).exists()
    # Read once more with nothing new: no second event.
    the_manager_changes_the_address(operation, {}, platform)
    again = InboundNotification.objects.filter(type="operations:intervention:update").latest("pk")
    assert inbound.process_notification(again.pk) == NotificationStatus.PROCESSED
    assert order.events.filter(kind="address").count() == 1


def test_an_asset_the_portal_knew_without_address_takes_the_operations(
    platform, connection, contract, webhooks, client, live_server
):
    Asset.objects.create(client=contract.client, reference="LGT-0415", label="Logement 15")

    the_manager_requests(client, live_server)
    assert inbound.process_notification(InboundNotification.objects.get().pk) == NotificationStatus.PROCESSED

    asset = Order.objects.get().asset
    assert asset.full_address == "14 rue des Tilleuls, 57000 Metz"
    assert (asset.label, Asset.objects.count()) == ("Logement 15", 1)


# --- An operation that names no asset ---------------------------------------------------------


def the_manager_requests_without_an_asset(client, live_server) -> Operation:
    """An intervention request on the platform with an address and no element of its estate."""
    form = request_form(asset="", way="7 rue Mazelle", zip="57000", city="Metz", complement="Escalier A, 2e étage")
    assert client.post("/sandbox/nouvelle-demande/", form, headers=as_the_manager(live_server)).status_code == 302
    operation = Operation.objects.get()
    assert operation.location["assetReference"] == ""
    assert inbound.process_notification(InboundNotification.objects.get().pk) == NotificationStatus.PROCESSED
    return operation


def test_an_operation_without_an_asset_keeps_its_address_on_the_order(
    platform, connection, contract, webhooks, client, technician, supervisor, office, live_server
):
    the_manager_requests_without_an_asset(client, live_server)
    order = Order.objects.get()
    services.assign_order(order, actor=None, technician=technician)

    assert order.asset is None
    assert not Asset.objects.exists()  # no asset made up for it
    section = technicians_address_section(client, order, technician)
    assert "Adresse non renseignée" not in section
    assert "7 rue Mazelle, 57000 Metz" in section
    assert "Accès : Escalier A, 2e étage" in section
    client.force_login(supervisor)
    assert "Adresse 7 rue Mazelle, 57000 Metz" in text_of(client.get(f"/pilotage/commandes/{order.pk}/"))
    assert "7 rue Mazelle" in text_of(client.get("/pilotage/commandes/"))
    export = b"".join(client.get("/pilotage/commandes.csv").streaming_content).decode("utf-8-sig")
    assert f"{order.reference};" in export and ";7 rue Mazelle;57000;Metz;" in export
    client.force_login(office)
    assert "Adresse des travaux : 7 rue Mazelle, 57000 Metz" in text_of(
        client.get(f"/admin/orders/order/{order.pk}/change/")
    )
    # Moselle: its two more public holidays count in the order's periods.
    assert order.department == "57"

    # The logs carry no asset reference: none is made up.
    services.acknowledge_order(order, actor=technician)
    assert set(drain()) == {"delivered"}
    [log] = [log for log in platform_logs(platform, order.reference) if log["source"] == "api"]
    assert log["raw"]["location"] == {"assetReference": ""}


def test_a_strict_platform_refuses_the_logs_until_a_person_names_the_asset(
    platform, connection, contract, webhooks, client, technician, supervisor, live_server
):
    the_manager_requests_without_an_asset(client, live_server)
    order = Order.objects.get()
    set_behaviour(platform, strict=True)
    services.acknowledge_order(order, actor=technician)
    assert drain() == ["rejected"]
    client.force_login(supervisor)
    assert f"missing location.assetReference {ASSET_HINT}" in text_of(client.get("/relais/erreurs/"))

    # The office knows the dwelling without its address; the supervisor names it on the order.
    Asset.objects.create(client=contract.client, reference="LGT-0415", label="Logement 15")
    response = client.post(
        f"/pilotage/commandes/{order.pk}/details/",
        {
            "service_code": order.service_code_id,
            "asset_reference": "LGT-0415",
            "work_type": order.work_type,
            "critical_level": order.critical_level,
        },
    )
    assert response.status_code == HTTPStatus.FOUND
    message = order.outbox_messages.get(status=MessageStatus.REJECTED)
    response = client.post(f"/pilotage/commandes/{order.pk}/messages/{message.pk}/renvoyer/", {"note": "Patrimoine"})
    assert response.status_code == HTTPStatus.FOUND
    assert set(drain()) == {"delivered"}

    logs = [log["raw"] for log in platform_logs(platform, order.reference) if log["source"] == "api"]
    assert {log["location"]["assetReference"] for log in logs} == {"LGT-0415"}
    # The asset has no address of its own: the operation's is still where the works are.
    order.refresh_from_db()
    assert order.full_address == "7 rue Mazelle, 57000 Metz"


def test_an_address_change_without_an_asset_is_in_the_history_and_not_sent_back(
    platform, connection, contract, webhooks, client, technician, supervisor, live_server
):
    operation = the_manager_requests_without_an_asset(client, live_server)
    order = Order.objects.get()
    services.assign_order(order, actor=None, technician=technician)
    services.acknowledge_order(order, actor=technician)
    assert set(drain()) == {"delivered"}
    sent = len(platform_logs(platform, order.reference))

    the_manager_changes_the_address(
        operation, {"way": "2 place Saint-Louis", "zip": "57050", "city": "Metz", "complement": "Porte 3"}, platform
    )
    update = InboundNotification.objects.get(type="operations:intervention:update")
    assert inbound.process_notification(update.pk) == NotificationStatus.PROCESSED

    section = technicians_address_section(client, order, technician)
    assert "2 place Saint-Louis, 57050 Metz" in section and "Mazelle" not in section
    assert "Accès : Porte 3" in section
    changed = "Adresse modifiée par le gestionnaire : 7 rue Mazelle, 57000 Metz → 2 place Saint-Louis, 57050 Metz"
    client.force_login(supervisor)
    assert changed in text_of(client.get(f"/pilotage/commandes/{order.pk}/"))
    assert order.events.filter(kind="address", actor=None).count() == 1
    assert drain() == []  # nothing to send: the platform knows its own change
    assert len(platform_logs(platform, order.reference)) == sent
