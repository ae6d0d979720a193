"""Tenant public ids have their own prefix, `te_`, and the migration rewrites old ones."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from customers.models import new_public_id, new_tenant_public_id
from tests.factories import CustomerFactory, TenantFactory

BEFORE = [("customers", "0001_initial")]
AFTER = [("customers", "0002_tenant_public_id_te_prefix")]


@pytest.mark.django_db
def test_new_tenants_get_te_ids_and_customers_keep_c_ids():
    tenant = TenantFactory()
    customer = CustomerFactory(tenant=tenant)

    assert tenant.public_id.startswith("te_") and len(tenant.public_id) == 23
    assert customer.public_id.startswith("c_")
    assert new_tenant_public_id() != new_tenant_public_id()
    assert new_public_id().startswith("c_")


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_the_migration_rewrites_existing_tenant_ids_and_back():
    apps = _migrate(BEFORE)
    try:
        Tenant = apps.get_model("customers", "Tenant")
        Customer = apps.get_model("customers", "Customer")
        acme = Tenant.objects.create(public_id="c_0123456789abcdef0123", name="Acme")
        Tenant.objects.create(public_id="te_already", name="Newer")
        Customer.objects.create(public_id="c_customer", email="a@example.com", tenant=acme)

        apps = _migrate(AFTER)
        Tenant = apps.get_model("customers", "Tenant")
        Customer = apps.get_model("customers", "Customer")
        assert sorted(Tenant.objects.values_list("public_id", flat=True)) == [
            "te_0123456789abcdef0123",
            "te_already",
        ]
        assert Customer.objects.get().public_id == "c_customer"

        apps = _migrate(BEFORE)
        Tenant = apps.get_model("customers", "Tenant")
        assert Tenant.objects.get(name="Acme").public_id == "c_0123456789abcdef0123"
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
