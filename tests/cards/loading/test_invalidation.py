"""A config's change clears what it made stale, for every customer, and open pages reload
it (issue 16): saving in admin expires cached errors (and cached cards when the URL or key
changed); the admin action reloads a card for every watched customer. Against a real card
API on loopback and the real admin."""

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from werkzeug import Request, Response

from cards.loading.invalidation import config_change_invalidate, config_request
from cards.loading.services import cards_load
from cards.models import CardInstance
from tests.cards.cardapi import card
from tests.cards.cardpages import card_of, ok, page, poll, poller_of, state_of, text
from tests.factories import (
    CardConfigFactory,
    CardConfigHeaderFactory,
    CardInstanceFactory,
    CustomerFactory,
    UserFactory,
)

State = CardInstance.State
Kind = CardInstance.ErrorKind
GOOD = "Bearer good-token"


def serve_with_credential(card_api) -> None:
    """401 unless the request carries the good token; else a card saying which URL."""

    def handler(request: Request, body: dict) -> Response:
        if request.headers.get("Authorization") != GOOD:
            return Response('{"error": "bad credentials"}', status=401)
        cards = [card(key, text(f"{key} from the fixed API")) for key in body["cardKeys"]]
        return Response(json.dumps({"cards": cards}), content_type="application/json")

    card_api.serve_handler(handler)


def admin_client() -> Client:
    client = Client()
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def change_data(config, *, headers, **fields) -> dict[str, str]:
    """The admin change form as a browser posts it."""
    data = {
        "title": config.title,
        "key": config.key,
        "api_url": config.api_url,
        "default_ttl_seconds": str(config.default_ttl_seconds),
        "order": str(config.order),
        "is_enabled": "on",
        "max_requests_per_second": "10",
        "headers-TOTAL_FORMS": str(len(headers)),
        "headers-INITIAL_FORMS": str(sum(1 for h in headers if "id" in h)),
        "headers-MIN_NUM_FORMS": "0",
        "headers-MAX_NUM_FORMS": "20",
    }
    for index, header in enumerate(headers):
        for name, value in header.items():
            data[f"headers-{index}-{name}"] = str(value)
    data.update(fields)
    return data


def admin_save(config, **changes):
    url = reverse("admin:cards_cardconfig_change", args=[config.pk])
    response = admin_client().post(url, change_data(config, **changes))
    assert response.status_code == 302, response.content.decode()[:2000]
    return response


def unexpired(instance: CardInstance) -> bool:
    instance.refresh_from_db()
    return instance.expires_at > timezone.now()


@pytest.mark.django_db
class TestSavingAConfig:
    def cached(self, config, state: str, **fields) -> list[CardInstance]:
        later = timezone.now() + timedelta(minutes=5)
        return [
            CardInstanceFactory(
                customer=CustomerFactory(), config=config, state=state, expires_at=later, **fields
            )
            for _ in range(2)
        ]

    def test_a_changed_header_expires_cached_errors_for_every_customer_not_cards(self):
        config = CardConfigFactory(key="plan")
        header = CardConfigHeaderFactory(config=config, value="Bearer bad")
        errors = self.cached(config, State.ERROR, error_kind=Kind.STATUS_CODE)
        cards = self.cached(config, State.LOADED, components=text("ok"))
        other = CardInstanceFactory(
            config=CardConfigFactory(key="other"),
            state=State.ERROR,
            expires_at=timezone.now() + timedelta(minutes=5),
        )

        admin_save(
            config,
            headers=[
                {"id": header.pk, "config": config.pk, "name": "Authorization", "value": GOOD}
            ],
        )

        assert not any(unexpired(i) for i in errors)
        assert all(unexpired(i) for i in cards)
        assert unexpired(other)

    def test_a_changed_url_or_key_expires_cached_cards_too(self):
        config = CardConfigFactory(key="plan")
        cards = self.cached(config, State.LOADED, components=text("ok"))
        errors = self.cached(config, State.ERROR, error_kind=Kind.MISSING_CARD)

        admin_save(config, headers=[], api_url="https://new.example.com/cards")

        assert not any(unexpired(i) for i in cards + errors)
        for instance in cards:
            assert instance.components == text("ok")  # kept, shown stale until reloaded

    def test_a_change_that_does_not_touch_the_request_expires_nothing(self):
        config = CardConfigFactory(key="plan")
        header = CardConfigHeaderFactory(config=config, value=GOOD)
        errors = self.cached(config, State.ERROR, error_kind=Kind.STATUS_CODE)

        admin_save(
            config,
            title="A new title",
            default_ttl_seconds="600",
            headers=[{"id": header.pk, "config": config.pk, "name": "Authorization", "value": ""}],
        )  # blank: keep the stored value

        assert all(unexpired(i) for i in errors)

    def test_a_new_config_or_an_unchanged_request_invalidates_nothing(self):
        config = CardConfigFactory(key="plan")
        before = config_request(config=config)

        assert config_change_invalidate(config=config, before=None).errors == 0
        assert config_change_invalidate(config=config, before=before).errors == 0

    def test_the_digest_holds_no_secret(self):
        config = CardConfigFactory(key="plan")
        CardConfigHeaderFactory(config=config, value=GOOD)

        assert "good-token" not in repr(config_request(config=config))


