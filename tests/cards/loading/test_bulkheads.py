"""Bulkheads (cards.loading.bulkheads, SPEC §7 "Isolation"): requests in flight are capped
per card API, loads over the cap wait their turn or end as a clear TIMEOUT, and a hung
card API never delays another API's card for another customer, in either mode.

The hung API here blocks until the test releases it; its loads give up on their own
request deadline (2 s in the test settings). "Not delayed" is an order, not a duration: the
healthy card is stored while every load of the hung API is still waiting for its answer.
"""

import json
import threading
import time
from collections.abc import Callable

import pytest
from django.test import override_settings
from werkzeug import Request, Response

import cards.tasks  # noqa: F401  (registers cards.cards_load, which the in-process pool runs)
from cards.background.enqueue import cards_enqueue_stale
from cards.loading.bulkheads import fetches, wait_idle
from cards.loading.services import cards_load
from cards.models import CardInstance
from cards.protocol.batching import batch_key
from tests.cards.cardapi import card
from tests.factories import CardConfigFactory, CustomerFactory
from tests.workers import clear_test_broker

pytestmark = pytest.mark.django_db(transaction=True)
State = CardInstance.State


class Upstream:
    """Two card APIs on one server: `?hung` answers only once released, `?fast` at once
    (after `delay` seconds, if given). Counts the hung API's requests in flight."""

    def __init__(self, card_api, *, delay: float = 0.0) -> None:
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most_in_flight = 0
        self.hung_requests = 0
        self.delay = delay
        card_api.serve_handler(self.handle)
        self.hung_url = f"{card_api.url}?hung"
        self.fast_url = f"{card_api.url}?fast"

    def handle(self, request: Request, body: dict) -> Response:
        if "hung" in request.args:
            with self.lock:
                self.hung_requests += 1
                self.in_flight += 1
                self.most_in_flight = max(self.most_in_flight, self.in_flight)
            try:
                self.release.wait(timeout=30) if not self.delay else time.sleep(self.delay)
            finally:
                with self.lock:
                    self.in_flight -= 1
        cards = [card(key) for key in body["cardKeys"]]
        return Response(json.dumps({"cards": cards}), content_type="application/json")


def eventually(check: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout} s: {what}")
        time.sleep(0.02)


@pytest.fixture(params=["embedded", "redis"])
def mode(request, settings):
    """Where background loads run: the in-process pool, or a real Celery worker (8 threads)."""
    if request.param == "redis":
        redis_url = request.getfixturevalue("redis_url")
        workers = request.getfixturevalue("module_workers")
        if workers.current is None:
            clear_test_broker(redis_url)
        workers.ensure(redis_url=redis_url)
        settings.REDIS_URL = redis_url
    else:
        settings.REDIS_URL = ""
    return request.param


def test_a_hung_api_does_not_delay_a_healthy_apis_card_for_another_customer(
    mode, card_api, settings
):
    upstream = Upstream(card_api)
    hung = CardConfigFactory(key="slow", api_url=upstream.hung_url)
    fast = CardConfigFactory(key="fast", api_url=upstream.fast_url)
    # More stuck loads than the loading threads of either mode (8 in-process, 8 per worker).
    stuck = [CustomerFactory() for _ in range(12)]
    try:
        for customer in stuck:
            cards_enqueue_stale(customer=customer, configs=[hung], instances={})
        eventually(lambda: upstream.hung_requests == len(stuck), "every hung load in flight")

        other = CustomerFactory()
        cards_enqueue_stale(customer=other, configs=[fast], instances={})
        eventually(
            lambda: CardInstance.objects.filter(
                customer=other, config=fast, state=State.LOADED
            ).exists(),
            "the healthy card stored",
        )
        # ... while every load of the hung API still waits for its answer.
        assert upstream.in_flight == len(stuck)
        assert set(CardInstance.objects.filter(config=hung).values_list("state", flat=True)) == {
            State.LOADING
        }
    finally:
        upstream.release.set()
    eventually(
        lambda: not CardInstance.objects.filter(config=hung, state=State.LOADING).exists(),
        "the hung API's loads ended",
    )


def test_requests_in_flight_to_one_card_api_never_exceed_its_cap(card_api):
    upstream = Upstream(card_api, delay=0.3)
    capped = CardConfigFactory(key="slow", api_url=upstream.hung_url, max_in_flight=3)
    customers = [CustomerFactory() for _ in range(8)]

    for customer in customers:
        cards_enqueue_stale(customer=customer, configs=[capped], instances={})
    eventually(
        lambda: CardInstance.objects.filter(config=capped, state=State.LOADED).count() == 8,
        "every load stored",
    )

    assert upstream.hung_requests == 8
    assert upstream.most_in_flight == 3  # the others waited their turn
    assert wait_idle()


def test_a_load_that_waits_a_whole_deadline_for_a_turn_ends_as_a_clear_timeout(card_api, settings):
    upstream = Upstream(card_api)
    capped = CardConfigFactory(key="slow", api_url=upstream.hung_url, max_in_flight=1)
    first, second = CustomerFactory(), CustomerFactory()
    try:
        cards_enqueue_stale(customer=first, configs=[capped], instances={})
        eventually(lambda: upstream.hung_requests == 1, "the first load in flight")
        key = batch_key(url=capped.api_url, headers=[])
        report = cards_load(customer=second, configs=[capped])
        assert fetches.in_flight(key) <= 1
    finally:
        upstream.release.set()

    [instance] = report.instances
    assert instance.state == State.ERROR and instance.error_kind == "TIMEOUT"
    assert "not sent" in json.dumps(instance.error_detail)
    assert "requests in flight" in json.dumps(instance.error_detail)
    assert upstream.hung_requests == 1  # the second never reached the API
    assert wait_idle()


def test_a_worker_stopping_stores_the_loads_it_handed_over_first(card_api, redis_url, tmp_path):
    from tests.workers import start_worker

    upstream = Upstream(card_api, delay=1.0)
    config = CardConfigFactory(key="slow", api_url=upstream.hung_url)
    customer = CustomerFactory()
    clear_test_broker(redis_url)
    worker = start_worker(redis_url=redis_url, log_dir=tmp_path)
    try:
        with override_settings(REDIS_URL=redis_url):
            cards_enqueue_stale(customer=customer, configs=[config], instances={})
        eventually(lambda: upstream.hung_requests == 1, "the load in flight")
    finally:
        worker.stop(timeout=15)  # SIGTERM: a warm shutdown, as at a deploy
    instance = CardInstance.objects.get(customer=customer, config=config)
    assert instance.state == State.LOADED
