"""The tools tell the whole story (issue 16): preview, playground and check_card_api name
the cards an answer carries that nobody asked for (ignored by real loads) and whether each
would be valid; a 401/403 gets a hint naming the signature header and whether the request
was signed; check_card_api shows a non-200 answer's body. Real loopback card APIs."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from cards.integrator.findings import unrequested_cards
from tests.cards.cardapi import TEXT, card
from tests.cards.integrator.test_preview import PREVIEW_URL, form_data, page

pytestmark = pytest.mark.django_db

BAD = [{"componentBadge": {"badgeLabel": "x", "badgeColor": "PINK"}}]
# The requested "plan", then an unrequested valid card, an unrequested broken one, a repeat
# of "plan" (the first wins: not listed) and an entry that is not a card at all.
ANSWER = {
    "cards": [
        card("plan"),
        card("usage"),
        card("orders", BAD),
        card("plan", BAD),
        {"components": TEXT},
    ]
}


def run(*args) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command(*args, stdout=out)
    except SystemExit as exc:
        return exc.code, out.getvalue()
    return 0, out.getvalue()


def test_unrequested_cards_are_named_with_their_verdict():
    found = unrequested_cards(body=json.dumps(ANSWER).encode(), keys=["plan"])

    assert [(u.path, u.key, u.valid) for u in found] == [
        ("cards[1]", "usage", True),
        ("cards[2]", "orders", False),
        ("cards[4]", None, False),
    ]
    assert found[0].describe() == ('cards[1] "usage" was not requested: ignored (would be valid)')
    assert "would be refused: cards[2].components[0].componentBadge.badgeColor" in (
        found[1].describe()
    )
    assert found[2].describe() == 'cards[4] is not a card (it has no "key"): ignored'


def test_check_card_api_warns_about_every_unrequested_card(card_api):
    card_api.serve_raw(json.dumps(ANSWER))

    status, out = run("check_card_api", "--url", card_api.url, "--key", "plan")

    assert status == 0  # the requested card is valid; the warnings do not fail it
    assert "✓ plan: valid, 1 component\n" in out
    assert '! cards[1] "usage" was not requested: ignored (would be valid)' in out
    assert '! cards[2] "orders" was not requested: ignored (would be refused:' in out
    assert "! cards[4] is not a card" in out


def test_check_card_api_shows_a_refusals_body_and_hint_unsigned(card_api, settings):
    settings.CARDS_SIGNING_SECRETS = []
    card_api.serve_raw('{"error": "missing signature"}', status=401)

    status, out = run("check_card_api", "--url", card_api.url, "--key", "plan")

    assert status == 1
    assert "-> status 401" in out and "unsigned" in out
    assert 'Body: {"error": "missing signature"}' in out
    assert "Hint: The card API refused the request (401)" in out
    assert "NOT signed (no Cards-Signature header: CARDS_SIGNING_SECRETS is empty)" in out


def test_a_403_to_a_signed_request_says_it_was_signed(card_api, settings):
    settings.CARDS_SIGNING_SECRETS = ["s3cret"]
    card_api.serve_raw("forbidden", status=403)

    status, out = run("check_card_api", "--url", card_api.url, "--key", "plan")

    assert status == 1 and "signed" in out and "Body: forbidden" in out
    assert "This request was signed (Cards-Signature, mode timestamped)" in out


def test_a_500_shows_its_body_without_a_credential_hint(card_api):
    card_api.serve_raw("<h1>Internal Server Error</h1>", status=500)

    status, out = run("check_card_api", "--url", card_api.url, "--key", "plan")

    assert "Body: <h1>Internal Server Error</h1>" in out and "Hint:" not in out


def test_the_preview_names_unrequested_cards_and_the_refusal_hint(admin_client_logged_in, card_api):
    card_api.serve_raw(json.dumps(ANSWER))

    text = page(admin_client_logged_in.post(PREVIEW_URL, form_data(url=card_api.url, key="plan")))

    assert "data-preview-unrequested" in text
    assert "The answer carries 3 entries nobody asked for" in text
    assert 'cards[1] "usage" was not requested: ignored (would be valid)' in text
    assert 'cards[4] is not a card (it has no "key"): ignored' in text

    card_api.serve_raw("no", status=401)
    text = page(admin_client_logged_in.post(PREVIEW_URL, form_data(url=card_api.url, key="plan")))
    assert "data-preview-hint" in text and "was NOT signed (no Cards-Signature header" in text


def test_the_playground_notes_unrequested_cards_when_told_the_requested_keys(
    admin_client_logged_in,
):
    document = json.dumps(ANSWER, indent=2)

    asked = admin_client_logged_in.post(
        reverse("cards:playground-check") + "?keys=plan,missing",
        data=document.encode(),
        content_type="text/plain",
    ).json()
    every = admin_client_logged_in.post(
        reverse("cards:playground-check"), data=document.encode(), content_type="text/plain"
    ).json()

    notes = [note["message"] for note in asked["notes"]]
    assert 'cards[1] "usage" was not requested: ignored (would be valid)' in notes
    assert any(n.startswith('cards[2] "orders" was not requested') for n in notes)
    assert 'cards[4] is not a card (it has no "key"): ignored' in notes
    assert any('no card with key "missing"' in p["message"] for p in asked["problems"])
    # Without the keys every keyed card counts as asked for; the non-card is still noted.
    assert [n["message"] for n in every["notes"] if "not requested" in n["message"]] == []
    assert any(n["message"].startswith("cards[4] is not a card") for n in every["notes"])
    line = next(n["line"] for n in asked["notes"] if n["path"] == "cards[4]")
    assert document.splitlines()[line].strip().startswith('"components"')  # its opening brace
