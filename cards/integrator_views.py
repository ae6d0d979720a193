"""Tools for integrators, the engineers who build card APIs (SPEC §1, §5, §9).

- `card_preview` (staff; POST from the card config page): one real, signed request built
  from the form's current values, saved or not, judged by the code that judges a real load
  (`cards.preview.card_api_try`, as `check_card_api` does). Nothing is cached and nothing
  is logged. Answers an HTML fragment: the card as agents would see it, the request, the
  raw response and every problem with its JSON path.
- `playground` and `playground_check` (staff): paste a components array or a whole
  response and get every problem with its JSON path and line, and the rendering agents
  would see, as you type.
- `card_response_schema` (public, it holds no data): the JSON Schema of a response at a
  stable URL, generated from the models the validator uses.
"""

import json
import re
import shlex
from dataclasses import dataclass, field
from json.decoder import scanstring
from json.scanner import NUMBER_RE
from typing import Any

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils.safestring import SafeString
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET, require_POST

from cards import validation
from cards.admin import CardPreviewForm, can_reveal_secrets
from cards.crypto import mask
from cards.example_api import CARD_BUILDERS, CARD_TITLES, example_cards
from cards.http import Exchange
from cards.models import MAX_HEADERS, CardConfig, CardInstance
from cards.outcomes import CardOutcome
from cards.preview import card_api_try, card_response_judge, sample_customer
from cards.rendering import render_components
from cards.schema import Problem, response_json_schema, validate_components, validate_response
from cards.views import AGENT_REASONS

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


def _card_frame(*, title: str, key: str, outcome: CardOutcome) -> SafeString:
    """One card as an agent's page would show it (templates/cards/card.html's frame)."""
    hidden = outcome.ok and outcome.components is None
    return render_to_string(
        CARD_FRAME_TEMPLATE,
        {
            "title": title,
            "key": key,
            "hidden": hidden,
            "status": "loaded" if outcome.ok else "error",
            "reason": "" if outcome.ok else AGENT_REASONS.get(outcome.error_kind, ""),
            "components_html": render_components(outcome.components) if outcome.ok else "",
        },
    )


def _outcome_problems(outcome: CardOutcome) -> list[dict[str, str]]:
    """Every schema problem of a failed card (other errors have one message, shown alone)."""
    return list((outcome.detail or {}).get("problems") or [])


