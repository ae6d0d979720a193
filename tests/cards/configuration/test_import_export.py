"""Card configs as code: import_card_configs, export_card_configs, rotate_card_secrets."""

import json
import os
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection

from cards.configuration.transfer import card_configs_export, card_configs_import
from cards.crypto import MASK, mask
from cards.models import CardConfig, CardConfigHeader
from tests.factories import CardConfigFactory, CardConfigHeaderFactory

pytestmark = pytest.mark.django_db

SECRET = "Bearer s3cr3t-token-value"


def item(key: str = "plan", **fields) -> dict:
    return {
        "title": "Plan details",
        "key": key,
        "apiUrl": "https://api.example.com/cards",
        "defaultTimeToLiveSeconds": 300,
        "order": 10,
        "isEnabled": True,
        "apiHeaders": [{"name": "Authorization", "value": SECRET}],
        **fields,
    }


def run_import(tmp_path, items) -> str:
    path = tmp_path / "configs.json"
    path.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
    out = StringIO()
    call_command("import_card_configs", str(path), stdout=out)
    return out.getvalue()


def run_export(*args: str) -> list[dict]:
    out = StringIO()
    call_command("export_card_configs", *args, stdout=out)
    return json.loads(out.getvalue())


def raw_header_values() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT value FROM cards_cardconfigheader ORDER BY id")
        return [row[0] for row in cursor.fetchall()]


