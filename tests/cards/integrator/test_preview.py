"""The card config preview (issue 6): the form's current values, one real request, no writes."""

import html
import json
import shutil
import subprocess

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from werkzeug import Response

from cards.crypto import mask
from cards.live.rendering import render_components
from cards.models import CardInstance, CardRequest
from cards.protocol.signing import verify_signature
from tests.cards.cardapi import card
from tests.factories import (
    CardConfigFactory,
    CardConfigHeaderFactory,
    CustomerFactory,
    TenantFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

SECRET = "Bearer s3cr3t-token-value"
PLAN = [
    {"componentText": {"text": "Plan: **Pro**"}},
    {"componentBadge": {"badgeLabel": "Active", "badgeColor": "GREEN"}},
]
PREVIEW_URL = reverse("cards:preview")


def staff_client(*codenames: str) -> Client:
    """A client for a staff user holding exactly these `cards` permissions."""
    user = UserFactory(username="staff-" + ("-".join(codenames) or "none"), is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="cards", codename__in=codenames)
    )
    client = Client()
    client.force_login(user)
    return client


EDITOR = ("view_cardconfig", "add_cardconfig", "change_cardconfig")


def form_data(*, url: str, key: str, headers=(), config=None, **extra) -> dict[str, str]:
    """What preview.js posts: the whole change form, as the browser holds it right now."""
    data = {
        "title": extra.pop("title", "Plan"),
        "key": key,
        "api_url": url,
        "default_ttl_seconds": "300",
        "order": "0",
        "headers-TOTAL_FORMS": str(len(headers)),
        "headers-INITIAL_FORMS": "0",
        "headers-MIN_NUM_FORMS": "0",
        "headers-MAX_NUM_FORMS": "20",
        "preview-object_id": str(config.pk) if config else "",
        "preview-customer": "",
    }
    for index, header in enumerate(headers):
        for field, value in header.items():
            data[f"headers-{index}-{field}"] = value
    data.update(extra)
    return data


def page(response) -> str:
    return html.unescape(response.content.decode())


def assert_nothing_stored() -> None:
    assert CardInstance.objects.count() == 0
    assert CardRequest.objects.count() == 0


