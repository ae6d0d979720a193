"""Per card API signing secrets (SPEC §3, §8): generated here, shown once, rotated, retired.

A config's own secret replaces CARDS_SIGNING_SECRETS for its requests. Rotation keeps two:
the new one becomes current and the old one stays as `signing_secret_previous`, and
both sign every request (two `v1=` entries) until an admin retires the old one. Every
change bumps the config's `updated_at`, which is what loaders' config caches key on, so
the next request signs with the new secrets without a restart.
"""

import secrets
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from cards.models import CardConfig
from cards.protocol.signing import secret_fingerprint

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)


class SigningSecretRefused(ValueError):
    """A rotation would drop a secret that is still being sent; the message says which."""


def signing_secret_new() -> str:
    """A fresh secret: 256 random bits, URL-safe, with the usual `whsec_` prefix."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def card_signing_secret_rotate(*, configs: Iterable[CardConfig]) -> str:
    """Give the configs one new signing secret; each current one is kept as the previous.

    All selected configs share the new secret (one card API, one secret). Refused for
    any config still holding a previous secret: retire it first, so no secret an API may
    still verify with is dropped silently. Returns the new secret, to be shown once.
    """
    configs = list(configs)
    busy = [c.key for c in configs if c.signing_secret_previous]
    if busy:
        raise SigningSecretRefused(
            f"{', '.join(busy)} still send{'s' if len(busy) == 1 else ''} an old signing "
            "secret: retire it first, then rotate."
        )
    new = signing_secret_new()
    now = timezone.now()
    with transaction.atomic():
        for config in configs:
            config.signing_secret_previous = config.signing_secret or None
            config.signing_secret = new
            config.signing_secret_set_at = now
            config.save(
                update_fields=[
                    "signing_secret",
                    "signing_secret_previous",
                    "signing_secret_set_at",
                    "updated_at",
                ]
            )
    return new


def card_signing_secret_retire(*, configs: Iterable[CardConfig]) -> int:
    """Stop sending the previous secret; returns how many configs had one."""
    retired = 0
    with transaction.atomic():
        for config in configs:
            if config.signing_secret_previous:
                config.signing_secret_previous = None
                config.save(update_fields=["signing_secret_previous", "updated_at"])
                retired += 1
    return retired


def card_signing_secret_remove(*, configs: Iterable[CardConfig]) -> int:
    """Drop the configs' own secrets: CARDS_SIGNING_SECRETS signs for them again."""
    removed = 0
    with transaction.atomic():
        for config in configs:
            if config.signing_secrets:
                config.signing_secret = config.signing_secret_previous = None
                config.signing_secret_set_at = None
                config.save(
                    update_fields=[
                        "signing_secret",
                        "signing_secret_previous",
                        "signing_secret_set_at",
                        "updated_at",
                    ]
                )
                removed += 1
    return removed


def signing_summary(config: CardConfig) -> str:
    """What admins see of a config's secrets: fingerprints and masks, never the values."""
    if not config.signing_secrets:
        return "Signed with CARDS_SIGNING_SECRETS (no own secret)"
    text = f"current {secret_fingerprint(config.signing_secret)}"
    if config.signing_secret_previous:
        text += f", previous {secret_fingerprint(config.signing_secret_previous)} (still sent)"
    return text
