"""The page's poller, card fragments, reload and reload-all against a real card API on
loopback (SPEC §6-§8).

Loads run on the in-process pool, whose threads use their own database connections, so
tests that load are transactional.
"""

import html as html_lib
import json
import re
import threading
import time
from datetime import timedelta

import pytest
from django.db import close_old_connections, connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from werkzeug import Request, Response

from cards.display import AGENT_REASONS, UNAVAILABLE_NOTICE
from cards.models import CardInstance
from cards.waiting import RETRY_AFTER_SECONDS, START_GRACE_SECONDS, card_version, cards_wait
from tests.cards.cardapi import card
from tests.factories import CardConfigFactory, CardInstanceFactory, CustomerFactory, UserFactory

State = CardInstance.State
Kind = CardInstance.ErrorKind
loads = pytest.mark.django_db(transaction=True)


@pytest.fixture
def customer(db):
    return CustomerFactory(email="alex@example.com")


def text(value: str) -> list[dict]:
    return [{"componentText": {"text": value}}]


def serve_versions(
    card_api, *, ttl: int | None = None, delay: float = 0.0, ttls: dict[str, int] | None = None
) -> None:
    """Every answer carries a version number, so a reload shows different content.

    `ttl` is every card's timeToLiveSeconds; `ttls` sets it per key.
    """
    counter = {"n": 0}
    lock = threading.Lock()

    def handler(request: Request, body: dict) -> Response:
        time.sleep(delay)
        with lock:
            counter["n"] += 1
            n = counter["n"]
        cards = [
            card(key, text(f"{key} version {n}"), ttl=(ttls or {}).get(key, ttl))
            for key in body["cardKeys"]
        ]
        return Response(json.dumps({"cards": cards}), content_type="application/json")

    card_api.serve_handler(handler)


def page(client, customer) -> str:
    response = client.get(reverse("customers:detail", args=[customer.pk]))
    assert response.status_code == 200
    return response.content.decode()


def poller_of(html: str) -> dict:
    """The poller's request (its inputs) and trigger; {} for the empty placeholder."""
    match = re.search(r'<div id="cards-poller"[^>]*>.*?</div>', html, re.S)
    assert match, "no poller"
    element = match.group(0)
    trigger = re.search(r'hx-trigger="([^"]*)"', element)
    if trigger is None:
        return {}
    inputs = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', element))
    return {**inputs, "trigger": trigger.group(1)}


def poll(client, customer, poller: dict, **headers):
    """What htmx sends for the poller: a GET with its inputs."""
    query = {name: value for name, value in poller.items() if name != "trigger"}
    return client.get(reverse("cards:updates", args=[customer.pk]), query, **headers)


def ok(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def card_of(html: str, key: str) -> str:
    """One card element of a page or of an answer ('' when absent)."""
    match = re.search(
        rf'<(section|div)(?: hx-swap-oob="outerHTML")? id="card-{key}".*?</\1>', html, re.S
    )
    return match.group(0) if match else ""


def state_of(html: str, key: str) -> str | None:
    match = re.search(r'data-card-state="([^"]+)"', card_of(html, key))
    return match.group(1) if match else None


def ids(*configs) -> str:
    return ",".join(str(config.pk) for config in configs)


def shown(*configs, customer=None) -> str:
    """A poller's `cards`: each config with the version the page shows (none: 0, or the
    customer's instance as it is now)."""
    versions = {}
    if customer is not None:
        for instance in CardInstance.objects.filter(customer=customer):
            versions[instance.config_id] = card_version(instance)
    return ",".join(f"{config.pk}:{versions.get(config.pk, 0)}" for config in configs)


def card_ids(poller: dict) -> str:
    """The config ids of a poller's `cards`, without their versions."""
    return ",".join(part.split(":")[0] for part in poller["cards"].split(",") if part)


def fragment(client, customer, key, query=None, **headers):
    return client.get(reverse("cards:card", args=[customer.pk, key]), query or {}, **headers)


def since_now() -> str:
    return str(int(time.time() * 1000))


# --- Loading ----------------------------------------------------------------------------


@loads
def test_the_poller_long_polls_until_the_load_the_page_started_is_stored(
    agent_client, card_api, customer
):
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
    assert loaded.startswith('<section hx-swap-oob="outerHTML" id="card-plan"')
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
            state=State.LOADED, loaded_at=at, expires_at=at + timedelta(minutes=5), updated_at=at
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
    CardInstanceFactory(
        customer=customer,
        config=config,
        state=State.LOADING,
        claimed_at=timezone.now(),
        claim_token="someone-else",
    )
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
    agent_client, card_api, customer
):
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

    assert '<div id="card-off" hx-swap-oob="delete"></div>' in answer
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
        assert answer.count('hx-swap-oob="outerHTML"') == len(chosen)
        return len(captured)

    assert queries(configs[:1]) == queries(configs)


