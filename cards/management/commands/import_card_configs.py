from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand

from cards.configuration.transfer import card_configs_import
from config.commandline import import_refused, json_document, read_input


class Command(BaseCommand):
    help = (
        "Create or update card configs, matched by key, from a JSON file in the "
        "export_card_configs format (use - for standard input). Every item is checked "
        "against the same rules as the admin form; if any item is bad, nothing is imported "
        "and every problem is listed. A masked header value keeps the stored value. Duplicate "
        "keys in an object, NUL characters and JSON nested past 32 levels are refused."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", help="JSON file: a list of card configs, or - for stdin")

    def handle(self, *args, file: str, **options) -> None:
        items = json_document(read_input(file), source=file)
        try:
            result = card_configs_import(items=items)
        except ValidationError as exc:
            raise import_refused(file, exc) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Card configs: {result.created} created, {result.updated} updated, "
                f"{result.unchanged} unchanged."
            )
        )