# --- Schema ---------------------------------------------------------------------------


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
    errors: list[str] = field(default_factory=list)


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def preview_input(*, data: QueryDict, config: CardConfig | None) -> PreviewInput:
    """Read url, key and headers from the posted change form, saved or not.

    A blank header value of a saved header means "keep the stored one", as on save. A page
    without inputs (a view-only user) previews the saved config as it is.
    """
    if "api_url" not in data:
        if config is None:
            return PreviewInput(errors=["Nothing to preview: the form has no API URL."])
        return PreviewInput(
            url=config.api_url,
            key=config.key,
            title=config.title,
            headers=[(h.name, h.value) for h in config.headers.all()],
            default_ttl_seconds=config.default_ttl_seconds,
        )
    found = PreviewInput(
        url=data.get("api_url", "").strip(),
        key=data.get("key", "").strip(),
        title=data.get("title", "").strip(),
        default_ttl_seconds=_int_or_none(data.get("default_ttl_seconds")),
    )
    found.errors += validation.api_url_errors(found.url)
    found.errors += validation.key_errors(found.key)
    stored = {h.pk: h.value for h in config.headers.all()} if config else {}
    total = _int_or_none(data.get(f"{HEADERS_PREFIX}-TOTAL_FORMS")) or 0
    # More rows than a config may hold is refused below; reading a few past it is enough.
    for index in range(min(total, MAX_HEADERS + 5)):
        prefix = f"{HEADERS_PREFIX}-{index}-"
        name = data.get(prefix + "name", "").strip()
        value = data.get(prefix + "value", "")
        if data.get(prefix + "DELETE") or (not name and not value):
            continue
        if not value:
            value = stored.get(_int_or_none(data.get(prefix + "id")), "")
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
                "signature": name.lower() == settings.CARDS_SIGNATURE_HEADER.lower(),
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
    asked = preview_input(data=request.POST, config=config)
    form = CardPreviewForm(request.POST, user=request.user)
    if form.is_valid():
        customer = form.cleaned_data["customer"] or sample_customer()
    else:
        asked.errors += [f"Customer: {m}" for m in form.errors.get("customer", [])]
    if asked.errors:
        return render(request, "admin/cards/cardconfig/_preview.html", {"errors": asked.errors})

    trial = card_api_try(url=asked.url, headers=asked.headers, keys=[asked.key], customer=customer)
    exchange, outcome = trial.exchange, trial.outcomes[asked.key]
    reveal = can_reveal_secrets(request.user)
    secret_names = {name.strip().lower() for name, _ in asked.headers}
    request_headers = _shown_headers(
        exchange.request_headers, secret_names=secret_names, reveal=reveal
    )
    context = {
        "key": asked.key,
        "card": _card_frame(title=asked.title or asked.key, key=asked.key, outcome=outcome),
        "outcome": outcome,
        "problems": _outcome_problems(outcome),
        "ttl_seconds": (
            outcome.ttl_seconds if outcome.ttl_seconds is not None else asked.default_ttl_seconds
        ),
        "customer": customer,
        "customer_is_sample": customer.pk is None,
        "exchange": exchange,
        "request_headers": request_headers,
        "request_body": _shown_body(exchange.request_body),
        "signature": exchange.request_headers.get(settings.CARDS_SIGNATURE_HEADER),
        "signature_header": settings.CARDS_SIGNATURE_HEADER,
        "signature_mode": settings.CARDS_SIGNATURE_MODE,
        "response_headers": _shown_headers(
            exchange.response_headers, secret_names=set(), reveal=True
        ),
        "response_body": _shown_body(exchange.response_body),
        "curl": _curl(exchange, request_headers),
        "masked": bool(secret_names) and not reveal,
    }
    return render(request, "admin/cards/cardconfig/_preview.html", context)


# --- Playground -----------------------------------------------------------------------

_WHITESPACE = " \t\n\r"
_LITERALS = ("true", "false", "null", "NaN", "Infinity", "-Infinity")
_PATH_PART = re.compile(r'\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]|\.?([A-Za-z_][A-Za-z0-9_]*)')

Location = tuple[str | int, ...]


def value_offsets(text: str) -> dict[Location, int]:
    """Where each value of a valid JSON text starts, keyed by its location.

    A location is the tuple of keys and indexes from the root: ("cards", 0, "key"). For a
    repeated key the last occurrence wins, as in `json.loads`. Call only with text that
    `json.loads` accepted.
    """
    offsets: dict[Location, int] = {}

    def skip(i: int) -> int:
        while i < len(text) and text[i] in _WHITESPACE:
            i += 1
        return i

    def value(i: int, loc: Location) -> int:
        i = skip(i)
        offsets[loc] = i
        char = text[i]
        if char in "{[":
            closing, index = ("}" if char == "{" else "]"), 0
            i = skip(i + 1)
            if text[i] == closing:
                return i + 1
            while True:
                if char == "{":
                    name, i = scanstring(text, skip(i) + 1)
                    i = value(skip(i) + 1, (*loc, name))  # past the colon
                else:
                    i = value(i, (*loc, index))
                    index += 1
                i = skip(i)
                if text[i] == closing:
                    return i + 1
                i += 1  # the comma
        if char == '"':
            return scanstring(text, i + 1)[1]
        for literal in _LITERALS:
            if text.startswith(literal, i):
                return i + len(literal)
        number = NUMBER_RE.match(text, i)
        return number.end() if number else i + 1

    value(0, ())
    return offsets


