"""Admin pages under the Content-Security-Policy, in Chromium (issue 13, point 6).

Chromium reports every script or style the policy blocks as a console error, which the
session records: the pages must work and report none.
"""

import json

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import expect
from werkzeug import Request, Response

from cards.models import CardConfig
from config.middleware import CONTENT_SECURITY_POLICY
from tests.factories import CardConfigFactory, CardConfigHeaderFactory, CustomerFactory, UserFactory

pytestmark = pytest.mark.browser
TIMEOUT_MS = 10_000
HOSTILE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=1">'


def test_admin_pages_work_under_the_policy_with_hostile_api_content(login, card_api):
    def handler(request: Request, body: dict) -> Response:
        cards = [
            {"key": key, "components": [{"componentText": {"text": HOSTILE}}]}
            for key in body["cardKeys"]
        ]
        return Response(
            json.dumps({"cards": cards, "note": HOSTILE}), content_type="application/json"
        )

    card_api.serve_handler(handler)
    config = CardConfigFactory(key="plan", title="Plan", api_url=card_api.url)
    CardConfigHeaderFactory(config=config)
    Group.objects.create(name="Billing")
    CustomerFactory()
    admin = UserFactory(username="csp-admin", is_staff=True, is_superuser=True)
    session = login(user=admin)
    page = session.page

    for path in [
        "/admin/",
        "/admin/cards/cardconfig/",
        "/admin/cards/cardrequest/",
        "/admin/customers/customer/",
        "/admin/auth/group/add/",
        "/playground/",
    ]:
        response = page.goto(session.base_url + path)
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path
        assert response.status == 200, path

    page.goto(session.base_url + f"/admin/cards/cardconfig/{config.pk}/change/")
    # The groups autocomplete (select2) opens and searches.
    page.locator(".field-groups .select2-selection").click()
    page.locator(".select2-search__field").fill("Bill")
    page.locator(".select2-results__option", has_text="Billing").click()
    # The preview puts the API's (hostile) answer into the page.
    page.get_by_role("button", name="Preview", exact=True).click()
    result = page.locator("[data-preview-result] .ci-result")
    expect(result).to_have_attribute("data-preview-state", "ok", timeout=TIMEOUT_MS)
    expect(result.locator("[data-preview-response-body]")).to_contain_text("<script>")
    page.locator("input[name=_save]").click()
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    assert list(CardConfig.objects.get(pk=config.pk).groups.values_list("name", flat=True)) == [
        "Billing"
    ]

    # The signing secret action and its one-time page.
    page.goto(session.base_url + "/admin/cards/cardconfig/")
    page.locator("input[name=_selected_action]").first.check()
    page.locator("select[name=action]").select_option("signing_secret_rotate")
    page.locator("button[name=index]").click()
    expect(page.locator("[data-signing-secret]")).to_contain_text("whsec_")

    assert page.evaluate("window.__pwned") is None
    assert session.errors == [], "\n".join(session.errors)
