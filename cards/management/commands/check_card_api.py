from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from cards.integrator.findings import count
from cards.integrator.preview import Trial, card_api_try, card_response_judge, sample_customer
from cards.models import CardConfig
from cards.protocol.http.guard import url_refusal

# How much of a non-200 answer's body is printed (the stored excerpt is 4 KiB).
SHOWN_EXCERPT_CHARS = 2000


class Command(BaseCommand):
    help = (
        "Check a card API as an integrator: --url URL [--header 'Name: value']... --key K... "
        "[--email E] [--external-id X] sends a real signed request; --file PATH --key K... "
        "validates a saved response body instead; --config KEY sends to that saved config's "
        "URL with its headers and signing secrets. Reports, per key, valid or every error "
        "with its JSON path, every warning (what loads but is outside the strict contract), "
        "plus status, timing and size; a non-200 answer's body, a hint on 401/403, and every "
        "card in the answer that was not requested (ignored by real loads). Exits 1 unless "
        "every key is valid; with --strict, also on any warning (for CI)."
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
        parser.add_argument(
            "--strict",
            action="store_true",
            help="Fail (exit 1) on warnings too: hold the API to the strict contract, the "
            "JSON Schema (docs/card-response.schema.json).",
        )

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
        warned = sum(len(outcome.warnings) for outcome in trial.outcomes.values())
        if not trial.ok:
            raise SystemExit(1)
        if warned and options["strict"]:
            self.stdout.write(
                self.style.ERROR(
                    f"--strict: {warned} warning{'s' if warned != 1 else ''}; the strict "
                    "contract (the JSON Schema) refuses what they describe."
                )
            )
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
            if exchange.status_code not in (None, 200) and exchange.response_body:
                excerpt = exchange.response_body.decode("utf-8", errors="replace")
                cut = " [cut]" if len(excerpt) > SHOWN_EXCERPT_CHARS else ""
                self.stdout.write(f"Body: {excerpt[:SHOWN_EXCERPT_CHARS]}{cut}")
            if trial.hint:
                self.stdout.write(self.style.WARNING(f"Hint: {trial.hint}"))
        else:
            self.stdout.write(f"File: {len(exchange.response_body)} bytes")
        for key, outcome in trial.outcomes.items():
            if outcome.ok:
                shown = (
                    "components: null (hidden)"
                    if outcome.components is None
                    else count(len(outcome.components), "component")
                )
                warned = len(outcome.warnings)
                if warned:
                    shown += f", {warned} warning{'s' if warned != 1 else ''}"
                self.stdout.write(self.style.SUCCESS(f"✓ {key}: valid, {shown}"))
                for warning in outcome.warnings:
                    path = f"{warning['path']}: " if warning.get("path") else ""
                    self.stdout.write(self.style.WARNING(f"    ! {path}{warning['message']}"))
                continue
            self.stdout.write(self.style.ERROR(f"✗ {key}: {outcome.error_kind}"))
            problems = outcome.detail.get("problems") or [outcome.detail]
            for problem in problems:
                path = f"{problem['path']}: " if problem.get("path") else ""
                self.stdout.write(f"    {path}{problem.get('message', '')}")
        for extra in trial.unrequested:
            self.stdout.write(self.style.WARNING(f"! {extra.describe()}"))
