"""The office's admin: contracts with their price schedule, orders saved through
the services, the action pages, and who gets in."""

from __future__ import annotations

import html
import re
from datetime import datetime
from decimal import Decimal
from http import HTTPStatus

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orders import receiving, services
from orders.models import Order
from orders.states import State
from portal.models import Asset, Client, Contract, Role, User
from portal.roles import OFFICE_GROUP
from tests.conftest import PARIS, PASSWORD, make_user


@pytest.fixture
def office_client(client, office):
    client.force_login(office)
    return client


def page(response) -> str:
    """The page's text, with the HTML entities (apostrophes…) turned back into characters."""
    return html.unescape(response.content.decode())


def management(prefix: str, total: int, initial: int = 0) -> dict[str, object]:
    return {
        f"{prefix}-TOTAL_FORMS": total,
        f"{prefix}-INITIAL_FORMS": initial,
        f"{prefix}-MIN_NUM_FORMS": 0,
        f"{prefix}-MAX_NUM_FORMS": 1000,
    }


def split(value) -> tuple[str, str]:
    """A date-time as the admin's two inputs (date, time), in Paris time."""
    local = timezone.localtime(value)
    return local.strftime("%d/%m/%Y"), local.strftime("%H:%M:%S")


def blank_line(index: int) -> dict[str, object]:
    """An extra line form as the browser sends it untouched: the initial values."""
    prefix = f"lines-{index}"
    return {
        f"{prefix}-position": 0,
        f"{prefix}-reference": "",
        f"{prefix}-price_item": "",
        f"{prefix}-label": "",
        f"{prefix}-quantity": 1,
        f"{prefix}-unit": "u",
        f"{prefix}-unit_price": 0,
        f"{prefix}-vat_rate": "10.00",
    }


def change_data(order: Order, extra_lines: int = 0, **changes) -> dict[str, object]:
    """The order's change form as the page shows it, with `changes` typed in."""
    notified_date, notified_time = split(order.notified_at)
    due_date, due_time = split(order.due_at)
    data: dict[str, object] = {
        "billing_account": order.billing_account_id or "",
        "service_code": order.service_code_id or "",
        "work_type": order.work_type,
        "critical_level": order.critical_level,
        "asset": order.asset_id or "",
        "access_notes": order.access_notes,
        "description": order.description,
        "occupant_name": order.occupant_name,
        "occupant_phone": order.occupant_phone,
        "occupant_mobile": order.occupant_mobile,
        "occupant_email": order.occupant_email,
        "notified_at_0": notified_date,
        "notified_at_1": notified_time,
        "due_at_0": due_date,
        "due_at_1": due_time,
        "technician": order.technician_id or "",
        "pilot": order.pilot_id or "",
    }
    lines = list(order.lines.all())
    data.update(management("lines", len(lines) + extra_lines, len(lines)))
    for index, line in enumerate(lines):
        prefix = f"lines-{index}"
        data.update(
            {
                f"{prefix}-id": line.pk,
                f"{prefix}-order": order.pk,
                f"{prefix}-position": line.position,
                f"{prefix}-reference": line.reference,
                f"{prefix}-price_item": line.price_item_id or "",
                f"{prefix}-label": line.label,
                f"{prefix}-quantity": line.quantity,
                f"{prefix}-unit": line.unit,
                f"{prefix}-unit_price": line.unit_price,
                f"{prefix}-vat_rate": line.vat_rate,
            }
        )
    for index in range(len(lines), len(lines) + extra_lines):
        data.update(blank_line(index))
    events = list(order.events.all())
    data.update(management("events", len(events), len(events)))
    for index, event in enumerate(events):
        data.update({f"events-{index}-id": event.pk, f"events-{index}-order": order.pk})
    data.update(changes)
    return data


def history(response) -> list[str]:
    """The labels in the history inline of an order's page."""
    return re.findall(r'field-label">\s*<p>(.*?)</p>', page(response))


def labels(order: Order) -> list[str]:
    return list(order.events.values_list("label", flat=True))


