"""Warnings (SPEC §5, last paragraph) reach staff: on the card, in the admin, in the preview;
agents never see them. Against a real card API on loopback."""

import html as html_lib

import pytest
from django.test import Client
from django.urls import reverse

from cards.models import CardInstance
from tests.cards.cardapi import card
from tests.cards.cardpages import card_of, ok, page, poll, poller_of
from tests.cards.integrator.test_preview import PREVIEW_URL, form_data
from tests.factories import CardConfigFactory, CustomerFactory, UserFactory

loads = pytest.mark.django_db(transaction=True)
WARNED = [
    {"componentText": {"text": "Plan: **Pro**"}},
    {"componentBadge": {"badgeLabel": "<b>x</b>", "badgeColour": "RED"}},
    {"componentLinkButton": {"linkButtonLabel": "Run", "linkButtonUrl": "javascript:alert(1)"}},
]
UNKNOWN_FIELD = "cards[0].components[1].componentBadge.badgeColour"
UNSAFE_LINK = "cards[0].components[2].componentLinkButton.linkButtonUrl"


@pytest.fixture
def customer(db):
    return CustomerFactory(email="alex@example.com")


def load_page(client, customer) -> str:
    answer = page(client, customer)
    while poller_of(answer).get("pending"):
        answer = ok(poll(client, customer, poller_of(answer)))
    return answer


@loads
def test_staff_see_a_cards_warnings_and_agents_do_not(client, agent, card_api, customer):
    CardConfigFactory(key="plan", api_url=card_api.url)
    card_api.serve({"plan": card("plan", WARNED)})
    client.force_login(UserFactory(username="staff", is_staff=True))

    staff_html = card_of(load_page(client, customer), "plan")

    assert 'data-card-state="loaded"' in staff_html
    assert 'data-warnings="2"' in staff_html
    assert f"<code>{UNKNOWN_FIELD}</code>" in staff_html
    assert f"<code>{UNSAFE_LINK}</code>" in staff_html
    assert "javascript:" not in staff_html.replace("a javascript: link is unsafe", "")
    agent_client = Client()
    agent_client.force_login(agent)
    agent_html = card_of(page(agent_client, customer), "plan")
    assert "Plan: " in agent_html and "data-warnings" not in agent_html
    assert "badgeColour" not in agent_html


@pytest.mark.django_db
def test_the_admin_lists_and_shows_a_card_instances_warnings(
    admin_client_logged_in, card_api, customer
):
    from cards.loading.services import card_configs_enabled, cards_load

    CardConfigFactory(key="plan", api_url=card_api.url)
    card_api.serve({"plan": card("plan", WARNED)})
    cards_load(customer=customer, configs=card_configs_enabled())
    instance = CardInstance.objects.get()

    listing = admin_client_logged_in.get(reverse("admin:cards_cardinstance_changelist"))
    detail = admin_client_logged_in.get(
        reverse("admin:cards_cardinstance_change", args=[instance.pk])
    )

    assert listing.status_code == 200 and detail.status_code == 200
    assert '<td class="field-warning_count">2</td>' in listing.content.decode()
    text = html_lib.unescape(detail.content.decode())
    assert f"<li><code>{UNKNOWN_FIELD}</code> unknown field; componentBadge allows only" in text
    assert f"<li><code>{UNSAFE_LINK}</code> a javascript: link is unsafe" in text


@pytest.mark.django_db
def test_the_preview_lists_the_warnings_of_a_valid_answer(admin_client_logged_in, card_api):
    card_api.serve({"plan": card("plan", WARNED)})

    response = admin_client_logged_in.post(PREVIEW_URL, form_data(url=card_api.url, key="plan"))

    text = html_lib.unescape(response.content.decode())
    assert "✓ Valid" in text and "with 2 warnings" in text
    assert 'data-warnings="2" open' in text
    assert f"<code>{UNKNOWN_FIELD}</code>" in text and f"<code>{UNSAFE_LINK}</code>" in text
    assert "&lt;b&gt;x&lt;/b&gt;" in response.content.decode()
