"""The playground (issue 6): exact paths and lines of broken documents, valid ones rendered."""

import json
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from cards.integrator.example_api import CARD_BUILDERS
from cards.integrator.playground import path_location, playground_examples, value_offsets
from cards.live.rendering import render_components
from cards.protocol.schema import response_json_schema

CHECK_URL = reverse("cards:playground-check")
PAGE_URL = reverse("cards:playground")

TEXT = {"componentText": {"text": "Plan: **Pro**"}}
BADGE = {"componentBadge": {"badgeLabel": "Active", "badgeColor": "GREEN"}}


def response_of(*components, key: str = "plan") -> dict:
    return {"cards": [{"key": key, "components": list(components)}]}


# (document, the exact path reported, a fragment of the line it must point at)
BROKEN = {
    "a colour of the wrong type": (
        [{"componentBadge": {"badgeLabel": "x", "badgeColor": 3}}],
        "components[0].componentBadge.badgeColor",
        '"badgeColor": 3',
    ),
    "an unknown colour deep in a row": (
        response_of(
            TEXT,
            {
                "componentRow": {
                    "rowMainContent": [TEXT],
                    "rowAsideContent": [
                        {"componentBadge": {"badgeLabel": "x", "badgeColor": "PINK"}}
                    ],
                }
            },
        ),
        "cards[0].components[1].componentRow.rowAsideContent[0].componentBadge.badgeColor",
        '"badgeColor": "PINK"',
    ),
    "a missing required field points at its object": (
        [TEXT, {"componentText": {"textSize": "L"}}],
        "components[1].componentText.text",
        '"componentText": {',
    ),
    "a container inside a container": (
        [
            {
                "componentContainer": {
                    "containerContent": [{"componentContainer": {"containerContent": [TEXT]}}]
                }
            }
        ],
        "components[0].componentContainer.containerContent[0]",
        "{",
    ),
    "a relative link": (
        [{"componentLinkButton": {"linkButtonLabel": "Open", "linkButtonUrl": "/orders/1"}}],
        "components[0].componentLinkButton.linkButtonUrl",
        '"linkButtonUrl": "/orders/1"',
    ),
    "a TTL sent as a string": (
        {"cards": [{"key": "plan", "timeToLiveSeconds": "60", "components": []}]},
        "cards[0].timeToLiveSeconds",
        '"timeToLiveSeconds": "60"',
    ),
    "a key that is a number": (
        {"cards": [{"key": 5, "components": []}]},
        "cards[0].key",
        '"key": 5',
    ),
    "cards that is not an array": ({"cards": {"plan": []}}, "cards", '"cards": {'),
}

# Plain-valid documents (SPEC §5, last paragraph): valid, with a warning at this path and line.
WARNED = {
    "an unknown component": (
        [{"componentTxt": {"text": "x"}}],
        "components[0]",
        "{",
    ),
    "an unknown field": (
        [{"componentBadge": {"badgeLabel": "x", "colour": "RED"}}],
        "components[0].componentBadge.colour",
        '"colour": "RED"',
    ),
    "an empty row": (
        [{"componentRow": {"rowMainContent": [], "rowAsideContent": [TEXT]}}],
        "components[0].componentRow.rowMainContent",
        '"rowMainContent": []',
    ),
    "a field whose name needs quoting": (
        [{"componentBadge": {"badgeLabel": "x", "badge color": "RED"}}],
        'components[0].componentBadge["badge color"]',
        '"badge color": "RED"',
    ),
}


@pytest.fixture
def staff_client(admin_client_logged_in) -> Client:
    return admin_client_logged_in


def check(client: Client, text: str) -> dict:
    response = client.post(CHECK_URL, data=text.encode(), content_type="text/plain")
    assert response.status_code == 200
    return response.json()


def line_containing(text: str, fragment: str, *, after: int = 0) -> int:
    """The 1-based number of the first line at or after `after` containing `fragment`."""
    for number, line in enumerate(text.splitlines(), start=1):
        if number >= after and fragment in line:
            return number
    raise AssertionError(f"{fragment!r} not in the document")


