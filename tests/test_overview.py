"""The supervisor's overview, /pilotage/: who may see it, and its figures on
data built by hand (every expected amount is worked out in the comments)."""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta
from decimal import Decimal
from html import unescape
from http import HTTPStatus

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orders.models import Order, OrderLine
from orders.states import State
from portal.models import Contract, User
from portal.relay.models import Breach, Connection, ConnectionKind, MessageKind, MessageStatus, OutboxMessage
from tests import factories
from tests.conftest import PARIS

# Tuesday 24 November 2026, 10:00 in Paris; the month began on Sunday 1 November.
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=PARIS)
LIST = "/pilotage/commandes/"
NB = "\u00a0"


@pytest.fixture(autouse=True)
def now():
    with time_machine.travel(NOW, tick=False):
        yield NOW


@pytest.fixture
def signed_in(client, supervisor):
    client.force_login(supervisor)
    return client


@pytest.fixture
def other_contract(db) -> Contract:
    other = factories.make_client(name="Foncière Lorraine Gestion", city="Nancy", postcode="")
    return factories.make_contract(other, reference="PLOMB-2025-02", label="Plomberie", starts_on=date(2025, 2, 1))


def an_order(contract, reference: str, *, lines=(), **fields) -> Order:
    """The overview only reads orders: they are made directly, as each test needs them
    (acknowledged unless said otherwise), with their lines as (quantity, unit price)."""
    return factories.an_order(contract, reference, lines=lines, **{"state": State.ACKNOWLEDGED, **fields})


def page(client) -> tuple[object, str]:
    response = client.get("/pilotage/")
    assert response.status_code == HTTPStatus.OK
    return response, unescape(response.content.decode())


# --- Access ------------------------------------------------------------------------


def test_a_signed_out_visitor_is_sent_to_the_login_page(client, db):
    response = client.get("/pilotage/")
    assert response.status_code == HTTPStatus.FOUND
    assert response.url == "/connexion/?next=/pilotage/"


def test_a_technician_gets_a_403(client, technician, order):
    client.force_login(technician)
    assert client.get("/pilotage/").status_code == HTTPStatus.FORBIDDEN


@pytest.mark.parametrize("who", ["supervisor", "office"])
def test_supervisors_and_office_staff_see_the_overview(client, request, who, order):
    client.force_login(request.getfixturevalue(who))
    response, html = page(client)
    assert "<h1>Pilotage</h1>" in html
    assert order.reference in html


# --- Orders by state -----------------------------------------------------------------


def test_each_count_by_state_links_to_the_list_of_its_client_contract_and_state(signed_in, contract, other_contract):
    an_order(contract, "A-1", state=State.TO_ACKNOWLEDGE)
    an_order(contract, "A-2", state=State.TO_ACKNOWLEDGE)
    an_order(contract, "A-3", state=State.IN_PROGRESS)
    an_order(other_contract, "B-1", state=State.TO_ACKNOWLEDGE)
    response, html = page(signed_in)
    a, b = contract, other_contract
    # per contract
    assert f'<a href="{LIST}?etat=to_acknowledge&marche={a.pk}">2</a>' in html
    assert f'<a href="{LIST}?etat=in_progress&marche={a.pk}">1</a>' in html
    assert f'<a href="{LIST}?marche={a.pk}">3</a>' in html
    assert f'<a href="{LIST}?etat=to_acknowledge&marche={b.pk}">1</a>' in html
    # per client
    assert f'<a href="{LIST}?etat=to_acknowledge&client={a.client_id}">2</a>' in html
    assert f'<a href="{LIST}?client={b.client_id}">1</a>' in html
    # per state, all clients
    assert f'<a href="{LIST}?etat=to_acknowledge">3</a>' in html
    assert f'<a href="{LIST}">4</a>' in html
    # an empty cell leads nowhere
    assert f"etat=planned&marche={a.pk}" not in html
    table = response.context["states"]
    assert [block.client.name for block in table.clients] == [
        "Foncière Lorraine Gestion",
        "Office Public de l'Habitat de Metz",
    ]
    assert table.count(State.TO_ACKNOWLEDGE) == 3


