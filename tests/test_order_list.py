"""All orders for supervisors and office staff: filters, search, sorting and
pagination from the query string, the htmx fragment, and the CSV export."""

from __future__ import annotations

import codecs
import csv
import io
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from http import HTTPStatus

import pytest
import time_machine
from django.db import connection
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext

from orders.models import InterventionReport, Order, OrderLine
from orders.states import State
from portal.models import Asset, Client, Contract
from tests import factories
from tests.conftest import PARIS

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=PARIS)
HTMX = {"HTTP_HX_REQUEST": "true"}
LIST = "/pilotage/commandes/"
CSV = "/pilotage/commandes.csv"


@pytest.fixture(autouse=True)
def now():
    with time_machine.travel(NOW, tick=False):
        yield NOW


@pytest.fixture
def signed_in(client, supervisor):
    client.force_login(supervisor)
    return client


@pytest.fixture
def other_client(db) -> Client:
    return factories.make_client(name="Batigère", city="Nancy", postcode="54000")


@pytest.fixture
def other_contract(other_client) -> Contract:
    return factories.make_contract(
        other_client,
        reference="BTG-2025-01",
        label="Entretien courant",
        starts_on=date(2025, 1, 1),
    )


@pytest.fixture
def other_asset(other_client) -> Asset:
    return factories.make_asset(
        other_client,
        reference="NCY-77",
        label="Logement 3",
        address="7 avenue de la Libération",
        postcode="54000",
        city="Nancy",
    )


# The list only reads orders: they are made directly, as each test needs them.
an_order = factories.an_order


def a_report(order: Order) -> InterventionReport:
    report = factories.build_report(order, works_done="Siphon remplacé", time_on_site_minutes=45)
    report.save()
    return report


def references(response) -> list[str]:
    """The references of the table's rows, in the order shown."""
    assert response.status_code == HTTPStatus.OK
    return re.findall(r'class="reference" href="[^"]+">([^<]+)</a>', response.content.decode())


def notes(response) -> list[str]:
    return re.findall(r'<li class="message error">([^<]+)</li>', response.content.decode())


def csv_rows(response) -> list[list[str]]:
    assert response.status_code == HTTPStatus.OK
    content = b"".join(response.streaming_content)
    assert content.startswith(codecs.BOM_UTF8)
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig")), delimiter=";"))


# --- Access ------------------------------------------------------------------------


@pytest.mark.parametrize("url", [LIST, CSV])
def test_signed_out_visitors_are_sent_to_the_login_page(client, db, url):
    response = client.get(url)
    assert response.status_code == HTTPStatus.FOUND
    assert response.url.startswith("/connexion/?next=")


@pytest.mark.parametrize("url", [LIST, CSV])
def test_a_technician_may_not_see_all_orders(client, technician, contract, url):
    an_order(contract, "SOMEONE-ELSES", technician=None)
    client.force_login(technician)
    response = client.get(url)
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert b"SOMEONE-ELSES" not in response.content


@pytest.mark.parametrize("url", [LIST, CSV])
def test_office_staff_see_every_order(client, office, contract, technician, url):
    an_order(contract, "ASSIGNED", technician=technician)
    an_order(contract, "UNASSIGNED")
    client.force_login(office)
    response = client.get(url)
    if url == CSV:
        assert {row[0] for row in csv_rows(response)[1:]} == {"ASSIGNED", "UNASSIGNED"}
    else:
        assert sorted(references(response)) == ["ASSIGNED", "UNASSIGNED"]


def test_supervisors_and_office_find_the_list_in_the_menu_technicians_do_not(client, supervisor, technician):
    client.force_login(supervisor)
    assert f'href="{LIST}">Commandes</a>' in client.get("/pilotage/").content.decode()
    client.force_login(technician)
    assert LIST not in client.get("/mes-commandes/").content.decode()


# --- The table ---------------------------------------------------------------------


