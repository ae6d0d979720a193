"""Workers keep enabled configs with their headers while their rows are unchanged
(`card_configs_enabled(ids=...)`): every change an integrator can make is seen."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from cards.configuration.transfer import card_configs_import
from cards.loading.services import card_configs_enabled
from cards.models import CardConfig
from tests.factories import CardConfigFactory, CardConfigHeaderFactory

pytestmark = pytest.mark.django_db


def headers(configs: list[CardConfig]) -> list[list[tuple[str, str]]]:
    return [[(h.name, h.value) for h in config.headers.all()] for config in configs]


def test_unchanged_configs_cost_one_query_and_keep_display_order():
    second = CardConfigFactory(key="second", order=2)
    first = CardConfigFactory(key="first", order=1)
    CardConfigHeaderFactory(config=first, name="X-Api-Key", value="one")
    card_configs_enabled(ids=[second.pk, first.pk])

    with CaptureQueriesContext(connection) as queries:
        configs = card_configs_enabled(ids=[second.pk, first.pk])
        assert headers(configs) == [[("X-Api-Key", "one")], []]

    assert [config.key for config in configs] == ["first", "second"]
    assert len(queries) == 1


def test_a_saved_config_is_read_again():
    config = CardConfigFactory(key="plan", api_url="https://old.example.com/cards")
    card_configs_enabled(ids=[config.pk])

    config.api_url = "https://new.example.com/cards"
    config.save()

    assert card_configs_enabled(ids=[config.pk])[0].api_url == "https://new.example.com/cards"


def test_disabled_and_deleted_configs_are_left_out():
    kept, disabled, deleted = (CardConfigFactory(key=key) for key in ["kept", "off", "gone"])
    ids = [kept.pk, disabled.pk, deleted.pk]
    assert len(card_configs_enabled(ids=ids)) == 3

    disabled.is_enabled = False
    disabled.save()
    deleted.delete()

    assert [config.key for config in card_configs_enabled(ids=ids)] == ["kept"]


def test_headers_changed_alone_by_an_import_are_seen():
    config = CardConfigFactory(key="plan", title="Plan", order=1)
    CardConfigHeaderFactory(config=config, name="Authorization", value="Bearer old")
    card_configs_enabled(ids=[config.pk])
    item = {
        "title": "Plan",
        "key": "plan",
        "apiUrl": config.api_url,
        "defaultTimeToLiveSeconds": config.default_ttl_seconds,
        "order": 1,
        "isEnabled": True,
        "apiHeaders": [{"name": "Authorization", "value": "Bearer new"}],
    }

    assert card_configs_import(items=[item]).updated == 1

    assert headers(card_configs_enabled(ids=[config.pk])) == [[("Authorization", "Bearer new")]]


def test_headers_changed_alone_in_admin_are_seen(admin_client_logged_in):
    config = CardConfigFactory(key="plan", order=0)
    header = CardConfigHeaderFactory(config=config, name="Authorization", value="Bearer old")
    card_configs_enabled(ids=[config.pk])
    data = {
        "title": config.title,
        "key": config.key,
        "api_url": config.api_url,
        "default_ttl_seconds": str(config.default_ttl_seconds),
        "order": "0",
        "is_enabled": "on",
        "max_requests_per_second": str(config.max_requests_per_second),
        "headers-TOTAL_FORMS": "1",
        "headers-INITIAL_FORMS": "1",
        "headers-MIN_NUM_FORMS": "0",
        "headers-MAX_NUM_FORMS": "20",
        "headers-0-id": str(header.pk),
        "headers-0-config": str(config.pk),
        "headers-0-name": "Authorization",
        "headers-0-value": "Bearer new",
    }

    url = reverse("admin:cards_cardconfig_change", args=[config.pk])
    assert admin_client_logged_in.post(url, data).status_code == 302

    assert headers(card_configs_enabled(ids=[config.pk])) == [[("Authorization", "Bearer new")]]
