"""Errors classified by what they are (issue 17, finding 5): only what may pass on its own
is retried and left uncached; a guard refusal, an invalid TLS certificate or a request
that cannot be sent is an integration error, asked once and cached for 5 minutes, with a
message that says what to fix. Real servers on loopback (tests/cards/rawservers.py)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from cards.loading.services import cards_load
from cards.models import CardInstance, CardRequest
from tests.cards.protocol.test_http import _self_signed_tls_context
from tests.cards.rawservers import RawServer, closed_port, read_request
from tests.factories import CardConfigFactory, CardConfigHeaderFactory, CustomerFactory

Kind = CardInstance.ErrorKind
pytestmark = pytest.mark.django_db


def load_twice(customer) -> CardInstance:
    """A load, then another as the next page view would ask: what was stored."""
    cards_load(customer=customer)
    cards_load(customer=customer)
    return CardInstance.objects.get(customer=customer)


def assert_cached_integration_error(instance: CardInstance, message_start: str) -> None:
    assert instance.state == CardInstance.State.ERROR
    assert instance.error_kind == Kind.REQUEST
    assert instance.error_detail["message"].startswith(message_start)
    assert instance.error_detail["transient"] is False
    assert instance.error_detail["attempts"] == 1  # not retried
    kept_for = instance.expires_at - instance.errored_at
    assert kept_for == timedelta(minutes=5)
    # Asked once: the second view found it cached.
    assert CardRequest.objects.count() == 1


def test_a_guard_refusal_is_cached_not_retried(card_api, settings):
    settings.CARDS_ALLOWED_PRIVATE_HOSTS = []  # loopback is private: the guard refuses it
    CardConfigFactory(key="plan", api_url=card_api.url)

    instance = load_twice(CustomerFactory())

    assert_cached_integration_error(instance, "refused")
    assert "127.0.0.1" in instance.error_detail["message"]
    assert card_api.requests == []


def test_an_invalid_tls_certificate_is_cached_not_retried(tmp_path):
    context = _self_signed_tls_context(tmp_path, [])

    def handshake(conn, stopped):
        with context.wrap_socket(conn, server_side=True) as tls:
            read_request(tls)

    with RawServer(handshake) as server:
        CardConfigFactory(key="plan", api_url=f"https://localhost:{server.port}/cards")
        instance = load_twice(CustomerFactory())

    assert_cached_integration_error(instance, "TLS certificate of localhost is not valid: ")


def test_a_non_latin1_header_value_is_cached_not_retried(card_api):
    config = CardConfigFactory(key="plan", api_url=card_api.url)
    CardConfigHeaderFactory(config=config, name="Authorization", value="Bearer токен")

    instance = load_twice(CustomerFactory())

    assert_cached_integration_error(instance, "a header value cannot be sent")
    assert card_api.requests == []


def test_a_refused_connection_is_transient_retried_once_and_not_cached():
    CardConfigFactory(key="plan", api_url=f"http://127.0.0.1:{closed_port()}/cards")
    customer = CustomerFactory()

    cards_load(customer=customer)

    instance = CardInstance.objects.get(customer=customer)
    assert instance.error_kind == Kind.REQUEST
    assert instance.error_detail["attempts"] == 2
    assert "transient" not in instance.error_detail
    assert instance.expires_at <= timezone.now()  # not cached: the next view asks again
    assert CardRequest.objects.count() == 2