@pytest.mark.django_db
class TestBrokenDocuments:
    @pytest.mark.parametrize("case", BROKEN.values(), ids=BROKEN.keys())
    def test_it_reports_the_exact_path_and_its_line(self, staff_client, case):
        document, path, fragment = case
        text = json.dumps(document, indent=2)

        result = check(staff_client, text)

        assert result["valid"] is False
        problem = next(p for p in result["problems"] if p["path"] == path)
        assert [p["path"] for p in result["problems"]].count(path) == 1
        # The line of the offending value (or of the object lacking a field), in the text
        # as typed; for a missing field that is the object's own line.
        expected = line_containing(text, fragment, after=_line_of_path_start(text, path))
        assert problem["line"] == expected

    @pytest.mark.parametrize("case", WARNED.values(), ids=WARNED.keys())
    def test_a_plain_valid_document_is_valid_with_a_warning_at_its_line(self, staff_client, case):
        document, path, fragment = case
        text = json.dumps(document, indent=2)

        result = check(staff_client, text)

        assert result["valid"] is True and result["problems"] == []
        assert result["summary"].endswith(", with 1 warning")
        assert [w["path"] for w in result["warnings"]] == [path]
        expected = line_containing(text, fragment, after=_line_of_path_start(text, path))
        assert result["warnings"][0]["line"] == expected

    def test_the_same_document_on_one_line_points_at_line_one(self, staff_client):
        document, path, _ = BROKEN["an unknown colour deep in a row"]

        result = check(staff_client, json.dumps(document))

        assert [(p["path"], p["line"]) for p in result["problems"]] == [(path, 1)]

    def test_lines_follow_the_text_as_typed_not_a_reformatted_copy(self, staff_client):
        text = (
            '[\n\n  {"componentText": {"text": "a"}},   {"componentBadge":\n{"badgeLabel": 5}}\n]'
        )

        result = check(staff_client, text)

        assert [(p["path"], p["line"]) for p in result["problems"]] == [
            ("components[1].componentBadge.badgeLabel", 4)
        ]

    def test_every_problem_is_reported(self, staff_client):
        broken = json.loads(next(e["text"] for e in playground_examples() if e["id"] == "broken"))

        result = check(staff_client, json.dumps(broken, indent=2))

        assert [p["path"] for p in result["problems"]] == [
            "components[0].componentText.textSize",
            "components[1].componentRow.rowAsideContent[0].componentBadge.badgeColor",
            "components[2].componentLinkButton.linkButtonUrl",
        ]
        assert result["summary"] == "3 problems"

    def test_a_syntax_error_gives_the_line_of_the_mistake(self, staff_client):
        text = '[\n  {"componentText": {"text": "a"}}\n  {"componentText": {"text": "b"}}\n]'

        result = check(staff_client, text)

        assert result["kind"] == "syntax"
        assert result["html"] == ""
        assert result["problems"] == [
            {"path": "", "message": "not valid JSON: Expecting ',' delimiter", "line": 3}
        ]

    @pytest.mark.parametrize(
        ("document", "hint"),
        [
            ({"componentText": {"text": "a"}}, "this is one component: put it in an array"),
            ({"key": "plan", "components": []}, 'this is one card: put it in {"cards": [ ... ]}'),
            ("plan", "expected a components array or a response"),
        ],
    )
    def test_a_document_of_another_shape_gets_a_hint(self, staff_client, document, hint):
        result = check(staff_client, json.dumps(document))

        assert result["kind"] == "shape"
        assert hint in result["problems"][0]["message"]

    def test_a_broken_card_shows_what_agents_would_read(self, staff_client):
        result = check(staff_client, json.dumps(BROKEN["a colour of the wrong type"][0]))

        assert 'data-card-state="error"' in result["html"]
        assert "The card service sent an answer that could not be read." in result["html"]

    def test_a_card_over_the_size_limit_is_too_big(self, staff_client, settings):
        settings.CARDS_MAX_CARD_BYTES = 100
        components = [{"componentPlainText": {"plainText": "x" * 200}}]

        as_array = check(staff_client, json.dumps(components))
        as_response = check(
            staff_client, json.dumps({"cards": [{"key": "big", "components": components}]})
        )

        assert as_array["problems"][0]["path"] == "components"
        assert as_response["problems"][0]["path"] == "cards[0].components"
        assert "the limit is 100" in as_response["problems"][0]["message"]

    def test_a_document_over_the_response_limit_is_refused(self, staff_client, settings):
        settings.CARDS_MAX_RESPONSE_BYTES = 1000

        result = check(staff_client, json.dumps([TEXT] * 40))

        assert result["kind"] == "too_big"
        assert "at most 1000" in result["problems"][0]["message"]


