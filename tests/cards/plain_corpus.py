"""The corpus of the engine's lenient reading (SPEC §5, last paragraph; issue 14).

`PLAIN_VALID`: answers Plain's published zod schema accepts and the strict contract refuses;
each loads, with exactly the warnings listed and the components the engine then stores.
`UNSAFE_DROPPED`: links the engine will not draw; the component goes, with a warning.
`STILL_FAILING`: structural errors (and Plain-invalid URLs) that still fail the card, with
their path and message. Every entry is one card answered under the key "k"; paths start at
`cards[0]`, as a one-card answer's do.
"""

import pytest

from cards.protocol.schema import TTL_MAX_SECONDS

TEXT = {"componentText": {"text": "Plan: **Pro**"}}
BADGE = {"componentBadge": {"badgeLabel": "Active"}}
C0 = "cards[0].components[0]"
URL_FIELD = f"{C0}.componentLinkButton.linkButtonUrl"
LINK_SCHEMES_TEXT = "links may be http, https, mailto or tel"


def entry(components, **fields):
    return {"key": "k", "components": components, **fields}


def link(url, label="Open"):
    return {"componentLinkButton": {"linkButtonLabel": label, "linkButtonUrl": url}}


def row(main, aside):
    return {"componentRow": {"rowMainContent": main, "rowAsideContent": aside}}


def unknown_field_warning(path, owner, allowed):
    return (f"{path}.extra", f"unknown field; {owner} allows only {allowed}; ignored")


LONG_URL = "https://example.com/" + "a" * (8192 - len("https://example.com/"))

