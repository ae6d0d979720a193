"""The rules of a card config (SPEC §2), in one place.

The admin forms (`cards.configuration.forms`) and the config import
(`cards.configuration.transfer`) both call these functions, so a bad value gets the same
message wherever it comes from. Each rule takes an already-typed value (str or int) and
returns a list of messages, empty when the value is fine. Rules that need context (other
configs, other headers of the same config) take it as arguments rather than querying,
except `key_taken_errors`, whose whole point is the query.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

from cards.models import (
    MAX_HEADERS,
    MAX_ORDER,
    MAX_TTL_SECONDS,
    MIN_TTL_SECONDS,
    CardConfig,
    header_name_validator,
    key_validator,
)
from cards.protocol.signing import dialect

MAX_TITLE_LENGTH = 500
MAX_KEY_LENGTH = 500
MAX_URL_LENGTH = 600
MAX_HEADER_NAME_LENGTH = 100
MAX_HEADER_VALUE_LENGTH = 500
# Matches the model field's validators; not a SPEC §2 rule, but checked the same way.
MIN_REQUESTS_PER_SECOND = 1
MAX_REQUESTS_PER_SECOND = 10_000

# Headers this app sets itself on every request (SPEC §3); an admin-given one would clash.
RESERVED_HEADER_NAMES = (
    "Host",
    "Content-Length",
    "Content-Type",
    "Accept",
    "Transfer-Encoding",
    "Connection",
    "User-Agent",
)


def reserved_header_names() -> list[str]:
    """Reserved names including the protocol's signature and workspace headers (settings)."""
    spoken = dialect()
    return [*RESERVED_HEADER_NAMES, spoken.signature_header, spoken.workspace_header]


def normalize_header_name(name: str) -> str:
    """How header names compare: trimmed, ignoring case (SPEC §4)."""
    return name.strip().lower()


def _length_errors(value: str, *, what: str, maximum: int) -> list[str]:
    if not value:
        return [f"Enter {what} (1 to {maximum:,} characters)."]
    if len(value) > maximum:
        return [
            f"{what.capitalize()} is at most {maximum:,} characters (this one has {len(value):,})."
        ]
    return []


def title_errors(title: str) -> list[str]:
    errors = _length_errors(title, what="a title", maximum=MAX_TITLE_LENGTH)
    if not errors and "\x00" in title:
        errors.append("A title may not contain NUL characters.")
    return errors


def key_errors(key: str) -> list[str]:
    """Length and characters of a key; uniqueness is `key_taken_errors` (it needs the DB)."""
    errors = _length_errors(key, what="a key", maximum=MAX_KEY_LENGTH)
    if not errors and not key_validator.regex.search(key):
        errors.append("A key uses only letters, digits, hyphens and underscores (no spaces).")
    return errors


def key_taken_errors(*, key: str, exclude_pk: int | None = None) -> list[str]:
    other = CardConfig.objects.filter(key=key).exclude(pk=exclude_pk).first()
    if other is None:
        return []
    return [f'The key "{key}" is already used by the card config "{other.title}".']


def default_ttl_errors(ttl: int) -> list[str]:
    if MIN_TTL_SECONDS <= ttl <= MAX_TTL_SECONDS:
        return []
    return [
        f"The default TTL is a whole number of seconds from {MIN_TTL_SECONDS} to "
        f"{MAX_TTL_SECONDS:,} (one year); got {ttl:,}."
    ]


def api_url_errors(url: str) -> list[str]:
    errors = _length_errors(url, what="an API URL", maximum=MAX_URL_LENGTH)
    if errors:
        return errors
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:
        return ["Enter a valid URL, such as https://api.example.com/cards."]
    if url.lower().startswith("http://") and not settings.CARDS_ALLOW_HTTP:
        return [
            "Use an https:// URL: plain http:// is allowed only where the CARDS_ALLOW_HTTP "
            "setting is on (e.g. the demo)."
        ]
    return []


def order_errors(order: int) -> list[str]:
    if 0 <= order <= MAX_ORDER:
        return []
    return [f"The order is a whole number from 0 to {MAX_ORDER:,}; got {order:,}."]


def max_requests_per_second_errors(rate: int) -> list[str]:
    if MIN_REQUESTS_PER_SECOND <= rate <= MAX_REQUESTS_PER_SECOND:
        return []
    return [
        f"The keep-warm rate limit is a whole number of requests per second from "
        f"{MIN_REQUESTS_PER_SECOND} to {MAX_REQUESTS_PER_SECOND:,}; got {rate:,}."
    ]


