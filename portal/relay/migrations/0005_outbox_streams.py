"""Outbox messages are ordered by a stream ("order:<id>" for an order's) rather
than by their order, so that what belongs to no order (a quote) is relayed in
order too."""

from django.db import migrations, models
from django.db.models import Value
from django.db.models.functions import Cast, Concat


def fill_streams(apps, schema_editor):
    OutboxMessage = apps.get_model("relay", "OutboxMessage")
    OutboxMessage.objects.update(stream=Concat(Value("order:"), Cast("order_id", models.CharField())))


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0009_search_trigram_indexes"),
        ("relay", "0004_refusal_reasons"),
    ]

    operations = [
        migrations.AddField(
            model_name="outboxmessage",
            name="stream",
            field=models.CharField(default="", max_length=60, verbose_name="file d'envoi"),
            preserve_default=False,
        ),
        migrations.RunPython(fill_streams, migrations.RunPython.noop, elidable=True),
        migrations.RemoveConstraint(model_name="outboxmessage", name="relay_outboxmessage_unique_sequence"),
        migrations.RemoveIndex(model_name="outboxmessage", name="relay_outbox_order_idx"),
        migrations.AlterField(
            model_name="outboxmessage",
            name="order",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=models.deletion.CASCADE,
                related_name="outbox_messages",
                to="orders.order",
                verbose_name="commande",
            ),
        ),
        migrations.AddIndex(
            model_name="outboxmessage",
            index=models.Index(fields=["stream", "status", "sequence"], name="relay_outbox_stream_idx"),
        ),
        migrations.AddIndex(
            model_name="outboxmessage",
            index=models.Index(fields=["order", "sequence"], name="relay_outbox_order_idx"),
        ),
        migrations.AddConstraint(
            model_name="outboxmessage",
            constraint=models.CheckConstraint(condition=~models.Q(stream=""), name="relay_outboxmessage_stream_set"),
        ),
        migrations.AddConstraint(
            model_name="outboxmessage",
            constraint=models.UniqueConstraint(fields=["stream", "sequence"], name="relay_outboxmessage_unique_sequence"),
        ),
    ]
