"""Helpers shared by management commands of several apps."""

import json
import sys
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from cards.protocol.outcomes import json_depth_over, json_nul_path

# Config and customer files nest a few levels; deeper is a mistake or an attack.
MAX_JSON_DEPTH = 32


def read_input(file: str, *, encoding: str = "utf-8") -> str:
    """The text of FILE, or of standard input for "-", or a CommandError saying why not."""
    try:
        return sys.stdin.read() if file == "-" else Path(file).read_text(encoding=encoding)
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"Cannot read {file}: {exc}") from exc


def import_refused(file: str, exc: ValidationError) -> CommandError:
    """The error of an all-or-nothing import: every problem, one per line."""
    problems = "\n".join(f"  {message}" for message in exc.messages)
    return CommandError(f"{file} was not imported; nothing changed.\n{problems}")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise ValueError(f'duplicate key "{key}" in one object (which one should win?)')
        found[key] = value
    return found


def json_document(text: str, *, source: str) -> Any:
    """The JSON in `text`, or a one-line CommandError: invalid JSON, a duplicate key in an
    object, numbers past Python's 4,300 digits, nesting past MAX_JSON_DEPTH levels, or a
    NUL character (no database column stores one)."""
    try:
        document = json.loads(text, object_pairs_hook=_unique_keys)
    except RecursionError:
        raise CommandError(
            f"{source} is not valid here: its JSON nests more than {MAX_JSON_DEPTH} levels deep"
        ) from None
    except ValueError as exc:
        reason = str(exc).split(";")[0] if "digits" in str(exc) else str(exc)
        raise CommandError(f"{source} is not valid JSON: {reason}") from None
    if json_depth_over(document, MAX_JSON_DEPTH):
        raise CommandError(
            f"{source} is not valid here: its JSON nests more than {MAX_JSON_DEPTH} levels deep"
        )
    if "\\u0000" in text and (where := json_nul_path(document, "")):
        raise CommandError(
            f"{source} is not valid here: {where.lstrip('.') or 'the document'} holds a NUL "
            "character (\\u0000), which cannot be stored"
        )
    return document
