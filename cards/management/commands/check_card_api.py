from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from cards.integrator.preview import Trial, card_api_try, card_response_judge, sample_customer
from cards.models import CardConfig
from cards.protocol.http.guard import url_refusal


class Command(BaseCommand):
    help = (
        "Check a card API as an integrator: --url URL [--header 'Name: value']... --key K... "
        "[--email E] [--external-id X] sends a real signed request; --file PATH --key K... "
        "validates a saved response body instead; --config KEY sends to that saved config's "
        "URL with its headers and signing secrets. Reports, per key, valid or every error "
        "with its JSON path, plus status, timing and size. Exits 1 unless every key is valid."
    )

    def add_arguments(self, parser):
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--url")
        source.add_argument("--file", type=Path)
        source.add_argument("--config", metavar="CONFIG_KEY")
        parser.add_argument("--key", action="append", default=[], metavar="KEY")
        parser.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'")
        parser.add_argument("--email", default="alex@example.com")
        parser.add_argument("--external-id", default=None)

    def handle(self, *args, **options):
        keys = options["key"]
        if options["config"]:
            config = CardConfig.objects.filter(key=options["config"]).first()
            if config is None:
                raise CommandError(f'No card config with key "{options["config"]}".')
            trial = card_api_try(
                url=config.api_url,
                headers=[(h.name, h.value) for h in config.headers.all()],
                keys=keys or [config.key],
                customer=sample_customer(
                    email=options["email"], external_id=options["external_id"]
                ),
                signing_secrets=config.signing_secrets,
            )
        elif not keys:
            raise CommandError("Give at least one --key.")
        elif options["file"]:
            try:
                body = options["file"].read_bytes()
            except OSError as exc:
                raise CommandError(f"Cannot read {options['file']}: {exc}") from exc
            trial = card_response_judge(body=body, keys=keys)
        else:
            if reason := url_refusal(options["url"].strip()):
                raise CommandError(f"--url: {reason}")
            trial = card_api_try(
                url=options["url"],
                headers=[self._header(raw) for raw in options["header"]],
                keys=keys,
                customer=sample_customer(
                    email=options["email"], external_id=options["external_id"]
                ),
            )
        self._report(trial)
        if not trial.ok:
            raise SystemExit(1)

    @staticmethod
    def _header(raw: str) -> tuple[str, str]:
        name, sep, value = raw.partition(":")
        if not sep or not name.strip():
            raise CommandError(f'--header must look like "Name: value", got "{raw}"')
        return name.strip(), value.strip()

    def _report(self, trial: Trial) -> None:
        exchange = trial.exchange
        if exchange.url:
            self.stdout.write(
                f"POST {exchange.url} -> status {exchange.status_code or '-'}, "
                f"{exchange.duration_ms} ms, {len(exchange.response_body)} bytes, "
                f"signed with: {trial.signed_with}"
            )
        else:
            self.stdout.write(f"File: {len(exchange.response_body)} bytes")
        for key, outcome in trial.outcomes.items():
            if outcome.ok:
                shown = (
                    "components: null (hidden)"
                    if outcome.components is None
                    else f"{len(outcome.components)} components"
                )
                self.stdout.write(self.style.SUCCESS(f"✓ {key}: valid, {shown}"))
                continue
            self.stdout.write(self.style.ERROR(f"✗ {key}: {outcome.error_kind}"))
            problems = outcome.detail.get("problems") or [outcome.detail]
            for problem in problems:
                path = f"{problem['path']}: " if problem.get("path") else ""
                self.stdout.write(f"    {path}{problem.get('message', '')}")
