"""Card fragments, reload and reload-all, errors, cached rendering and a broker that is
down, against a real card API on loopback (SPEC §6-§8). The poller: test_card_updates.py.

Loads run on the in-process pool, whose threads use their own database connections, so
tests that load are transactional.
"""

import html as html_lib
import re
import time
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from cards.live.display import AGENT_REASONS, UNAVAILABLE_NOTICE
from cards.live.waiting import RETRY_AFTER_SECONDS
from cards.models import CardConfig, CardInstance
from tests.cards.cardapi import card
from tests.cards.cardpages import (
    card_ids,
    card_of,
    fragment,
    ids,
    ok,
    page,
    poll,
    poller_of,
    serve_versions,
    shown,
    text,
)
from tests.factories import CardConfigFactory, CardInstanceFactory, CustomerFactory, UserFactory

State = CardInstance.State
Kind = CardInstance.ErrorKind
loads = pytest.mark.django_db(transaction=True)


@pytest.fixture
def customer(db):
    return CustomerFactory(email="alex@example.com")


# --- Fragments --------------------------------------------------------------------------


@loads
def test_a_fragment_alone_starts_the_load_its_card_needs(agent_client, card_api, customer):
    CardConfigFactory(key="plan", api_url=card_api.url)
    serve_versions(card_api)

    loaded = ok(fragment(agent_client, customer, "plan"))

    assert "plan version 1" in loaded and 'data-card-state="loaded"' in loaded
    assert card_api.keys_requested == [["plan"]]


def test_fragments_of_unknown_or_disabled_cards_are_404(agent_client, customer):
    CardConfigFactory(key="off", is_enabled=False)

    assert fragment(agent_client, customer, "nope").status_code == 404
    assert fragment(agent_client, customer, "off").status_code == 404


def test_a_disabled_cards_fragment_asked_by_htmx_is_empty(agent_client, customer):
    CardConfigFactory(key="off", is_enabled=False)

    response = fragment(agent_client, customer, "off", HTTP_HX_REQUEST="true")

    assert response.status_code == 200 and response.content == b""


def test_fragments_send_anonymous_htmx_requests_to_the_login_page(client, customer):
    CardConfigFactory(key="plan")
    page_url = f"http://testserver/customers/{customer.pk}/"

    htmx = fragment(client, customer, "plan", HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL=page_url)
    plain = fragment(client, customer, "plan")

    assert htmx.status_code == 401
    assert htmx["HX-Redirect"] == f"/login/?next=/customers/{customer.pk}/"
    assert plain.status_code == 302 and plain["Location"].startswith("/login/?next=")


# --- Reload -----------------------------------------------------------------------------


@pytest.fixture
def csrf_client(agent):
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent)
    return client


def csrf_token(html: str) -> str:
    return re.search(r'<meta name="csrf-token" content="([^"]+)">', html).group(1)


def reload(client, customer, key, poller: dict | None = None, **headers):
    """What the reload button sends: a POST with the page's poller's inputs."""
    form = {name: value for name, value in (poller or {}).items() if name != "trigger"}
    config_id = CardConfig.objects.get(key=key).pk  # the button's URL names the config's id
    return client.post(reverse("cards:card-reload", args=[customer.pk, config_id]), form, **headers)


@loads
def test_reload_needs_csrf_and_asks_the_api_for_that_key_alone(csrf_client, card_api, customer):
    configs = {  # same API: batched on the first load
        key: CardConfigFactory(key=key, title=key.title(), api_url=card_api.url)
        for key in ("plan", "orders")
    }
    serve_versions(card_api)
    html = page(csrf_client, customer)
    settled = ok(poll(csrf_client, customer, poller_of(html)))
    assert card_api.keys_requested == [["plan", "orders"]]

    assert reload(csrf_client, customer, "orders").status_code == 403
    token = csrf_token(html)
    reloading = ok(
        reload(csrf_client, customer, "orders", poller_of(settled), HTTP_X_CSRFTOKEN=token)
    )

    orders = card_of(reloading, "orders")
    # It replaces the card in place (same element id).
    assert orders.startswith(f'<section id="card-{CardConfig.objects.get(key="orders").pk}"')
    # Reloaded seconds after it loaded: reloading with its data shown, not "stale".
    assert 'data-card-state="loading"' in orders and "cc-card--reloading" in orders
    assert "orders version 1" in orders and "Reloading" in orders and "stale" not in orders
    poller = poller_of(reloading)
    assert 'id="cards-poller" class="cc-poller" hidden hx-swap-oob="outerHTML"' in reloading
    assert poller["trigger"] == "load, card-retry" and poller["pending"] == ids(configs["orders"])
    assert card_ids(poller) == ids(configs["plan"], configs["orders"])
    reloaded = ok(poll(csrf_client, customer, poller))
    assert "orders version 2" in card_of(reloaded, "orders") and card_of(reloaded, "plan") == ""
    assert "stale" not in card_of(reloaded, "orders")
    assert card_api.keys_requested == [["plan", "orders"], ["orders"]]


