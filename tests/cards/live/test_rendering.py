"""Rendering of card components (SPEC §5) and its safety with hostile input (SPEC §8)."""

from html.parser import HTMLParser

import pytest

from cards.live.rendering import (
    BADGE_COLORS,
    SPACING_SIZES,
    TEXT_COLORS,
    TEXT_SIZES,
    WORKFLOWS_UNAVAILABLE,
    render_components,
)


class _Element:
    def __init__(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tag = tag
        self.attrs = dict(attrs)
        self.classes = set((self.attrs.get("class") or "").split())


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[_Element] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append(_Element(tag, attrs))

    def handle_startendtag(self, tag, attrs):
        self.elements.append(_Element(tag, attrs))

    def handle_data(self, data):
        self.text.append(data)


def parse(html: str) -> _Collector:
    collector = _Collector()
    collector.feed(html)
    collector.close()
    return collector


def only(html: str, css_class: str) -> _Element:
    matches = [e for e in parse(html).elements if css_class in e.classes]
    assert len(matches) == 1, f"expected one .{css_class} in {html}"
    return matches[0]


def render_one(component: dict) -> str:
    return str(render_components([component]))


# --- Each component, its defaults and every enum value -------------------------------


@pytest.mark.parametrize("size", TEXT_SIZES)
@pytest.mark.parametrize("color", TEXT_COLORS)
def test_text_renders_each_size_and_colour_class(size, color):
    html = render_one({"componentText": {"text": "Hi", "textSize": size, "textColor": color}})

    assert only(html, "cc-text").classes == {"cc-text", f"cc-size--{size}", f"cc-color--{color}"}


def test_text_defaults_to_medium_normal():
    html = render_one({"componentText": {"text": "Hi"}})

    assert only(html, "cc-text").classes == {"cc-text", "cc-size--M", "cc-color--NORMAL"}


def test_text_renders_bold_italic_and_links():
    html = render_one(
        {"componentText": {"text": "**bold** _italic_ [docs](https://example.com/a?b=1)"}}
    )

    assert "<strong>bold</strong>" in html
    assert "<em>italic</em>" in html
    link = [e for e in parse(html).elements if e.tag == "a"][0]
    assert link.attrs == {
        "href": "https://example.com/a?b=1",
        "target": "_blank",
        "rel": "noopener noreferrer",
    }


def test_text_allows_mailto_links_and_keeps_line_breaks():
    html = render_one({"componentText": {"text": "Write to [us](mailto:help@example.com)\nthen"}})

    assert 'href="mailto:help@example.com"' in html
    assert "<br>" in html


def test_text_leaves_other_markdown_literal():
    html = render_one(
        {"componentText": {"text": "# Title\n- item\n`code`\n![img](https://x.io/a.png)"}}
    )

    tags = {e.tag for e in parse(html).elements}
    # The image syntax degrades to "!" and a plain link.
    assert tags == {"div", "br", "a"}
    assert "# Title" in html and "- item" in html and "`code`" in html and "!<a" in html


def test_text_refuses_relative_links():
    html = render_one({"componentText": {"text": "[admin](/admin/) [proto](//evil.example)"}})

    assert "<a" not in html


@pytest.mark.parametrize("size", TEXT_SIZES)
@pytest.mark.parametrize("color", TEXT_COLORS)
def test_plain_text_renders_each_size_and_colour_class(size, color):
    html = render_one(
        {"componentPlainText": {"plainText": "Hi", "plainTextSize": size, "plainTextColor": color}}
    )

    assert only(html, "cc-plain-text").classes == {
        "cc-plain-text",
        f"cc-size--{size}",
        f"cc-color--{color}",
    }


def test_plain_text_is_escaped_with_line_breaks_kept_and_no_markdown():
    html = render_one({"componentPlainText": {"plainText": "**not bold**\n<b>x</b> & y"}})

    assert only(html, "cc-plain-text").classes == {
        "cc-plain-text",
        "cc-size--M",
        "cc-color--NORMAL",
    }
    assert "**not bold**\n&lt;b&gt;x&lt;/b&gt; &amp; y" in html
    assert "<strong>" not in html


@pytest.mark.parametrize("color", BADGE_COLORS)
def test_badge_renders_each_colour(color):
    html = render_one({"componentBadge": {"badgeLabel": "Paid", "badgeColor": color}})

    assert only(html, "cc-badge").classes == {"cc-badge", f"cc-badge--{color}"}
    assert "Paid" in html


def test_badge_defaults_to_grey():
    assert "cc-badge--GREY" in render_one({"componentBadge": {"badgeLabel": "x"}})


@pytest.mark.parametrize("size", SPACING_SIZES)
def test_divider_renders_each_spacing_size(size):
    html = render_one({"componentDivider": {"dividerSpacingSize": size}})

    assert only(html, "cc-divider").tag == "hr"
    assert only(html, "cc-divider").classes == {"cc-divider", f"cc-divider--{size}"}


@pytest.mark.parametrize("empty", [{}, None])
def test_divider_defaults_to_small_spacing(empty):
    assert "cc-divider--S" in render_one({"componentDivider": empty})


@pytest.mark.parametrize("size", SPACING_SIZES)
def test_spacer_renders_each_size(size):
    html = render_one({"componentSpacer": {"spacerSize": size}})

    assert only(html, "cc-spacer").classes == {"cc-spacer", f"cc-spacer--{size}"}


@pytest.mark.parametrize(
    ("url", "href"),
    [
        ("https://example.com/x?a=1&b=2", "https://example.com/x?a=1&b=2"),
        ("http://example.com", "http://example.com/"),
        ("HTTPS://EXAMPLE.COM/", "https://example.com/"),
        ('https://example.com/a b"|c', "https://example.com/a%20b%22|c"),
        ("mailto:a@example.com", "mailto:a@example.com"),
        ("tel:+15550100", "tel:+15550100"),
    ],
)
def test_link_button_opens_its_url_as_the_whatwg_parser_serializes_it(url, href):
    html = render_one({"componentLinkButton": {"linkButtonLabel": "Open", "linkButtonUrl": url}})

    link = only(html, "cc-link-button")
    assert link.tag == "a"
    assert link.attrs["href"] == href
    assert link.attrs["target"] == "_blank"
    assert link.attrs["rel"] == "noopener noreferrer"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com",
        "javascript:alert(1)",
        "data:text/html,x",
        "file:///etc/passwd",
        "/relative",
        "//example.com",
        "",
        None,
    ],
)
def test_link_button_without_a_drawable_url_is_inert_text(url):
    html = render_one({"componentLinkButton": {"linkButtonLabel": "Open", "linkButtonUrl": url}})

    element = only(html, "cc-link-button")
    assert element.tag == "span"
    assert "href" not in html
    assert "Open" in html


