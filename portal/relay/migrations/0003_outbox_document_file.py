"""Document messages name their file in `document` (the relay no longer reads
the orders' Document rows): fill it for the messages recorded before."""

from django.db import migrations


def name_the_files(apps, schema_editor):
    OutboxMessage = apps.get_model("relay", "OutboxMessage")
    Document = apps.get_model("orders", "Document")
    for message in OutboxMessage.objects.filter(kind="document", document=""):
        document_id = (message.payload.get("document") or {}).get("id")
        document = Document.objects.filter(pk=document_id).first()
        if document is not None:
            OutboxMessage.objects.filter(pk=message.pk).update(document=document.file.name)


class Migration(migrations.Migration):
    dependencies = [
        ("relay", "0002_connection_failing_since"),
        ("orders", "0009_search_trigram_indexes"),
    ]

    operations = [migrations.RunPython(name_the_files, migrations.RunPython.noop)]
