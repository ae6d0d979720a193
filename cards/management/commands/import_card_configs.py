import json
import sys
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from cards.configs import card_configs_import


class Command(BaseCommand):
    help = (
        "Create or update card configs, matched by key, from a JSON file in the "
        "export_card_configs format (use - for standard input). Every item is checked "
        "against the same rules as the admin form; if any item is bad, nothing is imported "
        "and every problem is listed. A masked header value keeps the stored value."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", help="JSON file: a list of card configs, or - for stdin")

    def handle(self, *args, file: str, **options) -> None:
        try:
            text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"Cannot read {file}: {exc}") from exc
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CommandError(f"{file} is not valid JSON: {exc}") from exc
        try:
            result = card_configs_import(items=items)
        except ValidationError as exc:
            problems = "\n".join(f"  {message}" for message in exc.messages)
            raise CommandError(f"{file} was not imported; nothing changed.\n{problems}") from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Card configs: {result.created} created, {result.updated} updated, "
                f"{result.unchanged} unchanged."
            )
        )
