"""Screenshots of the agent pages, checked as they are taken (issues 14 and 15).

Written to the screenshots folder (tests/browser/support.py): test-results/screenshots/
on an ordinary run, docs/screenshots/ with `make screenshots`. The customer page at 390
and 1,440 px, light and dark, loading, loaded and with errors; the directory; and close-ups
of a card's copy button (its tooltip shown), badges and rows.
"""

import pytest
from playwright.sync_api import expect

from cards.integrator.example_api import CARD_TITLES
from cards.management.commands.seed_demo import demo_seed
from tests.browser.support import PHONE, TIMEOUT_MS, WIDE, DemoApi, screenshot_path

pytestmark = pytest.mark.browser

LOADING = '.cc-card[data-card-state="loading"]'
SHOTS = [(1440, WIDE, "light"), (1440, WIDE, "dark"), (390, PHONE, "light"), (390, PHONE, "dark")]


def shoot_every_size(page, state: str, subject: str) -> None:
    """At 390 px the profile fills the first screen: the shot starts at `subject`."""
    for width, viewport, scheme in SHOTS:
        page.set_viewport_size(viewport)
        page.emulate_media(color_scheme=scheme)
        page.evaluate("window.scrollTo(0, 0)")
        if width < 1000:
            page.locator(subject).first.evaluate("e => e.scrollIntoView({block: 'start'})")
        page.screenshot(path=screenshot_path(f"customer-{width}-{scheme}-{state}.png"))


def test_screenshots_of_the_customer_page_in_each_state(login, card_api, settings):
    settings.CARDS_REQUEST_TIMEOUT_SECONDS = 30  # answers wait for the gate
    seed = demo_seed(base_url=card_api.url)
    api = DemoApi(card_api, ttl=3600)
    session = login(viewport=WIDE)
    page = session.page
    try:
        api.gate.clear()
        session.open(f"/customers/{seed.first_customer.pk}/")
        expect(page.locator(f"{LOADING} .cc-skeleton").first).to_be_visible()
        shoot_every_size(page, "loading", "#cards-panel")
    finally:
        api.gate.set()

    expect(page.locator(LOADING)).to_have_count(0, timeout=TIMEOUT_MS)
    for key in ("customer-details", "subscription", "last-order", "usage", "latest-invoice"):
        expect(page.locator(f"[data-card-key='{key}']")).to_contain_text(CARD_TITLES[key])
    shoot_every_size(page, "loaded", "#cards-panel")

    api.missing = {"subscription", "usage"}
    page.get_by_role("button", name="Reload all").click()
    expect(page.locator('.cc-card[data-card-state="error"]')).to_have_count(2, timeout=TIMEOUT_MS)
    expect(page.locator("[data-card-key='subscription'] .cc-card__shown")).to_contain_text(
        "Showing data"
    )
    shoot_every_size(page, "error", '.cc-card[data-card-state="error"]')
    assert session.errors == []


@pytest.mark.parametrize(("width", "viewport"), [(1440, WIDE), (390, PHONE)])
def test_screenshots_of_copy_buttons_badges_and_rows(login, card_api, width, viewport):
    seed = demo_seed(base_url=card_api.url)
    DemoApi(card_api, ttl=3600)
    session = login(viewport=viewport)
    page = session.page
    session.open(f"/customers/{seed.first_customer.pk}/")
    expect(page.locator(LOADING)).to_have_count(0, timeout=TIMEOUT_MS)
    card = page.locator("[data-card-key='customer-details']")

    # The copy button: an icon, the value beside it in the row, its tooltip on hover.
    copy = card.locator(".cc-copy").last
    name = copy.get_attribute("aria-label")
    assert name.startswith("Copy customer ID: ")
    assert copy.text_content().strip() == "Copy customer ID"  # the tooltip, not the value twice
    copy.scroll_into_view_if_needed()
    copy.hover()
    expect(copy.locator(".cc-tip")).to_be_visible()
    # Rows centre their aside; badges carry a dot.
    row = card.locator(".cc-row").first
    main, aside = row.locator(".cc-row__main"), row.locator(".cc-row__aside")
    main_box, aside_box = main.bounding_box(), aside.bounding_box()
    centre = main_box["y"] + main_box["height"] / 2
    assert abs(aside_box["y"] + aside_box["height"] / 2 - centre) <= 1
    badge = card.locator(".cc-badge").first
    assert badge.evaluate("e => getComputedStyle(e, '::before').borderRadius") == "50%"
    # This card and the next (coloured badges), side by side or stacked.
    page.evaluate("window.scrollTo(0, 0)")
    first = card.bounding_box()
    second = page.locator("[data-card-key='subscription']").bounding_box()
    left, top = min(first["x"], second["x"]), min(first["y"], second["y"])
    right = max(first["x"] + first["width"], second["x"] + second["width"])
    bottom = max(first["y"] + first["height"], second["y"] + second["height"])
    page.set_viewport_size({"width": viewport["width"], "height": int(bottom + 40)})
    copy.hover()
    expect(copy.locator(".cc-tip")).to_be_visible()
    clip = {"x": left - 4, "y": top - 4, "width": right - left + 8, "height": bottom - top + 8}
    page.screenshot(path=screenshot_path(f"components-{width}.png"), clip=clip)
    page.set_viewport_size(viewport)

    session.open("/customers/")
    expect(page.locator(".directory-row")).to_have_count(seed.customers)
    page.screenshot(path=screenshot_path(f"directory-{width}.png"))
    assert session.errors == []