def test_copy_button_is_an_icon_with_a_tooltip_and_the_value_in_its_name():
    html = render_one(
        {"componentCopyButton": {"copyButtonValue": "ord_123", "copyButtonTooltipLabel": "Copy id"}}
    )

    button = only(html, "cc-copy")
    assert button.tag == "button"
    assert button.attrs["type"] == "button"
    assert button.attrs["data-copy-value"] == "ord_123"
    # Icon only (as Plain draws it): the value is not shown twice, but it is in the name.
    assert button.attrs["aria-label"] == "Copy id: ord_123"
    assert only(html, "cc-tip").attrs["aria-hidden"] == "true"
    assert "".join(parse(html).text).strip() == "Copy id"  # the tooltip's words only


def test_copy_button_tooltip_defaults_to_the_value():
    html = render_one({"componentCopyButton": {"copyButtonValue": "v1"}})

    assert only(html, "cc-copy").attrs["aria-label"] == "Copy v1"
    assert "".join(parse(html).text).strip() == "v1"


def test_workflow_button_is_disabled_with_a_tooltip():
    html = render_one(
        {
            "componentWorkflowButton": {
                "workflowButtonLabel": "Refund",
                "workflowButtonWorkflowIdentifier": {"workflowId": "wf_1"},
            }
        }
    )

    button = only(html, "cc-workflow-button")
    assert "disabled" in button.attrs
    assert button.attrs["title"] == WORKFLOWS_UNAVAILABLE
    assert only(html, "cc-workflow").attrs["title"] == WORKFLOWS_UNAVAILABLE
    assert "Refund" in html


