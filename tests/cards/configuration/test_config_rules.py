"""Every SPEC §2 rule, one bad value each, through the admin form and through the import.

Both paths share `cards.configuration.validation`, so each case runs twice with the same
expected message.
"""

import html
import json

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from cards.models import CardConfig
from tests.factories import CardConfigFactory, CardConfigHeaderFactory

pytestmark = pytest.mark.django_db

ADD_URL = reverse("admin:cards_cardconfig_add")

GOOD_ITEM = {
    "title": "Plan details",
    "key": "plan",
    "apiUrl": "https://api.example.com/cards",
    "defaultTimeToLiveSeconds": 300,
    "order": 10,
    "isEnabled": True,
    "apiHeaders": [{"name": "Authorization", "value": "Bearer s3cr3t-token-value"}],
}
FORM_FIELDS = {
    "title": "title",
    "key": "key",
    "apiUrl": "api_url",
    "defaultTimeToLiveSeconds": "default_ttl_seconds",
    "order": "order",
    "maxRequestsPerSecond": "max_requests_per_second",
}


@pytest.fixture(autouse=True)
def production_url_rules(settings):
    # The test settings allow http:// for loopback card APIs; these tests check the default.
    settings.CARDS_ALLOW_HTTP = False


def headers(*pairs):
    return [{"name": name, "value": value} for name, value in pairs]


RESERVED = [
    "Host",
    "content-length",
    "CONTENT-TYPE",
    "Accept",
    "Transfer-Encoding",
    "Connection",
    "User-Agent",
    "cards-signature",
    "Cards-Workspace-Id",
]

# (import field, bad value, part of the message). One bad value per rule.
BAD_VALUES = [
    pytest.param("title", "", "Enter a title (1 to 500 characters).", id="title-empty"),
    pytest.param("title", "t" * 501, "at most 500 characters (this one has 501)", id="title-long"),
    pytest.param("key", "", "Enter a key (1 to 500 characters).", id="key-empty"),
    pytest.param("key", "k" * 501, "at most 500 characters (this one has 501)", id="key-long"),
    pytest.param("key", "plan details", "uses only letters, digits, hyphens", id="key-space"),
    pytest.param("key", "plan/details", "uses only letters, digits, hyphens", id="key-slash"),
    pytest.param("defaultTimeToLiveSeconds", 14, "from 15 to 31,536,000", id="ttl-low"),
    pytest.param("defaultTimeToLiveSeconds", 31_536_001, "from 15 to 31,536,000", id="ttl-high"),
    pytest.param(
        "apiUrl",
        "https://api.example.com/" + "a" * 577,
        "at most 600 characters (this one has 601)",
        id="url-long",
    ),
    pytest.param("apiUrl", "not a url", "Enter a valid URL", id="url-invalid"),
    pytest.param("apiUrl", "ftp://api.example.com/cards", "Enter a valid URL", id="url-ftp"),
    pytest.param("apiUrl", "http://api.example.com/cards", "Use an https:// URL", id="url-http"),
    pytest.param("order", -1, "from 0 to 100,000", id="order-negative"),
    pytest.param("order", 100_001, "from 0 to 100,000", id="order-high"),
    pytest.param(
        "apiHeaders",
        headers(*[(f"X-Header-{n}", "v") for n in range(21)]),
        "at most 20 API headers; this one has 21",
        id="headers-too-many",
    ),
    pytest.param(
        "apiHeaders", headers(("", "value")), "Enter a header name", id="header-name-empty"
    ),
    pytest.param(
        "apiHeaders",
        headers(("X" * 101, "value")),
        "at most 100 characters (this one has 101)",
        id="header-name-long",
    ),
    pytest.param(
        "apiHeaders",
        headers(("X Api Key", "value")),
        "an HTTP token uses letters",
        id="header-name-space",
    ),
    pytest.param(
        "apiHeaders",
        headers(("X-Api-Key:", "value")),
        "an HTTP token uses letters",
        id="header-name-colon",
    ),
    *[
        pytest.param(
            "apiHeaders",
            headers((name, "value")),
            f'"{name}" is a reserved header',
            id=f"header-reserved-{name}",
        )
        for name in RESERVED
    ],
    pytest.param(
        "apiHeaders",
        headers(("X-Api-Key", "one"), ("x-api-key ", "two")),
        'The header "x-api-key" is given twice',
        id="header-duplicate",
    ),
    pytest.param(
        "apiHeaders", headers(("X-Api-Key", "")), "Enter a header value", id="header-value-empty"
    ),
    pytest.param(
        "apiHeaders",
        headers(("X-Api-Key", "v" * 501)),
        "at most 500 characters (this one has 501)",
        id="header-value-long",
    ),
    pytest.param(
        "apiHeaders",
        headers(("X-Api-Key", "abc\r\nX-Injected: 1")),
        "may not contain line breaks",
        id="header-value-newline",
    ),
    pytest.param("maxRequestsPerSecond", 0, "from 1 to 10,000", id="rate-zero"),
]


