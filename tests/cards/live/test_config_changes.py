"""Open pages follow config changes (issue 17, finding 8): a card deleted or switched off
while its page is open leaves it; a card whose key is renamed keeps its element and its
reload button. Elements and reload URLs are keyed by the config's id."""

import re

import pytest

from tests.cards.cardpages import card_of, ids, ok, page, poll, poller_of, serve_versions, shown
from tests.factories import CardConfigFactory, CustomerFactory

loads = pytest.mark.django_db(transaction=True)


@pytest.fixture
def customer(db):
    return CustomerFactory()


def reload_url(html: str, key: str) -> str:
    return re.search(r'hx-post="([^"]+)"', card_of(html, key)).group(1)


@pytest.mark.django_db
def test_a_card_deleted_while_its_page_is_open_is_removed_from_the_page(agent_client, customer):
    gone = CardConfigFactory(key="gone")
    pk = gone.pk
    poller = {"cards": shown(gone), "pending": ids(gone)}
    gone.delete()

    answer = ok(poll(agent_client, customer, poller))

    assert f'<div id="card-{pk}" hx-swap-oob="delete"></div>' in answer
    assert poller_of(answer) == {}


@pytest.mark.django_db
def test_a_card_deleted_while_its_page_is_open_answers_its_reload_button_with_nothing(
    agent_client, customer
):
    plan = CardConfigFactory(key="plan")
    CardConfigFactory(key="orders")
    html = page(agent_client, customer)
    plan.delete()

    response = agent_client.post(reload_url(html, "plan"), HTTP_HX_REQUEST="true")

    assert response.status_code == 200 and response.content == b""  # htmx removes it


@loads
def test_a_renamed_card_keeps_its_element_and_its_reload_button(agent_client, card_api, customer):
    plan = CardConfigFactory(key="plan", api_url=card_api.url)
    serve_versions(card_api)
    html = page(agent_client, customer)
    ok(poll(agent_client, customer, poller_of(html)))  # loaded: plan version 1
    element_id = f'id="card-{plan.pk}"'
    assert element_id in card_of(html, "plan")
    plan.key = "subscription"  # renamed in the admin while the page is open
    plan.save()

    reloading = ok(agent_client.post(reload_url(html, "plan"), HTTP_HX_REQUEST="true"))

    card = card_of(reloading, "subscription")
    assert card.startswith(f"<section {element_id}")  # replaces the page's element
    answer = ok(poll(agent_client, customer, poller_of(reloading)))
    settled = card_of(answer, "subscription")
    assert settled.startswith(f'<section hx-swap-oob="morph" {element_id}')
    assert "subscription version 2" in settled
    assert card_api.keys_requested[-1] == ["subscription"]