def test_each_row_shows_the_order_and_where_it_stands(signed_in, contract, asset, technician):
    late = an_order(
        contract,
        "OPH57-LATE",
        asset=asset,
        occupant_name="Mme Claire Martin",
        technician=technician,
        state=State.PLANNED,
        received_at=datetime(2026, 11, 20, 23, 30, tzinfo=UTC),  # the 21st in Paris
        due_at=NOW - timedelta(hours=2),
    )
    a_report(late)
    an_order(contract, "OPH57-SOON", due_at=NOW + timedelta(hours=30))
    an_order(contract, "OPH57-DONE", state=State.FINISHED, due_at=NOW - timedelta(days=1))

    html = signed_in.get(LIST).content.decode()

    row = re.search(r"<tr[^>]*>\s*<td><a class=\"reference\"[^>]*>OPH57-LATE</a>.*?</tr>", html, re.S).group(0)
    assert f'href="/pilotage/commandes/{late.pk}/"' in row
    assert 'class="is-late"' in row
    for text in (
        "Office Public de l&#x27;Habitat de Metz",
        "MULTITECH-2024-07",
        "14 rue des Tilleuls, 57000 Metz",
        "Mme Claire Martin",
        '<span class="badge state-planned">Planifié</span>',
        "Karim Haddad",
        "21/11/2026",
        "24/11/2026 à 08:00",  # a due hour; a period in days shows "à minuit" (issue 11)
        "En retard",
        "Oui",
    ):
        assert text in row, text
    soon = re.search(r"<tr[^>]*>\s*<td><a class=\"reference\"[^>]*>OPH57-SOON</a>.*?</tr>", html, re.S).group(0)
    assert "Sous 48 h" in soon
    assert "Non affecté" in soon
    assert "is-late" not in soon
    done = re.search(r"<tr[^>]*>\s*<td><a class=\"reference\"[^>]*>OPH57-DONE</a>.*?</tr>", html, re.S).group(0)
    assert "En retard" not in done  # finished works are never late
    assert "<strong>3</strong> commandes" in html


def test_an_empty_list_says_so(signed_in, contract):
    response = signed_in.get(LIST)
    assert references(response) == []
    assert "Aucune commande ne correspond à ces filtres." in response.content.decode()


# --- Filters -----------------------------------------------------------------------


def test_filter_by_one_state_or_several(signed_in, contract):
    an_order(contract, "TO-ACK", state=State.TO_ACKNOWLEDGE)
    an_order(contract, "PLANNED", state=State.PLANNED)
    an_order(contract, "CLOSED", state=State.CLOSED, received_at=NOW - timedelta(days=9))

    assert references(signed_in.get(LIST, {"etat": "to_acknowledge"})) == ["TO-ACK"]
    assert sorted(references(signed_in.get(f"{LIST}?etat=planned&etat=closed"))) == ["CLOSED", "PLANNED"]
    html = signed_in.get(LIST, {"etat": "planned"}).content.decode()
    assert 'value="planned" id="id_etat_2" checked' in html  # the form shows the filter applied


def test_an_unknown_state_is_ignored_with_a_note_the_known_ones_kept(signed_in, contract):
    an_order(contract, "TO-ACK", state=State.TO_ACKNOWLEDGE)
    an_order(contract, "PLANNED", state=State.PLANNED)

    response = signed_in.get(f"{LIST}?etat=to_acknowledge&etat=perdu")

    assert references(response) == ["TO-ACK"]
    assert notes(response) == ["État inconnu ignoré : « perdu »."]


def test_filter_by_client_and_by_contract(signed_in, contract, other_contract):
    an_order(contract, "METZ-1")
    an_order(other_contract, "NANCY-1")

    assert references(signed_in.get(LIST, {"client": other_contract.client_id})) == ["NANCY-1"]
    assert references(signed_in.get(LIST, {"marche": contract.pk})) == ["METZ-1"]
    assert references(signed_in.get(LIST, {"client": contract.client_id, "marche": other_contract.pk})) == []


def test_filter_by_technician_or_unassigned(signed_in, contract, technician, other_technician):
    an_order(contract, "KARIM", technician=technician)
    an_order(contract, "LUCIE", technician=other_technician)
    an_order(contract, "NOBODY")

    assert references(signed_in.get(LIST, {"technicien": technician.pk})) == ["KARIM"]
    assert references(signed_in.get(LIST, {"technicien": "aucun"})) == ["NOBODY"]
    html = signed_in.get(LIST, {"technicien": "aucun"}).content.decode()
    assert '<option value="aucun" selected>Non affecté</option>' in html


def test_filter_late_now_or_within_48_hours(signed_in, contract):
    an_order(contract, "LATE", state=State.IN_PROGRESS, due_at=NOW - timedelta(minutes=1))
    an_order(contract, "LATE-BUT-FINISHED", state=State.FINISHED, due_at=NOW - timedelta(days=1))
    an_order(contract, "SOON", state=State.ACKNOWLEDGED, due_at=NOW + timedelta(hours=47))
    an_order(contract, "LATER", state=State.ACKNOWLEDGED, due_at=NOW + timedelta(hours=49))
    an_order(contract, "NO-DUE-DATE", due_at=None)

    assert references(signed_in.get(LIST, {"retard": "oui"})) == ["LATE"]
    assert references(signed_in.get(LIST, {"retard": "48h"})) == ["SOON"]


