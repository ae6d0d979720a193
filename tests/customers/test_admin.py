"""Customer and tenant admin: smoke tests, search, autocomplete, escaping."""

import pytest
from django.urls import reverse
from django.utils import timezone

from customers.models import Customer
from tests.factories import CustomerFactory, TenantFactory

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert(1)</script>"


def admin_url(model: str, view: str, *args) -> str:
    return reverse(f"admin:customers_{model}_{view}", args=args)


@pytest.fixture
def customer():
    return CustomerFactory(
        email="alex@example.com",
        full_name="Alex Doe",
        external_id="u_123",
        tenant=TenantFactory(name="Acme", external_id="acme"),
        last_viewed_at=timezone.now(),
    )


@pytest.mark.parametrize(
    "query", ["alex@example", "Alex Doe", "u_123", "acme", "Acme", "?public_id"]
)
def test_the_customer_changelist_finds_a_customer_by(admin_client_logged_in, customer, query):
    # Its own external id: the factory's sequence would reach the fixture's "u_123".
    CustomerFactory(email="someone-else@example.com", external_id="u_someone_else")
    if query == "?public_id":
        query = customer.public_id

    response = admin_client_logged_in.get(admin_url("customer", "changelist"), {"q": query})

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [customer]


def test_customer_pages_render(admin_client_logged_in, customer):
    client = admin_client_logged_in
    for url in [
        admin_url("customer", "changelist"),
        admin_url("customer", "changelist") + "?tenant__isempty=0",
        admin_url("customer", "add"),
        admin_url("customer", "change", customer.pk),
    ]:
        assert client.get(url).status_code == 200, url


def test_tenant_pages_render(admin_client_logged_in, customer):
    client = admin_client_logged_in
    tenant = customer.tenant
    for url in [
        admin_url("tenant", "changelist"),
        admin_url("tenant", "changelist") + "?q=acme",
        admin_url("tenant", "add"),
        admin_url("tenant", "change", tenant.pk),
    ]:
        assert client.get(url).status_code == 200, url


def test_the_tenant_changelist_counts_customers(admin_client_logged_in, customer):
    CustomerFactory(tenant=customer.tenant)

    response = admin_client_logged_in.get(admin_url("tenant", "changelist"))

    assert response.context["cl"].result_list[0].customer_count == 2


def test_the_customer_form_picks_a_tenant_by_autocomplete(admin_client_logged_in, customer):
    response = admin_client_logged_in.get(
        reverse("admin:autocomplete"),
        {
            "term": "acm",
            "app_label": "customers",
            "model_name": "customer",
            "field_name": "tenant",
        },
    )

    assert response.status_code == 200
    assert [r["text"] for r in response.json()["results"]] == ["Acme"]
    page = admin_client_logged_in.get(admin_url("customer", "change", customer.pk))
    assert "admin-autocomplete" in page.content.decode()


def test_public_id_and_last_viewed_are_read_only(admin_client_logged_in, customer):
    response = admin_client_logged_in.get(admin_url("customer", "change", customer.pk))

    form = response.context["adminform"].form
    assert "public_id" not in form.fields and "last_viewed_at" not in form.fields
    assert customer.public_id in response.content.decode()


def test_adding_a_customer_with_an_email_in_another_case_is_refused(
    admin_client_logged_in, customer
):
    response = admin_client_logged_in.post(
        admin_url("customer", "add"),
        {"email": "ALEX@example.com", "full_name": "", "external_id": "", "tenant": ""},
    )

    assert response.status_code == 200
    assert "A customer with this email already exists." in response.content.decode()
    assert Customer.objects.count() == 1


def test_a_tenant_without_external_id_can_be_added_twice(admin_client_logged_in):
    for name in ("One", "Two"):
        response = admin_client_logged_in.post(
            admin_url("tenant", "add"), {"name": name, "external_id": ""}
        )
        assert response.status_code == 302


def test_names_and_emails_are_escaped(admin_client_logged_in):
    tenant = TenantFactory(name=SCRIPT)
    customer = CustomerFactory(email=f"{SCRIPT}@example.com", full_name=SCRIPT, tenant=tenant)

    for url in [
        admin_url("customer", "changelist"),
        admin_url("customer", "change", customer.pk),
        admin_url("tenant", "changelist"),
        admin_url("tenant", "change", tenant.pk),
    ]:
        page = admin_client_logged_in.get(url).content.decode()
        assert SCRIPT not in page, url
        assert "&lt;script&gt;" in page, url
