"""`seed_demo` (the `make demo` setup): idempotent, and its cards come back rich (issue 4)."""

import io
import json
import re

import pytest
import requests
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command

from cards.models import CardConfig
from customers.models import Customer, Tenant

pytestmark = pytest.mark.django_db


def seed(*args: str) -> str:
    out = io.StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def printed_password(output: str, *, port: int = 8000) -> str:
    match = re.search(
        rf"Demo admin: http://127\.0\.0\.1:{port}/admin/ user admin password (\S+)", output
    )
    assert match, output
    return match.group(1)


def counts() -> tuple[int, ...]:
    return (
        get_user_model().objects.count(),
        Tenant.objects.count(),
        Customer.objects.count(),
        CardConfig.objects.count(),
        CardConfig.objects.filter(is_enabled=True).count(),
    )


def test_running_it_twice_creates_nothing_new():
    seed()
    first = counts()

    seed()

    assert counts() == first
    assert first[1] >= 3 and first[2] >= 12


def test_it_creates_customers_with_and_without_tenant_and_external_id():
    seed()

    assert Customer.objects.filter(tenant__isnull=True).exists()
    assert Customer.objects.filter(external_id__isnull=True).exists()
    assert Customer.objects.filter(tenant__isnull=False, external_id__isnull=False).exists()


def test_it_prints_a_working_admin_password_on_the_first_run():
    password = printed_password(seed())

    admin = authenticate(username="admin", password=password)
    assert admin is not None and admin.is_staff and admin.is_superuser


def test_running_it_again_keeps_the_password_and_the_admins_open_session(client):
    password = printed_password(seed())
    client.login(username="admin", password=password)
    assert client.get("/admin/").status_code == 200

    output = seed()

    assert "password unchanged" in output and password not in output
    assert authenticate(username="admin", password=password) is not None
    assert client.get("/admin/").status_code == 200  # still logged in


def test_new_password_flag_makes_a_new_one_and_ends_old_sessions(client):
    first = printed_password(seed())
    client.login(username="admin", password=first)

    second = printed_password(seed("--new-password"))

    assert first != second
    assert authenticate(username="admin", password=first) is None
    assert authenticate(username="admin", password=second) is not None
    assert client.get("/admin/").status_code == 302  # to the login page


def test_it_prints_the_first_customer_page():
    output = seed()

    match = re.search(r"http://127\.0\.0\.1:8000/customers/(\d+)/", output)
    assert match, output
    assert Customer.objects.filter(pk=match.group(1)).exists()


def test_port_goes_into_every_printed_url_and_the_configs():
    output = seed("--port", "8123")

    assert printed_password(output, port=8123)
    assert re.search(r"First customer: http://127\.0\.0\.1:8123/customers/\d+/", output)
    assert ":8000" not in output
    assert set(CardConfig.objects.values_list("api_url", flat=True)) == {
        "http://127.0.0.1:8123/examples/cards/"
    }


def test_a_later_run_on_another_port_moves_the_untouched_configs_there():
    seed()
    seed("--port", "8123")

    assert set(CardConfig.objects.values_list("api_url", flat=True)) == {
        "http://127.0.0.1:8123/examples/cards/"
    }


def test_it_never_overwrites_configs_or_customers_an_admin_edited():
    seed()
    CardConfig.objects.filter(key="subscription").update(api_url="https://api.acme.test/cards/")
    CardConfig.objects.filter(key="usage").update(title="Usage this month", order=5)
    edited_headers = CardConfig.objects.get(key="last-order")
    edited_headers.headers.create(name="Authorization", value="Bearer t0ken")
    Customer.objects.filter(email="alex.morgan@acme.example").update(full_name="Alexandra M.")

    output = seed("--port", "8123")

    configs = {c.key: c for c in CardConfig.objects.all()}
    assert configs["subscription"].api_url == "https://api.acme.test/cards/"
    assert (configs["usage"].title, configs["usage"].order) == ("Usage this month", 5)
    assert configs["last-order"].api_url == "http://127.0.0.1:8000/examples/cards/"
    assert configs["last-order"].headers.get().value == "Bearer t0ken"
    assert configs["gallery"].api_url == "http://127.0.0.1:8123/examples/cards/"
    assert Customer.objects.get(email="alex.morgan@acme.example").full_name == "Alexandra M."
    assert "Left as an admin edited them: subscription, last-order, usage" in output


def test_a_deleted_demo_config_is_seeded_again():
    seed()
    CardConfig.objects.filter(key="gallery").delete()

    seed()

    assert CardConfig.objects.filter(key="gallery", is_enabled=True).exists()


def test_configs_are_ordered_by_tens_with_the_gallery_last():
    seed("--base-url", "http://127.0.0.1:9999/examples/cards/")

    configs = list(CardConfig.objects.filter(is_enabled=True))
    assert [c.order for c in configs] == [10 * (i + 1) for i in range(len(configs))]
    assert configs[-1].key == "gallery"
    assert {c.api_url for c in configs} == {"http://127.0.0.1:9999/examples/cards/"}
    for config in configs:
        config.full_clean()


@pytest.mark.django_db(transaction=True)
def test_its_configs_get_at_least_six_rich_cards_from_the_example_api(live_server):
    seed("--base-url", f"{live_server.url}/examples/cards/")
    customer = Customer.objects.select_related("tenant").order_by("pk").first()
    configs = list(CardConfig.objects.filter(is_enabled=True))
    body = {
        "cardKeys": [c.key for c in configs],
        "customer": {
            "id": customer.public_id,
            "email": customer.email,
            "externalId": customer.external_id,
        },
        "tenant": {"id": customer.tenant.public_id, "externalId": customer.tenant.external_id},
    }

    # One real HTTP request per config, as the loading engine would send it unbatched.
    rich = 0
    for config in configs:
        response = requests.post(
            config.api_url,
            data=json.dumps({**body, "cardKeys": [config.key]}),
            headers={"Content-Type": "application/json"},
            timeout=10,
        )
        assert response.status_code == 200
        (card,) = response.json()["cards"]
        rich += bool(card["components"])

    assert rich >= 6


def test_it_prints_a_working_non_staff_agent_login():
    output = seed()

    match = re.search(
        r"Demo agent: http://127\.0\.0\.1:8000/customers/ user agent password (\S+)", output
    )
    assert match, output
    agent = authenticate(username="agent", password=match.group(1))
    assert agent is not None and not agent.is_staff and not agent.is_superuser
    assert agent.has_perm("cards.use_agent_pages")
    assert list(agent.groups.values_list("name", flat=True)) == ["Agents"]
