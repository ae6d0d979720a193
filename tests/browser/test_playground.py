"""Integrator tools in a real browser (issue 6): the playground as you type, the preview.

Also writes playground.png and preview.png (docs/integrator-tools.md) to the screenshots
folder (tests/browser/support.py: test-results/ unless `make screenshots`).
"""

import json

import pytest
from django.contrib.auth.models import Permission
from playwright.sync_api import expect

from cards.integrator.example_api import example_cards
from cards.models import CardInstance, CardRequest
from tests.browser.support import TIMEOUT_MS, screenshot_path
from tests.factories import CardConfigFactory, CardConfigHeaderFactory, UserFactory

pytestmark = pytest.mark.browser

BADGE_PATH = "components[0].componentRow.rowAsideContent[0].componentBadge.badgeColor"
# Typed key by key; the bad colour sits on line 5.
TYPED = """[
  {"componentRow": {
    "rowMainContent": [{"componentText": {"text": "**Pro** plan"}}],
    "rowAsideContent": [
      {"componentBadge": {"badgeLabel": "Active", "badgeColor": "PINK"}}
    ]
  }}
]"""


def staff_user():
    return UserFactory(username="browser-admin", is_staff=True, is_superuser=True)


def example_response() -> dict:
    payload = {
        "cardKeys": ["subscription", "usage"],
        "customer": {"id": "c_sample", "email": "alex@example.com", "externalId": "u_123"},
    }
    return example_cards(payload=payload)


def break_first(node, field: str, value) -> bool:
    """Set `field` to `value` in the first object holding it, depth first."""
    if isinstance(node, dict):
        if field in node:
            node[field] = value
            return True
        return any(break_first(child, field, value) for child in node.values())
    if isinstance(node, list):
        return any(break_first(child, field, value) for child in node)
    return False


def test_the_playground_renders_as_you_type_and_shows_errors_at_their_path(login):
    session = login(user=staff_user())
    page = session.page
    session.open("/playground/")
    editor = page.locator("#ci-document")
    rendered = page.locator("#ci-rendered")
    # It opens on an example card, already rendered.
    expect(rendered.locator('.cc-card[data-card-state="loaded"]')).to_have_count(
        1, timeout=TIMEOUT_MS
    )

    editor.fill("")
    editor.press_sequentially('[{"componentText": {"text": "Hello **agent**"}}]', delay=5)

    expect(rendered.locator(".cc-text strong")).to_have_text("agent", timeout=TIMEOUT_MS)
    expect(page.locator("#ci-summary")).to_have_text("Valid: 1 component")

    editor.fill("")
    editor.press_sequentially(TYPED, delay=2)

    problem = page.locator(f'#ci-problems li[data-path="{BADGE_PATH}"]')
    expect(problem).to_have_count(1, timeout=TIMEOUT_MS)
    expect(problem).to_have_attribute("data-line", "5")
    expect(problem).to_contain_text('expected one of GREY, GREEN, YELLOW, RED, BLUE, got "PINK"')
    expect(page.locator('#ci-marks .ci-mark[data-line="5"]')).to_have_count(1)
    expect(rendered.locator('.cc-card[data-card-state="error"]')).to_have_count(1)

    problem.locator("button").click()
    selected = editor.evaluate("e => e.value.slice(e.selectionStart, e.selectionEnd)")
    assert '"badgeColor": "PINK"' in selected

    # Fixing it re-renders without a reload.
    editor.evaluate(
        "e => { e.setSelectionRange(e.value.indexOf('PINK'), e.value.indexOf('PINK') + 4); }"
    )
    page.keyboard.type("BLUE")
    expect(rendered.locator(".cc-badge--BLUE")).to_have_text("Active", timeout=TIMEOUT_MS)
    expect(page.locator("#ci-problems li")).to_have_count(0)
    assert session.errors == []


def test_a_link_reproduces_the_document(login):
    session = login(user=staff_user())
    page = session.page
    session.open("/playground/")
    document = '[{"componentBadge": {"badgeLabel": "Zoë ✓", "badgeColor": "GREEN"}}]'
    page.locator("#ci-document").fill(document)

    page.get_by_role("button", name="Link to this").click()

    link = page.evaluate("location.href")
    assert "#doc=" in link
    other = session.page.context.new_page()
    other.goto(link)
    expect(other.locator("#ci-rendered .cc-badge--GREEN")).to_have_text("Zoë ✓", timeout=TIMEOUT_MS)
    assert other.locator("#ci-document").input_value() == document
    assert session.errors == []


