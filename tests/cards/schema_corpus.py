"""The component corpus shared by the schema tests: valid components (every field, every
enum value), invalid ones with the exact path and message each must produce, and shapes
that break the one-key and nesting rules."""

import json
from pathlib import Path

import pytest
from django.conf import settings

from cards.protocol.schema import (
    BADGE_COLORS,
    COMPONENT_NAMES,
    SPACING_SIZES,
    TEXT_COLORS,
    TEXT_SIZES,
)

SCHEMA_FILE = Path(settings.BASE_DIR) / "docs" / "card-response.schema.json"
DROP = object()  # marks a field to remove from a minimal component

TEXT = {"componentText": {"text": "Plan: **Pro**"}}
BADGE = {"componentBadge": {"badgeLabel": "Active"}}
MINIMAL = {
    "componentText": {"text": "Hello"},
    "componentPlainText": {"plainText": "Hello"},
    "componentBadge": {"badgeLabel": "Pro"},
    "componentDivider": {},
    "componentSpacer": {"spacerSize": "M"},
    "componentLinkButton": {"linkButtonLabel": "Open", "linkButtonUrl": "https://example.com"},
    "componentCopyButton": {"copyButtonValue": "u_123"},
    "componentWorkflowButton": {
        "workflowButtonLabel": "Refund",
        "workflowButtonWorkflowIdentifier": {"workflowId": "wf_refund"},
    },
    "componentRow": {"rowMainContent": [TEXT], "rowAsideContent": [BADGE]},
    "componentContainer": {"containerContent": [TEXT]},
}
FIELDS = {
    "componentText": "text, textSize, textColor",
    "componentPlainText": "plainText, plainTextSize, plainTextColor",
    "componentBadge": "badgeLabel, badgeColor",
    "componentDivider": "dividerSpacingSize",
    "componentSpacer": "spacerSize",
    "componentLinkButton": "linkButtonLabel, linkButtonUrl",
    "componentCopyButton": "copyButtonValue, copyButtonTooltipLabel",
    "componentWorkflowButton": "workflowButtonLabel, workflowButtonWorkflowIdentifier",
    "componentRow": "rowMainContent, rowAsideContent",
    "componentContainer": "containerContent",
}
# (component, field, min length, max length)
STRINGS = [
    ("componentText", "text", 1, 5000),
    ("componentPlainText", "plainText", 1, 5000),
    ("componentBadge", "badgeLabel", 1, 500),
    ("componentLinkButton", "linkButtonLabel", 1, 500),
    ("componentCopyButton", "copyButtonValue", 1, 1000),
    ("componentCopyButton", "copyButtonTooltipLabel", 0, 500),
    ("componentWorkflowButton", "workflowButtonLabel", 1, 500),
]
# (component, field, allowed values, required)
ENUMS = [
    ("componentText", "textSize", TEXT_SIZES, False),
    ("componentText", "textColor", TEXT_COLORS, False),
    ("componentPlainText", "plainTextSize", TEXT_SIZES, False),
    ("componentPlainText", "plainTextColor", TEXT_COLORS, False),
    ("componentBadge", "badgeColor", BADGE_COLORS, False),
    ("componentDivider", "dividerSpacingSize", SPACING_SIZES, False),
    ("componentSpacer", "spacerSize", SPACING_SIZES, True),
]
REQUIRED = [
    ("componentText", "text"),
    ("componentPlainText", "plainText"),
    ("componentBadge", "badgeLabel"),
    ("componentSpacer", "spacerSize"),
    ("componentLinkButton", "linkButtonLabel"),
    ("componentLinkButton", "linkButtonUrl"),
    ("componentCopyButton", "copyButtonValue"),
    ("componentWorkflowButton", "workflowButtonLabel"),
    ("componentWorkflowButton", "workflowButtonWorkflowIdentifier"),
    ("componentRow", "rowMainContent"),
    ("componentRow", "rowAsideContent"),
    ("componentContainer", "containerContent"),
]
LEAVES = [name for name in COMPONENT_NAMES if name not in ("componentRow", "componentContainer")]
LEAF_LIST = ", ".join(LEAVES)
ALL_LIST = ", ".join(COMPONENT_NAMES)
URL = "componentLinkButton.linkButtonUrl"
URL_EXPECTED = "expected an absolute http:// or https:// URL, got"


def make(name, **changes):
    """A component object: the minimal `name` with some fields changed or DROPped."""
    body = {**MINIMAL[name], **changes}
    return {name: {k: v for k, v in body.items() if v is not DROP}}


def choices(values):
    return ", ".join(values)


