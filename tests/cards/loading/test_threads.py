"""Which threads touch the database (issue 17, finding 6): the request's or task's own and
the in-process loaders, never the fetch threads; and each loader gives its connection
back. Observed through Django's `connection_created` signal, on a real card API."""

import json
import threading
import time

import pytest
from django.db import connections
from django.db.backends.signals import connection_created
from werkzeug import Request, Response

from cards.background.enqueue import cards_enqueue_stale
from cards.loading.services import card_configs_enabled, cards_load
from cards.models import CardInstance
from customers.models import Customer
from tests.cards.cardapi import TEXT
from tests.factories import (
    CardConfigFactory,
    CardConfigHeaderFactory,
    CustomerFactory,
    TenantFactory,
)

pytestmark = pytest.mark.django_db(transaction=True)


def until(check, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.05)


@pytest.fixture
def connecting_threads():
    """The name of every thread that opens a database connection during the test."""
    names: list[str] = []

    def record(sender, connection, **kwargs):
        names.append(threading.current_thread().name)

    connection_created.connect(record)
    yield names
    connection_created.disconnect(record)


@pytest.fixture
def two_batches(card_api):
    bodies: list[dict] = []

    def handler(request: Request, body: dict) -> Response:
        bodies.append(body)
        cards = [{"key": key, "components": TEXT} for key in body["cardKeys"]]
        return Response(json.dumps({"cards": cards}), content_type="application/json")

    card_api.serve_handler(handler)
    CardConfigFactory(key="plan", api_url=card_api.url)
    other = CardConfigFactory(key="orders", api_url=card_api.url)
    CardConfigHeaderFactory(config=other, name="X-Team", value="orders")
    return bodies


def test_fetch_threads_never_query_even_for_a_customer_read_without_its_tenant(
    two_batches, connecting_threads, monkeypatch
):
    tenant = TenantFactory(external_id="acme")
    customer = Customer.objects.get(pk=CustomerFactory(tenant=tenant).pk)  # tenant not read

    report = cards_load(customer=customer)

    assert [i.state for i in report.instances] == ["loaded", "loaded"]
    assert [body["tenant"]["externalId"] for body in two_batches] == ["acme", "acme"]
    assert not [name for name in connecting_threads if name.startswith("card-fetch")]


def test_in_process_loaders_close_their_connection_after_each_job(
    two_batches, connecting_threads, monkeypatch
):
    customer = CustomerFactory(tenant=TenantFactory())
    loader_connections: list = []
    # As in production (the test settings close every connection after use anyway).
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 60)

    def record_close(sender, connection, **kwargs):
        if threading.current_thread().name.startswith("card-load"):
            loader_connections.append(connection)

    connection_created.connect(record_close)
    try:
        cards_enqueue_stale(customer=customer, configs=card_configs_enabled(), instances={})
        until(lambda: CardInstance.objects.filter(state="loaded").count() == 2)
        until(lambda: all(c.connection is None for c in loader_connections))
    finally:
        connection_created.disconnect(record_close)

    assert loader_connections, "the loads ran on the in-process pool"
    assert not [name for name in connecting_threads if name.startswith("card-fetch")]
