"""Card API health (SPEC §9): 24 h columns, latest errors in full, constant query counts."""

import html
import math
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from cards.admin import CardConfigAdmin
from cards.configuration.health import (
    config_health,
    config_latency,
    config_latest_errors,
    health_since,
)
from cards.loading.services import cards_load
from cards.models import CardInstance, CardRequest
from tests.factories import CardConfigFactory, CustomerFactory

pytestmark = pytest.mark.django_db

Kind = CardInstance.ErrorKind
CHANGELIST = reverse("admin:cards_cardconfig_changelist")


def log(config, *, ago: timedelta, duration_ms: int = 100, kind: str = "", **fields) -> CardRequest:
    """One row of the request log, `ago` before now."""
    return CardRequest.objects.create(
        config=config,
        batch_id="b" * 32,
        keys=fields.pop("keys", [config.key]),
        status_code=fields.pop("status_code", None if kind else 200),
        error_kind=kind,
        error_detail=fields.pop("error_detail", {"message": "failed"} if kind else None),
        duration_ms=duration_ms,
        response_bytes=fields.pop("response_bytes", 120),
        created_at=timezone.now() - ago,
        **fields,
    )


def nearest_rank(values: list[int], p: float) -> int:
    ordered = sorted(values)
    return ordered[math.ceil(p * len(ordered)) - 1]


def changelist_rows(client) -> dict[str, object]:
    response = client.get(CHANGELIST)
    assert response.status_code == 200
    return {config.key: config for config in response.context["cl"].result_list}


def row_html(client, key: str) -> str:
    """The changelist row of one config, as rendered."""
    page = client.get(CHANGELIST).content.decode()
    start = page.index(f"{key}</a>") if f"{key}</a>" in page else page.index(key)
    return html.unescape(page[page.rfind("<tr", 0, start) : page.index("</tr>", start)])


@pytest.fixture
def seeded():
    """A healthy-ish API, a failing one, and one never called."""
    now_ok = CardConfigFactory(key="mostly-ok", order=1)
    durations = [10 * n for n in range(1, 19)]  # 18 successes: 10..180 ms
    for index, duration in enumerate(durations):
        log(now_ok, ago=timedelta(hours=23, minutes=-index), duration_ms=duration)
    log(now_ok, ago=timedelta(minutes=30), duration_ms=2000, kind=Kind.TIMEOUT)
    log(now_ok, ago=timedelta(minutes=5), duration_ms=30, kind=Kind.STATUS_CODE, status_code=500)
    latest_success = log(now_ok, ago=timedelta(minutes=10), duration_ms=40)
    # Outside the window: neither counted nor in the percentiles.
    log(now_ok, ago=timedelta(hours=30), duration_ms=99_999, kind=Kind.TIMEOUT)
    log(now_ok, ago=timedelta(hours=25), duration_ms=99_999)

    failing = CardConfigFactory(key="failing", order=2)
    old_success = log(failing, ago=timedelta(days=3), duration_ms=50)
    for minutes in (1, 2, 3, 4):
        log(failing, ago=timedelta(minutes=minutes), duration_ms=300, kind=Kind.RESPONSE_BODY)

    CardConfigFactory(key="silent", order=3)
    return {
        "durations": [*durations, 2000, 30, 40],
        "latest_success": latest_success.created_at,
        "old_success": old_success.created_at,
    }


