"""The playground's checks: a pasted components array or whole response, judged by the
validator a real load uses, each problem located at its line in the text as typed.

Also the card frame the playground and the admin preview both render a card in.
"""

import bisect
import json
import re
from json.decoder import scanstring
from json.scanner import NUMBER_RE
from typing import Any

from django.conf import settings
from django.template.loader import render_to_string
from django.utils.safestring import SafeString

from cards.integrator.example_api import CARD_BUILDERS, CARD_TITLES, example_cards
from cards.integrator.preview import card_response_judge
from cards.live.display import AGENT_REASONS
from cards.live.rendering import render_components
from cards.models import CardInstance
from cards.protocol.outcomes import MAX_JSON_DEPTH, CardOutcome, json_depth_over
from cards.protocol.schema import Problem, read_components, read_response

ErrorKind = CardInstance.ErrorKind
CARD_FRAME_TEMPLATE = "admin/cards/cardconfig/_card_frame.html"
# Problems (and notes) listed with their line; the summary counts them all. Listing 80,000
# answered 23 MB (issue 13); nobody reads past the first screens, and fixing them first
# often fixes the rest.
MAX_PROBLEMS_LISTED = 200


def card_frame(*, title: str, key: str, outcome: CardOutcome) -> SafeString:
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


def outcome_problems(outcome: CardOutcome) -> list[dict[str, str]]:
    """Every schema problem of a failed card (other errors have one message, shown alone)."""
    return list((outcome.detail or {}).get("problems") or [])


# --- Schema ---------------------------------------------------------------------------


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


class Lines:
    """Line numbers of offsets in one text: the newlines are found once, then each lookup
    is a binary search (counting newlines per problem made the playground quadratic)."""

    def __init__(self, text: str) -> None:
        self.newlines = [match.start() for match in re.finditer("\n", text)]

    def of(self, offsets: dict[Location, int], loc: Location) -> int:
        """The 1-based line of the value at `loc`, or of its nearest existing ancestor (a
        missing field points at the object that lacks it)."""
        while loc and loc not in offsets:
            loc = loc[:-1]
        return bisect.bisect_left(self.newlines, offsets.get(loc, 0)) + 1


def _listed(problems: list[Problem], *, lines: Lines, offsets: dict, root: str) -> list[dict]:
    """The first MAX_PROBLEMS_LISTED problems with their lines, then how many more."""
    listed = [
        {
            "path": problem.path,
            "message": problem.message,
            "line": lines.of(offsets, path_location(problem.path, root=root)),
        }
        for problem in problems[:MAX_PROBLEMS_LISTED]
    ]
    if len(problems) > MAX_PROBLEMS_LISTED:
        more = len(problems) - MAX_PROBLEMS_LISTED
        listed.append({"path": "", "message": f"… and {more:,} more", "line": listed[-1]["line"]})
    return listed


def _components_check(document: list, *, lines: Lines, offsets: dict[Location, int]) -> dict:
    cleaned, problems, warnings = read_components(document)
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
        outcome = CardOutcome(key="playground", components=cleaned)
        summary = f"Valid: {_count(len(document), 'component')}{_warned(warnings)}"
    return {
        "kind": "components",
        "valid": not problems,
        "summary": summary,
        "problems": _listed(problems, lines=lines, offsets=offsets, root="components"),
        "warnings": _listed(warnings, lines=lines, offsets=offsets, root="components"),
        "notes": [],
        "html": card_frame(title="Your card", key="playground", outcome=outcome),
    }


def _response_check(
    document: dict,
    *,
    text: str,
    lines: Lines,
    offsets: dict[Location, int],
    keys: list[str] | None = None,
) -> dict:
    problems, warnings = read_response(document)
    cards = document.get("cards") if isinstance(document.get("cards"), list) else []
    first_index: dict[str, int] = {}
    notes = []
    for index, entry in enumerate(cards):
        key = entry.get("key") if isinstance(entry, dict) else None
        if not isinstance(key, str):
            continue
        if key in first_index:
            if len(notes) >= MAX_PROBLEMS_LISTED:
                continue
            notes.append(
                {
                    "path": f"cards[{index}]",
                    "message": f'key "{key}" repeats cards[{first_index[key]}]: the first '
                    "wins, this one is ignored",
                    "line": lines.of(offsets, ("cards", index)),
                }
            )
        else:
            first_index[key] = index
    # The engine's own judgement, card by card: what agents would see for each key asked
    # for (every key in the document, unless the requested keys are given).
    trial = card_response_judge(body=text.encode(), keys=keys or list(first_index))
    outcomes = trial.outcomes
    for outcome in outcomes.values():
        if outcome.error_kind in (ErrorKind.CARD_TOO_BIG, ErrorKind.MISSING_CARD):
            problems.append(Problem(path=outcome.detail["path"], message=outcome.detail["message"]))
    # What real loads would ignore: entries that are not cards, cards nobody asked for.
    for extra in trial.unrequested:
        line = lines.of(offsets, path_location(extra.path))
        notes.append({"path": extra.path, "message": extra.describe(), "line": line})
    html = "".join(
        card_frame(title=key, key=key, outcome=outcome) for key, outcome in outcomes.items()
    )
    shown = [o for o in outcomes.values() if o.ok and o.components is not None]
    hidden = sum(1 for o in outcomes.values() if o.ok and o.components is None)
    if problems:
        summary = _count(len(problems), "problem")
    else:
        counted = len(outcomes) if keys else len(cards)
        summary = f"Valid response: {_count(counted, 'card')}{_warned(warnings)}"
        if hidden:
            summary += f" ({hidden} hidden: components is null)"
    return {
        "kind": "response",
        "valid": not problems,
        "summary": summary,
        "problems": _listed(problems, lines=lines, offsets=offsets, root=""),
        "warnings": _listed(warnings, lines=lines, offsets=offsets, root=""),
        "notes": notes,
        "html": html if (shown or hidden or problems) else "",
    }


def _warned(warnings: list[Problem]) -> str:
    """The summary's tail for warnings (SPEC §5): loads, but outside the strict contract."""
    return f", with {_count(len(warnings), 'warning')}" if warnings else ""


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


def playground_result(text: str, *, keys: list[str] | None = None) -> dict[str, Any]:
    """Check a pasted document: a components array, or a whole response {"cards": [...]}.

    Returns kind, valid, summary, problems and warnings (path, message, 1-based line), notes,
    and the HTML of the cards as agents would see them. `keys`, the keys a request asked
    for, makes a response's other cards notes (ignored by real loads) and its missing ones
    problems.
    """
    empty = {"valid": False, "problems": [], "warnings": [], "notes": [], "html": ""}
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
        document = None
        too_deep = True
    else:
        too_deep = json_depth_over(document, MAX_JSON_DEPTH)
    if too_deep:
        message = f"nests arrays and objects more than {MAX_JSON_DEPTH} levels deep"
        problem = {"path": "", "message": message, "line": 1}
        return {**empty, "kind": "syntax", "summary": "Too deep", "problems": [problem]}
    offsets, lines = value_offsets(text), Lines(text)
    if isinstance(document, list):
        return _components_check(document, lines=lines, offsets=offsets)
    if isinstance(document, dict) and "cards" in document:
        return _response_check(document, text=text, lines=lines, offsets=offsets, keys=keys)
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