def test_row_puts_main_and_aside_side_by_side():
    html = render_one(
        {
            "componentRow": {
                "rowMainContent": [{"componentText": {"text": "Plan"}}],
                "rowAsideContent": [{"componentBadge": {"badgeLabel": "Pro"}}],
            }
        }
    )

    only(html, "cc-row")
    assert "cc-text" in html.split("cc-row__main")[1].split("cc-row__aside")[0]
    assert "cc-badge" in html.split("cc-row__aside")[1]


def test_container_is_a_box_around_its_content():
    html = render_one(
        {
            "componentContainer": {
                "containerContent": [
                    {"componentText": {"text": "inside"}},
                    {
                        "componentRow": {
                            "rowMainContent": [{"componentText": {"text": "a"}}],
                            "rowAsideContent": [{"componentText": {"text": "b"}}],
                        }
                    },
                ]
            }
        }
    )

    only(html, "cc-container")
    only(html, "cc-row")
    assert "inside" in html


def test_components_render_in_order_inside_one_wrapper():
    html = str(
        render_components(
            [{"componentText": {"text": "first"}}, {"componentPlainText": {"plainText": "second"}}]
        )
    )

    assert html.index("first") < html.index("second")
    assert only(html, "cc-components").tag == "div"


def test_null_components_render_nothing_and_empty_ones_say_so():
    assert render_components(None) == ""
    assert "Nothing to show" in render_components([])


@pytest.mark.parametrize(
    "component",
    [
        None,
        "text",
        42,
        [],
        {},
        {"componentUnknown": {"x": 1}},
        {"componentText": "not an object"},
        {"componentText": {"text": 5}},
        {"componentText": {}},
        {"componentText": {"text": "a"}, "componentBadge": {"badgeLabel": "b"}},
        {"componentBadge": {"badgeLabel": ["x"]}},
        {"componentLinkButton": {"linkButtonLabel": None, "linkButtonUrl": "https://a.io"}},
        {"componentCopyButton": {"copyButtonValue": {"x": 1}}},
        {"componentWorkflowButton": {"workflowButtonLabel": 1}},
        {"componentRow": {"rowMainContent": "x", "rowAsideContent": None}},
        # Nesting the SPEC forbids: a container in a row, a container in a container.
        {
            "componentRow": {
                "rowMainContent": [{"componentContainer": {"containerContent": []}}],
                "rowAsideContent": [],
            }
        },
        {
            "componentContainer": {
                "containerContent": [
                    {"componentContainer": {"containerContent": [{"componentText": {"text": "x"}}]}}
                ]
            }
        },
    ],
)
def test_unknown_shapes_render_nothing(component):
    html = str(render_components([component]))

    assert html == '<div class="cc-components"></div>\n'


def test_bad_enum_values_fall_back_to_defaults():
    html = render_one({"componentText": {"text": "x", "textSize": "XXL", "textColor": 3}})

    assert only(html, "cc-text").classes == {"cc-text", "cc-size--M", "cc-color--NORMAL"}


def test_output_has_no_inline_styles_or_scripts():
    every_component = [
        {"componentText": {"text": "**a**"}},
        {"componentPlainText": {"plainText": "b"}},
        {"componentBadge": {"badgeLabel": "c"}},
        {"componentDivider": {}},
        {"componentSpacer": {"spacerSize": "S"}},
        {"componentLinkButton": {"linkButtonLabel": "d", "linkButtonUrl": "https://e.io"}},
        {"componentCopyButton": {"copyButtonValue": "f"}},
        {
            "componentWorkflowButton": {
                "workflowButtonLabel": "g",
                "workflowButtonWorkflowIdentifier": {"workflowId": "h"},
            }
        },
    ]

    html = str(render_components(every_component))

    assert all("style" not in e.attrs for e in parse(html).elements)
    assert "<script" not in html and "<style" not in html


# --- XSS corpus: in every text and URL field, hostile input renders inert ---------------