class TestPreview:
    def test_unsaved_values_send_exactly_one_request_and_store_nothing(
        self, admin_client_logged_in, card_api
    ):
        card_api.serve({"plan-v2": card("plan-v2", PLAN)})
        config = CardConfigFactory(key="plan", api_url="https://old.example.com/cards")
        CardConfigHeaderFactory(config=config, value=SECRET)

        response = admin_client_logged_in.post(
            PREVIEW_URL,
            form_data(
                url=card_api.url,
                key="plan-v2",
                config=config,
                headers=[{"name": "X-Team", "value": "support"}],
            ),
        )

        assert response.status_code == 200
        assert card_api.keys_requested == [["plan-v2"]]
        assert card_api.headers[0]["X-Team"] == "support"
        assert "Authorization" not in card_api.headers[0]  # the unsaved form dropped it
        assert str(render_components(PLAN)) in response.content.decode()
        assert 'data-preview-state="ok"' in response.content.decode()
        assert_nothing_stored()
        config.refresh_from_db()
        assert (config.key, config.api_url) == ("plan", "https://old.example.com/cards")

    def test_a_blank_value_of_a_saved_header_sends_the_stored_value(
        self, admin_client_logged_in, card_api
    ):
        card_api.serve({"plan": card("plan")})
        config = CardConfigFactory(key="plan", api_url=card_api.url)
        header = CardConfigHeaderFactory(config=config, value=SECRET)

        admin_client_logged_in.post(
            PREVIEW_URL,
            form_data(
                url=card_api.url,
                key="plan",
                config=config,
                headers=[{"id": str(header.pk), "name": "Authorization", "value": ""}],
            ),
        )

        assert card_api.headers[0]["Authorization"] == SECRET

    def test_a_header_marked_for_deletion_is_not_sent(self, admin_client_logged_in, card_api):
        card_api.serve({"plan": card("plan")})
        config = CardConfigFactory(key="plan", api_url=card_api.url)
        header = CardConfigHeaderFactory(config=config, value=SECRET)

        admin_client_logged_in.post(
            PREVIEW_URL,
            form_data(
                url=card_api.url,
                key="plan",
                config=config,
                headers=[{"id": str(header.pk), "name": "Authorization", "DELETE": "on"}],
            ),
        )

        assert "Authorization" not in card_api.headers[0]

    def test_the_add_page_previews_without_a_saved_config(self, admin_client_logged_in, card_api):
        card_api.serve({"fresh": card("fresh", PLAN)})

        response = admin_client_logged_in.post(
            PREVIEW_URL, form_data(url=card_api.url, key="fresh")
        )

        assert card_api.keys_requested == [["fresh"]]
        assert str(render_components(PLAN)) in response.content.decode()
        assert_nothing_stored()

    def test_a_view_only_user_previews_the_saved_config(self, card_api):
        card_api.serve({"plan": card("plan", PLAN)})
        config = CardConfigFactory(key="plan", api_url=card_api.url)
        CardConfigHeaderFactory(config=config, value=SECRET)
        client = staff_client("view_cardconfig")

        # A read-only change page has no inputs: only the preview's own fields are posted.
        response = client.post(PREVIEW_URL, {"preview-object_id": str(config.pk)})

        assert response.status_code == 200
        assert card_api.headers[0]["Authorization"] == SECRET
        assert SECRET not in response.content.decode()
        assert_nothing_stored()

    def test_it_asks_about_the_picked_customer(self, admin_client_logged_in, card_api):
        card_api.serve({"plan": card("plan")})
        customer = CustomerFactory(
            email="kim@example.com", external_id="u_42", tenant=TenantFactory(external_id="acme")
        )

        admin_client_logged_in.post(
            PREVIEW_URL,
            form_data(url=card_api.url, key="plan", **{"preview-customer": str(customer.pk)}),
        )

        body = card_api.requests[0]
        assert body["customer"] == {
            "id": customer.public_id,
            "email": "kim@example.com",
            "externalId": "u_42",
        }
        assert body["tenant"] == {"id": customer.tenant.public_id, "externalId": "acme"}

    def test_without_a_customer_it_asks_about_the_sample_one(
        self, admin_client_logged_in, card_api
    ):
        card_api.serve({"plan": card("plan")})

        response = admin_client_logged_in.post(PREVIEW_URL, form_data(url=card_api.url, key="plan"))

        assert card_api.requests[0]["customer"]["email"] == "alex@example.com"
        assert "a sample customer (alex@example.com)" in page(response)

    def test_a_status_error_shows_the_status_and_the_body(self, admin_client_logged_in, card_api):
        card_api.serve_raw(b'{"error": "upstream exploded"}', status=500)

        response = admin_client_logged_in.post(PREVIEW_URL, form_data(url=card_api.url, key="plan"))

        text = page(response)
        assert 'data-preview-state="error"' in text
        assert "STATUS_CODE" in text
        assert "<code data-preview-status-code>500</code>" in text
        assert '"error": "upstream exploded"' in text  # pretty-printed response body
        assert "The card service answered with an error." in text  # what agents read
        assert len(card_api.requests) == 1  # a preview never retries
        assert_nothing_stored()

    def test_a_schema_error_shows_every_problem_with_its_path(
        self, admin_client_logged_in, card_api
    ):
        broken = [
            {"componentBadge": {"badgeLabel": "Active", "badgeColor": "PINK"}},
            {"componentText": {"text": ""}},
        ]
        card_api.serve({"plan": card("plan", broken)})

        response = admin_client_logged_in.post(PREVIEW_URL, form_data(url=card_api.url, key="plan"))

        text = page(response)
        assert "RESPONSE_BODY" in text
        assert (
            '<code class="ci-path">cards[0].components[0].componentBadge.badgeColor</code>' in text
        )
        assert '<code class="ci-path">cards[0].components[1].componentText.text</code>' in text
        assert 'expected one of GREY, GREEN, YELLOW, RED, BLUE, got "PINK"' in text
        assert_nothing_stored()

    def test_a_missing_card_is_reported(self, admin_client_logged_in, card_api):
        card_api.serve({})

        response = admin_client_logged_in.post(PREVIEW_URL, form_data(url=card_api.url, key="plan"))

        assert "MISSING_CARD" in page(response)
        assert 'no card with key "plan" in cards' in page(response)

    def test_a_refused_connection_is_reported(self, admin_client_logged_in):
        response = admin_client_logged_in.post(
            PREVIEW_URL, form_data(url="http://127.0.0.1:9/cards", key="plan")
        )

        text = page(response)
        assert "REQUEST" in text
        assert "connection refused to 127.0.0.1:9" in text
        assert_nothing_stored()

    def test_components_null_and_empty_show_as_agents_would_see_them(
        self, admin_client_logged_in, card_api
    ):
        card_api.serve({"hidden": card("hidden", None), "empty": card("empty", [])})

        hidden = page(
            admin_client_logged_in.post(PREVIEW_URL, form_data(url=card_api.url, key="hidden"))
        )
        empty = page(
            admin_client_logged_in.post(PREVIEW_URL, form_data(url=card_api.url, key="empty"))
        )

        assert 'data-card-state="hidden"' in hidden
        assert "hidden from agents" in hidden
        assert "Nothing to show" in empty

    def test_the_response_ttl_is_shown(self, admin_client_logged_in, card_api):
        card_api.serve({"plan": card("plan", ttl=60)})

        response = admin_client_logged_in.post(PREVIEW_URL, form_data(url=card_api.url, key="plan"))

        assert "kept 60 s (timeToLiveSeconds)" in page(response)

    def test_invalid_values_are_reported_and_nothing_is_sent(
        self, admin_client_logged_in, card_api
    ):
        card_api.serve({})

        response = admin_client_logged_in.post(
            PREVIEW_URL,
            form_data(
                url=card_api.url,
                key="not a key",
                headers=[{"name": "Host", "value": "evil.example.com"}],
            ),
        )

        text = page(response)
        assert 'data-preview-state="invalid"' in text
        assert "A key uses only letters, digits, hyphens and underscores" in text
        assert '"Host" is a reserved header' in text
        assert card_api.requests == []

    def test_untrusted_answers_are_escaped(self, admin_client_logged_in, card_api):
        script = "<script>alert(1)</script>"
        card_api.serve({"plan": card("plan", [{"componentPlainText": {"plainText": script}}])})

        response = admin_client_logged_in.post(
            PREVIEW_URL, form_data(url=card_api.url, key="plan", title=script)
        )

        assert script not in response.content.decode()
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.content.decode()


