"""Card configs as code: import and export as JSON, and re-encryption of header values.

The format is a JSON list of objects, one per config:

    {"title": "Plan", "key": "plan", "apiUrl": "https://api.example.com/cards",
     "defaultTimeToLiveSeconds": 300, "order": 10, "isEnabled": true,
     "keepWarm": false, "maxRequestsPerSecond": 10,
     "apiHeaders": [{"name": "Authorization", "value": "Bearer ..."}],
     "shownToGroups": ["Billing"]}

`title`, `key` and `apiUrl` are required; an absent optional field keeps the stored value
of an existing config, or takes the default for a new one. A header value that contains
the mask (an export made without secrets) keeps the stored value of that header.
`shownToGroups` names existing auth groups (empty: every agent sees the card); signing
secrets are managed in admin only and are never exported.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.fernet import InvalidToken
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet, TextField, Value
from django.db.models.functions import Cast

from cards import crypto
from cards.configuration import validation
from cards.loading.invalidation import ConfigRequest, config_change_invalidate, config_request
from cards.models import CardConfig, CardConfigHeader

# JSON name -> (model field, JSON type). Order is the export's key order.
_FIELDS: dict[str, tuple[str, type]] = {
    "title": ("title", str),
    "key": ("key", str),
    "apiUrl": ("api_url", str),
    "defaultTimeToLiveSeconds": ("default_ttl_seconds", int),
    "order": ("order", int),
    "isEnabled": ("is_enabled", bool),
    "keepWarm": ("keep_warm", bool),
    "maxRequestsPerSecond": ("max_requests_per_second", int),
}
_REQUIRED = ("title", "key", "apiUrl")
_HEADERS = "apiHeaders"
_GROUPS = "shownToGroups"
_JSON_NAMES = {model_field: json_name for json_name, (model_field, _) in _FIELDS.items()}
_STRIPPED = ("title", "key", "api_url")


@dataclass(frozen=True)
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass
class _Plan:
    """One valid item, resolved against the database: the config's final state."""

    number: int
    values: dict[str, Any]
    headers: list[tuple[str, str]]
    key: str | None = None
    groups: list[Group] | None = None  # None: keep the stored ones
    existing: CardConfig | None = None
    # Position in the item's apiHeaders of each entry of `headers`, for error messages.
    header_positions: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    request_before: ConfigRequest | None = None  # what an existing config sent before


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _type_error(value: Any, expected: type) -> str | None:
    # bool is an int in Python but not in JSON: `"order": true` is a mistake.
    if expected is int and isinstance(value, int) and not isinstance(value, bool):
        return None
    if expected is not int and isinstance(value, expected):
        return None
    names = {str: "a string", int: "an integer", bool: "true or false"}
    shown = repr(value) if isinstance(value, str) and len(value) <= 40 else _json_type(value)
    return f"must be {names[expected]}, got {shown}"


def _stored_headers(config: CardConfig | None) -> list[tuple[str, str]]:
    return [(h.name, h.value) for h in config.headers.all()] if config else []


def _parse_headers(
    raw: Any, *, existing: CardConfig | None, errors: list[str]
) -> list[tuple[int, str, str]]:
    """The (position, name, value) of each well-formed header; masked values resolved."""
    if not isinstance(raw, list):
        errors.append(
            f"{_HEADERS}: must be a list of {{name, value}} objects, got {_json_type(raw)}"
        )
        return []
    stored = {validation.normalize_header_name(n): v for n, v in _stored_headers(existing)}
    headers: list[tuple[int, str, str]] = []
    for index, header in enumerate(raw):
        where = f"{_HEADERS}[{index}]"
        if not isinstance(header, dict) or set(header) != {"name", "value"}:
            errors.append(f'{where}: must be an object with exactly "name" and "value"')
            continue
        name, value = header["name"], header["value"]
        type_errors = [
            f"{where}.{part}: {message}"
            for part, item in (("name", name), ("value", value))
            if (message := _type_error(item, str))
        ]
        if type_errors:
            errors.extend(type_errors)
            continue
        name = name.strip()
        if crypto.MASK in value:
            kept = stored.get(validation.normalize_header_name(name))
            if kept is None:
                errors.append(
                    f'{where}.value: is masked ("{value}") but there is no stored "{name}" '
                    "header to keep; give the real value (export with --with-secrets)"
                )
                continue
            value = kept
        headers.append((index, name, value))
    return headers


