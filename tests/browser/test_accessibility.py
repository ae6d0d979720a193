"""Accessibility and layout of the agent pages in a real browser (issue 15).

axe-core runs inside Chromium on the directory, the customer page in every state
(loading, loaded, reloading, stale, error, connection lost) and the playground, at 390 and
1,440 px, light and dark: no serious or critical finding. The keyboard reaches and
operates every control, with a focus ring of 3:1 or more, from a skip link on.
"""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from cards.management.commands.seed_demo import demo_seed
from cards.models import CardInstance
from tests.browser.support import (
    FOCUS_RING_JS,
    PHONE,
    TIMEOUT_MS,
    WIDE,
    DemoApi,
    axe_serious,
    no_horizontal_overflow,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.browser

VIEWS = [
    pytest.param(PHONE, "light", id="390-light"),
    pytest.param(PHONE, "dark", id="390-dark"),
    pytest.param(WIDE, "light", id="1440-light"),
    pytest.param(WIDE, "dark", id="1440-dark"),
]
LOADING = '.cc-card[data-card-state="loading"]'


def staff():
    return UserFactory(username="browser-staff", is_staff=True)


def settle(page):
    expect(page.locator(LOADING)).to_have_count(0, timeout=TIMEOUT_MS)


@pytest.mark.parametrize(("viewport", "scheme"), VIEWS)
def test_the_customer_page_has_no_serious_axe_finding_in_any_state(
    login, card_api, settings, viewport, scheme
):
    settings.CARDS_REQUEST_TIMEOUT_SECONDS = 30  # answers wait for the gate
    seed = demo_seed(base_url=card_api.url)
    api = DemoApi(card_api, ttl=3600)
    session = login(staff(), viewport=viewport, color_scheme=scheme)  # staff: diagnoses too
    page = session.page
    url = f"/customers/{seed.first_customer.pk}/"
    findings = {}
    try:
        api.gate.clear()
        session.open(url)
        expect(page.locator(f"{LOADING} .cc-skeleton").first).to_be_visible()
        findings["loading"] = axe_serious(page)

        api.gate.set()
        settle(page)
        findings["loaded"] = axe_serious(page)

        api.gate.clear()
        page.get_by_role("button", name="Reload all").click()
        expect(page.locator(".cc-card--reloading").first).to_be_visible()
        findings["reloading"] = axe_serious(page)
        api.gate.set()
        settle(page)

        CardInstance.objects.update(expires_at=timezone.now() - timedelta(minutes=5))
        api.gate.clear()
        session.open(url)
        expect(page.locator(".cc-card--stale").first).to_be_visible()
        expect(page.locator(".cc-card--stale").first).to_contain_text("stale")
        findings["stale"] = axe_serious(page)
        api.gate.set()
        settle(page)

        api.missing = {"usage", "latest-invoice"}
        page.get_by_role("button", name="Reload all").click()
        expect(page.locator('.cc-card[data-card-state="error"]')).to_have_count(
            2, timeout=TIMEOUT_MS
        )
        findings["error"] = axe_serious(page)

        errors_before_the_cut = list(session.errors)
        page.route("**/card-updates/**", lambda route: route.abort())
        page.get_by_role("button", name="Reload all").click()
        expect(page.locator("#cards-connection")).to_be_visible(timeout=TIMEOUT_MS)
        expect(page.locator("#cards-connection")).to_contain_text("Connection lost, retrying in")
        findings["connection lost"] = axe_serious(page)
    finally:
        api.gate.set()
    assert findings == dict.fromkeys(findings, [])
    assert errors_before_the_cut == []  # after it, htmx logs the failed requests


@pytest.mark.parametrize(("viewport", "scheme"), VIEWS)
def test_the_directory_and_the_playground_have_no_serious_axe_finding(
    login, live_server, viewport, scheme
):
    demo_seed(base_url=f"{live_server.url}/examples/cards/")
    session = login(
        UserFactory(username="browser-admin", is_staff=True, is_superuser=True),
        viewport=viewport,
        color_scheme=scheme,
    )
    page = session.page
    session.open("/customers/")
    expect(page.locator(".directory-row")).to_have_count(12)
    directory = axe_serious(page)
    session.open("/customers/?q=acme")
    expect(page.locator(".directory-row")).to_have_count(3)
    search = axe_serious(page)
    session.open("/playground/")
    expect(page.locator('#ci-rendered .cc-card[data-card-state="loaded"]')).to_have_count(
        1, timeout=TIMEOUT_MS
    )
    playground = axe_serious(page)
    assert (directory, search, playground) == ([], [], [])
    assert session.errors == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_control_is_reached_and_operated_by_keyboard_with_a_visible_focus_ring(
    login, card_api, scheme
):
    seed = demo_seed(base_url=card_api.url)
    DemoApi(card_api, ttl=3600)
    session = login(staff(), viewport=WIDE, color_scheme=scheme)
    page = session.page
    session.open(f"/customers/{seed.first_customer.pk}/")
    settle(page)

    # The first Tab stop is the skip link; it takes focus to the cards.
    page.keyboard.press("Tab")
    expect(page.locator(":focus")).to_have_text("Skip to cards")
    page.keyboard.press("Enter")
    expect(page.locator(":focus")).to_have_id("cards-panel")
    page.keyboard.press("Tab")
    expect(page.locator(":focus")).to_have_text("Reload all")

    # Every visible control, in the order Tab visits them, each with a ring of 3:1 or more.
    controls = page.evaluate(
        """() => {
          const all = document.querySelectorAll(
            "a[href], button:not([disabled]), input:not([type=hidden]), select, textarea, " +
            "[tabindex]:not([tabindex='-1'])");
          let n = 0;
          for (const el of all) {
            const hidden = getComputedStyle(el).visibility === "hidden";
            if (!el.getClientRects().length || hidden) continue;
            el.dataset.kb = String(n++);
          }
          return n;
        }"""
    )
    assert controls > 20
    page.evaluate("document.activeElement.blur(); window.scrollTo(0, 0)")
    reached, weak = set(), []
    for _ in range(controls + 10):
        page.keyboard.press("Tab")
        index = page.evaluate("document.activeElement && document.activeElement.dataset.kb")
        if index is None:
            continue
        if index in reached:
            break
        reached.add(index)
        ring = page.evaluate(FOCUS_RING_JS)
        if ring["width"] < 2 or ring["contrast"] < 3:
            weak.append(ring)
    assert len(reached) == controls
    assert weak == []

    # Operable: a card's reload button by Enter (focus stays on it), a copy button by Space.
    reload = page.locator("[data-card-key='subscription'] .cc-card__reload")
    reload.focus()
    # The card shows "loaded" until the reload's answer swaps it for "reloading": waiting
    # for the answer first, so that its "Subscription loaded." is not announced after (and
    # over) the copy's "Copied." below.
    with page.expect_response(lambda r: "/card-reload/" in r.url, timeout=TIMEOUT_MS):
        page.keyboard.press("Enter")
    expect(page.locator("[data-card-key='subscription']")).to_have_attribute(
        "data-card-state", "loaded", timeout=TIMEOUT_MS
    )
    expect(page.locator(":focus")).to_have_class(re.compile("cc-card__reload"))
    expect(page.locator(":focus")).to_have_attribute("aria-label", re.compile("Reload"))
    assert (
        page.evaluate("document.activeElement.closest('.cc-card').dataset.cardKey")
        == "subscription"
    )
    page.locator("[data-card-key='customer-details'] .cc-copy").first.focus()
    page.keyboard.press("Space")
    expect(page.locator("#app-live")).to_contain_text("Copied.", timeout=TIMEOUT_MS)
    # "/" jumps to the customer search.
    page.locator("[data-card-key='subscription'] .cc-card__reload").focus()
    page.keyboard.press("/")
    expect(page.locator(":focus")).to_have_attribute("name", "q")
    assert session.errors == []


@pytest.mark.parametrize("width", [320, 390, 1024, 1440])
def test_the_customer_page_reflows_without_sideways_scrolling(login, card_api, width):
    seed = demo_seed(base_url=card_api.url)
    DemoApi(card_api, ttl=3600)
    session = login(viewport={"width": width, "height": 900})
    page = session.page
    session.open(f"/customers/{seed.first_customer.pk}/")
    settle(page)

    overflow = no_horizontal_overflow(page)
    assert overflow["scroll"] <= overflow["width"] and overflow["out"] == []
    boxes = page.evaluate(
        """() => [...document.querySelectorAll(".cc-card:not([hidden])")].map(card => {
          const r = card.getBoundingClientRect();
          return {left: Math.round(r.left), top: Math.round(r.top), width: r.width};
        })"""
    )
    profile = page.locator(".customer-profile").bounding_box()
    columns = {box["left"] for box in boxes}
    if width >= 1440:
        # Cards at a readable width, as many columns as fit, the profile beside them.
        assert all(400 <= box["width"] <= 480 for box in boxes), boxes
        assert len(columns) >= 2
        assert profile["x"] + profile["width"] <= min(columns)
    elif width <= 390:
        assert len(columns) == 1
        assert all(box["width"] <= width for box in boxes)
    # Titles break between words, never inside one.
    split = page.evaluate(
        """() => [...document.querySelectorAll(".cc-card__title")].filter(title => {
          const range = document.createRange();
          range.selectNodeContents(title);
          const lines = [...range.getClientRects()].length;
          return lines > 1 && !title.textContent.trim().includes(" ");
        }).map(t => t.textContent)"""
    )
    assert split == []
    assert session.errors == []


@pytest.mark.parametrize("width", [320, 390, 1440])
def test_the_directory_is_a_list_whose_rows_open_the_customer(login, live_server, width):
    seed = demo_seed(base_url=f"{live_server.url}/examples/cards/")
    session = login(viewport={"width": width, "height": 800})
    page = session.page
    session.open("/customers/")

    # Search is focused on load; "/" brings focus back to it.
    expect(page.locator(":focus")).to_have_attribute("name", "q")
    overflow = no_horizontal_overflow(page)
    assert overflow["scroll"] <= overflow["width"] and overflow["out"] == []
    row = page.locator(".directory-row").first
    name = row.locator(".directory-row__link")
    assert name.bounding_box()["width"] > 100  # the name is never squeezed to a letter
    page.locator("body").click(position={"x": 1, "y": 1})
    page.keyboard.press("/")
    expect(page.locator(":focus")).to_have_attribute("name", "q")

    # A click anywhere on the row (here its right end) opens the customer.
    box = row.bounding_box()
    page.mouse.click(box["x"] + box["width"] - 8, box["y"] + box["height"] / 2)
    expect(page).to_have_url(f"{live_server.url}/customers/{seed.first_customer.pk}/")
    assert session.errors == []


def test_preferences_reduced_motion_stops_the_shimmer_and_forced_colors_keep_badge_borders(
    login, card_api, settings
):
    settings.CARDS_REQUEST_TIMEOUT_SECONDS = 30
    seed = demo_seed(base_url=card_api.url)
    api = DemoApi(card_api, ttl=3600)
    session = login(viewport=WIDE)
    page = session.page
    line = page.locator(".cc-skeleton__line").first
    try:
        api.gate.clear()
        page.emulate_media(reduced_motion="no-preference")
        session.open(f"/customers/{seed.first_customer.pk}/")
        expect(line).to_be_visible()
        assert line.evaluate("e => getComputedStyle(e).animationName") == "cc-shimmer"
        page.emulate_media(reduced_motion="reduce")
        assert line.evaluate("e => getComputedStyle(e).animationName") == "none"
    finally:
        api.gate.set()
    settle(page)
    badge = page.locator(".cc-badge").first
    page.emulate_media(forced_colors="active")
    assert badge.evaluate("e => getComputedStyle(e).borderTopStyle") == "solid"
    assert badge.evaluate("e => getComputedStyle(e, '::before').width") == "6px"  # the dot
    assert session.errors == []
