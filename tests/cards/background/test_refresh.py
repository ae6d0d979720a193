"""What the dispatchers pick, and the pacing of keep-warm (cards.background.refresh; SPEC §6, §7).

These run inside a test transaction, so the jobs a dispatcher returns are never sent
(on_commit): the selection alone is under test. The loads they start are tested with
real workers in test_workers.py.
"""

import time
import uuid
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from cards.background.refresh import (
    PACE_MAX_DEFERRALS,
    PACE_MAX_WAIT_SECONDS,
    cards_keep_warm,
    cards_load_paced,
    cards_recover_claims,
    cards_refresh_ahead,
    pace_interval,
    pace_next_slot,
)
from cards.loading.services import card_configs_enabled
from cards.models import CardConfig, CardInstance
from cards.protocol.batching import batches_for
from tests.factories import CardConfigFactory, CardInstanceFactory, CustomerFactory

State = CardInstance.State
pytestmark = pytest.mark.django_db


def unique_api() -> str:
    """An endpoint of its own: pacing state is per endpoint and outlives a test."""
    return f"https://{uuid.uuid4().hex[:12]}.example.com/cards"


def instance(customer, config, *, expires_in: timedelta | None, **fields) -> CardInstance:
    now = timezone.now()
    return CardInstanceFactory(
        customer=customer,
        config=config,
        state=fields.pop("state", State.LOADED),
        components=[],
        loaded_at=now - timedelta(minutes=5),
        expires_at=None if expires_in is None else now + expires_in,
        **fields,
    )


def viewed(ago: timedelta | None):
    return CustomerFactory(last_viewed_at=None if ago is None else timezone.now() - ago)


def pairs(fan_out) -> set[tuple[int, int]]:
    return {(job.customer_id, config_id) for job in fan_out.jobs for config_id in job.config_ids}


SOON = timedelta(seconds=30)
LATER = timedelta(minutes=10)
MINUTE = timedelta(minutes=1)


def test_refresh_ahead_picks_watched_customers_cards_that_expire_within_a_minute(settings):
    settings.CARDS_CLAIM_DEAD_AFTER_SECONDS = 40
    plan = CardConfigFactory(key="plan")
    disabled = CardConfigFactory(key="off", is_enabled=False)
    now = timezone.now()
    watched = viewed(MINUTE)
    due = instance(watched, plan, expires_in=SOON)
    expired = instance(viewed(MINUTE), plan, expires_in=-SOON)
    dead_claim = instance(
        viewed(MINUTE),
        plan,
        expires_in=-SOON,
        claimed_at=now - timedelta(seconds=41),
        claim_token="died",
    )
    not_due = [
        instance(watched, disabled, expires_in=SOON),
        instance(viewed(MINUTE), plan, expires_in=LATER),
        instance(viewed(timedelta(minutes=11)), plan, expires_in=SOON),
        instance(viewed(None), plan, expires_in=SOON),
        instance(viewed(MINUTE), plan, expires_in=-SOON, claimed_at=now, claim_token="live"),
    ]

    fan_out = cards_refresh_ahead()

    assert pairs(fan_out) == {
        (due.customer_id, plan.pk),
        (expired.customer_id, plan.pk),
        (dead_claim.customer_id, plan.pk),
    }
    assert fan_out.cards == 3
    assert not {(i.customer_id, i.config_id) for i in not_due} & pairs(fan_out)


def test_refresh_ahead_selects_with_one_query(django_assert_num_queries):
    plan, orders = CardConfigFactory(key="plan"), CardConfigFactory(key="orders")
    for _ in range(3):
        customer = viewed(MINUTE)
        instance(customer, plan, expires_in=SOON)
        instance(customer, orders, expires_in=SOON)

    with django_assert_num_queries(1):
        fan_out = cards_refresh_ahead()

    assert fan_out.cards == 6


