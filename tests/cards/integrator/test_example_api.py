"""The built-in example card API (SPEC §10), spoken to over the real protocol (SPEC §3, §5)."""

import hashlib
import hmac
import json
import time

import pytest
from django.urls import reverse

from cards.integrator.example_api import CARD_BUILDERS
from cards.live.rendering import render_components
from cards.protocol.schema import validate_response

# The API verifies signatures with card configs' own secrets too: it reads them.
pytestmark = pytest.mark.django_db

ALL_KEYS = list(CARD_BUILDERS)
SECRET = "whsec_test_secret"


def protocol_body(*, keys=None, email="alex.morgan@acme.example", tenant=True) -> bytes:
    body = {
        "cardKeys": ALL_KEYS if keys is None else keys,
        "customer": {"id": "c_0123456789abcdef", "email": email, "externalId": "u_1001"},
    }
    if tenant:
        body["tenant"] = {"id": "c_fedcba9876543210", "externalId": "acme"}
    return json.dumps(body).encode()


def post(client, body: bytes, *, query: str = "", **headers):
    return client.post(
        reverse("cards:example-api") + query,
        data=body,
        content_type="application/json",
        headers=headers,
    )


def cards_by_key(response) -> dict:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    cards = response.json()["cards"]
    return {card["key"]: card for card in cards}


def signature_header(body: bytes, secret: str, *, at: int | None = None) -> str:
    """SPEC §3: t=<unix>,v1=<hex HMAC-SHA256 of "<t>." + body>, computed independently here."""
    timestamp = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def test_it_answers_every_known_key_with_a_valid_card_shape(client):
    cards = cards_by_key(post(client, protocol_body()))

    assert list(cards) == ALL_KEYS
    for key, card in cards.items():
        assert card["key"] == key
        components = card["components"]
        assert components is None or isinstance(components, list)
        for component in components or []:
            assert isinstance(component, dict) and len(component) == 1
            assert next(iter(component)).startswith("component")


@pytest.mark.parametrize(
    "email", ["alex.morgan@acme.example", "noah.williams@mailbox.example", "a@b.example", ""]
)
def test_its_answers_pass_the_card_schema(client, email):
    response = post(client, protocol_body(email=email), query="?ttl=60")

    assert validate_response(response.json()) == []


def test_rich_cards_have_components_and_special_cards_have_none_or_empty(client):
    cards = cards_by_key(post(client, protocol_body()))

    for key in ["customer-details", "subscription", "last-order", "usage", "latest-invoice"]:
        assert len(cards[key]["components"]) >= 3, key
    assert cards["recent-errors"]["components"]
    assert cards["no-data"]["components"] is None
    assert cards["empty"]["components"] == []


def test_it_omits_unknown_keys_so_the_engine_reports_them_missing(client):
    cards = cards_by_key(post(client, protocol_body(keys=["subscription", "nope", "usage"])))

    assert list(cards) == ["subscription", "usage"]


def test_gallery_has_every_component_and_every_enum_value(client):
    gallery = cards_by_key(post(client, protocol_body(keys=["gallery"])))["gallery"]
    text = json.dumps(gallery["components"])

    for kind in [
        "componentText",
        "componentPlainText",
        "componentBadge",
        "componentDivider",
        "componentSpacer",
        "componentLinkButton",
        "componentCopyButton",
        "componentWorkflowButton",
        "componentRow",
        "componentContainer",
    ]:
        assert kind in text, kind
    for field, values in {
        "textSize": ["S", "M", "L"],
        "textColor": ["NORMAL", "MUTED", "SUCCESS", "WARNING", "ERROR"],
        "plainTextSize": ["S", "M", "L"],
        "plainTextColor": ["NORMAL", "MUTED", "SUCCESS", "WARNING", "ERROR"],
        "badgeColor": ["GREY", "GREEN", "YELLOW", "RED", "BLUE"],
        "dividerSpacingSize": ["XS", "S", "M", "L", "XL"],
        "spacerSize": ["XS", "S", "M", "L", "XL"],
    }.items():
        for value in values:
            assert f'"{field}": "{value}"' in text, (field, value)


def test_different_customers_get_different_data(client):
    first = cards_by_key(post(client, protocol_body(email="alex.morgan@acme.example")))
    second = cards_by_key(post(client, protocol_body(email="kenji.watanabe@globex.example")))

    for key in ["customer-details", "last-order", "latest-invoice"]:
        assert first[key] != second[key], key


def test_the_same_customer_gets_the_same_data(client):
    assert cards_by_key(post(client, protocol_body())) == cards_by_key(
        post(client, protocol_body())
    )


def test_it_works_without_tenant_or_external_id(client):
    body = json.dumps(
        {
            "cardKeys": ALL_KEYS,
            "customer": {"id": "c_1", "email": "x@y.example", "externalId": None},
        }
    ).encode()

    assert list(cards_by_key(post(client, body))) == ALL_KEYS


