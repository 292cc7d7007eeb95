
import django.db.models.deletion
from django.db import migrations, models

# PostgreSQL's extra varchar_pattern_ops index that Django adds to a unique CharField serves LIKE 'x%'
# look-ups only; verification codes are looked up by equality (the unique index). Written on every receipt.
LIKE_INDEX = ("receipts_receipt", "verification_code")


def drop_like_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        table, column = LIKE_INDEX
        name = schema_editor._create_index_name(table, [column], suffix="_like")
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


def create_like_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        table, column = LIKE_INDEX
        name = schema_editor._create_index_name(table, [column], suffix="_like")
        schema_editor.execute(f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" ("{column}" varchar_pattern_ops)')


class Migration(migrations.Migration):

    dependencies = [
        ('receipts', '0001_initial'),
        ('registry', '0003_payer_email'),
    ]

    operations = [
        migrations.AlterField(
            model_name='receipt',
            name='institution',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='receipts', to='registry.institution'),
        ),
        migrations.RunPython(drop_like_index, create_like_index),
    ]