# --- Contracts and people --------------------------------------------------------


def test_office_creates_a_contract_with_its_service_codes_and_price_schedule_in_one_page(office_client, client_org):
    data = {
        "client": client_org.pk,
        "reference": "CVC-2025-01",
        "label": "Chauffage et ventilation",
        "starts_on": "01/01/2025",
        "ends_on": "31/12/2028",
        "default_delay_days": 10,
        "retention_days": 0,
        "billing_account": "",
        "active": "on",
        # The penalty terms, the CCAG-MI's (issue 11: each contract has its own).
        "late_penalty_divisor": 3000,
        "late_penalty_per_day": "",
        "late_penalty_cap_percent": "10",
        "late_penalty_exemption": "1000",
        "sharing_penalty_per_day": "150",
        "sharing_penalty_counting": "per_change",
        "verification_days": 7,
        **management("service_codes", 2),
        "service_codes-0-code": "CVC-PANNE",
        "service_codes-0-label": "Panne de chauffage",
        "service_codes-0-intervention_delay_hours": 4,
        "service_codes-0-completion_delay_hours": 24,
        "service_codes-1-code": "CVC-ENTRETIEN",
        "service_codes-1-label": "Entretien annuel",
        "service_codes-1-intervention_delay_hours": "",
        "service_codes-1-completion_delay_hours": "",
        **management("price_items", 2),
        "price_items-0-code": "CVC-001",
        "price_items-0-label": "Déplacement",
        "price_items-0-unit": "forfait",
        "price_items-0-unit_price": "45.00",
        "price_items-0-vat_rate": "10.00",
        "price_items-1-code": "CVC-002",
        "price_items-1-label": "Remplacement de circulateur",
        "price_items-1-unit": "u",
        "price_items-1-unit_price": "380.00",
        "price_items-1-vat_rate": "5.50",
    }

    response = office_client.post("/admin/portal/contract/add/", data)

    assert response.status_code == HTTPStatus.FOUND
    contract = Contract.objects.get(reference="CVC-2025-01")
    assert contract.client == client_org
    assert list(contract.service_codes.values_list("code", "completion_delay_hours")) == [
        ("CVC-ENTRETIEN", None),
        ("CVC-PANNE", 24),
    ]
    assert list(contract.price_items.values_list("code", "unit_price", "vat_rate")) == [
        ("CVC-001", Decimal("45.00"), Decimal("10.00")),
        ("CVC-002", Decimal("380.00"), Decimal("5.50")),
    ]


def test_saving_a_user_with_the_office_role_makes_them_staff_of_the_office_group(office_client):
    response = office_client.post(
        "/admin/portal/user/add/",
        {
            "username": "julie",
            "usable_password": "true",
            "password1": PASSWORD,
            "password2": PASSWORD,
            "first_name": "Julie",
            "last_name": "Roux",
            "role": Role.OFFICE,
            "email": "julie@example.fr",
            "mobile": "",
        },
    )

    assert response.status_code == HTTPStatus.FOUND
    julie = User.objects.get(username="julie")
    assert julie.is_staff
    assert list(julie.groups.values_list("name", flat=True)) == [OFFICE_GROUP]


def test_a_user_who_leaves_the_office_loses_the_admin(office_client):
    office_client.post(
        "/admin/portal/user/add/",
        {
            "username": "julie",
            "usable_password": "true",
            "password1": PASSWORD,
            "password2": PASSWORD,
            "role": Role.OFFICE,
        },
    )
    julie = User.objects.get(username="julie")

    response = office_client.post(
        f"/admin/portal/user/{julie.pk}/change/",
        {
            "username": "julie",
            "first_name": "Julie",
            "last_name": "Roux",
            "role": Role.SUPERVISOR,
            "email": "",
            "mobile": "06 01 02 03 04",
            "is_active": "on",
            "last_login_0": "",
            "last_login_1": "",
            "date_joined_0": "01/11/2026",
            "date_joined_1": "08:00:00",
        },
    )

    assert response.status_code == HTTPStatus.FOUND
    julie.refresh_from_db()
    assert julie.role == Role.SUPERVISOR
    assert not julie.is_staff
    assert not julie.groups.exists()


