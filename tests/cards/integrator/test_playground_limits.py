"""The playground's work and answer stay bounded by its input (issue 13, point 6: 80,000
broken items took 13.7 s and answered 23 MB). Timings are in bench/playground.py."""

import json

import pytest
from django.urls import reverse

from cards.integrator.playground import MAX_PROBLEMS_LISTED, playground_result
from cards.protocol.outcomes import MAX_JSON_DEPTH

CHECK_URL = reverse("cards:playground-check")


def broken(items: int) -> str:
    """`items` empty objects, one per line: each is one problem."""
    return "[\n" + ",\n".join("{}" for _ in range(items)) + "\n]"


def test_80000_problems_are_counted_and_the_first_200_listed_with_their_lines():
    result = playground_result(broken(80_000))

    assert result["summary"] == "80000 problems"
    listed = result["problems"]
    assert len(listed) == MAX_PROBLEMS_LISTED + 1
    # Item i is on line i + 2 (the "[" is line 1).
    assert [p["line"] for p in listed[:3]] == [2, 3, 4]
    assert listed[MAX_PROBLEMS_LISTED - 1]["line"] == MAX_PROBLEMS_LISTED + 1
    assert listed[-1]["message"] == f"… and {80_000 - MAX_PROBLEMS_LISTED:,} more"
    assert len(json.dumps(result)) < 100_000


def test_json_nested_100000_deep_is_one_clear_problem():
    result = playground_result("[" * 100_000 + "]" * 100_000)

    assert result["kind"] == "syntax"
    assert result["problems"][0]["message"] == (
        f"nests arrays and objects more than {MAX_JSON_DEPTH} levels deep"
    )


@pytest.mark.django_db
def test_a_body_over_the_limit_is_refused_before_it_is_read(admin_client_logged_in, settings):
    settings.CARDS_MAX_RESPONSE_BYTES = 1000

    response = admin_client_logged_in.post(
        CHECK_URL, data=b"[" + b"{}," * 500 + b"{}]", content_type="text/plain"
    )

    assert response.status_code == 200  # the page shows it like any other answer
    assert response.json()["kind"] == "too_big"
    assert "at most 1000" in response.json()["problems"][0]["message"]
