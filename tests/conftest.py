"""Shared fixtures: personas (agent, admin, anonymous), service gates, card API servers."""

import os
import shutil

import pytest
from django.conf import settings

from tests.factories import UserFactory, agent_user
from tests.workers import Workers, clear_test_broker

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"
REQUIRE_BROWSER = os.environ.get("REQUIRE_BROWSER") == "1"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


def _skip_or_fail(reason: str, required: bool) -> None:
    if required:
        pytest.fail(f"{reason} (required here: the variable that requires it is set)")
    pytest.skip(reason)


@pytest.fixture
def redis_url() -> str:
    """The Redis to test against; skips (or fails under REQUIRE_SERVICES=1) without one."""
    import redis

    url = settings.REDIS_TEST_URL
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        _skip_or_fail(f"Redis is not reachable at {url}: {exc}", REQUIRE_SERVICES)
    return url


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's Chromium for Playwright; skips (or fails under REQUIRE_BROWSER=1) without it."""
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        _skip_or_fail(f"Chromium is not installed at {CHROMIUM}", REQUIRE_BROWSER)
    return CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")


@pytest.fixture(autouse=True)
def _agent_checks_forgotten():
    """Each test starts with no remembered agent check (cards.live.access): user ids come
    back after a rollback, and one test's agent must not be another's."""
    from cards.live.access import agent_checks_forget

    agent_checks_forget()


@pytest.fixture
def agent(db):
    """A non-staff user in the "Agents" group (the agent permission)."""
    return agent_user("agent")


@pytest.fixture
def agent_client(client, agent):
    client.force_login(agent)
    return client


@pytest.fixture
def staff_admin(db):
    return UserFactory(username="admin", is_staff=True, is_superuser=True)


@pytest.fixture
def admin_client_logged_in(client, staff_admin):
    client.force_login(staff_admin)
    return client


@pytest.fixture
def card_api(httpserver):
    """A real card API on loopback; see tests/cards/cardapi.py."""
    from tests.cards.cardapi import CardApi

    return CardApi(httpserver)


@pytest.fixture(scope="session")
def make_httpserver():
    """pytest-httpserver's server, threaded (batches arrive concurrently), on 127.0.0.1."""
    from pytest_httpserver import HTTPServer

    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


@pytest.fixture
def connects():
    """Every (host, port) the test connects to; a connection off loopback is blocked.

    Modules that talk HTTP use it for every test (`pytestmark`); see tests/cards/netaudit.py.
    """
    from tests.cards.netaudit import connects_recorded

    yield from connects_recorded()


@pytest.fixture(scope="session", autouse=True)
def _bell_listener_stopped(django_db_setup):
    """The store bell's PostgreSQL listener holds a connection to the test database: it
    is closed before the database is dropped (this fixture ends before django_db_setup)."""
    yield
    from cards.loading.bell import stop_listening

    stop_listening()


@pytest.fixture(scope="module")
def module_workers(tmp_path_factory):
    """Celery workers a module's tests share (tests/workers.py), stopped after the module."""
    workers = Workers(log_dir=tmp_path_factory.mktemp("workers"))
    yield workers
    workers.stop()
    if workers.redis_url:
        clear_test_broker(workers.redis_url)
