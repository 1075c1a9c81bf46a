"""The database refuses any change to an issued invoice or its lines, whoever
writes (a raw UPDATE, a bulk update, another program): triggers on PostgreSQL
(update, delete, new lines) and on SQLite (update and new lines only: SQLite
empties tables with DELETE between tests, where PostgreSQL truncates; there the
model refuses the deletion, and payments and receipts protect the row). A draft is changed and deleted freely; the issuing UPDATE itself
goes from "draft" to "issued", which the triggers allow."""

from django.db import migrations

MESSAGE = "Facture émise : elle ne se modifie plus (faites un avoir)."

POSTGRES = f"""
CREATE OR REPLACE FUNCTION invoices_refuse_issued() RETURNS trigger AS $$
BEGIN
    IF TG_TABLE_NAME = 'invoices_invoice' THEN
        IF OLD.state = 'issued' THEN
            RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'integrity_constraint_violation';
        END IF;
    ELSIF EXISTS (
        SELECT 1 FROM invoices_invoice
        WHERE state = 'issued' AND id IN (OLD.invoice_id, CASE WHEN TG_OP = 'UPDATE' THEN NEW.invoice_id END)
    ) THEN
        RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER invoices_invoice_frozen BEFORE UPDATE OR DELETE ON invoices_invoice
    FOR EACH ROW EXECUTE FUNCTION invoices_refuse_issued();
CREATE TRIGGER invoices_invoiceline_frozen BEFORE UPDATE OR DELETE ON invoices_invoiceline
    FOR EACH ROW EXECUTE FUNCTION invoices_refuse_issued();
CREATE OR REPLACE FUNCTION invoices_refuse_line_on_issued() RETURNS trigger AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM invoices_invoice WHERE state = 'issued' AND id = NEW.invoice_id) THEN
        RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER invoices_invoiceline_no_new_on_issued BEFORE INSERT ON invoices_invoiceline
    FOR EACH ROW EXECUTE FUNCTION invoices_refuse_line_on_issued();
"""
POSTGRES_REVERSE = """
DROP TRIGGER IF EXISTS invoices_invoiceline_no_new_on_issued ON invoices_invoiceline;
DROP TRIGGER IF EXISTS invoices_invoiceline_frozen ON invoices_invoiceline;
DROP TRIGGER IF EXISTS invoices_invoice_frozen ON invoices_invoice;
DROP FUNCTION IF EXISTS invoices_refuse_line_on_issued();
DROP FUNCTION IF EXISTS invoices_refuse_issued();
"""

SQLITE = [
    f"""CREATE TRIGGER invoices_invoice_no_update BEFORE UPDATE ON invoices_invoice
    WHEN OLD.state = 'issued' BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
    f"""CREATE TRIGGER invoices_line_no_update BEFORE UPDATE ON invoices_invoiceline
    WHEN (SELECT state FROM invoices_invoice WHERE id = OLD.invoice_id) = 'issued'
      OR (SELECT state FROM invoices_invoice WHERE id = NEW.invoice_id) = 'issued'
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
    f"""CREATE TRIGGER invoices_line_no_insert BEFORE INSERT ON invoices_invoiceline
    WHEN (SELECT state FROM invoices_invoice WHERE id = NEW.invoice_id) = 'issued'
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
]
SQLITE_REVERSE = [
    f"DROP TRIGGER IF EXISTS {name}"
    for name in (
        "invoices_invoice_no_update",
        "invoices_invoice_no_delete",
        "invoices_line_no_update",
        "invoices_line_no_delete",
        "invoices_line_no_insert",
    )
]


def create(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES)
    elif vendor == "sqlite":
        for statement in SQLITE:
            schema_editor.execute(statement)


def drop(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_REVERSE)
    elif vendor == "sqlite":
        for statement in SQLITE_REVERSE:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("invoices", "0001_initial")]
    operations = [migrations.RunPython(create, drop)]
