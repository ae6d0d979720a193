"""The lookup link other tools open: /customers/lookup/?email=|external_id=|id=."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from customers.models import Customer
from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db
LOOKUP = reverse("customers:lookup")


@pytest.fixture
def helpdesk_agent(client):
    """An agent who holds the permission to create customers from a lookup link."""
    user = UserFactory(username="helpdesk")
    user.user_permissions.add(
        Permission.objects.get(codename="create_from_lookup"),
        Permission.objects.get(codename="use_agent_pages"),
    )
    client.force_login(user)
    return client


def test_it_needs_a_login(client):
    response = client.get(LOOKUP, {"email": "kim@example.com"})

    assert response.status_code == 302
    assert response["Location"].startswith(f"{reverse('login')}?next=")
    assert "/customers/lookup/" in response["Location"]


@pytest.mark.parametrize(
    ("key", "value"),
    [("email", "KIM@Example.com"), ("external_id", "crm-42"), ("id", "public")],
)
def test_each_form_redirects_to_the_customers_page(agent_client, key, value):
    kim = CustomerFactory(email="kim@example.com", external_id="crm-42")
    CustomerFactory(email="other@example.com", external_id="crm-43")
    value = kim.public_id if value == "public" else value

    response = agent_client.get(LOOKUP, {key: value})

    assert response.status_code == 302
    assert response["Location"] == reverse("customers:detail", args=[kim.pk])


@pytest.mark.parametrize(
    ("key", "label"), [("email", "email"), ("external_id", "external ID"), ("id", "ID")]
)
def test_an_unknown_customer_is_a_404_that_says_so(agent_client, key, label):
    response = agent_client.get(LOOKUP, {key: "nobody@example.com"})

    assert response.status_code == 404
    html = response.content.decode()
    assert f"No customer has the {label} “nobody@example.com”." in html
    assert "<form" not in html.split("</header>")[-1]  # no create button by default
    assert not Customer.objects.exists()


@pytest.mark.parametrize(
    "params", [{}, {"email": " "}, {"email": "a@example.com", "external_id": "x"}]
)
def test_it_asks_for_exactly_one_key(agent_client, params):
    response = agent_client.get(LOOKUP, params)

    assert response.status_code == 400
    assert "Give exactly one of email, external_id or id" in response.content.decode()


def test_with_the_setting_and_the_permission_an_unknown_email_can_be_created(
    helpdesk_agent, settings
):
    settings.CUSTOMERS_LOOKUP_CREATE = True
    url = f"{LOOKUP}?email=new.person%40example.com"

    page = helpdesk_agent.get(url)
    assert page.status_code == 404 and not Customer.objects.exists()  # a GET creates nothing
    assert f'method="post" action="{url}"' in page.content.decode()
    assert "csrfmiddlewaretoken" in page.content.decode()

    created = helpdesk_agent.post(url)
    customer = Customer.objects.get()
    again = helpdesk_agent.post(url)  # a second click finds the customer

    assert customer.email == "new.person@example.com"
    assert (
        created["Location"] == again["Location"] == reverse("customers:detail", args=[customer.pk])
    )
    assert Customer.objects.count() == 1


@pytest.mark.parametrize(("setting", "permitted"), [(True, False), (False, True)])
def test_creating_needs_both_the_setting_and_the_permission(client, settings, setting, permitted):
    settings.CUSTOMERS_LOOKUP_CREATE = setting
    user = UserFactory(username="someone")
    user.user_permissions.add(Permission.objects.get(codename="use_agent_pages"))
    if permitted:
        user.user_permissions.add(Permission.objects.get(codename="create_from_lookup"))
    client.force_login(user)
    url = f"{LOOKUP}?email=new.person%40example.com"

    page = client.get(url)
    refused = client.post(url)

    assert page.status_code == 404 and "Create the customer" not in page.content.decode()
    assert refused.status_code == 403
    assert not Customer.objects.exists()


def test_only_an_email_can_be_created_and_only_a_valid_one(helpdesk_agent, settings):
    settings.CUSTOMERS_LOOKUP_CREATE = True

    by_external_id = helpdesk_agent.get(LOOKUP, {"external_id": "crm-1"})
    invalid = helpdesk_agent.post(f"{LOOKUP}?email=not-an-email")

    assert "Create the customer" not in by_external_id.content.decode()
    assert invalid.status_code == 400
    assert "&quot;not-an-email&quot; is not a valid email address" in invalid.content.decode()
    assert "Create the customer" not in invalid.content.decode()
    assert not Customer.objects.exists()


def test_the_page_escapes_the_value(agent_client):
    response = agent_client.get(LOOKUP, {"external_id": "<script>alert(1)</script>"})

    assert b"<script>alert(1)" not in response.content
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in response.content