def test_refresh_ahead_sends_one_job_per_customer_carrying_the_horizon():
    plan, orders = CardConfigFactory(key="plan"), CardConfigFactory(key="orders")
    customer = viewed(MINUTE)
    instance(customer, plan, expires_in=SOON)
    instance(customer, orders, expires_in=SOON)
    now = timezone.now()

    fan_out = cards_refresh_ahead(now=now)

    [job] = fan_out.jobs
    assert job.customer_id == customer.pk
    assert job.config_ids == tuple(sorted([plan.pk, orders.pk]))
    assert datetime.fromisoformat(job.stale_before) == now + timedelta(seconds=60)
    assert not job.paced and job.countdown == 0


def test_refresh_ahead_takes_a_bounded_batch_most_recently_viewed_customers_first():
    plan = CardConfigFactory(key="plan")
    by_view = [
        instance(viewed(timedelta(seconds=seconds)), plan, expires_in=SOON)
        for seconds in (50, 10, 30)
    ]

    fan_out = cards_refresh_ahead(limit=2)

    assert [job.customer_id for job in fan_out.jobs] == [
        by_view[1].customer_id,
        by_view[2].customer_id,
    ]


def test_recovery_picks_only_dead_claims_of_watched_customers(settings):
    settings.CARDS_CLAIM_DEAD_AFTER_SECONDS = 40
    plan = CardConfigFactory(key="plan")
    now = timezone.now()
    long_ago = now - timedelta(seconds=41)
    dead = instance(
        viewed(MINUTE),
        plan,
        expires_in=None,
        state=State.LOADING,
        claimed_at=long_ago,
        claim_token="d",
    )
    live = instance(
        viewed(MINUTE), plan, expires_in=None, state=State.LOADING, claimed_at=now, claim_token="l"
    )
    unwatched = instance(
        viewed(timedelta(hours=1)),
        plan,
        expires_in=None,
        state=State.LOADING,
        claimed_at=long_ago,
        claim_token="u",
    )
    expired = instance(viewed(MINUTE), plan, expires_in=-SOON)
    # Never loaded and nobody's any more (its claim was released): nothing else loads it.
    orphan = instance(viewed(MINUTE), plan, expires_in=None, state=State.LOADING)

    fan_out = cards_recover_claims()

    assert pairs(fan_out) == {(dead.customer_id, plan.pk), (orphan.customer_id, plan.pk)}
    picked = {job.customer_id for job in fan_out.jobs}
    assert not picked & {i.customer_id for i in (live, unwatched, expired)}
    assert all(job.stale_before is None for job in fan_out.jobs)


def test_keep_warm_spreads_an_endpoints_loads_at_its_ceiling_expiring_first_then_cold():
    url = unique_api()
    usage = CardConfigFactory(key="usage", api_url=url, keep_warm=True, max_requests_per_second=2)
    CardConfigFactory(key="plan", api_url=url)  # not kept warm
    cold = CustomerFactory()
    expiring_later = CustomerFactory()
    instance(expiring_later, usage, expires_in=timedelta(seconds=80))
    expiring_first = CustomerFactory()
    instance(expiring_first, usage, expires_in=timedelta(seconds=5))
    instance(CustomerFactory(), usage, expires_in=timedelta(hours=1))  # stays fresh
    now = timezone.now()

    fan_out = cards_keep_warm(period_seconds=30, now=now)

    assert [job.customer_id for job in fan_out.jobs] == [
        expiring_first.pk,
        expiring_later.pk,
        cold.pk,
    ]
    interval = 1.15 / 2
    assert [job.countdown for job in fan_out.jobs] == pytest.approx(
        [0, interval, 2 * interval], abs=0.01
    )
    assert all(job.paced and job.config_ids == (usage.pk,) for job in fan_out.jobs)
    horizon = now + timedelta(seconds=30 + 60)
    assert {datetime.fromisoformat(job.stale_before) for job in fan_out.jobs} == {horizon}


def test_keep_warm_enqueues_no_more_per_run_than_the_ceiling_allows_in_its_period():
    usage = CardConfigFactory(
        key="usage", api_url=unique_api(), keep_warm=True, max_requests_per_second=1
    )
    for _ in range(5):
        CustomerFactory()

    fan_out = cards_keep_warm(period_seconds=3)

    assert len(fan_out.jobs) == 2  # 3 s at one request per 1.15 s
    assert fan_out.cards == 2 and {job.config_ids for job in fan_out.jobs} == {(usage.pk,)}