def test_office_staff_cannot_make_themselves_superuser(office_client, office):
    response = office_client.post(
        f"/admin/portal/user/{office.pk}/change/",
        {
            "username": office.username,
            "role": Role.OFFICE,
            "is_active": "on",
            "is_superuser": "on",
            "date_joined_0": "01/11/2026",
            "date_joined_1": "08:00:00",
        },
    )

    assert response.status_code == HTTPStatus.FOUND
    office.refresh_from_db()
    assert not office.is_superuser
    assert office.is_staff


@pytest.mark.parametrize(
    "url",
    [
        "/admin/portal/company/",
        "/admin/portal/company/add/",
        "/admin/portal/user/",
        "/admin/portal/user/add/",
        "/admin/portal/client/",
        "/admin/portal/client/add/",
        "/admin/portal/billingaccount/",
        "/admin/portal/billingaccount/add/",
        "/admin/portal/contract/",
        "/admin/portal/contract/add/",
        "/admin/portal/asset/",
        "/admin/portal/asset/add/",
        "/admin/portal/servicecode/",
        "/admin/portal/servicecode/add/",
        "/admin/portal/priceitem/",
        "/admin/portal/priceitem/add/",
        "/admin/orders/order/",
        "/admin/orders/order/add/",
    ],
)
def test_every_admin_list_and_add_page_opens_for_the_office(office_client, order, price_item, url):
    assert office_client.get(url).status_code == HTTPStatus.OK


def test_the_client_page_lists_its_contracts(office_client, client_org, contract):
    response = office_client.get(f"/admin/portal/client/{client_org.pk}/change/")

    assert response.status_code == HTTPStatus.OK
    assert "MULTITECH-2024-07" in page(response)
    assert f"/admin/portal/contract/{contract.pk}/change/" in page(response)


# --- Orders: adding and editing -------------------------------------------------


def test_office_creates_an_order_with_two_lines_and_a_technician(
    office_client, contract, asset, service_code, price_item, technician
):
    data = {
        "contract": contract.pk,
        "reference": "OPH57_241125101500",
        "billing_account": "",
        "service_code": service_code.pk,
        "work_type": "corrective",
        "critical_level": 2,
        "asset": asset.pk,
        "access_notes": "Digicode 4512B",
        "description": "Évier bouché",
        "occupant_name": "M. Paul Durand",
        "occupant_phone": "",
        "occupant_mobile": "06 22 33 44 55",
        "occupant_email": "",
        "notified_at_0": "25/11/2026",
        "notified_at_1": "10:15",
        "due_at_0": "",
        "due_at_1": "",
        "technician": technician.pk,
        "pilot": "",
        **management("lines", 3),
        **blank_line(0),
        "lines-0-reference": "L1",
        "lines-0-label": "Débouchage",
        "lines-0-unit_price": "85.00",
        **blank_line(1),
        "lines-1-price_item": price_item.pk,
        "lines-1-quantity": 2,
        **blank_line(2),
    }

    response = office_client.post("/admin/orders/order/add/", data)

    assert response.status_code == HTTPStatus.FOUND
    order = Order.objects.get(reference="OPH57_241125101500")
    assert order.state == State.TO_ACKNOWLEDGE
    assert order.technician == technician
    assert order.access_notes == "Digicode 4512B"
    # 72 hours from the hour after notification (10:15, so 11:00), from the service code
    # (CCAG-MI §3.2.1, issue 11: they ran from 10:15).
    assert split(order.due_at) == ("28/11/2026", "11:00:00")
    first, second = order.lines.all()
    assert (first.reference, first.label, first.unit_price) == ("L1", "Débouchage", Decimal("85.00"))
    # A line from the price schedule takes the price's code, label and price.
    assert (second.reference, second.label, second.quantity, second.unit_price) == (
        "PLB-012",
        "Remplacement de siphon d'évier",
        Decimal(2),
        Decimal("48.50"),
    )
    assert labels(order) == [
        "Commande reçue, échéance le samedi 28 novembre 2026 à 11 h",
        "Ligne ajoutée : L1 – Débouchage (1 u)",
        "Ligne ajoutée : PLB-012 – Remplacement de siphon d'évier (2 u)",
        "Technicien : Karim Haddad",
    ]
    assert set(order.events.values_list("actor__username", flat=True)) == {"nadia"}

    assert history(office_client.get(f"/admin/orders/order/{order.pk}/change/")) == labels(order)


