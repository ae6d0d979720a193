"""The Celery app, its tasks and dispatch, without worker processes (issue 5).

The behaviour with real workers is in test_workers.py; here: configuration, the task
shells, and what dispatch puts on the broker or the in-process pool.
"""

import base64
import json
import logging
import time
from datetime import timedelta

import pytest
import redis
from django.utils import timezone

from cards.background import schedules
from cards.background.dispatch import LoadJob, dispatch_jobs, dispatch_loads
from cards.loading.bulkheads import wait_idle
from cards.models import CardInstance
from cards.tasks import (
    cards_keep_warm_task,
    cards_load_task,
    cards_purge_task,
    cards_recover_claims_task,
    cards_refresh_ahead_task,
)
from config.celery import app
from tests.cards.cardapi import TEXT, card
from tests.factories import CardConfigFactory, CardInstanceFactory, CustomerFactory
from tests.workers import broker_prefix, clear_test_broker

State = CardInstance.State


def test_every_schedule_runs_a_registered_task_and_expires_within_its_period():
    assert set(app.conf.beat_schedule) == {
        "cards-refresh-ahead",
        "cards-keep-warm",
        "cards-recover-claims",
        "cards-purge",
    }
    for entry in app.conf.beat_schedule.values():
        assert entry["task"] in app.tasks
        assert entry["options"]["expires"] == entry["schedule"]
    assert app.conf.beat_schedule["cards-refresh-ahead"]["schedule"] == 15
    assert app.conf.beat_schedule["cards-recover-claims"]["schedule"] == 60
    assert app.conf.beat_schedule["cards-purge"]["schedule"] == 3600


def test_the_app_speaks_json_only_and_sets_nothing_the_threads_pool_ignores():
    assert app.conf.task_serializer == "json"
    assert app.conf.accept_content == ["json"]
    # Prefork-only or ack-emulation-only settings would only pretend (issue 17).
    assert not app.conf.task_acks_late and not app.conf.task_reject_on_worker_lost
    assert app.conf.task_soft_time_limit is None and app.conf.task_time_limit is None


def test_tasks_are_named_after_the_services_they_call():
    assert {
        task.name
        for task in (
            cards_load_task,
            cards_refresh_ahead_task,
            cards_keep_warm_task,
            cards_recover_claims_task,
            cards_purge_task,
        )
    } == {
        "cards.cards_load",
        "cards.cards_refresh_ahead",
        "cards.cards_keep_warm",
        "cards.cards_recover_claims",
        "cards.cards_purge",
    }


@pytest.mark.django_db(transaction=True)
def test_the_load_task_with_stale_before_reloads_a_card_that_has_not_expired_yet(card_api):
    config = CardConfigFactory(key="plan", api_url=card_api.url)
    customer = CustomerFactory()
    expires_at = timezone.now() + timedelta(seconds=30)
    CardInstanceFactory(
        customer=customer, config=config, state=State.LOADED, components=[], expires_at=expires_at
    )
    card_api.serve({"plan": card("plan")})

    cards_load_task.run(customer.pk, [config.pk])
    assert wait_idle()  # the task hands its fetch to the fetch pool and returns
    assert card_api.requests == []

    horizon = timezone.now() + timedelta(seconds=60)
    cards_load_task.run(customer.pk, [config.pk], stale_before=horizon.isoformat())
    assert wait_idle()

    assert card_api.keys_requested == [["plan"]]
    instance = CardInstance.objects.get(customer=customer, config=config)
    assert instance.components == TEXT and instance.expires_at > expires_at


@pytest.mark.django_db(transaction=True)
def test_the_load_task_logs_one_structured_line_once_its_cards_are_stored(card_api, caplog):
    caplog.set_level(logging.INFO, logger="cards.tasks")
    config = CardConfigFactory(key="plan", api_url=card_api.url)
    customer = CustomerFactory()
    card_api.serve({"plan": card("plan")})

    cards_load_task.run(customer.pk, [config.pk])
    assert wait_idle()

    [line] = [r.getMessage() for r in caplog.records if r.name == "cards.tasks"]
    assert line.startswith(
        f"cards_load customer={customer.pk} keys=plan outcome=plan:loaded requests=1 duration_ms="
    )


