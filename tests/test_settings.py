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