# --- Fragments --------------------------------------------------------------------------


@loads
def test_a_fragment_alone_starts_the_load_its_card_needs(agent_client, card_api, customer):
    CardConfigFactory(key="plan", api_url=card_api.url)
    serve_versions(card_api)

    loaded = ok(fragment(agent_client, customer, "plan"))

    assert "plan version 1" in loaded and 'data-card-state="loaded"' in loaded
    assert card_api.keys_requested == [["plan"]]


def test_fragments_of_unknown_or_disabled_cards_are_404(agent_client, customer):
    CardConfigFactory(key="off", is_enabled=False)

    assert fragment(agent_client, customer, "nope").status_code == 404
    assert fragment(agent_client, customer, "off").status_code == 404


def test_a_disabled_cards_fragment_asked_by_htmx_is_empty(agent_client, customer):
    CardConfigFactory(key="off", is_enabled=False)

    response = fragment(agent_client, customer, "off", HTTP_HX_REQUEST="true")

    assert response.status_code == 200 and response.content == b""


def test_fragments_send_anonymous_htmx_requests_to_the_login_page(client, customer):
    CardConfigFactory(key="plan")
    page_url = f"http://testserver/customers/{customer.pk}/"

    htmx = fragment(client, customer, "plan", HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL=page_url)
    plain = fragment(client, customer, "plan")

    assert htmx.status_code == 401
    assert htmx["HX-Redirect"] == f"/login/?next=/customers/{customer.pk}/"
    assert plain.status_code == 302 and plain["Location"].startswith("/login/?next=")


# --- Reload -----------------------------------------------------------------------------


@pytest.fixture
def csrf_client(agent):
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent)
    return client


def csrf_token(html: str) -> str:
    return re.search(r'<meta name="csrf-token" content="([^"]+)">', html).group(1)


def reload(client, customer, key, poller: dict | None = None, **headers):
    """What the reload button sends: a POST with the page's poller's inputs."""
    form = {name: value for name, value in (poller or {}).items() if name != "trigger"}
    return client.post(reverse("cards:card-reload", args=[customer.pk, key]), form, **headers)


@loads
def test_reload_needs_csrf_and_asks_the_api_for_that_key_alone(csrf_client, card_api, customer):
    configs = {  # same API: batched on the first load
        key: CardConfigFactory(key=key, title=key.title(), api_url=card_api.url)
        for key in ("plan", "orders")
    }
    serve_versions(card_api)
    html = page(csrf_client, customer)
    settled = ok(poll(csrf_client, customer, poller_of(html)))
    assert card_api.keys_requested == [["plan", "orders"]]

    assert reload(csrf_client, customer, "orders").status_code == 403
    token = csrf_token(html)
    reloading = ok(
        reload(csrf_client, customer, "orders", poller_of(settled), HTTP_X_CSRFTOKEN=token)
    )

    orders = card_of(reloading, "orders")
    assert orders.startswith('<section id="card-orders"')  # it replaces the card in place
    assert 'data-card-state="loading"' in orders and "cc-card--stale" in orders
    assert "orders version 1" in orders and "stale · loaded" in orders
    poller = poller_of(reloading)
    assert 'id="cards-poller" class="cc-poller" hidden hx-swap-oob="outerHTML"' in reloading
    assert poller["trigger"] == "load, card-retry" and poller["pending"] == ids(configs["orders"])
    assert card_ids(poller) == ids(configs["plan"], configs["orders"])
    reloaded = ok(poll(csrf_client, customer, poller))
    assert "orders version 2" in card_of(reloaded, "orders") and card_of(reloaded, "plan") == ""
    assert "stale" not in card_of(reloaded, "orders")
    assert card_api.keys_requested == [["plan", "orders"], ["orders"]]