@pytest.mark.django_db(transaction=True)
def test_an_open_page_shows_the_fixed_card_at_its_next_ask_after_the_save(agent_client, card_api):
    serve_with_credential(card_api)
    config = CardConfigFactory(key="plan", title="Plan", api_url=card_api.url)
    header = CardConfigHeaderFactory(config=config, value="Bearer wrong")
    customer = CustomerFactory()
    cards_load(customer=customer)  # the broken API's answer: a cached error (5 minutes)
    html = page(agent_client, customer)
    assert state_of(html, "plan") == "error"
    poller = poller_of(html)
    assert poller["trigger"].startswith("load delay:60s")  # CARDS_PAGE_RECHECK_SECONDS

    admin_save(
        config,
        headers=[{"id": header.pk, "config": config.pk, "name": "Authorization", "value": GOOD}],
    )
    answer = ok(poll(agent_client, customer, poller))  # the page's next ask

    assert 'data-card-state="loaded"' in card_of(answer, "plan")
    assert "plan from the fixed API" in card_of(answer, "plan")


@pytest.mark.django_db(transaction=True)
def test_reload_everywhere_reloads_watched_customers_and_expires_the_rest(card_api):
    serve_with_credential(card_api)
    config = CardConfigFactory(key="plan", api_url=card_api.url)
    CardConfigHeaderFactory(config=config, value=GOOD)
    now = timezone.now()
    watched = CustomerFactory(last_viewed_at=now - timedelta(minutes=1))
    unwatched = CustomerFactory(last_viewed_at=now - timedelta(days=2))
    for customer in (watched, unwatched):
        CardInstanceFactory(
            customer=customer,
            config=config,
            state=State.LOADED,
            components=text("old"),
            loaded_at=now,
            expires_at=now + timedelta(hours=1),
        )

    response = admin_client().post(
        reverse("admin:cards_cardconfig_changelist"),
        {"action": "reload_everywhere_watched", "_selected_action": [config.pk]},
        follow=True,
    )

    assert "Reloading for 1 watched customer(s) now" in response.content.decode()
    fresh = CardInstance.objects.get(customer=watched)
    for _ in range(200):  # the in-process pool loads it
        if fresh.components != text("old"):
            break
        import time

        time.sleep(0.05)
        fresh.refresh_from_db()
    assert fresh.components == text("plan from the fixed API")
    stale = CardInstance.objects.get(customer=unwatched)
    assert stale.components == text("old") and stale.expires_at <= timezone.now()
    assert [body["customer"]["email"] for body in card_api.requests] == [watched.email]


@pytest.mark.django_db
def test_an_import_that_changes_a_configs_url_expires_what_it_cached():
    from cards.configuration.transfer import card_configs_export, card_configs_import

    config = CardConfigFactory(key="plan")
    untouched = CardConfigFactory(key="other")
    later = timezone.now() + timedelta(minutes=5)
    cached = CardInstanceFactory(config=config, state=State.LOADED, expires_at=later)
    kept = CardInstanceFactory(config=untouched, state=State.ERROR, expires_at=later)
    items = card_configs_export(with_secrets=True)
    for item in items:
        if item["key"] == "plan":
            item["apiUrl"] = "https://moved.example.com/cards"

    card_configs_import(items=items)

    assert not unexpired(cached) and unexpired(kept)


@pytest.mark.django_db
def test_an_open_page_asks_at_least_every_recheck_period(agent_client, settings):
    settings.CARDS_PAGE_RECHECK_SECONDS = 45
    customer = CustomerFactory()
    config = CardConfigFactory(key="plan")
    now = timezone.now()
    CardInstanceFactory(
        customer=customer,
        config=config,
        state=State.LOADED,
        components=text("cached"),
        loaded_at=now,
        expires_at=now + timedelta(hours=2),
    )

    assert poller_of(page(agent_client, customer))["trigger"].startswith("load delay:45s")
