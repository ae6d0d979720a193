from django.core.management.base import BaseCommand

from cards.loading.purge import cards_purge


class Command(BaseCommand):
    help = (
        "Delete card data whose expiry is older than CARDS_PURGE_AFTER_SECONDS, and request "
        "logs older than CARDS_REQUEST_LOG_RETENTION_SECONDS, in bounded batches."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=None)

    def handle(self, *args, **options):
        report = cards_purge(batch_size=options["batch_size"])
        self.stdout.write(
            f"Purged {report.instances} card instances and {report.requests} request logs."
        )
