"""Bad command inputs end in one clear line and exit status 1, never a traceback
(issue 13, point 6). Run as real processes: what an operator sees."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cards.models import CardConfig
from customers.models import Customer

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]


def manage(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def call(*args: str) -> tuple[int, str]:
    """The command in this process (same test database), as `manage.py` would run it."""
    from io import StringIO

    from django.core.management import call_command
    from django.core.management.base import CommandError

    out = StringIO()
    try:
        call_command(*args, stdout=out, stderr=out)
    except CommandError as exc:
        return 1, str(exc)
    except SystemExit as exc:
        return exc.code, out.getvalue()
    return 0, out.getvalue()


def config_item(**extra) -> dict:
    return {"title": "Plan", "key": "plan", "apiUrl": "https://api.example.com/cards", **extra}


@pytest.mark.parametrize(
    "text, message",
    [
        ('[{"title": "Plan", "key": "plan", "order": ' + "9" * 5000 + "}]", "digits"),
        ("[" * 100_000 + "]" * 100_000, "nests more than 32 levels deep"),
        (
            '[{"title": "Plan", "key": "plan", "key": "other", "apiUrl": "https://a.example"}]',
            'duplicate key "key" in one object',
        ),
        (json.dumps([config_item(title="Pl\u0000an")]), "[0].title holds a NUL character"),
    ],
    ids=["5000-digit integer", "100000-deep JSON", "duplicate key", "NUL"],
)
def test_import_card_configs_refuses_with_one_clear_line(tmp_path, text, message):
    path = tmp_path / "configs.json"
    path.write_text(text)

    status, output = call("import_card_configs", str(path))

    assert status == 1
    assert message in output and "\n" not in output.strip()
    assert not CardConfig.objects.exists()


def test_import_card_configs_still_imports_a_good_file(tmp_path):
    path = tmp_path / "configs.json"
    path.write_text(json.dumps([config_item()]))

    assert call("import_card_configs", str(path))[0] == 0
    assert CardConfig.objects.get().key == "plan"


def test_the_real_process_prints_no_traceback(tmp_path):
    path = tmp_path / "configs.json"
    path.write_text("[" * 100_000 + "]" * 100_000)

    result = manage("import_card_configs", str(path))

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr


def test_check_card_api_refuses_a_host_label_over_63_characters():
    status, output = call(
        "check_card_api", "--url", f"https://{'a' * 64}.example.com/cards", "--key", "plan"
    )

    assert status == 1
    assert output == (
        "--url: not a valid URL: the host name part aaaaaaaaaaaaaaaaaaaa… is 64 characters "
        "long; the limit is 63"
    )


def test_import_customers_refuses_a_nul_in_a_field(tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text("email,fullName\nalex@example.com,Al\x00ex\n")

    status, output = call("import_customers", str(path))

    assert status == 1
    assert "fullName: holds a NUL character" in output
    assert not Customer.objects.exists()
