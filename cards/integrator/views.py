"""Tools for integrators, the engineers who build card APIs (SPEC §1, §5, §9).

- `card_preview` (staff; POST from the card config page): one real, signed request built
  from the form's current values, saved or not, judged by the code that judges a real load
  (`cards.integrator.preview.card_api_try`, as `check_card_api` does). Nothing is cached and nothing
  is logged. Answers an HTML fragment: the card as agents would see it, the request, the
  raw response and every problem with its JSON path.
- `playground` and `playground_check` (staff): paste a components array or a whole
  response and get every problem with its JSON path and line, and the rendering agents
  would see, as you type.
- `card_response_schema` (public, it holds no data): the JSON Schema of a response at a
  stable URL, generated from the models the validator uses.
"""

import json
import shlex
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import render
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET, require_POST

from cards.configuration import validation
from cards.configuration.forms import CardPreviewForm
from cards.configuration.save_check import config_save_refusals
from cards.crypto import can_reveal_secrets, mask
from cards.integrator.playground import (
    card_frame,
    outcome_problems,
    playground_examples,
    playground_result,
)
from cards.integrator.preview import card_api_try, sample_customer
from cards.models import MAX_HEADERS, CardConfig, CardInstance
from cards.protocol.http import Exchange
from cards.protocol.schema import response_json_schema
from cards.protocol.signing import dialect

ErrorKind = CardInstance.ErrorKind
CARD_FRAME_TEMPLATE = "admin/cards/cardconfig/_card_frame.html"
# Pretty-printed bodies beyond this are cut in the page (the raw limit is 2 MiB).
SHOWN_BODY_CHARS = 256 * 1024
# The inline formset prefix of CardConfigAdmin's headers (their related_name).
HEADERS_PREFIX = "headers"
# Headers a shell command needs no copy of: curl sets them itself.
CURL_SKIPPED_HEADERS = {"content-length", "connection", "accept-encoding", "host"}


def _is_staff(user: Any) -> bool:
    return bool(user.is_authenticated and user.is_active and user.is_staff)


@require_GET
@cache_control(public=True, max_age=3600)
def card_response_schema(request: HttpRequest) -> HttpResponse:
    """The JSON Schema of a card API response; public, so editors and CI can fetch it."""
    response = JsonResponse(
        response_json_schema(), json_dumps_params={"indent": 2, "ensure_ascii": False}
    )
    response["Access-Control-Allow-Origin"] = "*"
    return response


# --- Preview --------------------------------------------------------------------------


@dataclass
class PreviewInput:
    """What a preview sends: the config page's current values, checked like a save."""

    url: str = ""
    key: str = ""
    title: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    default_ttl_seconds: int | None = None
    signing_secrets: tuple[str, ...] = ()  # the config's own (only where its headers may go)
    errors: list[str] = field(default_factory=list)
    editable: bool = True  # False: a view-only page, previewing the saved config


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _may_edit(user: Any, config: CardConfig | None) -> bool:
    """Whether the user may change what is previewed: the config, or a new one."""
    return user.has_perm("cards.change_cardconfig" if config else "cards.add_cardconfig")


def _saved_input(config: CardConfig) -> PreviewInput:
    return PreviewInput(
        url=config.api_url,
        key=config.key,
        title=config.title,
        headers=[(h.name, h.value) for h in config.headers.all()],
        default_ttl_seconds=config.default_ttl_seconds,
        signing_secrets=config.signing_secrets,
        editable=False,
    )