def form_data(item: dict) -> dict:
    """The admin add form's POST for an import item, with the headers inline's management
    form."""
    data = {
        "title": item["title"],
        "key": item["key"],
        "api_url": item["apiUrl"],
        "default_ttl_seconds": str(item["defaultTimeToLiveSeconds"]),
        "order": str(item["order"]),
        "max_requests_per_second": str(item.get("maxRequestsPerSecond", 10)),
        "headers-TOTAL_FORMS": str(len(item["apiHeaders"])),
        "headers-INITIAL_FORMS": "0",
        "headers-MIN_NUM_FORMS": "0",
        "headers-MAX_NUM_FORMS": "20",
    }
    if item["isEnabled"]:
        data["is_enabled"] = "on"
    for index, header in enumerate(item["apiHeaders"]):
        data[f"headers-{index}-name"] = header["name"]
        data[f"headers-{index}-value"] = header["value"]
    return data


def form_errors(response) -> list[str]:
    """Every error message on the admin page: fields, the form, the inline and its rows."""
    form = response.context["adminform"].form
    messages = [message for errors in form.errors.values() for message in errors]
    for inline in response.context["inline_admin_formsets"]:
        messages.extend(inline.formset.non_form_errors())
        for row in inline.formset.forms:
            messages.extend(message for errors in row.errors.values() for message in errors)
    return messages


def import_items(tmp_path, items: list) -> None:
    path = tmp_path / "configs.json"
    path.write_text(json.dumps(items))
    call_command("import_card_configs", str(path))


@pytest.mark.parametrize(("field", "value", "message"), BAD_VALUES)
def test_the_admin_form_refuses_a_bad_value_with_a_specific_error(
    admin_client_logged_in, field, value, message
):
    item = {**GOOD_ITEM, field: value}

    response = admin_client_logged_in.post(ADD_URL, form_data(item))

    assert response.status_code == 200, "the form should be shown again with errors"
    errors = form_errors(response)
    assert any(message in error for error in errors), errors
    assert message in html.unescape(response.content.decode())
    assert not CardConfig.objects.exists()


@pytest.mark.parametrize(("field", "value", "message"), BAD_VALUES)
def test_the_import_refuses_a_bad_value_with_the_same_error(tmp_path, field, value, message):
    item = {**GOOD_ITEM, field: value}

    with pytest.raises(CommandError) as raised:
        import_items(tmp_path, [item])

    label = f'item 1 (key "{item["key"]}")' if item["key"] else "item 1"
    assert f"{label}: {field}" in str(raised.value)
    assert message in str(raised.value)
    assert not CardConfig.objects.exists()


def test_a_good_config_passes_both_paths(admin_client_logged_in, tmp_path):
    response = admin_client_logged_in.post(ADD_URL, form_data(GOOD_ITEM))
    assert response.status_code == 302, form_errors(response)

    import_items(tmp_path, [{**GOOD_ITEM, "key": "plan-2"}])

    assert sorted(CardConfig.objects.values_list("key", flat=True)) == ["plan", "plan-2"]


def test_plain_http_is_allowed_where_the_setting_allows_it(admin_client_logged_in, settings):
    settings.CARDS_ALLOW_HTTP = True
    item = {**GOOD_ITEM, "apiUrl": "http://127.0.0.1:8000/examples/cards/"}

    response = admin_client_logged_in.post(ADD_URL, form_data(item))

    assert response.status_code == 302, form_errors(response)


def test_the_ttl_and_order_bounds_are_inclusive(tmp_path):
    import_items(
        tmp_path,
        [
            {**GOOD_ITEM, "key": "low", "defaultTimeToLiveSeconds": 15, "order": 0},
            {**GOOD_ITEM, "key": "high", "defaultTimeToLiveSeconds": 31_536_000, "order": 100_000},
        ],
    )

    assert CardConfig.objects.count() == 2


def test_renamed_signature_and_workspace_headers_are_reserved(admin_client_logged_in, settings):
    settings.CARDS_SIGNATURE_HEADER = "X-Plain-Request-Signature"
    settings.CARDS_WORKSPACE_HEADER = "X-Plain-Workspace-Id"
    item = {
        **GOOD_ITEM,
        "apiHeaders": headers(("x-plain-request-signature", "v"), ("X-PLAIN-WORKSPACE-ID", "v")),
    }

    errors = form_errors(admin_client_logged_in.post(ADD_URL, form_data(item)))

    assert sum("is a reserved header" in error for error in errors) == 2


