"""The outbox is a queue: each message is inserted, then updated two or three
times (claimed, delivered) within seconds, and read by status all the time.
PostgreSQL's default autovacuum (after 20 % of the table changes) left a
drained backlog of 8,000 messages with 15,000 dead rows and no statistics in
the benchmark: the claim's queries then read thousands of dead index entries
(16 ms where 0.04 ms does). Vacuum and analyze it after every 1,000 changed
rows, without the cost delay, and leave room in its pages for the claim's
updates to stay on the same page (no indexed column changes when a message is
claimed). PostgreSQL only; nothing to do on SQLite."""

from django.db import migrations

OPTIONS = {
    "autovacuum_vacuum_scale_factor": "0",
    "autovacuum_vacuum_threshold": "1000",
    "autovacuum_analyze_scale_factor": "0",
    "autovacuum_analyze_threshold": "1000",
    "autovacuum_vacuum_cost_delay": "0",
    "fillfactor": "80",
}


def tune(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    settings = ", ".join(f"{name} = {value}" for name, value in OPTIONS.items())
    schema_editor.execute(f"ALTER TABLE relay_outboxmessage SET ({settings})")


def untune(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"ALTER TABLE relay_outboxmessage RESET ({', '.join(OPTIONS)})")


class Migration(migrations.Migration):
    dependencies = [("relay", "0008_outbox_undelivered_index")]

    operations = [migrations.RunPython(tune, untune, elidable=False)]
