"""Load the administrative units so that every database starts with them (tests included)."""
from django.db import migrations


def load(apps, schema_editor):
    from thuphi.registry import admin_units

    Province = apps.get_model("registry", "Province")
    Commune = apps.get_model("registry", "Commune")
    LegacyProvince = apps.get_model("registry", "LegacyProvince")
    Province.objects.bulk_create([Province(code=p["code"], name=p["name"]) for p in admin_units.current_provinces()],
                                 ignore_conflicts=True)
    Commune.objects.bulk_create(
        [Commune(code=c["code"], name=c["name"], province_id=c["province_code"]) for c in admin_units.current_communes()],
        batch_size=1000, ignore_conflicts=True,
    )
    LegacyProvince.objects.bulk_create(
        [LegacyProvince(code=p["code"], name=p["name"], valid_to=p["valid_to"], successor_id=p["successor_code"])
         for p in admin_units.legacy_provinces()],
        ignore_conflicts=True,
    )


class Migration(migrations.Migration):
    dependencies = [("registry", "0001_initial")]
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