def test_every_example_card_renders(client):
    cards = cards_by_key(post(client, protocol_body()))

    for key, card in cards.items():
        if card["components"]:
            assert "cc-" in render_components(card["components"]), key


@pytest.mark.parametrize(
    "body", [b"not json", b"[]", b'{"cardKeys": "subscription"}', b'{"customer": {}}']
)
def test_it_rejects_bodies_that_are_not_the_protocol(client, body):
    response = post(client, body)

    assert response.status_code == 400
    assert "error" in response.json()


def test_it_only_answers_post(client):
    assert client.get(reverse("cards:example-api")).status_code == 405


def test_it_is_not_served_when_disabled(client, settings):
    settings.CARDS_EXAMPLE_API_ENABLED = False

    assert post(client, protocol_body()).status_code == 404


# --- Signatures --------------------------------------------------------------------------


def test_it_requires_a_signature_when_secrets_are_set(client, settings):
    settings.CARDS_SIGNING_SECRETS = [SECRET]

    response = post(client, protocol_body())

    assert response.status_code == 401
    assert "error" in response.json()


def test_it_accepts_a_valid_signature(client, settings):
    settings.CARDS_SIGNING_SECRETS = [SECRET]
    body = protocol_body()

    response = post(client, body, **{"Cards-Signature": signature_header(body, SECRET)})

    assert list(cards_by_key(response)) == ALL_KEYS


def test_it_accepts_a_signature_from_any_active_secret(client, settings):
    settings.CARDS_SIGNING_SECRETS = ["whsec_old", SECRET]
    body = protocol_body()

    response = post(client, body, **{"Cards-Signature": signature_header(body, SECRET)})

    assert response.status_code == 200


def test_it_uses_the_configured_signature_header(client, settings):
    settings.CARDS_SIGNING_SECRETS = [SECRET]
    settings.CARDS_SIGNATURE_HEADER = "Plain-Request-Signature"
    body = protocol_body()

    response = post(client, body, **{"Plain-Request-Signature": signature_header(body, SECRET)})

    assert response.status_code == 200


def test_it_accepts_plain_compatible_body_signatures_in_body_mode(client, settings):
    settings.CARDS_SIGNING_SECRETS = [SECRET]
    settings.CARDS_SIGNATURE_MODE = "body"
    body = protocol_body()
    bare = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()

    assert post(client, body, **{"Cards-Signature": bare}).status_code == 200
    assert (
        post(
            client, body, **{"Cards-Signature": bare[:-1] + ("1" if bare.endswith("0") else "0")}
        ).status_code
        == 401
    )
    assert post(client, body).status_code == 401


@pytest.mark.parametrize(
    "make_header",
    [
        lambda body: signature_header(body, "whsec_wrong"),
        lambda body: signature_header(body + b" ", SECRET),
        lambda body: signature_header(body, SECRET, at=int(time.time()) - 3600),
        lambda body: "garbage",
    ],
    ids=["wrong-secret", "other-body", "stale-timestamp", "garbage"],
)
def test_it_rejects_bad_signatures(client, settings, make_header):
    settings.CARDS_SIGNING_SECRETS = [SECRET]
    body = protocol_body()

    response = post(client, body, **{"Cards-Signature": make_header(body)})

    assert response.status_code == 401


# --- Testing hooks -------------------------------------------------------------------------


def test_delay_hook_sleeps_before_answering(client):
    started = time.monotonic()

    response = post(client, protocol_body(keys=["usage"]), query="?delay_ms=300")

    assert response.status_code == 200
    assert time.monotonic() - started >= 0.3


def test_ttl_hook_sets_time_to_live_on_every_card(client):
    cards = cards_by_key(post(client, protocol_body(), query="?ttl=2"))

    assert {card["timeToLiveSeconds"] for card in cards.values()} == {2}


def test_without_ttl_hook_cards_leave_the_ttl_to_the_config(client):
    cards = cards_by_key(post(client, protocol_body()))

    assert all("timeToLiveSeconds" not in card for card in cards.values())


@pytest.mark.parametrize("status", [500, 503, 429, 404])
def test_status_hook_answers_that_status(client, status):
    response = post(client, protocol_body(), query=f"?status={status}")

    assert response.status_code == status
    assert "cards" not in response.json()


@pytest.mark.parametrize("query", ["?delay_ms=soon", "?ttl=x", "?status=abc", "?status=99"])
def test_malformed_hooks_are_a_client_error(client, query):
    assert post(client, protocol_body(), query=query).status_code == 400


@pytest.mark.parametrize("query", ["?delay_ms=300", "?ttl=2", "?status=500"])
def test_hooks_are_refused_when_the_setting_is_off(client, settings, query):
    settings.CARDS_EXAMPLE_API_HOOKS = False

    response = post(client, protocol_body(), query=query)

    assert response.status_code == 403
    assert "CARDS_EXAMPLE_API_HOOKS" in response.json()["error"]
    assert post(client, protocol_body()).status_code == 200  # the API itself still answers
