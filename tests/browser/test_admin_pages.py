"""The card config admin in a real browser (issue 15): a Preview button near the top that
jumps to the preview and runs it; the changelist, health columns included, fits at 1,440 px."""

import pytest
from playwright.sync_api import expect

from cards.models import CardRequest
from tests.browser.support import TIMEOUT_MS, WIDE, no_horizontal_overflow
from tests.factories import CardConfigFactory, UserFactory

pytestmark = pytest.mark.browser


def superuser():
    return UserFactory(username="browser-admin", is_staff=True, is_superuser=True)


def test_the_preview_button_at_the_top_jumps_to_the_preview_and_runs_it(login, live_server):
    config = CardConfigFactory(
        title="Subscription", key="subscription", api_url=f"{live_server.url}/examples/cards/"
    )
    session = login(superuser(), viewport=WIDE)
    page = session.page
    session.open(f"/admin/cards/cardconfig/{config.pk}/change/")
    top = page.locator(".object-tools").get_by_role("link", name="Preview")
    assert top.bounding_box()["y"] < 300  # near the top, not below the whole form

    top.click()

    result = page.locator("[data-preview-result] .ci-result")
    expect(result).to_have_attribute("data-preview-state", "ok", timeout=TIMEOUT_MS)
    expect(page.locator("#ci-preview")).to_be_in_viewport()
    expect(page.locator(":focus")).to_have_id("ci-preview")


def test_the_config_changelist_with_its_health_columns_fits_at_1440_px(login):
    for n in range(6):
        config = CardConfigFactory(
            title=f"Subscription and billing {n}",
            key=f"subscription-and-billing-{n}",
            api_url=f"https://cards.internal.example.com/api/v2/customers/cards/{n}",
        )
        for status in (200, 200, 503):
            CardRequest.objects.create(
                config=config,
                batch_id=f"b{n}",
                keys=[config.key],
                status_code=status,
                duration_ms=120 + n,
            )
    session = login(superuser(), viewport=WIDE)
    page = session.page
    session.open("/admin/cards/cardconfig/")
    expect(page.locator("#result_list tbody tr")).to_have_count(6)

    overflow = page.evaluate(
        """() => {
          const list = document.querySelector("#changelist .results") ||
            document.querySelector("#result_list");
          return {page: document.documentElement.scrollWidth, width: innerWidth,
                  list: list.scrollWidth, box: list.clientWidth};
        }"""
    )
    assert overflow["page"] <= overflow["width"], overflow
    assert overflow["list"] <= overflow["box"], overflow
    assert no_horizontal_overflow(page)["scroll"] <= WIDE["width"]
