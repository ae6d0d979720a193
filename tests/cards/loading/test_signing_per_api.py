"""A signing secret per card API (issue 13, finding 4; SPEC §3, §8): real card APIs on
loopback that verify the signature with their own secret, as integrators' APIs do."""

import json

import pytest
from django.core.management import call_command
from django.db import connection
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from cards.configuration.signing import (
    SigningSecretRefused,
    card_signing_secret_remove,
    card_signing_secret_retire,
    card_signing_secret_rotate,
)
from cards.loading.services import card_configs_enabled, cards_load
from cards.models import CardConfig, CardInstance, CardRequest
from cards.protocol.signing import secret_fingerprint, verify_signature
from tests.factories import CardConfigFactory, CustomerFactory

pytestmark = pytest.mark.django_db
State = CardInstance.State
HEADER = "X-Customer-Cards-Signature"


def verifying(accepted: list[str]):
    """A card API handler that answers 401 unless one of `accepted` verifies the request."""

    def handler(request: Request) -> Response:
        body = request.get_data()
        header = request.headers.get(HEADER, "")
        if not any(verify_signature(body, header, secret=s) for s in accepted):
            return Response("bad signature", status=401)
        keys = json.loads(body)["cardKeys"]
        cards = [{"key": k, "components": [{"componentText": {"text": k}}]} for k in keys]
        return Response(json.dumps({"cards": cards}), content_type="application/json")

    return handler


@pytest.fixture
def other_api():
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture(autouse=True)
def _fallback(settings):
    settings.CARDS_SIGNING_SECRETS = ["whsec_process_wide_fallback"]
    settings.CARDS_SIGNATURE_HEADER = HEADER


def serve(server: HTTPServer, accepted: list[str]) -> None:
    server.clear_all_handlers()
    server.expect_request("/cards", method="POST").respond_with_handler(verifying(accepted))


def load(customer, *, force=True):
    # By ids, through the loader's config cache: what a long-running worker does.
    ids = list(CardConfig.objects.values_list("pk", flat=True))
    return cards_load(customer=customer, configs=card_configs_enabled(ids=ids), force=force)


def state(customer, key) -> tuple[str, int | None]:
    row = CardInstance.objects.get(customer=customer, config__key=key)
    return row.state, (row.error_detail or {}).get("statusCode")


def test_each_api_accepts_its_own_secret_and_refuses_another_apis(httpserver, other_api):
    billing = CardConfigFactory(key="billing", api_url=httpserver.url_for("/cards"))
    orders = CardConfigFactory(key="orders", api_url=other_api.url_for("/cards"))
    billing_secret = card_signing_secret_rotate(configs=[billing])
    orders_secret = card_signing_secret_rotate(configs=[orders])
    serve(httpserver, [billing_secret])
    serve(other_api, [orders_secret])
    customer = CustomerFactory()

    load(customer)

    assert state(customer, "billing") == (State.LOADED, None)
    assert state(customer, "orders") == (State.LOADED, None)

    # The billing API's owner cannot verify (nor forge) requests meant for orders.
    serve(other_api, [billing_secret])
    load(customer)
    assert state(customer, "orders") == (State.ERROR, 401)


def test_the_fallback_secret_no_longer_signs_for_an_api_with_its_own(httpserver):
    config = CardConfigFactory(key="billing", api_url=httpserver.url_for("/cards"))
    card_signing_secret_rotate(configs=[config])
    serve(httpserver, ["whsec_process_wide_fallback"])
    customer = CustomerFactory()

    load(customer)

    assert state(customer, "billing") == (State.ERROR, 401)


def test_rotation_sends_both_secrets_then_retiring_drops_the_old_without_a_restart(httpserver):
    config = CardConfigFactory(key="billing", api_url=httpserver.url_for("/cards"))
    old = card_signing_secret_rotate(configs=[config])
    customer = CustomerFactory()
    serve(httpserver, [old])
    load(customer)
    assert state(customer, "billing") == (State.LOADED, None)

    new = card_signing_secret_rotate(configs=[CardConfig.objects.get(pk=config.pk)])
    # The API still on the old secret, and the API already on the new one, both accept.
    load(customer)
    assert state(customer, "billing") == (State.LOADED, None)
    serve(httpserver, [new])
    load(customer)
    assert state(customer, "billing") == (State.LOADED, None)
    header = httpserver.log[-1][0].headers[HEADER]
    assert header.count("v1=") == 2

    card_signing_secret_retire(configs=CardConfig.objects.filter(pk=config.pk))
    serve(httpserver, [old])
    load(customer)
    assert state(customer, "billing") == (State.ERROR, 401)
    serve(httpserver, [new])
    load(customer)
    assert state(customer, "billing") == (State.LOADED, None)
    assert httpserver.log[-1][0].headers[HEADER].count("v1=") == 1