def header_name_errors(name: str) -> list[str]:
    errors = _length_errors(name, what="a header name", maximum=MAX_HEADER_NAME_LENGTH)
    if errors:
        return errors
    # The model's regex, our message (the model's has a bare "%" that breaks formatting).
    if not header_name_validator.regex.search(name):
        return [
            f'"{name}" is not a valid header name: an HTTP token uses letters, digits and '
            "!#$%&'*+.^_`|~- only, without spaces or colons."
        ]
    reserved = {normalize_header_name(reserved): reserved for reserved in reserved_header_names()}
    if normalize_header_name(name) in reserved:
        return [
            f'"{name}" is a reserved header: Customer Cards sets it itself. Reserved (ignoring '
            f"case): {', '.join(reserved.values())}."
        ]
    return []


def header_value_errors(value: str) -> list[str]:
    errors = _length_errors(value, what="a header value", maximum=MAX_HEADER_VALUE_LENGTH)
    if errors:
        return errors
    # A line break would let a value smuggle in another header; HTTP clients refuse these
    # (and a leading space) at request time, so refuse them here, where they can be fixed.
    if any((ord(char) < 32 and char != "\t") or ord(char) == 127 for char in value):
        return ["A header value may not contain line breaks or other control characters."]
    if value[0] in " \t":
        return ["A header value may not start with white space."]
    return []


def header_count_errors(count: int) -> list[str]:
    if count <= MAX_HEADERS:
        return []
    return [f"A card config has at most {MAX_HEADERS} API headers; this one has {count}."]


def header_duplicate_errors(names: Sequence[str]) -> dict[int, list[str]]:
    """Errors keyed by the index of every repeated name after its first occurrence."""
    seen: set[str] = set()
    errors: dict[int, list[str]] = {}
    for index, name in enumerate(names):
        normalized = normalize_header_name(name)
        if normalized in seen:
            errors[index] = [
                f'The header "{name.strip()}" is given twice (names are compared ignoring case).'
            ]
        seen.add(normalized)
    return errors


def enabled_limit_errors(*, enabled_after: int, enabling: bool) -> list[str]:
    """Refuse to enable a config when that would exceed CARDS_MAX_ENABLED_CONFIGS.

    Only enabling is refused: when the setting is lowered below the current count,
    editing an already enabled config must still work.
    """
    limit = settings.CARDS_MAX_ENABLED_CONFIGS
    if not enabling or enabled_after <= limit:
        return []
    return [
        f"At most {limit} card configs may be enabled at once (CARDS_MAX_ENABLED_CONFIGS); "
        f"this would make {enabled_after}. Disable another config first, or keep this one "
        "disabled."
    ]


# The single-value rules by model field name, for callers that validate field by field.
FIELD_RULES: dict[str, Callable[[Any], list[str]]] = {
    "title": title_errors,
    "key": key_errors,
    "api_url": api_url_errors,
    "default_ttl_seconds": default_ttl_errors,
    "order": order_errors,
    "max_requests_per_second": max_requests_per_second_errors,
}


def card_config_errors(data: Mapping[str, Any]) -> dict[str, list[str]]:
    """Every context-free rule of SPEC §2 applied to one config.

    `data` holds typed values under model field names, and optionally `headers`, a list of
    (name, value) pairs. Fields absent from `data` are not checked. Errors are keyed by
    field name, with `headers` for the header set and `headers[i].name` / `headers[i].value`
    for one header. Uniqueness of the key and the enabled limit need the other configs and
    are checked by the caller (`key_taken_errors`, `enabled_limit_errors`).
    """
    errors: dict[str, list[str]] = {}
    for field, rule in FIELD_RULES.items():
        if field in data and (messages := rule(data[field])):
            errors[field] = messages
    if "headers" in data:
        headers: list[tuple[str, str]] = list(data["headers"])
        if messages := header_count_errors(len(headers)):
            errors["headers"] = messages
        for index, (name, value) in enumerate(headers):
            if messages := header_name_errors(name):
                errors[f"headers[{index}].name"] = messages
            if messages := header_value_errors(value):
                errors[f"headers[{index}].value"] = messages
        for index, messages in header_duplicate_errors([name for name, _ in headers]).items():
            errors.setdefault(f"headers[{index}].name", []).extend(messages)
    return errors
