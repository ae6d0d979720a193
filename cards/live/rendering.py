"""Server-side rendering of card components (SPEC §5) into safe HTML (SPEC §8).

Components arrive as the plain dicts a card API sent, already validated, so optional
fields may be missing (their SPEC defaults are applied here) or `None`. Everything in them
is untrusted: templates auto-escape, markdown goes through markdown-it-py and then nh3, and
link-button URLs are parsed again (WHATWG, http/https/mailto/tel) and drawn as the
parser's serialization. Empty labels and values draw nothing, empty row sides stay empty.
A shape this module does not understand renders nothing, because a validation gap must
never become a broken or unsafe agent page.

Each component has one template under `templates/cards/components/`; CSS classes use the
`cc-` prefix and carry enum values verbatim (`cc-size--L`, `cc-color--MUTED`,
`cc-badge--GREEN`, `cc-divider--XS`, `cc-spacer--XL`), styled by `static/cards/cards.css`.
"""

from collections.abc import Callable, Iterable
from typing import Any

import nh3
from django.core.cache import cache
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

from cards.models import CardInstance
from cards.protocol.schema import link_href

TEXT_SIZES = ("S", "M", "L")
TEXT_COLORS = ("NORMAL", "MUTED", "SUCCESS", "WARNING", "ERROR")
BADGE_COLORS = ("GREY", "GREEN", "YELLOW", "RED", "BLUE")
SPACING_SIZES = ("XS", "S", "M", "L", "XL")
MARKDOWN_LINK_SCHEMES = ("http", "https", "mailto")

WORKFLOWS_UNAVAILABLE = "Workflows are not available yet"

# Part of every cache key of rendered card HTML: bump it when the markup of a component or
# of the card chrome changes, so no page mixes old and new markup after a deploy.
RENDER_VERSION = 3
# Rendered HTML is keyed by what it was rendered from, so an entry is never wrong, only
# unused once its card changes; this just bounds how long unused ones linger.
RENDERED_CACHE_SECONDS = 24 * 3600

# Inline parsing only, and only these rules: bold/italic (emphasis), links, plain text,
# line breaks, backslash escapes and entities. Everything else (headings, lists, code,
# images, autolinks, raw HTML) stays literal text. Allow-listing the rules, rather than
# disabling a list of them, keeps rules a future markdown-it-py adds switched off.
_MARKDOWN_RULES = {
    "normalize",
    "block",
    "inline",
    "text_join",
    "paragraph",
    "text",
    "newline",
    "escape",
    "entity",
    "emphasis",
    "link",
    "balance_pairs",
    "fragments_join",
}
_markdown = MarkdownIt("commonmark", {"html": False, "breaks": True})
_markdown.disable(
    [
        rule
        for chain in _markdown.get_all_rules().values()
        for rule in chain
        if rule not in _MARKDOWN_RULES
    ],
    ignoreInvalid=True,
)


def _is_allowed_markdown_link(url: str) -> bool:
    """markdown-it's link check: absolute http(s) and mailto only; others stay literal text."""
    scheme, _, rest = url.partition(":")
    return scheme.lower() in MARKDOWN_LINK_SCHEMES and bool(rest)


_markdown.validateLink = _is_allowed_markdown_link
# mdurl fills its encode/decode caches lazily and not thread-safely: two threads rendering
# their first link at once can crash or mis-encode. Fill them once, here, at import.
_markdown.renderInline("[x](https://a.example/%25?q=%C3%A9)")

# nh3 is the second, independent wall (and the one that adds rel and target).
_markdown_cleaner = nh3.Cleaner(
    tags={"strong", "em", "a", "br"},
    clean_content_tags=set(),
    attributes={"a": {"href"}},
    url_schemes=set(MARKDOWN_LINK_SCHEMES),
    url_relative="deny",
    link_rel="noopener noreferrer",
    set_tag_attribute_values={"a": {"target": "_blank"}},
    strip_comments=True,
)


def markdown_to_html(text: str) -> SafeString:
    """Render the SPEC §5 markdown subset (bold, italic, links) to sanitised HTML."""
    return mark_safe(_markdown_cleaner.clean(_markdown.renderInline(text)))  # noqa: S308


def safe_link_url(url: Any) -> str | None:
    """The href for a link button: the WHATWG serialization of an http, https, mailto or
    tel URL without invisible characters (`cards.protocol.schema.link_href`), else None (inert)."""
    return link_href(url)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _choice(value: Any, choices: Iterable[str], default: str) -> str:
    return value if isinstance(value, str) and value in choices else default


def _render_text(data: dict) -> str:
    text = _text(data.get("text"))
    if text is None:
        return ""
    return render_to_string(
        "cards/components/text.html",
        {
            "html": markdown_to_html(text),
            "size": _choice(data.get("textSize"), TEXT_SIZES, "M"),
            "color": _choice(data.get("textColor"), TEXT_COLORS, "NORMAL"),
        },
    )


def _render_plain_text(data: dict) -> str:
    text = _text(data.get("plainText"))
    if text is None:
        return ""
    return render_to_string(
        "cards/components/plain_text.html",
        {
            "text": text,
            "size": _choice(data.get("plainTextSize"), TEXT_SIZES, "M"),
            "color": _choice(data.get("plainTextColor"), TEXT_COLORS, "NORMAL"),
        },
    )


