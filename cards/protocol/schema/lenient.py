"""The engine's lenient reading of one card (SPEC §5, last paragraph): errors and warnings.

The strict models in `models` are the published contract (the JSON Schema). A card API
written against Plain's published schema may send answers that contract refuses but that
can be drawn safely; the engine reads those with **warnings** instead of failing the card:

- `timeToLiveSeconds` written as an integral float (`60.0`, `1e2`), or over one year
  (clamped to one year);
- an empty row side; an empty badge, button label or copy value (that component is not
  drawn);
- link targets `http`, `https`, `mailto` and `tel` as a WHATWG URL parser (ada) reads them,
  kept as its serialization (percent-encoded), up to `LENIENT_URL_MAX_LENGTH` characters;
- unknown fields inside a known component (ignored); an unknown component (skipped);
- an unsafe link (any other scheme, or invisible characters): its component is dropped.

Every structural error (missing required field, wrong type, unknown enum value, a string
over its limit, nesting Plain forbids, not exactly one key) still fails the card, with the
same path and words as the strict validation. The walk is ours (it knows where components
nest); each leaf's fields are checked by a pydantic model derived from the strict one.
The components returned are the cleaned copy the engine stores and renders: dropped and
unknown things removed, link URLs replaced by their serialization.
"""

import difflib
import json
import math
from dataclasses import dataclass, field
from typing import Annotated, Any

from ada_url import URL
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from cards.protocol.schema.models import (
    COMPONENT_NAMES,
    CONTAINER_CHILD_NAMES,
    COPY_VALUE_MAX_LENGTH,
    FIELDS_UNDER,
    LABEL_MAX_LENGTH,
    LEAF_COMPONENT_NAMES,
    TTL_MAX_SECONDS,
    URL_MAX_LENGTH,
    Badge,
    Card,
    CopyButton,
    Divider,
    LinkButton,
    PlainText,
    Spacer,
    Text,
    WorkflowButton,
    check_http_url,
)
from cards.protocol.schema.problems import Problem, describe_value, problems_from, shape_message

LENIENT_URL_MAX_LENGTH = 8192
LINK_SCHEMES = ("http", "https", "mailto", "tel")

_LenientLabel = Annotated[str, Field(max_length=LABEL_MAX_LENGTH)]


class _LenientBadge(Badge):
    badgeLabel: _LenientLabel


class _LenientLinkButton(LinkButton):
    linkButtonLabel: _LenientLabel
    linkButtonUrl: Annotated[str, Field(max_length=LENIENT_URL_MAX_LENGTH)]


class _LenientCopyButton(CopyButton):
    copyButtonValue: Annotated[str, Field(max_length=COPY_VALUE_MAX_LENGTH)]


class _LenientWorkflowButton(WorkflowButton):
    workflowButtonLabel: _LenientLabel


# Each leaf's fields, checked by a model (its strict twin where the strict one is lenient
# enough), built once; and the field that may be empty, with what an empty one means.
# (The models' own core validators: TypeAdapter's Python wrapper costs more than the check.)
_LEAVES: dict[str, Any] = {
    name: model.__pydantic_validator__
    for name, model in (
        ("componentText", Text),
        ("componentPlainText", PlainText),
        ("componentBadge", _LenientBadge),
        ("componentDivider", Divider),
        ("componentSpacer", Spacer),
        ("componentLinkButton", _LenientLinkButton),
        ("componentCopyButton", _LenientCopyButton),
        ("componentWorkflowButton", _LenientWorkflowButton),
    )
}
_FIELD_SETS = {under: frozenset(fields) for under, fields in FIELDS_UNDER.items()}
_MAY_BE_EMPTY = {
    "componentBadge": ("badgeLabel", "the badge"),
    "componentLinkButton": ("linkButtonLabel", "the link button"),
    "componentCopyButton": ("copyButtonValue", "the copy button"),
    "componentWorkflowButton": ("workflowButtonLabel", "the workflow button"),
}
_ALLOWED_IN = {
    None: COMPONENT_NAMES,
    "rowMainContent": LEAF_COMPONENT_NAMES,
    "rowAsideContent": LEAF_COMPONENT_NAMES,
    "containerContent": CONTAINER_CHILD_NAMES,
}