def preview_input(*, data: QueryDict, config: CardConfig | None, user: Any) -> PreviewInput:
    """Read url, key and headers from the posted change form, saved or not (SPEC §8).

    A user who may not change the config previews the saved config as it is, whatever
    was posted. For the others, a blank header value of a saved header means "keep the
    stored one", as on save; a stored value is only sent to the config's saved URL, or
    to another one by a user who may also reveal secrets (`cards.reveal_secrets`). The
    config's own signing secrets follow the same rule; elsewhere the fallback signs.
    """
    if config is not None and ("api_url" not in data or not _may_edit(user, config)):
        return _saved_input(config)
    if "api_url" not in data:
        return PreviewInput(errors=["Nothing to preview: the form has no API URL."])
    if not _may_edit(user, config):
        return PreviewInput(errors=["Only users who may add card configs preview new ones."])
    found = PreviewInput(
        url=data.get("api_url", "").strip(),
        key=data.get("key", "").strip(),
        title=data.get("title", "").strip(),
        default_ttl_seconds=_int_or_none(data.get("default_ttl_seconds")),
    )
    found.errors += validation.api_url_errors(found.url)
    found.errors += validation.key_errors(found.key)
    stored = {h.pk: h.value for h in config.headers.all()} if config else {}
    stored_allowed = config is not None and (
        found.url == config.api_url.strip() or can_reveal_secrets(user)
    )
    if stored_allowed:
        found.signing_secrets = config.signing_secrets
    total = _int_or_none(data.get(f"{HEADERS_PREFIX}-TOTAL_FORMS")) or 0
    # More rows than a config may hold is refused below; reading a few past it is enough.
    for index in range(min(total, MAX_HEADERS + 5)):
        prefix = f"{HEADERS_PREFIX}-{index}-"
        name = data.get(prefix + "name", "").strip()
        value = data.get(prefix + "value", "")
        if data.get(prefix + "DELETE") or (not name and not value):
            continue
        stored_id = _int_or_none(data.get(prefix + "id"))
        if not value and stored_id in stored:
            if not stored_allowed:
                found.errors.append(
                    f"{name}: its stored value is only sent to the saved API URL. Type the "
                    "value to send it to another URL, or save the config first."
                )
                continue
            value = stored[stored_id]
        found.errors += validation.header_name_errors(name)
        found.errors += [f"{name}: {m}" for m in validation.header_value_errors(value)]
        found.headers.append((name, value))
    found.errors += validation.header_count_errors(len(found.headers))
    for messages in validation.header_duplicate_errors([n for n, _ in found.headers]).values():
        found.errors += messages
    return found


def _shown_headers(
    headers: dict[str, str], *, secret_names: set[str], reveal: bool
) -> list[dict[str, Any]]:
    """Headers as shown in the page: configured values masked unless `reveal` (SPEC §8)."""
    shown = []
    for name, value in headers.items():
        secret = name.strip().lower() in secret_names
        shown.append(
            {
                "name": name,
                "value": mask(value) if secret and not reveal else value,
                "secret": secret,
                "signature": name.lower() == dialect().signature_header.lower(),
            }
        )
    return shown


def _curl(exchange: Exchange, headers: list[dict[str, Any]]) -> str:
    """The request as a shell command, with the header values exactly as shown."""
    lines = [f"curl --request POST {shlex.quote(exchange.url)}"]
    for header in headers:
        if header["name"].lower() not in CURL_SKIPPED_HEADERS:
            lines.append(f"--header {shlex.quote(header['name'] + ': ' + header['value'])}")
    body = exchange.request_body.decode("utf-8", errors="replace")
    lines.append(f"--data-binary {shlex.quote(body)}")
    return " \\\n  ".join(lines)


def _shown_body(body: bytes) -> dict[str, Any]:
    """A body for reading: pretty JSON when it is JSON, else the text; cut when huge."""
    try:
        text, is_json = json.dumps(json.loads(body), indent=2, ensure_ascii=False), True
    except (ValueError, UnicodeDecodeError, RecursionError):
        text, is_json = body.decode("utf-8", errors="replace"), False
    return {
        "text": text[:SHOWN_BODY_CHARS],
        "is_json": is_json,
        "cut": len(text) > SHOWN_BODY_CHARS,
        "bytes": len(body),
    }


def _can_preview(user: Any) -> bool:
    return _is_staff(user) and any(
        user.has_perm(f"cards.{action}_cardconfig") for action in ("view", "add", "change")
    )


