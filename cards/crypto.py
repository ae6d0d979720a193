"""Encryption at rest for card API header values (SPEC §8).

Keys come from CARDS_ENCRYPTION_KEYS (Fernet keys, the first encrypts, all decrypt) or,
when unset, one key derived from SECRET_KEY. To rotate: put a new key first, keep the
old one after it, run `manage.py rotate_card_secrets`, then drop the old key.
"""

import base64
import hashlib
from functools import cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models

MASK = "••••••••"


@cache
def _fernet(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    if not keys:
        derived = hashlib.sha256(f"cards-encryption:{secret_key}".encode()).digest()
        keys = (base64.urlsafe_b64encode(derived).decode(),)
    return MultiFernet([Fernet(key.encode()) for key in keys])


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.CARDS_ENCRYPTION_KEYS), settings.SECRET_KEY)


def encrypt(value: str) -> str:
    return fernet().encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ValueError(
            "A stored secret cannot be decrypted: CARDS_ENCRYPTION_KEYS does not hold "
            "the key it was encrypted with."
        ) from exc


def rotate(token: str) -> str:
    return fernet().rotate(token.encode()).decode()


def mask(value: str) -> str:
    """A masked form that hints at the value without revealing it: at most its last four
    characters, and only of a value long enough (16+) that four give little away."""
    if len(value) < 16:
        return MASK
    return f"{MASK}{value[-4:]}"


class EncryptedTextField(models.TextField):
    """A text column stored as a Fernet token and handled in Python as plain text."""

    def from_db_value(self, value, expression, connection):
        if value is None:
            return value
        return decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None:
            return value
        return encrypt(value)


REVEAL_SECRETS_PERMISSION = "cards.reveal_secrets"


def can_reveal_secrets(user: Any) -> bool:
    return user.has_perm(REVEAL_SECRETS_PERMISSION)
