import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from cards.protocol.schema import response_json_schema


class Command(BaseCommand):
    help = (
        "Write the JSON Schema (draft 2020-12) of a card API response (SPEC §5) to stdout, "
        "or to --output PATH. The committed copy is docs/card-response.schema.json; "
        "regenerate it with --output docs/card-response.schema.json after changing "
        "cards/protocol/schema (a test fails while they differ)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--output", "-o", metavar="PATH", help="file to write instead")

    def handle(self, *args, output: str | None = None, **options):
        text = json.dumps(response_json_schema(), indent=2) + "\n"
        if output is None:
            self.stdout.write(text, ending="")
            return
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"Cannot write {output}: {exc}") from exc
        self.stdout.write(self.style.SUCCESS(f"Wrote the card response schema to {output}"))
