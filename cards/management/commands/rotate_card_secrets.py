from django.core.management.base import BaseCommand, CommandError

from cards.configuration.transfer import card_secrets_rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt every card API header value with the first key in "
        "CARDS_ENCRYPTION_KEYS. To rotate: put a new key first, keep the old one after it, "
        "run this, then drop the old key. All or nothing."
    )

    def handle(self, *args, **options) -> None:
        try:
            count = card_secrets_rotate()
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {count} header values."))