@loads
def test_the_poller_a_reload_answers_misses_nothing_the_old_one_waited_for(
    agent_client, card_api, customer
):
    plan = CardConfigFactory(key="plan", api_url=card_api.url)
    orders = CardConfigFactory(key="orders", api_url=card_api.url)
    serve_versions(card_api)
    html = page(agent_client, customer)
    old = poller_of(html)  # waits for both; its answer never arrives (the reload replaces it)
    while CardInstance.objects.filter(state=State.LOADING).exists():
        time.sleep(0.02)

    replacing = poller_of(ok(reload(agent_client, customer, "plan", old)))

    # The page now shows plan's stored answer (reloading); orders is still news to it.
    assert replacing["cards"] == f"{shown(plan, customer=customer)},{orders.pk}:0"
    assert replacing["pending"] == ids(plan, orders)
    answer = ok(poll(agent_client, customer, replacing))
    assert "orders version 1" in card_of(answer, "orders")
    while "plan version 2" not in card_of(answer, "plan"):
        assert poller_of(answer)["pending"] == ids(plan)
        answer = ok(poll(agent_client, customer, poller_of(answer)))


@loads
def test_reload_bypasses_a_cached_error(agent_client, card_api, customer):
    CardConfigFactory(key="plan", api_url=card_api.url)
    card_api.serve({})  # MISSING_CARD: cached for 5 minutes
    first = ok(poll(agent_client, customer, poller_of(page(agent_client, customer))))
    assert AGENT_REASONS[Kind.MISSING_CARD] in card_of(first, "plan")
    serve_versions(card_api)

    reloading = ok(reload(agent_client, customer, "plan", poller_of(first)))
    reloaded = ok(poll(agent_client, customer, poller_of(reloading)))

    assert "plan version 1" in card_of(reloaded, "plan")
    assert len(card_api.requests) == 2


@loads
def test_reload_all_reloads_every_card_and_answers_the_panel(agent_client, card_api, customer):
    for key in ("plan", "orders"):
        CardConfigFactory(key=key, api_url=card_api.url)
    serve_versions(card_api)
    ok(poll(agent_client, customer, poller_of(page(agent_client, customer))))

    panel = ok(agent_client.post(reverse("cards:cards-reload", args=[customer.pk])))

    assert panel.startswith('<section class="cc-panel" id="cards-panel"') or (
        'id="cards-panel"' in panel
    )
    assert panel.count('data-card-state="loading"') == 2
    assert len(poller_of(panel)["pending"].split(",")) == 2
    reloaded = ok(poll(agent_client, customer, poller_of(panel)))
    assert "version 2" in card_of(reloaded, "plan") and "version 2" in card_of(reloaded, "orders")
    assert card_api.keys_requested == [["plan", "orders"], ["plan", "orders"]]


def test_reloads_answer_post_only(agent_client, customer):
    CardConfigFactory(key="plan")

    assert (
        agent_client.get(reverse("cards:card-reload", args=[customer.pk, "plan"])).status_code
        == 405
    )
    assert agent_client.put(reverse("cards:cards-reload", args=[customer.pk])).status_code == 405
    # GET on the reload-all URL is the fragment of a card keyed "reload", if any.
    assert agent_client.get(reverse("cards:cards-reload", args=[customer.pk])).status_code == 404


@loads
def test_a_card_keyed_reload_still_has_a_fragment(agent_client, card_api, customer):
    CardConfigFactory(key="reload", api_url=card_api.url)
    serve_versions(card_api)

    html = ok(agent_client.get(reverse("cards:cards-reload", args=[customer.pk])))

    assert "reload version 1" in html


# --- Errors and staleness -----------------------------------------------------------------


@pytest.fixture
def staff_client(client):
    client.force_login(UserFactory(username="staff", is_staff=True))
    return client


def fail_with_status(card_api, status: int, body: str) -> None:
    card_api.serve_raw(body, status=status)


def load_page(client, customer) -> str:
    """Open the page and follow its poller until no card is loading; the last answer."""
    answer = page(client, customer)
    while poller_of(answer).get("pending"):
        answer = ok(poll(client, customer, poller_of(answer)))
    return answer


@loads
def test_agents_see_a_short_reason_without_the_detail(agent_client, card_api, customer):
    CardConfigFactory(key="plan", title="Plan", api_url=card_api.url)
    fail_with_status(card_api, 404, '{"error": "<b>no such customer</b>"}')

    html = card_of(load_page(agent_client, customer), "plan")

    assert 'data-card-state="error"' in html and "Plan" in html
    assert AGENT_REASONS[Kind.STATUS_CODE] in html
    assert "STATUS_CODE" not in html and "no such customer" not in html


