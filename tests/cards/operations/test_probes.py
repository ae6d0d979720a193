"""/healthz and /readyz (issue 16): JSON, unauthenticated, cheap, never a secret; the real
database, and (services pass) the real Redis as broker and beat's heartbeat."""

import time

import pytest
import redis
from django.test import Client

from cards.background.heartbeat import _key, beat_last_run, beat_run_record

pytestmark = pytest.mark.django_db

PROBE_HOST = "10.1.2.3:8000"  # a load balancer's probe: the machine's address, not a name


def get(path: str, **headers):
    return Client().get(path, HTTP_HOST=PROBE_HOST, **headers)


def test_healthz_answers_without_touching_the_database(django_assert_num_queries):
    with django_assert_num_queries(0):
        response = get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    assert "sessionid" not in response.cookies


def test_readyz_checks_the_real_database(settings):
    settings.REDIS_URL = ""

    response = get("/readyz/")  # a trailing slash is the same probe

    body = response.json()
    assert response.status_code == 200 and body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"] == {"ok": True, "configured": False}
    assert "beat" not in body["checks"]


def test_readyz_is_unavailable_when_the_broker_is_down_and_leaks_no_secret(settings):
    settings.REDIS_URL = "redis://:hunter2-password@127.0.0.1:1/0"

    response = get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["broker"] == {"ok": False, "configured": True, "error": "unreachable"}
    assert "hunter2" not in response.content.decode() and "127.0.0.1" not in str(body)


def test_probes_answer_get_only():
    assert Client().post("/healthz", HTTP_HOST=PROBE_HOST).status_code == 405


@pytest.mark.redis
class TestWithRedis:
    @pytest.fixture(autouse=True)
    def broker(self, settings, redis_url):
        settings.REDIS_URL = redis_url
        client = redis.Redis.from_url(redis_url)
        client.delete(_key())
        yield
        client.delete(_key())

    def test_readyz_pings_the_broker_and_reports_beat_without_requiring_it(self):
        body = get("/readyz").json()

        assert body["checks"]["broker"]["ok"] is True
        assert body["checks"]["beat"] == {"ok": True, "checked": False, "last_run_age_s": None}

    def test_a_beat_task_run_is_recorded_and_read_back(self, settings):
        from cards.tasks import cards_purge_task

        cards_purge_task()  # a beat task, run as a worker would

        assert time.time() - beat_last_run() < 60

    def test_readyz_requires_a_recent_beat_run_when_asked_to(self, settings):
        settings.READYZ_BEAT_MAX_AGE_SECONDS = 120
        assert get("/readyz").status_code == 503  # no run recorded yet

        beat_run_record(task="cards_refresh_ahead", now=time.time() - 600)
        stale = get("/readyz")
        beat_run_record(task="cards_keep_warm")
        fresh = get("/readyz")

        assert stale.status_code == 503 and stale.json()["checks"]["beat"]["ok"] is False
        assert fresh.status_code == 200
        assert fresh.json()["checks"]["beat"]["last_run_age_s"] < 60
