"""Helpers shared by management commands of several apps."""

import sys
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError


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