VALID = [
    *(pytest.param(make(name), id=f"{name}-minimal") for name in COMPONENT_NAMES),
    *(
        pytest.param(make(name, **{field: value}), id=f"{name}-{field}-{value}")
        for name, field, values, _ in ENUMS
        for value in values
    ),
    *(
        pytest.param(make(name, **{field: None}), id=f"{name}-{field}-null-means-default")
        for name, field, _, required in ENUMS
        if not required
    ),
    *(
        pytest.param(make(name, **{field: "é" * length}), id=f"{name}-{field}-{length}-chars")
        for name, field, low, high in STRINGS
        for length in (max(low, 1), high)
    ),
    pytest.param(make("componentCopyButton", copyButtonTooltipLabel=""), id="empty-tooltip"),
    pytest.param(make("componentCopyButton", copyButtonTooltipLabel=None), id="null-tooltip"),
    pytest.param(make("componentPlainText", plainText="line 1\nline 2\n\n  indented"), id="lines"),
    pytest.param(
        make("componentText", text="**Pro** plan", textSize="L", textColor="SUCCESS"),
        id="text-every-field",
    ),
    *(
        pytest.param(make("componentLinkButton", linkButtonUrl=url), id=f"url-{url}")
        for url in (
            "http://example.com",
            "https://example.com/orders/42?tab=items&x=1#top",
            "https://user@sub.example.co.uk:8443/a/b",
            "HTTPS://EXAMPLE.COM/",
            "https://127.0.0.1/x",
        )
    ),
    pytest.param(
        make("componentRow", rowMainContent=[make(n) for n in LEAVES], rowAsideContent=[BADGE]),
        id="row-main-holds-every-leaf",
    ),
    pytest.param(
        make("componentRow", rowMainContent=[TEXT], rowAsideContent=[make(n) for n in LEAVES]),
        id="row-aside-holds-every-leaf",
    ),
    pytest.param(
        make("componentContainer", containerContent=[make(n) for n in COMPONENT_NAMES[:-1]]),
        id="container-holds-every-leaf-and-a-row",
    ),
]

INVALID = [
    *(
        pytest.param(make(name, **{field: DROP}), f"{name}.{field}", "required field is missing")
        for name, field in REQUIRED
    ),
    *(
        pytest.param(
            make(name, **{field: 5}), f"{name}.{field}", "expected a string, got a number (5)"
        )
        for name, field, _, _ in STRINGS
    ),
    *(
        pytest.param(
            make(name, **{field: "x" * (high + 1)}),
            f"{name}.{field}",
            f"expected at most {high} characters, got {high + 1}",
        )
        for name, field, _, high in STRINGS
    ),
    *(
        pytest.param(
            make(name, **{field: ""}), f"{name}.{field}", "expected at least 1 character, got 0"
        )
        for name, field, low, _ in STRINGS
        if low == 1
    ),
    *(
        pytest.param(
            make(name, **{field: "PINK"}),
            f"{name}.{field}",
            f'expected one of {choices(values)}, got "PINK"',
        )
        for name, field, values, _ in ENUMS
    ),
    *(
        pytest.param(
            make(name, **{field: values[0].lower()}),
            f"{name}.{field}",
            f'expected one of {choices(values)}, got "{values[0].lower()}"',
        )
        for name, field, values, _ in ENUMS
    ),
    *(
        pytest.param(
            make(name, **{field: 1}),
            f"{name}.{field}",
            f"expected one of {choices(values)}, got a number (1)",
        )
        for name, field, values, _ in ENUMS
    ),
    pytest.param(
        make("componentSpacer", spacerSize=None),
        "componentSpacer.spacerSize",
        f"expected one of {choices(SPACING_SIZES)}, got null",
    ),
    *(
        pytest.param(
            make(name, extra=1),
            f"{name}.extra",
            f"unknown field; {name} allows only {FIELDS[name]}",
        )
        for name in COMPONENT_NAMES
    ),
    pytest.param(
        make("componentText", **{"text color": "MUTED"}),
        'componentText["text color"]',
        "unknown field; componentText allows only text, textSize, textColor",
    ),
    pytest.param(
        make("componentBadge", badgeLabel=True),
        "componentBadge.badgeLabel",
        "expected a string, got a boolean (true)",
    ),
    pytest.param(
        make("componentText", text=None), "componentText.text", "expected a string, got null"
    ),
    pytest.param(
        make("componentText", text=["a"]), "componentText.text", "expected a string, got an array"
    ),
    pytest.param({"componentDivider": []}, "componentDivider", "expected an object, got an array"),
    pytest.param(
        {"componentText": "Hello"}, "componentText", 'expected an object, got a string ("Hello")'
    ),
    *(
        pytest.param(
            make("componentLinkButton", linkButtonUrl=url), URL, f"{URL_EXPECTED} {json.dumps(url)}"
        )
        for url in (
            "javascript:alert(1)",
            "JavaScript://example.com/%0Aalert(1)",
            "ftp://example.com/file.txt",
            "mailto:alex@example.com",
            "/orders/42",
            "orders/42",
            "example.com/orders",
            "//example.com/orders",
            "https://",
            " https://example.com",
            "https://example.com/a b",
            "https://exa mple.com",
            "",
        )
    ),
    pytest.param(
        make("componentLinkButton", linkButtonUrl="https://example.com/" + "a" * 2048),
        URL,
        "expected at most 2048 characters, got 2068",
    ),
    pytest.param(
        make("componentWorkflowButton", workflowButtonWorkflowIdentifier="wf_refund"),
        "componentWorkflowButton.workflowButtonWorkflowIdentifier",
        'expected an object, got a string ("wf_refund")',
    ),
    pytest.param(
        make("componentWorkflowButton", workflowButtonWorkflowIdentifier={}),
        "componentWorkflowButton.workflowButtonWorkflowIdentifier.workflowId",
        "required field is missing",
    ),
    pytest.param(
        make("componentWorkflowButton", workflowButtonWorkflowIdentifier={"workflowId": 7}),
        "componentWorkflowButton.workflowButtonWorkflowIdentifier.workflowId",
        "expected a string, got a number (7)",
    ),
    pytest.param(
        make(
            "componentWorkflowButton",
            workflowButtonWorkflowIdentifier={"workflowId": "wf", "version": 2},
        ),
        "componentWorkflowButton.workflowButtonWorkflowIdentifier.version",
        "unknown field; workflowButtonWorkflowIdentifier allows only workflowId",
    ),
    *(
        pytest.param(
            make(name, **{field: []}), f"{name}.{field}", "expected at least 1 component, got none"
        )
        for name, field in REQUIRED
        if name in ("componentRow", "componentContainer")
    ),
    pytest.param(
        make("componentRow", rowMainContent=TEXT),
        "componentRow.rowMainContent",
        "expected an array, got an object",
    ),
]

