"""Out-of-range dates (issue 14, finding 3): year 1 and year 9999 in every date
a person types (the technician's and the office's action forms, the planning,
the order list and its CSV, extensions) get a French message, never a 500."""

from __future__ import annotations

from datetime import timedelta
from http import HTTPStatus

import pytest
from django.utils import timezone

from orders.states import State
from tests import factories

FAR = ["0001-01-01", "9999-12-31"]
OUT_OF_RANGE = "hors de la période plausible"


def french(value: str) -> str:
    year, month, day = value.split("-")
    return f"{day}/{month}/{year}"


@pytest.fixture
def supervisor_client(client, supervisor):
    client.force_login(supervisor)
    return client


@pytest.mark.parametrize("value", FAR)
@pytest.mark.parametrize("name", ["du", "au"])
def test_the_order_list_ignores_a_date_out_of_range_and_says_so(supervisor_client, order, name, value):
    response = supervisor_client.get(f"/pilotage/commandes/?{name}={value}")

    assert response.status_code == HTTPStatus.OK
    assert OUT_OF_RANGE in response.content.decode()
    assert order.reference in response.content.decode()


@pytest.mark.parametrize("value", FAR)
@pytest.mark.parametrize("name", ["du", "au"])
def test_the_csv_export_ignores_a_date_out_of_range(supervisor_client, order, name, value):
    response = supervisor_client.get(f"/pilotage/commandes.csv?{name}={value}")

    assert response.status_code == HTTPStatus.OK
    assert order.reference in b"".join(response.streaming_content).decode()


@pytest.mark.parametrize("value", FAR)
def test_the_technician_cannot_plan_an_appointment_out_of_range(client, technician, order, value):
    order = factories.bring_to(order, State.ACKNOWLEDGED, technician)
    client.force_login(technician)

    response = client.post(f"/commandes/{order.pk}/planifier/", {"appointment": f"{value}T08:30"})

    assert response.status_code == HTTPStatus.OK
    assert OUT_OF_RANGE in response.content.decode()
    order.refresh_from_db()
    assert order.state == State.ACKNOWLEDGED


@pytest.mark.parametrize("value", FAR)
def test_the_office_cannot_plan_an_appointment_out_of_range(client, office, technician, order, value):
    order = factories.bring_to(order, State.ACKNOWLEDGED, technician)
    client.force_login(office)

    response = client.post(
        f"/admin/orders/order/{order.pk}/action/plan/", {"appointment_0": french(value), "appointment_1": "08:30"}
    )

    assert response.status_code == HTTPStatus.OK
    assert OUT_OF_RANGE in response.content.decode()
    order.refresh_from_db()
    assert order.state == State.ACKNOWLEDGED


@pytest.mark.parametrize("value", FAR)
def test_the_office_cannot_record_a_reception_out_of_range(client, office, technician, order, value):
    order = factories.bring_to(order, State.FINISHED, technician)
    client.force_login(office)

    response = client.post(
        f"/admin/orders/order/{order.pk}/action/record_reception/", {"reception_date": french(value)}
    )

    assert response.status_code == HTTPStatus.OK
    assert OUT_OF_RANGE in response.content.decode()


@pytest.mark.parametrize("value", FAR)
@pytest.mark.parametrize("field", ["appointment", "planned_start"])
def test_the_planning_refuses_a_date_out_of_range(supervisor_client, order, field, value):
    data = {"technician": order.technician_id, field: f"{value}T08:30"}
    if field == "planned_start":
        data["planned_end"] = "2026-12-10T17:00"

    response = supervisor_client.post(f"/pilotage/planning/commandes/{order.pk}/", data, follow=True)

    assert response.status_code == HTTPStatus.OK
    assert OUT_OF_RANGE in response.content.decode()
    order.refresh_from_db()
    assert order.appointment_at is None


@pytest.mark.parametrize("value", FAR)
def test_an_extension_request_refuses_a_cause_date_out_of_range(supervisor_client, contract, asset, value):
    order = factories.register_order(contract, asset=asset, due_at=timezone.now() + timedelta(days=5))

    response = supervisor_client.post(
        f"/pilotage/commandes/{order.pk}/prolongations/", {"cause": "Accès refusé", "cause_date": value, "days": 3}
    )

    assert response.status_code == HTTPStatus.OK
    assert OUT_OF_RANGE in response.content.decode()
    assert not order.extension_requests.exists()