@loads
def test_staff_also_see_the_error_kind_and_detail_escaped(staff_client, card_api, customer):
    CardConfigFactory(key="plan", api_url=card_api.url)
    fail_with_status(card_api, 404, '{"error": "<b>no such customer</b>"}')

    answer = load_page(staff_client, customer)
    html = card_of(answer, "plan")

    assert AGENT_REASONS[Kind.STATUS_CODE] in html
    assert "<code>STATUS_CODE</code>" in html and "<code>404</code>" in html
    assert "only 200 is processed" in html
    assert "&lt;b&gt;no such customer&lt;/b&gt;" in html and "<b>no such" not in html
    # A cached integration error is asked again when its 5 minutes are over.
    assert poller_of(answer)["trigger"] in {
        "load delay:300s, card-retry",
        "load delay:299s, card-retry",
    }


@loads
def test_cached_card_html_is_never_shared_between_staff_and_agents(
    staff_client, agent, card_api, customer
):
    CardConfigFactory(key="plan", api_url=card_api.url)
    fail_with_status(card_api, 404, '{"error": "no such customer"}')
    assert "<code>STATUS_CODE</code>" in card_of(load_page(staff_client, customer), "plan")
    agent_client = Client()
    agent_client.force_login(agent)

    html = card_of(page(agent_client, customer), "plan")

    assert AGENT_REASONS[Kind.STATUS_CODE] in html and "STATUS_CODE" not in html


@loads
def test_staff_see_the_json_path_of_a_schema_error(staff_client, card_api, customer):
    CardConfigFactory(key="plan", api_url=card_api.url)
    card_api.serve({"plan": card("plan", [{"componentBadge": {"badgeLabel": 7}}])})

    html = card_of(load_page(staff_client, customer), "plan")

    assert AGENT_REASONS[Kind.RESPONSE_BODY] in html
    assert "cards[0].components[0].componentBadge.badgeLabel" in html


@pytest.mark.parametrize("kind", list(Kind))
def test_every_error_kind_has_a_human_reason(agent_client, customer, kind):
    config = CardConfigFactory(key="plan")
    now = timezone.now()
    CardInstanceFactory(
        customer=customer,
        config=config,
        state=State.ERROR,
        error_kind=kind,
        error_detail={"message": "secret detail"},
        errored_at=now,
        expires_at=now + timedelta(minutes=5),
    )

    html = page(agent_client, customer)

    assert AGENT_REASONS[kind] in html and "secret detail" not in html


@loads
def test_a_retriable_failure_keeps_the_last_good_data_marked_stale(
    agent_client, card_api, customer
):
    CardConfigFactory(key="plan", api_url=card_api.url)
    serve_versions(card_api)
    first = load_page(agent_client, customer)
    fail_with_status(card_api, 503, "down for maintenance")

    reloading = ok(reload(agent_client, customer, "plan", poller_of(first)))
    answer = ok(poll(agent_client, customer, poller_of(reloading)))

    failed = card_of(answer, "plan")
    assert 'data-card-state="error"' in failed and AGENT_REASONS[Kind.STATUS_CODE] in failed
    assert "plan version 1" in failed and "stale · loaded" in failed
    # Not cached: asked again after a pause, not in a tight loop.
    assert poller_of(answer)["trigger"] == f"load delay:{RETRY_AFTER_SECONDS}s, card-retry"
    started = time.monotonic()
    quiet = ok(poll(agent_client, customer, poller_of(answer)))
    assert time.monotonic() - started < 1 and card_of(quiet, "plan") == ""
    assert len(card_api.requests) == 1 + 2  # the first load, then the reload and its retry


# --- Cached rendering -----------------------------------------------------------------------


def test_a_page_of_cached_cards_renders_no_card_template(agent_client, customer):
    now = timezone.now()
    for n in range(3):
        CardInstanceFactory(
            customer=customer,
            config=CardConfigFactory(),
            state=State.LOADED,
            components=text(f"**card {n}**"),
            loaded_at=now,
            expires_at=now + timedelta(minutes=5),
        )
    url = reverse("customers:detail", args=[customer.pk])
    first = agent_client.get(url)
    assert "cards/card.html" in [t.name for t in first.templates]

    second = agent_client.get(url)

    rendered = [t.name for t in second.templates]
    assert "cards/card.html" not in rendered and not any("components/" in t for t in rendered)
    assert panel_of(second) == panel_of(first)