# --- Waiting to be acknowledged ------------------------------------------------------


def test_orders_to_acknowledge_show_what_is_left_of_the_fifteen_days_for_observations(signed_in, contract):
    # received Monday 16 November → last day Tuesday 1 December: 7 days after today
    an_order(contract, "RECENTE", state=State.TO_ACKNOWLEDGE, received_at=datetime(2026, 11, 16, 15, 0, tzinfo=PARIS))
    # received Monday 2 November → last day Tuesday 17 November: over
    an_order(contract, "ANCIENNE", state=State.TO_ACKNOWLEDGE, received_at=datetime(2026, 11, 2, 9, 0, tzinfo=PARIS))
    an_order(contract, "PRISE", state=State.ACKNOWLEDGED)
    response, html = page(signed_in)
    waiting = response.context["waiting"]
    assert [(item.order.reference, item.days_left) for item in waiting] == [("ANCIENNE", -7), ("RECENTE", 7)]
    assert f"7{NB}j restants" in html
    assert "jusqu'au 01/12/2026 inclus ; encore 7 jours après aujourd'hui." in html
    assert "délai expiré" in html
    assert f'<a href="{LIST}?etat=to_acknowledge"><strong>2</strong> à prendre en compte</a>' in html


# --- Late, and late within 48 hours ----------------------------------------------------


def test_late_and_soon_late_orders_are_counted_and_lead_to_the_list(signed_in, contract, technician):
    an_order(contract, "RETARD-1", due_at=NOW - timedelta(days=2), technician=technician)
    an_order(contract, "RETARD-2", state=State.SUSPENDED, due_at=NOW - timedelta(hours=3))
    an_order(contract, "FINIE", state=State.FINISHED, due_at=NOW - timedelta(days=4))  # done: not late
    an_order(contract, "BIENTOT", state=State.PLANNED, due_at=NOW + timedelta(hours=10))
    an_order(contract, "PLUS-TARD", due_at=NOW + timedelta(days=3))
    response, html = page(signed_in)
    assert [row.order.reference for row in response.context["late"]] == ["RETARD-1", "RETARD-2"]
    assert [row.order.reference for row in response.context["soon"]] == ["BIENTOT"]
    assert f'<a href="{LIST}?retard=oui"><strong>2</strong> en retard</a>' in html
    assert f'<a href="{LIST}?retard=48h"><strong>1</strong> en retard sous 48{NB}h</a>' in html
    assert f"dans 10{NB}h" in html
    # late by 2 days and by 3 hours
    assert f"<td>2{NB}j</td>" in html
    assert f"<td>3{NB}h</td>" in html


# --- Penalty exposure -------------------------------------------------------------------


def a_breach(order, connection, *, changed_at, delay: timedelta, sequence: int, delivered=True) -> Breach:
    message = OutboxMessage.objects.create(
        connection=connection,
        order=order,
        sequence=sequence,
        kind=MessageKind.INTERVENTION_LOG,
        payload={},
        status=MessageStatus.DELIVERED if delivered else MessageStatus.PENDING,
        created_at=changed_at,
        delivered_at=changed_at + delay if delivered else None,
    )
    return Breach.objects.create(
        message=message,
        connection=connection,
        changed_at=changed_at,
        delivered_at=message.delivered_at,
        delay_seconds=int(delay.total_seconds()),
    )


