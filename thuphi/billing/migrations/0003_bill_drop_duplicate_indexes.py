"""Drop the three indexes of billing_bill that other indexes make redundant (decision 0006).

* ``institution_id`` alone: the leading column of ``(institution_id, status, due_date)``;
* ``payer_id`` alone: the leading column of ``(payer_id, status)``;
* ``reference varchar_pattern_ops`` (PostgreSQL's ``…_like`` index for ``unique=True`` CharFields):
  serves only ``LIKE 'prefix%'``, which no query runs; equality and ``IN``/``= ANY`` use the unique index.

Only the indexes go. The foreign keys and the unique constraint on the reference stay as they are: the
state moves ``unique=True`` to a ``UniqueConstraint`` carrying the name PostgreSQL gave the existing
constraint (``billing_bill_reference_key``), so nothing is rebuilt. Letting Django's AlterField do it
would drop and re-add both foreign keys, which re-validates every bill under lock.
"""

import django.db.models.deletion
from django.db import migrations, models


def _redundant_indexes(schema_editor) -> list[str]:
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "billing_bill")
    names = []
    for name, info in constraints.items():
        if not info["index"] or info["unique"] or info["primary_key"]:
            continue
        columns = info["columns"]
        if columns in (["institution_id"], ["payer_id"]):
            names.append(name)
        elif columns == ["reference"] and name.endswith("_like"):
            names.append(name)
    return sorted(names)


def drop_indexes(apps, schema_editor):
    for name in _redundant_indexes(schema_editor):
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}")


def recreate_indexes(apps, schema_editor):
    bill = apps.get_model("billing", "Bill")
    for field_name in ("institution", "payer"):
        schema_editor.execute(schema_editor._create_index_sql(bill, fields=[bill._meta.get_field(field_name)]))
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(schema_editor._create_like_index_sql(bill, bill._meta.get_field("reference")))


class Migration(migrations.Migration):

    dependencies = [
        ("billing", "0002_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="bill",
                    name="institution",
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT,
                                            related_name="bills", to="registry.institution"),
                ),
                migrations.AlterField(
                    model_name="bill",
                    name="payer",
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT,
                                            related_name="bills", to="registry.payer"),
                ),
                migrations.AlterField(
                    model_name="bill",
                    name="reference",
                    field=models.CharField(max_length=16, verbose_name="mã thanh toán"),
                ),
                migrations.AddConstraint(
                    model_name="bill",
                    constraint=models.UniqueConstraint(fields=("reference",), name="billing_bill_reference_key"),
                ),
            ],
            database_operations=[
                migrations.RunPython(drop_indexes, recreate_indexes),
            ],
        ),
    ]
