"""Pydantic models of a card API response (SPEC §5), strict, with every limit of the spec.

A component is an object with exactly one key naming it; each is modelled as a wrapper
(`ComponentBadge` holds `componentBadge: Badge`) and the unions pick the branch from that key.
"""

import re
from typing import Annotated, Any, Literal, Union, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    HttpUrl,
    Tag,
    TypeAdapter,
    ValidationError,
)
from pydantic_core import PydanticCustomError

TextSize = Literal["S", "M", "L"]
TextColor = Literal["NORMAL", "MUTED", "SUCCESS", "WARNING", "ERROR"]
BadgeColor = Literal["GREY", "GREEN", "YELLOW", "RED", "BLUE"]
SpacingSize = Literal["XS", "S", "M", "L", "XL"]

TEXT_SIZES: tuple[str, ...] = get_args(TextSize)
TEXT_COLORS: tuple[str, ...] = get_args(TextColor)
BADGE_COLORS: tuple[str, ...] = get_args(BadgeColor)
SPACING_SIZES: tuple[str, ...] = get_args(SpacingSize)

DEFAULT_TEXT_SIZE = "M"
DEFAULT_TEXT_COLOR = "NORMAL"
DEFAULT_BADGE_COLOR = "GREY"
DEFAULT_DIVIDER_SPACING_SIZE = "S"

TEXT_MAX_LENGTH = 5000
LABEL_MAX_LENGTH = 500
COPY_VALUE_MAX_LENGTH = 1000
# The spec names no limit for link URLs; 2048 is what browsers and proxies reliably carry.
URL_MAX_LENGTH = 2048
TTL_MAX_SECONDS = 31_536_000


def _field_title(name: str, _info: Any) -> str:
    return name  # "badgeColor" in the JSON Schema, not pydantic's "Badgecolor"


class _Strict(BaseModel):
    # Strict: a JSON string is never coerced into a number or the other way round (§5).
    model_config = ConfigDict(strict=True, extra="forbid", field_title_generator=_field_title)


LongText = Annotated[str, Field(min_length=1, max_length=TEXT_MAX_LENGTH)]
Label = Annotated[str, Field(min_length=1, max_length=LABEL_MAX_LENGTH)]


_HTTP_URL = TypeAdapter(HttpUrl, config=ConfigDict(strict=True))
# Also expressed in the JSON Schema, so generic validators reject the same non-URLs.
_HTTP_URL_PATTERN = r"^[hH][tT][tT][pP][sS]?://[^\s/?#]+[^\s]*$"


def _check_http_url(value: str) -> str:
    # Cards keep the URL as received and it becomes an href, so the raw text itself must be
    # a clean absolute http(s) URL (no javascript:, no relative path, no stray spaces).
    if not re.match(_HTTP_URL_PATTERN, value):
        raise PydanticCustomError("http_url", "expected an absolute http(s) URL")
    try:
        _HTTP_URL.validate_python(value)
    except ValidationError:
        raise PydanticCustomError("http_url", "expected an absolute http(s) URL") from None
    return value


def check_http_url(value: str) -> bool:
    """Whether `value` is a link URL by the strict contract (length aside)."""
    try:
        _check_http_url(value)
    except PydanticCustomError:
        return False
    return True


HttpUrlText = Annotated[
    str,
    Field(
        max_length=URL_MAX_LENGTH,
        description="Absolute http:// or https:// URL.",
        json_schema_extra={"format": "uri", "pattern": _HTTP_URL_PATTERN},
    ),
    AfterValidator(_check_http_url),
]


class Text(_Strict):
    """Markdown subset (bold, italic, links)."""

    text: LongText = Field(description="Markdown: **bold**, *italic*, [links](https://…).")
    textSize: TextSize | None = DEFAULT_TEXT_SIZE
    textColor: TextColor | None = DEFAULT_TEXT_COLOR


class PlainText(_Strict):
    """Unformatted text; line breaks are kept."""

    plainText: LongText
    plainTextSize: TextSize | None = DEFAULT_TEXT_SIZE
    plainTextColor: TextColor | None = DEFAULT_TEXT_COLOR


class Badge(_Strict):
    """A short coloured label."""

    badgeLabel: Label
    badgeColor: BadgeColor | None = DEFAULT_BADGE_COLOR


class Divider(_Strict):
    """A horizontal rule."""

    dividerSpacingSize: SpacingSize | None = DEFAULT_DIVIDER_SPACING_SIZE


class Spacer(_Strict):
    """Vertical white space."""

    spacerSize: SpacingSize


