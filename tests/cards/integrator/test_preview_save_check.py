"""The preview says what Save would say (issue 16): every rule of the admin's form and
header formset, named, whether or not the API's answer is valid."""

import pytest
from django.urls import reverse

from tests.cards.cardapi import card
from tests.cards.integrator.test_preview import (
    PLAN,
    PREVIEW_URL,
    form_data,
    page,
    staff_client,
)
from tests.factories import CardConfigFactory

pytestmark = pytest.mark.django_db


class TestPreviewChecksWhatSaveChecks:
    """The preview binds the admin's own form and header formset: every Save rule, named."""

    def test_a_taken_key_is_named_as_what_save_would_refuse(self, admin_client_logged_in, card_api):
        card_api.serve({"plan": card("plan", PLAN)})
        CardConfigFactory(key="plan", title="Existing plan card")
        data = form_data(url=card_api.url, key="plan", max_requests_per_second="10")

        text = page(admin_client_logged_in.post(PREVIEW_URL, data))
        saved = admin_client_logged_in.post(reverse("admin:cards_cardconfig_add"), data)

        assert 'data-preview-state="ok"' in text  # the API answered fine
        assert 'data-preview-save="refused"' in text
        message = 'The key "plan" is already used by the card config "Existing plan card".'
        assert f"Key: {message}" in text
        assert saved.status_code == 200 and message in page(saved)  # Save refuses it too

    def test_every_refusing_rule_is_listed_even_when_nothing_can_be_sent(
        self, admin_client_logged_in, settings, card_api
    ):
        settings.CARDS_MAX_ENABLED_CONFIGS = 1
        CardConfigFactory(key="other", is_enabled=True)

        text = page(
            admin_client_logged_in.post(
                PREVIEW_URL,
                form_data(
                    url=card_api.url,
                    key="not a key",
                    title="",
                    default_ttl_seconds="5",
                    order="-1",
                    is_enabled="on",
                    headers=[
                        {"name": "X-A", "value": "1"},
                        {"name": "x-a", "value": "2"},
                    ],
                ),
            )
        )

        assert 'data-preview-state="invalid"' in text
        assert 'data-preview-save="refused"' in text
        assert "Title: Enter a title" in text
        assert "Key: A key uses only letters" in text
        assert "Default TTL (seconds): The default TTL is a whole number of seconds" in text
        assert "Order: " in text
        assert "Enabled: At most 1 card configs may be enabled at once" in text
        assert 'Header 2, name: The header "x-a" is given twice' in text
        assert card_api.requests == []

    def test_values_save_would_accept_say_so(self, admin_client_logged_in, card_api):
        card_api.serve({"plan": card("plan", PLAN)})
        config = CardConfigFactory(key="plan")

        text = page(
            admin_client_logged_in.post(
                PREVIEW_URL, form_data(url=card_api.url, key="plan", config=config)
            )
        )

        assert 'data-preview-save="ok"' in text
        assert "Save would accept these values." in text

    def test_a_view_only_preview_of_the_saved_config_makes_no_save_claim(self, card_api):
        card_api.serve({"plan": card("plan", PLAN)})
        config = CardConfigFactory(key="plan", api_url=card_api.url)

        response = staff_client("view_cardconfig").post(
            PREVIEW_URL, {"preview-object_id": str(config.pk), "preview-customer": ""}
        )

        assert 'data-preview-state="ok"' in page(response)
        assert "data-preview-save" not in page(response)
