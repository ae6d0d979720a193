"""reload_cards, purge_cards and check_card_api: output and exit statuses (SPEC §7)."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from cards.models import CardInstance, CardRequest
from tests.cards.cardapi import TEXT, card
from tests.factories import CardConfigFactory, CardInstanceFactory, CustomerFactory

pytestmark = pytest.mark.django_db


def run(*args) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command(*args, stdout=out)
    except SystemExit as exc:
        return exc.code, out.getvalue()
    return 0, out.getvalue()


@pytest.fixture
def customer():
    return CustomerFactory(email="alex@example.com", external_id="u_1")


def test_reload_cards_sync_json_prints_one_object_per_card(card_api, customer):
    CardConfigFactory(key="plan", api_url=card_api.url, order=1)
    CardConfigFactory(key="hidden", api_url=card_api.url, order=2)
    CardConfigFactory(key="orders", api_url=card_api.url, order=3)
    card_api.serve({"plan": card("plan", ttl=60), "hidden": card("hidden", None)})

    status, out = run("reload_cards", "--customer", "ALEX@example.com", "--sync", "--json")

    lines = [json.loads(line) for line in out.splitlines()]
    assert status == 1  # orders is missing from the answer
    assert [line["key"] for line in lines] == ["plan", "hidden", "orders"]
    plan, hidden, orders = lines
    assert plan == {
        "customer": "alex@example.com",
        "key": "plan",
        "state": "loaded",
        "hidden": False,
        "stale": False,
        "expiresAt": plan["expiresAt"],
        "ttlSeconds": 60,
        "error": None,
        "components": TEXT,
    }
    assert hidden["hidden"] is True and hidden["components"] is None
    assert orders["state"] == "error"
    assert orders["error"]["kind"] == "MISSING_CARD"
    assert orders["error"]["path"] == "cards"


def test_reload_cards_sync_exits_zero_when_every_card_loads(card_api, customer):
    CardConfigFactory(key="plan", api_url=card_api.url)
    card_api.serve({"plan": card("plan")})

    status, out = run("reload_cards", "--customer", "u_1", "--sync")

    assert status == 0
    assert "alex@example.com\tplan\tloaded\tok" in out


def test_reload_cards_bypasses_the_cache_unless_if_stale(card_api, customer):
    CardConfigFactory(key="plan", api_url=card_api.url)
    card_api.serve({"plan": card("plan")})

    run("reload_cards", "--customer", customer.public_id, "--sync")
    run("reload_cards", "--customer", customer.public_id, "--sync", "--if-stale")
    run("reload_cards", "--customer", customer.public_id, "--sync", "--key", "plan")

    assert len(card_api.requests) == 2


def test_reload_cards_stale_data_is_marked_stale_after_a_failure(card_api, customer):
    CardConfigFactory(key="plan", api_url=card_api.url)
    card_api.serve({"plan": card("plan")})
    run("reload_cards", "--all", "--sync")
    card_api.serve_raw("boom", status=500)

    status, out = run("reload_cards", "--all", "--sync", "--json")

    line = json.loads(out)
    assert status == 1
    assert line["state"] == "error" and line["stale"] is True and line["components"] == TEXT
    assert line["error"]["statusCode"] == 500


def test_reload_cards_rejects_unknown_customers_and_keys(customer):
    CardConfigFactory(key="plan")
    with pytest.raises(CommandError, match='No customer .* "nobody"'):
        call_command("reload_cards", "--customer", "nobody")
    with pytest.raises(CommandError, match="No enabled card config with key: nope"):
        call_command("reload_cards", "--all", "--key", "nope")


def test_purge_cards_deletes_only_what_is_past_retention(settings):
    now = timezone.now()
    retention = timedelta(seconds=settings.CARDS_PURGE_AFTER_SECONDS)
    old = CardInstanceFactory(expires_at=now - retention - timedelta(minutes=1))
    recent = CardInstanceFactory(expires_at=now - retention + timedelta(minutes=1))
    fresh = CardInstanceFactory(expires_at=now + timedelta(minutes=1))

    status, out = run("purge_cards", "--batch-size", "1")

    assert status == 0 and "Purged 1 card instances" in out
    assert set(CardInstance.objects.values_list("pk", flat=True)) == {recent.pk, fresh.pk}
    assert not CardInstance.objects.filter(pk=old.pk).exists()


def test_check_card_api_reports_each_key_and_exits_by_validity(card_api):
    bad = card("orders", [{"componentBadge": {"badgeLabel": "x", "badgeColor": "PINK"}}])
    card_api.serve({"plan": card("plan"), "orders": bad})

    status, out = run(
        "check_card_api",
        "--url",
        card_api.url,
        "--key",
        "plan",
        "--key",
        "orders",
        "--header",
        "Authorization: Bearer abc",
        "--email",
        "sam@example.com",
    )

    assert status == 1
    assert f"POST {card_api.url} -> status 200" in out
    assert "✓ plan: valid, 1 component\n" in out  # not "1 components"
    assert "✗ orders: RESPONSE_BODY" in out
    assert "cards[1].components[0].componentBadge.badgeColor: expected one of" in out
    assert card_api.requests[0]["customer"]["email"] == "sam@example.com"
    assert card_api.headers[0]["Authorization"] == "Bearer abc"
    assert not CardRequest.objects.exists() and not CardInstance.objects.exists()


def test_check_card_api_validates_a_saved_file(tmp_path):
    path = tmp_path / "answer.json"
    path.write_text(json.dumps({"cards": [card("plan")]}))

    status, out = run("check_card_api", "--file", str(path), "--key", "plan")
    assert status == 0 and "✓ plan: valid" in out

    status, out = run("check_card_api", "--file", str(path), "--key", "plan", "--key", "x")
    assert status == 1 and "✗ x: MISSING_CARD" in out


WARNED = [{"componentBadge": {"badgeLabel": "", "badgeColor": "GREEN"}}, *TEXT]


@pytest.mark.parametrize(
    ("flags", "status"),
    [pytest.param([], 0, id="lenient"), pytest.param(["--strict"], 1, id="strict")],
)
def test_check_card_api_prints_warnings_and_fails_on_them_only_when_strict(card_api, flags, status):
    card_api.serve({"plan": card("plan", WARNED, ttl=60.0)})

    got, out = run("check_card_api", "--url", card_api.url, "--key", "plan", *flags)

    assert got == status
    assert "✓ plan: valid, 1 component, 2 warnings" in out
    assert "    ! cards[0].timeToLiveSeconds: an integer written as a number" in out
    assert (
        "    ! cards[0].components[0].componentBadge.badgeLabel: empty badgeLabel; the badge is"
        " not drawn" in out
    )
    assert ("--strict: 2 warnings" in out) is bool(flags)


def test_check_card_api_strict_passes_a_clean_answer_and_checks_files_too(tmp_path):
    path = tmp_path / "answer.json"
    path.write_text(json.dumps({"cards": [card("plan")]}))
    assert run("check_card_api", "--strict", "--file", str(path), "--key", "plan")[0] == 0

    path.write_text(json.dumps({"cards": [card("plan", [{"componentNew": {}}])]}))
    status, out = run("check_card_api", "--strict", "--file", str(path), "--key", "plan")
    assert status == 1
    assert '! cards[0].components[0]: unknown component "componentNew"' in out
    assert run("check_card_api", "--file", str(path), "--key", "plan")[0] == 0