def path_location(path: str, *, root: str = "") -> Location:
    """A problem's JSON path as a location: "cards[0].components" -> ("cards", 0, "components").

    `root` names the document itself ("components" when a bare array was pasted).
    """
    if root and path.startswith(root):
        path = path[len(root) :]
    loc: list[str | int] = []
    for index, quoted, name in _PATH_PART.findall(path):
        if index:
            loc.append(int(index))
        elif quoted:
            loc.append(json.loads(quoted))
        else:
            loc.append(name)
    return tuple(loc)


def _line_of(text: str, offsets: dict[Location, int], loc: Location) -> int:
    """The 1-based line of the value at `loc`, or of its nearest existing ancestor (a missing
    field points at the object that lacks it)."""
    while loc and loc not in offsets:
        loc = loc[:-1]
    return text.count("\n", 0, offsets.get(loc, 0)) + 1


def _problem(problem: Problem, *, text: str, offsets: dict[Location, int], root: str) -> dict:
    loc = path_location(problem.path, root=root)
    return {
        "path": problem.path,
        "message": problem.message,
        "line": _line_of(text, offsets, loc),
    }


def _components_check(document: list, *, text: str, offsets: dict[Location, int]) -> dict:
    problems = validate_components(document)
    size = len(json.dumps(document, separators=(",", ":")).encode())
    limit = settings.CARDS_MAX_CARD_BYTES
    if size > limit:
        problems.append(
            Problem(
                path="components",
                message=f"the card's components are {size} bytes as JSON; the limit is {limit}",
            )
        )
    if problems:
        kind = ErrorKind.CARD_TOO_BIG if size > limit else ErrorKind.RESPONSE_BODY
        outcome = CardOutcome(key="playground", error_kind=kind)
        summary = _count(len(problems), "problem")
    else:
        outcome = CardOutcome(key="playground", components=document)
        summary = f"Valid: {_count(len(document), 'component')}"
    return {
        "kind": "components",
        "valid": not problems,
        "summary": summary,
        "problems": [_problem(p, text=text, offsets=offsets, root="components") for p in problems],
        "notes": [],
        "html": _card_frame(title="Your card", key="playground", outcome=outcome),
    }


def _response_check(document: dict, *, text: str, offsets: dict[Location, int]) -> dict:
    problems = validate_response(document)
    cards = document.get("cards") if isinstance(document.get("cards"), list) else []
    first_index: dict[str, int] = {}
    notes = []
    for index, entry in enumerate(cards):
        key = entry.get("key") if isinstance(entry, dict) else None
        if not isinstance(key, str):
            continue
        if key in first_index:
            notes.append(
                {
                    "path": f"cards[{index}]",
                    "message": f'key "{key}" repeats cards[{first_index[key]}]: the first '
                    "wins, this one is ignored",
                    "line": _line_of(text, offsets, ("cards", index)),
                }
            )
        else:
            first_index[key] = index
    # The engine's own judgement, card by card: what agents would see for each key.
    outcomes = card_response_judge(body=text.encode(), keys=list(first_index)).outcomes
    for outcome in outcomes.values():
        if outcome.error_kind == ErrorKind.CARD_TOO_BIG:
            problems.append(Problem(path=outcome.detail["path"], message=outcome.detail["message"]))
    html = "".join(
        _card_frame(title=key, key=key, outcome=outcome) for key, outcome in outcomes.items()
    )
    shown = [o for o in outcomes.values() if o.ok and o.components is not None]
    hidden = sum(1 for o in outcomes.values() if o.ok and o.components is None)
    if problems:
        summary = _count(len(problems), "problem")
    else:
        summary = f"Valid response: {_count(len(cards), 'card')}"
        if hidden:
            summary += f" ({hidden} hidden: components is null)"
    return {
        "kind": "response",
        "valid": not problems,
        "summary": summary,
        "problems": [_problem(p, text=text, offsets=offsets, root="") for p in problems],
        "notes": notes,
        "html": html if (shown or hidden or problems) else "",
    }


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _shape_hint(document: Any) -> str:
    if isinstance(document, dict):
        if len(document) == 1 and str(next(iter(document), "")).startswith("component"):
            return "this is one component: put it in an array, [ { ... } ]"
        if "components" in document:
            return 'this is one card: put it in {"cards": [ ... ]}, or paste its components'
        return 'expected a components array or a response {"cards": [...]}; no "cards" key'
    got = type(document).__name__
    return f'expected a components array or a response {{"cards": [...]}}, got {got}'