def test_a_second_rotation_before_retiring_is_refused():
    config = CardConfigFactory(key="billing")
    card_signing_secret_rotate(configs=[config])
    card_signing_secret_rotate(configs=[config])

    with pytest.raises(SigningSecretRefused, match="retire it first"):
        card_signing_secret_rotate(configs=[config])


def test_removing_the_own_secret_signs_with_the_fallback_again(httpserver):
    config = CardConfigFactory(key="billing", api_url=httpserver.url_for("/cards"))
    card_signing_secret_rotate(configs=[config])
    card_signing_secret_remove(configs=CardConfig.objects.all())
    serve(httpserver, ["whsec_process_wide_fallback"])
    customer = CustomerFactory()

    load(customer)

    assert state(customer, "billing") == (State.LOADED, None)


def test_configs_sharing_url_and_headers_but_not_secrets_are_separate_requests(httpserver):
    url = httpserver.url_for("/cards")
    plan, invoices, orders = (CardConfigFactory(key=k, api_url=url) for k in "abc")
    shared = card_signing_secret_rotate(configs=[plan, invoices])
    own = card_signing_secret_rotate(configs=[orders])
    serve(httpserver, [shared, own])

    report = load(CustomerFactory())

    assert report.requests == 2 and report.ok
    asked = sorted(json.loads(r.get_data())["cardKeys"] for r, _ in httpserver.log)
    assert asked == [["a", "b"], ["c"]]


def test_the_request_log_names_the_signing_secret_by_fingerprint(httpserver, settings):
    url = httpserver.url_for("/cards")
    signed = CardConfigFactory(key="signed", api_url=url)
    CardConfigFactory(key="plain", api_url=url)
    secret = card_signing_secret_rotate(configs=[signed])
    serve(httpserver, [secret, "whsec_process_wide_fallback"])
    load(CustomerFactory())
    settings.CARDS_SIGNING_SECRETS = []
    load(CustomerFactory())

    logged = {
        (row.config.key, row.signed_with) for row in CardRequest.objects.select_related("config")
    }
    assert logged == {
        ("signed", secret_fingerprint(secret)),
        ("plain", secret_fingerprint("whsec_process_wide_fallback")),
        ("plain", "unsigned"),
    }
    assert not any(secret in row.signed_with for row in CardRequest.objects.all())


def test_signing_secrets_are_encrypted_at_rest():
    config = CardConfigFactory(key="billing")
    secret = card_signing_secret_rotate(configs=[config])

    with connection.cursor() as cursor:
        cursor.execute("SELECT signing_secret FROM cards_cardconfig WHERE id = %s", [config.pk])
        (stored,) = cursor.fetchone()
    assert secret.startswith("whsec_") and len(secret) > 40
    assert secret not in stored
    assert CardConfig.objects.get(pk=config.pk).signing_secret == secret


def test_rotating_the_encryption_key_reencrypts_signing_secrets(settings):
    from cryptography.fernet import Fernet

    settings.CARDS_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    config = CardConfigFactory(key="billing")
    secret = card_signing_secret_rotate(configs=[config])
    settings.CARDS_ENCRYPTION_KEYS = [
        Fernet.generate_key().decode(),
        *settings.CARDS_ENCRYPTION_KEYS,
    ]

    call_command("rotate_card_secrets")
    settings.CARDS_ENCRYPTION_KEYS = settings.CARDS_ENCRYPTION_KEYS[:1]

    assert CardConfig.objects.get(pk=config.pk).signing_secret == secret


@pytest.mark.django_db(transaction=True)
def test_the_example_api_accepts_a_configs_own_secret(live_server, settings):
    settings.CARDS_EXAMPLE_API_ENABLED = True
    config = CardConfigFactory(key="subscription", api_url=f"{live_server.url}/examples/cards/")
    card_signing_secret_rotate(configs=[config])
    customer = CustomerFactory()

    load(customer)

    assert state(customer, "subscription") == (State.LOADED, None)