@pytest.fixture
def exposure_data(contract, other_contract):
    """Contract A (OPH):
      A-1: 3 × 1 500,00 + 1 000,00 = 5 500,00, 40 days late: 5 500 × 40 / 3000 = 73,33
      A-2: 9 000,00, 400 days late: 1 200,00, capped at 10 % = 900,00
      A-3: 2 × 30 000,00 = 60 000,00, 30 days late: 600,00
      total 1 573,33 > 1 000: due in full
    Contract B (FLG):
      B-1: 3 000,00, 10 days late: 10,00, exempt (≤ 1 000): 0,00 due
      breaches this month: 20 min (1 started day) and 1 d 2 h (2): 3 × 150 = 450,00;
      one in October, not counted
    Exposure: 1 573,33 + 0 + 450,00 = 2 023,33"""
    a1 = an_order(contract, "A-1", lines=[("3", "1500.00"), ("1", "1000.00")], due_at=NOW - timedelta(days=40, hours=5))
    a2 = an_order(contract, "A-2", lines=[("1", "9000.00")], due_at=NOW - timedelta(days=400))
    a3 = an_order(contract, "A-3", state=State.IN_PROGRESS, lines=[("2", "30000.00")], due_at=NOW - timedelta(days=30))
    b1 = an_order(other_contract, "B-1", lines=[("1", "3000.00")], due_at=NOW - timedelta(days=10, hours=2))
    link = Connection.objects.create(client=other_contract.client, kind=ConnectionKind.NONE)
    for sequence, (day, delay) in enumerate(
        [(date(2026, 11, 3), timedelta(minutes=20)), (date(2026, 11, 12), timedelta(days=1, hours=2))]
        + [(date(2026, 10, 30), timedelta(days=3))],
        start=1,
    ):
        changed_at = datetime.combine(day, datetime.min.time(), tzinfo=PARIS) + timedelta(hours=9)
        a_breach(b1, link, changed_at=changed_at, delay=delay, sequence=sequence)
    return a1, a2, a3, b1


def test_the_penalty_exposure_per_contract_applies_the_cap_and_the_exemption(signed_in, exposure_data, contract):
    a1, a2, a3, b1 = exposure_data
    response, html = page(signed_in)
    table = response.context["exposure"]
    figures = {
        row.contract.reference: (row.late.total, row.late.exempt, row.late.due, row.sharing.total, row.exposure.total)
        for row in table.rows
    }
    assert figures == {
        "MULTITECH-2024-07": (Decimal("1573.33"), False, Decimal("1573.33"), Decimal("0.00"), Decimal("1573.33")),
        "PLOMB-2025-02": (Decimal("10.00"), True, Decimal("0.00"), Decimal("450.00"), Decimal("450.00")),
    }
    assert (table.late_due, table.sharing, table.total) == (Decimal("1573.33"), Decimal("450.00"), Decimal("2023.33"))
    assert f"<strong>2{NB}023,33{NB}€</strong> de pénalités encourues" in html
    # each figure explains itself
    assert (
        f"A-2</a> : 9{NB}000,00{NB}€ HT × 400{NB}j / 3000 = 1{NB}200,00{NB}€, "
        f"plafonné à 10{NB}% de la valeur HT : 900,00{NB}€." in html
    )
    assert f"A-1</a> : 5{NB}500,00{NB}€ HT × 40{NB}j / 3000 = 73,33{NB}€." in html
    assert "pas plus de 1\u00a0000,00\u00a0€ pour l'ensemble du marché : exonération (CCAG-MI art. 15.3)" in html
    assert "(exonéré)" in html
    assert f"2 dépassements du délai de 15 minutes, 3{NB}j de retard commencés × 150,00{NB}€ = 450,00{NB}€" in html
    assert f"Transmis 1{NB}j 2{NB}h après la modification" in html
    # and leads to the orders behind it
    assert f'<a href="{LIST}?retard=oui&marche={contract.pk}">3</a>' in html
    for order in (a1, a2, a3, b1):
        assert f'<a href="/pilotage/commandes/{order.pk}/">{order.reference}</a>' in html


def test_no_late_order_and_no_breach_means_no_exposure(signed_in, contract):
    an_order(contract, "A-L-HEURE", lines=[("1", "9000.00")])
    response, html = page(signed_in)
    assert response.context["exposure"].rows == []
    assert "aucune pénalité encourue" in html
    assert f"<strong>0,00{NB}€</strong> de pénalités encourues" in html


# --- The relay's health -------------------------------------------------------------------