def playground_result(text: str) -> dict[str, Any]:
    """Check a pasted document: a components array, or a whole response {"cards": [...]}.

    Returns kind, valid, summary, problems (path, message, 1-based line), notes, and the
    HTML of the cards as agents would see them.
    """
    empty = {"valid": False, "problems": [], "notes": [], "html": ""}
    if not text.strip():
        return {**empty, "kind": "empty", "summary": "Paste a components array or a response."}
    size, limit = len(text.encode()), settings.CARDS_MAX_RESPONSE_BYTES
    if size > limit:
        message = f"the document is {size} bytes; a response may have at most {limit}"
        return {
            **empty,
            "kind": "too_big",
            "summary": "Too big",
            "problems": [{"path": "", "message": message, "line": 1}],
        }
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        problem = {"path": "", "message": f"not valid JSON: {exc.msg}", "line": exc.lineno}
        return {**empty, "kind": "syntax", "summary": "Not valid JSON", "problems": [problem]}
    except RecursionError:
        problem = {"path": "", "message": "not valid JSON: nested too deeply", "line": 1}
        return {**empty, "kind": "syntax", "summary": "Not valid JSON", "problems": [problem]}
    try:
        offsets = value_offsets(text)
    except RecursionError:
        offsets = {}
    if isinstance(document, list):
        return _components_check(document, text=text, offsets=offsets)
    if isinstance(document, dict) and "cards" in document:
        return _response_check(document, text=text, offsets=offsets)
    problem = {"path": "", "message": _shape_hint(document), "line": 1}
    return {**empty, "kind": "shape", "summary": "1 problem", "problems": [problem]}


def playground_examples() -> list[dict[str, str]]:
    """Starting points: every example card's components, a whole response, a broken one."""
    payload = {
        "cardKeys": list(CARD_BUILDERS),
        "customer": {"id": "c_sample", "email": "alex@example.com", "externalId": "u_123"},
    }
    response = example_cards(payload=payload)
    examples = [
        {
            "id": "response",
            "label": "A whole response (every example card)",
            "text": json.dumps(response, indent=2, ensure_ascii=False),
        }
    ]
    for card in response["cards"]:
        title = CARD_TITLES.get(card["key"], card["key"])
        if card["components"] is None:
            text = json.dumps({"cards": [card]}, indent=2)
        else:
            text = json.dumps(card["components"], indent=2, ensure_ascii=False)
        examples.append({"id": card["key"], "label": title, "text": text})
    broken = [
        {"componentText": {"text": "Plan: **Pro**", "textSize": "XL"}},
        {
            "componentRow": {
                "rowMainContent": [{"componentPlainText": {"plainText": "Status"}}],
                "rowAsideContent": [{"componentBadge": {"badgeLabel": "Active", "badgeColor": 3}}],
            }
        },
        {"componentLinkButton": {"linkButtonLabel": "Open", "linkButtonUrl": "/relative"}},
    ]
    examples.append(
        {
            "id": "broken",
            "label": "Broken on purpose (3 problems)",
            "text": json.dumps(broken, indent=2),
        }
    )
    return examples


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
    text = request.body.decode("utf-8", errors="replace")
    return JsonResponse(playground_result(text))
