
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0003_bill_drop_duplicate_indexes'),
        ('payments', '0005_statement_line_record_account_index'),
        ('registry', '0003_payer_email'),
    ]

    operations = [
        migrations.AlterField(
            model_name='credit',
            name='institution',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='credits', to='registry.institution'),
        ),
        migrations.AlterField(
            model_name='ledgerentry',
            name='bill',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='ledger_entries', to='billing.bill'),
        ),
    ]
