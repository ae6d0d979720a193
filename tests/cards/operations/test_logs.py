"""JSON logs (issue 16): LOG_FORMAT=json makes every line one JSON object; a load's line
carries the customer, each card's config key and outcome, and the duration."""

import json
import logging
import os
import subprocess
import sys
import time

import pytest
from django.conf import settings
from pythonjsonlogger.json import JsonFormatter

from cards.background.jobs import load_job_run
from tests.cards.cardapi import card
from tests.factories import CardConfigFactory, CustomerFactory


def json_formatter() -> JsonFormatter:
    """The formatter LOG_FORMAT=json configures, built from LOGGING as dictConfig does."""
    config = dict(settings.LOGGING["formatters"]["json"])
    factory = config.pop("()")
    assert factory == "pythonjsonlogger.json.JsonFormatter"
    return JsonFormatter(**config)


@pytest.mark.django_db(transaction=True)  # the answer is stored on the store pool's thread
def test_a_loads_line_is_one_json_object_with_customer_keys_outcome_and_duration(card_api, caplog):
    customer = CustomerFactory()
    plan = CardConfigFactory(key="plan", api_url=card_api.url)
    orders = CardConfigFactory(key="orders", api_url=card_api.url)
    card_api.serve({"plan": card("plan")})
    caplog.set_level(logging.INFO, logger="cards.tasks")

    load_job_run(customer_id=customer.pk, config_ids=[plan.pk, orders.pk])

    # The job hands its fetch to the fetch pool; the line is logged once the cards are stored.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        lines = [r for r in caplog.records if r.getMessage().startswith("cards_load ")]
        if lines:
            break
        time.sleep(0.05)
    (record,) = lines
    line = json_formatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["event"] == "cards_load" and entry["level"] == "INFO"
    assert entry["logger"] == "cards.tasks" and entry["customer"] == customer.pk
    assert entry["outcome"] == "error" and entry["requests"] == 1
    assert entry["cards"] == [
        {"key": "plan", "outcome": "loaded", "error_kind": None},
        {"key": "orders", "outcome": "error", "error_kind": "MISSING_CARD"},
    ]
    assert isinstance(entry["duration_ms"], int) and entry["message"].startswith("cards_load")


def test_log_format_json_switches_the_whole_process_to_json_lines():
    code = (
        "import django, logging; django.setup(); "
        "logging.getLogger('cards.tasks').warning('hello %s', 'there', extra={'customer': 7})"
    )
    env = {**os.environ, "LOG_FORMAT": "json", "DJANGO_SETTINGS_MODULE": "config.settings.base"}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )

    (line,) = result.stderr.strip().splitlines()
    entry = json.loads(line)
    assert (entry["message"], entry["customer"], entry["level"]) == ("hello there", 7, "WARNING")


def test_an_unknown_log_format_is_refused_at_start():
    env = {**os.environ, "LOG_FORMAT": "xml", "DJANGO_SETTINGS_MODULE": "config.settings.base"}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode != 0 and "LOG_FORMAT must be plain or json" in result.stderr