def _line_of_path_start(text: str, path: str) -> int:
    """Where the path's first element starts, so fragments like "{" resolve to the right line."""
    loc = path_location(path, root="components")
    offsets = value_offsets(text)
    while loc not in offsets:
        loc = loc[:-1]
    return text.count("\n", 0, offsets[loc]) + 1


@pytest.mark.django_db
class TestValidDocuments:
    def test_a_components_array_renders_as_agents_see_it(self, staff_client):
        components = [TEXT, BADGE]

        result = check(staff_client, json.dumps(components, indent=2))

        assert result["valid"] is True
        assert result["summary"] == "Valid: 2 components"
        assert result["problems"] == []
        assert str(render_components(components)) in result["html"]
        assert 'class="cc-card cc-card--loaded"' in result["html"]

    def test_a_whole_response_renders_every_requested_card(self, staff_client):
        document = {
            "cards": [
                {"key": "plan", "timeToLiveSeconds": 60, "components": [TEXT]},
                {"key": "nothing", "components": None},
                {"key": "empty", "components": []},
            ]
        }

        result = check(staff_client, json.dumps(document))

        assert result["valid"] is True
        assert result["summary"] == "Valid response: 3 cards (1 hidden: components is null)"
        html = result["html"]
        assert str(render_components([TEXT])) in html
        assert 'data-card-key="nothing" data-card-state="hidden"' in html
        assert "Nothing to show" in html

    def test_one_broken_card_never_hides_its_neighbours(self, staff_client):
        document = {
            "cards": [
                {"key": "good", "components": [TEXT]},
                {"key": "bad", "components": [{"componentBadge": {}}]},
            ]
        }

        result = check(staff_client, json.dumps(document))

        assert [p["path"] for p in result["problems"]] == [
            "cards[1].components[0].componentBadge.badgeLabel"
        ]
        assert 'data-card-key="good" data-card-state="loaded"' in result["html"]
        assert 'data-card-key="bad" data-card-state="error"' in result["html"]

    def test_a_repeated_key_is_noted_and_the_first_wins(self, staff_client):
        document = {
            "cards": [
                {"key": "plan", "components": [TEXT]},
                {"key": "plan", "components": [BADGE]},
            ]
        }

        result = check(staff_client, json.dumps(document, indent=2))

        assert result["valid"] is True
        [note] = result["notes"]
        assert note["path"] == "cards[1]"
        assert "the first wins" in note["message"]
        assert str(render_components([TEXT])) in result["html"]
        assert "Active" not in result["html"]

    def test_untrusted_text_is_escaped_in_the_rendering(self, staff_client):
        script = "<script>alert(1)</script>"

        result = check(staff_client, json.dumps([{"componentPlainText": {"plainText": script}}]))

        assert script not in result["html"]
        assert "&lt;script&gt;" in result["html"]

    def test_every_example_but_the_broken_one_is_valid(self, staff_client):
        for example in playground_examples():
            result = check(staff_client, example["text"])
            assert result["valid"] is (example["id"] != "broken"), example["id"]

    def test_an_empty_document_asks_for_one(self, staff_client):
        assert check(staff_client, "  \n")["kind"] == "empty"


