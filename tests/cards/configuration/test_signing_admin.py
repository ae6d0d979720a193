"""Managing a card API's signing secret in admin (issue 13, finding 4)."""

import pytest
from django.urls import reverse

from cards.models import CardConfig
from cards.protocol.signing import secret_fingerprint
from tests.factories import CardConfigFactory

pytestmark = pytest.mark.django_db
CHANGELIST = reverse("admin:cards_cardconfig_changelist")


def act(client, action: str, *configs):
    return client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [str(c.pk) for c in configs]},
        follow=True,
    )


def test_generating_shows_the_secret_once_then_only_its_fingerprint(admin_client_logged_in):
    billing, invoices = CardConfigFactory(key="billing"), CardConfigFactory(key="invoices")

    response = act(admin_client_logged_in, "signing_secret_rotate", billing, invoices)

    secret = CardConfig.objects.get(pk=billing.pk).signing_secret
    assert secret and CardConfig.objects.get(pk=invoices.pk).signing_secret == secret
    assert secret in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    change = admin_client_logged_in.get(
        reverse("admin:cards_cardconfig_change", args=[billing.pk])
    ).content.decode()
    assert secret not in change
    assert f"current {secret_fingerprint(secret)}" in change
    assert secret not in admin_client_logged_in.get(CHANGELIST).content.decode()


def test_rotating_keeps_the_old_secret_until_it_is_retired(admin_client_logged_in):
    config = CardConfigFactory(key="billing")
    act(admin_client_logged_in, "signing_secret_rotate", config)
    old = CardConfig.objects.get(pk=config.pk).signing_secret

    act(admin_client_logged_in, "signing_secret_rotate", config)
    rotated = CardConfig.objects.get(pk=config.pk)
    assert rotated.signing_secret_previous == old and rotated.signing_secret != old
    refused = act(admin_client_logged_in, "signing_secret_rotate", config)
    assert "retire it first" in refused.content.decode()

    done = act(admin_client_logged_in, "signing_secret_retire", config)
    assert "Old signing secret retired for 1" in done.content.decode()
    assert CardConfig.objects.get(pk=config.pk).signing_secrets == (rotated.signing_secret,)


def test_view_only_staff_cannot_generate_secrets(client):
    from django.contrib.auth.models import Permission

    from tests.factories import UserFactory

    user = UserFactory(username="viewer", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename="view_cardconfig"))
    client.force_login(user)
    config = CardConfigFactory(key="billing")

    act(client, "signing_secret_rotate", config)

    assert CardConfig.objects.get(pk=config.pk).signing_secret is None
