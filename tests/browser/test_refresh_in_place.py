"""Refreshes morph cards in place (issue 15): focus, a text selection and the scroll
position survive an automatic refresh, a reload and "Reload all"; a card with no news is
not touched; a lost connection says so and retries. Real card APIs on loopback."""

import re
import threading

import pytest
from playwright.sync_api import expect

from tests.browser.support import TIMEOUT_MS, VersionedApi
from tests.factories import CardConfigFactory, CustomerFactory

pytestmark = pytest.mark.browser

STABLE = "Words that stay the same"


def versioned(key):
    """A card whose first line never changes and whose second counts its loads."""
    return lambda n: [
        {"componentText": {"text": STABLE}},
        {"componentText": {"text": f"{key} version {n}"}},
    ]


SELECT_STABLE_JS = """key => {
  const text = [...document.querySelectorAll(`[data-card-key="${key}"] .cc-text`)]
    .find(e => e.textContent.includes("Words that stay"));
  const range = document.createRange();
  range.selectNodeContents(text.firstChild.nodeType === 3 ? text : text.firstChild);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
  return selection.toString();
}"""

# Every change made inside a card from now on, kept in window.__mutations[key]; but the
# clock's ("loaded 2 seconds ago" becoming "3 seconds ago"), which is not a refresh. An
# attribute's record names it ("attributes SECTION class").
WATCH_JS = """key => {
  window.__mutations = window.__mutations || {};
  window.__mutations[key] = [];
  const card = document.querySelector(`.cc-card[data-card-key="${key}"]`);
  const clock = node => (node.nodeType === 1 ? node : node.parentElement).closest("time");
  new MutationObserver(records => window.__mutations[key].push(
    ...records.filter(r => !clock(r.target))
      .map(r => [r.type, r.target.nodeName, r.attributeName].filter(Boolean).join(" "))))
    .observe(card, {subtree: true, childList: true, attributes: true, characterData: true});
}"""


def open_cards(login, card_api, *, ttl, gate=None):
    customer = CustomerFactory()
    keys = ["plan", "orders", "notes", "extra"]
    for order, key in enumerate(keys):
        CardConfigFactory(key=key, title=key.title(), api_url=card_api.url, order=order)
    api = VersionedApi(card_api, ttl=ttl, extra={key: versioned(key) for key in keys}, gate=gate)
    # Short enough that the page scrolls.
    session = login(viewport={"width": 1280, "height": 420})
    session.open(f"/customers/{customer.pk}/")
    expect(session.page.locator('[data-card-state="loading"]')).to_have_count(0, timeout=TIMEOUT_MS)
    # htmx takes its classes off a swapped card a moment after the swap (settleDelay):
    # watching starts once the last one has settled, or that would count as a change.
    settling = "#cards-panel :is(.htmx-settling, .htmx-swapping, .htmx-added)"
    expect(session.page.locator(settling)).to_have_count(0, timeout=TIMEOUT_MS)
    return session, api


def selection(page) -> str:
    return page.evaluate("window.getSelection().toString()")


def test_focus_a_selection_and_the_scroll_survive_an_automatic_refresh(login, card_api):
    session, _ = open_cards(login, card_api, ttl={"plan": 2})
    page = session.page
    plan = page.locator("[data-card-key='plan']")
    page.locator("[data-card-key='plan'] .cc-card__reload").focus()
    page.evaluate("window.scrollTo(0, 120)")
    scrolled = page.evaluate("window.scrollY")
    assert scrolled > 0
    assert page.evaluate(SELECT_STABLE_JS, "plan") == STABLE
    page.evaluate(WATCH_JS, "orders")

    # timeToLiveSeconds 2: the page reloads the card by itself, twice.
    expect(plan).to_contain_text("plan version 3", timeout=TIMEOUT_MS)

    expect(page.locator(":focus")).to_have_class(re.compile("cc-card__reload"))
    expect(page.locator(":focus")).to_have_attribute("aria-label", re.compile("Reload"))
    assert page.evaluate("document.activeElement.closest('.cc-card').dataset.cardKey") == "plan"
    assert selection(page) == STABLE
    assert page.evaluate("window.scrollY") == scrolled
    # The card with no news was not touched at all.
    assert page.evaluate("window.__mutations.orders") == []
    assert session.errors == []