class TestChangelistColumns:
    def test_the_columns_match_a_seeded_history(self, admin_client_logged_in, seeded):
        rows = changelist_rows(admin_client_logged_in)

        ok, failing, silent = rows["mostly-ok"], rows["failing"], rows["silent"]
        assert (ok.requests_24h, ok.errors_24h) == (21, 2)
        assert ok.error_rate_24h == pytest.approx(2 / 21)
        assert ok.last_success_at == seeded["latest_success"]
        durations = seeded["durations"]
        assert ok.latency_24h.p50_ms == nearest_rank(durations, 0.5) == 90
        assert ok.latency_24h.p95_ms == nearest_rank(durations, 0.95) == 180
        assert (failing.requests_24h, failing.errors_24h, failing.error_rate_24h) == (4, 4, 1.0)
        assert failing.last_success_at == seeded["old_success"]  # older than the window
        assert (failing.latency_24h.p50_ms, failing.latency_24h.p95_ms) == (300, 300)
        assert (silent.requests_24h, silent.error_rate_24h, silent.last_success_at) == (
            0,
            None,
            None,
        )
        assert silent.latency_24h is None

    def test_the_columns_read_well(self, admin_client_logged_in, seeded):
        client = admin_client_logged_in

        ok, failing, silent = (row_html(client, k) for k in ("mostly-ok", "failing", "silent"))

        assert '<td class="field-requests_24h">21</td>' in ok
        assert 'title="2 of 21 requests failed">9.5 %</span>' in ok
        assert "ci-health--bad" in ok
        assert '<td class="field-latency">90 / 180 ms</td>' in ok
        assert "10\xa0minutes ago" in ok
        assert ">100 %</span>" in failing
        assert "3\xa0days ago" in failing
        assert '<td class="field-error_rate">-</td>' in silent
        assert '<td class="field-latency">-</td>' in silent
        assert ">never</span>" in silent

    def test_it_sorts_by_error_rate(self, admin_client_logged_in, seeded):
        # `o` indexes the displayed columns, the action checkbox first.
        column = CardConfigAdmin.list_display.index("error_rate") + 1
        response = admin_client_logged_in.get(f"{CHANGELIST}?o=-{column}")

        keys = [c.key for c in response.context["cl"].result_list]
        assert keys == ["failing", "mostly-ok", "silent"]
        ascending = admin_client_logged_in.get(f"{CHANGELIST}?o={column}")
        keys = [c.key for c in ascending.context["cl"].result_list]
        assert keys == ["silent", "mostly-ok", "failing"]  # no data sorts lowest

    def test_a_failing_api_is_never_disabled(self, admin_client_logged_in, card_api):
        card_api.serve_raw(b"down", status=503)
        config = CardConfigFactory(key="flaky", api_url=card_api.url)
        customer = CustomerFactory()

        for _ in range(3):
            cards_load(customer=customer, force=True)

        config.refresh_from_db()
        assert config.is_enabled
        row = changelist_rows(admin_client_logged_in)["flaky"]
        assert row.requests_24h == 6  # three loads, each retried once
        assert row.error_rate_24h == 1.0


class TestQueryCount:
    @staticmethod
    def queries(client) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(CHANGELIST).status_code == 200
        return len(captured)

    @staticmethod
    def seed(configs: int, requests_each: int) -> None:
        for _ in range(configs):
            config = CardConfigFactory()
            for n in range(requests_each):
                kind = Kind.TIMEOUT if n % 4 == 0 else ""
                log(config, ago=timedelta(minutes=n), duration_ms=n, kind=kind)

    def test_it_does_not_grow_with_configs_or_requests(self, admin_client_logged_in):
        client = admin_client_logged_in
        self.seed(configs=2, requests_each=5)  # 10 requests
        few = self.queries(client)

        self.seed(configs=18, requests_each=11)  # 20 configs, 208 requests in all
        assert CardRequest.objects.count() >= 200

        assert self.queries(client) == few


