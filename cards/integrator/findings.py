"""What the integrator tools say beyond the requested cards' outcomes (issue 16).

- Unrequested cards: the engine reads only the keys it asked for (SPEC §5: "cards not
  requested are ignored"), so an answer's extra cards, and entries that are not cards at
  all, are dropped silently when cards load. The preview, the playground and
  `check_card_api` name each one, and say whether it would be valid had it been asked for,
  so an integrator never believes an ignored card is used.
- Refusals: a 401 or 403 usually means a credential or the signature; the hint names the
  signature header and says whether this request carried one.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings

from cards.protocol.http import Exchange
from cards.protocol.outcomes import outcomes_for


@dataclass(frozen=True)
class UnrequestedCard:
    """An entry of `cards` that no requested key reads: ignored when cards load."""

    path: str  # "cards[3]"
    key: str | None  # None: not a card (not an object with a string key)
    valid: bool
    message: str  # why it would be refused, or what it holds

    def describe(self) -> str:
        if self.key is None:
            return f"{self.path} is not a card ({self.message}): ignored"
        verdict = "would be valid" if self.valid else f"would be refused: {self.message}"
        return f'{self.path} "{self.key}" was not requested: ignored ({verdict})'


def _what(entry: object) -> str:
    if not isinstance(entry, dict):
        return f"a card is an object, got {type(entry).__name__}"
    if "key" not in entry:
        return 'it has no "key"'
    return f'its "key" is {type(entry["key"]).__name__}, not a string'


def unrequested_cards(*, body: bytes, keys: Sequence[str]) -> list[UnrequestedCard]:
    """Every entry of an answer's `cards` that none of `keys` reads, in order.

    Nothing when the body is not a JSON object with a cards array (the outcomes say so).
    A repeated requested key is not listed here: the first wins (the playground notes it).
    """
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return []
    cards = document.get("cards") if isinstance(document, dict) else None
    if not isinstance(cards, list):
        return []
    requested = set(keys)
    found: list[tuple[int, str | None, object]] = []
    seen: set[str] = set()
    for index, entry in enumerate(cards):
        key = entry.get("key") if isinstance(entry, dict) else None
        if not isinstance(key, str):
            found.append((index, None, entry))
        elif key not in requested and key not in seen:
            found.append((index, key, entry))
        if isinstance(key, str):
            seen.add(key)
    extra_keys = [key for _, key, _ in found if key is not None]
    judged = {}
    if extra_keys:
        # The engine's own judgement of each, as if it had been asked for.
        exchange = Exchange(url="", request_headers={}, request_body=b"", status_code=200)
        exchange.response_body = body
        judged = outcomes_for(exchange, extra_keys)
    unrequested = []
    for index, key, entry in found:
        path = f"cards[{index}]"
        if key is None:
            unrequested.append(
                UnrequestedCard(path=path, key=None, valid=False, message=_what(entry))
            )
            continue
        outcome = judged[key]
        message = (
            "components: null (hidden)"
            if outcome.ok and outcome.components is None
            else count(len(outcome.components), "component")
            if outcome.ok
            else f"{outcome.detail.get('path', path)}: {outcome.detail.get('message', '')}"
        )
        unrequested.append(UnrequestedCard(path=path, key=key, valid=outcome.ok, message=message))
    return unrequested


def signature_sent(exchange: Exchange) -> bool:
    name = settings.CARDS_SIGNATURE_HEADER.lower()
    return any(header.lower() == name for header in exchange.request_headers)


def refusal_hint(exchange: Exchange) -> str:
    """For a 401 or 403: the likely causes, naming the signature header; else ""."""
    if exchange.status_code not in (401, 403):
        return ""
    header = settings.CARDS_SIGNATURE_HEADER
    if signature_sent(exchange):
        signed = (
            f"This request was signed ({header}, mode {settings.CARDS_SIGNATURE_MODE}): check "
            "that the API verifies with the same secret (CARDS_SIGNING_SECRETS) and mode, "
            "over the exact body bytes, and that the clocks agree within 5 minutes."
        )
    else:
        signed = (
            f"This request was NOT signed (no {header} header: CARDS_SIGNING_SECRETS is "
            "empty); an API that verifies signatures refuses it."
        )
    return (
        f"The card API refused the request ({exchange.status_code}): a credential or the "
        f"signature is the likely cause. {signed} Check also the config's headers (e.g. "
        "Authorization)."
    )


def count(n: int, noun: str) -> str:
    """1 component, 2 components."""
    return f"{n} {noun}{'' if n == 1 else 's'}"