@pytest.mark.django_db
def test_the_load_task_of_a_deleted_customer_does_nothing(caplog):
    caplog.set_level(logging.INFO, logger="cards.tasks")

    cards_load_task.run(123456, [1])

    assert "outcome=no-customer" in caplog.text


@pytest.mark.django_db
def test_dispatcher_tasks_log_one_structured_line_each(caplog):
    caplog.set_level(logging.INFO, logger="cards.tasks")

    for task in (
        cards_refresh_ahead_task,
        cards_keep_warm_task,
        cards_recover_claims_task,
        cards_purge_task,
    ):
        task.apply(throw=True)

    lines = [r.getMessage() for r in caplog.records if r.name == "cards.tasks"]
    assert [line.split(" ")[0] for line in lines] == [
        "cards_refresh_ahead",
        "cards_keep_warm",
        "cards_recover_claims",
        "cards_purge",
    ]
    assert lines[0].startswith("cards_refresh_ahead customers=0 cards=0 jobs=0 outcome=enqueued")
    assert lines[3].startswith("cards_purge instances=0 requests=0 outcome=purged")


@pytest.mark.django_db
def test_loads_are_dispatched_only_once_the_transaction_commits(
    card_api, django_capture_on_commit_callbacks
):
    config = CardConfigFactory(key="plan", api_url=card_api.url)
    customer = CustomerFactory()
    card_api.serve({"plan": card("plan")})

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        dispatch_loads(customer_id=customer.pk, config_id_groups=[[config.pk]])

    assert len(callbacks) == 1
    time.sleep(0.2)
    assert card_api.requests == []


@pytest.mark.django_db(transaction=True)
def test_an_embedded_job_with_a_countdown_runs_once_it_has_passed(card_api, settings):
    settings.REDIS_URL = ""
    config = CardConfigFactory(key="plan", api_url=card_api.url)
    customer = CustomerFactory()
    card_api.serve({"plan": card("plan")})

    dispatch_jobs(jobs=[LoadJob(customer_id=customer.pk, config_ids=(config.pk,), countdown=0.6)])
    dispatched = time.monotonic()

    time.sleep(0.4)
    assert card_api.requests == []
    deadline = time.monotonic() + 10
    while not CardInstance.objects.filter(customer=customer, state=State.LOADED).exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert time.monotonic() - dispatched >= 0.6
    assert card_api.keys_requested == [["plan"]]


@pytest.mark.django_db(transaction=True)
def test_dispatch_publishes_json_to_the_redis_the_settings_name(redis_url, settings):
    clear_test_broker(redis_url)
    settings.REDIS_URL = redis_url
    horizon = timezone.now()

    dispatch_loads(customer_id=7, config_id_groups=[[1, 2], [3]], stale_before=horizon)

    client = redis.Redis.from_url(redis_url)
    try:
        queue = f"{broker_prefix()}celery"
        messages = [json.loads(raw) for raw in reversed(client.lrange(queue, 0, -1))]
    finally:
        clear_test_broker(redis_url)
    assert [m["content-type"] for m in messages] == ["application/json"] * 2
    assert [m["headers"]["task"] for m in messages] == ["cards.cards_load"] * 2
    bodies = [json.loads(base64.b64decode(m["body"])) for m in messages]
    assert [body[:2] for body in bodies] == [
        [[7, [1, 2]], {"stale_before": horizon.isoformat()}],
        [[7, [3]], {"stale_before": horizon.isoformat()}],
    ]


def test_schedules_declare_the_periods_the_dispatchers_rely_on():
    assert app.conf.beat_schedule["cards-keep-warm"]["schedule"] == schedules.KEEP_WARM_EVERY
