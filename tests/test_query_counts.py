"""The technician's pages run a constant number of SQL queries, however many
orders the technician has and however long an order's lines and history are.

A technician may have hundreds of orders and an order a long history; a query
per card, per line or per event would make the pages slow exactly for the
busiest people (issue #4). Each test counts the queries of one page in a small
world, grows the world (new orders on other addresses, lines, events by other
people, documents, reports), counts again and expects the same number. The
grown page is checked to really show what was added, so that a page that
stopped listing things could not pass."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from http import HTTPStatus

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orders.models import (
    Document,
    DocumentKind,
    InterventionReport,
    Order,
    OrderEvent,
    OrderLine,
    PdfStatus,
)
from orders.states import State
from portal.models import Asset, Role, User
from tests import factories
from tests.conftest import PARIS, make_user

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=PARIS)
HTMX = {"HTTP_HX_REQUEST": "true"}

# Every state the home shows (open ones and the recently finished), round robin.
LISTED_STATES = [
    State.TO_ACKNOWLEDGE,
    State.ACKNOWLEDGED,
    State.PLANNED,
    State.IN_PROGRESS,
    State.SUSPENDED,
    State.FINISHED,
]


@pytest.fixture(autouse=True)
def now():
    with time_machine.travel(NOW, tick=False):
        yield NOW


def queries_for(client, url: str, **headers: str) -> tuple[int, str]:
    """The number of queries one GET runs, and the page (decoded)."""
    with CaptureQueriesContext(connection) as context:
        response = client.get(url, **headers)
    assert response.status_code == HTTPStatus.OK
    return len(context.captured_queries), response.content.decode()


def add_orders(contract, technician: User, count: int, *, start: int = 0) -> None:
    """`count` orders for `technician`, each on an address of its own, spread over
    the states, half with an appointment (some today), some late, some finished
    this week: every section and badge of the home gets cards."""
    client = contract.client
    assets = Asset.objects.bulk_create(
        factories.build_asset(
            client, reference=f"LGT-{number:05d}", label=f"Logement {number}", address=f"{number} rue des Lilas"
        )
        for number in range(start, start + count)
    )
    orders = []
    for number, asset in zip(range(start, start + count), assets, strict=True):
        state = LISTED_STATES[number % len(LISTED_STATES)]
        started = state in (State.IN_PROGRESS, State.SUSPENDED, State.FINISHED)
        orders.append(
            factories.build_order(
                contract,
                f"GROW-{number:05d}",
                technician=technician,
                asset=asset,
                state=state,
                occupant_name=f"Occupant {number}",
                due_at=NOW + timedelta(hours=number % 48 - 12),
                appointment_at=NOW + timedelta(hours=number % 30 - 2) if number % 2 else None,
                actual_start=NOW - timedelta(days=2) if started else None,
                actual_end=NOW - timedelta(days=1) if state == State.FINISHED else None,
                progress=100 if state == State.FINISHED else number % 100,
            )
        )
    Order.objects.bulk_create(orders)


def grow_order(order: Order, actors: list[User], *, lines: int, events: int, documents: int, reports: int) -> None:
    """Give `order` this many more lines, events (by several people), documents
    and intervention reports (in every PDF state but `done`, which shows as its
    document)."""
    base = order.lines.count()
    OrderLine.objects.bulk_create(
        factories.build_line(
            order,
            base + number,
            reference=f"X{base + number}",
            label=f"Ligne ajoutée {base + number}",
            quantity=Decimal(number % 3 + 1),
            unit_price=Decimal("12.50"),
            done=bool(number % 2),
            done_at=NOW - timedelta(hours=1) if number % 2 else None,
        )
        for number in range(lines)
    )
    known_events = order.events.count()
    OrderEvent.objects.bulk_create(
        OrderEvent(
            order=order,
            at=NOW - timedelta(minutes=events - number),
            kind="note",
            label=f"Note de chantier {known_events + number}",
            actor=actors[number % len(actors)] if number % 5 else None,
        )
        for number in range(events)
    )
    Document.objects.bulk_create(
        Document(
            order=order,
            kind=DocumentKind.UPLOADED_REPORT,
            title=f"Compte rendu n° {number}",
            file=f"documents/2026/11/grow-{order.pk}-{number}.pdf",
            file_name=f"rapport-{number}.pdf",
            size=1000 + number,
            sha256="0" * 64,
            created_by=actors[number % len(actors)],
        )
        for number in range(documents)
    )
    pending_states = [PdfStatus.PENDING, PdfStatus.RENDERING, PdfStatus.FAILED]
    InterventionReport.objects.bulk_create(
        factories.build_report(
            order,
            works_done=f"Travaux {number}",
            time_on_site_minutes=30,
            quote_needed=bool(number % 2),
            quote_description="Remplacer le meuble bas" if number % 2 else "",
            pdf_status=pending_states[number % len(pending_states)],
            pdf_error="Police introuvable" if number % 3 == 2 else "",
            created_by=actors[number % len(actors)],
        )
        for number in range(reports)
    )


# --- My orders ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "headers"),
    [
        ("/mes-commandes/", {}),
        ("/mes-commandes/", HTMX),
        ("/mes-commandes/?q=rue+Metz", {}),
        ("/mes-commandes/?q=GROW", HTMX),
    ],
    ids=["page", "htmx-list", "search", "htmx-search"],
)
def test_my_orders_runs_the_same_queries_with_500_orders_as_with_10(
    client, contract, technician, other_technician, url, headers
):
    client.force_login(technician)
    add_orders(contract, technician, 10)
    add_orders(contract, other_technician, 10, start=10_000)
    with_10, _ = queries_for(client, url, **headers)

    add_orders(contract, technician, 490, start=10)
    add_orders(contract, other_technician, 490, start=10_010)
    with_500, html = queries_for(client, url, **headers)

    assert with_500 == with_10
    assert html.count('<a class="order-card') == 500
    assert html.count("badge-late") > 0


# --- An order -------------------------------------------------------------------------


@pytest.mark.parametrize("state", [State.TO_ACKNOWLEDGE, State.IN_PROGRESS, State.SUSPENDED, State.FINISHED])
@pytest.mark.parametrize("role", [Role.TECHNICIAN, Role.SUPERVISOR])
def test_the_order_page_runs_the_same_queries_with_50_lines_and_events_as_with_2(
    client, contract, technician, supervisor, order, state, role
):
    """The fixture's order (2 lines, 1 event) grown to 50 lines and events, with
    more documents and reports, among 500 orders of its technician."""
    Order.objects.filter(pk=order.pk).update(
        state=state,
        actual_start=NOW - timedelta(days=1) if state != State.TO_ACKNOWLEDGE else None,
        actual_end=NOW - timedelta(hours=2) if state == State.FINISHED else None,
        suspend_reason="occupant_absent" if state == State.SUSPENDED else "",
    )
    office_user = make_user("paul", Role.OFFICE)
    actors = [technician, supervisor, office_user]
    client.force_login(technician if role == Role.TECHNICIAN else supervisor)
    add_orders(contract, technician, 10)
    grow_order(order, actors, lines=0, events=1, documents=1, reports=1)
    url = f"/commandes/{order.pk}/"
    with_2, _ = queries_for(client, url)
    with_2_htmx, _ = queries_for(client, url, **HTMX)

    add_orders(contract, technician, 490, start=10)
    grow_order(order, actors, lines=48, events=48, documents=20, reports=9)
    with_50, html = queries_for(client, url)
    with_50_htmx, _ = queries_for(client, url, **HTMX)

    assert (with_50, with_50_htmx) == (with_2, with_2_htmx)
    assert "Ligne ajoutée 49" in html
    assert f"/ {order.lines.count()} réalisée" in html
    assert html.count("Note de chantier") == 49
    assert html.count("Compte rendu n°") == 21
    assert html.count('class="pdf-status') == 10
