"""Trigram indexes for the order search, on PostgreSQL.

`OrderQuerySet.search` asks `icontains` of the order's reference and occupant
and of its asset's address and label, which Django writes as
`UPPER(column::text) LIKE UPPER('%word%')`. No B-tree serves a LIKE with a
leading wildcard, so PostgreSQL read every order; a GIN index of the same
expression with `gin_trgm_ops` finds the rows from the word's trigrams, and
PostgreSQL ORs the indexes of the order's columns (a BitmapOr).

`pg_trgm` ships with PostgreSQL and is a trusted extension (13 and later): the
database's owner may create it. SQLite has no such index and scans its few
thousand rows; there the migration does nothing.
"""

from django.db import migrations

# (table, column) pairs; each index is named after them.
COLUMNS = [
    ("orders_order", "reference"),
    ("orders_order", "occupant_name"),
    ("portal_asset", "address"),
    ("portal_asset", "address_complement"),
    ("portal_asset", "postcode"),
    ("portal_asset", "city"),
    ("portal_asset", "label"),
]


def _name(table: str, column: str) -> str:
    return f"{table}_{column}_trgm"


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for table, column in COLUMNS:
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS "{_name(table, column)}" '
            f'ON "{table}" USING gin ((UPPER("{column}"::text)) gin_trgm_ops)'
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, column in COLUMNS:
        schema_editor.execute(f'DROP INDEX IF EXISTS "{_name(table, column)}"')


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0008_order_planned_end_index"),
    ]

    operations = [migrations.RunPython(create, drop, elidable=False)]