class TestImport:
    def test_it_creates_configs_with_their_headers_and_reports_counts(self, tmp_path):
        output = run_import(tmp_path, [item("plan"), item("orders", apiHeaders=[])])

        assert "2 created, 0 updated, 0 unchanged" in output
        plan = CardConfig.objects.get(key="plan")
        assert (plan.title, plan.default_ttl_seconds, plan.order, plan.is_enabled) == (
            "Plan details",
            300,
            10,
            True,
        )
        assert [(h.name, h.value) for h in plan.headers.all()] == [("Authorization", SECRET)]

    def test_it_updates_by_key_and_counts_unchanged_configs(self, tmp_path):
        run_import(tmp_path, [item("plan"), item("orders")])

        output = run_import(
            tmp_path,
            [
                item("plan", title="Plan", apiHeaders=[{"name": "X-Team", "value": "s"}]),
                item("orders"),
            ],
        )

        assert "0 created, 1 updated, 1 unchanged" in output
        plan = CardConfig.objects.get(key="plan")
        assert plan.title == "Plan"
        assert [(h.name, h.value) for h in plan.headers.all()] == [("X-Team", "s")]
        assert CardConfig.objects.count() == 2

    def test_absent_optional_fields_keep_the_stored_values(self, tmp_path):
        config = CardConfigFactory(key="plan", order=7, keep_warm=True, is_enabled=False)
        CardConfigHeaderFactory(config=config, value=SECRET)

        run_import(
            tmp_path, [{"title": "New title", "key": "plan", "apiUrl": "https://x.example.com/"}]
        )

        config.refresh_from_db()
        assert (config.title, config.order, config.keep_warm, config.is_enabled) == (
            "New title",
            7,
            True,
            False,
        )
        assert [h.value for h in config.headers.all()] == [SECRET]

    def test_one_bad_item_rejects_the_whole_file(self, tmp_path):
        existing = CardConfigFactory(key="orders", title="Orders")
        items = [
            item("plan"),
            item("orders", title="Renamed"),
            item("invoices", apiUrl="not a url"),
        ]

        with pytest.raises(CommandError) as raised:
            run_import(tmp_path, items)

        message = str(raised.value)
        assert 'item 3 (key "invoices"): apiUrl: Enter a valid URL' in message
        assert "nothing changed" in message
        assert list(CardConfig.objects.values_list("key", flat=True)) == ["orders"]
        existing.refresh_from_db()
        assert existing.title == "Orders"

    def test_it_lists_every_problem_of_every_item(self, tmp_path):
        items = [
            item("plan", order=-1, defaultTimeToLiveSeconds=1),
            {"title": "No key"},
            "not an object",
            item("plan"),
        ]

        with pytest.raises(CommandError) as raised:
            run_import(tmp_path, items)

        lines = str(raised.value).splitlines()[1:]
        assert [line.strip().split(": ")[0] for line in lines] == [
            'item 1 (key "plan")',
            'item 1 (key "plan")',
            "item 2",
            "item 2",
            "item 3",
            'item 4 (key "plan")',
        ]
        assert 'item 4 (key "plan"): key: "plan" is also given by item 1' in str(raised.value)

    @pytest.mark.parametrize(
        ("fields", "message"),
        [
            ({"isEnabled": "yes"}, "isEnabled: must be true or false"),
            ({"order": True}, "order: must be an integer, got boolean"),
            ({"order": 1.5}, "order: must be an integer, got number"),
            ({"title": None}, "title: must be a string, got null"),
            ({"apiHeaders": {"Authorization": "x"}}, "apiHeaders: must be a list"),
            (
                {"apiHeaders": [{"name": "X"}]},
                'apiHeaders[0]: must be an object with exactly "name"',
            ),
            ({"apiHeaders": [{"name": "X", "value": 1}]}, "apiHeaders[0].value: must be a string"),
            ({"apiUrl ": "https://x.example.com/"}, 'unknown field "apiUrl "'),
        ],
    )
    def test_it_refuses_wrong_types_and_unknown_fields(self, tmp_path, fields, message):
        with pytest.raises(CommandError, match=message.replace("[", r"\[").replace("]", r"\]")):
            run_import(tmp_path, [item(**fields)])

    def test_header_errors_name_the_header_position_in_the_file(self, tmp_path):
        bad_headers = [{"name": "X-Key", "value": 1}, {"name": "Host", "value": "x"}]

        with pytest.raises(CommandError) as raised:
            run_import(tmp_path, [item(apiHeaders=bad_headers)])

        assert "apiHeaders[0].value: must be a string" in str(raised.value)
        assert 'apiHeaders[1].name: "Host" is a reserved header' in str(raised.value)

    def test_it_refuses_a_file_that_is_not_a_json_list(self, tmp_path):
        path = tmp_path / "configs.json"
        path.write_text('{"title": "x"}')
        with pytest.raises(CommandError, match="a JSON list of card configs"):
            call_command("import_card_configs", str(path))
        path.write_text("[{")
        with pytest.raises(CommandError, match="is not valid JSON"):
            call_command("import_card_configs", str(path))

    def test_a_masked_value_keeps_the_stored_secret(self, tmp_path):
        config = CardConfigFactory(key="plan")
        header = CardConfigHeaderFactory(config=config, name="Authorization", value=SECRET)

        run_import(
            tmp_path,
            [
                item(
                    "plan",
                    title="Renamed",
                    apiHeaders=[{"name": "authorization", "value": mask(SECRET)}],
                )
            ],
        )

        config.refresh_from_db()
        assert config.title == "Renamed"
        assert [(h.name, h.value) for h in config.headers.all()] == [("authorization", SECRET)]
        assert not CardConfigHeader.objects.filter(pk=header.pk, value=mask(SECRET)).exists()

    def test_a_masked_value_without_a_stored_secret_is_refused(self, tmp_path):
        with pytest.raises(CommandError) as raised:
            run_import(tmp_path, [item("plan", apiHeaders=[{"name": "X-Key", "value": MASK}])])

        assert 'apiHeaders[0].value: is masked ("••••••••") but there is no stored "X-Key"' in str(
            raised.value
        )
        assert not CardConfig.objects.exists()

    def test_the_service_can_be_called_without_a_file(self):
        result = card_configs_import(items=[item("plan")])

        assert (result.created, result.updated, result.unchanged) == (1, 0, 0)