class TestSecrets:
    def test_header_values_are_masked_without_the_reveal_permission(self, card_api):
        card_api.serve({"plan": card("plan")})
        client = staff_client(*EDITOR)

        response = client.post(
            PREVIEW_URL,
            form_data(
                url=card_api.url, key="plan", headers=[{"name": "Authorization", "value": SECRET}]
            ),
        )

        text = page(response)
        assert card_api.headers[0]["Authorization"] == SECRET  # sent in full
        assert "s3cr3t" not in text  # neither in the table nor in the curl command
        assert f"--header 'Authorization: {mask(SECRET)}'" in text
        assert "you do not have the permission to reveal them" in text

    def test_the_reveal_permission_shows_them_in_full(self, card_api):
        card_api.serve({"plan": card("plan")})
        client = staff_client(*EDITOR, "reveal_secrets")

        response = client.post(
            PREVIEW_URL,
            form_data(
                url=card_api.url, key="plan", headers=[{"name": "Authorization", "value": SECRET}]
            ),
        )

        assert f"--header 'Authorization: {SECRET}'" in page(response)

    def test_the_signature_is_shown_in_full_and_matches_what_was_sent(self, settings, card_api):
        settings.CARDS_SIGNING_SECRETS = ["whsec_preview"]
        card_api.serve({"plan": card("plan")})
        client = staff_client(*EDITOR)

        text = page(client.post(PREVIEW_URL, form_data(url=card_api.url, key="plan")))

        sent = card_api.headers[0]["Cards-Signature"]
        assert sent.startswith("t=") and ",v1=" in sent
        assert f"<code>{sent}</code>" in text


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_copy_as_curl_replays_the_exact_request(settings, card_api):
    """The command in the page, run as is, sends the same body and a valid signature."""
    settings.CARDS_SIGNING_SECRETS = ["whsec_curl"]
    received: list[tuple[bytes, str]] = []

    def handler(request, body):
        received.append((request.get_data(), request.headers.get("Cards-Signature", "")))
        return Response(json.dumps({"cards": [card("plan")]}), content_type="application/json")

    card_api.serve_handler(handler)
    client = staff_client(*EDITOR, "reveal_secrets")
    response = client.post(
        PREVIEW_URL,
        form_data(url=card_api.url, key="plan", headers=[{"name": "X-Team", "value": "it's ok"}]),
    )
    command = response.context["curl"]

    subprocess.run(["sh", "-c", command + " --silent --output /dev/null"], check=True, timeout=10)

    (preview_body, _), (curl_body, curl_signature) = received
    assert curl_body == preview_body
    assert verify_signature(curl_body, curl_signature, secret="whsec_curl")
    assert card_api.headers[1]["X-Team"] == "it's ok"


