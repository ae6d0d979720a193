import csv
import io
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from config.commandline import import_refused
from customers.imports import IMPORT_FIELDS
from customers.services import UnreadableRow, customers_import

_BOM = b"\xef\xbb\xbf"


def _open(file: str) -> BinaryIO:
    if file == "-":
        return sys.stdin.buffer
    try:
        return Path(file).open("rb")  # noqa: SIM115 (closed by the command)
    except OSError as exc:
        raise CommandError(f"Cannot read {file}: {exc}") from exc


def _format(file: str, head: bytes) -> str:
    """ "csv", "jsonl" or "json" (a list), from the extension, else the first character."""
    suffix = Path(file).suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    first = head.removeprefix(_BOM).lstrip()[:1]
    if first == b"[":
        return "json"
    if first == b"{":
        return "jsonl"
    return "json" if suffix == ".json" else "csv"


def _csv_rows(file: str, text: io.TextIOBase) -> Iterator[Any]:
    reader = csv.DictReader(text)
    try:
        header = reader.fieldnames or []
        unknown = [name for name in header if name not in IMPORT_FIELDS]
        if unknown:
            raise CommandError(
                f"{file}: unknown column{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(repr(n) for n in unknown)} in the header row; expected: "
                f"{', '.join(IMPORT_FIELDS)}"
            )
        if "email" not in header:
            raise CommandError(f"{file}: the header row has no email column")
        for row in reader:
            if None in row:
                yield UnreadableRow(f"line {reader.line_num} has more cells than the header row")
            else:
                yield row
    except csv.Error as exc:
        raise CommandError(f"{file} is not valid CSV: line {reader.line_num}: {exc}") from exc


def _json_lines(text: io.TextIOBase) -> Iterator[Any]:
    for line_number, line in enumerate(text, start=1):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError as exc:
            yield UnreadableRow(f"line {line_number} is not valid JSON: {exc}")


class Command(BaseCommand):
    help = (
        "Create or update customers, matched by email ignoring case, and their tenants, "
        "matched by external id, from a CSV file (with a header row), JSON lines (one "
        "object per line) or JSON (a list of objects, read whole: use JSON lines for big "
        "files), with the fields email, externalId, fullName, tenantExternalId, "
        "tenantName. The format comes from the extension (.csv, .jsonl, .ndjson), else "
        "the content; use - for stdin. CSV and JSON lines are streamed in constant memory "
        "and written in batches, with a progress line every 100,000 rows. All or "
        "nothing: if any row is bad, nothing is imported and the problems are listed by "
        "row (the first 100)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", help="A .csv, .jsonl or .json file, or - for standard input")

    def handle(self, *args, file: str, verbosity: int = 1, **options) -> None:
        source = _open(file)
        try:
            buffered = source if hasattr(source, "peek") else io.BufferedReader(source)
            kind = _format(file, buffered.peek(64)[:64])
            # utf-8-sig: spreadsheets often start CSV exports with a byte order mark.
            text = io.TextIOWrapper(buffered, encoding="utf-8-sig", newline="")
            if kind == "json":
                try:
                    rows: Any = json.load(text)
                except json.JSONDecodeError as exc:
                    raise CommandError(f"{file} is not valid JSON: {exc}") from exc
            else:
                rows = _csv_rows(file, text) if kind == "csv" else _json_lines(text)

            started = time.monotonic()

            def progress(line: str) -> None:
                if verbosity >= 1:
                    self.stdout.write(f"{file}: {line} ({time.monotonic() - started:.0f} s)")

            try:
                result = customers_import(rows=rows, on_progress=progress)
            except ValidationError as exc:
                raise import_refused(file, exc) from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"Cannot read {file}: {exc}; nothing changed.") from exc
        finally:
            if source is not sys.stdin.buffer:
                source.close()
        self.stdout.write(
            self.style.SUCCESS(
                f"Customers: {result.created} created, {result.updated} updated, "
                f"{result.unchanged} unchanged. Tenants: {result.tenants_created} created, "
                f"{result.tenants_updated} updated."
            )
        )