@require_POST
def card_preview(request: HttpRequest) -> HttpResponse:
    """Try the config page's current values against the card API; store nothing."""
    if not _can_preview(request.user):
        raise PermissionDenied
    config_id = _int_or_none(request.POST.get("preview-object_id"))
    config = (
        CardConfig.objects.prefetch_related("headers").filter(pk=config_id).first()
        if config_id
        else None
    )
    asked = preview_input(data=request.POST, config=config, user=request.user)
    # Every rule Save applies, by the forms Save uses; shown whether or not we send.
    refusals = config_save_refusals(data=request.POST, config=config) if asked.editable else []
    form = CardPreviewForm(request.POST, user=request.user)
    if form.is_valid():
        customer = form.cleaned_data["customer"] or sample_customer()
    else:
        asked.errors += [f"Customer: {m}" for m in form.errors.get("customer", [])]
    if asked.errors:
        return render(
            request,
            "admin/cards/cardconfig/_preview.html",
            {"errors": asked.errors, "save_refusals": refusals, "save_checked": asked.editable},
        )

    trial = card_api_try(
        url=asked.url,
        headers=asked.headers,
        keys=[asked.key],
        customer=customer,
        signing_secrets=asked.signing_secrets,
    )
    exchange, outcome = trial.exchange, trial.outcomes[asked.key]
    reveal = can_reveal_secrets(request.user)
    secret_names = {name.strip().lower() for name, _ in asked.headers}
    request_headers = _shown_headers(
        exchange.request_headers, secret_names=secret_names, reveal=reveal
    )
    context = {
        "key": asked.key,
        "card": card_frame(title=asked.title or asked.key, key=asked.key, outcome=outcome),
        "outcome": outcome,
        "problems": outcome_problems(outcome),
        "ttl_seconds": (
            outcome.ttl_seconds if outcome.ttl_seconds is not None else asked.default_ttl_seconds
        ),
        "customer": customer,
        "customer_is_sample": customer.pk is None,
        "exchange": exchange,
        "request_headers": request_headers,
        "request_body": _shown_body(exchange.request_body),
        "signature": exchange.request_headers.get(dialect().signature_header),
        "signature_header": dialect().signature_header,
        "signature_mode": dialect().signature_mode,
        "signed_with": trial.signed_with,
        "signed_with_own": bool(asked.signing_secrets),
        "response_headers": _shown_headers(
            exchange.response_headers, secret_names=set(), reveal=True
        ),
        "response_body": _shown_body(exchange.response_body),
        "curl": _curl(exchange, request_headers),
        "masked": bool(secret_names) and not reveal,
        "save_refusals": refusals,
        "save_checked": asked.editable,
        "hint": trial.hint,
        "unrequested": trial.unrequested,
    }
    return render(request, "admin/cards/cardconfig/_preview.html", context)


@staff_member_required
@require_GET
def playground(request: HttpRequest) -> HttpResponse:
    """The playground page; the checking happens in `playground_check` as you type."""
    return render(
        request,
        "cards/playground.html",
        {"examples": playground_examples(), "max_bytes": settings.CARDS_MAX_RESPONSE_BYTES},
    )


@require_POST
def playground_check(request: HttpRequest) -> JsonResponse:
    """Check the posted document (the raw request body, UTF-8); see `playground_result`."""
    if not _is_staff(request.user):
        return JsonResponse({"error": "Staff only."}, status=403)
    limit = settings.CARDS_MAX_RESPONSE_BYTES
    declared = _int_or_none(request.META.get("CONTENT_LENGTH")) or 0
    if declared > limit:  # refused before reading: the check's work grows with the input
        message = f"the document is {declared} bytes; a response may have at most {limit}"
        return JsonResponse(
            {
                "kind": "too_big",
                "valid": False,
                "summary": "Too big",
                "notes": [],
                "html": "",
                "problems": [{"path": "", "message": message, "line": 1}],
            },
        )  # 200: the page shows the answer like any other check
    text = request.body.decode("utf-8", errors="replace")
    # `?keys=a,b`: the keys a request would ask for (others are notes: ignored by loads).
    keys = [key.strip() for key in request.GET.get("keys", "").split(",") if key.strip()]
    return JsonResponse(playground_result(text, keys=keys or None))