class TestAccess:
    def test_agents_and_visitors_cannot_preview(self, client, agent_client, card_api):
        card_api.serve({"plan": card("plan")})
        data = form_data(url=card_api.url, key="plan")

        assert client.post(PREVIEW_URL, data).status_code == 403
        assert agent_client.post(PREVIEW_URL, data).status_code == 403
        assert staff_client().post(PREVIEW_URL, data).status_code == 403  # no config perms
        assert card_api.requests == []

    def test_it_needs_the_csrf_token(self, staff_admin, card_api):
        card_api.serve({"plan": card("plan")})
        client = Client(enforce_csrf_checks=True)
        client.force_login(staff_admin)

        response = client.post(PREVIEW_URL, form_data(url=card_api.url, key="plan"))

        assert response.status_code == 403
        assert card_api.requests == []

    def test_it_answers_post_only(self, admin_client_logged_in):
        assert admin_client_logged_in.get(PREVIEW_URL).status_code == 405


class TestConfigPage:
    @pytest.mark.parametrize("view", ["add", "change"])
    def test_the_config_pages_offer_the_preview_and_the_playground(
        self, admin_client_logged_in, view
    ):
        args = [CardConfigFactory().pk] if view == "change" else []

        response = admin_client_logged_in.get(reverse(f"admin:cards_cardconfig_{view}", args=args))

        text = response.content.decode()
        assert f'data-preview-url="{PREVIEW_URL}"' in text
        assert "cards/preview.js" in text
        assert 'name="preview-customer"' in text
        assert f'href="{reverse("cards:playground")}"' in text

    def test_the_customer_picker_is_admin_autocomplete_for_users_who_see_customers(
        self, admin_client_logged_in
    ):
        response = admin_client_logged_in.get(reverse("admin:cards_cardconfig_add"))

        assert 'data-model-name="cardrequest"' in response.content.decode()
        assert "admin/js/autocomplete.js" in response.content.decode()

    def test_other_staff_pick_from_recently_viewed_customers(self):
        from django.utils import timezone

        viewed = CustomerFactory(email="viewed@example.com", last_viewed_at=timezone.now())
        CustomerFactory(email="never@example.com")
        client = staff_client(*EDITOR)

        text = client.get(reverse("admin:cards_cardconfig_add")).content.decode()

        assert f'<option value="{viewed.pk}">' in text
        assert "viewed@example.com" in text
        assert "never@example.com" not in text
