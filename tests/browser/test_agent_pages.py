"""The agent's customer page in a real browser (SPEC §7, §8; issue 4 acceptance).

Card APIs are real servers: pytest-httpserver on loopback, or the built-in example API
served by the live server itself.
"""

import json
import threading
import time

import pytest
from playwright.sync_api import expect
from werkzeug import Request, Response

from cards.live.display import AGENT_REASONS
from tests.browser.support import TIMEOUT_MS, VersionedApi
from tests.cards.cardapi import card
from tests.factories import CardConfigFactory, CustomerFactory, TenantFactory, UserFactory

pytestmark = pytest.mark.browser


def card_locator(page, key: str, state: str | None = None):
    selector = f'.cc-card[data-card-key="{key}"]'  # ids are the configs' (issue 17)
    if state:
        selector += f'[data-card-state="{state}"]'
    return page.locator(selector)


def wait_for_requests(card_api, predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate(card_api.keys_requested):
        assert time.monotonic() < deadline, card_api.keys_requested
        time.sleep(0.05)


def test_cards_load_from_skeletons_reload_at_expiry_show_errors_and_copy(login, card_api, settings):
    customer = CustomerFactory(full_name="Alex Morgan", email="alex@example.com")
    for order, key in enumerate(["plan", "orders", "broken", "ids"]):
        CardConfigFactory(key=key, title=key.title(), api_url=card_api.url, order=order)
    copy_value = "inv_8F3K2-ü"
    settings.CARDS_REQUEST_TIMEOUT_SECONDS = 10  # the first answer waits for the gate
    gate = threading.Event()
    VersionedApi(
        card_api,
        gate=gate,
        ttl={"plan": 2},
        missing={"broken"},
        extra={"ids": [{"componentCopyButton": {"copyButtonValue": copy_value}}]},
    )
    session = login()
    page = session.page

    session.open(f"/customers/{customer.pk}/")

    # The API holds its answer until the gate opens: every card starts as a skeleton.
    assert page.locator('[data-card-state="loading"] .cc-skeleton').count() == 4
    gate.set()
    card_locator(page, "orders", "loaded").wait_for(timeout=TIMEOUT_MS)
    assert "orders version 1" in card_locator(page, "orders").inner_text()
    assert "loaded" in card_locator(page, "orders").locator(".cc-card__age").inner_text()
    assert card_api.keys_requested[0] == ["plan", "orders", "broken", "ids"]

    # An erroring card keeps its title and says why.
    broken = card_locator(page, "broken", "error")
    broken.wait_for(timeout=TIMEOUT_MS)
    assert "Broken" in broken.inner_text()
    assert AGENT_REASONS["MISSING_CARD"] in broken.inner_text()
    assert "MISSING_CARD" not in broken.inner_text()  # the kind is for staff

    # timeToLiveSeconds: 2 -> the card reloads by itself, asking for its key alone.
    plan = card_locator(page, "plan")
    expect(plan).to_contain_text("plan version 1")
    expect(plan).not_to_contain_text("plan version 1", timeout=TIMEOUT_MS)
    expect(plan).to_contain_text("plan version")
    assert ["plan"] in card_api.keys_requested[1:]
    assert "orders version 1" in card_locator(page, "orders").inner_text()

    # The copy button copies, with feedback.
    button = card_locator(page, "ids").locator(".cc-copy")
    button.click()
    page.locator(".cc-copy.is-copied").wait_for(timeout=TIMEOUT_MS)
    assert page.evaluate("navigator.clipboard.readText()") == copy_value
    card_locator(page, "ids").locator(".cc-copy:not(.is-copied)").wait_for(timeout=TIMEOUT_MS)

    assert session.errors == []


def test_the_reload_buttons_reload_one_card_alone_or_all(login, card_api):
    customer = CustomerFactory()
    for order, key in enumerate(["plan", "orders"]):
        CardConfigFactory(key=key, title=key.title(), api_url=card_api.url, order=order)
    VersionedApi(card_api, delay=0.2)
    session = login()
    page = session.page
    session.open(f"/customers/{customer.pk}/")
    card_locator(page, "orders", "loaded").wait_for(timeout=TIMEOUT_MS)
    assert card_api.keys_requested == [["plan", "orders"]]

    card_locator(page, "orders").locator(".cc-card__reload").click()

    card_locator(page, "orders").get_by_text("orders version 2").wait_for(timeout=TIMEOUT_MS)
    assert card_locator(page, "orders", "loaded").count() == 1
    assert card_api.keys_requested == [["plan", "orders"], ["orders"]]
    assert "plan version 1" in card_locator(page, "plan").inner_text()

    page.get_by_role("button", name="Reload all").click()

    card_locator(page, "plan").get_by_text("plan version 3").wait_for(timeout=TIMEOUT_MS)
    card_locator(page, "orders").get_by_text("orders version 3").wait_for(timeout=TIMEOUT_MS)
    assert card_api.keys_requested[-1] == ["plan", "orders"]
    assert session.errors == []


def test_a_reload_while_another_card_is_loading_loses_neither(login, card_api):
    customer = CustomerFactory()
    CardConfigFactory(key="plan", title="Plan", api_url=card_api.url, order=0)
    CardConfigFactory(key="slow", title="Slow", api_url=card_api.server.url_for("/slow"), order=1)
    VersionedApi(card_api)
    gate = threading.Event()

    def slow_api(request: Request) -> Response:
        gate.wait(timeout=10)
        body = json.dumps({"cards": [card("slow", [{"componentText": {"text": "slow one"}}])]})
        return Response(body, content_type="application/json")

    card_api.server.expect_request("/slow", method="POST").respond_with_handler(slow_api)
    session = login()
    page = session.page
    session.open(f"/customers/{customer.pk}/")
    card_locator(page, "plan", "loaded").wait_for(timeout=TIMEOUT_MS)
    assert card_locator(page, "slow", "loading").count() == 1  # the poller waits for it

    # The reload's answer replaces the page's poller while its long-poll is running.
    card_locator(page, "plan").locator(".cc-card__reload").click()
    card_locator(page, "plan").get_by_text("plan version 2").wait_for(timeout=TIMEOUT_MS)
    gate.set()

    card_locator(page, "slow", "loaded").get_by_text("slow one").wait_for(timeout=TIMEOUT_MS)
    assert card_api.keys_requested == [["plan"], ["plan"]]
    assert page.locator("#cards-poller").count() == 1
    assert session.errors == []


# Each payload sets window.__xss (or opens a dialog) if it ever runs.
XSS_PAYLOADS = [
    "<script>window.__xss=1</script>",
    '<img src=x onerror="window.__xss=1">',
    "<svg onload=window.__xss=1>",
    '"><img src=x onerror=window.__xss=1>',
    "' autofocus onfocus='window.__xss=1' x='",
    '<a href="javascript:window.__xss=1" id=xss>x</a>',
    "[click](javascript:window.__xss=1)",
    "[click](JaVaScRiPt:alert(1))",
    "[click](data:text/html,<script>alert(1)</script>)",
    '<iframe srcdoc="<script>parent.__xss=1</script>"></iframe>',
    "&lt;script&gt;window.__xss=1&lt;/script&gt;",
    "<style>body{display:none}</style>",
    "\u202e<b>evil</b>\u202c",
]


def _hostile_components(payload: str) -> list[dict]:
    return [
        {"componentText": {"text": payload}},
        {"componentPlainText": {"plainText": payload}},
        {"componentBadge": {"badgeLabel": payload}},
        {
            "componentLinkButton": {
                "linkButtonLabel": payload,
                "linkButtonUrl": "https://ok.example/",
            }
        },
        {"componentCopyButton": {"copyButtonValue": payload, "copyButtonTooltipLabel": payload}},
        {
            "componentWorkflowButton": {
                "workflowButtonLabel": payload,
                "workflowButtonWorkflowIdentifier": {"workflowId": payload},
            }
        },
        {
            "componentRow": {
                "rowMainContent": [{"componentText": {"text": payload}}],
                "rowAsideContent": [{"componentBadge": {"badgeLabel": payload}}],
            }
        },
        {
            "componentContainer": {
                "containerContent": [{"componentPlainText": {"plainText": payload}}]
            }
        },
    ]


def test_no_script_runs_from_hostile_card_content(login, card_api):
    tenant = TenantFactory(name=XSS_PAYLOADS[1], external_id=XSS_PAYLOADS[0])
    customer = CustomerFactory(
        full_name=XSS_PAYLOADS[2], external_id=XSS_PAYLOADS[3], tenant=tenant
    )
    extra = {f"xss-{n}": _hostile_components(payload) for n, payload in enumerate(XSS_PAYLOADS)}
    for n, key in enumerate(extra):
        CardConfigFactory(key=key, title=XSS_PAYLOADS[n], api_url=card_api.url, order=n)
    # javascript: link targets fail the schema: the card errors, and staff see the raw body.
    CardConfigFactory(key="links", title="Links", api_url=card_api.url, order=99)
    extra["links"] = [
        {"componentLinkButton": {"linkButtonLabel": "x", "linkButtonUrl": payload}}
        for payload in ("javascript:window.__xss=1", *XSS_PAYLOADS)
    ]
    VersionedApi(card_api, extra=extra)
    # A failing API's raw body is shown to staff in a <pre>.
    CardConfigFactory(key="raw", api_url=card_api.server.url_for("/raw"), order=100)
    card_api.server.expect_request("/raw", method="POST").respond_with_data(
        "".join(XSS_PAYLOADS), status=400, content_type="text/html"
    )
    session = login(UserFactory(username="staff", is_staff=True))
    page = session.page

    session.open(f"/customers/{customer.pk}/")
    expect(page.locator('[data-card-state="loading"]')).to_have_count(0, timeout=TIMEOUT_MS)
    # Give handlers a chance: hover and focus everything that could carry one.
    for element in page.locator(".cc-card button, .cc-card a, .cc-badge, .cc-text").all()[:80]:
        element.dispatch_event("mouseover")
        element.dispatch_event("focus")
    page.keyboard.press("Tab")
    time.sleep(0.3)

    assert card_locator(page, "xss-0", "loaded").count() == 1
    assert card_locator(page, "links", "error").locator(".cc-diagnosis__problems li").count() > 1
    assert "<script>" in card_locator(page, "raw", "error").locator("pre").inner_text()
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.locator("#xss, iframe, img, .cc-card script").count() == 0
    assert session.dialogs == []
    assert session.errors == []