def test_the_playground_lists_warnings_of_a_plain_valid_document(login):
    session = login(user=staff_user())
    page = session.page
    session.open("/playground/")
    document = json.dumps(
        [
            {"componentText": {"text": "Plan"}},
            {"componentLinkButton": {"linkButtonLabel": "Run", "linkButtonUrl": "javascript:x"}},
        ],
        indent=2,
    )
    page.locator("#ci-document").fill(document)

    path = "components[1].componentLinkButton.linkButtonUrl"
    warning = page.locator(f'#ci-notes li.ci-warning[data-path="{path}"]')
    expect(warning).to_have_count(1, timeout=TIMEOUT_MS)
    expect(warning).to_contain_text("Warning: a javascript: link is unsafe")
    expect(page.locator("#ci-summary")).to_have_text("Valid: 2 components, with 1 warning")
    expect(page.locator("#ci-rendered .cc-link-button")).to_have_count(0)
    assert session.errors == []


def test_screenshot_of_the_playground(login):
    """playground.png: a response with one broken card."""
    document = example_response()
    assert break_first(document["cards"][1], "badgeColor", "PINK")
    assert break_first(document["cards"][1], "plainTextSize", "XL")
    session = login(user=staff_user())
    page = session.page
    page.set_viewport_size({"width": 1360, "height": 960})
    session.open("/playground/")

    page.locator("#ci-document").fill(json.dumps(document, indent=2, ensure_ascii=False))

    expect(page.locator("#ci-problems li")).to_have_count(2, timeout=TIMEOUT_MS)
    expect(
        page.locator('#ci-rendered [data-card-key="subscription"][data-card-state="loaded"]')
    ).to_have_count(1)
    expect(
        page.locator('#ci-rendered [data-card-key="usage"][data-card-state="error"]')
    ).to_have_count(1)
    first_line = int(page.locator("#ci-problems li").first.get_attribute("data-line"))
    page.locator("#ci-problems li button").first.click()  # scroll the editor to the problem
    expect(page.locator(f'#ci-marks .ci-mark[data-line="{first_line}"]')).to_have_count(1)
    page.locator("#ci-document").blur()
    page.screenshot(path=screenshot_path("playground.png"))
    assert session.errors == []


def test_the_preview_shows_unsaved_values_and_stores_nothing(login, live_server, settings):
    """Also writes preview.png: a signed request to the example API."""
    settings.CARDS_SIGNING_SECRETS = ["whsec_docs_screenshot"]
    config = CardConfigFactory(
        title="Subscription",
        key="subscription",
        api_url=f"{live_server.url}/examples/cards/",
    )
    CardConfigHeaderFactory(
        config=config, name="Authorization", value="Bearer sk_live_51Hx9example"
    )
    # A staff user without the reveal permission: secrets show masked.
    user = UserFactory(username="browser-editor", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="cards",
            codename__in=["view_cardconfig", "change_cardconfig", "add_cardconfig"],
        )
    )
    session = login(user=user)
    page = session.page
    failed: list[str] = []
    page.on("response", lambda response: response.status >= 400 and failed.append(response.url))
    page.set_viewport_size({"width": 1400, "height": 1000})
    session.open(f"/admin/cards/cardconfig/{config.pk}/change/")

    # An unsaved change: another key of the same API.
    page.locator("#id_key").fill("usage")
    page.locator("#id_title").fill("Usage")
    page.get_by_role("button", name="Preview", exact=True).click()

    result = page.locator("[data-preview-result] .ci-result")
    expect(result).to_have_attribute("data-preview-state", "ok", timeout=TIMEOUT_MS)
    card = result.locator('.ci-agent-view .cc-card[data-card-key="usage"]')
    expect(card.locator(".cc-card__title")).to_have_text("Usage")
    expect(result.locator("[data-preview-request-body]")).to_contain_text('"usage"')
    assert "sk_live" not in result.inner_text()
    assert result.locator("tr.ci-headers__signature code").inner_text().startswith("t=")
    assert CardInstance.objects.count() == 0
    assert CardRequest.objects.count() == 0

    page.get_by_role("button", name="Copy as curl").click()
    expect(result.locator("[data-copy-status]")).to_have_text("Copied.")
    clipboard = page.evaluate("navigator.clipboard.readText()")
    assert clipboard.startswith("curl --request POST") and "sk_live" not in clipboard

    # Back to the saved key for the screenshot.
    page.locator("#id_key").fill("subscription")
    page.locator("#id_title").fill("Subscription")
    page.get_by_role("button", name="Preview", exact=True).click()
    expect(result.locator('.cc-card[data-card-key="subscription"]')).to_have_count(
        1, timeout=TIMEOUT_MS
    )
    panel = page.locator("#ci-preview")
    panel.scroll_into_view_if_needed()
    panel.screenshot(path=screenshot_path("preview.png"))
    config.refresh_from_db()
    assert config.key == "subscription"  # previewing never saves
    # Admin pages link no favicon, so the browser's own /favicon.ico request is a 404.
    assert [url for url in failed if not url.endswith("/favicon.ico")] == []
    assert [e for e in session.errors if not e.startswith("Failed to load resource")] == []