class LinkButton(_Strict):
    """A button that opens a URL in a new tab."""

    linkButtonLabel: Label
    linkButtonUrl: HttpUrlText


class CopyButton(_Strict):
    """A button that copies a value to the clipboard."""

    copyButtonValue: Annotated[str, Field(min_length=1, max_length=COPY_VALUE_MAX_LENGTH)]
    copyButtonTooltipLabel: Annotated[str, Field(max_length=LABEL_MAX_LENGTH)] | None = Field(
        default=None, description="Defaults to the value."
    )


class WorkflowIdentifier(_Strict):
    workflowId: str


class WorkflowButton(_Strict):
    """A button that starts a workflow."""

    workflowButtonLabel: Label
    workflowButtonWorkflowIdentifier: WorkflowIdentifier


# One wrapper per component: the object whose single key names the component.
class ComponentText(_Strict):
    componentText: Text


class ComponentPlainText(_Strict):
    componentPlainText: PlainText


class ComponentBadge(_Strict):
    componentBadge: Badge


class ComponentDivider(_Strict):
    componentDivider: Divider


class ComponentSpacer(_Strict):
    componentSpacer: Spacer


class ComponentLinkButton(_Strict):
    componentLinkButton: LinkButton


class ComponentCopyButton(_Strict):
    componentCopyButton: CopyButton


class ComponentWorkflowButton(_Strict):
    componentWorkflowButton: WorkflowButton


def _component_key(value: Any) -> str | None:
    """Pick the union branch from the object's single key; anything else is a shape error."""
    if isinstance(value, dict) and len(value) == 1:
        key = next(iter(value))
        return key if isinstance(key, str) else None
    return None


def _union(*wrappers: type[_Strict]) -> Any:
    branches = tuple(Annotated[w, Tag(next(iter(w.model_fields)))] for w in wrappers)
    # Union[...] over a built tuple has no `X | Y` spelling, whatever UP007 suggests.
    return Annotated[Union[branches], Discriminator(_component_key)]  # noqa: UP007


_LEAF_WRAPPERS = (
    ComponentText,
    ComponentPlainText,
    ComponentBadge,
    ComponentDivider,
    ComponentSpacer,
    ComponentLinkButton,
    ComponentCopyButton,
    ComponentWorkflowButton,
)
LeafComponent = _union(*_LEAF_WRAPPERS)


class Row(_Strict):
    """Two groups of leaf components side by side."""

    rowMainContent: Annotated[list[LeafComponent], Field(min_length=1)]
    rowAsideContent: Annotated[list[LeafComponent], Field(min_length=1)]


class ComponentRow(_Strict):
    componentRow: Row


ContainerChild = _union(*_LEAF_WRAPPERS, ComponentRow)


class Container(_Strict):
    """A bordered box around any components but another container."""

    containerContent: Annotated[list[ContainerChild], Field(min_length=1)]


class ComponentContainer(_Strict):
    componentContainer: Container


Component = _union(*_LEAF_WRAPPERS, ComponentRow, ComponentContainer)


class Card(BaseModel):
    """One card. `components: null` hides the card; `[]` shows "nothing to show"."""

    # Unknown card-level fields are ignored (room for protocol growth); components are strict.
    model_config = ConfigDict(strict=True, extra="ignore", field_title_generator=_field_title)

    key: str
    timeToLiveSeconds: (
        Annotated[int, Field(ge=0, le=TTL_MAX_SECONDS, description="Overrides the default TTL.")]
        | None
    ) = None
    components: list[Component] | None


class CardResponse(BaseModel):
    """The body a card API answers with (Customer Cards SPEC §5)."""

    model_config = ConfigDict(strict=True, extra="ignore", field_title_generator=_field_title)

    cards: list[Card]


LEAF_COMPONENT_NAMES: tuple[str, ...] = tuple(next(iter(w.model_fields)) for w in _LEAF_WRAPPERS)
CONTAINER_CHILD_NAMES: tuple[str, ...] = (*LEAF_COMPONENT_NAMES, "componentRow")
COMPONENT_NAMES: tuple[str, ...] = (*CONTAINER_CHILD_NAMES, "componentContainer")

# The fields each object allows, by the key it sits under, to name them on an unknown field.
FIELDS_UNDER: dict[str, tuple[str, ...]] = {
    **{
        name: tuple(wrapper.model_fields[name].annotation.model_fields)
        for wrapper in (*_LEAF_WRAPPERS, ComponentRow, ComponentContainer)
        for name in wrapper.model_fields
    },
    "workflowButtonWorkflowIdentifier": ("workflowId",),
}