def test_lines_typed_without_a_reference_are_numbered(office_client, contract):
    data = {
        "contract": contract.pk,
        "reference": "OPH57_SANS_REF",
        "work_type": "corrective",
        "critical_level": 0,
        **management("lines", 2),
        **blank_line(0),
        "lines-0-label": "Déplacement",
        **blank_line(1),
        "lines-1-label": "Main d'œuvre",
        "lines-1-quantity": "1.5",
        "lines-1-unit": "h",
    }

    response = office_client.post("/admin/orders/order/add/", data)

    assert response.status_code == HTTPStatus.FOUND
    order = Order.objects.get(reference="OPH57_SANS_REF")
    assert list(order.lines.values_list("reference", "label", "quantity", "unit")) == [
        ("L1", "Déplacement", Decimal(1), "u"),
        ("L2", "Main d'œuvre", Decimal("1.5"), "h"),
    ]


def test_a_refused_order_is_shown_again_with_the_french_reason_and_what_was_typed(office_client, contract, technician):
    elsewhere = Client.objects.create(name="Logiest")
    foreign_asset = Asset.objects.create(client=elsewhere, reference="LGT-9", label="Logement 9")
    data = {
        "contract": contract.pk,
        "reference": "OPH57_REFUSEE",
        "work_type": "corrective",
        "critical_level": 0,
        "asset": foreign_asset.pk,
        "description": "Volet roulant bloqué, chambre 2",
        "technician": technician.pk,
        **management("lines", 1),
        **blank_line(0),
    }

    response = office_client.post("/admin/orders/order/add/", data)

    assert response.status_code == HTTPStatus.OK
    text = page(response)
    assert "Cet élément de patrimoine n'appartient pas au client du marché." in text
    assert "Volet roulant bloqué, chambre 2" in text
    assert not Order.objects.filter(reference="OPH57_REFUSEE").exists()


def test_changing_the_technician_on_the_order_page_records_an_event(office_client, order, other_technician):
    response = office_client.post(
        f"/admin/orders/order/{order.pk}/change/", change_data(order, technician=other_technician.pk)
    )

    assert response.status_code == HTTPStatus.FOUND
    order.refresh_from_db()
    assert order.technician == other_technician
    event = order.events.latest("pk")
    assert event.label == "Technicien : Lucie Moreau"
    assert event.actor.username == "nadia"


def test_editing_an_order_and_its_lines_goes_through_the_services(office_client, order):
    first, second = order.lines.all()
    data = change_data(order, extra_lines=1, description="Fuite sous l'évier et le lave-vaisselle")
    data["lines-0-quantity"] = "2"
    data["lines-1-DELETE"] = "on"
    data.update({"lines-2-reference": "L3", "lines-2-label": "Remplacement du flexible", "lines-2-unit_price": "22.00"})

    response = office_client.post(f"/admin/orders/order/{order.pk}/change/", data)

    assert response.status_code == HTTPStatus.FOUND
    order.refresh_from_db()
    assert order.description == "Fuite sous l'évier et le lave-vaisselle"
    assert list(order.lines.values_list("reference", "quantity", "position")) == [
        ("L1", Decimal(2), 1),
        ("L3", Decimal(1), 2),
    ]
    assert labels(order)[-4:] == [
        "Commande modifiée : description",
        "Ligne retirée : L2 – Remplacement du siphon",
        "Ligne L1 modifiée : quantité",
        "Ligne ajoutée : L3 – Remplacement du flexible (1 u)",
    ]


