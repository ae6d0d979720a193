"""The page's poller: one long-poll that waits for the page's pending cards and answers
them as they settle, against a real card API on loopback (SPEC §6-§7).

Loads run on the in-process pool, whose threads use their own database connections, so
tests that load are transactional.
"""

import json
import threading
import time
from datetime import timedelta

import pytest
from django.db import close_old_connections, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from werkzeug import Request, Response

from cards.live.waiting import START_GRACE_SECONDS, cards_wait
from cards.models import CardInstance
from tests.cards.cardapi import card
from tests.cards.cardpages import (
    card_of,
    ids,
    ok,
    page,
    poll,
    poller_of,
    serve_versions,
    shown,
    since_now,
    state_of,
    text,
)
from tests.factories import CardConfigFactory, CardInstanceFactory, CustomerFactory

State = CardInstance.State
Kind = CardInstance.ErrorKind
loads = pytest.mark.django_db(transaction=True)


@pytest.fixture
def customer(db):
    return CustomerFactory(email="alex@example.com")


# --- Loading ----------------------------------------------------------------------------


@loads
def test_the_poller_long_polls_until_the_load_the_page_started_is_stored(
    agent_client, card_api, customer, settings
):
    settings.CARDS_PAGE_RECHECK_SECONDS = 3600  # the next ask at the card's expiry
    plan = CardConfigFactory(key="plan", title="Plan", api_url=card_api.url)
    serve_versions(card_api, delay=0.3)

    html = page(agent_client, customer)
    assert state_of(html, "plan") == "loading"
    poller = poller_of(html)
    assert poller["trigger"] == "load, card-retry"
    assert poller["cards"] == f"{plan.pk}:0"  # no version of it shown yet
    assert poller["pending"] == str(plan.pk) and poller["started"] == "1"
    answer = ok(poll(agent_client, customer, poller))

    loaded = card_of(answer, "plan")
    assert loaded.startswith(f'<section hx-swap-oob="morph" id="card-{plan.pk}"')
    assert 'data-card-state="loaded"' in loaded and "plan version 1" in loaded
    assert "loaded <time" in loaded and "stale" not in loaded
    after = poller_of(answer)
    assert after["pending"] == "" and "started" not in after
    assert after["trigger"] in {"load delay:300s, card-retry", "load delay:299s, card-retry"}
    assert card_api.keys_requested == [["plan"]]  # the poller did not load it twice


@loads
def test_one_answer_brings_every_card_that_settles_and_the_rest_keep_waiting(
    agent_client, card_api, customer
):
    fast = CardConfigFactory(key="fast", api_url=card_api.url)
    slow = CardConfigFactory(key="slow", api_url=card_api.server.url_for("/slow"))
    serve_versions(card_api)
    release = threading.Event()

    def slow_api(request: Request) -> Response:
        release.wait(timeout=10)
        body = json.dumps({"cards": [card("slow", text("slow one"))]})
        return Response(body, content_type="application/json")

    card_api.server.expect_request("/slow", method="POST").respond_with_handler(slow_api)
    html = page(agent_client, customer)
    assert poller_of(html)["pending"] == ids(fast, slow)

    first = ok(poll(agent_client, customer, poller_of(html)))
    assert state_of(first, "fast") == "loaded" and card_of(first, "slow") == ""
    assert poller_of(first)["pending"] == ids(slow) and poller_of(first)["trigger"].startswith(
        "load,"
    )
    release.set()
    second = ok(poll(agent_client, customer, poller_of(first)))

    assert "slow one" in card_of(second, "slow") and card_of(second, "fast") == ""
    assert poller_of(second)["pending"] == ""


@loads
def test_the_wait_gathers_batch_mates_that_settle_right_after_the_first(customer):
    one, two = CardConfigFactory(key="one"), CardConfigFactory(key="two")
    now = timezone.now()
    for config in (one, two):
        CardInstanceFactory(
            customer=customer, config=config, state=State.LOADING, claimed_at=now, claim_token="t"
        )

    def store(config, after: float) -> None:
        time.sleep(after)
        at = timezone.now()
        CardInstance.objects.filter(config=config).update(
            state=State.LOADED,
            loaded_at=at,
            expires_at=at + timedelta(minutes=5),
            updated_at=at,
            claimed_at=None,
            claim_token="",
        )
        close_old_connections()

    threads = [threading.Thread(target=store, args=(c, s)) for c, s in ((one, 0.1), (two, 0.3))]
    for thread in threads:
        thread.start()
    wait = cards_wait(
        customer=customer, configs=[one, two], pending={one.pk, two.pk}, since=now, coalesce=2.0
    )
    for thread in threads:
        thread.join()

    assert wait.settled == {one.pk, two.pk} and wait.waiting == set()