def panel_of(response) -> str:
    html = response.content.decode()
    return html[html.index('<div class="cc-panel__cards">') : html.index('id="cards-poller"')]


def test_card_html_never_depends_on_the_clock(agent_client, customer):
    at = timezone.now() - timedelta(minutes=5)
    CardInstanceFactory(
        customer=customer,
        config=CardConfigFactory(key="plan"),
        state=State.LOADED,
        components=text("x"),
        loaded_at=at,
        expires_at=at + timedelta(hours=1),
    )

    html = card_of(page(agent_client, customer), "plan")

    # The browser writes "5 minutes ago" (static/app.js); the server gives the moment.
    assert f'<time datetime="{at.isoformat()}"' in html and "data-relative" in html
    assert "ago" not in html and "since=" not in html


def test_card_html_is_cached_by_the_stored_version(agent_client, customer):
    now = timezone.now()
    instance = CardInstanceFactory(
        customer=customer,
        config=CardConfigFactory(key="plan"),
        state=State.LOADED,
        components=text("first answer"),
        loaded_at=now,
        expires_at=now + timedelta(minutes=5),
    )
    assert "first answer" in page(agent_client, customer)

    instance.components = text("second answer")
    instance.save()  # as a store does, this moves updated_at

    html = html_lib.unescape(page(agent_client, customer))
    assert "second answer" in html and "first answer" not in html


# --- Live loading unavailable -------------------------------------------------------------


@pytest.fixture
def broker_down(settings):
    """A broker that refuses connections (nothing listens on the discard port)."""
    settings.REDIS_URL = "redis://127.0.0.1:9/0"


@loads
def test_without_a_broker_the_page_shows_cached_cards_and_no_endless_spinner(
    agent_client, customer, broker_down
):
    plan = CardConfigFactory(key="plan", title="Plan")
    CardConfigFactory(key="orders", title="Orders")
    at = timezone.now() - timedelta(minutes=10)
    CardInstanceFactory(
        customer=customer,
        config=plan,
        state=State.LOADED,
        components=text("old plan"),
        loaded_at=at,
        expires_at=at,
    )

    html = page(agent_client, customer)

    assert UNAVAILABLE_NOTICE in html
    assert "old plan" in html and "stale · loaded" in html
    assert 'data-card-state="loading"' not in html and "cc-spinner" not in html
    assert set(re.findall(r'hx-trigger="([^"]*)"', html)) == {
        f"load delay:{RETRY_AFTER_SECONDS}s, card-retry"
    }


@loads
def test_without_a_broker_the_poller_answers_at_once_and_asks_again_later(
    agent_client, customer, broker_down
):
    orders = CardConfigFactory(key="orders", title="Orders")

    started = time.monotonic()
    answer = ok(poll(agent_client, customer, {"cards": shown(orders), "pending": ids(orders)}))

    assert time.monotonic() - started < 5
    assert "Live loading is unavailable right now." in card_of(answer, "orders")
    assert "cc-spinner" not in answer
    assert poller_of(answer)["trigger"] == f"load delay:{RETRY_AFTER_SECONDS}s, card-retry"


@loads
def test_without_a_broker_a_fragment_answers_at_once(agent_client, customer, broker_down):
    CardConfigFactory(key="orders", title="Orders")

    started = time.monotonic()
    html = ok(fragment(agent_client, customer, "orders"))

    assert time.monotonic() - started < 5
    assert "Live loading is unavailable right now." in html and "cc-spinner" not in html


def test_card_answers_carry_the_content_security_policy(agent_client, customer):
    config = CardConfigFactory(key="plan")
    now = timezone.now()
    CardInstanceFactory(
        customer=customer,
        config=config,
        state=State.LOADED,
        components=[],
        loaded_at=now,
        expires_at=now + timedelta(minutes=5),
    )

    for response in (
        fragment(agent_client, customer, "plan"),
        poll(agent_client, customer, {"cards": shown(config), "pending": ids(config)}),
    ):
        assert "script-src 'self'" in response["Content-Security-Policy"]
