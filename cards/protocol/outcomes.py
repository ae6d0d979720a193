"""From one exchange with a card API to one outcome per requested card (SPEC §5, §6).

Pure functions, no database: the loading service stores what these decide.
"""

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import models

from cards.protocol.http import Exchange
from cards.protocol.schema import ReadCard, read_card

logger = logging.getLogger(__name__)


class ErrorKind(models.TextChoices):
    """Why a card failed to load (SPEC §6); stored on the instance and the request log."""

    TIMEOUT = "TIMEOUT"
    REQUEST = "REQUEST"
    STATUS_CODE = "STATUS_CODE"
    RESPONSE_BODY = "RESPONSE_BODY"
    MISSING_CARD = "MISSING_CARD"
    CARD_TOO_BIG = "CARD_TOO_BIG"
    UNKNOWN = "UNKNOWN"


BODY_EXCERPT_BYTES = 4096
# Deeper JSON is refused before validation: real cards nest a few levels, and parsers and
# validators recurse per level (100,000 levels exhausted the stack; issue 13).
MAX_JSON_DEPTH = 64
NUL = "\x00"


@dataclass
class CardOutcome:
    """What happened to one card: loaded components, or an error with its detail."""

    key: str
    error_kind: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    components: list[dict] | None = None
    ttl_seconds: int | None = None
    # Non-fatal problems of a loaded card (SPEC §5, last paragraph): [{"path", "message"}].
    warnings: list[dict[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.error_kind

    @property
    def retriable(self) -> bool:
        return _is_retriable(
            self.error_kind, self.detail.get("statusCode"), self.detail.get("transient", True)
        )

    @property
    def cached(self) -> bool:
        """Integration errors are cached (SPEC §6); retriable ones are not."""
        return not self.ok and not self.retriable


# SPEC §6 retries and never caches REQUEST. Issue 17 narrows that, and wins over the
# SPEC's table: only what may pass on its own is transient (timeouts of the connection,
# the read or the name resolution, a reset or refused connection, DNS). A refusal by the
# outbound guard (§8), an invalid TLS certificate or TLS setup, and a request that cannot
# be sent (an invalid URL, a non-Latin-1 header value) are integration errors: REQUEST
# with `transient: false` in the detail, not retried, cached CARDS_ERROR_TTL_SECONDS
# (5 min), so every view does not try, and log, again.
def _is_retriable(error_kind: str, status_code: int | None, transient: bool = True) -> bool:
    if error_kind == ErrorKind.TIMEOUT:
        return True
    if error_kind == ErrorKind.REQUEST:
        return transient
    return error_kind == ErrorKind.STATUS_CODE and (
        status_code == 429 or (status_code is not None and status_code >= 500)
    )


def exchange_is_retriable(exchange: Exchange) -> bool:
    """Whether the whole request failed in a way worth one more try after a pause."""
    if exchange.error_kind:
        return _is_retriable(exchange.error_kind, None, exchange.error_transient)
    return exchange.status_code != 200 and _is_retriable(
        ErrorKind.STATUS_CODE, exchange.status_code
    )


def _excerpt(body: bytes) -> str:
    # NUL is valid UTF-8 but no database text or JSON column takes it (PostgreSQL refuses).
    return body[:BODY_EXCERPT_BYTES].decode("utf-8", errors="replace").replace(NUL, "\ufffd")


def _without_nul(value: Any) -> Any:
    """`value` with every NUL in its strings (keys too) replaced by U+FFFD, for storing."""
    if isinstance(value, str):
        return value.replace(NUL, "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    return value


def json_depth_over(value: Any, limit: int) -> bool:
    """Whether `value` nests arrays and objects more than `limit` deep (iterative)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


def json_nul_path(value: Any, path: str) -> str | None:
    """The JSON path of the first string (or object key) holding a NUL, if any."""
    stack = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if NUL in item:
                return where
        elif isinstance(item, dict):
            for key, child in reversed(item.items()):
                if NUL in key:
                    return where
                stack.append((child, f"{where}.{key}"))
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{i}]") for i, child in reversed(list(enumerate(item))))
    return None


def _fail_all(keys: list[str], kind: str, detail: dict[str, Any]) -> dict[str, CardOutcome]:
    return {key: CardOutcome(key=key, error_kind=kind, detail=dict(detail)) for key in keys}


def outcomes_for(exchange: Exchange, keys: list[str]) -> dict[str, CardOutcome]:
    """Decide every requested card's outcome; never raises (UNKNOWN is logged).

    Details never hold a NUL character, whatever the API sent: they are stored as JSON.
    """
    try:
        outcomes = _outcomes_for(exchange, keys)
    except Exception as exc:
        logger.exception("Unexpected failure interpreting a card API answer from %s", exchange.url)
        outcomes = _fail_all(keys, ErrorKind.UNKNOWN, {"message": f"{type(exc).__name__}: {exc}"})
    for outcome in outcomes.values():
        if not outcome.ok:
            outcome.detail = _without_nul(outcome.detail)
    return outcomes


def _outcomes_for(exchange: Exchange, keys: list[str]) -> dict[str, CardOutcome]:
    base: dict[str, Any] = {"durationMs": exchange.duration_ms}
    if exchange.status_code is not None:
        base["statusCode"] = exchange.status_code
    if exchange.error_kind:
        detail = {**base, "message": exchange.error_message}
        if not exchange.error_transient:
            detail["transient"] = False  # an integration error (see _is_retriable)
        if exchange.response_body:
            detail["bodyExcerpt"] = _excerpt(exchange.response_body)
        return _fail_all(keys, exchange.error_kind, detail)
    if exchange.status_code != 200:
        return _fail_all(
            keys,
            ErrorKind.STATUS_CODE,
            {
                **base,
                "message": f"the card API answered with status {exchange.status_code}; "
                "only 200 is processed",
                "bodyExcerpt": _excerpt(exchange.response_body),
            },
        )
    try:
        body = json.loads(exchange.response_body)
    except RecursionError:
        body = None
        too_deep = True
    except (ValueError, UnicodeDecodeError) as exc:
        return _fail_all(
            keys,
            ErrorKind.RESPONSE_BODY,
            {
                **base,
                "message": f"the body is not valid JSON: {exc}",
                "bodyExcerpt": _excerpt(exchange.response_body),
            },
        )
    else:
        too_deep = json_depth_over(body, MAX_JSON_DEPTH)
    if too_deep:
        return _fail_all(
            keys,
            ErrorKind.RESPONSE_BODY,
            {
                **base,
                "message": f"the JSON nests arrays and objects more than {MAX_JSON_DEPTH} "
                "levels deep; cards need far fewer",
                "bodyExcerpt": _excerpt(exchange.response_body[:200]),
            },
        )
    if not isinstance(body, dict) or not isinstance(body.get("cards"), list):
        got = "an object without a cards array" if isinstance(body, dict) else _json_type(body)
        return _fail_all(
            keys,
            ErrorKind.RESPONSE_BODY,
            {
                **base,
                "path": "cards",
                "message": f"expected a JSON object with a cards array, got {got}",
                "bodyExcerpt": _excerpt(exchange.response_body),
            },
        )
    entries = _first_entry_per_key(body["cards"])
    # JSON strings cannot hold a raw NUL, only its escape: without one, no walk is needed.
    may_hold_nul = b"\\u0000" in exchange.response_body
    return {
        key: _card_outcome(key, entries.get(key), base, may_hold_nul=may_hold_nul) for key in keys
    }


def _json_type(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def _first_entry_per_key(cards: list[Any]) -> dict[str, tuple[int, dict]]:
    """For a repeated key the first wins; entries that are not keyed objects are ignored."""
    entries: dict[str, tuple[int, dict]] = {}
    for index, entry in enumerate(cards):
        if isinstance(entry, dict) and isinstance(entry.get("key"), str):
            entries.setdefault(entry["key"], (index, entry))
    return entries


def _card_outcome(
    key: str, found: tuple[int, dict] | None, base: dict[str, Any], *, may_hold_nul: bool
) -> CardOutcome:
    if found is None:
        return CardOutcome(
            key=key,
            error_kind=ErrorKind.MISSING_CARD,
            detail={**base, "path": "cards", "message": f'no card with key "{key}" in cards'},
        )
    index, entry = found
    path = f"cards[{index}]"
    if may_hold_nul and (where := json_nul_path(entry, path)):
        return CardOutcome(
            key=key,
            error_kind=ErrorKind.RESPONSE_BODY,
            detail={
                **base,
                "path": where,
                "message": "a string holds a NUL character (\\u0000), which cannot be stored "
                "or shown; remove it",
            },
        )
    size = len(json.dumps(entry.get("components"), separators=(",", ":")).encode())
    limit = settings.CARDS_MAX_CARD_BYTES
    if size > limit:
        return CardOutcome(
            key=key,
            error_kind=ErrorKind.CARD_TOO_BIG,
            detail={
                **base,
                "path": f"{path}.components",
                "message": f"the card's components are {size} bytes as JSON; the limit is {limit}",
                "sizeBytes": size,
                "limitBytes": limit,
            },
        )
    result = read_card(entry, path=path)
    if isinstance(result, ReadCard):
        return CardOutcome(
            key=key,
            components=result.components,
            ttl_seconds=result.ttl_seconds,
            warnings=[{"path": w.path, "message": w.message} for w in result.warnings[:50]],
        )
    first = result[0]
    return CardOutcome(
        key=key,
        error_kind=ErrorKind.RESPONSE_BODY,
        detail={
            **base,
            "path": first.path,
            "message": first.message,
            "problems": [{"path": p.path, "message": p.message} for p in result[:50]],
        },
    )
