"""Tenant public ids get their own prefix, `te_` (issue 14).

New tenants get `te_…` ids; existing `c_…` tenant ids are rewritten to `te_…` with the
same random part, in one UPDATE. Card APIs receive `tenant.id`, so an API that stored
tenant ids sees them change once, at this migration (see docs/coming-from-plain.md).
Reversible: `te_` goes back to `c_`.
"""

from django.db import migrations, models
from django.db.models import Value
from django.db.models.functions import Concat, Substr

import customers.models


def _reprefix(apps, old: str, new: str) -> None:
    Tenant = apps.get_model("customers", "Tenant")
    Tenant.objects.filter(public_id__startswith=old).update(
        public_id=Concat(Value(new), Substr("public_id", len(old) + 1))
    )


def tenant_ids_to_te(apps, schema_editor):
    _reprefix(apps, "c_", "te_")


def tenant_ids_to_c(apps, schema_editor):
    _reprefix(apps, "te_", "c_")


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="tenant",
            name="public_id",
            field=models.CharField(
                default=customers.models.new_tenant_public_id,
                editable=False,
                help_text="Stable id sent to card APIs as tenant.id (te_…).",
                max_length=40,
                unique=True,
            ),
        ),
        migrations.RunPython(tenant_ids_to_te, tenant_ids_to_c),
    ]