class _Envelope(BaseModel):
    """The card around its components; TTL and components are read by hand below."""

    model_config = ConfigDict(strict=True, extra="ignore")

    key: str
    timeToLiveSeconds: Any = None
    components: list[Any] | None


_ENVELOPE = TypeAdapter(_Envelope)
_STRICT_CARD = Card.__pydantic_validator__


@dataclass(frozen=True)
class ReadCard:
    """A card the engine can draw: its cleaned components and the warnings on the way."""

    key: str
    ttl_seconds: int | None
    components: list[dict] | None
    warnings: list[Problem] = field(default_factory=list)


@dataclass
class _Reading:
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    def fail(self, path: str, message: str) -> None:
        self.problems.append(Problem(path=path, message=message))

    def warn(self, path: str, message: str) -> None:
        self.warnings.append(Problem(path=path, message=message))


def read_card(entry: Any, *, path: str) -> ReadCard | list[Problem]:
    """Read one element of `cards` leniently: a ReadCard, or the problems that fail it.

    Most answers keep the strict contract: one strict validation, then only their link
    buttons need reading (WHATWG serialization, invisible characters). Every lenient rule
    but the links is silent on a strict-valid card, so this gives the same result as the
    full walk, which the others take.
    """
    reading = _Reading()
    try:
        _STRICT_CARD.validate_python(entry)
    except ValidationError:
        pass
    else:
        components = entry["components"]
        if components is not None:
            components = _links(components, path=f"{path}.components", r=reading)
        if reading.problems:
            return reading.problems
        return ReadCard(
            key=entry["key"],
            ttl_seconds=entry.get("timeToLiveSeconds"),
            components=components,
            warnings=reading.warnings,
        )
    try:
        envelope = _ENVELOPE.validate_python(entry)
    except ValidationError as exc:
        return problems_from(exc, prefix=path)
    ttl = _ttl(envelope.timeToLiveSeconds, path=f"{path}.timeToLiveSeconds", reading=reading)
    components = None
    if envelope.components is not None:
        components = _list(envelope.components, path=f"{path}.components", owner=None, r=reading)
    if reading.problems:
        return reading.problems
    return ReadCard(
        key=envelope.key, ttl_seconds=ttl, components=components, warnings=reading.warnings
    )


def read_components(components: Any, *, path: str = "components") -> tuple[list, list, list]:
    """A components array alone (the playground): (cleaned components, problems, warnings)."""
    reading = _Reading()
    if not isinstance(components, list):
        reading.fail(path, f"expected an array, got {describe_value(components)}")
        return [], reading.problems, []
    cleaned = _list(components, path=path, owner=None, r=reading)
    return cleaned, reading.problems, reading.warnings


def read_response(body: Any) -> tuple[list[Problem], list[Problem]]:
    """A whole response document, every card read as the engine reads it: (problems,
    warnings), paths from `cards[0]...`. For the playground and integrator tools."""
    if not isinstance(body, dict):
        got = describe_value(body)
        return [
            Problem(path="", message=f'expected a JSON object with a "cards" array, got {got}')
        ], []
    if "cards" not in body:
        return [Problem(path="cards", message="required field is missing")], []
    cards = body["cards"]
    if not isinstance(cards, list):
        return [
            Problem(path="cards", message=f"expected an array, got {describe_value(cards)}")
        ], []
    problems: list[Problem] = []
    warnings: list[Problem] = []
    for index, entry in enumerate(cards):
        result = read_card(entry, path=f"cards[{index}]")
        if isinstance(result, ReadCard):
            warnings += result.warnings
        else:
            problems += result
    return problems, warnings


def _ttl(value: Any, *, path: str, reading: _Reading) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        reading.fail(path, f"expected an integer, got {describe_value(value)}")
        return None
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            reading.fail(path, f"expected an integer, got {describe_value(value)}")
            return None
        reading.warn(
            path,
            f"an integer written as a number with a fraction or exponent "
            f"({json.dumps(value)}); read as {int(value)}",
        )
        value = int(value)
    if value < 0:
        reading.fail(path, f"expected at least 0, got {value}")
        return None
    if value > TTL_MAX_SECONDS:
        reading.warn(
            path, f"{value} seconds is over one year; kept for one year ({TTL_MAX_SECONDS} seconds)"
        )
        return TTL_MAX_SECONDS
    return value