class TestSelectors:
    def test_latency_for_many_configs_is_one_query(self, seeded):
        ids = list(CardRequest.objects.values_list("config_id", flat=True).distinct())

        with CaptureQueriesContext(connection) as captured:
            latency = config_latency(config_ids=ids, since=health_since())

        assert len(captured) == 1
        assert set(latency) == set(ids)

    def test_latency_uses_nearest_rank(self):
        config = CardConfigFactory()
        for duration in (5, 1, 4, 2, 3):
            log(config, ago=timedelta(minutes=1), duration_ms=duration)

        latency = config_latency(config_ids=[config.pk], since=health_since())[config.pk]

        assert (latency.p50_ms, latency.p95_ms) == (3, 5)

    def test_one_config_health_summarises_the_window(self, seeded):
        config = CardRequest.objects.filter(config__key="mostly-ok").first().config

        health = config_health(config=config)

        assert (health.requests, health.errors) == (21, 2)
        assert health.error_rate == pytest.approx(2 / 21)
        assert health.last_success_at == seeded["latest_success"]
        assert health.latency.p95_ms == 180


class TestChangePage:
    def test_it_shows_the_latest_errors_in_full(self, admin_client_logged_in):
        config = CardConfigFactory(key="plan")
        badge = "cards[0].components[2].componentBadge.badgeColor"
        pink = 'expected one of GREY, GREEN, YELLOW, RED, BLUE, got "PINK"'
        log(config, ago=timedelta(minutes=1), duration_ms=40)
        log(
            config,
            ago=timedelta(minutes=2),
            kind=Kind.RESPONSE_BODY,
            status_code=200,
            duration_ms=87,
            response_bytes=512,
            attempt=1,
            keys=["plan", "orders"],
            error_detail={
                "path": badge,
                "message": pink,
                "problems": [
                    {"path": badge, "message": pink},
                    {
                        "path": "cards[0].components[4].componentText.text",
                        "message": "expected at least 1 character, got 0",
                    },
                ],
                "durationMs": 87,
                "statusCode": 200,
            },
        )
        log(
            config,
            ago=timedelta(minutes=3),
            kind=Kind.STATUS_CODE,
            status_code=502,
            attempt=2,
            error_detail={
                "message": "the card API answered with status 502",
                "bodyExcerpt": "<h1>Bad gateway</h1>",
            },
        )
        log(
            config,
            ago=timedelta(minutes=4),
            kind=Kind.MISSING_CARD,
            error_detail={"path": "cards", "message": 'no card with key "plan" in cards'},
        )

        response = admin_client_logged_in.get(
            reverse("admin:cards_cardconfig_change", args=[config.pk])
        )

        text = html.unescape(response.content.decode())
        errors = response.context["latest_errors"]
        assert [e.error_kind for e in errors] == [
            Kind.RESPONSE_BODY,
            Kind.STATUS_CODE,
            Kind.MISSING_CARD,
        ]
        assert "2 problems:" in text
        assert f"<li><code>{badge}</code> {pink}</li>" in text
        assert (
            "<li><code>cards[0].components[4].componentText.text</code> "
            "expected at least 1 character, got 0</li>"
        ) in text
        assert "status <code>502</code>" in text
        assert "the card API answered with status 502" in text
        assert "<h1>Bad gateway</h1>" in text  # as text in a <pre>: unescaped here
        assert "&lt;h1&gt;Bad gateway" in response.content.decode()
        assert "at <code>cards</code>" in text
        assert 'no card with key "plan" in cards' in text
        for fact in ("87 ms", "512 bytes", "attempt 2", "keys <code>plan, orders</code>"):
            assert fact in text
        assert 'data-health="requests">4<' in text
        assert 'data-health="latency">' in text

    def test_a_config_without_history_says_so(self, admin_client_logged_in):
        config = CardConfigFactory()

        response = admin_client_logged_in.get(
            reverse("admin:cards_cardconfig_change", args=[config.pk])
        )

        text = response.content.decode()
        assert "No errors in the request log (kept 7 days)." in text
        assert 'data-health="last-success">never<' in text

    def test_the_latest_errors_are_bounded_and_newest_first(self):
        config = CardConfigFactory()
        for minutes in range(8):
            log(config, ago=timedelta(minutes=minutes), kind=Kind.TIMEOUT)

        errors = config_latest_errors(config=config)

        assert len(errors) == 5
        assert errors == sorted(errors, key=lambda e: e.created_at, reverse=True)
