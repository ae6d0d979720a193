"""The store bell (cards.loading.bell): a store wakes the long-polls waiting for its customer as
soon as it commits, in the same process and, on PostgreSQL, in every other one.

The waits here read the database only every 30 s, longer than their timeout, so only the
bell can end them with an answer.
"""

import json
import threading
import time

import psycopg
import pytest
from django.db import close_old_connections, connection
from django.utils import timezone
from werkzeug import Response

from cards.live.waiting import cards_wait
from cards.loading.bell import CHANNEL, Bell, bell, listening
from cards.loading.services import cards_load
from cards.models import CardInstance
from tests.cards.cardapi import card
from tests.cards.cardpages import serve_versions
from tests.factories import CardConfigFactory, CardInstanceFactory, CustomerFactory

State = CardInstance.State
SLOW_POLL = 30.0
postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="LISTEN/NOTIFY is PostgreSQL's; on SQLite the bell rings in-process only",
)


def test_a_ring_wakes_the_customers_waiters_only():
    doorbell = Bell()
    with (
        doorbell.subscribe(1) as first,
        doorbell.subscribe(1) as second,
        doorbell.subscribe(2) as other,
    ):
        doorbell.ring(1)
        assert first.is_set() and second.is_set()
        assert not other.is_set()
    doorbell.ring(1)  # nobody listens any more: nothing to wake, nothing kept
    assert doorbell._waiters == {}


def _load_in_thread(customer, config):
    def load():
        try:
            cards_load(customer=customer, configs=[config])
        finally:
            close_old_connections()

    thread = threading.Thread(target=load)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_a_store_wakes_the_wait_for_its_customer(card_api):
    customer = CustomerFactory()
    config = CardConfigFactory(key="plan", api_url=card_api.url)
    serve_versions(card_api, delay=0.3)
    started = timezone.now()
    thread = _load_in_thread(customer, config)
    began = time.monotonic()
    wait = cards_wait(
        customer=customer,
        configs=[config],
        pending={config.pk},
        since=started,
        timeout=10,
        interval=SLOW_POLL,
    )
    thread.join()
    assert wait.settled == {config.pk}
    assert wait.instances[config.pk].state == State.LOADED
    assert time.monotonic() - began < 5  # the bell, not the 10 s timeout, ended it


@pytest.mark.django_db(transaction=True)
def test_a_wait_for_another_customer_sleeps_through_the_ring(card_api):
    customer, other = CustomerFactory(), CustomerFactory()
    config = CardConfigFactory(key="plan", api_url=card_api.url)
    serve_versions(card_api)
    # Someone else is loading the other customer's card: the wait only waits for it.
    CardInstanceFactory(customer=other, config=config, claimed=True)
    thread = _load_in_thread(customer, config)
    wait = cards_wait(
        customer=other,
        configs=[config],
        pending={config.pk},
        since=timezone.now(),
        timeout=1,
        interval=SLOW_POLL,
    )
    thread.join()
    assert wait.settled == set()
    assert wait.waiting == {config.pk}


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_notification_from_another_connection_rings_this_process():
    """What a store in another process (a web worker, a Celery worker) sends, heard here."""
    deadline = time.monotonic() + 10
    while not listening():
        assert time.monotonic() < deadline, "the listener did not connect"
        time.sleep(0.05)
    params = connection.get_connection_params()
    params = {k: v for k, v in params.items() if k not in ("cursor_factory", "context")}
    with bell.subscribe(4242) as rung, psycopg.connect(**params, autocommit=True) as other:
        other.execute("SELECT pg_notify(%s, %s)", [CHANNEL, "4242"])
        assert rung.wait(10)


@pytest.mark.django_db(transaction=True)
def test_while_the_wait_lingers_for_batch_mates_it_announces_the_cards_already_stored(card_api):
    """The poller renders those meanwhile, so its answer only renders the last ones."""
    customer = CustomerFactory()
    fast = CardConfigFactory(key="fast", api_url=f"{card_api.url}?fast", order=1)
    slow = CardConfigFactory(key="slow", api_url=f"{card_api.url}?slow", order=2)

    def handler(request, body):
        time.sleep(0.4 if "slow" in request.args else 0)
        cards = [card(key) for key in body["cardKeys"]]
        return Response(json.dumps({"cards": cards}), content_type="application/json")

    card_api.serve_handler(handler)
    announced = []
    started = timezone.now()
    loads = [_load_in_thread(customer, fast), _load_in_thread(customer, slow)]
    wait = cards_wait(
        customer=customer,
        configs=[fast, slow],
        pending={fast.pk, slow.pk},
        since=started,
        timeout=10,
        interval=SLOW_POLL,
        coalesce=5,
        on_news=announced.append,
    )
    for load in loads:
        load.join()
    assert announced == [{fast.pk}]
    assert wait.settled == {fast.pk, slow.pk}