_HOLDS_LINKS = frozenset(("componentLinkButton", "componentRow", "componentContainer"))


def _links(items: list, *, path: str, r: _Reading) -> list:
    """A strict-valid components list with every link button read by `_link` (and dropped
    when it says so); everything else as received."""
    cleaned = []
    for index, item in enumerate(items):
        name = next(iter(item))
        if name not in _HOLDS_LINKS:
            cleaned.append(item)
            continue
        data, here = item[name], f"{path}[{index}].{name}"
        if name == "componentLinkButton":
            href = _link(data["linkButtonUrl"], path=f"{here}.linkButtonUrl", r=r, strict=True)
            if href is None:
                continue
            item = {name: {**data, "linkButtonUrl": href}}
        elif name == "componentRow":
            item = {
                name: {
                    side: _links(data[side], path=f"{here}.{side}", r=r)
                    for side in ("rowMainContent", "rowAsideContent")
                }
            }
        elif name == "componentContainer":
            content = _links(data["containerContent"], path=f"{here}.containerContent", r=r)
            item = {name: {"containerContent": content}}
        cleaned.append(item)
    return cleaned


def _list(items: list, *, path: str, owner: str | None, r: _Reading) -> list[dict]:
    cleaned = []
    for index, item in enumerate(items):
        component = _component(item, path=f"{path}[{index}]", owner=owner, r=r)
        if component is not None:
            cleaned.append(component)
    return cleaned


def _component(item: Any, *, path: str, owner: str | None, r: _Reading) -> dict | None:
    allowed = _ALLOWED_IN[owner]
    name = next(iter(item), None) if isinstance(item, dict) and len(item) == 1 else None
    if not isinstance(name, str):
        r.fail(path, shape_message(item, parent=owner))
        return None
    if name not in COMPONENT_NAMES:
        hint = _did_you_mean(name, allowed)
        r.warn(path, f"unknown component {_quote(name)}{hint}; skipped, the rest is drawn")
        return None
    if name not in allowed:  # a known component where Plain forbids it
        r.fail(path, shape_message(item, parent=owner))
        return None
    data, here = item[name], f"{path}.{name}"
    if name in _LEAVES:
        cleaned = _leaf(name, data, path=here, r=r)
    elif not isinstance(data, dict):
        r.fail(here, f"expected an object, got {describe_value(data)}")
        return None
    elif name == "componentRow":
        cleaned = _row(data, path=here, r=r)
    else:
        cleaned = _container(data, path=here, r=r)
    return None if cleaned is None else {name: cleaned}


def _did_you_mean(name: str, allowed: tuple[str, ...]) -> str:
    """A hint for a misspelt component; names compare without their shared prefix, so a
    new component ("componentImage") is not taken for a typo of an old one."""
    bare = {known.removeprefix("component").lower(): known for known in allowed}
    close = difflib.get_close_matches(name.removeprefix("component").lower(), bare, 1, 0.8)
    return f" (did you mean {bare[close[0]]}?)" if close else ""


def _known(data: dict, *, under: str, path: str, r: _Reading) -> dict:
    """`data` without the fields `under` does not define, each one warned about."""
    if data.keys() <= _FIELD_SETS[under] and under != "componentWorkflowButton":
        return data  # the usual case: nothing to drop (and no nested object to look into)
    allowed = FIELDS_UNDER[under]
    kept = {}
    for name, value in data.items():
        if name not in allowed:
            r.warn(
                _field_path(path, name),
                f"unknown field; {under} allows only {', '.join(allowed)}; ignored",
            )
        elif name in FIELDS_UNDER and isinstance(value, dict):
            kept[name] = _known(value, under=name, path=_field_path(path, name), r=r)
        else:
            kept[name] = value
    return kept


def _field_path(path: str, name: Any) -> str:
    """The path of a field; a name that needs quoting is quoted, and a long one is cut, so a
    hostile field name cannot make every stored warning huge."""
    text = str(name)
    if text.isidentifier() and text.isascii() and len(text) <= 60:
        return f"{path}.{text}"
    return f"{path}[{_quote(text)}]"


