"""The loading engine against a real card API on loopback (SPEC §5, §6)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from cards.loading.services import card_configs_enabled, cards_load
from cards.models import CardInstance, CardRequest
from tests.cards.cardapi import TEXT, card
from tests.factories import CardConfigFactory, CustomerFactory

State = CardInstance.State
Kind = CardInstance.ErrorKind
pytestmark = pytest.mark.django_db


@pytest.fixture
def customer():
    return CustomerFactory(email="alex@example.com", external_id="u_123")


def make_configs(card_api, *keys, ttl=300):
    return [CardConfigFactory(key=k, api_url=card_api.url, default_ttl_seconds=ttl) for k in keys]


def instance(customer, key) -> CardInstance:
    return CardInstance.objects.get(customer=customer, config__key=key)


def load(customer):
    return cards_load(customer=customer, configs=card_configs_enabled())


def test_it_loads_every_card_of_a_batch_with_one_request(card_api, customer):
    make_configs(card_api, "plan", "last-order")
    card_api.serve({"plan": card("plan"), "last-order": card("last-order", [])})

    report = load(customer)

    assert card_api.keys_requested == [["plan", "last-order"]]
    assert report.requests == 1 and report.ok
    plan = instance(customer, "plan")
    assert plan.state == State.LOADED
    assert plan.components == TEXT
    assert plan.ttl_seconds == 300
    assert plan.expires_at == plan.loaded_at + timedelta(seconds=300)
    assert instance(customer, "last-order").components == []


def test_it_sends_the_customer_and_tenant_as_the_protocol_says(card_api, customer):
    make_configs(card_api, "plan")
    card_api.serve({"plan": card("plan")})

    load(customer)

    assert card_api.requests[0] == {
        "cardKeys": ["plan"],
        "customer": {"id": customer.public_id, "email": "alex@example.com", "externalId": "u_123"},
    }


def test_response_ttl_overrides_the_default(card_api, customer):
    make_configs(card_api, "plan")
    card_api.serve({"plan": card("plan", ttl=20)})

    load(customer)

    plan = instance(customer, "plan")
    assert plan.ttl_seconds == 20
    assert plan.expires_at == plan.loaded_at + timedelta(seconds=20)


def test_null_components_hide_the_card(card_api, customer):
    make_configs(card_api, "plan")
    card_api.serve({"plan": card("plan", None)})

    load(customer)

    plan = instance(customer, "plan")
    assert plan.state == State.LOADED and plan.components is None


def test_a_missing_key_fails_that_card_only_and_is_cached(card_api, customer):
    make_configs(card_api, "plan", "orders")
    card_api.serve({"plan": card("plan")})

    load(customer)

    assert instance(customer, "plan").state == State.LOADED
    orders = instance(customer, "orders")
    assert orders.state == State.ERROR and orders.error_kind == Kind.MISSING_CARD
    assert orders.expires_at == orders.errored_at + timedelta(minutes=5)
    assert 'no card with key "orders"' in orders.error_detail["message"]


def test_one_malformed_card_never_fails_its_neighbours(card_api, customer):
    make_configs(card_api, "plan", "orders")
    bad = card("orders", [{"componentBadge": {"badgeLabel": "x", "badgeColor": "PINK"}}])
    card_api.serve({"plan": card("plan"), "orders": bad})

    load(customer)

    assert instance(customer, "plan").state == State.LOADED
    orders = instance(customer, "orders")
    assert orders.error_kind == Kind.RESPONSE_BODY
    assert orders.error_detail["path"] == "cards[1].components[0].componentBadge.badgeColor"
    assert "PINK" in orders.error_detail["message"]


def test_repeated_keys_take_the_first_and_extra_cards_are_ignored(card_api, customer):
    make_configs(card_api, "plan")
    first = card("plan", [{"componentBadge": {"badgeLabel": "first"}}])
    body = {
        "cards": [
            {"key": "extra", "components": [{"nonsense": True}]},
            "not even an object",
            first,
            card("plan", [{"componentBadge": {"badgeLabel": "second"}}]),
        ]
    }
    import json

    card_api.serve_raw(json.dumps(body))

    load(customer)

    assert instance(customer, "plan").components == first["components"]


@pytest.mark.parametrize(
    ("body", "path", "message"),
    [
        ("not json at all", None, "not valid JSON"),
        ('{"cards": {}}', "cards", "expected a JSON object with a cards array"),
        ("[]", "cards", "got an array"),
    ],
)
def test_a_body_without_a_cards_array_fails_every_card(card_api, customer, body, path, message):
    make_configs(card_api, "plan", "orders")
    card_api.serve_raw(body)

    load(customer)

    for key in ("plan", "orders"):
        got = instance(customer, key)
        assert got.error_kind == Kind.RESPONSE_BODY
        assert got.error_detail.get("path") == path
        assert message in got.error_detail["message"]
        assert got.expires_at == got.errored_at + timedelta(minutes=5)
    assert len(card_api.requests) == 1


@pytest.mark.parametrize(
    ("status", "requests", "cached"),
    [(500, 2, False), (503, 2, False), (429, 2, False), (404, 1, True), (401, 1, True)],
)
def test_status_errors_retry_5xx_and_429_once_and_cache_4xx(
    card_api, customer, status, requests, cached
):
    make_configs(card_api, "plan")
    card_api.serve_raw('{"error": "nope"}', status=status)

    load(customer)

    plan = instance(customer, "plan")
    assert plan.error_kind == Kind.STATUS_CODE
    assert plan.error_detail["statusCode"] == status
    assert plan.error_detail["bodyExcerpt"] == '{"error": "nope"}'
    assert len(card_api.requests) == requests
    assert plan.error_detail["attempts"] == requests
    keep = timedelta(minutes=5) if cached else timedelta(0)
    assert plan.expires_at == plan.errored_at + keep


def test_a_redirect_is_not_followed(card_api, customer):
    make_configs(card_api, "plan")
    card_api.serve_raw("", status=302, Location="https://elsewhere.example/")

    load(customer)

    plan = instance(customer, "plan")
    assert plan.error_kind == Kind.STATUS_CODE and plan.error_detail["statusCode"] == 302
    assert len(card_api.requests) == 1


def test_it_keeps_last_good_card_when_refresh_fails_with_retriable_error(card_api, customer):
    make_configs(card_api, "plan")
    card_api.serve({"plan": card("plan")})
    load(customer)
    first = instance(customer, "plan")
    CardInstance.objects.filter(pk=first.pk).update(expires_at=timezone.now())
    card_api.serve_raw("down", status=503)

    load(customer)

    plan = instance(customer, "plan")
    assert plan.state == State.ERROR and plan.error_kind == Kind.STATUS_CODE
    assert plan.components == TEXT
    assert plan.loaded_at == first.loaded_at
    assert plan.expires_at == plan.errored_at  # not cached: the next view tries again


def test_it_keeps_last_good_card_when_refresh_times_out(card_api, customer, settings):
    import time

    from werkzeug import Response

    settings.CARDS_REQUEST_TIMEOUT_SECONDS = 0.3
    settings.CARDS_RETRY_DELAY_SECONDS = 0.05
    make_configs(card_api, "plan")
    card_api.serve({"plan": card("plan")})
    load(customer)
    CardInstance.objects.update(expires_at=timezone.now())

    def slow(request, body):
        time.sleep(0.6)
        return Response("{}", content_type="application/json")

    card_api.serve_handler(slow)
    started = time.monotonic()
    load(customer)

    assert time.monotonic() - started < 2.5
    plan = instance(customer, "plan")
    assert plan.error_kind == Kind.TIMEOUT
    assert plan.error_detail["attempts"] == 2
    assert plan.components == TEXT
    assert plan.expires_at == plan.errored_at  # not cached: the next view tries again


def test_a_refused_connection_is_a_retried_request_error(customer, settings):
    settings.CARDS_RETRY_DELAY_SECONDS = 0.01
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    CardConfigFactory(key="plan", api_url=f"http://127.0.0.1:{port}/cards")

    load(customer)

    plan = instance(customer, "plan")
    assert plan.error_kind == Kind.REQUEST
    assert plan.error_detail["attempts"] == 2
    assert plan.expires_at == plan.errored_at
    assert CardRequest.objects.filter(config__key="plan").count() == 2


def test_an_oversized_body_is_a_cached_response_body_error(card_api, customer, settings):
    settings.CARDS_MAX_RESPONSE_BYTES = 1000
    make_configs(card_api, "plan")
    card_api.serve({"plan": card("plan", [{"componentPlainText": {"plainText": "x" * 2000}}])})

    load(customer)

    plan = instance(customer, "plan")
    assert plan.error_kind == Kind.RESPONSE_BODY
    assert len(card_api.requests) == 1
    assert plan.expires_at == plan.errored_at + timedelta(minutes=5)


def test_an_oversized_card_fails_alone(card_api, customer, settings):
    settings.CARDS_MAX_CARD_BYTES = 500
    make_configs(card_api, "plan", "big")
    big = card("big", [{"componentPlainText": {"plainText": "x" * 600}}])
    card_api.serve({"plan": card("plan"), "big": big})

    load(customer)

    assert instance(customer, "plan").state == State.LOADED
    got = instance(customer, "big")
    assert got.error_kind == Kind.CARD_TOO_BIG
    assert got.error_detail["limitBytes"] == 500 and got.error_detail["sizeBytes"] > 600


def test_fresh_cards_are_not_requested_again(card_api, customer):
    make_configs(card_api, "plan")
    card_api.serve({"plan": card("plan")})

    load(customer)
    load(customer)

    assert len(card_api.requests) == 1


def test_every_attempt_is_recorded_for_health(card_api, customer):
    make_configs(card_api, "plan", "orders")
    card_api.serve({"plan": card("plan")})

    load(customer)

    rows = {r.config.key: r for r in CardRequest.objects.select_related("config")}
    assert rows["plan"].status_code == 200 and rows["plan"].ok
    assert rows["orders"].error_kind == Kind.MISSING_CARD
    assert rows["plan"].batch_id == rows["orders"].batch_id
    assert rows["plan"].keys == ["plan", "orders"]
    assert rows["plan"].response_bytes > 0


def test_a_connection_reset_is_a_retried_uncached_request_error(customer, settings):
    import socket
    import struct
    import threading

    settings.CARDS_RETRY_DELAY_SECONDS = 0.01
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)
    accepted = []

    def reset_twice():  # bounded: two connections, then it stops
        for _ in range(2):
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(conn)
            conn.recv(65536)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()  # linger zero: RST instead of FIN

    thread = threading.Thread(target=reset_twice, daemon=True)
    thread.start()
    port = listener.getsockname()[1]
    CardConfigFactory(key="plan", api_url=f"http://127.0.0.1:{port}/cards")

    load(customer)

    thread.join(timeout=5)
    listener.close()
    plan = instance(customer, "plan")
    assert plan.error_kind == Kind.REQUEST
    assert "reset" in plan.error_detail["message"] or "closed" in plan.error_detail["message"]
    assert plan.error_detail["attempts"] == 2 and len(accepted) == 2
    assert plan.expires_at == plan.errored_at  # not cached
