"""Ship the real plans and their targets (thuphi/monitoring/plans.py)."""
from django.db import migrations


def load(apps, schema_editor):
    from thuphi.monitoring.plans import plans_sync

    plans_sync(apps)


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0001_initial"), ("registry", "0002_load_admin_units")]
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
