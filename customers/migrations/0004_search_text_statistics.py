# The customers' searched text sampled by ANALYZE at 10,000 values instead of 1,000
# (customers.search.SEARCH_TEXT_STATISTICS; PostgreSQL only).

from django.db import migrations

from customers.search import customer_search_statistics_set


def _finer(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        customer_search_statistics_set(schema_editor, 10_000)


def _coarser(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        customer_search_statistics_set(schema_editor, 1000)


class Migration(migrations.Migration):

    dependencies = [
        ("customers", "0003_search_indexes_and_lookup_permission"),
    ]

    operations = [
        migrations.RunPython(_finer, _coarser, elidable=False),
    ]
