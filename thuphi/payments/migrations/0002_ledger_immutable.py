"""PostgreSQL refuses UPDATE and DELETE on ledger rows and allocations.

SQLite gets no trigger: the embedded default is single-node and the models refuse changes
themselves; the test runner's table flushes on SQLite would also trip such a trigger.
"""
from django.db import migrations


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    from thuphi.payments.ledger import immutability_sql

    for stmt in immutability_sql():
        schema_editor.execute(stmt)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in ("payments_ledgertransaction", "payments_ledgerentry", "payments_allocation"):
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_immutable ON {table};")


class Migration(migrations.Migration):
    dependencies = [("payments", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
