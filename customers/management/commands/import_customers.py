import csv
import io
import json
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from config.commandline import import_refused, read_input
from customers.services import customers_import


def _looks_like_json(path: str, text: str) -> bool:
    suffix = Path(path).suffix.lower()
    if suffix in (".json", ".csv"):
        return suffix == ".json"
    return text.lstrip().startswith(("[", "{"))


def _rows_from_csv(text: str) -> list[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(text))
    rows = []
    for row in reader:
        if None in row:
            raise CommandError(f"Line {reader.line_num} has more cells than the header row.")
        rows.append(row)
    return rows


class Command(BaseCommand):
    help = (
        "Create or update customers, matched by email ignoring case, and their tenants, "
        "matched by external id, from a CSV (with a header row) or JSON (a list of objects) "
        "file with the fields email, externalId, fullName, tenantExternalId, tenantName. "
        "The format comes from the extension, else the content; use - for stdin. If any row "
        "is bad, nothing is imported and every problem is listed."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", help="A .csv or .json file, or - for standard input")

    def handle(self, *args, file: str, **options) -> None:
        # utf-8-sig: spreadsheets often start CSV exports with a byte order mark.
        text = read_input(file, encoding="utf-8-sig")
        if _looks_like_json(file, text):
            try:
                rows = json.loads(text)
            except json.JSONDecodeError as exc:
                raise CommandError(f"{file} is not valid JSON: {exc}") from exc
        else:
            try:
                rows = _rows_from_csv(text)
            except csv.Error as exc:
                raise CommandError(f"{file} is not valid CSV: {exc}") from exc
        try:
            result = customers_import(rows=rows)
        except ValidationError as exc:
            raise import_refused(file, exc) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Customers: {result.created} created, {result.updated} updated, "
                f"{result.unchanged} unchanged. Tenants: {result.tenants_created} created, "
                f"{result.tenants_updated} updated."
            )
        )