def test_the_relay_health_shows_the_oldest_waiting_message_the_rejected_and_the_breaches(
    signed_in, contract, exposure_data
):
    a1 = exposure_data[0]
    link = Connection.objects.create(client=contract.client, kind=ConnectionKind.INTENT, enabled=False)

    def message(sequence: int, age: timedelta, status: str) -> None:
        OutboxMessage.objects.create(
            connection=link,
            order=a1,
            sequence=sequence,
            kind=MessageKind.INTERVENTION_LOG,
            payload={},
            status=status,
            created_at=NOW - age,
        )

    message(1, timedelta(minutes=10), MessageStatus.REJECTED)
    message(2, timedelta(minutes=20), MessageStatus.PENDING)
    message(3, timedelta(minutes=5), MessageStatus.PENDING)
    response, html = page(signed_in)
    relay = response.context["relay"]
    assert (relay.waiting, relay.rejected, relay.breaches, relay.level) == (2, 1, 2, "danger")
    assert f"Plus ancien message en attente depuis <strong>20{NB}min</strong>" in html
    assert '<a href="/relais/erreurs/">1 message refusé</a>' in html
    assert "2 en attente · 2 dépassements ce mois-ci" in html


@pytest.mark.parametrize(
    ("waiting_for", "rejected", "level"),
    [
        (None, 0, "ok"),
        (timedelta(minutes=4), 0, "ok"),
        (None, 1, "warn"),
        (timedelta(minutes=6), 0, "warn"),
        (timedelta(minutes=16), 1, "danger"),
    ],
)
def test_the_relays_colour_warns_of_a_refusal_even_with_nothing_waiting(waiting_for, rejected, level):
    from orders.supervisor.overview import RelaySummary

    summary = RelaySummary(waiting=int(waiting_for is not None), rejected=rejected, breaches=0, oldest_age=waiting_for)
    assert summary.level == level


# --- Today's appointments ----------------------------------------------------------------------


def test_todays_appointments_by_technician_in_paris_time(signed_in, contract, technician, other_technician):
    today = NOW.date()

    def at(hour: int, minute: int = 0, days: int = 0) -> datetime:
        return datetime(today.year, today.month, today.day, hour, minute, tzinfo=PARIS) + timedelta(days=days)

    an_order(contract, "K-APRES-MIDI", state=State.PLANNED, technician=technician, appointment_at=at(14))
    an_order(contract, "K-MATIN", state=State.PLANNED, technician=technician, appointment_at=at(8, 30))
    an_order(contract, "K-SOIR", state=State.PLANNED, technician=technician, appointment_at=at(23, 30))
    an_order(contract, "K-DEMAIN", state=State.PLANNED, technician=technician, appointment_at=at(0, 30, days=1))
    an_order(
        contract,
        "L-CHANTIER",
        state=State.IN_PROGRESS,
        technician=other_technician,
        planned_start=at(8, days=-1),
        planned_end=at(17, days=1),
    )
    an_order(contract, "PERSONNE", state=State.PLANNED, appointment_at=at(11))
    an_order(
        contract,
        "ANNULEE",
        state=State.CANCELLED,
        cancel_reason="doublon",
        technician=technician,
        appointment_at=at(9),
    )
    response, html = page(signed_in)
    groups = [
        (technician.username if technician else None, [visit.order.reference for visit in visits])
        for technician, visits in response.context["visits"]
    ]
    # Haddad before Moreau; the unassigned last; 23:30 Paris is still today, 0:30 is tomorrow
    assert groups == [
        ("karim", ["K-MATIN", "K-APRES-MIDI", "K-SOIR"]),
        ("lucie", ["L-CHANTIER"]),
        (None, ["PERSONNE"]),
    ]
    assert "Travaux du 23/11 08:00 au 25/11 17:00" in html
    assert html.index("K-MATIN") < html.index("K-APRES-MIDI") < html.index("L-CHANTIER") < html.index("PERSONNE")
    order = Order.objects.get(reference="K-MATIN")
    assert f'<span class="visit-time">08:30</span> <a href="/pilotage/commandes/{order.pk}/">K-MATIN</a>' in html


# --- A constant number of queries -------------------------------------------------------------


