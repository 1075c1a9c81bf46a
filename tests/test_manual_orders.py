"""Orders typed by office staff for a connected contract (a client whose
platform connection is not "none"): the platform refuses the logs of an order
without an asset (location.assetReference) or a service code, so such an order
is refused before it is saved, on the admin's form and by the service."""

from __future__ import annotations

import html
from http import HTTPStatus

import pytest

from orders import receiving, services
from orders.models import Order
from tests import factories

NO_ASSET = "Obligatoire : la plateforme du client (marché {}) refuse une commande sans élément de patrimoine."
NO_CODE = "Obligatoire : la plateforme du client (marché {}) refuse une commande sans code prestation."


@pytest.fixture
def office_client(client, office):
    client.force_login(office)
    return client


def order_form(contract, *, asset=None, service_code=None, reference="OPH57_SAISIE") -> dict[str, object]:
    return {
        "contract": contract.pk,
        "reference": reference,
        "billing_account": "",
        "service_code": service_code.pk if service_code else "",
        "work_type": "corrective",
        "critical_level": 0,
        "asset": asset.pk if asset else "",
        "description": "Volet roulant bloqué, chambre 2",
        "lines-TOTAL_FORMS": 0,
        "lines-INITIAL_FORMS": 0,
        "lines-MIN_NUM_FORMS": 0,
        "lines-MAX_NUM_FORMS": 1000,
    }


def test_an_incomplete_order_for_a_connected_contract_is_refused_naming_each_missing_field(
    office_client, outbox_connection, contract
):
    response = office_client.post("/admin/orders/order/add/", order_form(contract))

    assert response.status_code == HTTPStatus.OK
    text = html.unescape(response.content.decode())
    assert NO_ASSET.format(contract.reference) in text
    assert NO_CODE.format(contract.reference) in text
    assert "Volet roulant bloqué, chambre 2" in text  # what was typed is kept
    assert not Order.objects.exists()


def test_an_order_lacking_only_its_service_code_is_refused_on_that_field(
    office_client, outbox_connection, contract, asset
):
    response = office_client.post("/admin/orders/order/add/", order_form(contract, asset=asset))

    assert response.status_code == HTTPStatus.OK
    errors = response.context["adminform"].form.errors
    assert errors == {"service_code": [NO_CODE.format(contract.reference)]}
    assert not Order.objects.exists()


def test_complete_it_is_saved(office_client, outbox_connection, contract, asset, service_code):
    response = office_client.post(
        "/admin/orders/order/add/", order_form(contract, asset=asset, service_code=service_code)
    )

    assert response.status_code == HTTPStatus.FOUND
    order = Order.objects.get(reference="OPH57_SAISIE")
    assert (order.asset, order.service_code, order.origin) == (asset, service_code, "manual")


@pytest.mark.parametrize("kind", [None, "none"])
def test_for_a_client_without_platform_it_is_saved_as_before(office_client, client_org, contract, kind):
    if kind is not None:
        factories.make_connection(client_org, kind=kind)

    response = office_client.post("/admin/orders/order/add/", order_form(contract))

    assert response.status_code == HTTPStatus.FOUND
    order = Order.objects.get(reference="OPH57_SAISIE")
    assert (order.asset, order.service_code) == (None, None)


def test_an_edit_cannot_take_away_what_the_platform_requires(office_client, outbox_connection, contract, order):
    data = {
        **order_form(contract, asset=order.asset, service_code=order.service_code, reference=order.reference),
        "asset": "",
        "notified_at_0": order.notified_at.astimezone().strftime("%d/%m/%Y"),
        "notified_at_1": order.notified_at.astimezone().strftime("%H:%M:%S"),
        "technician": order.technician_id,
        "events-TOTAL_FORMS": 0,
        "events-INITIAL_FORMS": 0,
        "events-MIN_NUM_FORMS": 0,
        "events-MAX_NUM_FORMS": 1000,
    }

    response = office_client.post(f"/admin/orders/order/{order.pk}/change/", data)

    assert response.status_code == HTTPStatus.OK
    assert response.context["adminform"].form.errors["asset"] == [NO_ASSET.format(contract.reference)]
    order.refresh_from_db()
    assert order.asset is not None


def test_the_service_refuses_it_too(outbox_connection, contract, asset, service_code):
    with pytest.raises(services.ServiceError) as refusal:
        receiving.register_order(contract=contract, reference="OPH57_API", actor=None, asset=asset)

    assert str(refusal.value) == (
        f"La plateforme du client (marché {contract.reference}) refuse une commande sans code prestation : "
        "complétez la commande."
    )
    with pytest.raises(services.ServiceError, match="sans élément de patrimoine ni code prestation"):
        receiving.register_order(contract=contract, reference="OPH57_API", actor=None)
    assert not Order.objects.exists()

    order = receiving.register_order(
        contract=contract, reference="OPH57_API", actor=None, asset=asset, service_code=service_code
    )
    assert order.origin == "manual"


def test_the_service_takes_what_the_platform_itself_sent(outbox_connection, contract):
    order = receiving.register_order(contract=contract, reference="OPH57_PLATEFORME", actor=None, origin="platform")

    assert (order.asset, order.service_code) == (None, None)


def test_the_service_refuses_an_edit_that_takes_away_what_the_platform_requires(outbox_connection, order, supervisor):
    """Whatever page edits the order (the admin, the supervisor's corrections), the
    service itself keeps a connected order complete."""
    with pytest.raises(services.ServiceError, match="refuse une commande sans élément de patrimoine"):
        receiving.update_order_details(order, actor=supervisor, changes={"asset": None})
    order.refresh_from_db()
    assert order.asset is not None
    assert receiving.update_order_details(order, actor=supervisor, changes={"description": "Fuite"}) is not None