def test_saving_an_unchanged_order_records_nothing(office_client, order):
    before = labels(order)

    response = office_client.post(f"/admin/orders/order/{order.pk}/change/", change_data(order))

    assert response.status_code == HTTPStatus.FOUND
    assert labels(order) == before


def test_a_refused_edit_is_shown_on_the_form_and_changes_nothing(office_client, order):
    elsewhere = Client.objects.create(name="Logiest")
    foreign_asset = Asset.objects.create(client=elsewhere, reference="LGT-9", label="Logement 9")
    before = labels(order)

    response = office_client.post(
        f"/admin/orders/order/{order.pk}/change/",
        change_data(order, asset=foreign_asset.pk, occupant_name="Mme Claire Martin-Lefèvre"),
    )

    assert response.status_code == HTTPStatus.OK
    text = page(response)
    assert "Cet élément de patrimoine n'appartient pas au client du marché." in text
    assert "Mme Claire Martin-Lefèvre" in text
    order.refresh_from_db()
    assert order.occupant_name == "Mme Claire Martin"
    assert labels(order) == before


def test_removing_a_line_already_done_is_refused_in_french(office_client, order, technician):
    services.acknowledge_order(order, actor=technician)
    services.mark_line(order.lines.get(reference="L2"), actor=technician, done=True)
    data = change_data(order)
    data["lines-1-DELETE"] = "on"

    response = office_client.post(f"/admin/orders/order/{order.pk}/change/", data)

    assert response.status_code == HTTPStatus.OK
    assert "La ligne L2 est réalisée : elle ne peut plus être retirée." in page(response)
    assert order.lines.count() == 2


def test_the_history_inline_is_read_only(office_client, order):
    data = change_data(order)
    data.update({"events-0-label": "Falsifié", "events-0-at_0": "01/01/2020", "events-0-at_1": "00:00:00"})
    data.update(management("events", order.events.count() + 1, order.events.count()))
    data[f"events-{order.events.count()}-label"] = "Événement inventé"
    before = list(order.events.values_list("pk", "at", "label"))

    response = office_client.post(f"/admin/orders/order/{order.pk}/change/", data)

    assert response.status_code == HTTPStatus.FOUND
    assert list(order.events.values_list("pk", "at", "label")) == before
    history = page(office_client.get(f"/admin/orders/order/{order.pk}/change/"))
    assert 'name="events-0-label"' not in history
    assert "events-0-DELETE" not in history


def test_the_execution_fields_cannot_be_typed_in(office_client, order):
    data = change_data(order, state=State.CLOSED, progress=80, invoice_number="F-FAUX")

    response = office_client.post(f"/admin/orders/order/{order.pk}/change/", data)

    assert response.status_code == HTTPStatus.FOUND
    order.refresh_from_db()
    assert (order.state, order.progress, order.invoice_number) == (State.TO_ACKNOWLEDGE, 0, "")


def test_a_closed_order_can_be_looked_at_but_not_edited(office_client, order):
    services.cancel_order(order, actor=None, reason="Doublon")

    response = office_client.get(f"/admin/orders/order/{order.pk}/change/")

    assert response.status_code == HTTPStatus.OK
    assert 'name="description"' not in page(response)
    assert "Commande annulée : Doublon" in page(response)
    response = office_client.post(f"/admin/orders/order/{order.pk}/change/", change_data(order, description="X"))
    assert response.status_code == HTTPStatus.FORBIDDEN


def test_office_cannot_delete_an_order(office_client, order):
    response = office_client.get(f"/admin/orders/order/{order.pk}/delete/")
    assert response.status_code == HTTPStatus.FORBIDDEN

    response = office_client.post(f"/admin/orders/order/{order.pk}/delete/", {"post": "yes"})
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert Order.objects.filter(pk=order.pk).exists()

    changelist = office_client.get("/admin/orders/order/")
    choices = dict(changelist.context["action_form"].fields["action"].choices)
    assert "delete_selected" not in choices
    assert f"/admin/orders/order/{order.pk}/delete/" not in page(
        office_client.get(f"/admin/orders/order/{order.pk}/change/")
    )