XSS_CORPUS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=https://evil.example/x.js></SCRIPT>",
    '<img src=x onerror="alert(1)">',
    "<svg onload=alert(1)>",
    '"><img src=x onerror=alert(1)>',
    "' onmouseover='alert(1)",
    '" onfocus="alert(1)" autofocus="',
    '<a href="javascript:alert(1)">click</a>',
    "<a href='https://ok.example' onclick='alert(1)'>x</a>",
    "<iframe src=javascript:alert(1)></iframe>",
    "<style>body{display:none}</style>",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    " javascript:alert(1)",
    "java\tscript:alert(1)",
    "java\nscript:alert(1)",
    "\x01javascript:alert(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "vbscript:msgbox(1)",
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](javascript&#58;alert(1))",
    "[x](&#106;avascript:alert(1))",
    "[x](<javascript:alert(1)>)",
    "[x](data:text/html,<script>alert(1)</script>)",
    "[x](vbscript:msgbox(1))",
    '[x](https://ok.example "onmouseover=alert(1)")',
    "[x][ref]\n\n[ref]: javascript:alert(1)",
    "![x](javascript:alert(1))",
    "<javascript:alert(1)>",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "&#60;script&#62;alert(1)&#60;/script&#62;",
    "\u202egnp.exe",
    "[\u202ehttps://ok.example](https://evil.example/\u202e)",
    "**" + "<script>" * 800,
    "x" * 5000,
    "[" * 2000 + "x" + "](javascript:alert(1))" * 200,
]

_SAFE_SCHEMES = ("http://", "https://", "mailto:", "tel:")


def _fields_with(value: str) -> list[dict]:
    """One component per text or URL field, with the hostile value in that field."""
    return [
        {"componentText": {"text": value}},
        {"componentPlainText": {"plainText": value}},
        {"componentBadge": {"badgeLabel": value}},
        {"componentLinkButton": {"linkButtonLabel": value, "linkButtonUrl": "https://ok.example"}},
        {"componentLinkButton": {"linkButtonLabel": "Open", "linkButtonUrl": value}},
        {
            "componentLinkButton": {
                "linkButtonLabel": "Open",
                "linkButtonUrl": f"https://ok.example/{value}",
            }
        },
        {"componentCopyButton": {"copyButtonValue": value}},
        {"componentCopyButton": {"copyButtonValue": "v", "copyButtonTooltipLabel": value}},
        {
            "componentWorkflowButton": {
                "workflowButtonLabel": value,
                "workflowButtonWorkflowIdentifier": {"workflowId": value},
            }
        },
        {
            "componentRow": {
                "rowMainContent": [{"componentText": {"text": value}}],
                "rowAsideContent": [{"componentPlainText": {"plainText": value}}],
            }
        },
        {"componentContainer": {"containerContent": [{"componentText": {"text": value}}]}},
    ]


def assert_inert(html: str) -> None:
    lowered = html.lower()
    assert "<script" not in lowered
    assert "<img" not in lowered and "<svg onload" not in lowered and "<iframe" not in lowered
    assert "<style" not in lowered
    allowed_tags = {"div", "span", "strong", "em", "a", "br", "hr", "button", "svg", "path", "rect"}
    for element in parse(html).elements:
        assert element.tag in allowed_tags, element.tag
        for name, value in element.attrs.items():
            assert not name.startswith("on"), f"event handler {name}={value!r}"
            assert name != "style"
            if name in {"href", "src", "action", "formaction", "xlink:href"}:
                assert value and value.lower().startswith(_SAFE_SCHEMES), f"{name}={value!r}"
                assert "\u202e" not in value


@pytest.mark.parametrize("value", XSS_CORPUS, ids=range(len(XSS_CORPUS)))
def test_hostile_input_in_every_field_renders_inert(value):
    for component in _fields_with(value):
        assert_inert(str(render_components([component])))


def test_hostile_link_button_urls_never_become_links():
    for value in XSS_CORPUS:
        html = render_one(
            {"componentLinkButton": {"linkButtonLabel": "Open", "linkButtonUrl": value}}
        )

        assert only(html, "cc-link-button").tag == "span", value


def test_direction_marks_in_link_button_urls_make_them_inert():
    html = render_one(
        {
            "componentLinkButton": {
                "linkButtonLabel": "Open",
                "linkButtonUrl": "https://ok.example/\u202eexe.pdf",
            }
        }
    )

    assert only(html, "cc-link-button").tag == "span"


def test_escaped_entities_stay_visible_text():
    html = render_one({"componentPlainText": {"plainText": "&lt;script&gt;"}})

    assert "&amp;lt;script&amp;gt;" in html
