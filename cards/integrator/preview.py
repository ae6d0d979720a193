"""Trying a card API without touching the cache: check_card_api and the admin preview.

The same request, validation and outcome rules as a real load (SPEC §3, §5), but nothing
is claimed or stored.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.conf import settings

from cards.integrator.findings import UnrequestedCard, refusal_hint, unrequested_cards
from cards.models import CardInstance
from cards.protocol.http import (
    Exchange,
    build_request_body,
    build_request_headers,
    post_cards,
    request_signed_with,
)
from cards.protocol.outcomes import CardOutcome, outcomes_for
from customers.models import Customer


@dataclass
class Trial:
    exchange: Exchange
    outcomes: dict[str, CardOutcome]
    # Entries of the answer no requested key reads, ignored by real loads (findings).
    unrequested: list[UnrequestedCard] = field(default_factory=list)

    @property
    def hint(self) -> str:
        """Likely causes of a 401 or 403, naming the signature header; else ""."""
        return refusal_hint(self.exchange)

    signed_with: str = ""  # fingerprints of the signing secrets, or "unsigned"

    @property
    def ok(self) -> bool:
        return all(outcome.ok for outcome in self.outcomes.values())


def card_api_try(
    *,
    url: str,
    headers: list[tuple[str, str]],
    keys: list[str],
    customer: Customer,
    signing_secrets: Sequence[str] = (),
) -> Trial:
    """Send one real, signed request for `keys` and judge the answer; stores nothing.

    `signing_secrets` are a config's own; without them CARDS_SIGNING_SECRETS sign.
    """
    body = build_request_body(customer=customer, keys=keys)
    sent = build_request_headers(configured=headers, body=body, secrets=signing_secrets)
    exchange = post_cards(url=url.strip(), headers=sent, body=body)
    return Trial(
        exchange=exchange,
        outcomes=outcomes_for(exchange, keys),
        unrequested=_unrequested(exchange, keys),
        signed_with=request_signed_with(signing_secrets),
    )


def _unrequested(exchange: Exchange, keys: list[str]) -> list[UnrequestedCard]:
    if exchange.error_kind or exchange.status_code != 200:
        return []
    return unrequested_cards(body=exchange.response_body, keys=keys)


def card_response_judge(*, body: bytes, keys: list[str]) -> Trial:
    """Judge a saved response body as if a card API had answered it with status 200."""
    started = time.monotonic()
    exchange = Exchange(url="", request_headers={}, request_body=b"", status_code=200)
    exchange.response_body = body
    limit = settings.CARDS_MAX_RESPONSE_BYTES
    if len(body) > limit:
        exchange.error_kind = CardInstance.ErrorKind.RESPONSE_BODY
        exchange.error_message = f"the body is {len(body)} bytes; the limit is {limit}"
    outcomes = outcomes_for(exchange, keys)
    exchange.duration_ms = int((time.monotonic() - started) * 1000)
    return Trial(exchange=exchange, outcomes=outcomes, unrequested=_unrequested(exchange, keys))


def sample_customer(*, email: str = "alex@example.com", external_id: str | None = None) -> Customer:
    """An unsaved customer for trying an API when no real one is picked."""
    return Customer(public_id="c_sample", email=email, external_id=external_id, full_name="")