# --- Orders: the action pages -----------------------------------------------------


def test_the_order_page_shows_the_actions_allowed_in_its_state(office_client, order):
    text = page(office_client.get(f"/admin/orders/order/{order.pk}/change/"))

    assert f'href="/admin/orders/order/{order.pk}/action/acknowledge/"' in text
    assert f'href="/admin/orders/order/{order.pk}/action/cancel/"' in text
    assert f"/admin/orders/order/{order.pk}/action/finish/" not in text
    assert f"/admin/orders/order/{order.pk}/action/edit/" not in text


@pytest.fixture
def before_the_visits():
    """The day before the appointments these tests set (a past one is refused)."""
    with time_machine.travel(datetime(2026, 11, 24, 10, 0, tzinfo=PARIS), tick=False):
        yield


@pytest.mark.usefixtures("before_the_visits")
def test_acknowledging_then_planning_an_appointment_from_the_action_pages(office_client, order):
    response = office_client.get(f"/admin/orders/order/{order.pk}/action/acknowledge/")
    assert response.status_code == HTTPStatus.OK
    assert "Prendre en compte" in page(response)

    response = office_client.post(f"/admin/orders/order/{order.pk}/action/acknowledge/")
    assert response.status_code == HTTPStatus.FOUND
    assert response.url == f"/admin/orders/order/{order.pk}/change/"

    response = office_client.post(
        f"/admin/orders/order/{order.pk}/action/plan/",
        {"appointment_0": "25/11/2026", "appointment_1": "08:30"},
        follow=True,
    )

    assert response.status_code == HTTPStatus.OK
    order.refresh_from_db()
    assert order.state == State.PLANNED
    assert split(order.appointment_at) == ("25/11/2026", "08:30:00")
    label = "Rendez-vous fixé le mer. 25 nov. à 8 h 30"
    assert label in [str(message) for message in response.context["messages"]]
    assert label in history(response)
    assert order.events.latest("pk").actor.username == "nadia"


# An order's whole life through the action pages: what each page is sent, the
# state it leads to, and the label of the event in the history.
LIFE = [
    ("acknowledge", {}, State.ACKNOWLEDGED, "Commande prise en compte"),
    (
        "plan",
        {"appointment_0": "25/11/2026", "appointment_1": "08:30"},
        State.PLANNED,
        "Rendez-vous fixé le mer. 25 nov. à 8 h 30",
    ),
    (
        "suspend",
        {"reason": "occupant_absent", "note": "personne au rendez-vous"},
        State.SUSPENDED,
        "Intervention suspendue : occupant absent (personne au rendez-vous)",
    ),
    (
        "plan",
        {
            "planned_start_0": "26/11/2026",
            "planned_start_1": "08:00",
            "planned_end_0": "26/11/2026",
            "planned_end_1": "12:00",
            "reason": "Occupant absent",
        },
        State.PLANNED,
        "Travaux replanifiés du jeu. 26 nov. à 8 h 00 au jeu. 26 nov. à 12 h 00 (motif : Occupant absent)",
    ),
    (
        "start",
        {"at_0": "26/11/2026", "at_1": "08:10"},
        State.IN_PROGRESS,
        "Travaux démarrés le jeu. 26 nov. à 8 h 10",
    ),
    (
        "suspend",
        {"reason": "quote_request", "note": ""},
        State.SUSPENDED,
        "Intervention suspendue : devis nécessaire",
    ),
    ("resume", {"at_0": "27/11/2026", "at_1": "09:00"}, State.IN_PROGRESS, "Travaux repris"),
    (
        "finish",
        {"at_0": "27/11/2026", "at_1": "11:30"},
        State.FINISHED,
        "Travaux terminés le ven. 27 nov. à 11 h 30",
    ),
    (
        "record_reception",
        {"reception_date": "28/11/2026"},
        State.RECEIVED,
        "Travaux réceptionnés le 28 novembre 2026",
    ),
    (
        "invoice",
        {"invoice_date": "30/11/2026", "invoice_number": "F-2026-0042"},
        State.INVOICED,
        "Facture F-2026-0042 émise le 30 novembre 2026",
    ),
    ("close", {"outcome": "done"}, State.CLOSED, "Commande clôturée : travaux réalisés"),
]


