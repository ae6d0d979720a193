"""The engine reads what Plain accepts, with warnings, and still refuses what is unsafe or
malformed (SPEC §5, last paragraph; issue 14). The corpus is in plain_corpus.py: each case
is read alone (pure), and the whole corpus is loaded through a real card API on loopback."""

import json

import pytest

from cards.live.rendering import render_components
from cards.loading.services import card_configs_enabled, cards_load
from cards.models import CardInstance
from cards.protocol.schema import Problem, ReadCard, read_card, read_components, read_response
from tests.cards import schema_corpus
from tests.cards.plain_corpus import (
    PLAIN_VALID,
    STILL_FAILING,
    TEXT,
    UNSAFE_DROPPED,
    URL_FIELD,
    entry,
    link,
)
from tests.factories import CardConfigFactory, CustomerFactory

State = CardInstance.State


@pytest.mark.parametrize(("card", "ttl", "warnings", "components"), PLAIN_VALID)
def test_a_plain_valid_answer_loads_with_its_warnings(card, ttl, warnings, components):
    result = read_card(card, path="cards[0]")

    assert isinstance(result, ReadCard), result
    assert [(w.path, w.message) for w in result.warnings] == warnings
    assert result.components == components
    assert result.ttl_seconds == ttl


@pytest.mark.parametrize(("url", "message"), UNSAFE_DROPPED)
def test_an_unsafe_link_is_dropped_with_a_warning_and_the_rest_is_drawn(url, message):
    result = read_card(entry([link(url), TEXT]), path="cards[0]")

    assert isinstance(result, ReadCard), result
    assert result.warnings == [Problem(path=URL_FIELD, message=message)]
    assert result.components == [TEXT]


@pytest.mark.parametrize(("card", "problem"), STILL_FAILING)
def test_a_structural_error_still_fails_the_card_with_its_path(card, problem):
    assert [(p.path, p.message) for p in read_card(card, path="cards[0]")] == [problem]


def test_the_strict_contract_still_refuses_every_plain_valid_case():
    # The JSON Schema in docs/ stays strict: what loads with warnings is not valid there.
    from cards.protocol.schema import validate_card

    for param in PLAIN_VALID:
        card, _, warnings, _ = param.values
        if warnings:
            assert isinstance(validate_card(card, path="cards[0]"), list), param.id


def test_a_clean_answer_has_no_warnings_and_keeps_its_components():
    card = entry([TEXT, link("https://example.com/x")], timeToLiveSeconds=60)

    assert read_card(card, path="cards[0]") == ReadCard(
        key="k", ttl_seconds=60, components=card["components"], warnings=[]
    )


def test_the_playground_readers_report_problems_and_warnings_apart():
    components = [link("mailto:a@example.com"), {"componentText": {"text": ""}}]
    cleaned, problems, warnings = read_components(components)
    assert [str(p) for p in problems] == [
        "components[1].componentText.text: expected at least 1 character, got 0"
    ]
    assert [w.path for w in warnings] == ["components[0].componentLinkButton.linkButtonUrl"]
    assert cleaned == [link("mailto:a@example.com")]

    problems, warnings = read_response(
        {"cards": [entry([TEXT], timeToLiveSeconds=6e1), {"key": "x", "components": 5}]}
    )
    assert [str(p) for p in problems] == [
        "cards[1].components: expected an array, got a number (5)"
    ]
    assert [w.path for w in warnings] == ["cards[0].timeToLiveSeconds"]
    assert read_response([]) == (
        [Problem(path="", message='expected a JSON object with a "cards" array, got an array')],
        [],
    )


def test_lenient_components_render_safely():
    card = entry(
        [
            {"componentRow": {"rowMainContent": [TEXT], "rowAsideContent": []}},
            link("tel:+15550100", "Call"),
            link('https://example.com/a b"'),
            {"componentBadge": {"badgeLabel": ""}},
        ]
    )
    html = str(render_components(read_card(card, path="cards[0]").components))

    assert 'href="tel:+15550100"' in html
    assert 'href="https://example.com/a%20b%22"' in html
    assert "cc-badge" not in html


# --- The whole corpus through the engine, against a real card API on loopback ----------