@loads
def test_the_poller_a_reload_answers_misses_nothing_the_old_one_waited_for(
    agent_client, card_api, customer
):
    plan = CardConfigFactory(key="plan", api_url=card_api.url)
    orders = CardConfigFactory(key="orders", api_url=card_api.url)
    serve_versions(card_api)
    html = page(agent_client, customer)
    old = poller_of(html)  # waits for both; its answer never arrives (the reload replaces it)
    while CardInstance.objects.filter(state=State.LOADING).exists():
        time.sleep(0.02)

    replacing = poller_of(ok(reload(agent_client, customer, "plan", old)))

    # The page now shows plan's stored answer (reloading); orders is still news to it.
    assert replacing["cards"] == f"{shown(plan, customer=customer)},{orders.pk}:0"
    assert replacing["pending"] == ids(plan, orders)
    answer = ok(poll(agent_client, customer, replacing))
    assert "orders version 1" in card_of(answer, "orders")
    while "plan version 2" not in card_of(answer, "plan"):
        assert poller_of(answer)["pending"] == ids(plan)
        answer = ok(poll(agent_client, customer, poller_of(answer)))


@loads
def test_reload_bypasses_a_cached_error(agent_client, card_api, customer):
    CardConfigFactory(key="plan", api_url=card_api.url)
    card_api.serve({})  # MISSING_CARD: cached for 5 minutes
    first = ok(poll(agent_client, customer, poller_of(page(agent_client, customer))))
    assert AGENT_REASONS[Kind.MISSING_CARD] in card_of(first, "plan")
    serve_versions(card_api)

    reloading = ok(reload(agent_client, customer, "plan", poller_of(first)))
    reloaded = ok(poll(agent_client, customer, poller_of(reloading)))

    assert "plan version 1" in card_of(reloaded, "plan")
    assert len(card_api.requests) == 2


@loads
def test_reload_all_reloads_every_card_and_answers_the_panel(agent_client, card_api, customer):
    for key in ("plan", "orders"):
        CardConfigFactory(key=key, api_url=card_api.url)
    serve_versions(card_api)
    ok(poll(agent_client, customer, poller_of(page(agent_client, customer))))

    panel = ok(agent_client.post(reverse("cards:cards-reload", args=[customer.pk])))

    assert panel.startswith('<section class="cc-panel" id="cards-panel"') or (
        'id="cards-panel"' in panel
    )
    assert panel.count('data-card-state="loading"') == 2
    assert len(poller_of(panel)["pending"].split(",")) == 2
    reloaded = ok(poll(agent_client, customer, poller_of(panel)))
    assert "version 2" in card_of(reloaded, "plan") and "version 2" in card_of(reloaded, "orders")
    assert card_api.keys_requested == [["plan", "orders"], ["plan", "orders"]]


def test_reloads_answer_post_only(agent_client, customer):
    plan = CardConfigFactory(key="plan")

    assert (
        agent_client.get(reverse("cards:card-reload", args=[customer.pk, plan.pk])).status_code
        == 405
    )
    assert agent_client.put(reverse("cards:cards-reload", args=[customer.pk])).status_code == 405
    # GET on the reload-all URL is the fragment of a card keyed "reload", if any.
    assert agent_client.get(reverse("cards:cards-reload", args=[customer.pk])).status_code == 404


@loads
def test_a_card_keyed_reload_still_has_a_fragment(agent_client, card_api, customer):
    CardConfigFactory(key="reload", api_url=card_api.url)
    serve_versions(card_api)

    html = ok(agent_client.get(reverse("cards:cards-reload", args=[customer.pk])))

    assert "reload version 1" in html


# --- Errors and staleness -----------------------------------------------------------------


@pytest.fixture
def staff_client(client):
    client.force_login(UserFactory(username="staff", is_staff=True))
    return client


def fail_with_status(card_api, status: int, body: str) -> None:
    card_api.serve_raw(body, status=status)


def load_page(client, customer) -> str:
    """Open the page and follow its poller until no card is loading; the last answer."""
    answer = page(client, customer)
    while poller_of(answer).get("pending"):
        answer = ok(poll(client, customer, poller_of(answer)))
    return answer