def many_orders(contract, other_contract, technician, count: int) -> None:
    """`count` orders of every kind the page shows: to acknowledge, late (with
    lines), soon late, with an appointment today; and a breach for one in ten."""
    kinds = [
        {"state": State.TO_ACKNOWLEDGE, "received_at": NOW - timedelta(days=20)},
        {"state": State.ACKNOWLEDGED, "due_at": NOW - timedelta(days=12)},
        {"state": State.PLANNED, "due_at": NOW + timedelta(hours=20), "appointment_at": NOW + timedelta(hours=2)},
        {"state": State.IN_PROGRESS, "due_at": NOW - timedelta(days=40), "technician": technician},
        {"state": State.CLOSED, "due_at": NOW - timedelta(days=60)},
    ]
    orders = Order.objects.bulk_create(
        factories.build_order(
            contract if index % 3 else other_contract,
            f"N-{count}-{index}",
            **{"state": State.ACKNOWLEDGED, **kinds[index % len(kinds)]},
        )
        for index in range(count)
    )
    OrderLine.objects.bulk_create(
        factories.build_line(order, 0, reference=f"L{n}", quantity=Decimal(n), unit_price=Decimal("350"))
        for order in orders
        for n in (1, 2)
    )
    link, _ = Connection.objects.get_or_create(client=contract.client, defaults={"kind": ConnectionKind.NONE})
    for index, order in enumerate(orders[::10]):
        a_breach(order, link, changed_at=NOW - timedelta(days=1, minutes=index), delay=timedelta(hours=3), sequence=1)


def count_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/pilotage/")
    assert response.status_code == HTTPStatus.OK
    return len(queries)


def test_the_overview_runs_the_same_number_of_queries_for_ten_and_for_five_hundred_orders(
    signed_in, contract, other_contract, technician
):
    many_orders(contract, other_contract, technician, 10)
    few = count_queries(signed_in)
    many_orders(contract, other_contract, technician, 490)
    assert Order.objects.count() == 500
    many = count_queries(signed_in)
    assert few == many, (few, many)
    # 14 for the orders (with the admission countdowns of CCAG §33), 2 for the quotes' panel
    # (quotes/templatetags: the requests, the quotes needing attention).
    assert many <= 16, many


# --- The demo ------------------------------------------------------------------------------------


def test_the_demo_overview_shows_late_orders_a_penalty_exposure_and_breaches(client, db):
    call_command("seed_demo", stdout=io.StringIO())
    client.force_login(User.objects.get(username="conducteur"))
    response, html = page(client)
    context = response.context
    assert context["late_count"] >= 4
    assert context["soon_count"] >= 1
    assert context["waiting_count"] >= 2
    rows = {row.contract.reference: row for row in context["exposure"].rows}
    # the heating contract's boiler-room renovation and boilers: past the 1,000 EUR exemption
    heating = rows["PLOMB-CHAUF-2025-02"].late
    assert heating.order_count >= 2
    assert not heating.exempt
    assert heating.due > Decimal(1000)
    # the multitechnical contract's small delays stay exempt; the electrical one's CCAP has no exemption
    # (issue 11: the demo has a contract with its own penalty terms)
    assert all(row.late.exempt for reference, row in rows.items() if reference == "MULTITECH-2024-07")
    if "ELEC-2025-11" in rows:
        assert rows["ELEC-2025-11"].late.terms.exemption is None
        assert not rows["ELEC-2025-11"].late.exempt
    # two changes shared late this month, each within its first day of delay: 2 × 150
    assert context["relay"].breaches == 2
    assert context["exposure"].sharing == Decimal("300.00")
    assert "(exonéré)" in html
    assert "pas d'exonération (CCAG-MI art. 15.3), tout est dû" in html


def test_the_demo_has_a_contract_with_its_own_terms_and_admitted_tacit_and_adjourned_works(client, db):
    """Issue 11's acceptance: the CCAP contract and the three admission outcomes."""
    call_command("seed_demo", stdout=io.StringIO())
    elec = Contract.objects.get(reference="ELEC-2025-11")
    assert (elec.late_penalty_per_day, elec.late_penalty_divisor, elec.late_penalty_exemption) == (
        Decimal("50.00"),
        None,
        None,
    )
    client.force_login(User.objects.get(username="conducteur"))
    response, html = page(client)
    labels = {row.status.label for row in response.context["admissions"]}
    assert {"Admis", "Admis tacitement", "Ajourné"} <= labels
    assert "Admission des travaux terminés" in html