def test_filter_with_or_without_a_report(signed_in, contract):
    a_report(an_order(contract, "WITH"))
    an_order(contract, "WITHOUT")

    assert references(signed_in.get(LIST, {"rapport": "avec"})) == ["WITH"]
    assert references(signed_in.get(LIST, {"rapport": "sans"})) == ["WITHOUT"]


def test_received_dates_are_days_in_paris(signed_in, contract):
    # 22:30 UTC on the 9th is the 9th in Paris (winter: UTC+1); 23:30 UTC is already the 10th.
    an_order(contract, "9TH-LATE", received_at=datetime(2026, 11, 9, 22, 30, tzinfo=UTC))
    an_order(contract, "10TH-EARLY", received_at=datetime(2026, 11, 9, 23, 30, tzinfo=UTC))
    an_order(contract, "10TH-EVENING", received_at=datetime(2026, 11, 10, 22, 59, tzinfo=UTC))
    an_order(contract, "11TH", received_at=datetime(2026, 11, 10, 23, 0, tzinfo=UTC))

    assert references(signed_in.get(LIST, {"du": "2026-11-10", "au": "2026-11-10"})) == ["10TH-EVENING", "10TH-EARLY"]
    assert references(signed_in.get(LIST, {"du": "2026-11-10"})) == ["11TH", "10TH-EVENING", "10TH-EARLY"]
    assert references(signed_in.get(LIST, {"au": "2026-11-09"})) == ["9TH-LATE"]


def test_dates_the_wrong_way_round_are_ignored_with_a_note(signed_in, contract):
    an_order(contract, "ANY")
    response = signed_in.get(LIST, {"du": "2026-11-20", "au": "2026-11-01"})
    assert references(response) == ["ANY"]
    assert notes(response) == ["Filtre « Dates de réception » ignoré : la date de début est après la date de fin."]


def test_bad_values_are_ignored_with_french_notes_never_an_error(signed_in, contract):
    an_order(contract, "ANY")
    response = signed_in.get(
        LIST,
        {
            "client": "999999",
            "marche": "abc",
            "technicien": "-4",
            "retard": "peut-être",
            "rapport": "1",
            "du": "2026-02-30",
            "au": "hier",
            "tri": "prix",
            "q": "x" * 101,
        },
    )
    assert references(response) == ["ANY"]
    ignored = notes(response)
    assert len(ignored) == 9
    for label in ("Client", "Marché", "Technicien", "Retard", "Rapport d&#x27;intervention", "Reçue du", "au", "Tri"):
        assert any(note.startswith(f"Filtre « {label} » ignoré") for note in ignored), label
    assert "Saisissez une date valide." in response.content.decode()


def test_filters_combine(signed_in, contract, other_contract, technician):
    an_order(contract, "MATCH", state=State.PLANNED, technician=technician)
    an_order(contract, "WRONG-STATE", state=State.ACKNOWLEDGED, technician=technician)
    an_order(contract, "WRONG-TECHNICIAN", state=State.PLANNED)
    an_order(other_contract, "WRONG-CONTRACT", state=State.PLANNED, technician=technician)

    response = signed_in.get(LIST, {"etat": "planned", "technicien": technician.pk, "marche": contract.pk})
    assert references(response) == ["MATCH"]


# --- Search ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("oph57", ["OPH57-0001"]),
        ("tilleuls", ["OPH57-0001"]),
        ("57000", ["OPH57-0001"]),
        ("nancy", ["BTG-0002"]),
        ("durand", ["BTG-0002"]),
        ("Libération Durand", ["BTG-0002"]),  # every word, anywhere
        ("tilleuls durand", []),  # ... but all of them
        ("  ", ["OPH57-0001", "BTG-0002"]),  # newest first
    ],
)
def test_search_finds_every_word_in_reference_address_or_occupant(
    signed_in, contract, other_contract, asset, other_asset, query, found
):
    an_order(contract, "OPH57-0001", asset=asset, occupant_name="M. Paul Lefèvre", received_at=NOW - timedelta(days=2))
    an_order(other_contract, "BTG-0002", asset=other_asset, occupant_name="Mme Anne Durand")
    assert references(signed_in.get(LIST, {"q": query})) == found


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("%", []),  # LIKE's wildcards are searched as such
        ("_", []),
        ("0001'", []),
        ("\\", []),
        ("ab", []),  # shorter than a trigram
        ("x" * 100, []),
    ],
)
def test_search_takes_odd_words_literally(signed_in, contract, asset, query, found):
    an_order(contract, "OPH57-0001", asset=asset, occupant_name="M. Paul Lefèvre")
    response = signed_in.get(LIST, {"q": query})
    assert response.status_code == HTTPStatus.OK
    assert references(response) == found


