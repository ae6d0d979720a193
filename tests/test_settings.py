"""Settings come from the environment; production refuses to start without a secret key."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_check(settings_module: str, **env: str) -> subprocess.CompletedProcess:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL"))
    }
    environment |= {"DJANGO_SETTINGS_MODULE": settings_module, **env}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "ERROR"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_refuses_to_start_without_a_secret_key():
    result = run_check("config.settings.production")

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set in production" in result.stderr


def test_production_starts_with_a_secret_key():
    result = run_check(
        "config.settings.production",
        DJANGO_SECRET_KEY="a-long-random-production-key-" + "x" * 40,
        DJANGO_ALLOWED_HOSTS="cards.example.com",
    )

    assert result.returncode == 0, result.stderr


def test_a_malformed_boolean_fails_loudly():
    result = run_check("config.settings.base", DJANGO_DEBUG="maybe")

    assert result.returncode != 0


PRODUCTION_EXAMPLE_POST = """
import django, json, sys
django.setup()
from django.test import Client
body = json.dumps({"cardKeys": ["usage"], "customer": {"id": "c_1", "email": "a@b.example"}})
for query in sys.argv[1:]:
    response = Client().post("/examples/cards/" + query, data=body, content_type="application/json")
    print(query or "-", response.status_code, " ".join(response.content.decode().split()))
"""


def production_example_api(*queries: str, **env: str) -> list[str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL", "CARDS_EXAMPLE"))
    }
    environment |= {
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": "a-long-random-production-key-" + "x" * 40,
        "DJANGO_ALLOWED_HOSTS": "testserver",
        **env,
    }
    result = subprocess.run(
        [sys.executable, "-c", PRODUCTION_EXAMPLE_POST, *queries],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_production_serves_no_example_card_api_unless_enabled():
    [line] = production_example_api("")

    assert line.startswith("- 404")


def test_production_refuses_the_example_apis_test_hooks():
    lines = production_example_api(
        "", "?delay_ms=20000", "?status=500", "?ttl=1", CARDS_EXAMPLE_API_ENABLED="true"
    )

    assert lines[0].startswith("- 200")
    for line in lines[1:]:
        assert " 403 " in line and "test hooks" in line and "CARDS_EXAMPLE_API_HOOKS" in line


def test_production_takes_the_hooks_only_when_a_setting_enables_them():
    [line] = production_example_api(
        "?status=503", CARDS_EXAMPLE_API_ENABLED="true", CARDS_EXAMPLE_API_HOOKS="true"
    )

    assert line.startswith("?status=503 503")
