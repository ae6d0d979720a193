"""Who sees which card (issue 13, finding 5; SPEC §8): the agent permission, and per card
the groups allowed to see it. A hidden card is neither loaded for nor shown to an agent
outside its groups: pages, fragments, reloads and the long-poll. Real card API on loopback.
"""

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from cards.models import CardConfig, CardInstance
from tests.cards.cardpages import (
    card_of,
    fragment,
    ok,
    page,
    poll,
    poller_of,
    serve_versions,
    shown,
    since_now,
    state_of,
)
from tests.factories import (
    CardConfigFactory,
    CardInstanceFactory,
    CustomerFactory,
    UserFactory,
    agent_user,
)

loads = pytest.mark.django_db(transaction=True)
pytestmark = loads


@pytest.fixture
def customer():
    return CustomerFactory(email="alex@example.com")


@pytest.fixture
def cards(card_api):
    """ "plan" for everyone, "billing" for the Billing group only."""
    serve_versions(card_api)
    plan = CardConfigFactory(key="plan", title="Plan", api_url=card_api.url, order=1)
    billing = CardConfigFactory(key="billing", title="Billing", api_url=card_api.url, order=2)
    billing.groups.add(Group.objects.get_or_create(name="Billing")[0])
    return plan, billing


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def requested_keys(card_api) -> set[str]:
    return {key for keys in card_api.keys_requested for key in keys}


def settle(client, customer, html: str) -> str:
    """Follow the page's poller until nothing is pending; the last answer."""
    answer = html
    for _ in range(5):
        poller = poller_of(answer)
        if not poller.get("pending"):
            return answer
        answer = ok(poll(client, customer, poller))
    return answer


# --- The agent permission ----------------------------------------------------------------


def test_a_logged_in_user_without_the_agent_permission_gets_403(customer):
    stranger = logged_in(UserFactory(username="stranger"))

    directory = stranger.get(reverse("customers:directory"))
    detail = stranger.get(reverse("customers:detail", args=[customer.pk]))
    reload = stranger.post(reverse("cards:cards-reload", args=[customer.pk]))

    assert (directory.status_code, detail.status_code, reload.status_code) == (403, 403, 403)
    assert "Agents" in directory.content.decode()


def test_agents_and_staff_use_the_customer_pages(customer):
    for user in (agent_user("kim"), UserFactory(username="ops", is_staff=True)):
        assert logged_in(user).get(reverse("customers:directory")).status_code == 200
        assert (
            logged_in(user).get(reverse("customers:detail", args=[customer.pk])).status_code == 200
        )


# --- Pages -----------------------------------------------------------------------------


def test_the_page_neither_loads_nor_shows_a_card_outside_the_agents_groups(
    card_api, cards, customer
):
    agent = logged_in(agent_user("kim"))

    html = settle(agent, customer, page(agent, customer))

    assert card_of(html, "billing") == ""
    assert "Billing" not in page(agent, customer)
    assert requested_keys(card_api) == {"plan"}
    assert not CardInstance.objects.filter(config__key="billing").exists()


def test_an_agent_in_the_group_sees_and_loads_the_card(card_api, cards, customer):
    agent = logged_in(agent_user("lee", "Billing"))

    html = page(agent, customer)
    answer = settle(agent, customer, html)

    assert state_of(html, "billing") == "loading"
    assert "billing version" in card_of(answer, "billing")
    assert requested_keys(card_api) == {"plan", "billing"}


def test_superusers_see_every_card(admin_client_logged_in, card_api, cards, customer):
    assert card_of(page(admin_client_logged_in, customer), "billing")


# --- Fragments and reloads --------------------------------------------------------------


def test_a_hidden_cards_fragment_is_404_and_loads_nothing(card_api, cards, customer):
    agent = logged_in(agent_user("kim"))

    response = fragment(agent, customer, "billing")
    htmx = fragment(agent, customer, "billing", HTTP_HX_REQUEST="true")

    assert response.status_code == 404
    assert htmx.status_code == 200 and htmx.content == b""
    assert card_api.requests == []


def test_a_hidden_card_cannot_be_reloaded(card_api, cards, customer):
    agent = logged_in(agent_user("kim"))

    response = agent.post(
        reverse("cards:card-reload", args=[customer.pk, CardConfig.objects.get(key="billing").pk])
    )

    assert response.status_code == 404
    assert card_api.requests == []


def test_reload_all_reloads_only_the_cards_the_agent_sees(card_api, cards, customer):
    agent = logged_in(agent_user("kim"))

    html = ok(agent.post(reverse("cards:cards-reload", args=[customer.pk])))
    settle(agent, customer, html)

    assert card_of(html, "billing") == ""
    assert requested_keys(card_api) == {"plan"}


# --- The long-poll ---------------------------------------------------------------------


def test_the_long_poll_neither_loads_nor_answers_a_hidden_card(card_api, cards, customer):
    plan, billing = cards
    # A cached billing card, loaded for someone allowed to see it.
    CardInstanceFactory(
        customer=customer,
        config=billing,
        state=CardInstance.State.LOADED,
        components=[{"componentText": {"text": "IBAN DE89 3704"}}],
    )
    agent = logged_in(agent_user("kim"))

    # A poller asking for the hidden card as if the page showed it.
    answer = ok(
        poll(
            agent,
            customer,
            {
                "cards": shown(plan, billing),
                "pending": f"{plan.pk},{billing.pk}",
                "since": since_now(),
                "started": "1",
            },
        )
    )
    answer = settle(agent, customer, answer)

    assert "IBAN" not in answer
    billing_id = CardConfig.objects.get(key="billing").pk
    assert (
        f'id="card-{billing_id}" hx-swap-oob="delete"' in answer or card_of(answer, "billing") == ""
    )
    assert "billing" not in requested_keys(card_api)


def test_a_card_restricted_while_the_page_is_open_is_removed_by_the_long_poll(
    card_api, cards, customer
):
    plan, billing = cards
    billing.groups.clear()
    agent = logged_in(agent_user("kim"))
    html = settle(agent, customer, page(agent, customer))
    assert card_of(html, "billing")

    billing.groups.add(Group.objects.get(name="Billing"))
    poller = poller_of(html)
    poller["cards"] = shown(plan, billing, customer=customer)
    poller["trigger"] = ""
    answer = ok(poll(agent, customer, {**poller, "pending": str(plan.pk)}))

    billing_id = CardConfig.objects.get(key="billing").pk
    assert f'<div id="card-{billing_id}" hx-swap-oob="delete"></div>' in answer