@pytest.mark.usefixtures("before_the_visits")
def test_each_action_page_moves_the_order_through_its_service(office_client, order):
    for action, data, state, label in LIFE:
        url = f"/admin/orders/order/{order.pk}/action/{action}/"
        assert office_client.get(url).status_code == HTTPStatus.OK, action

        response = office_client.post(url, data, follow=True)

        assert response.redirect_chain == [(f"/admin/orders/order/{order.pk}/change/", HTTPStatus.FOUND)], action
        order.refresh_from_db()
        assert order.state == state
        event = order.events.latest("pk")
        assert (event.label, event.state_after, event.actor.username) == (label, state, "nadia")
        assert [str(message) for message in response.context["messages"]] == [label]
        assert label in history(response)
    assert (order.close_outcome, order.invoice_number, order.progress) == ("done", "F-2026-0042", 100)


def test_a_cancel_with_a_reason_cancels_the_order(office_client, order):
    response = office_client.post(f"/admin/orders/order/{order.pk}/action/cancel/", {"reason": "Doublon de OPH57_1"})

    assert response.status_code == HTTPStatus.FOUND
    order.refresh_from_db()
    assert (order.state, order.cancel_reason) == (State.CANCELLED, "Doublon de OPH57_1")
    assert labels(order)[-1] == "Commande annulée : Doublon de OPH57_1"


def test_an_illegal_action_shows_the_french_refusal_and_changes_nothing(office_client, order):
    before = labels(order)
    refusal = "Action « Terminer les travaux » impossible : la commande est à l'état « À prendre en compte »"

    response = office_client.get(f"/admin/orders/order/{order.pk}/action/finish/")
    assert response.status_code == HTTPStatus.OK
    assert refusal in page(response)

    response = office_client.post(
        f"/admin/orders/order/{order.pk}/action/finish/", {"at_0": "25/11/2026", "at_1": "10:00"}
    )

    assert response.status_code == HTTPStatus.OK
    assert page(response).count(refusal) == 1
    order.refresh_from_db()
    assert order.state == State.TO_ACKNOWLEDGE
    assert order.actual_end is None
    assert labels(order) == before


def test_planning_with_both_an_appointment_and_a_period_is_refused_in_french(office_client, order):
    services.acknowledge_order(order, actor=None)

    response = office_client.post(
        f"/admin/orders/order/{order.pk}/action/plan/",
        {
            "appointment_0": "25/11/2026",
            "appointment_1": "08:30",
            "planned_start_0": "25/11/2026",
            "planned_start_1": "08:00",
            "planned_end_0": "25/11/2026",
            "planned_end_1": "12:00",
        },
    )

    assert response.status_code == HTTPStatus.OK
    assert "indiquez soit un rendez-vous, soit une période prévue, pas les deux." in page(response)
    order.refresh_from_db()
    assert order.state == State.ACKNOWLEDGED


def test_a_cancel_without_a_reason_shows_a_french_form_error(office_client, order):
    response = office_client.post(f"/admin/orders/order/{order.pk}/action/cancel/", {"reason": "  "})

    assert response.status_code == HTTPStatus.OK
    assert "Ce champ est obligatoire." in page(response)
    order.refresh_from_db()
    assert order.state == State.TO_ACKNOWLEDGE
    assert order.cancel_reason == ""


def test_an_unknown_action_is_not_found(office_client, order):
    assert office_client.get(f"/admin/orders/order/{order.pk}/action/set_progress/").status_code == HTTPStatus.NOT_FOUND
    assert office_client.get(f"/admin/orders/order/{order.pk}/action/teleport/").status_code == HTTPStatus.NOT_FOUND
    assert office_client.get("/admin/orders/order/999999/action/acknowledge/").status_code == HTTPStatus.NOT_FOUND