def _parse_groups(raw: Any, *, errors: list[str]) -> list[Group]:
    """The groups a card is shown to, by name; each must exist already."""
    if not isinstance(raw, list) or not all(isinstance(name, str) for name in raw):
        errors.append(f"{_GROUPS}: must be a list of group names, got {_json_type(raw)}")
        return []
    found = {group.name: group for group in Group.objects.filter(name__in=raw)}
    for index, name in enumerate(raw):
        if name not in found:
            errors.append(f'{_GROUPS}[{index}]: no group "{name}"; create it in admin first')
    return [found[name] for name in dict.fromkeys(raw) if name in found]


def _parse_item(number: int, item: Any, *, existing: dict[str, CardConfig]) -> _Plan:
    plan = _Plan(number=number, values={}, headers=[])
    if not isinstance(item, dict):
        plan.errors.append(f"must be a JSON object, got {_json_type(item)}")
        return plan
    for name in item:
        if name not in _FIELDS and name not in (_HEADERS, _GROUPS):
            plan.errors.append(
                f'unknown field "{name}"; expected: {", ".join([*_FIELDS, _HEADERS, _GROUPS])}'
            )
    for name in _REQUIRED:
        if name not in item:
            plan.errors.append(f"{name}: is required")

    typed: dict[str, Any] = {}
    for json_name, (model_field, expected) in _FIELDS.items():
        if json_name not in item:
            continue
        if message := _type_error(item[json_name], expected):
            plan.errors.append(f"{json_name}: {message}")
            continue
        value = item[json_name]
        typed[model_field] = value.strip() if model_field in _STRIPPED else value

    plan.key = typed.get("key")
    config = existing.get(plan.key) if plan.key is not None else None
    plan.existing = config
    # Absent optional fields keep the stored value, or take the model's default.
    for json_name, (model_field, _) in _FIELDS.items():
        if model_field in typed:
            plan.values[model_field] = typed[model_field]
        elif json_name not in item:
            source = config or CardConfig()
            plan.values[model_field] = getattr(source, model_field)
    if _HEADERS in item:
        parsed = _parse_headers(item[_HEADERS], existing=config, errors=plan.errors)
        plan.header_positions = [index for index, _, _ in parsed]
        plan.headers = [(name, value) for _, name, value in parsed]
    else:
        plan.headers = _stored_headers(config)
    if _GROUPS in item:
        plan.groups = _parse_groups(item[_GROUPS], errors=plan.errors)

    checked = {name: value for name, value in plan.values.items() if name in typed}
    checked["headers"] = plan.headers
    for name, messages in validation.card_config_errors(checked).items():
        plan.errors.extend(f"{_json_path(name, plan)}: {message}" for message in messages)
    return plan


def _json_path(error_key: str, plan: _Plan) -> str:
    """`api_url` -> `apiUrl`; `headers[1].name` -> `apiHeaders[<its position>].name`."""
    if error_key in _JSON_NAMES:
        return _JSON_NAMES[error_key]
    if match := re.fullmatch(r"headers\[(\d+)\](.*)", error_key):
        index, rest = int(match[1]), match[2]
        position = plan.header_positions[index] if plan.header_positions else index
        return f"{_HEADERS}[{position}]{rest}"
    return _HEADERS


def _label(plan: _Plan) -> str:
    return f'item {plan.number} (key "{plan.key}")' if plan.key else f"item {plan.number}"


def _check_across_items(plans: list[_Plan]) -> None:
    """Rules over the whole file: each key once, and the enabled limit on the final state."""
    first_by_key: dict[str, int] = {}
    for plan in plans:
        key = plan.key
        if not key:
            continue
        if key in first_by_key:
            plan.errors.append(
                f'key: "{key}" is also given by item {first_by_key[key]}; each key may appear once'
            )
        else:
            first_by_key[key] = plan.number

    enabled_elsewhere = (
        CardConfig.objects.filter(is_enabled=True).exclude(key__in=list(first_by_key)).count()
    )
    enabled_after = enabled_elsewhere + sum(
        1 for plan in plans if plan.values.get("is_enabled") is True
    )
    for plan in plans:
        enabling = plan.values.get("is_enabled") is True and not (
            plan.existing and plan.existing.is_enabled
        )
        messages = validation.enabled_limit_errors(enabled_after=enabled_after, enabling=enabling)
        plan.errors.extend(f"isEnabled: {message}" for message in messages)


def _save(plan: _Plan) -> str:
    """Write one plan; returns "created", "updated" or "unchanged"."""
    outcome = _write(plan)
    if outcome == "updated":
        # What the change made stale expires, as on a save in admin.
        config_change_invalidate(config=plan.existing, before=plan.request_before)
    return outcome


