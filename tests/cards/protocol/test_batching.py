"""Batching (SPEC §4): which configs share one request."""

import pytest

from cards.loading.services import card_configs_enabled, cards_load
from cards.protocol.batching import batches_for
from tests.cards.cardapi import card
from tests.factories import CardConfigFactory, CardConfigHeaderFactory, CustomerFactory

pytestmark = pytest.mark.django_db


def with_headers(key, url, *headers):
    config = CardConfigFactory(key=key, api_url=url)
    for name, value in headers:
        CardConfigHeaderFactory(config=config, name=name, value=value)
    return config


def test_header_names_differing_in_case_and_order_share_one_request(card_api):
    url = card_api.url
    with_headers("a", url, ("Authorization", "Bearer 1"), ("X-Team", "t"))
    with_headers("b", f"  {url} ", ("authorization", "Bearer 1"), ("x-team", "t"))
    with_headers("c", url, ("X-TEAM", "t"), ("AUTHORIZATION", "Bearer 1"))
    with_headers("d", url, (" X-Team", "t"), ("Authorization ", "Bearer 1"))
    card_api.serve({k: card(k) for k in "abcd"})

    report = cards_load(customer=CustomerFactory(), configs=card_configs_enabled())

    assert report.requests == 1 and report.ok
    assert card_api.keys_requested == [["a", "b", "c", "d"]]


def test_a_different_header_value_makes_a_second_request(card_api):
    with_headers("a", card_api.url, ("Authorization", "Bearer 1"))
    with_headers("b", card_api.url, ("Authorization", "bearer 1"))
    card_api.serve({k: card(k) for k in "ab"})

    report = cards_load(customer=CustomerFactory(), configs=card_configs_enabled())

    assert report.requests == 2
    assert sorted(card_api.keys_requested) == [["a"], ["b"]]


def test_urls_compare_case_sensitively_and_title_key_ttl_play_no_part():
    CardConfigFactory(key="a", api_url="https://api.example.com/Cards", default_ttl_seconds=20)
    CardConfigFactory(key="b", api_url="https://api.example.com/cards", title="Other")
    CardConfigFactory(key="c", api_url="https://api.example.com/Cards ", default_ttl_seconds=99)

    batches = batches_for(card_configs_enabled())

    assert [batch.keys for batch in batches] == [["a", "c"], ["b"]]


def test_batches_of_one_customer_load_concurrently(httpserver, settings):
    import time

    from werkzeug import Response

    def slow(request):
        time.sleep(0.4)
        key = request.get_json()["cardKeys"][0]
        return Response(f'{{"cards": [{{"key": "{key}", "components": []}}]}}')

    for n in range(4):
        httpserver.expect_request(f"/api{n}").respond_with_handler(slow)
        CardConfigFactory(key=f"k{n}", api_url=httpserver.url_for(f"/api{n}"))

    started = time.monotonic()
    report = cards_load(customer=CustomerFactory(), configs=card_configs_enabled())
    elapsed = time.monotonic() - started

    assert report.requests == 4 and report.ok
    assert elapsed < 1.2  # sequential would take 1.6 s
