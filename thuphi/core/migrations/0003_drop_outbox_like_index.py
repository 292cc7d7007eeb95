from django.db import migrations

# PostgreSQL's extra varchar_pattern_ops index that Django adds to a unique CharField serves LIKE 'x%'
# look-ups only; dedupe keys are looked up by equality (the unique index). Written on every message.
LIKE_INDEX = ("core_outboxmessage", "dedupe_key")


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
        ("core", "0002_outboxmessage"),
    ]

    operations = [
        migrations.RunPython(drop_like_index, create_like_index),
    ]
