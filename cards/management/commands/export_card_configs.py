import json
import os

from django.core.management.base import BaseCommand, CommandError

from cards.configuration.transfer import card_configs_export


class Command(BaseCommand):
    help = (
        "Write every card config as JSON, in the format import_card_configs reads. Header "
        "values are masked (importing the file keeps the stored values) unless "
        "--with-secrets is given."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--output", "-o", help="Write to this file instead of stdout.")
        parser.add_argument(
            "--with-secrets",
            action="store_true",
            help="Include header values in full. Treat the file as a secret.",
        )

    def handle(self, *args, output: str | None, with_secrets: bool, **options) -> None:
        items = card_configs_export(with_secrets=with_secrets)
        text = json.dumps(items, indent=2, ensure_ascii=False) + "\n"
        if not output:
            self.stdout.write(text, ending="")
            return
        try:
            # Owner-only from the first byte: the file may hold secrets.
            fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with open(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
        except OSError as exc:
            raise CommandError(f"Cannot write {output}: {exc}") from exc
        secrets = "with header values in full" if with_secrets else "header values masked"
        self.stdout.write(f"Wrote {len(items)} card configs to {output} ({secrets}).")