# (card entry, expected TTL, expected warnings [(path, message)], expected stored components)
PLAIN_VALID = [
    pytest.param(
        entry([TEXT], timeToLiveSeconds=60.0),
        60,
        [
            (
                "cards[0].timeToLiveSeconds",
                "an integer written as a number with a fraction or exponent (60.0); read as 60",
            )
        ],
        [TEXT],
        id="ttl-integral-float",
    ),
    pytest.param(
        entry([TEXT], timeToLiveSeconds=1e2),
        100,
        [
            (
                "cards[0].timeToLiveSeconds",
                "an integer written as a number with a fraction or exponent (100.0); read as 100",
            )
        ],
        [TEXT],
        id="ttl-exponent",
    ),
    pytest.param(
        entry([TEXT], timeToLiveSeconds=TTL_MAX_SECONDS + 1),
        TTL_MAX_SECONDS,
        [
            (
                "cards[0].timeToLiveSeconds",
                f"{TTL_MAX_SECONDS + 1} seconds is over one year; kept for one year "
                f"({TTL_MAX_SECONDS} seconds)",
            )
        ],
        [TEXT],
        id="ttl-over-a-year-clamped",
    ),
    pytest.param(
        entry([row([TEXT], [])]),
        None,
        [
            (
                f"{C0}.componentRow.rowAsideContent",
                "empty rowAsideContent; the row draws its other side alone",
            )
        ],
        [row([TEXT], [])],
        id="row-empty-aside",
    ),
    pytest.param(
        entry([row([], [BADGE])]),
        None,
        [
            (
                f"{C0}.componentRow.rowMainContent",
                "empty rowMainContent; the row draws its other side alone",
            )
        ],
        [row([], [BADGE])],
        id="row-empty-main",
    ),
    *(
        pytest.param(
            entry([component, TEXT]),
            None,
            [(f"{C0}.{name}.{field}", f"empty {field}; {what} is not drawn")],
            [TEXT],
            id=f"empty-{field}",
        )
        for name, field, what, component in (
            ("componentBadge", "badgeLabel", "the badge", {"componentBadge": {"badgeLabel": ""}}),
            ("componentLinkButton", "linkButtonLabel", "the link button", link("https://a.io", "")),
            (
                "componentCopyButton",
                "copyButtonValue",
                "the copy button",
                {"componentCopyButton": {"copyButtonValue": "", "copyButtonTooltipLabel": "Id"}},
            ),
            (
                "componentWorkflowButton",
                "workflowButtonLabel",
                "the workflow button",
                {
                    "componentWorkflowButton": {
                        "workflowButtonLabel": "",
                        "workflowButtonWorkflowIdentifier": {"workflowId": "wf"},
                    }
                },
            ),
        )
    ),
    *(
        pytest.param(
            entry([link(url)]),
            None,
            [
                (
                    URL_FIELD,
                    f"a {scheme}: link is drawn, but the strict contract allows only http(s)",
                )
            ],
            [link(href)],
            id=f"link-{scheme}",
        )
        for scheme, url, href in (
            ("mailto", "mailto:alex@example.com?subject=Hi", "mailto:alex@example.com?subject=Hi"),
            ("tel", "tel:+1-555-0100", "tel:+1-555-0100"),
        )
    ),
    *(
        pytest.param(
            entry([link(url)]),
            None,
            [
                (
                    URL_FIELD,
                    f'not a clean absolute URL by the strict contract; drawn as "{href}"',
                )
            ],
            [link(href)],
            id=f"link-{name}",
        )
        for name, url, href in (
            ("space", "https://example.com/a b", "https://example.com/a%20b"),
            ("quote", 'https://example.com/?q="x"', "https://example.com/?q=%22x%22"),
            ("pipe", "https://example.com/a|b", "https://example.com/a|b"),
            ("leading-space", " https://example.com/x", "https://example.com/x"),
        )
    ),
    pytest.param(
        entry([link(LONG_URL)]),
        None,
        [(URL_FIELD, "8192 characters is over the strict contract's 2048; drawn")],
        [link(LONG_URL)],
        id="link-8192-characters",
    ),
    pytest.param(
        entry([link("HTTPS://EXAMPLE.COM/x")]),
        None,
        [],
        [link("https://example.com/x")],
        id="strict-url-stored-as-its-serialization-without-a-warning",
    ),
    pytest.param(
        entry([{"componentBadge": {"badgeLabel": "Pro", "extra": 1}}]),
        None,
        [unknown_field_warning(f"{C0}.componentBadge", "componentBadge", "badgeLabel, badgeColor")],
        [{"componentBadge": {"badgeLabel": "Pro"}}],
        id="unknown-field-in-a-leaf",
    ),
    pytest.param(
        entry(
            [{"componentRow": {"rowMainContent": [TEXT], "rowAsideContent": [BADGE], "extra": 1}}]
        ),
        None,
        [
            unknown_field_warning(
                f"{C0}.componentRow", "componentRow", "rowMainContent, rowAsideContent"
            )
        ],
        [row([TEXT], [BADGE])],
        id="unknown-field-in-a-row",
    ),
    pytest.param(
        entry([{"componentContainer": {"containerContent": [TEXT], "extra": 1}}]),
        None,
        [
            unknown_field_warning(
                f"{C0}.componentContainer", "componentContainer", "containerContent"
            )
        ],
        [{"componentContainer": {"containerContent": [TEXT]}}],
        id="unknown-field-in-a-container",
    ),
    pytest.param(
        entry(
            [
                {
                    "componentWorkflowButton": {
                        "workflowButtonLabel": "Refund",
                        "workflowButtonWorkflowIdentifier": {"workflowId": "wf", "extra": 1},
                    }
                }
            ]
        ),
        None,
        [
            unknown_field_warning(
                f"{C0}.componentWorkflowButton.workflowButtonWorkflowIdentifier",
                "workflowButtonWorkflowIdentifier",
                "workflowId",
            )
        ],
        [
            {
                "componentWorkflowButton": {
                    "workflowButtonLabel": "Refund",
                    "workflowButtonWorkflowIdentifier": {"workflowId": "wf"},
                }
            }
        ],
        id="unknown-field-in-a-workflow-identifier",
    ),
    pytest.param(
        entry([{"componentImage": {"src": "https://a.io/x.png"}}, TEXT]),
        None,
        [
            (
                "cards[0].components[0]",
                'unknown component "componentImage"; skipped, the rest is drawn',
            )
        ],
        [TEXT],
        id="unknown-component",
    ),
    pytest.param(
        entry([row([TEXT], [{"componentBadgee": {"badgeLabel": "x"}}])]),
        None,
        [
            (
                f"{C0}.componentRow.rowAsideContent[0]",
                'unknown component "componentBadgee" (did you mean componentBadge?); '
                "skipped, the rest is drawn",
            )
        ],
        [row([TEXT], [])],
        id="unknown-component-in-a-row",
    ),
    pytest.param(
        entry([{"componentContainer": {"containerContent": [{"componentChart": {}}, TEXT]}}]),
        None,
        [
            (
                f"{C0}.componentContainer.containerContent[0]",
                'unknown component "componentChart"; skipped, the rest is drawn',
            )
        ],
        [{"componentContainer": {"containerContent": [TEXT]}}],
        id="unknown-component-in-a-container",
    ),
]

# Unsafe links: the component is dropped with a warning, the rest of the card is drawn.
UNSAFE_DROPPED = [
    *(
        pytest.param(
            url,
            f"a {scheme}: link is unsafe ({LINK_SCHEMES_TEXT}); the link button is dropped",
            id=f"{scheme}-{n}",
        )
        for n, (scheme, url) in enumerate(
            (
                ("javascript", "javascript:alert(1)"),
                ("javascript", "JavaScript://example.com/%0Aalert(1)"),
                ("data", "data:text/html,<script>alert(1)</script>"),
                ("file", "file:///etc/passwd"),
                ("ftp", "ftp://example.com/file.txt"),
                ("vbscript", "vbscript:msgbox(1)"),
                ("sms", "sms:+15550100"),
            )
        )
    ),
    *(
        pytest.param(
            url,
            "the URL holds invisible or control characters that can hide its target; "
            "the link button is dropped",
            id=f"invisible-{n}",
        )
        for n, url in enumerate(
            (
                "https://ok.example/\u202eexe.pdf",
                "https://ok.example/a\nb",
                "https://ok.\u200bexample",
            )
        )
    ),
]