def test_keep_warm_loads_configs_sharing_an_endpoint_in_one_job_at_their_lowest_ceiling():
    url = unique_api()
    usage = CardConfigFactory(key="usage", api_url=url, keep_warm=True, max_requests_per_second=5)
    plan = CardConfigFactory(key="plan", api_url=url, keep_warm=True, max_requests_per_second=2)
    customers = [CustomerFactory() for _ in range(2)]
    instance(customers[0], usage, expires_in=timedelta(hours=1))  # plan still missing

    fan_out = cards_keep_warm(period_seconds=30)

    assert [job.customer_id for job in fan_out.jobs] == [c.pk for c in customers]
    assert {job.config_ids for job in fan_out.jobs} == {tuple(sorted([usage.pk, plan.pk]))}
    assert fan_out.jobs[1].countdown == pytest.approx(1.15 / 2, abs=0.01)


def test_keep_warm_is_bounded_overall_per_run():
    for _ in range(3):
        CardConfigFactory(api_url=unique_api(), keep_warm=True, max_requests_per_second=100)
    for _ in range(4):
        CustomerFactory()

    fan_out = cards_keep_warm(period_seconds=30, limit=5)

    assert len(fan_out.jobs) == 5


def _batch(config: CardConfig):
    [batch] = batches_for(CardConfig.objects.filter(pk=config.pk).prefetch_related("headers"))
    return batch


def _slot_times(batch, *, reserved: int) -> list[float]:
    """The moments (time.monotonic()) of `reserved` slots taken in a row, then of the next
    free one. Each wait is counted from when the pacer answered (a Redis round trip, or a
    connection being opened, comes before that), so a slow machine shifts them alike."""
    slots = []
    for n in range(reserved + 1):
        wait = pace_next_slot(batch, reserve=n < reserved)
        slots.append(time.monotonic() + wait)
    return slots


def _gaps(slots: list[float]) -> list[float]:
    return [later - earlier for earlier, later in zip(slots, slots[1:], strict=False)]


def test_the_memory_pacer_hands_out_slots_spaced_by_the_ceiling(settings):
    settings.REDIS_URL = ""
    batch = _batch(CardConfigFactory(api_url=unique_api(), max_requests_per_second=4))
    interval = pace_interval(batch)

    slots = _slot_times(batch, reserved=3)

    assert interval == pytest.approx(1.15 / 4)
    assert _gaps(slots) == pytest.approx([interval] * 3, abs=0.01)


def test_the_redis_pacer_hands_out_slots_spaced_by_the_ceiling(settings, redis_url):
    settings.REDIS_URL = redis_url
    batch = _batch(CardConfigFactory(api_url=unique_api(), max_requests_per_second=4))
    interval = pace_interval(batch)

    slots = _slot_times(batch, reserved=3)

    assert _gaps(slots) == pytest.approx([interval] * 3, abs=0.01)


def test_a_paced_load_far_from_its_slot_is_put_off_without_claiming(
    settings, django_capture_on_commit_callbacks
):
    settings.REDIS_URL = ""
    config = CardConfigFactory(api_url=unique_api(), keep_warm=True, max_requests_per_second=1)
    customer = CustomerFactory()
    batch = _batch(config)
    while pace_next_slot(batch, reserve=False) <= PACE_MAX_WAIT_SECONDS:
        pace_next_slot(batch, reserve=True)  # a backlog took the next few seconds

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        paced = cards_load_paced(
            customer=customer, configs=card_configs_enabled(), stale_before=None
        )

    assert paced.deferred_for > PACE_MAX_WAIT_SECONDS and not paced.dropped
    assert len(callbacks) == 1  # re-enqueued for its slot
    assert not CardInstance.objects.exists()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        paced = cards_load_paced(
            customer=customer,
            configs=card_configs_enabled(),
            stale_before=None,
            deferrals=PACE_MAX_DEFERRALS,
        )

    assert paced.dropped and callbacks == []