def test_acknowledging_selected_orders_reports_each_success_and_failure(office_client, order, contract):
    second = receiving.register_order(contract=contract, reference="OPH57_SECOND", actor=None)
    services.acknowledge_order(second, actor=None)
    third = receiving.register_order(contract=contract, reference="OPH57_THIRD", actor=None)

    response = office_client.post(
        "/admin/orders/order/",
        {"action": "acknowledge_selected", "_selected_action": [order.pk, second.pk, third.pk], "index": 0},
        follow=True,
    )

    assert response.status_code == HTTPStatus.OK
    messages = [str(message) for message in response.context["messages"]]
    assert "2 commandes prises en compte." in messages
    assert any(message.startswith("OPH57_SECOND : Action « Prendre en compte » impossible") for message in messages)
    assert set(Order.objects.values_list("state", flat=True)) == {State.ACKNOWLEDGED}


# --- The list ------------------------------------------------------------------------


def test_the_order_list_filters_by_state_and_searches_by_reference(office_client, order, contract):
    other = receiving.register_order(contract=contract, reference="OPH57_AUTRE", actor=None)
    services.acknowledge_order(other, actor=None)

    response = office_client.get("/admin/orders/order/?state__exact=acknowledged")
    assert response.status_code == HTTPStatus.OK
    assert list(response.context["cl"].result_list) == [other]

    response = office_client.get("/admin/orders/order/?q=241122093015")
    assert list(response.context["cl"].result_list) == [order]

    response = office_client.get(f"/admin/orders/order/?contract__client__id__exact={contract.client_id}")
    assert set(response.context["cl"].result_list) == {order, other}


def test_the_order_list_needs_no_more_queries_for_more_orders(office_client, order, contract, asset, technician):
    def count_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert office_client.get("/admin/orders/order/").status_code == HTTPStatus.OK
        return len(queries)

    few = count_queries()
    for number in range(3):
        receiving.register_order(
            contract=contract, reference=f"OPH57_{number}", actor=None, asset=asset, technician=technician
        )

    assert count_queries() == few


# --- Who gets in ---------------------------------------------------------------------


@pytest.mark.parametrize("who", ["technician", "supervisor"])
def test_people_outside_the_office_are_sent_to_the_admin_login(client, request, order, who):
    client.force_login(request.getfixturevalue(who))

    for url in (
        "/admin/orders/order/",
        f"/admin/orders/order/{order.pk}/change/",
        f"/admin/orders/order/{order.pk}/action/acknowledge/",
    ):
        response = client.get(url)
        assert response.status_code == HTTPStatus.FOUND
        assert response.url.startswith("/admin/login/")

    response = client.post(f"/admin/orders/order/{order.pk}/action/acknowledge/")
    assert response.status_code == HTTPStatus.FOUND
    order.refresh_from_db()
    assert order.state == State.TO_ACKNOWLEDGE


def test_staff_without_the_office_permissions_cannot_act_on_orders(client, order):
    stranger = make_user("intrus", Role.TECHNICIAN, is_staff=True)
    client.force_login(stranger)

    response = client.post(f"/admin/orders/order/{order.pk}/action/acknowledge/")

    assert response.status_code == HTTPStatus.FORBIDDEN
    order.refresh_from_db()
    assert order.state == State.TO_ACKNOWLEDGE


# --- Content-Security-Policy: scripts from files only --------------------------------


def test_the_order_pages_have_no_inline_script(office_client, order):
    for url in (
        "/admin/orders/order/add/",
        f"/admin/orders/order/{order.pk}/change/",
        f"/admin/orders/order/{order.pk}/action/cancel/",
        f"/admin/orders/order/{order.pk}/action/acknowledge/",
        "/admin/portal/contract/add/",
    ):
        text = office_client.get(url).content.decode()
        for attributes in re.findall(r"<script\b([^>]*)>", text):
            assert "src=" in attributes or 'type="application/json"' in attributes, (url, attributes)
