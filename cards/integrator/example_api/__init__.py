"""The example card API (SPEC §10): a real card API served by the app itself.

`POST /examples/cards/` speaks the card protocol (SPEC §3, §5): it reads
`{"cardKeys": [...], "customer": {...}, "tenant": {...}}` and answers `{"cards": [...]}` with
every known key that was asked for, in the order asked. Unknown keys are left out, so the
loading engine reports MISSING_CARD for them. Known keys: see `CARD_BUILDERS`.

The data is made up but stable: it is derived from the customer's email (a seeded random
generator per card), so two customers look different and one customer looks the same on
every load of the same day (dates are relative to today).

When `CARDS_SIGNING_SECRETS` is set, requests must carry a valid signature header
(the header and mode `CARDS_PROTOCOL` selects: `cards.protocol.signing.dialect`) for one of
those secrets or of a card config's own, verified on the raw body bytes; otherwise the
answer is 401.
The view exists only while `CARDS_EXAMPLE_API_ENABLED` is true (404 otherwise; off by
default in `config.settings.production`).

Testing hooks for tests and benchmarks, as query parameters on the configured URL. They
are not a public knob (SPEC §7 "Isolation"): they work only while
`CARDS_EXAMPLE_API_HOOKS` is true (by default, when `DEBUG` is on; off in production
unless set), and a request using one otherwise gets 403 with the reason:

- `?delay_ms=N`: sleep N milliseconds before answering (capped at 20,000), to exercise
  deadlines and the loading states.
- `?ttl=N`: set `timeToLiveSeconds` to N on every card (any integer, so out-of-range
  values can be tested too).
- `?status=N`: answer with HTTP status N (200..599) and a small JSON error body instead
  of the cards (after the signature check and the delay).

For example `http://127.0.0.1:8000/examples/cards/?delay_ms=3000&ttl=30`. The view is
async: a delayed answer waits on the event loop under ASGI, holding no thread.
"""

import asyncio
import hashlib
import hmac
import json

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from cards.integrator.example_api.data import CARD_BUILDERS, CARD_TITLES, example_cards
from cards.models import CardConfig
from cards.protocol.signing import dialect, verify_signature

__all__ = ["CARD_BUILDERS", "CARD_TITLES", "example_cards", "example_cards_view"]

MAX_DELAY_MS = 20_000
HOOKS = ("delay_ms", "ttl", "status")


# --- The view ------------------------------------------------------------------------


class _BadHook(ValueError):
    pass


def _int_param(request: HttpRequest, name: str) -> int | None:
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise _BadHook(f"?{name} must be an integer, got {raw!r}") from None


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def _signature_is_valid(request: HttpRequest) -> bool:
    header = request.headers.get(dialect().signature_header, "")
    secrets = [secret for secret in settings.CARDS_SIGNING_SECRETS if secret]
    # Configs' own secrets too (admin generates them per card API), so a demo config given
    # its own secret still loads from this API. One small query: this is the demo API.
    for config in CardConfig.objects.filter(signing_secret__isnull=False).only(
        "signing_secret", "signing_secret_previous"
    ):
        secrets += config.signing_secrets
    if dialect().signature_mode == "body":
        # Plain-compatible mode: the bare hex HMAC-SHA256 of the body, no timestamp.
        return any(
            hmac.compare_digest(
                header.encode(),
                hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest().encode(),
            )
            for secret in secrets
        )
    return bool(header) and any(
        verify_signature(request.body, header, secret=secret) for secret in secrets
    )


@csrf_exempt
@require_POST
async def example_cards_view(request: HttpRequest) -> HttpResponse:
    """Answer the card protocol with made-up, per-customer cards (see the module docstring)."""
    if not settings.CARDS_EXAMPLE_API_ENABLED:
        raise Http404("The example card API is disabled.")
    used = [name for name in HOOKS if name in request.GET]
    if used and not settings.CARDS_EXAMPLE_API_HOOKS:
        return _error(
            403,
            f"The example API's test hooks ({', '.join('?' + name for name in used)}) are off "
            "here: they work only with DEBUG on or CARDS_EXAMPLE_API_HOOKS=true.",
        )
    try:
        delay_ms = _int_param(request, "delay_ms")
        ttl = _int_param(request, "ttl")
        status = _int_param(request, "status")
    except _BadHook as exc:
        return _error(400, str(exc))
    if status is not None and not 200 <= status <= 599:
        return _error(400, f"?status must be an HTTP status (200..599), got {status}")

    # The check reads configs' own secrets: a query, so on a thread (this view is async).
    if settings.CARDS_SIGNING_SECRETS and not await sync_to_async(_signature_is_valid)(request):
        return _error(401, f"Missing or invalid {dialect().signature_header} header.")
    if delay_ms:
        await asyncio.sleep(min(max(delay_ms, 0), MAX_DELAY_MS) / 1000)
    if status is not None and status != 200:
        return _error(status, f"Status {status} forced by ?status.")

    try:
        payload = json.loads(request.body)
    except ValueError:
        return _error(400, "The body is not JSON.")
    if not isinstance(payload, dict) or not isinstance(payload.get("cardKeys"), list):
        return _error(400, 'Expected a JSON object with a "cardKeys" array.')
    return JsonResponse(example_cards(payload=payload, ttl=ttl))
