"""Sessions are Django's: rows of the database (`db`, or `cached_db` over Redis), so a
logout ends them everywhere."""

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.test import Client
from django.urls import reverse
from django.utils import timezone

pytestmark = pytest.mark.django_db


def _same_session(client: Client) -> Client:
    """Another browser tab, or another web process, presenting the same session cookie."""
    other = Client()
    other.cookies[settings.SESSION_COOKIE_NAME] = client.cookies[settings.SESSION_COOKIE_NAME].value
    return other


def test_a_logout_ends_the_session_for_every_holder_of_its_cookie(agent_client):
    directory = reverse("customers:directory")
    other = _same_session(agent_client)
    assert other.get(directory).status_code == 200

    agent_client.post(reverse("logout"))

    assert other.get(directory).status_code == 302
    assert not Session.objects.exists()


def test_an_expired_session_is_not_read(agent_client):
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
    if "sessions" in settings.CACHES:
        # cached_db keeps the session in the cache until the same expiry moment.
        caches[settings.SESSION_CACHE_ALIAS].clear()

    response = agent_client.get(reverse("customers:directory"))

    assert response.status_code == 302


def _settings_with(env: dict[str, str]) -> str:
    """The session engine and session cache that config.settings.base picks under `env`."""
    code = (
        "import config.settings.base as s; "
        "print(s.SESSION_ENGINE, s.CACHES.get('sessions', {}).get('BACKEND'))"
    )
    clean = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
        cwd=settings.BASE_DIR,
    )
    return done.stdout.strip()


def test_sessions_use_djangos_db_engine_without_redis():
    assert _settings_with({}) == "django.contrib.sessions.backends.db None"


def test_sessions_go_through_a_shared_redis_cache_when_redis_is_configured():
    assert _settings_with({"REDIS_URL": "redis://127.0.0.1:6379/9"}) == (
        "django.contrib.sessions.backends.cached_db django.core.cache.backends.redis.RedisCache"
    )