@pytest.mark.parametrize("query", ["Metz\x00", "x" * 101])
def test_a_search_the_form_refuses_is_left_out_with_a_note(signed_in, contract, asset, query):
    an_order(contract, "OPH57-0001", asset=asset)
    response = signed_in.get(LIST, {"q": query})
    assert response.status_code == HTTPStatus.OK
    assert "Filtre « Rechercher » ignoré" in response.content.decode()
    assert references(response) == ["OPH57-0001"]


@pytest.mark.postgres
def test_search_finds_its_rows_through_the_trigram_indexes_on_postgresql(contract, asset):
    """The indexes of migration 0009 are on the very expression Django writes
    for `icontains` (else PostgreSQL reads every order on each search)."""
    an_order(contract, "OPH57-0001", asset=asset, occupant_name="M. Paul Lefèvre")
    sql, params = Order.objects.search("Lefèvre").values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        # A handful of rows are cheaper to read whole or by key: the planner
        # is told not to, which leaves it the bitmap scans of the indexes.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    for index in (
        "orders_order_reference_trgm",
        "orders_order_occupant_name_trgm",
        "portal_asset_address_trgm",
        "portal_asset_address_complement_trgm",
        "portal_asset_postcode_trgm",
        "portal_asset_city_trgm",
        "portal_asset_label_trgm",
    ):
        assert index in plan, plan
    assert list(Order.objects.search("lefèvre").values_list("reference", flat=True)) == ["OPH57-0001"]


# --- Sorting -----------------------------------------------------------------------


@pytest.fixture
def three_orders(contract, other_contract, technician, other_technician):
    an_order(
        contract,
        "REF-A",
        state=State.IN_PROGRESS,
        technician=other_technician,
        received_at=NOW - timedelta(days=3),
        due_at=NOW + timedelta(days=1),
    )
    an_order(
        other_contract,
        "REF-B",
        state=State.TO_ACKNOWLEDGE,
        technician=technician,
        received_at=NOW - timedelta(days=1),
        due_at=NOW + timedelta(days=10),
    )
    an_order(contract, "REF-C", state=State.PLANNED, received_at=NOW - timedelta(days=2), due_at=None)


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("reference", "ABC"),
        ("-reference", "CBA"),
        ("client", "BAC"),  # Batigère, then OPH (equal ones by creation)
        ("-client", "CAB"),
        ("marche", "BAC"),
        ("-marche", "CAB"),
        ("etat", "BCA"),  # the state machine's order: to acknowledge, planned, in progress
        ("-etat", "ACB"),
        ("technicien", "BAC"),  # Haddad, Moreau, then the unassigned
        ("-technicien", "ABC"),
        ("recue", "ACB"),
        ("-recue", "BCA"),
        ("echeance", "ABC"),  # no due date last
        ("-echeance", "BAC"),
    ],
)
def test_each_sort_and_its_reverse(signed_in, three_orders, sort, expected):
    assert references(signed_in.get(LIST, {"tri": sort})) == [f"REF-{letter}" for letter in expected]


def test_the_default_sort_is_newest_first_and_stable(signed_in, contract):
    same_time = NOW - timedelta(days=1)
    for number in range(5):
        an_order(contract, f"SAME-{number}", received_at=same_time)
    an_order(contract, "NEWEST", received_at=NOW)
    expected = ["NEWEST", "SAME-4", "SAME-3", "SAME-2", "SAME-1", "SAME-0"]
    assert references(signed_in.get(LIST)) == expected
    assert references(signed_in.get(LIST, {"tri": "zz"})) == expected