def test_the_admin_form_refuses_a_key_another_config_uses(admin_client_logged_in):
    CardConfigFactory(key="plan", title="Existing plan")

    response = admin_client_logged_in.post(ADD_URL, form_data(GOOD_ITEM))

    assert form_errors(response) == [
        'The key "plan" is already used by the card config "Existing plan".'
    ]


def test_the_admin_form_refuses_a_ttl_that_is_not_a_number(admin_client_logged_in):
    data = {**form_data(GOOD_ITEM), "default_ttl_seconds": "five minutes"}

    assert form_errors(admin_client_logged_in.post(ADD_URL, data)) == ["Enter a whole number."]


def test_the_import_refuses_a_number_written_as_a_string(tmp_path):
    with pytest.raises(CommandError, match=r"defaultTimeToLiveSeconds: must be an integer"):
        import_items(tmp_path, [{**GOOD_ITEM, "defaultTimeToLiveSeconds": "300"}])


class TestEnabledLimit:
    @pytest.fixture(autouse=True)
    def at_the_limit(self, settings):
        settings.CARDS_MAX_ENABLED_CONFIGS = 3
        self.enabled = CardConfigFactory.create_batch(3, is_enabled=True)

    def test_enabling_one_more_config_in_admin_is_a_clear_form_error(self, admin_client_logged_in):
        response = admin_client_logged_in.post(ADD_URL, form_data(GOOD_ITEM))

        assert form_errors(response) == [
            "At most 3 card configs may be enabled at once (CARDS_MAX_ENABLED_CONFIGS); this "
            "would make 4. Disable another config first, or keep this one disabled."
        ]

    def test_a_disabled_config_can_still_be_added(self, admin_client_logged_in):
        response = admin_client_logged_in.post(
            ADD_URL, form_data({**GOOD_ITEM, "isEnabled": False})
        )

        assert response.status_code == 302
        assert CardConfig.objects.filter(is_enabled=True).count() == 3

    def test_enabling_a_disabled_config_over_the_limit_is_refused(self, admin_client_logged_in):
        config = CardConfigFactory(is_enabled=False)
        item = {**GOOD_ITEM, "key": config.key, "apiHeaders": []}
        url = reverse("admin:cards_cardconfig_change", args=[config.pk])

        errors = form_errors(admin_client_logged_in.post(url, form_data(item)))

        assert any("At most 3 card configs" in error for error in errors)
        config.refresh_from_db()
        assert not config.is_enabled

    def test_an_enabled_config_stays_editable_at_the_limit(self, admin_client_logged_in):
        config = self.enabled[0]
        item = {**GOOD_ITEM, "key": config.key, "title": "Renamed", "apiHeaders": []}
        url = reverse("admin:cards_cardconfig_change", args=[config.pk])

        response = admin_client_logged_in.post(url, form_data(item))

        assert response.status_code == 302, form_errors(response)
        config.refresh_from_db()
        assert config.title == "Renamed"

    def test_the_import_counts_the_limit_over_the_final_state(self, tmp_path):
        with pytest.raises(CommandError, match=r'item 1 \(key "plan"\): isEnabled: At most 3'):
            import_items(tmp_path, [GOOD_ITEM])

        # Disabling one of the three in the same file makes room for the new one.
        disable = {
            **GOOD_ITEM,
            "key": self.enabled[0].key,
            "isEnabled": False,
            "apiHeaders": [],
        }
        import_items(tmp_path, [disable, GOOD_ITEM])

        assert set(CardConfig.objects.filter(is_enabled=True).values_list("key", flat=True)) == {
            self.enabled[1].key,
            self.enabled[2].key,
            "plan",
        }


def test_an_inline_header_row_left_unchanged_keeps_its_stored_value(admin_client_logged_in):
    header = CardConfigHeaderFactory(name="Authorization", value="Bearer kept-secret-123")
    config = header.config
    data = form_data(
        {
            **GOOD_ITEM,
            "key": config.key,
            "apiHeaders": headers(("Authorization", "")),
        }
    )
    data.update({"headers-INITIAL_FORMS": "1", "headers-0-id": str(header.pk)})
    data["headers-0-config"] = str(config.pk)

    response = admin_client_logged_in.post(
        reverse("admin:cards_cardconfig_change", args=[config.pk]), data
    )

    assert response.status_code == 302, form_errors(response)
    header.refresh_from_db()
    assert header.value == "Bearer kept-secret-123"


def test_the_url_help_says_whether_http_is_allowed_here(settings):
    from cards.configuration.forms import CardConfigForm

    settings.CARDS_ALLOW_HTTP = False
    strict = CardConfigForm().fields["api_url"].help_text
    settings.CARDS_ALLOW_HTTP = True
    relaxed = CardConfigForm().fields["api_url"].help_text

    assert "https:// only" in strict and "CARDS_ALLOW_HTTP" in strict
    assert "http://" in relaxed and "CARDS_ALLOW_HTTP is on" in relaxed