def _cases():
    """key -> (card entry, expected warnings, expected components, or a problem)."""
    cases = {}
    for n, param in enumerate(PLAIN_VALID):
        card, _, warnings, components = param.values
        cases[f"valid-{n}"] = (card, warnings, components, None)
    for n, param in enumerate(UNSAFE_DROPPED):
        url, message = param.values
        cases[f"unsafe-{n}"] = (entry([link(url), TEXT]), [(URL_FIELD, message)], [TEXT], None)
    for n, param in enumerate(STILL_FAILING):
        card, problem = param.values
        cases[f"failing-{n}"] = (card, None, None, problem)
    return cases


@pytest.mark.django_db
def test_the_whole_corpus_loads_through_a_real_card_api_with_stored_warnings(card_api):
    cases = _cases()
    customer = CustomerFactory()
    for key in cases:
        CardConfigFactory(key=key, api_url=card_api.url)
    answers = {}
    for key, (card, *_) in cases.items():
        answers[key] = {**card, "key": key}
    card_api.serve(answers)

    cards_load(customer=customer, configs=card_configs_enabled())

    stored = {i.config.key: i for i in CardInstance.objects.filter(customer=customer)}
    for key, (_, warnings, components, problem) in cases.items():
        instance = stored[key]
        # The corpus says cards[0]; in one batch the answer sits at its own index.
        index = list(cases).index(key)
        if problem is None:
            assert instance.state == State.LOADED, (key, instance.error_detail)
            assert instance.components == components, key
            assert [
                (w["path"].replace(f"cards[{index}]", "cards[0]", 1), w["message"])
                for w in instance.warnings
            ] == warnings, key
        else:
            assert instance.state == State.ERROR, key
            assert instance.error_kind == CardInstance.ErrorKind.RESPONSE_BODY
            detail = instance.error_detail
            assert (
                detail["path"].replace(f"cards[{index}]", "cards[0]", 1),
                detail["message"],
            ) == (problem), key
            assert instance.warnings == []


@pytest.mark.django_db
def test_a_ttl_written_with_an_exponent_loads_from_the_raw_json(card_api):
    customer = CustomerFactory()
    CardConfigFactory(key="plan", api_url=card_api.url)
    card_api.serve_raw(
        '{"cards": [{"key": "plan", "timeToLiveSeconds": 1e2, "components": '
        + json.dumps([TEXT])
        + "}]}"
    )

    cards_load(customer=customer, configs=card_configs_enabled())

    instance = CardInstance.objects.get(customer=customer)
    assert (instance.state, instance.ttl_seconds) == (State.LOADED, 100)
    assert instance.warnings == [
        {
            "path": "cards[0].timeToLiveSeconds",
            "message": "an integer written as a number with a fraction or exponent (100.0); "
            "read as 100",
        }
    ]


@pytest.mark.django_db
def test_a_failed_reload_keeps_the_warnings_of_the_last_good_answer(card_api):
    customer = CustomerFactory()
    config = CardConfigFactory(key="plan", api_url=card_api.url)
    card_api.serve({"plan": entry([TEXT], timeToLiveSeconds=60.0, key="plan")})
    cards_load(customer=customer, configs=[config])
    card_api.serve_raw(b"not json")

    cards_load(customer=customer, configs=[config], force=True)

    instance = CardInstance.objects.get(customer=customer)
    assert instance.state == State.ERROR
    assert [w["path"] for w in instance.warnings] == ["cards[0].timeToLiveSeconds"]


def test_a_huge_unknown_field_name_is_cut_in_its_warning():
    card = entry([{"componentBadge": {"badgeLabel": "x", "y" * 10_000: 1}}])

    (warning,) = read_card(card, path="cards[0]").warnings

    assert warning.path == 'cards[0].components[0].componentBadge["' + "y" * 58 + "…]"


@pytest.mark.parametrize("component", schema_corpus.VALID)
def test_a_strict_valid_component_reads_the_same_on_the_fast_path_and_the_full_walk(component):
    from cards.protocol.schema import lenient

    fast = read_card(entry([component]), path="cards[0]")
    walk = lenient._Reading()
    walked = lenient._list([component], path="cards[0].components", owner=None, r=walk)

    assert isinstance(fast, ReadCard)
    assert (fast.components, fast.warnings) == (walked, walk.warnings)
    assert walk.problems == []
