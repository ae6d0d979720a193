"""Who sees which card, in a real browser as non-staff agents (issue 13, finding 5)."""

import pytest
from django.contrib.auth.models import Group

from tests.browser.test_agent_pages import TIMEOUT_MS, VersionedApi, card_locator
from tests.factories import CardConfigFactory, CustomerFactory, UserFactory, agent_user

pytestmark = pytest.mark.browser


@pytest.fixture
def cards(card_api):
    plan = CardConfigFactory(key="plan", title="Plan", api_url=card_api.url, order=1)
    billing = CardConfigFactory(key="billing", title="Billing", api_url=card_api.url, order=2)
    billing.groups.add(Group.objects.get_or_create(name="Billing")[0])
    VersionedApi(card_api, delay=0.1)
    return plan, billing


def test_an_agent_outside_the_group_never_sees_nor_loads_the_card(login, card_api, cards):
    customer = CustomerFactory(full_name="Alex Morgan")
    session = login(agent_user("kim"))
    page = session.page

    session.open("/customers/")
    page.get_by_role("link", name="Alex Morgan").click()
    card_locator(page, "plan", "loaded").wait_for(timeout=TIMEOUT_MS)
    page.get_by_role("button", name="Reload all").click()
    card_locator(page, "plan").get_by_text("plan version 2").wait_for(timeout=TIMEOUT_MS)

    assert page.url.endswith(f"/customers/{customer.pk}/")
    assert card_locator(page, "billing").count() == 0
    assert "Billing" not in page.locator("main").inner_text()
    assert all(keys == ["plan"] for keys in card_api.keys_requested)
    assert session.errors == []


def test_an_agent_in_the_group_sees_the_card(login, card_api, cards):
    customer = CustomerFactory()
    session = login(agent_user("lee", "Billing"))

    session.open(f"/customers/{customer.pk}/")

    card_locator(session.page, "billing", "loaded").wait_for(timeout=TIMEOUT_MS)
    assert "billing version 1" in card_locator(session.page, "billing").inner_text()
    assert card_api.keys_requested[0] == ["plan", "billing"]
    assert session.errors == []


def test_a_user_who_is_not_an_agent_is_told_who_grants_access(login, cards):
    customer = CustomerFactory()
    session = login(UserFactory(username="stranger"))

    response = session.page.goto(session.base_url + f"/customers/{customer.pk}/")

    assert response.status == 403
    assert "Agents" in session.page.locator("body").inner_text()