@loads
def test_agents_see_a_short_reason_without_the_detail(agent_client, card_api, customer):
    CardConfigFactory(key="plan", title="Plan", api_url=card_api.url)
    fail_with_status(card_api, 404, '{"error": "<b>no such customer</b>"}')

    html = card_of(load_page(agent_client, customer), "plan")

    assert 'data-card-state="error"' in html and "Plan" in html
    assert AGENT_REASONS[Kind.STATUS_CODE] in html
    assert "STATUS_CODE" not in html and "no such customer" not in html


@loads
def test_staff_also_see_the_error_kind_and_detail_escaped(
    staff_client, card_api, customer, settings
):
    settings.CARDS_PAGE_RECHECK_SECONDS = 3600  # the next ask at the error's expiry
    CardConfigFactory(key="plan", api_url=card_api.url)
    fail_with_status(card_api, 404, '{"error": "<b>no such customer</b>"}')

    answer = load_page(staff_client, customer)
    html = card_of(answer, "plan")

    assert AGENT_REASONS[Kind.STATUS_CODE] in html
    assert "<code>STATUS_CODE</code>" in html and "<code>404</code>" in html
    assert "only 200 is processed" in html
    assert "&lt;b&gt;no such customer&lt;/b&gt;" in html and "<b>no such" not in html
    # A cached integration error is asked again when its 5 minutes are over (give or take
    # the second the store and the answer's clock reading may straddle on a busy machine).
    assert poller_of(answer)["trigger"] in {
        f"load delay:{seconds}s, card-retry" for seconds in (299, 300, 301)
    }


@loads
def test_cached_card_html_is_never_shared_between_staff_and_agents(
    staff_client, agent, card_api, customer
):
    CardConfigFactory(key="plan", api_url=card_api.url)
    fail_with_status(card_api, 404, '{"error": "no such customer"}')
    assert "<code>STATUS_CODE</code>" in card_of(load_page(staff_client, customer), "plan")
    agent_client = Client()
    agent_client.force_login(agent)

    html = card_of(page(agent_client, customer), "plan")

    assert AGENT_REASONS[Kind.STATUS_CODE] in html and "STATUS_CODE" not in html


@loads
def test_staff_see_the_json_path_of_a_schema_error(staff_client, card_api, customer):
    CardConfigFactory(key="plan", api_url=card_api.url)
    card_api.serve({"plan": card("plan", [{"componentBadge": {"badgeLabel": 7}}])})

    html = card_of(load_page(staff_client, customer), "plan")

    assert AGENT_REASONS[Kind.RESPONSE_BODY] in html
    assert "cards[0].components[0].componentBadge.badgeLabel" in html


@pytest.mark.parametrize("kind", list(Kind))
def test_every_error_kind_has_a_human_reason(agent_client, customer, kind):
    config = CardConfigFactory(key="plan")
    now = timezone.now()
    CardInstanceFactory(
        customer=customer,
        config=config,
        state=State.ERROR,
        error_kind=kind,
        error_detail={"message": "secret detail"},
        errored_at=now,
        expires_at=now + timedelta(minutes=5),
    )

    html = page(agent_client, customer)

    assert AGENT_REASONS[kind] in html and "secret detail" not in html


@loads
def test_a_retriable_failure_keeps_the_last_good_data_with_its_age_and_a_try_again(
    agent_client, card_api, customer
):
    CardConfigFactory(key="plan", api_url=card_api.url)
    serve_versions(card_api)
    first = load_page(agent_client, customer)
    fail_with_status(card_api, 503, "down for maintenance")

    reloading = ok(reload(agent_client, customer, "plan", poller_of(first)))
    answer = ok(poll(agent_client, customer, poller_of(reloading)))

    failed = card_of(answer, "plan")
    assert 'data-card-state="error"' in failed and AGENT_REASONS[Kind.STATUS_CODE] in failed
    # The last good data stays, with its age and a next step.
    assert "plan version 1" in failed and "Showing data loaded <time" in failed
    assert "Try again" in failed and 'role="alert"' not in failed
    # Not cached: asked again after a pause, not in a tight loop.
    assert poller_of(answer)["trigger"] == f"load delay:{RETRY_AFTER_SECONDS}s, card-retry"
    started = time.monotonic()
    quiet = ok(poll(agent_client, customer, poller_of(answer)))
    assert time.monotonic() - started < 1 and card_of(quiet, "plan") == ""
    assert len(card_api.requests) == 1 + 2  # the first load, then the reload and its retry


# --- Cached rendering -----------------------------------------------------------------------


