"""docs/operations.md matches the behaviour (issue 16): every metric its alerts and table
name is one /metrics really exposes; every setting it names exists; the agent's worst-case
wait it states is what the settings add up to."""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from cards.live.waiting import RETRY_AFTER_SECONDS
from cards.models import CardInstance
from tests.factories import CardInstanceFactory

DOC = Path(__file__).resolve().parents[3] / "docs" / "operations.md"
PROTOCOL = DOC.parent / "protocol.md"


@pytest.mark.django_db
def test_every_metric_the_doc_names_is_exposed(settings, redis_url):
    settings.METRICS_TOKEN = "t"
    settings.REDIS_URL = redis_url
    from cards.background.heartbeat import beat_run_record

    beat_run_record(task="cards_purge")
    CardInstanceFactory(claimed=True)
    from cards.loading.metrics import CARD_LOADS, CARDS_SERVED, UPSTREAM_LATENCY

    # Every labelled family gets a sample, as after the first load and page.
    CARD_LOADS.labels(config="doc", outcome="loaded", error_kind="none").inc(0)
    UPSTREAM_LATENCY.labels(config="doc")
    CARDS_SERVED.labels(source="cache").inc(0)
    text = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer t").content.decode()
    exposed = {s.name for f in text_string_to_metric_families(text) for s in f.samples}

    named = set(re.findall(r"\b(cards_[a-z_]+)\b", DOC.read_text()))
    named -= {"cards_load", "cards_refresh_ahead"}  # log lines, not metrics
    assert named, "the doc names no metric"
    for name in sorted(named):
        assert any(s == name or s.startswith(name + "_") for s in exposed), name


def test_every_setting_the_doc_names_exists():
    names = set(re.findall(r"\b([A-Z][A-Z0-9]+(?:_[A-Z0-9]+)+)\b", DOC.read_text()))
    environment_only = {"PROMETHEUS_MULTIPROC_DIR", "REMOTE_ADDR", "LOG_LEVEL"}
    error_kinds = set(CardInstance.ErrorKind.values)
    for name in sorted(names - environment_only - error_kinds):
        assert hasattr(settings, name), name


def test_the_worst_case_wait_is_what_the_settings_add_up_to():
    worst = 2 * settings.CARDS_REQUEST_TIMEOUT_SECONDS + settings.CARDS_RETRY_DELAY_SECONDS
    assert worst < settings.CARDS_CLAIM_DEAD_AFTER_SECONDS
    for doc in (DOC, PROTOCOL):
        assert "31 s" in doc.read_text()
    assert f"{RETRY_AFTER_SECONDS} s after" in PROTOCOL.read_text()
    assert "CARDS_PAGE_RECHECK_SECONDS` (60 s)" in DOC.read_text()


def test_the_defaults_behind_the_documented_figures():
    """The doc's figures are the defaults' (the test settings shorten the deadline)."""
    from config.settings import base

    assert 2 * base.CARDS_REQUEST_TIMEOUT_SECONDS + base.CARDS_RETRY_DELAY_SECONDS == 31
    assert base.CARDS_REQUEST_TIMEOUT_SECONDS == 15.0
    assert base.CARDS_RETRY_DELAY_SECONDS == 1.0
    assert base.CARDS_PAGE_RECHECK_SECONDS == 60
    assert base.CARDS_ERROR_TTL_SECONDS == 300