def _write(plan: _Plan) -> str:
    config = plan.existing
    if config is None:
        config = CardConfig.objects.create(**plan.values)
        outcome, same_headers = "created", False
    else:
        plan.request_before = config_request(config=config)
        changed = [name for name, value in plan.values.items() if getattr(config, name) != value]
        for name in changed:
            setattr(config, name, plan.values[name])
        same_headers = _stored_headers(config) == plan.headers
        if changed or not same_headers:
            # Headers are part of their config: a change to them alone bumps `updated_at`
            # too (workers keep configs while it is unchanged, cards.loading.services).
            config.save(update_fields=[*changed, "updated_at"])
        outcome = "unchanged" if not changed and same_headers else "updated"
        if not same_headers:
            config.headers.all().delete()
    if not same_headers:
        CardConfigHeader.objects.bulk_create(
            CardConfigHeader(config=config, name=name, value=value) for name, value in plan.headers
        )
    if plan.groups is not None and {g.pk for g in plan.groups} != {
        g.pk for g in config.groups.all()
    }:
        config.groups.set(plan.groups)
        outcome = "updated" if outcome == "unchanged" else outcome
    return outcome


def card_configs_import(*, items: list[dict[str, Any]]) -> ImportResult:
    """Upsert card configs by key from a list of items in the export format.

    All or nothing: every item is checked against every SPEC §2 rule first (the same rules
    as the admin form, `cards.configuration.validation`), plus each key once per file and
    the enabled limit counted over the state after the import. If anything is wrong, nothing is
    written and ValidationError lists every problem as `item N (key "k"): field: message`.
    """
    if not isinstance(items, list):
        raise ValidationError("The file must hold a JSON list of card configs.")
    with transaction.atomic():
        keys = [item["key"] for item in items if isinstance(item, dict) and "key" in item]
        keys = [key.strip() for key in keys if isinstance(key, str)]
        existing = {
            config.key: config
            for config in CardConfig.objects.select_for_update()
            .filter(key__in=keys)
            .prefetch_related("headers")
        }
        plans = [
            _parse_item(number, item, existing=existing)
            for number, item in enumerate(items, start=1)
        ]
        _check_across_items(plans)
        errors = [f"{_label(plan)}: {message}" for plan in plans for message in plan.errors]
        if errors:
            raise ValidationError(errors)
        outcomes = [_save(plan) for plan in plans]
    return ImportResult(
        created=outcomes.count("created"),
        updated=outcomes.count("updated"),
        unchanged=outcomes.count("unchanged"),
    )


def card_configs_export(*, with_secrets: bool) -> list[dict[str, Any]]:
    """Every config in the import format, in display order; header values masked unless
    `with_secrets`."""
    exported = []
    configs = CardConfig.objects.prefetch_related("headers", "groups").order_by("order", "id")
    for config in configs:
        item: dict[str, Any] = {
            json_name: getattr(config, model_field)
            for json_name, (model_field, _) in _FIELDS.items()
        }
        item[_HEADERS] = [
            {
                "name": header.name,
                "value": header.value if with_secrets else crypto.mask(header.value),
            }
            for header in config.headers.all()
        ]
        item[_GROUPS] = sorted(group.name for group in config.groups.all())
        exported.append(item)
    return exported


def card_secrets_rotate() -> int:
    """Re-encrypt every stored header value with the first CARDS_ENCRYPTION_KEYS key.

    Works on the raw tokens (`crypto.rotate`), so values are never held decrypted here.
    All or nothing: a token no configured key can decrypt stops the rotation with
    ValueError and leaves every row as it was. Returns how many values were re-encrypted.
    """
    with transaction.atomic():
        rotated = _rotate_column(
            CardConfigHeader.objects.all(), "value", lambda pk: f"API header #{pk}"
        )
        for name in ("signing_secret", "signing_secret_previous"):
            rotated += _rotate_column(
                CardConfig.objects.filter(**{f"{name}__isnull": False}),
                name,
                lambda pk: f"The signing secret of card config #{pk}",
            )
    return rotated


def _rotate_column(rows: QuerySet, column: str, describe: Callable[[int], str]) -> int:
    """Re-encrypt `column` of `rows` with the first key, on its raw tokens; ValueError
    naming the row (`describe(pk)`) when no configured key decrypts one."""
    # Cast to a plain text column: read the stored token, not the decrypted value.
    tokens = (
        rows.select_for_update()
        .annotate(token=Cast(column, output_field=TextField()))
        .values_list("pk", "token")
    )
    rotated = 0
    for pk, token in tokens:
        try:
            new_token = crypto.rotate(token)
        except InvalidToken as exc:
            raise ValueError(
                f"{describe(pk)} cannot be decrypted with any key in "
                "CARDS_ENCRYPTION_KEYS; nothing was rotated."
            ) from exc
        # A Value expression is written as is: assigning the string would encrypt again.
        rows.filter(pk=pk).update(**{column: Value(new_token, output_field=TextField())})
        rotated += 1
    return rotated
