"""The card response schema (SPEC §5): what is accepted, what is refused, and in which words.

No database: validation is pure. The corpus is in schema_corpus.py; the published JSON
Schema is tested in test_schema_json.py.
"""

import pytest

from cards.protocol.schema import (
    BADGE_COLORS,
    COMPONENT_NAMES,
    DEFAULT_BADGE_COLOR,
    DEFAULT_DIVIDER_SPACING_SIZE,
    DEFAULT_TEXT_COLOR,
    DEFAULT_TEXT_SIZE,
    SPACING_SIZES,
    TEXT_COLORS,
    TEXT_SIZES,
    TTL_MAX_SECONDS,
    Problem,
    ValidCard,
    validate_card,
    validate_components,
    validate_response,
)
from tests.cards.schema_corpus import (
    INVALID,
    LEAF_LIST,
    MINIMAL,
    SHAPES,
    TEXT,
    VALID,
    choices,
    make,
)


@pytest.mark.parametrize("component", VALID)
def test_it_accepts_a_valid_component(component):
    assert validate_components([component]) == []


@pytest.mark.parametrize(("component", "path", "message"), INVALID)
def test_it_rejects_an_invalid_component_naming_path_and_reason(component, path, message):
    assert [str(p) for p in validate_components([component])] == [
        f"components[0].{path}: {message}"
    ]


@pytest.mark.parametrize(("components", "expected"), SHAPES)
def test_it_enforces_one_key_per_component_and_the_nesting_rules(components, expected):
    assert [str(p) for p in validate_components(components)] == expected


def test_it_accepts_an_empty_components_array_and_refuses_a_non_array():
    assert validate_components([]) == []
    assert validate_components(None, path="cards[2].components") == [
        Problem(path="cards[2].components", message="expected an array, got null")
    ]


def test_it_reports_the_spec_example_paths_in_a_whole_response():
    body = {
        "cards": [
            {
                "key": "plan",
                "components": [
                    TEXT,
                    TEXT,
                    make("componentBadge", badgeColor="PINK"),
                    make(
                        "componentRow", rowAsideContent=[make("componentBadge", badgeColor="PINK")]
                    ),
                    make("componentContainer", containerContent=[make("componentContainer")]),
                ],
            }
        ]
    }
    pink = f'expected one of {choices(BADGE_COLORS)}, got "PINK"'
    assert [str(p) for p in validate_response(body)] == [
        f"cards[0].components[2].componentBadge.badgeColor: {pink}",
        f"cards[0].components[3].componentRow.rowAsideContent[0].componentBadge.badgeColor: {pink}",
        "cards[0].components[4].componentContainer.containerContent[0]: componentContainer is"
        " not allowed inside a container (a container holds any component but a container:"
        f" {LEAF_LIST}, componentRow)",
    ]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param([], ['expected a JSON object with a "cards" array, got an array'], id="array"),
        pytest.param(
            "ok", ['expected a JSON object with a "cards" array, got a string ("ok")'], id="str"
        ),
        pytest.param({}, ["cards: required field is missing"], id="no-cards"),
        pytest.param({"cards": {}}, ["cards: expected an array, got an object"], id="not-array"),
        pytest.param({"cards": [], "meta": 1}, [], id="no-cards-and-extra-envelope-field"),
        pytest.param(
            {"cards": [{"key": "a", "components": None}, 7, {"key": "c"}]},
            [
                "cards[1]: expected an object, got a number (7)",
                "cards[2].components: required field is missing",
            ],
            id="every-card-checked",
        ),
    ],
)
def test_it_validates_the_response_envelope(body, expected):
    assert [str(p) for p in validate_response(body)] == expected


def test_a_problem_without_a_path_prints_the_message_alone():
    assert str(Problem(path="", message="expected an object")) == "expected an object"
    assert str(Problem(path="cards", message="required")) == "cards: required"


@pytest.mark.parametrize(
    ("entry", "ttl"),
    [
        pytest.param({"key": "a", "components": None}, None, id="null-components-no-ttl"),
        pytest.param({"key": "a", "components": [], "timeToLiveSeconds": None}, None, id="null"),
        pytest.param({"key": "a", "components": [TEXT], "timeToLiveSeconds": 0}, 0, id="ttl-0"),
        pytest.param(
            {"key": "a", "components": [TEXT], "timeToLiveSeconds": TTL_MAX_SECONDS},
            TTL_MAX_SECONDS,
            id="ttl-one-year",
        ),
        pytest.param(
            {"key": "", "components": [], "title": "ignored", "timeToLiveSeconds": 60},
            60,
            id="unknown-card-field-ignored",
        ),
    ],
)
def test_it_returns_a_valid_card_with_its_components_as_received(entry, ttl):
    card = validate_card(entry, path="cards[0]")
    assert card == ValidCard(key=entry["key"], ttl_seconds=ttl, components=entry["components"])
    assert card.components is entry["components"]


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        pytest.param(["a"], "cards[3]: expected an object, got an array", id="not-object"),
        pytest.param({"components": []}, "cards[3].key: required field is missing", id="no-key"),
        pytest.param(
            {"key": 5, "components": []},
            "cards[3].key: expected a string, got a number (5)",
            id="key-number",
        ),
        pytest.param(
            {"key": "a"}, "cards[3].components: required field is missing", id="no-components"
        ),
        pytest.param(
            {"key": "a", "components": {"componentText": {"text": "x"}}},
            "cards[3].components: expected an array, got an object",
            id="components-object",
        ),
        *(
            pytest.param(
                {"key": "a", "components": [], "timeToLiveSeconds": ttl},
                f"cards[3].timeToLiveSeconds: {message}",
                id=f"ttl-{ttl!r}",
            )
            for ttl, message in (
                ("60", 'expected an integer, got a string ("60")'),
                (60.5, "expected an integer, got a number (60.5)"),
                (60.0, "expected an integer, got a number (60.0)"),
                (True, "expected an integer, got a boolean (true)"),
                (-1, "expected at least 0, got -1"),
                (TTL_MAX_SECONDS + 1, f"expected at most {TTL_MAX_SECONDS}, got 31536001"),
            )
        ),
    ],
)
def test_it_rejects_a_malformed_card(entry, expected):
    assert [str(p) for p in validate_card(entry, path="cards[3]")] == [expected]


def test_it_exposes_the_spec_enums_and_defaults():
    assert tuple(MINIMAL) == COMPONENT_NAMES
    assert (TEXT_SIZES, SPACING_SIZES) == (("S", "M", "L"), ("XS", "S", "M", "L", "XL"))
    assert TEXT_COLORS == ("NORMAL", "MUTED", "SUCCESS", "WARNING", "ERROR")
    assert BADGE_COLORS == ("GREY", "GREEN", "YELLOW", "RED", "BLUE")
    assert (DEFAULT_TEXT_SIZE, DEFAULT_TEXT_COLOR) == ("M", "NORMAL")
    assert (DEFAULT_BADGE_COLOR, DEFAULT_DIVIDER_SPACING_SIZE) == ("GREY", "S")
