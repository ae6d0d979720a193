"""/metrics: Prometheus's text format, for a scraper allowed by a setting (docs/operations.md).

What is exposed:

- the load counters and latency histograms (`cards.loading.metrics`), summed over this
  machine's processes when PROMETHEUS_MULTIPROC_DIR is set (prometheus_client's
  multiprocess mode), else this process's own;
- gauges read at scrape time from what every process shares: pending loads (cards under
  a live claim, and under a dead one) from the database; with a broker, the queue's
  depth and the age of beat's last run from Redis.

Who may read it: a request with `Authorization: Bearer <METRICS_TOKEN>`, or one from an
address in METRICS_ALLOWED_IPS. Neither set: nobody (403, saying which settings open it).
"""

import hmac
import ipaddress
import logging
import os
import time
from collections.abc import Iterator
from datetime import timedelta

import redis
from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count, Q
from django.http import HttpRequest
from django.utils import timezone
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from cards.background.heartbeat import beat_last_run
from cards.models import CardInstance
from cards.operations.probes import broker_client

logger = logging.getLogger(__name__)

# kombu's Redis transport keeps one list per queue and priority step (0, 3, 6, 9): the
# default queue's messages are in "celery" and, with priorities, "celery\x06\x16<n>".
QUEUE = "celery"
PRIORITY_SEPARATOR = "\x06\x16"
PRIORITY_STEPS = (3, 6, 9)


def metrics_allowed(request: HttpRequest) -> bool:
    """Whether this request may read /metrics (METRICS_TOKEN or METRICS_ALLOWED_IPS)."""
    token = settings.METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "")
        if hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return True
    return _address_allowed(request.META.get("REMOTE_ADDR", ""))


def _address_allowed(address: str) -> bool:
    try:
        client = ipaddress.ip_address(address)
    except ValueError:
        return False
    for allowed in settings.METRICS_ALLOWED_IPS:
        try:
            if client in ipaddress.ip_network(allowed.strip(), strict=False):
                return True
        except ValueError:
            logger.warning("METRICS_ALLOWED_IPS: %r is not an address or network", allowed)
    return False


class SharedStateCollector(Collector):
    """Gauges read at scrape time from the database and Redis, shared by every process."""

    def collect(self) -> Iterator[Metric]:
        yield from self._pending_loads()
        if settings.REDIS_URL:
            yield from self._broker()

    def _pending_loads(self) -> Iterator[Metric]:
        dead_before = timezone.now() - timedelta(seconds=settings.CARDS_CLAIM_DEAD_AFTER_SECONDS)
        try:
            counts = CardInstance.objects.filter(state=CardInstance.State.LOADING).aggregate(
                live=Count("pk", filter=Q(claimed_at__gte=dead_before)),
                total=Count("pk"),
            )
        except DatabaseError:
            logger.warning("metrics: could not count pending loads", exc_info=True)
            return
        pending = GaugeMetricFamily(
            "cards_pending_loads",
            "Cards in the loading state: claim live (being loaded) or dead (its loader "
            "died or its task was lost; the next view, refresh-ahead or recovery reloads it).",
            labels=["claim"],
        )
        pending.add_metric(["live"], counts["live"])
        pending.add_metric(["dead"], counts["total"] - counts["live"])
        yield pending

    def _broker(self) -> Iterator[Metric]:
        client = broker_client(settings.REDIS_URL)
        prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "")
        names = [QUEUE, *(f"{QUEUE}{PRIORITY_SEPARATOR}{step}" for step in PRIORITY_STEPS)]
        try:
            pipe = client.pipeline(transaction=False)
            for name in names:
                pipe.llen(f"{prefix}{name}")
            depth = sum(pipe.execute())
            last_run = beat_last_run()
        except redis.RedisError:
            logger.warning("metrics: could not read the broker", exc_info=True)
            return
        queue = GaugeMetricFamily(
            "cards_queue_depth",
            "Celery messages waiting in the broker (loads not yet taken by a worker).",
            labels=["queue"],
        )
        queue.add_metric([QUEUE], depth)
        yield queue
        if last_run is not None:
            yield GaugeMetricFamily(
                "cards_beat_last_run_age_seconds",
                "Seconds since a worker last ran a beat task (cards.background.heartbeat).",
                value=max(0.0, time.time() - last_run),
            )


_shared_state = CollectorRegistry(auto_describe=False)
_shared_state.register(SharedStateCollector())


def metrics_text() -> bytes:
    """The whole exposition: the counters (every process of this machine in multiprocess
    mode), then the gauges read now."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return generate_latest(registry) + generate_latest(_shared_state)
