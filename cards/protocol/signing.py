"""Request signatures for card APIs (SPEC §3).

Timestamped mode (the default) sends `t=<unix seconds>,v1=<hex>[,v1=<hex>...]`, where each
hex is HMAC-SHA256 of `"<t>." + exact body bytes` under one active secret: with two secrets
active, a card API can switch to the new one before the old one is retired. Body mode sends
the bare hex HMAC-SHA256 of the body under the first secret, as Plain does, for APIs written
against Plain's protocol (no replay protection there).

`verify_signature` is the reference verifier that docs/ and the example card API follow.

`dialect()` says which header names and signature mode requests use (`CARDS_PROTOCOL`):
`cards`, the default, takes them from `CARDS_SIGNATURE_HEADER`, `CARDS_SIGNATURE_MODE` and
`CARDS_WORKSPACE_HEADER`; `plain` is Plain's dialect in one setting (`Plain-Request-Signature`
with the bare body HMAC, `Plain-Workspace-Id`), whatever those three say.
"""

import hashlib
import hmac
import time
from dataclasses import dataclass

from django.conf import settings

MODES = ("timestamped", "body")
PROTOCOLS = ("cards", "plain")


@dataclass(frozen=True)
class Dialect:
    """The protocol's own header names and signature mode for outgoing requests."""

    signature_header: str
    signature_mode: str
    workspace_header: str


PLAIN_DIALECT = Dialect(
    signature_header="Plain-Request-Signature",
    signature_mode="body",
    workspace_header="Plain-Workspace-Id",
)


def dialect() -> Dialect:
    """The dialect `CARDS_PROTOCOL` selects; a ValueError names the setting when unknown."""
    protocol = settings.CARDS_PROTOCOL
    if protocol == "plain":
        return PLAIN_DIALECT
    if protocol == "cards":
        return Dialect(
            signature_header=settings.CARDS_SIGNATURE_HEADER,
            signature_mode=settings.CARDS_SIGNATURE_MODE,
            workspace_header=settings.CARDS_WORKSPACE_HEADER,
        )
    raise ValueError(
        f"Unknown protocol {protocol!r}: CARDS_PROTOCOL must be one of {', '.join(PROTOCOLS)}."
    )


DEFAULT_TOLERANCE_SECONDS = 300


def _hex_hmac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header_value(
    body: bytes, *, secrets: list[str], mode: str, now: int | None = None
) -> str | None:
    """The signature header value for `body`, or None when no signing secret is set.

    Raises ValueError on an unknown mode even without secrets, so a misspelt
    CARDS_SIGNATURE_MODE fails loudly instead of waiting for the first secret.
    """
    if mode not in MODES:
        raise ValueError(
            f"Unknown signature mode {mode!r}: CARDS_SIGNATURE_MODE must be one of "
            f"{', '.join(MODES)}."
        )
    secrets = [secret for secret in secrets if secret]
    if not secrets:
        return None
    if mode == "body":
        return _hex_hmac(secrets[0], body)
    timestamp = int(time.time()) if now is None else now
    signed = f"{timestamp}.".encode() + body
    return ",".join([f"t={timestamp}", *(f"v1={_hex_hmac(s, signed)}" for s in secrets)])


def secret_fingerprint(secret: str) -> str:
    """A short public name for a secret (8 hex digits of its SHA-256), never the value."""
    return hashlib.sha256(secret.encode()).hexdigest()[:8]


def signed_with(*, secrets: list[str], mode: str) -> str:
    """Which secrets sign a request, as fingerprints ("1a2b3c4d, 5e6f7a8b"), or "unsigned"."""
    secrets = [secret for secret in secrets if secret]
    if not secrets:
        return "unsigned"
    if mode == "body":  # only the first secret signs in body mode
        secrets = secrets[:1]
    return ", ".join(secret_fingerprint(secret) for secret in secrets)


def verify_signature(
    body: bytes,
    header: str,
    *,
    secret: str,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: int | None = None,
) -> bool:
    """Whether a timestamped signature header is valid for these raw body bytes.

    True when one `v1=` matches the HMAC under `secret` and `t` is within
    `tolerance_seconds` of now, in either direction (replay protection; a clock
    ahead of ours is tolerated as much as a late delivery). Malformed headers are
    simply invalid.
    """
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            return False
        if name == "t":
            if timestamp is not None or not value.isascii() or not value.isdigit():
                return False
            timestamp = int(value)
        elif name == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = int(time.time()) if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        return False
    expected = _hex_hmac(secret, f"{timestamp}.".encode() + body)
    # Compare against every candidate (no early exit) so timing says nothing about which matched.
    matches = [hmac.compare_digest(expected.encode(), c.encode()) for c in candidates]
    return any(matches)