def test_a_header_link_sorts_by_its_column_keeping_the_filters(signed_in, three_orders, contract):
    html = signed_in.get(LIST, {"marche": contract.pk, "tri": "reference", "page": "1"}).content.decode()
    assert f'<a href="?marche={contract.pk}&amp;tri=-reference">Référence ▲</a>' in html
    assert f'<a href="?marche={contract.pk}&amp;tri=etat">État</a>' in html
    assert f'<a href="?marche={contract.pk}&amp;tri=-recue">Reçue le</a>' in html
    assert 'aria-sort="ascending"' in html


# --- Pagination --------------------------------------------------------------------


@pytest.fixture
def many_orders(contract):
    Order.objects.bulk_create(
        Order(
            contract=contract,
            reference=f"BULK-{number:03d}",
            received_at=NOW - timedelta(minutes=number),
            notified_at=NOW - timedelta(minutes=number),
        )
        for number in range(120)
    )


@pytest.mark.parametrize(
    ("page", "first", "count"),
    [
        (None, "BULK-000", 50),
        ("2", "BULK-050", 50),
        ("3", "BULK-100", 20),
        ("4", "BULK-100", 20),  # past the end: the last page
        ("999999999999999999999", "BULK-100", 20),
        ("0", "BULK-000", 50),
        ("-2", "BULK-000", 50),
        ("abc", "BULK-000", 50),  # junk: the first page
        ("2.5", "BULK-000", 50),
    ],
)
def test_fifty_orders_per_page_and_no_error_for_any_page(signed_in, many_orders, page, first, count):
    listed = references(signed_in.get(LIST, {"page": page} if page else {}))
    assert len(listed) == count
    assert listed[0] == first


def test_page_links_carry_the_filters(signed_in, many_orders):
    html = signed_in.get(LIST, {"q": "BULK", "tri": "reference", "page": "2"}).content.decode()
    assert "Page 2 sur 3" in html
    assert '<a href="?q=BULK&amp;tri=reference&amp;page=3" rel="next">Suivante ›</a>' in html
    assert '<a href="?q=BULK&amp;tri=reference&amp;page=1" rel="prev">‹ Précédente</a>' in html
    assert 'href="?q=BULK&amp;tri=reference&amp;page=1">« Première</a>' in html


# --- htmx --------------------------------------------------------------------------


def test_htmx_gets_only_the_table_the_same_url_gives_the_whole_page(signed_in, contract):
    an_order(contract, "ONE")

    page = signed_in.get(LIST, {"tri": "reference"})
    fragment = signed_in.get(LIST, {"tri": "reference"}, **HTMX)

    page_html, fragment_html = page.content.decode(), fragment.content.decode()
    assert "<html" in page_html
    assert 'action="/pilotage/commandes/"' in page_html
    assert 'data-hx-get="/pilotage/commandes/"' in page_html
    assert 'data-hx-push-url="true"' in page_html
    assert "keyup changed delay" in page_html
    assert fragment_html.lstrip().startswith('<div id="order-table"')
    assert "<html" not in fragment_html
    assert "<form" not in fragment_html
    assert references(fragment) == ["ONE"]
    # The sort is brought back into the form out of band.
    assert 'name="tri" id="filter-tri" value="reference" data-hx-swap-oob="true"' in fragment_html
    assert "data-hx-swap-oob" not in page_html
    assert "HX-Request" in fragment["Vary"]
    assert "HX-Request" in page["Vary"]