@loads
def test_the_poller_alone_starts_the_loads_its_cards_need(agent_client, card_api, customer):
    plan = CardConfigFactory(key="plan", api_url=card_api.url)
    serve_versions(card_api)

    answer = ok(poll(agent_client, customer, {"cards": shown(plan), "pending": ids(plan)}))

    assert "plan version 1" in card_of(answer, "plan")
    assert card_api.keys_requested == [["plan"]]


@loads
def test_the_poller_starts_the_load_its_page_promised_when_nobody_claims_it(
    agent_client, card_api, customer
):
    plan = CardConfigFactory(key="plan", api_url=card_api.url)
    serve_versions(card_api)
    # As if a page had just started the load, and its task were lost.
    poller = {"cards": shown(plan), "pending": ids(plan), "since": since_now(), "started": "1"}

    started = time.monotonic()
    answer = ok(poll(agent_client, customer, poller))

    assert "plan version 1" in card_of(answer, "plan")
    assert time.monotonic() - started >= START_GRACE_SECONDS  # the page's task had its chance
    assert card_api.keys_requested == [["plan"]]


@loads
def test_a_loaded_card_is_reloaded_at_expiry_and_the_page_gets_the_new_answer(
    agent_client, card_api, customer
):
    CardConfigFactory(key="plan", api_url=card_api.url)
    serve_versions(card_api, ttl=2)
    first = ok(poll(agent_client, customer, poller_of(page(agent_client, customer))))
    assert poller_of(first)["trigger"] == "load delay:2s, card-retry"

    time.sleep(2.05)
    second = ok(poll(agent_client, customer, poller_of(first)))

    assert "plan version 2" in card_of(second, "plan")
    assert card_api.keys_requested == [["plan"], ["plan"]]


@loads
def test_cards_that_expire_together_are_reloaded_in_one_request(agent_client, card_api, customer):
    for key in ("plan", "orders"):
        CardConfigFactory(key=key, api_url=card_api.url)
    CardConfigFactory(key="later", api_url=card_api.url)
    serve_versions(card_api, ttls={"plan": 2, "orders": 2, "later": 600})
    first = ok(poll(agent_client, customer, poller_of(page(agent_client, customer))))

    time.sleep(2.05)
    second = ok(poll(agent_client, customer, poller_of(first)))

    assert "version 2" in card_of(second, "plan") and "version 2" in card_of(second, "orders")
    assert card_api.keys_requested == [["plan", "orders", "later"], ["plan", "orders"]]


@loads
def test_a_card_still_loading_when_the_wait_ends_asks_again_soon(agent_client, customer, settings):
    settings.CARDS_WAIT_SECONDS = 0.2
    config = CardConfigFactory(key="plan")
    CardInstanceFactory(customer=customer, config=config, claimed=True)
    poller = {"cards": shown(config), "pending": ids(config), "since": "1700000000000"}

    answer = ok(poll(agent_client, customer, {**poller, "started": "1"}))

    assert card_of(answer, "plan") == ""  # nothing new: the skeleton stays
    # Still waiting for the same load.
    assert poller_of(answer) == {**poller, "started": "1", "trigger": "load delay:1s, card-retry"}


@loads
def test_a_fresh_card_answers_at_once_without_a_request(agent_client, card_api, customer):
    config = CardConfigFactory(key="plan", api_url=card_api.url)
    now = timezone.now()
    CardInstanceFactory(
        customer=customer,
        config=config,
        state=State.LOADED,
        components=text("cached"),
        loaded_at=now,
        expires_at=now + timedelta(minutes=5),
    )
    serve_versions(card_api)

    started = time.monotonic()
    answer = ok(
        poll(
            agent_client,
            customer,
            {"cards": shown(config), "pending": ids(config), "since": "9" * 13},
        )
    )

    assert "cached" in card_of(answer, "plan") and time.monotonic() - started < 1
    assert card_api.requests == []


@loads
def test_a_poller_with_nothing_due_answers_at_once_with_the_next_expiry(
    agent_client, card_api, customer, settings
):
    settings.CARDS_PAGE_RECHECK_SECONDS = 3600  # the next ask at the expiry, not before
    config = CardConfigFactory(key="plan", api_url=card_api.url)
    now = timezone.now()
    CardInstanceFactory(
        customer=customer,
        config=config,
        state=State.LOADED,
        components=text("cached"),
        loaded_at=now,
        expires_at=now + timedelta(seconds=90),
    )

    poller = {"cards": shown(config, customer=customer), "since": since_now()}

    started = time.monotonic()
    answer = ok(poll(agent_client, customer, poller))

    assert card_of(answer, "plan") == "" and time.monotonic() - started < 1
    assert poller_of(answer)["trigger"] in {
        "load delay:90s, card-retry",
        "load delay:89s, card-retry",
    }
    assert card_api.requests == []