# Nesting and the exactly-one-key rule: (components, exact problem strings).
SHAPES = [
    pytest.param(
        [{}],
        [f"components[0]: expected exactly one component key ({ALL_LIST}), got none"],
        id="no-key",
    ),
    pytest.param(
        [{"componentText": {"text": "a"}, "componentBadge": {"badgeLabel": "b"}}],
        [
            f"components[0]: expected exactly one component key ({ALL_LIST}),"
            " got 2: componentText, componentBadge"
        ],
        id="two-keys",
    ),
    pytest.param(
        [{"componentTxt": {"text": "a"}}],
        [
            'components[0]: unknown component "componentTxt" (did you mean componentText?);'
            f" expected one of {ALL_LIST}"
        ],
        id="unknown-key-with-a-hint",
    ),
    pytest.param(
        [{"image": {"src": "x"}}],
        [f'components[0]: unknown component "image"; expected one of {ALL_LIST}'],
        id="unknown-key",
    ),
    pytest.param(
        ["Hello", None, 5],
        [
            'components[0]: expected a component object, got a string ("Hello")',
            "components[1]: expected a component object, got null",
            "components[2]: expected a component object, got a number (5)",
        ],
        id="not-objects",
    ),
    pytest.param(
        [make("componentContainer", containerContent=[make("componentContainer")])],
        [
            "components[0].componentContainer.containerContent[0]: componentContainer is not"
            " allowed inside a container (a container holds any component but a container:"
            f" {LEAF_LIST}, componentRow)"
        ],
        id="container-in-container",
    ),
    pytest.param(
        [make("componentRow", rowMainContent=[TEXT, make("componentRow")])],
        [
            "components[0].componentRow.rowMainContent[1]: componentRow is not allowed inside"
            f" a row (a row holds only leaf components: {LEAF_LIST})"
        ],
        id="row-in-row",
    ),
    pytest.param(
        [make("componentRow", rowAsideContent=[make("componentContainer")])],
        [
            "components[0].componentRow.rowAsideContent[0]: componentContainer is not allowed"
            f" inside a row (a row holds only leaf components: {LEAF_LIST})"
        ],
        id="container-in-row",
    ),
    pytest.param(
        [make("componentRow", rowAsideContent=[{}])],
        [
            "components[0].componentRow.rowAsideContent[0]: expected exactly one component key"
            f" ({LEAF_LIST}), got none"
        ],
        id="no-key-in-a-row-names-only-leaves",
    ),
    pytest.param(
        [
            make(
                "componentContainer",
                containerContent=[
                    TEXT,
                    make(
                        "componentRow", rowAsideContent=[make("componentBadge", badgeColor="PINK")]
                    ),
                ],
            )
        ],
        [
            "components[0].componentContainer.containerContent[1].componentRow"
            ".rowAsideContent[0].componentBadge.badgeColor: expected one of"
            f' {choices(BADGE_COLORS)}, got "PINK"'
        ],
        id="deep-path-through-container-and-row",
    ),
    pytest.param(
        [TEXT, make("componentBadge", badgeColor="PINK"), make("componentText", text=5)],
        [
            "components[1].componentBadge.badgeColor:"
            f' expected one of {choices(BADGE_COLORS)}, got "PINK"',
            "components[2].componentText.text: expected a string, got a number (5)",
        ],
        id="every-bad-component-is-reported",
    ),
]


def wrap(components):
    return {"cards": [{"key": "k", "components": components}]}
