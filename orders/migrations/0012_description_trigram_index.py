"""A trigram index on the order's description, now that the search covers it
(see 0009: the same expression `icontains` is written as, on PostgreSQL only)."""

from django.db import migrations

NAME = "orders_order_description_trgm"


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(
        f'CREATE INDEX IF NOT EXISTS "{NAME}" ON "orders_order" USING gin ((UPPER("description"::text)) gin_trgm_ops)'
    )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f'DROP INDEX IF EXISTS "{NAME}"')


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0011_merge_0010_ccag_time_and_money_0010_personal_data"),
    ]

    operations = [migrations.RunPython(create, drop, elidable=False)]
