"""`CARDS_PROTOCOL=plain` (issue 14): a card API written for Plain, verifying requests with
Plain's documented Node verifier, run by `node`, works unchanged. The Node card API
(node/plain_card_api.js) checks the signature both on the raw body and as Plain's docs
write it (the HMAC of JSON.stringify of the parsed body)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from cards.configuration.validation import header_name_errors
from cards.loading.services import card_configs_enabled, cards_load
from cards.models import CardInstance
from cards.protocol.http import USER_AGENT, build_request_headers
from cards.protocol.signing import dialect
from tests.conftest import REQUIRE_SERVICES, _skip_or_fail
from tests.factories import CardConfigFactory, CustomerFactory

NODE_CARD_API = Path(__file__).parents[1] / "node" / "plain_card_api.js"
SECRET = "plain_whsec_test"
State = CardInstance.State


@pytest.fixture
def node_card_api():
    """The URL of a card API in Node that verifies requests as Plain documents."""
    node = shutil.which("node")
    if node is None:
        _skip_or_fail("node is not installed: Plain's Node verifier cannot run", REQUIRE_SERVICES)
    process = subprocess.Popen(  # noqa: S603 (our own script, no shell)
        [node, str(NODE_CARD_API)],
        env={**os.environ, "PLAIN_SECRET": SECRET},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        port = process.stdout.readline().strip()
        assert port.isdigit(), f"the Node card API did not start (exit {process.poll()})"
        yield f"http://127.0.0.1:{port}/cards"
    finally:
        process.terminate()
        process.wait(timeout=10)


def load_one(url):
    # Non-ASCII, a quote, a slash and a backslash: the body's bytes must survive Plain's
    # documented verifier, which HMACs JSON.stringify of the parsed body.
    customer = CustomerFactory(email="zoë@example.com", external_id='u_"ü/€\\1')
    CardConfigFactory(key="plan", api_url=url)
    cards_load(customer=customer, configs=card_configs_enabled())
    return CardInstance.objects.get(customer=customer)


@pytest.mark.django_db
def test_plains_node_verifier_accepts_a_request_in_the_plain_dialect(node_card_api, settings):
    settings.CARDS_PROTOCOL = "plain"
    settings.CARDS_SIGNING_SECRETS = [SECRET]
    settings.CARDS_WORKSPACE_ID = "ws_42"
    # Plain's dialect is one setting: these are ignored under it.
    settings.CARDS_SIGNATURE_MODE = "timestamped"
    settings.CARDS_SIGNATURE_HEADER = "Cards-Signature"
    settings.CARDS_WORKSPACE_HEADER = "Cards-Workspace-Id"

    instance = load_one(node_card_api)

    assert instance.state == State.LOADED, instance.error_detail
    workspace, headers, customer = instance.components
    assert workspace == {"componentText": {"text": "workspace ws_42"}}
    assert customer == {"componentPlainText": {"plainText": 'customer zoë@example.com u_"ü/€\\1'}}
    # Plain's two headers and the ordinary ones of any HTTP client; nothing of our own.
    assert set(headers["componentPlainText"]["plainText"].split(",")) == {
        "accept",
        "accept-encoding",
        "connection",
        "content-length",
        "content-type",
        "host",
        "plain-request-signature",
        "plain-workspace-id",
        "user-agent",
    }


@pytest.mark.django_db
def test_the_default_timestamped_signature_is_refused_by_plains_verifier(node_card_api, settings):
    settings.CARDS_SIGNING_SECRETS = [SECRET]
    assert settings.CARDS_PROTOCOL == "cards"

    instance = load_one(node_card_api)

    assert (instance.state, instance.error_kind) == (State.ERROR, "STATUS_CODE")
    assert instance.error_detail["statusCode"] == 401


@pytest.mark.django_db
def test_plains_verifier_refuses_a_request_signed_with_another_secret(node_card_api, settings):
    settings.CARDS_PROTOCOL = "plain"
    settings.CARDS_SIGNING_SECRETS = ["not-the-shared-secret"]

    instance = load_one(node_card_api)

    assert (instance.error_kind, instance.error_detail["statusCode"]) == ("STATUS_CODE", 401)
    assert "invalid signature (raw body)" in instance.error_detail["bodyExcerpt"]


def test_the_plain_dialect_sends_plains_header_names_and_the_bare_body_hmac(settings):
    import hashlib
    import hmac

    settings.CARDS_PROTOCOL = "plain"
    settings.CARDS_SIGNING_SECRETS = ["first", "second"]
    body = b'{"cardKeys":["plan"]}'

    headers = build_request_headers(configured=[("Plain-Workspace-Id", "forged")], body=body)

    assert headers == {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "User-Agent": USER_AGENT,
        "Plain-Workspace-Id": "default",
        "Plain-Request-Signature": hmac.new(b"first", body, hashlib.sha256).hexdigest(),
    }


def test_the_default_dialect_is_this_apps_timestamped_signature(settings):
    spoken = dialect()

    assert (spoken.signature_header, spoken.signature_mode, spoken.workspace_header) == (
        "Cards-Signature",
        "timestamped",
        "Cards-Workspace-Id",
    )


def test_plains_header_names_are_reserved_under_the_plain_dialect(settings):
    settings.CARDS_PROTOCOL = "plain"

    assert "reserved header" in header_name_errors("plain-request-signature")[0]
    assert "reserved header" in header_name_errors("Plain-Workspace-Id")[0]


def test_an_unknown_protocol_fails_loudly_naming_the_setting(settings):
    settings.CARDS_PROTOCOL = "zendesk"

    with pytest.raises(ValueError, match="CARDS_PROTOCOL must be one of cards, plain"):
        build_request_headers(configured=[], body=b"{}")


@pytest.mark.django_db
def test_the_built_in_example_api_verifies_the_plain_dialect_too(client, settings):
    import hashlib
    import hmac
    import json

    from django.urls import reverse

    settings.CARDS_PROTOCOL = "plain"
    settings.CARDS_SIGNING_SECRETS = [SECRET]
    body = json.dumps({"cardKeys": ["usage"], "customer": {"email": "a@example.com"}}).encode()
    url = reverse("cards:example-api")

    def post(**headers):
        return client.post(url, data=body, content_type="application/json", headers=headers)

    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert post(**{"Plain-Request-Signature": signature}).status_code == 200
    refused = post(**{"Cards-Signature": signature})
    assert refused.status_code == 401
    assert refused.json() == {"error": "Missing or invalid Plain-Request-Signature header."}
