"""Which report supply a quote line quotes (issue 16, item 7): the link, and the
links of the supplies already put in quotes before it, found again by their
order, price and quantity (quotes.services.quote_materials made one line per
supply, at the supply's price item and quantity, copied into each version)."""

import django.db.models.deletion
from django.db import migrations, models


def link_quoted_supplies(apps, schema_editor):
    ReportMaterial = apps.get_model("orders", "ReportMaterial")
    QuoteLine = apps.get_model("quotes", "QuoteLine")
    for material in ReportMaterial.objects.filter(destination="quote").select_related("report").order_by("pk"):
        candidates = QuoteLine.objects.filter(
            quote__order_id=material.report.order_id,
            quote__created_at__gte=material.report.created_at,
            price_item_id=material.price_item_id,
            quantity=material.quantity,
            material__isnull=True,
        ).order_by("quote__created_at", "quote__version", "position", "pk")
        first = candidates.first()
        if first is None:
            continue
        # The same line in every version of that quote: one line a version.
        chosen = {}
        for line in candidates.filter(quote__number=first.quote.number):
            chosen.setdefault(line.quote_id, line.pk)
        QuoteLine.objects.filter(pk__in=chosen.values()).update(material=material)


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0014_dispatch_and_time_on_site"),
        ("quotes", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="quoteline",
            name="material",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="quote_lines",
                to="orders.reportmaterial",
                verbose_name="fourniture du rapport",
            ),
        ),
        migrations.RunPython(link_quoted_supplies, migrations.RunPython.noop),
    ]