def test_a_page_of_cached_cards_renders_no_card_template(agent_client, customer):
    now = timezone.now()
    for n in range(3):
        CardInstanceFactory(
            customer=customer,
            config=CardConfigFactory(),
            state=State.LOADED,
            components=text(f"**card {n}**"),
            loaded_at=now,
            expires_at=now + timedelta(minutes=5),
        )
    url = reverse("customers:detail", args=[customer.pk])
    first = agent_client.get(url)
    assert "cards/card.html" in [t.name for t in first.templates]

    second = agent_client.get(url)

    rendered = [t.name for t in second.templates]
    assert "cards/card.html" not in rendered and not any("components/" in t for t in rendered)
    assert panel_of(second) == panel_of(first)


def panel_of(response) -> str:
    html = response.content.decode()
    return html[html.index('<div class="cc-panel__cards">') : html.index('id="cards-poller"')]


def test_card_html_never_depends_on_the_clock(agent_client, customer):
    at = timezone.now() - timedelta(minutes=5)
    CardInstanceFactory(
        customer=customer,
        config=CardConfigFactory(key="plan"),
        state=State.LOADED,
        components=text("x"),
        loaded_at=at,
        expires_at=at + timedelta(hours=1),
    )

    html = card_of(page(agent_client, customer), "plan")

    # The browser writes "5 minutes ago" (static/app.js); the server gives the moment.
    assert f'<time datetime="{at.isoformat()}"' in html and "data-relative" in html
    assert "ago" not in html and "since=" not in html


def test_card_html_is_cached_by_the_stored_version(agent_client, customer):
    now = timezone.now()
    instance = CardInstanceFactory(
        customer=customer,
        config=CardConfigFactory(key="plan"),
        state=State.LOADED,
        components=text("first answer"),
        loaded_at=now,
        expires_at=now + timedelta(minutes=5),
    )
    assert "first answer" in page(agent_client, customer)

    instance.components = text("second answer")
    instance.save()  # as a store does, this moves updated_at

    html = html_lib.unescape(page(agent_client, customer))
    assert "second answer" in html and "first answer" not in html


# --- Live loading unavailable -------------------------------------------------------------


@pytest.fixture
def broker_down(settings):
    """A broker that refuses connections (nothing listens on the discard port)."""
    settings.REDIS_URL = "redis://127.0.0.1:9/0"


@loads
def test_without_a_broker_the_page_shows_cached_cards_and_no_endless_spinner(
    agent_client, customer, broker_down
):
    plan = CardConfigFactory(key="plan", title="Plan")
    CardConfigFactory(key="orders", title="Orders")
    at = timezone.now() - timedelta(minutes=10)
    CardInstanceFactory(
        customer=customer,
        config=plan,
        state=State.LOADED,
        components=text("old plan"),
        loaded_at=at,
        expires_at=at,
    )

    html = page(agent_client, customer)

    assert UNAVAILABLE_NOTICE in html
    assert "old plan" in html and "stale · loaded" in html
    assert 'data-card-state="loading"' not in html and "cc-spinner" not in html
    assert set(re.findall(r'hx-trigger="([^"]*)"', html)) == {
        f"load delay:{RETRY_AFTER_SECONDS}s, card-retry"
    }


@loads
def test_without_a_broker_the_poller_answers_at_once_and_asks_again_later(
    agent_client, customer, broker_down
):
    orders = CardConfigFactory(key="orders", title="Orders")

    started = time.monotonic()
    answer = ok(poll(agent_client, customer, {"cards": shown(orders), "pending": ids(orders)}))

    assert time.monotonic() - started < 5
    assert "Live loading is unavailable right now." in card_of(answer, "orders")
    assert "cc-spinner" not in answer
    assert poller_of(answer)["trigger"] == f"load delay:{RETRY_AFTER_SECONDS}s, card-retry"


@loads
def test_without_a_broker_a_fragment_answers_at_once(agent_client, customer, broker_down):
    CardConfigFactory(key="orders", title="Orders")

    started = time.monotonic()
    html = ok(fragment(agent_client, customer, "orders"))

    assert time.monotonic() - started < 5
    assert "Live loading is unavailable right now." in html and "cc-spinner" not in html


def test_card_answers_carry_the_content_security_policy(agent_client, customer):
    config = CardConfigFactory(key="plan")
    now = timezone.now()
    CardInstanceFactory(
        customer=customer,
        config=config,
        state=State.LOADED,
        components=[],
        loaded_at=now,
        expires_at=now + timedelta(minutes=5),
    )

    for response in (
        fragment(agent_client, customer, "plan"),
        poll(agent_client, customer, {"cards": shown(config), "pending": ids(config)}),
    ):
        assert "script-src 'self'" in response["Content-Security-Policy"]
