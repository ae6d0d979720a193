"""Settings come from the environment; production refuses to start without a secret key."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_production_refuses_a_secret_key_under_50_characters():
    result = run_check(
        "config.settings.production",
        DJANGO_SECRET_KEY="x7#Kp2-short-but-random-looking-key-49-chars-long"[:49],
        DJANGO_ALLOWED_HOSTS="cards.example.com",
    )

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is too weak for production (49 characters" in result.stderr


def test_production_refuses_a_long_key_of_few_characters():
    result = run_check(
        "config.settings.production",
        DJANGO_SECRET_KEY="ab" * 40,
        DJANGO_ALLOWED_HOSTS="cards.example.com",
    )

    assert result.returncode != 0
    assert "2 different" in result.stderr


def test_a_malformed_boolean_fails_loudly():
    result = run_check("config.settings.base", DJANGO_DEBUG="maybe")

    assert result.returncode != 0


def run_python(code: str) -> subprocess.CompletedProcess:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL"))
    }
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_wsgi_entry_point_runs_production_settings_unless_told():
    result = run_python("import config.wsgi")

    # Production's own refusal: proof that production settings were loaded, not DEBUG ones.
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set in production" in result.stderr


def test_workers_and_beat_run_production_settings_unless_told():
    result = run_python(
        "import os; import config.celery; print(os.environ['DJANGO_SETTINGS_MODULE'])"
    )

    assert result.stdout.strip() == "config.settings.production", result.stderr


def test_manage_py_runs_local_settings_with_debug_on_unless_told():
    result = run_python(
        "import sys; sys.argv = ['manage.py', 'diffsettings']; import manage; manage.main()"
    )

    assert result.returncode == 0, result.stderr
    assert "DEBUG = True" in result.stdout
    assert "SETTINGS_MODULE = 'config.settings.local'" in result.stdout


def test_make_services_without_redis_says_what_is_missing_and_starts_nothing():
    if (ROOT / ".env").exists() and "REDIS_URL=" in (ROOT / ".env").read_text():
        pytest.skip(".env sets REDIS_URL: make services would start")
    environment = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}

    result = subprocess.run(
        ["make", "services"], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )

    assert result.returncode != 0
    assert "REDIS_URL is not set" in result.stderr
    assert "REDIS_URL=redis://127.0.0.1:6379/0 make services" in result.stderr
    assert "migrate" not in result.stdout


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
