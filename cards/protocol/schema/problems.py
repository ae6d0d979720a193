"""Pydantic's validation errors in an integrator's words, each with its JSON path (SPEC §5)."""

import difflib
import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from cards.protocol.schema.models import (
    COMPONENT_NAMES,
    CONTAINER_CHILD_NAMES,
    FIELDS_UNDER,
    LEAF_COMPONENT_NAMES,
)


@dataclass(frozen=True)
class Problem:
    """One schema error: where (a JSON path such as `cards[0].components[2]`) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


_TYPE_NAMES = {
    "string_type": "a string",
    "int_type": "an integer",
    "list_type": "an array",
    "model_type": "an object",
    "dict_type": "an object",
}
_SHAPE_ERRORS = {"union_tag_invalid", "union_tag_not_found"}
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def problems_from(exc: ValidationError, *, prefix: str) -> list[Problem]:
    """One Problem per pydantic error, its path written below `prefix` (e.g. "cards[0]")."""
    problems = []
    for error in exc.errors(include_url=False):
        loc = _clean_loc(error["loc"])
        problems.append(Problem(path=_format_path(prefix, loc), message=_message(error, loc)))
    return problems


def _clean_loc(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    # A tagged union puts its tag in the path before the branch's own field, and our tags are
    # the component names: (…, 3, "componentText", "componentText", "text"). Drop the tag.
    out: list[int | str] = []
    for i, part in enumerate(loc):
        is_tag = (
            i > 0
            and isinstance(loc[i - 1], int)
            and part in COMPONENT_NAMES
            and i + 1 < len(loc)
            and loc[i + 1] == part
        )
        if not is_tag:
            out.append(part)
    return tuple(out)


def _format_path(prefix: str, loc: tuple[int | str, ...]) -> str:
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif _IDENTIFIER.match(part):
            path += f".{part}" if path else part
        else:
            path += f"[{json.dumps(part, ensure_ascii=False)}]"
    return path


def _message(error: ErrorDetails, loc: tuple[int | str, ...]) -> str:
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        parent = loc[-2] if len(loc) >= 2 else None
        allowed = FIELDS_UNDER.get(parent) if isinstance(parent, str) else None
        if allowed:
            return f"unknown field; {parent} allows only {', '.join(allowed)}"
        return "unknown field"
    if kind in _TYPE_NAMES:
        return f"expected {_TYPE_NAMES[kind]}, got {describe_value(value)}"
    if kind == "string_too_long":
        return f"expected at most {ctx['max_length']} characters, got {len(value)}"
    if kind == "string_too_short":
        n = ctx["min_length"]
        return f"expected at least {n} character{'s' if n != 1 else ''}, got {len(value)}"
    if kind == "too_short":
        return f"expected at least {ctx['min_length']} component, got none"
    if kind == "greater_than_equal":
        return f"expected at least {ctx['ge']}, got {value}"
    if kind == "less_than_equal":
        return f"expected at most {ctx['le']}, got {value}"
    if kind == "literal_error":
        choices = ", ".join(re.findall(r"'([^']*)'", ctx["expected"]))
        got = _json(value) if isinstance(value, str) else describe_value(value)
        return f"expected one of {choices}, got {got}"
    if kind == "http_url":
        return f"expected an absolute http:// or https:// URL, got {_json(value)}"
    if kind in _SHAPE_ERRORS:
        return shape_message(value, parent=_list_owner(loc))
    msg = error["msg"]
    return msg[:1].lower() + msg[1:]


def _list_owner(loc: tuple[int | str, ...]) -> str | None:
    """The field holding the component list a bad component sits in, e.g. "rowMainContent"."""
    return loc[-2] if len(loc) >= 2 and isinstance(loc[-2], str) else None


# Where a component list sits decides what it may hold: (the place, its rule, allowed keys).
_PLACES = {
    "rowMainContent": ("a row", "a row holds only leaf components", LEAF_COMPONENT_NAMES),
    "rowAsideContent": ("a row", "a row holds only leaf components", LEAF_COMPONENT_NAMES),
    "containerContent": (
        "a container",
        "a container holds any component but a container",
        CONTAINER_CHILD_NAMES,
    ),
}


def shape_message(value: Any, *, parent: str | None) -> str:
    """Why an element of a component list is not a component it may hold."""
    place, rule, allowed = _PLACES.get(parent or "", ("", "", COMPONENT_NAMES))
    if not isinstance(value, dict):
        return f"expected a component object, got {describe_value(value)}"
    keys = [str(key) for key in value]
    expected = f"expected exactly one component key ({', '.join(allowed)})"
    if not keys:
        return f"{expected}, got none"
    if len(keys) > 1:
        return f"{expected}, got {len(keys)}: {', '.join(keys)}"
    name = keys[0]
    if name in COMPONENT_NAMES:  # a known component, in a place that may not hold it
        return f"{name} is not allowed inside {place} ({rule}: {', '.join(allowed)})"
    close = difflib.get_close_matches(name, allowed, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"unknown component {_json(name)}{hint}; expected one of {', '.join(allowed)}"


def describe_value(value: Any) -> str:
    """A JSON value in words, with the value itself when it is short: 'a number (5)'."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({_json(value)})"
    if isinstance(value, int | float):
        return f"a number ({_json(value)})"
    if isinstance(value, str):
        return f"a string ({_json(value)})"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _json(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"