class TestLocations:
    """The line finder must agree with json.loads on what sits where."""

    DOCUMENTS = [
        {"cards": [{"key": 'a"b\\c ✓', "components": [TEXT, {"componentDivider": {}}]}]},
        [[1, [2, [3, {"x": [True, False, None, -1.5e3]}]]], {}, [], ""],
        {"emoji 😀": {"nested": {"deeper": [{"a": "}]{[,:"}]}}},
    ]

    @pytest.mark.parametrize("indent", [None, 2, "\t"])
    @pytest.mark.parametrize("document", DOCUMENTS)
    def test_every_location_points_at_its_value(self, document, indent):
        text = json.dumps(document, indent=indent, ensure_ascii=False)
        decoder = json.JSONDecoder()

        offsets = value_offsets(text)

        for loc, offset in offsets.items():
            expected = document
            for part in loc:
                expected = expected[part]
            assert decoder.raw_decode(text, offset)[0] == expected, loc
        assert len(offsets) == _count_values(document)

    def test_a_repeated_key_locates_the_value_json_keeps(self):
        text = '{"a": 1,\n "a": 2}'

        assert value_offsets(text)[("a",)] == text.index("2")

    @pytest.mark.parametrize(
        ("path", "loc"),
        [
            ("cards[0].components[3].componentRow", ("cards", 0, "components", 3, "componentRow")),
            ("components[1].x", (1, "x")),
            ('components[0]["odd key"]', (0, "odd key")),
            ("", ()),
        ],
    )
    def test_paths_become_locations(self, path, loc):
        root = "components" if path.startswith("components") else ""
        assert path_location(path, root=root) == loc


def _count_values(value) -> int:
    if isinstance(value, dict):
        return 1 + sum(_count_values(v) for v in value.values())
    if isinstance(value, list):
        return 1 + sum(_count_values(v) for v in value)
    return 1


@pytest.mark.django_db
class TestPage:
    def test_staff_get_the_page_with_examples(self, staff_client):
        response = staff_client.get(PAGE_URL)

        text = response.content.decode()
        assert response.status_code == 200
        assert 'id="ci-examples"' in text
        assert "cards/playground.js" in text
        assert f'data-check-url="{CHECK_URL}"' in text
        for key in CARD_BUILDERS:
            assert f'<option value="{key}">' in text

    def test_it_runs_under_the_agent_pages_content_security_policy(self, staff_client):
        response = staff_client.get(PAGE_URL)

        assert "script-src 'self'" in response["Content-Security-Policy"]
        assert "<script>" not in response.content.decode()  # no inline script
        assert " style=" not in response.content.decode()

    def test_agents_are_sent_to_the_admin_login(self, agent_client):
        response = agent_client.get(PAGE_URL)

        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))

    def test_only_staff_may_check(self, client, agent_client):
        assert client.post(CHECK_URL, data="[]", content_type="text/plain").status_code == 403
        assert agent_client.post(CHECK_URL, data="[]", content_type="text/plain").status_code == 403

    def test_checking_needs_the_csrf_token(self, staff_admin):
        client = Client(enforce_csrf_checks=True)
        client.force_login(staff_admin)

        assert client.post(CHECK_URL, data="[]", content_type="text/plain").status_code == 403

    def test_the_config_changelist_links_to_the_playground_and_the_schema(self, staff_client):
        text = staff_client.get(reverse("admin:cards_cardconfig_changelist")).content.decode()

        assert f'href="{PAGE_URL}"' in text
        assert f'href="{reverse("cards:schema")}"' in text


@pytest.mark.django_db
def test_the_schema_is_public_at_a_stable_url(client):
    response = client.get("/schema/card-response.json")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Access-Control-Allow-Origin"] == "*"
    committed = json.loads(
        (Path(settings.BASE_DIR) / "docs" / "card-response.schema.json").read_text()
    )
    assert response.json() == response_json_schema() == committed
