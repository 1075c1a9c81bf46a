"""CSV files that spreadsheets open safely. Pure Python.

A cell whose text starts with `=`, `+`, `-`, `@`, a tab or a carriage return is
read by Excel and LibreOffice as a formula, and a formula can fetch a URL or
run a command (OWASP, "CSV injection"). Occupants' names come from the
platform's vCards and addresses from the clients' data: every exported text
cell goes through `safe_cell`, which puts a quote in front (the spreadsheet
shows the text as typed, the quote is hidden).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# The last line of an export that failed midway: the download may already look
# finished to the browser (the headers went out with 200), the file must not.
INCOMPLETE = "EXPORT INCOMPLET : une erreur a interrompu l'export, ce fichier ne contient pas toutes les lignes."


def safe_cell(value: str) -> str:
    """`value` as a spreadsheet shows it as text, never as a formula."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


class _Echo:
    """A file that hands back what csv.writer writes, for streaming."""

    def write(self, value: str) -> str:
        return value


def csv_lines(header: list[str], rows: Iterable[list[str]]) -> Iterator[str]:
    """The lines of a CSV file for Excel in France (BOM, semicolons), streamed.

    If producing the rows fails, a last line says the file is incomplete and the
    error goes on (the server then cuts the connection, which the browser
    reports as a failed download)."""
    writer = csv.writer(_Echo(), delimiter=";")
    yield "\ufeff"  # the BOM: without it Excel reads UTF-8 as Windows-1252
    yield writer.writerow(header)
    try:
        for row in rows:
            yield writer.writerow(row)
    except Exception:
        yield "\r\n" + INCOMPLETE + "\r\n"
        raise