def _leaf(name: str, data: Any, *, path: str, r: _Reading) -> dict | None:
    if isinstance(data, dict):
        data = _known(data, under=name, path=path, r=r)
    try:
        _LEAVES[name].validate_python(data)
    except ValidationError as exc:
        r.problems += problems_from(exc, prefix=path)
        return None
    if name in _MAY_BE_EMPTY:
        field_name, what = _MAY_BE_EMPTY[name]
        if data[field_name] == "":
            r.warn(f"{path}.{field_name}", f"empty {field_name}; {what} is not drawn")
            return None
    if name == "componentLinkButton":
        href = _link(data["linkButtonUrl"], path=f"{path}.linkButtonUrl", r=r)
        if href is None:
            return None
        data = {**data, "linkButtonUrl": href}
    return data


def _row(data: dict, *, path: str, r: _Reading) -> dict | None:
    data = _known(data, under="componentRow", path=path, r=r)
    cleaned: dict[str, list] = {}
    for side in ("rowMainContent", "rowAsideContent"):
        items = _required_list(data, side, path=path, r=r)
        if items is None:
            continue
        if not items:
            r.warn(f"{path}.{side}", f"empty {side}; the row draws its other side alone")
        cleaned[side] = _list(items, path=f"{path}.{side}", owner=side, r=r)
    return cleaned if len(cleaned) == 2 else None


def _container(data: dict, *, path: str, r: _Reading) -> dict | None:
    data = _known(data, under="componentContainer", path=path, r=r)
    items = _required_list(data, "containerContent", path=path, r=r)
    if items is None:
        return None
    if not items:  # Plain requires one too
        r.fail(f"{path}.containerContent", "expected at least 1 component, got none")
        return None
    return {
        "containerContent": _list(
            items, path=f"{path}.containerContent", owner="containerContent", r=r
        )
    }


def _required_list(data: dict, name: str, *, path: str, r: _Reading) -> list | None:
    if name not in data:
        r.fail(f"{path}.{name}", "required field is missing")
        return None
    if not isinstance(data[name], list):
        r.fail(f"{path}.{name}", f"expected an array, got {describe_value(data[name])}")
        return None
    return data[name]


def _has_invisible_characters(value: str) -> bool:
    """Control, format (U+202E and the other bidi marks), separator (but the space) and
    unassigned characters hide a URL's target: whatever Python does not call printable."""
    return not value.isprintable()


def link_href(url: Any) -> str | None:
    """The WHATWG serialization of a link target the engine draws, else None: an http,
    https, mailto or tel URL without invisible characters, up to the lenient length."""
    if not isinstance(url, str) or len(url) > LENIENT_URL_MAX_LENGTH:
        return None
    if _has_invisible_characters(url):
        return None
    try:
        parsed = URL(url)
    except ValueError:
        return None
    if parsed.protocol.rstrip(":") not in LINK_SCHEMES:
        return None
    return parsed.href


def _link(url: str, *, path: str, r: _Reading, strict: bool = False) -> str | None:
    """The href to store for a link button's URL, or None (a problem or a warning said why).
    `strict`: the URL is known to keep the strict contract (no warning about that)."""
    try:
        parsed = URL(url)
    except ValueError:
        r.fail(path, f"expected an absolute URL (http, https, mailto or tel), got {_quote(url)}")
        return None
    scheme = parsed.protocol.rstrip(":")
    if scheme not in LINK_SCHEMES:
        r.warn(
            path,
            f"a {scheme}: link is unsafe (links may be http, https, mailto or tel); "
            "the link button is dropped",
        )
        return None
    if _has_invisible_characters(url):
        r.warn(
            path,
            "the URL holds invisible or control characters that can hide its target; "
            "the link button is dropped",
        )
        return None
    href = parsed.href
    if strict:
        return href
    if scheme in ("mailto", "tel"):
        r.warn(path, f"a {scheme}: link is drawn, but the strict contract allows only http(s)")
    elif len(url) > URL_MAX_LENGTH:
        r.warn(path, f"{len(url)} characters is over the strict contract's {URL_MAX_LENGTH}; drawn")
    elif not check_http_url(url):
        r.warn(path, f"not a clean absolute URL by the strict contract; drawn as {_quote(href)}")
    return href


def _quote(value: str, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"