class TestExport:
    def test_it_masks_header_values_by_default(self):
        CardConfigHeaderFactory(value=SECRET)

        exported = run_export()

        assert exported[0]["apiHeaders"] == [{"name": "Authorization", "value": mask(SECRET)}]
        assert "s3cr3t" not in json.dumps(exported)

    def test_with_secrets_it_writes_values_in_full_to_an_owner_only_file(self, tmp_path):
        CardConfigHeaderFactory(value=SECRET)
        path = tmp_path / "configs.json"

        call_command(
            "export_card_configs", "--with-secrets", "--output", str(path), stdout=StringIO()
        )

        assert json.loads(path.read_text())[0]["apiHeaders"][0]["value"] == SECRET
        assert os.stat(path).st_mode & 0o777 == 0o600

    def test_it_writes_the_import_format_in_display_order(self):
        second = CardConfigFactory(key="second", order=20, keep_warm=True)
        CardConfigFactory(key="first", order=10, is_enabled=False)

        exported = run_export()

        assert [i["key"] for i in exported] == ["first", "second"]
        assert exported[1] == {
            "title": second.title,
            "key": "second",
            "apiUrl": second.api_url,
            "defaultTimeToLiveSeconds": 300,
            "order": 20,
            "isEnabled": True,
            "keepWarm": True,
            "maxRequestsPerSecond": 10,
            "apiHeaders": [],
            "shownToGroups": [],
        }

    def test_a_masked_export_imported_back_changes_nothing(self, tmp_path):
        config = CardConfigFactory(key="plan")
        CardConfigHeaderFactory(config=config, name="Authorization", value=SECRET)
        CardConfigHeaderFactory(config=config, name="X-Short", value="short")

        output = run_import(tmp_path, card_configs_export(with_secrets=False))

        assert "0 created, 0 updated, 1 unchanged" in output
        assert [h.value for h in config.headers.all()] == [SECRET, "short"]

    def test_an_export_with_secrets_recreates_configs_elsewhere(self, tmp_path):
        config = CardConfigFactory(key="plan", keep_warm=True, max_requests_per_second=3)
        CardConfigHeaderFactory(config=config, value=SECRET)
        exported = card_configs_export(with_secrets=True)
        CardConfig.objects.all().delete()

        run_import(tmp_path, exported)

        assert card_configs_export(with_secrets=True) == exported


class TestEncryptionAtRest:
    def test_header_values_are_not_stored_in_plain_text(self, tmp_path):
        run_import(tmp_path, [item("plan")])

        (raw,) = raw_header_values()
        assert SECRET not in raw
        assert "s3cr3t" not in raw

    def test_rotate_card_secrets_re_encrypts_with_the_first_key(self, settings):
        old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
        settings.CARDS_ENCRYPTION_KEYS = [old_key]
        CardConfigHeaderFactory(value=SECRET)
        CardConfigHeaderFactory(name="X-Team", value="support")
        before = raw_header_values()

        settings.CARDS_ENCRYPTION_KEYS = [new_key, old_key]
        out = StringIO()
        call_command("rotate_card_secrets", stdout=out)

        assert "Re-encrypted 2 header values." in out.getvalue()
        after = raw_header_values()
        assert all(a != b for a, b in zip(before, after, strict=True))
        settings.CARDS_ENCRYPTION_KEYS = [new_key]  # the old key can now be dropped
        assert [h.value for h in CardConfigHeader.objects.order_by("id")] == [SECRET, "support"]

    def test_rotation_stops_untouched_when_a_value_cannot_be_decrypted(self, settings):
        settings.CARDS_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
        CardConfigHeaderFactory(value=SECRET)
        before = raw_header_values()

        settings.CARDS_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
        with pytest.raises(CommandError, match="cannot be decrypted"):
            call_command("rotate_card_secrets", stdout=StringIO())

        assert raw_header_values() == before
