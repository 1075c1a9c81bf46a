"""The processing register and the access log (issue 14, item 7): who saw an
occupant's contact details (order pages, the admin, the CSV export) is logged
and kept for a configurable period; the register of seed 004 §5.2.9 is printed
from the data."""

from __future__ import annotations

from datetime import timedelta
from http import HTTPStatus

import pytest
from django.utils import timezone

from portal.models import ContactAccess
from portal.tasks import purge_contact_access_log
from tests import factories

REGISTER = "/admin/portal/contactaccess/registre/"


def test_the_technicians_order_page_logs_who_saw_the_occupant(client, technician, order):
    client.force_login(technician)

    assert client.get(f"/commandes/{order.pk}/").status_code == HTTPStatus.OK

    access = ContactAccess.objects.get()
    assert (access.user, access.where, access.order_id, access.detail) == (
        technician,
        ContactAccess.Where.ORDER_PAGE,
        order.pk,
        order.reference,
    )


def test_an_outsider_sees_nothing_and_nothing_is_logged(client, other_technician, order):
    client.force_login(other_technician)

    assert client.get(f"/commandes/{order.pk}/").status_code == HTTPStatus.NOT_FOUND
    assert not ContactAccess.objects.exists()


def test_the_supervisors_page_and_the_admin_log_too(client, supervisor, office, order):
    client.force_login(supervisor)
    assert client.get(f"/pilotage/commandes/{order.pk}/").status_code == HTTPStatus.OK
    client.force_login(office)
    assert client.get(f"/admin/orders/order/{order.pk}/change/").status_code == HTTPStatus.OK

    assert set(ContactAccess.objects.values_list("user__username", "where", "order_id")) == {
        ("sophie", ContactAccess.Where.SUPERVISOR_PAGE, order.pk),
        ("nadia", ContactAccess.Where.ADMIN, order.pk),
    }


def test_the_csv_export_logs_how_many_orders_were_exported_with_the_filters(client, supervisor, contract):
    for number in range(3):
        factories.an_order(contract, f"OPH57-{number}")
    client.force_login(supervisor)

    response = client.get("/pilotage/commandes.csv?retard=oui")
    b"".join(response.streaming_content)
    response = client.get("/pilotage/commandes.csv")
    b"".join(response.streaming_content)

    exports = ContactAccess.objects.filter(where=ContactAccess.Where.CSV_EXPORT).order_by("pk")
    assert [(access.orders, access.detail) for access in exports] == [
        (0, "Filtres : retard=oui"),
        (3, "Sans filtre"),
    ]


def test_the_log_is_kept_for_the_configured_period(settings, technician):
    settings.ACCESS_LOG_RETENTION_DAYS = 30
    now = timezone.now()
    for days in (31, 29):
        ContactAccess.objects.create(user=technician, where="order_page", order_id=1, at=now - timedelta(days=days))

    assert purge_contact_access_log() == 1
    assert [access.at for access in ContactAccess.objects.all()] == [now - timedelta(days=29)]


def test_the_register_prints_the_controllers_the_dpo_and_the_measures(client, office, order, settings):
    settings.DPO_NAME, settings.DPO_EMAIL = "Jeanne Durand", "dpo@multiservices-metz.fr"
    settings.ACCESS_LOG_RETENTION_DAYS = 180
    factories.make_company()
    client.force_login(office)

    response = client.get(REGISTER)

    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert "Registre des activités de traitement" in html
    assert "Jeanne Durand" in html and "dpo@multiservices-metz.fr" in html
    assert order.contract.client.name.replace("'", "&#x27;") in html
    assert order.contract.reference in html
    assert "conservées 180 jours" in html
    assert "Blocage de la connexion après 5 échecs" in html


@pytest.mark.parametrize("who", ["technician", "supervisor"])
def test_only_the_office_has_the_register(client, request, who):
    assert client.get(REGISTER).status_code == HTTPStatus.FOUND
    client.force_login(request.getfixturevalue(who))
    assert client.get(REGISTER).status_code == HTTPStatus.FOUND