# Structural errors and links Plain refuses too: the card fails, with path and message.
STILL_FAILING = [
    *(
        pytest.param(
            entry([link(url)]),
            (URL_FIELD, f"expected an absolute URL (http, https, mailto or tel), got {shown}"),
            id=f"not-a-url-{n}",
        )
        for n, (url, shown) in enumerate(
            (
                ("/orders/42", '"/orders/42"'),
                ("example.com/orders", '"example.com/orders"'),
                ("https://", '"https://"'),
                ("https://exa mple.com", '"https://exa mple.com"'),
                ("", '""'),
            )
        )
    ),
    pytest.param(
        entry([link(LONG_URL + "a")]),
        (URL_FIELD, "expected at most 8192 characters, got 8193"),
        id="url-over-8192",
    ),
    pytest.param(
        entry([{"componentText": {"text": ""}}]),
        (f"{C0}.componentText.text", "expected at least 1 character, got 0"),
        id="empty-text",
    ),
    pytest.param(
        entry([{"componentBadge": {"badgeLabel": "x" * 501}}]),
        (f"{C0}.componentBadge.badgeLabel", "expected at most 500 characters, got 501"),
        id="label-too-long",
    ),
    pytest.param(
        entry([{"componentBadge": {"badgeLabel": "", "badgeColor": "PINK"}}]),
        (
            f"{C0}.componentBadge.badgeColor",
            'expected one of GREY, GREEN, YELLOW, RED, BLUE, got "PINK"',
        ),
        id="unknown-enum-wins-over-an-empty-label",
    ),
    pytest.param(
        entry([{"componentSpacer": {}}]),
        (f"{C0}.componentSpacer.spacerSize", "required field is missing"),
        id="missing-required-field",
    ),
    pytest.param(
        entry([{"componentCopyButton": {"copyButtonValue": 42}}]),
        (f"{C0}.componentCopyButton.copyButtonValue", "expected a string, got a number (42)"),
        id="wrong-type",
    ),
    pytest.param(
        entry([{"componentContainer": {"containerContent": []}}]),
        (f"{C0}.componentContainer.containerContent", "expected at least 1 component, got none"),
        id="empty-container",
    ),
    pytest.param(
        entry([{"componentRow": {"rowMainContent": [TEXT]}}]),
        (f"{C0}.componentRow.rowAsideContent", "required field is missing"),
        id="row-without-a-side",
    ),
    pytest.param(
        entry([{"componentContainer": {"containerContent": [{"componentContainer": {}}]}}]),
        (
            f"{C0}.componentContainer.containerContent[0]",
            "componentContainer is not allowed inside a container (a container holds any "
            "component but a container: componentText, componentPlainText, componentBadge, "
            "componentDivider, componentSpacer, componentLinkButton, componentCopyButton, "
            "componentWorkflowButton, componentRow)",
        ),
        id="container-in-container",
    ),
    pytest.param(
        entry([row([row([TEXT], [TEXT])], [TEXT])]),
        (
            f"{C0}.componentRow.rowMainContent[0]",
            "componentRow is not allowed inside a row (a row holds only leaf components: "
            "componentText, componentPlainText, componentBadge, componentDivider, "
            "componentSpacer, componentLinkButton, componentCopyButton, componentWorkflowButton)",
        ),
        id="row-in-row",
    ),
    pytest.param(
        entry([{**TEXT, **BADGE}]),
        (
            C0,
            "expected exactly one component key (componentText, componentPlainText, "
            "componentBadge, componentDivider, componentSpacer, componentLinkButton, "
            "componentCopyButton, componentWorkflowButton, componentRow, componentContainer), "
            "got 2: componentText, componentBadge",
        ),
        id="two-keys",
    ),
    *(
        pytest.param(
            entry([TEXT], timeToLiveSeconds=ttl),
            ("cards[0].timeToLiveSeconds", message),
            id=f"ttl-{ttl!r}",
        )
        for ttl, message in (
            (60.5, "expected an integer, got a number (60.5)"),
            ("60", 'expected an integer, got a string ("60")'),
            (True, "expected an integer, got a boolean (true)"),
            (-1, "expected at least 0, got -1"),
            (-1.0, "expected at least 0, got -1"),
        )
    ),
    pytest.param(
        {"key": "k", "components": {"componentText": {"text": "x"}}},
        ("cards[0].components", "expected an array, got an object"),
        id="components-not-an-array",
    ),
]
