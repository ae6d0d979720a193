import json

from django.core.management.base import BaseCommand, CommandError

from cards.background.dispatch import DispatchUnavailable, uses_broker
from cards.background.enqueue import cards_enqueue_stale
from cards.live.selectors import CardView, card_list
from cards.loading.services import card_configs_enabled, cards_load
from customers.models import Customer
from customers.selectors import customer_find


class Command(BaseCommand):
    help = (
        "Reload cards of some customers (--customer, by public id, email or external id; "
        "repeatable) or of all (--all), for some keys (--key, repeatable; default every "
        "enabled card). Bypasses the cache like the reload button, unless --if-stale. "
        "With a broker (REDIS_URL) it enqueues by default; --sync, or no broker, loads in "
        "the foreground and exits 1 unless every card loaded (--sync prints one line per "
        "card, --json one JSON object per line)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--customer", action="append", default=[], metavar="REF")
        parser.add_argument("--all", action="store_true", help="every customer")
        parser.add_argument("--key", action="append", default=None, metavar="KEY")
        parser.add_argument(
            "--if-stale",
            action="store_true",
            help="load only what is missing, expired or dead, as opening the page does",
        )
        parser.add_argument("--sync", action="store_true", help="load in the foreground")
        parser.add_argument("--json", action="store_true", help="with --sync: JSON lines")

    def handle(self, *args, **options):
        customers = self._customers(options)
        configs = card_configs_enabled(keys=options["key"])
        if options["key"]:
            unknown = set(options["key"]) - {c.key for c in configs}
            if unknown:
                raise CommandError(f"No enabled card config with key: {', '.join(sorted(unknown))}")
        if not configs:
            raise CommandError("There are no enabled card configs.")
        force = not options["if_stale"]
        if not options["sync"] and uses_broker():
            self._enqueue(customers, configs, force=force)
            return
        # Without a broker, loads handed to this process's pool would die with it: they
        # run here, and the exit status says whether every card loaded (issue 17).
        loaded = total = 0
        for customer in customers:
            cards_load(customer=customer, configs=configs, force=force)
            for view in card_list(customer=customer, keys=[c.key for c in configs]):
                total += 1
                loaded += view.state == "loaded"
                if options["sync"]:
                    self.stdout.write(self._line(customer, view, as_json=options["json"]))
        if not options["sync"]:
            self.stdout.write(
                f"Loaded {loaded} of {total} cards for {len(customers)} customers "
                "(no broker: in the foreground)."
            )
        if loaded < total:
            raise SystemExit(1)

    def _customers(self, options) -> list[Customer]:
        if options["all"]:
            return list(Customer.objects.select_related("tenant").order_by("pk"))
        if not options["customer"]:
            raise CommandError("Name customers with --customer (repeatable) or use --all.")
        customers = []
        for ref in options["customer"]:
            customer = customer_find(ref=ref)
            if customer is None:
                raise CommandError(f'No customer with public id, email or external id "{ref}".')
            customers.append(customer)
        return customers

    def _enqueue(self, customers, configs, *, force: bool) -> None:
        count = 0
        for customer in customers:
            instances = {i.config_id: i for i in customer.card_instances.all()}
            try:
                count += len(
                    cards_enqueue_stale(
                        customer=customer, configs=configs, instances=instances, force=force
                    )
                )
            except DispatchUnavailable as exc:
                raise CommandError(f"Could not enqueue loads: {exc}") from exc
        self.stdout.write(f"Enqueued {count} card loads for {len(customers)} customers.")

    @staticmethod
    def _line(customer: Customer, view: CardView, *, as_json: bool) -> str:
        expires_at = view.expires_at.isoformat() if view.expires_at else None
        if as_json:
            return json.dumps(
                {
                    "customer": customer.email,
                    "key": view.key,
                    "state": view.state,
                    "hidden": view.hidden,
                    "stale": view.stale,
                    "expiresAt": expires_at,
                    "ttlSeconds": view.instance.ttl_seconds if view.instance else None,
                    "error": view.error,
                    "components": view.components,
                }
            )
        error = view.error
        outcome = f"{error['kind']}: {error['message']}" if error else "ok"
        return f"{customer.email}\t{view.key}\t{view.state}\t{outcome}\texpires {expires_at}"
