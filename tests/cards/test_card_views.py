"""Card fragments, reload and reload-all against a real card API on loopback (SPEC §6-§8).

Loads run on the in-process pool, whose threads use their own database connections, so
tests that load are transactional.
"""

import json
import re
import threading
import time
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from werkzeug import Request, Response

from cards.models import CardInstance
from cards.views import AGENT_REASONS, RETRY_AFTER_SECONDS, UNAVAILABLE_NOTICE
from cards.waiting import START_GRACE_SECONDS
from tests.cards.cardapi import card
from tests.factories import CardConfigFactory, CardInstanceFactory, CustomerFactory, UserFactory

State = CardInstance.State
Kind = CardInstance.ErrorKind
loads = pytest.mark.django_db(transaction=True)


@pytest.fixture
def customer(db):
    return CustomerFactory(email="alex@example.com")


def text(value: str) -> list[dict]:
    return [{"componentText": {"text": value}}]


def serve_versions(card_api, *, ttl: int | None = None, delay: float = 0.0) -> None:
    """Every answer carries a version number, so a reload shows different content."""
    counter = {"n": 0}
    lock = threading.Lock()

    def handler(request: Request, body: dict) -> Response:
        time.sleep(delay)
        with lock:
            counter["n"] += 1
            n = counter["n"]
        cards = [card(key, text(f"{key} version {n}"), ttl=ttl) for key in body["cardKeys"]]
        return Response(json.dumps({"cards": cards}), content_type="application/json")

    card_api.serve_handler(handler)


def page(client, customer) -> str:
    response = client.get(reverse("customers:detail", args=[customer.pk]))
    assert response.status_code == 200
    return response.content.decode()


def since_of(html: str, key: str) -> dict:
    """The query of the card's next request, as the partial says it."""
    match = re.search(rf"/cards/{key}/\?since=(\d+)(&amp;started=1)?", html)
    return {"since": match.group(1), **({"started": "1"} if match.group(2) else {})}


def fragment(client, customer, key, query=None, **headers):
    return client.get(reverse("cards:card", args=[customer.pk, key]), query or {}, **headers)