def test_a_card_someone_else_is_loading_is_waited_for_not_polled_every_second(
    agent_client, customer
):
    config = CardConfigFactory(key="plan")
    at = timezone.now() - timedelta(minutes=10)
    instance = CardInstanceFactory(
        customer=customer,
        config=config,
        state=State.LOADED,
        components=text("old"),
        loaded_at=at,
        expires_at=at + timedelta(minutes=5),
    )
    poller = {"cards": shown(config, customer=customer), "since": since_now()}
    # Refresh-ahead (or another agent) claims it after the page showed it.
    CardInstance.objects.filter(pk=instance.pk).update(
        state=State.LOADING, claimed_at=timezone.now(), claim_token="worker"
    )

    answer = ok(poll(agent_client, customer, poller))

    assert card_of(answer, "plan") == ""
    assert poller_of(answer)["pending"] == ids(config)
    assert poller_of(answer)["trigger"] == "load, card-retry"


def test_a_store_stamped_before_the_poller_asked_still_reaches_the_page(agent_client, customer):
    config = CardConfigFactory(key="plan")
    old = timezone.now() - timedelta(seconds=30)
    instance = CardInstanceFactory(
        customer=customer,
        config=config,
        state=State.LOADED,
        components=text("first"),
        loaded_at=old,
        expires_at=old + timedelta(minutes=5),
    )
    poller = {"cards": shown(config, customer=customer), "since": since_now()}
    # A loader stamps its store when it starts and commits later: after the poller's moment.
    CardInstance.objects.filter(pk=instance.pk).update(
        components=text("second"), updated_at=old + timedelta(seconds=1)
    )

    answer = ok(poll(agent_client, customer, poller))

    assert "second" in card_of(answer, "plan")
    after = poller_of(answer)
    assert after["cards"] == shown(config, customer=customer)  # now shows that version


@loads
def test_null_cards_render_a_hidden_placeholder_that_still_reloads(
    agent_client, card_api, customer
):
    CardConfigFactory(key="nothing", title="Null card", api_url=card_api.url)
    CardConfigFactory(key="empty", title="Empty card", api_url=card_api.url)
    card_api.serve({"nothing": card("nothing", None, ttl=60), "empty": card("empty", [])})

    answer = ok(poll(agent_client, customer, poller_of(page(agent_client, customer))))

    hidden, empty = card_of(answer, "nothing"), card_of(answer, "empty")
    assert 'data-card-state="hidden" hidden' in hidden and "Null card" not in hidden
    assert poller_of(answer)["trigger"] in {
        "load delay:60s, card-retry",
        "load delay:59s, card-retry",
    }
    assert "Empty card" in empty and "Nothing to show" in empty


def test_a_card_disabled_while_its_page_is_open_is_removed_from_the_page(agent_client, customer):
    off = CardConfigFactory(key="off", is_enabled=False)

    answer = ok(poll(agent_client, customer, {"cards": shown(off), "pending": ids(off)}))

    assert f'<div id="card-{off.pk}" hx-swap-oob="delete"></div>' in answer
    assert poller_of(answer) == {}  # no card left to wait for


def test_the_poller_sends_anonymous_htmx_requests_to_the_login_page(client, customer):
    config = CardConfigFactory(key="plan")
    page_url = f"http://testserver/customers/{customer.pk}/"

    htmx = poll(
        client,
        customer,
        {"cards": shown(config)},
        HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL=page_url,
    )

    assert htmx.status_code == 401
    assert htmx["HX-Redirect"] == f"/login/?next=/customers/{customer.pk}/"


def test_an_answer_costs_the_same_queries_for_1_or_25_settled_cards(agent_client, customer):
    configs = [CardConfigFactory() for _ in range(25)]
    now = timezone.now()
    for n, config in enumerate(configs):
        CardInstanceFactory(
            customer=customer,
            config=config,
            state=State.LOADED,
            components=text(f"card {n}"),
            loaded_at=now,
            expires_at=now + timedelta(minutes=5),
        )

    def queries(chosen) -> int:
        with CaptureQueriesContext(connection) as captured:
            answer = ok(
                poll(agent_client, customer, {"cards": shown(*chosen), "pending": ids(*chosen)})
            )
        assert answer.count('hx-swap-oob="morph"') == len(chosen)
        return len(captured)

    # First, what a page's first answer also does: read the agent's permission (remembered
    # after, cards.live.access) and render the cards into the cache.
    queries(configs)
    assert queries(configs[:1]) == queries(configs)