def test_a_history_restore_gets_the_whole_page(signed_in, contract):
    response = signed_in.get(LIST, HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true")
    assert "<html" in response.content.decode()


# --- CSV ---------------------------------------------------------------------------


def test_the_csv_link_carries_the_current_filters(signed_in, contract):
    html = signed_in.get(LIST, {"etat": ["planned", "to_acknowledge"], "retard": "oui", "page": "1"}).content.decode()
    assert 'href="/pilotage/commandes.csv?etat=planned&amp;etat=to_acknowledge&amp;retard=oui"' in html
    assert "Exporter en CSV" in html


def test_the_csv_is_for_excel_in_france(signed_in, contract, asset, technician):
    order = an_order(
        contract,
        "OPH57-0001",
        asset=asset,
        occupant_name="Mme Claire Martin",
        technician=technician,
        state=State.IN_PROGRESS,
        received_at=datetime(2026, 11, 20, 23, 30, tzinfo=UTC),
        due_at=datetime(2026, 11, 23, 8, 30, tzinfo=UTC),
    )
    OrderLine.objects.create(order=order, reference="L1", label="Siphon", quantity=2, unit_price=Decimal("1234.25"))
    OrderLine.objects.create(order=order, reference="L2", label="Joint", quantity=Decimal("0.5"), unit_price=10)
    a_report(order)
    an_order(contract, "NO-LINES", received_at=NOW - timedelta(days=10))

    response = signed_in.get(CSV)

    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="commandes-2026-11-24.csv"'
    header, first, second = csv_rows(response)
    assert header == [
        "Référence",
        "Client",
        "Marché",
        "Adresse",
        "Code postal",
        "Ville",
        "Occupant",
        "État",
        "Technicien",
        "Reçue le",
        "Échéance",
        "En retard",
        "Fin des travaux",
        "Rapport d'intervention",
        "Montant HT (€)",
    ]
    assert first == [
        "OPH57-0001",
        "Office Public de l'Habitat de Metz",
        "MULTITECH-2024-07",
        "14 rue des Tilleuls",
        "57000",
        "Metz",
        "Mme Claire Martin",
        "En cours",
        "Karim Haddad",
        "21/11/2026 00:30",
        "23/11/2026 09:30",
        "oui",
        "",
        "oui",
        "2473,50",
    ]
    assert second[0] == "NO-LINES"
    assert second[3:6] == ["", "", ""]
    assert second[8] == ""
    assert second[13:] == ["non", "0,00"]


def test_the_csv_follows_the_filters_and_the_sort(signed_in, contract, other_contract, technician):
    an_order(contract, "METZ-B", technician=technician)
    an_order(contract, "METZ-A", technician=technician)
    an_order(contract, "METZ-UNASSIGNED")
    an_order(other_contract, "NANCY", technician=technician)

    rows = csv_rows(signed_in.get(CSV, {"marche": contract.pk, "technicien": technician.pk, "tri": "reference"}))
    assert [row[0] for row in rows[1:]] == ["METZ-A", "METZ-B"]
    # Junk is ignored there too, never an error.
    rows = csv_rows(signed_in.get(CSV, {"marche": "x", "tri": "-reference", "page": "abc"}))
    assert [row[0] for row in rows[1:]] == ["NANCY", "METZ-UNASSIGNED", "METZ-B", "METZ-A"]


def test_a_semicolon_or_a_quote_in_a_value_does_not_break_the_columns(signed_in, contract):
    an_order(contract, 'REF;"1"', occupant_name="Dupont; Martin")
    rows = csv_rows(signed_in.get(CSV))
    assert rows[1][0] == 'REF;"1"'
    assert rows[1][6] == "Dupont; Martin"
    assert len(rows[1]) == len(rows[0])


# --- A constant number of queries --------------------------------------------------


def make_orders(count: int, contract, asset, technicians, start: int = 0) -> None:
    orders = Order.objects.bulk_create(
        factories.build_order(
            contract,
            f"Q-{number:04d}",
            asset=asset,
            occupant_name=f"Occupant {number}",
            technician=technicians[number % len(technicians)],
            state=State.PLANNED if number % 2 else State.TO_ACKNOWLEDGE,
            received_at=NOW - timedelta(hours=number),
            notified_at=NOW - timedelta(hours=number),
            due_at=NOW + timedelta(hours=number - 50),
        )
        for number in range(start, start + count)
    )
    OrderLine.objects.bulk_create(
        factories.build_line(order, 0, reference="L1", label="Ligne", unit_price=Decimal("10.00")) for order in orders
    )
    InterventionReport.objects.bulk_create(
        factories.build_report(order, works_done="Fait", time_on_site_minutes=30) for order in orders[::3]
    )


def count_queries(client, url: str, params: dict) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, params)
        rows = csv_rows(response) if url == CSV else references(response)
    assert rows
    return len(queries)


@pytest.mark.parametrize("url", [LIST, CSV])
@pytest.mark.parametrize("filters", ["none", "search-late-sorted", "choices"])
def test_the_same_number_of_queries_for_10_and_500_orders(
    signed_in, contract, asset, technician, other_technician, url, filters
):
    params = {
        "none": {},
        "search-late-sorted": {"tri": "technicien", "q": "occupant", "rapport": "sans", "retard": "oui"},
        "choices": {
            "client": contract.client_id,
            "marche": contract.pk,
            "technicien": technician.pk,
            "etat": "planned",
        },
    }[filters]
    make_orders(10, contract, asset, [technician, other_technician, None])
    with_ten = count_queries(signed_in, url, params)
    make_orders(490, contract, asset, [technician, other_technician, None], start=10)
    assert count_queries(signed_in, url, params) == with_ten
