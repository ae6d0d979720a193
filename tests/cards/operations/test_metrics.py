"""/metrics (issue 16): protected by a setting, scraped and parsed with prometheus_client's
text parser; real loads against a real card API on loopback, the real database, and (in
the services pass) a real Redis queue."""

import json
from datetime import timedelta

import pytest
import redis
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families
from werkzeug import Response

from cards.background.dispatch import LoadJob, dispatch_jobs
from cards.loading.services import cards_load
from cards.models import CardInstance
from tests.cards.cardapi import card
from tests.cards.cardpages import page
from tests.factories import CardConfigFactory, CardInstanceFactory, CustomerFactory

pytestmark = pytest.mark.django_db

TOKEN = "scrape-token-0123456789"


def scrape(**extra) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics, keyed by (name, sorted labels)."""
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture(autouse=True)
def metrics_settings(settings):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_IPS = []
    settings.REDIS_URL = ""


class TestAccess:
    def test_nobody_reads_it_without_the_token_or_an_allowed_address(self):
        response = Client().get("/metrics")

        assert response.status_code == 403
        assert "METRICS_TOKEN" in response.content.decode()

    def test_a_wrong_token_is_refused(self):
        assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer nope").status_code == 403

    def test_an_allowed_network_reads_it_without_a_token(self, settings):
        settings.METRICS_TOKEN = ""
        settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8"]

        allowed = Client(REMOTE_ADDR="10.20.30.40").get("/metrics")
        refused = Client(REMOTE_ADDR="192.0.2.1").get("/metrics")

        assert allowed.status_code == 200 and refused.status_code == 403


class TestLoads:
    def test_loads_are_counted_by_config_outcome_and_error_kind(self, card_api):
        plan = CardConfigFactory(key="plan", api_url=card_api.url)
        CardConfigFactory(key="orders", api_url=card_api.url)
        card_api.serve({"plan": card("plan")})  # "orders" missing from the answer
        before = scrape()

        cards_load(customer=CustomerFactory())
        after = scrape()

        loaded = {"config": "plan", "outcome": "loaded", "error_kind": "none"}
        missing = {"config": "orders", "outcome": "error", "error_kind": "MISSING_CARD"}
        for labels in (loaded, missing):
            grew = value(after, "cards_loads_total", **labels)
            assert grew - value(before, "cards_loads_total", **labels) == 1
        count = "cards_upstream_request_duration_seconds_count"
        assert value(after, count, config=plan.key) - value(before, count, config=plan.key) == 1
        inf = value(
            after, "cards_upstream_request_duration_seconds_bucket", config="plan", le="+Inf"
        )
        assert inf >= 1

    def test_a_refusal_is_counted_as_its_status_error(self, card_api):
        CardConfigFactory(key="plan", api_url=card_api.url)
        card_api.serve_handler(lambda request, body: Response("no", status=401))
        labels = {"config": "plan", "outcome": "error", "error_kind": "STATUS_CODE"}
        before = value(scrape(), "cards_loads_total", **labels)

        cards_load(customer=CustomerFactory())

        assert value(scrape(), "cards_loads_total", **labels) - before == 1

    def test_pages_count_cards_served_from_cache_and_sent_to_load(self, agent_client, card_api):
        customer = CustomerFactory()
        cached = CardConfigFactory(key="plan", api_url=card_api.url)
        CardConfigFactory(key="orders", api_url=card_api.url)
        CardInstanceFactory(
            customer=customer,
            config=cached,
            state=CardInstance.State.LOADED,
            components=[],
            loaded_at=timezone.now(),
            expires_at=timezone.now() + timedelta(hours=1),
        )
        card_api.serve_handler(
            lambda request, body: Response(json.dumps({"cards": []}), status=200)
        )
        before = scrape()

        page(agent_client, customer)
        after = scrape()

        for source in ("cache", "load"):
            grew = value(after, "cards_served_total", source=source)
            assert grew - value(before, "cards_served_total", source=source) == 1

    def test_pending_loads_are_read_from_the_database_at_scrape_time(self, settings):
        dead = timezone.now() - timedelta(seconds=settings.CARDS_CLAIM_DEAD_AFTER_SECONDS + 5)
        CardInstanceFactory(claimed=True)
        CardInstanceFactory(claimed=True)
        CardInstanceFactory(claimed=True, claimed_at=dead)

        samples = scrape()

        assert value(samples, "cards_pending_loads", claim="live") == 2
        assert value(samples, "cards_pending_loads", claim="dead") == 1
        assert ("cards_queue_depth", (("queue", "celery"),)) not in samples  # no broker


@pytest.mark.redis
def test_queue_depth_counts_the_loads_waiting_in_the_broker(
    settings, redis_url, django_capture_on_commit_callbacks
):
    settings.REDIS_URL = redis_url
    prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "")
    client = redis.Redis.from_url(redis_url)
    client.delete(f"{prefix}celery")
    customer = CustomerFactory()
    try:
        with django_capture_on_commit_callbacks(execute=True):
            dispatch_jobs(jobs=[LoadJob(customer_id=customer.pk, config_ids=(1,))] * 3)

        samples = scrape()
    finally:
        client.delete(f"{prefix}celery")

    assert value(samples, "cards_queue_depth", queue="celery") == 3


def test_multiprocess_mode_sums_every_process_of_the_machine(tmp_path):
    """gunicorn workers and Celery workers sharing PROMETHEUS_MULTIPROC_DIR: one scrape of
    any of them reports the loads of all (each process below records one)."""
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
    }
    setup = "import django; django.setup(); "
    record = setup + (
        "from cards.loading.metrics import CARD_LOADS; "
        "CARD_LOADS.labels(config='plan', outcome='loaded', error_kind='none').inc()"
    )
    subprocess.run([sys.executable, "-c", record], env=env, check=True, timeout=120)
    # Another process records one more, then answers a scrape (exposition's own function).
    show = record + (
        "; from cards.operations.exposition import metrics_text; print(metrics_text().decode())"
    )
    text = subprocess.run(
        [sys.executable, "-c", show], env=env, check=True, timeout=120, capture_output=True
    ).stdout.decode()

    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    labels = {"config": "plan", "outcome": "loaded", "error_kind": "none"}
    assert value(samples, "cards_loads_total", **labels) == 2