def card_html(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def trigger_of(html: str) -> str:
    return re.search(r'hx-trigger="([^"]*)"', html).group(1)


# --- Loading ----------------------------------------------------------------------------


@loads
def test_the_fragment_long_polls_until_the_load_the_page_started_is_stored(
    agent_client, card_api, customer
):
    CardConfigFactory(key="plan", title="Plan", api_url=card_api.url)
    serve_versions(card_api, delay=0.3)

    html = page(agent_client, customer)
    assert 'data-card-state="loading"' in html
    loaded = card_html(fragment(agent_client, customer, "plan", since_of(html, "plan")))

    assert 'data-card-state="loaded"' in loaded and "plan version 1" in loaded
    assert "loaded <time" in loaded and "stale" not in loaded
    assert trigger_of(loaded) in {"load delay:300s, card-retry", "load delay:299s, card-retry"}
    assert card_api.keys_requested == [["plan"]]  # the fragment did not load it twice


@loads
def test_a_fragment_alone_starts_the_load_its_card_needs(agent_client, card_api, customer):
    CardConfigFactory(key="plan", api_url=card_api.url)
    serve_versions(card_api)

    loaded = card_html(fragment(agent_client, customer, "plan"))

    assert "plan version 1" in loaded
    assert card_api.keys_requested == [["plan"]]


@loads
def test_a_fragment_starts_the_load_its_page_promised_when_nobody_claims_it(
    agent_client, card_api, customer
):
    CardConfigFactory(key="plan", api_url=card_api.url)
    serve_versions(card_api)
    # As if a page had just started the load, and its task were lost.
    query = {"since": str(int(time.time() * 1000)), "started": "1"}

    started = time.monotonic()
    loaded = card_html(fragment(agent_client, customer, "plan", query))

    assert "plan version 1" in loaded
    assert time.monotonic() - started >= START_GRACE_SECONDS  # the page's task had its chance
    assert card_api.keys_requested == [["plan"]]


@loads
def test_a_loaded_card_asks_again_at_expiry_and_gets_the_new_answer(
    agent_client, card_api, customer
):
    CardConfigFactory(key="plan", api_url=card_api.url)
    serve_versions(card_api, ttl=2)
    first = card_html(fragment(agent_client, customer, "plan"))
    assert trigger_of(first) == "load delay:2s, card-retry"

    time.sleep(2.05)
    second = card_html(fragment(agent_client, customer, "plan", since_of(first, "plan")))

    assert "plan version 2" in second
    assert card_api.keys_requested == [["plan"], ["plan"]]


@loads
def test_a_card_still_loading_when_the_wait_ends_asks_again_soon(agent_client, customer, settings):
    settings.CARDS_WAIT_SECONDS = 0.2
    config = CardConfigFactory(key="plan")
    CardInstanceFactory(
        customer=customer,
        config=config,
        state=State.LOADING,
        claimed_at=timezone.now(),
        claim_token="someone-else",
    )

    html = card_html(
        fragment(agent_client, customer, "plan", {"since": "1700000000000", "started": "1"})
    )

    assert 'data-card-state="loading"' in html and "cc-skeleton" in html
    assert trigger_of(html) == "load delay:1s, card-retry"
    assert "?since=1700000000000&amp;started=1" in html  # still waiting for the same load


@loads
def test_a_fresh_card_answers_at_once_without_a_request(agent_client, card_api, customer):
    config = CardConfigFactory(key="plan", api_url=card_api.url)
    now = timezone.now()
    CardInstanceFactory(
        customer=customer,
        config=config,
        state=State.LOADED,
        components=text("cached"),
        loaded_at=now,
        expires_at=now + timedelta(minutes=5),
    )
    serve_versions(card_api)

    started = time.monotonic()
    html = card_html(fragment(agent_client, customer, "plan", {"since": "9999999999999"}))

    assert "cached" in html and time.monotonic() - started < 1
    assert card_api.requests == []


@loads
def test_null_cards_render_a_hidden_placeholder_that_still_reloads(
    agent_client, card_api, customer
):
    CardConfigFactory(key="nothing", title="Null card", api_url=card_api.url)
    CardConfigFactory(key="empty", title="Empty card", api_url=card_api.url)
    card_api.serve({"nothing": card("nothing", None, ttl=60), "empty": card("empty", [])})

    hidden = card_html(fragment(agent_client, customer, "nothing"))
    empty = card_html(fragment(agent_client, customer, "empty"))

    assert 'data-card-state="hidden" hidden' in hidden and "Null card" not in hidden
    assert trigger_of(hidden) in {"load delay:60s, card-retry", "load delay:59s, card-retry"}
    assert "Empty card" in empty and "Nothing to show" in empty


def test_fragments_of_unknown_or_disabled_cards_are_404(agent_client, customer):
    CardConfigFactory(key="off", is_enabled=False)

    assert fragment(agent_client, customer, "nope").status_code == 404
    assert fragment(agent_client, customer, "off").status_code == 404


def test_a_card_disabled_while_its_page_is_open_is_removed_from_the_page(agent_client, customer):
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


@loads
def test_reload_needs_csrf_and_asks_the_api_for_that_key_alone(csrf_client, card_api, customer):
    for key in ("plan", "orders"):  # same API: batched on the first load
        CardConfigFactory(key=key, title=key.title(), api_url=card_api.url)
    serve_versions(card_api)
    html = page(csrf_client, customer)
    card_html(fragment(csrf_client, customer, "plan", since_of(html, "plan")))
    card_html(fragment(csrf_client, customer, "orders", since_of(html, "orders")))
    assert card_api.keys_requested == [["plan", "orders"]]
    url = reverse("cards:card-reload", args=[customer.pk, "orders"])

    assert csrf_client.post(url).status_code == 403
    reloading = card_html(csrf_client.post(url, HTTP_X_CSRFTOKEN=csrf_token(html)))

    assert 'data-card-state="loading"' in reloading and "cc-card--stale" in reloading
    assert "orders version 1" in reloading and "stale · loaded" in reloading
    assert trigger_of(reloading) == "load, card-retry"
    reloaded = card_html(fragment(csrf_client, customer, "orders", since_of(reloading, "orders")))
    assert "orders version 2" in reloaded and "stale" not in reloaded
    assert card_api.keys_requested == [["plan", "orders"], ["orders"]]


@loads
def test_reload_bypasses_a_cached_error(agent_client, card_api, customer):
    CardConfigFactory(key="plan", api_url=card_api.url)
    card_api.serve({})  # MISSING_CARD: cached for 5 minutes
    assert AGENT_REASONS[Kind.MISSING_CARD] in card_html(fragment(agent_client, customer, "plan"))
    serve_versions(card_api)

    reloading = card_html(
        agent_client.post(reverse("cards:card-reload", args=[customer.pk, "plan"]))
    )
    reloaded = card_html(fragment(agent_client, customer, "plan", since_of(reloading, "plan")))

    assert "plan version 1" in reloaded
    assert len(card_api.requests) == 2


@loads
def test_reload_all_reloads_every_card_and_answers_the_panel(agent_client, card_api, customer):
    for key in ("plan", "orders"):
        CardConfigFactory(key=key, api_url=card_api.url)
    serve_versions(card_api)
    html = page(agent_client, customer)
    for key in ("plan", "orders"):
        card_html(fragment(agent_client, customer, key, since_of(html, key)))

    panel = card_html(agent_client.post(reverse("cards:cards-reload", args=[customer.pk])))

    assert panel.startswith('<section class="cc-panel" id="cards-panel"') or (
        'id="cards-panel"' in panel
    )
    assert panel.count('data-card-state="loading"') == 2
    reloaded = card_html(fragment(agent_client, customer, "plan", since_of(panel, "plan")))
    assert "version 2" in reloaded
    assert card_api.keys_requested == [["plan", "orders"], ["plan", "orders"]]


def test_reloads_answer_post_only(agent_client, customer):
    CardConfigFactory(key="plan")

    assert (
        agent_client.get(reverse("cards:card-reload", args=[customer.pk, "plan"])).status_code
        == 405
    )
    assert agent_client.put(reverse("cards:cards-reload", args=[customer.pk])).status_code == 405
    # GET on the reload-all URL is the fragment of a card keyed "reload", if any.
    assert agent_client.get(reverse("cards:cards-reload", args=[customer.pk])).status_code == 404


@loads
def test_a_card_keyed_reload_still_has_a_fragment(agent_client, card_api, customer):
    CardConfigFactory(key="reload", api_url=card_api.url)
    serve_versions(card_api)

    html = card_html(agent_client.get(reverse("cards:cards-reload", args=[customer.pk])))

    assert "reload version 1" in html


# --- Errors and staleness -----------------------------------------------------------------


@pytest.fixture
def staff_client(client):
    client.force_login(UserFactory(username="staff", is_staff=True))
    return client


def fail_with_status(card_api, status: int, body: str) -> None:
    card_api.serve_raw(body, status=status)


@loads
def test_agents_see_a_short_reason_without_the_detail(agent_client, card_api, customer):
    CardConfigFactory(key="plan", title="Plan", api_url=card_api.url)
    fail_with_status(card_api, 404, '{"error": "<b>no such customer</b>"}')

    html = card_html(fragment(agent_client, customer, "plan"))

    assert 'data-card-state="error"' in html and "Plan" in html
    assert AGENT_REASONS[Kind.STATUS_CODE] in html
    assert "STATUS_CODE" not in html and "no such customer" not in html


@loads
def test_staff_also_see_the_error_kind_and_detail_escaped(staff_client, card_api, customer):
    CardConfigFactory(key="plan", api_url=card_api.url)
    fail_with_status(card_api, 404, '{"error": "<b>no such customer</b>"}')

    html = card_html(fragment(staff_client, customer, "plan"))

    assert AGENT_REASONS[Kind.STATUS_CODE] in html
    assert "<code>STATUS_CODE</code>" in html and "<code>404</code>" in html
    assert "only 200 is processed" in html
    assert "&lt;b&gt;no such customer&lt;/b&gt;" in html and "<b>no such" not in html
    # A cached integration error asks again when its 5 minutes are over.
    assert trigger_of(html) in {"load delay:300s, card-retry", "load delay:299s, card-retry"}


@loads
def test_staff_see_the_json_path_of_a_schema_error(staff_client, card_api, customer):
    CardConfigFactory(key="plan", api_url=card_api.url)
    card_api.serve({"plan": card("plan", [{"componentBadge": {"badgeLabel": 7}}])})

    html = card_html(fragment(staff_client, customer, "plan"))

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
def test_a_retriable_failure_keeps_the_last_good_data_marked_stale(
    agent_client, card_api, customer
):
    CardConfigFactory(key="plan", api_url=card_api.url)
    serve_versions(card_api)
    card_html(fragment(agent_client, customer, "plan"))
    fail_with_status(card_api, 503, "down for maintenance")

    reloading = card_html(
        agent_client.post(reverse("cards:card-reload", args=[customer.pk, "plan"]))
    )
    failed = card_html(fragment(agent_client, customer, "plan", since_of(reloading, "plan")))

    assert 'data-card-state="error"' in failed and AGENT_REASONS[Kind.STATUS_CODE] in failed
    assert "plan version 1" in failed and "stale · loaded" in failed
    # Not cached: asked again after a pause, not in a tight loop.
    assert trigger_of(failed) == f"load delay:{RETRY_AFTER_SECONDS}s, card-retry"


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
def test_without_a_broker_a_fragment_answers_at_once(agent_client, customer, broker_down):
    CardConfigFactory(key="orders", title="Orders")

    started = time.monotonic()
    html = card_html(fragment(agent_client, customer, "orders"))

    assert time.monotonic() - started < 5
    assert "Live loading is unavailable right now." in html and "cc-spinner" not in html


def test_card_fragments_carry_the_content_security_policy(agent_client, customer):
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

    response = fragment(agent_client, customer, "plan")

    assert "script-src 'self'" in response["Content-Security-Policy"]
