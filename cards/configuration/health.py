"""Card API health, read from the request log (SPEC §9).

Every attempt at a card API leaves one `CardRequest` row per card it carried, so a config's
health is a plain filter on its own rows. Over the last 24 hours an admin sees how many
requests were made, which share of them failed, the p50/p95 latency, and when the API
last answered the card correctly; the config page also lists the latest errors in full.

Nothing here disables a failing config: the numbers are for people to act on.

Query budget, whatever the number of configs or requests:

- `config_health_annotations` adds correlated subqueries (counts, last success) to the
  changelist's own query, so they cost no query of their own and stay sortable;
- `config_latency` computes p50/p95 for every config on a page in one query.

Percentiles are nearest-rank, computed by the database with the `CUME_DIST()` window
function: the p-th percentile is the smallest duration whose cumulative share of the
window's requests is at least p. Both SQLite (3.25+) and PostgreSQL have it, so one SQL
statement serves both, the sorting stays in the database, and only two numbers per config
come back (fetching every duration into Python would grow with traffic, and PostgreSQL's
`percentile_cont` has no SQLite equivalent). Every attempt counts, failures included: a
timeout is latency an agent waited through.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import (
    Count,
    ExpressionWrapper,
    F,
    FloatField,
    IntegerField,
    OuterRef,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Cast, Coalesce, NullIf
from django.utils import timezone

from cards.models import CardConfig, CardRequest

HEALTH_WINDOW = timedelta(hours=24)
LATEST_ERRORS = 5


def health_since(now: datetime | None = None) -> datetime:
    """The start of the health window ending `now`."""
    return (now or timezone.now()) - HEALTH_WINDOW


def _count(requests: QuerySet[CardRequest]) -> Coalesce:
    counted = requests.order_by().values("config").annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def config_health_annotations(*, since: datetime) -> dict[str, object]:
    """Annotations for a CardConfig queryset: requests_24h, errors_24h, error_rate_24h
    (0..1, None without requests), last_success_at and last_error_at (whole log)."""
    own = CardRequest.objects.filter(config=OuterRef("pk"))
    recent = own.filter(created_at__gte=since)

    def latest(requests: QuerySet[CardRequest]) -> Subquery:
        return Subquery(requests.order_by("-created_at", "-id").values("created_at")[:1])

    return {
        "requests_24h": _count(recent),
        "errors_24h": _count(recent.exclude(error_kind="")),
        "error_rate_24h": ExpressionWrapper(
            Cast(F("errors_24h"), FloatField()) / NullIf(F("requests_24h"), 0),
            output_field=FloatField(),
        ),
        "last_success_at": latest(own.filter(error_kind="")),
        "last_error_at": latest(own.exclude(error_kind="")),
    }


@dataclass(frozen=True)
class Latency:
    """Nearest-rank latency percentiles over the window, in milliseconds."""

    p50_ms: int
    p95_ms: int


def config_latency(*, config_ids: list[int], since: datetime) -> dict[int, Latency]:
    """p50/p95 per config over requests since `since`, in one query; configs without
    requests are absent."""
    if not config_ids:
        return {}
    table = connection.ops.quote_name(CardRequest._meta.db_table)
    placeholders = ", ".join(["%s"] * len(config_ids))
    # Table name from model metadata and one placeholder per id: nothing user-given is
    # formatted into the SQL.
    sql = f"""
        SELECT config_id,
               MIN(CASE WHEN share >= 0.5 THEN duration_ms END),
               MIN(CASE WHEN share >= 0.95 THEN duration_ms END)
        FROM (
            SELECT config_id, duration_ms,
                   CUME_DIST() OVER (PARTITION BY config_id ORDER BY duration_ms) AS share
            FROM {table}
            WHERE config_id IN ({placeholders}) AND created_at >= %s
        ) ranked
        GROUP BY config_id
    """  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [*config_ids, since])
        rows = cursor.fetchall()
    return {config_id: Latency(p50_ms=p50, p95_ms=p95) for config_id, p50, p95 in rows}


@dataclass(frozen=True)
class ConfigHealth:
    """One config's health over the window (see the module docstring)."""

    requests: int
    errors: int
    last_success_at: datetime | None
    last_error_at: datetime | None
    latency: Latency | None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None


def config_health(*, config: CardConfig, now: datetime | None = None) -> ConfigHealth:
    """Health of one config (the change page); a few queries."""
    since = health_since(now)
    row = (
        CardConfig.objects.filter(pk=config.pk)
        .annotate(**config_health_annotations(since=since))
        .values("requests_24h", "errors_24h", "last_success_at", "last_error_at")
        .get()
    )
    return ConfigHealth(
        requests=row["requests_24h"],
        errors=row["errors_24h"],
        last_success_at=row["last_success_at"],
        last_error_at=row["last_error_at"],
        latency=config_latency(config_ids=[config.pk], since=since).get(config.pk),
    )


def config_latest_errors(*, config: CardConfig, limit: int = LATEST_ERRORS) -> list[CardRequest]:
    """The config's most recent failed requests, newest first, with their full detail."""
    return list(
        CardRequest.objects.filter(config=config)
        .exclude(error_kind="")
        .select_related("customer")
        .order_by("-created_at", "-id")[:limit]
    )
