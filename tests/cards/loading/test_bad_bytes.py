"""Bad bytes and shapes from card APIs (issue 13, findings 2 and 3; SPEC §5, §6).

NUL characters (PostgreSQL's JSON and text columns refuse them), a batch whose store the
database refuses, and JSON nested 100,000 deep: each ends as a clear, stored error,
and never costs another card its result or leaves a claim behind. Real card APIs on
loopback; the database refusal is the database's own (a trigger), on SQLite and PostgreSQL.
"""

import json
import logging

import pytest
from django.db import connection

from cards.loading.services import card_configs_enabled, cards_load
from cards.models import CardInstance, CardRequest
from cards.protocol.outcomes import MAX_JSON_DEPTH
from tests.cards.cardapi import TEXT, card
from tests.factories import CardConfigFactory, CustomerFactory

pytestmark = pytest.mark.django_db
State = CardInstance.State
Kind = CardInstance.ErrorKind


@pytest.fixture
def customer():
    return CustomerFactory()


def load(customer):
    return cards_load(customer=customer, configs=card_configs_enabled())


def row(customer, key) -> CardInstance:
    return CardInstance.objects.get(customer=customer, config__key=key)


def assert_no_claim_left() -> None:
    assert not CardInstance.objects.filter(state=State.LOADING).exists()
    assert set(CardInstance.objects.values_list("claim_token", flat=True)) == {""}


def test_a_nul_in_a_card_answer_is_a_clear_error_and_the_others_are_stored(
    card_api, httpserver, customer
):
    CardConfigFactory(key="plan", api_url=card_api.url, order=1)
    CardConfigFactory(key="notes", api_url=card_api.url, order=2)
    CardConfigFactory(key="orders", api_url=httpserver.url_for("/other"), order=3)
    notes = [{"componentText": {"text": "before\u0000after"}}]
    card_api.serve({"plan": card("plan"), "notes": card("notes", notes)})
    httpserver.expect_request("/other", method="POST").respond_with_json(
        {"cards": [card("orders")]}
    )

    load(customer)

    broken = row(customer, "notes")
    assert broken.state == State.ERROR and broken.error_kind == Kind.RESPONSE_BODY
    assert broken.error_detail["path"] == "cards[1].components[0].componentText.text"
    assert "NUL character" in broken.error_detail["message"]
    assert row(customer, "plan").components == TEXT  # same batch
    assert row(customer, "orders").components == TEXT  # another batch
    assert_no_claim_left()


def test_a_nul_in_an_object_key_is_refused_too(card_api, customer):
    CardConfigFactory(key="plan", api_url=card_api.url)
    card_api.serve({"plan": card("plan", [{"componentText": {"text": "x", "a\u0000": 1}}])})

    load(customer)

    assert row(customer, "plan").error_kind == Kind.RESPONSE_BODY


def test_nul_bytes_in_an_error_body_are_replaced_in_the_stored_excerpt(card_api, customer):
    CardConfigFactory(key="plan", api_url=card_api.url)
    card_api.serve_raw(b"upstream \x00down\x00", status=400)

    load(customer)

    plan = row(customer, "plan")
    assert plan.error_kind == Kind.STATUS_CODE
    assert plan.error_detail["bodyExcerpt"] == "upstream \ufffddown\ufffd"
    assert "\x00" not in json.dumps(CardRequest.objects.get().error_detail)
    assert_no_claim_left()


def test_invalid_json_with_nul_bytes_is_stored_with_a_clean_excerpt(card_api, customer):
    CardConfigFactory(key="plan", api_url=card_api.url)
    card_api.serve_raw(b'{"cards": [\x00]}')

    load(customer)

    plan = row(customer, "plan")
    assert plan.error_kind == Kind.RESPONSE_BODY
    assert "\x00" not in plan.error_detail["bodyExcerpt"]


def _refuse_loaded_stores_of(config_id: int) -> None:
    """A database trigger refusing to store this config's card as loaded."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION refuse_store() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.config_id = {config_id} AND NEW.state = 'loaded' THEN "
                "RAISE EXCEPTION 'refused by the test trigger'; END IF; RETURN NEW; END "
                "$$ LANGUAGE plpgsql"
            )
            cursor.execute(
                "CREATE TRIGGER refuse_store BEFORE UPDATE ON cards_cardinstance "
                "FOR EACH ROW EXECUTE FUNCTION refuse_store()"
            )
        else:
            cursor.execute(
                "CREATE TRIGGER refuse_store BEFORE UPDATE ON cards_cardinstance "
                f"WHEN NEW.config_id = {config_id} AND NEW.state = 'loaded' "
                "BEGIN SELECT RAISE(ABORT, 'refused by the test trigger'); END"
            )


def test_one_batchs_store_failure_keeps_the_other_batchs_result_and_no_claim(
    card_api, httpserver, customer
):
    plan = CardConfigFactory(key="plan", api_url=card_api.url, order=1)
    CardConfigFactory(key="orders", api_url=httpserver.url_for("/other"), order=2)
    card_api.serve({"plan": card("plan")})
    httpserver.expect_request("/other", method="POST").respond_with_json(
        {"cards": [card("orders")]}
    )
    _refuse_loaded_stores_of(plan.pk)

    report = load(customer)

    assert row(customer, "orders").state == State.LOADED
    refused = row(customer, "plan")
    assert refused.state == State.ERROR and refused.error_kind == Kind.UNKNOWN
    assert "could not be stored" in refused.error_detail["message"]
    assert "refused by the test trigger" in refused.error_detail["message"]
    assert_no_claim_left()
    assert len(report.instances) == 2


def test_json_nested_100000_deep_is_a_response_body_error_without_a_traceback(
    card_api, customer, caplog
):
    CardConfigFactory(key="plan", api_url=card_api.url)
    card_api.serve_raw("[" * 100_000 + "]" * 100_000)

    with caplog.at_level(logging.WARNING):
        load(customer)

    plan = row(customer, "plan")
    assert plan.error_kind == Kind.RESPONSE_BODY
    assert f"more than {MAX_JSON_DEPTH} levels deep" in plan.error_detail["message"]
    assert not [r for r in caplog.records if r.exc_info]


def test_json_just_past_the_depth_limit_is_refused_and_a_real_card_is_not(card_api, customer):
    CardConfigFactory(key="plan", api_url=card_api.url)
    deep: object = "x"
    for _ in range(MAX_JSON_DEPTH):
        deep = [deep]
    card_api.serve_raw(json.dumps({"cards": [card("plan")], "extra": deep}))

    load(customer)
    assert row(customer, "plan").error_kind == Kind.RESPONSE_BODY

    card_api.serve({"plan": card("plan")})
    CardInstance.objects.all().delete()
    load(customer)
    assert row(customer, "plan").state == State.LOADED
