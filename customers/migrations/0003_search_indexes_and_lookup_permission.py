# The directory's trigram indexes (PostgreSQL only) and the lookup link's permission.

from django.db import migrations

from customers.search import customer_trigram_index, customer_trigram_index_add, tenant_trigram_index


def _postgresql(schema_editor) -> bool:
    return schema_editor.connection.vendor == "postgresql"


def create_trigram_extension(apps, schema_editor):
    # Not Django's TrigramExtension: its reverse queries pg_extension on every database.
    if _postgresql(schema_editor):
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")


def add_trigram_indexes(apps, schema_editor):
    # Not in the models' Meta: SQLite has no GIN, and it rebuilds tables from Meta.
    if _postgresql(schema_editor):
        customer_trigram_index_add(schema_editor, apps.get_model("customers", "Customer"))
        schema_editor.add_index(apps.get_model("customers", "Tenant"), tenant_trigram_index())


def remove_trigram_indexes(apps, schema_editor):
    if _postgresql(schema_editor):
        schema_editor.remove_index(apps.get_model("customers", "Customer"), customer_trigram_index())
        schema_editor.remove_index(apps.get_model("customers", "Tenant"), tenant_trigram_index())


class Migration(migrations.Migration):

    dependencies = [
        ('customers', '0002_tenant_public_id_te_prefix'),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='customer',
            options={'ordering': ['email', 'id'], 'permissions': [('create_from_lookup', 'Can create a customer from a lookup link (with CUSTOMERS_LOOKUP_CREATE)')]},
        ),
        # CREATE EXTENSION pg_trgm; a no-op on other databases (Django checks the vendor).
        migrations.RunPython(create_trigram_extension, migrations.RunPython.noop),
        migrations.RunPython(add_trigram_indexes, remove_trigram_indexes, elidable=False),
    ]