def _render_badge(data: dict) -> str:
    label = _text(data.get("badgeLabel"))
    if label is None:
        return ""
    return render_to_string(
        "cards/components/badge.html",
        {"label": label, "color": _choice(data.get("badgeColor"), BADGE_COLORS, "GREY")},
    )


def _render_divider(data: dict) -> str:
    size = _choice(data.get("dividerSpacingSize"), SPACING_SIZES, "S")
    return render_to_string("cards/components/divider.html", {"size": size})


def _render_spacer(data: dict) -> str:
    # spacerSize is required; a missing one (impossible after validation) falls back to M.
    size = _choice(data.get("spacerSize"), SPACING_SIZES, "M")
    return render_to_string("cards/components/spacer.html", {"size": size})


def _render_link_button(data: dict) -> str:
    label = _text(data.get("linkButtonLabel"))
    if label is None:
        return ""
    return render_to_string(
        "cards/components/link_button.html",
        {"label": label, "url": safe_link_url(data.get("linkButtonUrl"))},
    )


def _render_copy_button(data: dict) -> str:
    value = _text(data.get("copyButtonValue"))
    if value is None:
        return ""
    tooltip = _text(data.get("copyButtonTooltipLabel")) or value
    return render_to_string(
        "cards/components/copy_button.html", {"value": value, "tooltip": tooltip}
    )


def _render_workflow_button(data: dict) -> str:
    label = _text(data.get("workflowButtonLabel"))
    if label is None:
        return ""
    identifier = data.get("workflowButtonWorkflowIdentifier")
    workflow_id = _text(identifier.get("workflowId")) if isinstance(identifier, dict) else None
    return render_to_string(
        "cards/components/workflow_button.html",
        {"label": label, "workflow_id": workflow_id or "", "tooltip": WORKFLOWS_UNAVAILABLE},
    )


def _render_row(data: dict) -> str:
    main = _render_list(data.get("rowMainContent"), _LEAF_RENDERERS)
    aside = _render_list(data.get("rowAsideContent"), _LEAF_RENDERERS)
    if not main and not aside:
        return ""
    return render_to_string("cards/components/row.html", {"main": main, "aside": aside})


def _render_container(data: dict) -> str:
    content = _render_list(data.get("containerContent"), _CONTAINER_RENDERERS)
    if not content:
        return ""
    return render_to_string("cards/components/container.html", {"content": content})


_Renderer = Callable[[dict], str]

_LEAF_RENDERERS: dict[str, _Renderer] = {
    "componentText": _render_text,
    "componentPlainText": _render_plain_text,
    "componentBadge": _render_badge,
    "componentDivider": _render_divider,
    "componentSpacer": _render_spacer,
    "componentLinkButton": _render_link_button,
    "componentCopyButton": _render_copy_button,
    "componentWorkflowButton": _render_workflow_button,
}
# SPEC §5 nesting: rows hold leaves only; containers hold anything but containers.
_CONTAINER_RENDERERS: dict[str, _Renderer] = {**_LEAF_RENDERERS, "componentRow": _render_row}
_TOP_LEVEL_RENDERERS: dict[str, _Renderer] = {
    **_CONTAINER_RENDERERS,
    "componentContainer": _render_container,
}


def _render_one(component: Any, renderers: dict[str, _Renderer]) -> str:
    if not isinstance(component, dict):
        return ""
    kinds = [key for key in component if key in _TOP_LEVEL_RENDERERS]
    if len(kinds) != 1 or kinds[0] not in renderers:
        return ""
    data = component[kinds[0]]
    # A field-less component (a divider with its default spacing) may arrive as {} or null.
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return ""
    return renderers[kinds[0]](data)


def _render_list(components: Any, renderers: dict[str, _Renderer]) -> SafeString:
    if not isinstance(components, list):
        return mark_safe("")  # noqa: S308
    # Every piece comes from an auto-escaping template, so joining them stays safe.
    return mark_safe("".join(_render_one(c, renderers) for c in components))  # noqa: S308


def render_components(components: list[dict] | None) -> SafeString:
    """Render a card's components to HTML, wrapped in `<div class="cc-components">`.

    `None` ("no data", SPEC §5) renders nothing; `[]` renders a quiet "Nothing to show".
    """
    if components is None or not isinstance(components, list):
        return mark_safe("")  # noqa: S308
    return mark_safe(  # noqa: S308
        render_to_string(
            "cards/components/components.html",
            {
                "content": _render_list(components, _TOP_LEVEL_RENDERERS),
                "is_empty": not components,
            },
        )
    )


def render_instance_components(instance: CardInstance) -> SafeString:
    """`render_components` of a stored card instance, cached by the instance's version.

    An instance's components change only with a store, which moves `updated_at`, so
    (pk, updated_at) names them exactly: a page of cached cards renders no component.
    """
    key = f"cards:components:{RENDER_VERSION}:{instance.pk}:{instance.updated_at.timestamp()}"
    html = cache.get(key)
    if html is None:
        html = str(render_components(instance.components))
        cache.set(key, html, RENDERED_CACHE_SECONDS)
    return mark_safe(html)  # noqa: S308  (rendered above, by render_components)
