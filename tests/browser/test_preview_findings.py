"""The admin preview in a real browser (issue 16): a valid answer still says what Save would
refuse (here, a key another config has), on the config page itself."""

import os

import pytest
from playwright.sync_api import expect

from tests.factories import CardConfigFactory, UserFactory

pytestmark = pytest.mark.browser

TIMEOUT_MS = 10_000


def test_the_preview_names_the_taken_key_save_would_refuse(login, live_server):
    CardConfigFactory(title="Existing usage card", key="usage")
    config = CardConfigFactory(
        title="Subscription", key="subscription", api_url=f"{live_server.url}/examples/cards/"
    )
    session = login(user=UserFactory(username="browser-root", is_staff=True, is_superuser=True))
    page = session.page
    page.set_viewport_size({"width": 1400, "height": 1000})
    session.open(f"/admin/cards/cardconfig/{config.pk}/change/")

    # An unsaved key the example API serves, but another config already has.
    page.locator("#id_key").fill("usage")
    page.get_by_role("button", name="Preview", exact=True).click()

    result = page.locator("[data-preview-result] .ci-result")
    expect(result).to_have_attribute("data-preview-state", "ok", timeout=TIMEOUT_MS)
    refused = result.locator('[data-preview-save="refused"]')
    expect(refused).to_contain_text(
        'Key: The key "usage" is already used by the card config "Existing usage card".'
    )
    if os.environ.get("PREVIEW_SCREENSHOT"):
        page.locator("#ci-preview").screenshot(path=os.environ["PREVIEW_SCREENSHOT"])
    assert session.errors == []