def test_focus_stays_on_a_reload_button_and_selections_survive_reload_all(login, card_api):
    session, api = open_cards(login, card_api, ttl={})
    page = session.page
    reload = page.locator("[data-card-key='orders'] .cc-card__reload")
    page.evaluate(WATCH_JS, "plan")

    reload.focus()
    page.keyboard.press("Enter")
    expect(page.locator("[data-card-key='orders']")).to_contain_text(
        "orders version 2", timeout=TIMEOUT_MS
    )
    expect(page.locator("[data-card-key='orders']")).to_have_attribute("data-card-state", "loaded")
    expect(page.locator(":focus")).to_have_class(re.compile("cc-card__reload"))
    expect(page.locator(":focus")).to_have_attribute("aria-label", re.compile("Reload"))
    assert page.evaluate("document.activeElement.closest('.cc-card').dataset.cardKey") == "orders"
    assert page.evaluate("window.__mutations.plan") == []  # another card's reload

    # Reload all: every card is redrawn in place, so the focused button and a selection
    # inside a card stay.
    assert page.evaluate(SELECT_STABLE_JS, "notes") == STABLE
    page.locator("#cards-reload-all").focus()
    page.keyboard.press("Enter")
    for key in ("plan", "orders", "notes", "extra"):
        expect(page.locator(f"[data-card-key='{key}']")).to_contain_text(
            f"{key} version 3", timeout=TIMEOUT_MS
        )
    expect(page.locator('[data-card-state="loading"]')).to_have_count(0)
    expect(page.locator(":focus")).to_have_id("cards-reload-all")
    assert selection(page) == STABLE
    assert session.errors == []


def test_reloading_keeps_the_data_readable_and_says_so_without_calling_it_stale(login, card_api):
    gate = threading.Event()
    gate.set()
    session, _ = open_cards(login, card_api, ttl={}, gate=gate)
    page = session.page
    orders = page.locator("[data-card-key='orders']")
    try:
        gate.clear()
        page.locator("[data-card-key='orders'] .cc-card__reload").click()
        expect(orders).to_have_class("cc-card cc-card--loading cc-card--reloading")
        expect(orders.locator(".cc-card__status")).to_have_text("Reloading")
        expect(orders).not_to_contain_text("stale")
        # Full contrast: nothing is faded.
        assert orders.locator(".cc-components").evaluate("e => getComputedStyle(e).opacity") == "1"
    finally:
        gate.set()
    expect(orders).to_contain_text("orders version 2", timeout=TIMEOUT_MS)
    expect(page.locator("#app-live")).to_contain_text("Orders loaded.", timeout=TIMEOUT_MS)
    assert session.errors == []


def test_a_lost_connection_is_shown_with_a_countdown_and_retried(login, card_api):
    gate = threading.Event()
    gate.set()
    session, _ = open_cards(login, card_api, ttl={}, gate=gate)
    page = session.page
    notice = page.locator("#cards-connection")
    page.route("**/card-updates/**", lambda route: route.abort())

    page.get_by_role("button", name="Reload all").click()

    expect(notice).to_be_visible(timeout=TIMEOUT_MS)
    expect(notice).to_contain_text("Connection lost, retrying in")
    expect(page.locator("#app-live")).to_contain_text("Connection lost.")
    expect(page.locator("#cards-panel")).to_have_class("cc-panel cc-panel--offline")

    page.unroute("**/card-updates/**")
    notice.get_by_role("button", name="Retry now").click()
    expect(notice).to_be_hidden(timeout=TIMEOUT_MS)
    expect(page.locator('[data-card-state="loading"]')).to_have_count(0, timeout=TIMEOUT_MS)
    expect(page.locator("[data-card-key='plan']")).to_contain_text("plan version 2")


def test_an_error_card_says_how_old_its_data_is_and_tries_again(login, card_api):
    session, api = open_cards(login, card_api, ttl={})
    page = session.page
    notes = page.locator("[data-card-key='notes']")
    api.missing = {"notes"}

    notes.locator(".cc-card__reload").click()

    expect(notes).to_have_attribute("data-card-state", "error", timeout=TIMEOUT_MS)
    expect(notes.locator(".cc-card__shown")).to_contain_text("Showing data loaded")
    expect(notes).to_contain_text("notes version 1")
    expect(page.locator("#app-live")).to_contain_text("Notes could not be loaded.")
    assert page.locator('[role="alert"]').count() == 0

    api.missing = set()
    notes.get_by_role("button", name="Try again").focus()
    page.keyboard.press("Enter")
    expect(notes).to_contain_text("notes version 3", timeout=TIMEOUT_MS)
    # The "Try again" button went away with the error: focus went to the card's reload.
    expect(page.locator(":focus")).to_have_class(re.compile("cc-card__reload"))
    expect(page.locator(":focus")).to_have_attribute("aria-label", re.compile("Reload"))
    assert page.evaluate("document.activeElement.closest('.cc-card').dataset.cardKey") == "notes"
    assert session.errors == []
