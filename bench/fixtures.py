"""Data for the benchmarks, in the bench's own PostgreSQL database (bench.settings).

Small sets go through the ORM; the large ones (B6's 50,000 instances, B7's million) are
made by PostgreSQL itself with INSERT ... SELECT generate_series, which takes seconds.
"""

from dataclasses import dataclass

import psycopg
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.db import connection
from django.test import Client

from cards.models import CardConfig
from customers.models import Customer

ENDPOINTS = 5
KEYS_PER_ENDPOINT = 5
CONFIG_TTL_SECONDS = 3600
# The tables a row may fill; configs, users and sessions stay for the whole run.
DATA_TABLES = (
    "cards_cardrequest",
    "cards_cardinstance",
    "customers_customer",
    "customers_tenant",
)


def database_create() -> None:
    """Create the bench database when it is missing (CREATE DATABASE needs autocommit)."""
    db = settings.DATABASES["default"]
    params = {
        "host": db.get("HOST") or "127.0.0.1",
        "port": db.get("PORT") or 5432,
        "user": db.get("USER") or "postgres",
        "password": db.get("PASSWORD") or None,
    }
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]])
        if exists.fetchone() is None:
            conn.execute(f'CREATE DATABASE "{db["NAME"]}"')


def database_reset() -> None:
    """Drop every table and migrate from scratch: each run starts from the same schema."""
    with connection.cursor() as cursor:
        cursor.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    call_command("migrate", verbosity=0, interactive=False)


def data_clear() -> None:
    """Empty customers, instances and request logs (configs and sessions stay)."""
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(DATA_TABLES)} RESTART IDENTITY CASCADE")


@dataclass
class Endpoint:
    path: str
    configs: list[CardConfig]


def configs_create(*, api_port: int) -> list[Endpoint]:
    """25 enabled configs over 5 endpoints of the latency API, 5 keys each (B1)."""
    endpoints = []
    for e in range(1, ENDPOINTS + 1):
        path = f"/e{e}/"
        configs = [
            CardConfig.objects.create(
                title=f"Endpoint {e} card {k}",
                key=f"bench-e{e}-k{k}",
                api_url=f"http://127.0.0.1:{api_port}{path}",
                default_ttl_seconds=CONFIG_TTL_SECONDS,
                order=e * 10 + k,
            )
            for k in range(1, KEYS_PER_ENDPOINT + 1)
        ]
        endpoints.append(Endpoint(path=path, configs=configs))
    return endpoints


def agent_user(username: str = "bench-agent"):
    """A plain user (not staff) holding the agent permission, as the "Agents" group gives
    it: what a support agent is."""
    user, _ = get_user_model().objects.get_or_create(username=username)
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="cards", codename="use_agent_pages")
    )
    return user


def agent_session() -> str:
    """A logged-in agent's session id (saved in the database, as a browser would hold it)."""
    user = agent_user()
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def customers_create(*, count: int, prefix: str) -> list[Customer]:
    return Customer.objects.bulk_create(
        [
            Customer(email=f"{prefix}-{n}@bench.example.com", full_name=f"Bench {prefix} {n}")
            for n in range(count)
        ]
    )


def _customers_insert_sql(count: int, *, prefix: str, viewed: bool) -> tuple[str, list]:
    return (
        """
        INSERT INTO customers_customer (public_id, email, full_name, last_viewed_at, created_at)
        SELECT 'c_' || %s || '_' || n, %s || '-' || n || '@bench.example.com', '',
               CASE WHEN %s THEN now() END, now()
        FROM generate_series(1, %s) AS n
        """,
        [prefix, prefix, viewed, count],
    )


def watched_customers_with_due_cards(*, customers: int, configs: list[CardConfig], due: int) -> set:
    """B6: `customers` customers viewed just now, each with a loaded card per config.

    Exactly `due` cards expire within the refresh-ahead lead time (one card each for
    `due` customers spread over the table, half already expired, half about to); every
    other card expires in an hour. Returns the due (customer id, config id) pairs.
    """
    config_ids = [config.pk for config in configs]
    step = customers // due
    with connection.cursor() as cursor:
        cursor.execute(*_customers_insert_sql(customers, prefix="watched", viewed=True))
        cursor.execute(
            """
            INSERT INTO cards_cardinstance (customer_id, config_id, state, components,
                warnings, ttl_seconds, loaded_at, expires_at, error_kind, claim_token, updated_at)
            SELECT c.id, cfg.id, 'loaded', '[{"componentText": {"text": "cached"}}]'::jsonb,
                   '[]'::jsonb, 3600, now(), now() + interval '1 hour', '', '', now()
            FROM customers_customer c CROSS JOIN unnest(%s::bigint[]) AS cfg(id)
            """,
            [config_ids],
        )
        # Customer n*step gets config (n mod 5) due: now - 10 min .. now + 30 s.
        cursor.execute(
            """
            WITH picked AS (
                SELECT c.id AS customer_id,
                       (%s::bigint[])[1 + (row_number() OVER (ORDER BY c.id) - 1) %% %s]
                           AS config_id,
                       row_number() OVER (ORDER BY c.id) AS n
                FROM customers_customer c WHERE c.id %% %s = 0 ORDER BY c.id LIMIT %s
            )
            UPDATE cards_cardinstance i
            SET expires_at = now() + CASE WHEN p.n %% 2 = 0 THEN interval '30 seconds'
                                          ELSE interval '-10 minutes' END
            FROM picked p
            WHERE i.customer_id = p.customer_id AND i.config_id = p.config_id
            RETURNING i.customer_id, i.config_id
            """,
            [config_ids, len(config_ids), step, due],
        )
        pairs = {(row[0], row[1]) for row in cursor.fetchall()}
        cursor.execute("ANALYZE customers_customer; ANALYZE cards_cardinstance;")
    return pairs


def expired_instances(*, customers: int, configs: list[CardConfig], fresh_customers: int) -> int:
    """B7: `customers` x configs instances expired two days ago, and the fresh cards of
    `fresh_customers` more that the purge must keep. Returns the number kept."""
    config_ids = [config.pk for config in configs]
    with connection.cursor() as cursor:
        cursor.execute(*_customers_insert_sql(customers, prefix="expired", viewed=False))
        cursor.execute(*_customers_insert_sql(fresh_customers, prefix="fresh", viewed=False))
        cursor.execute(
            """
            INSERT INTO cards_cardinstance (customer_id, config_id, state, components,
                warnings, ttl_seconds, loaded_at, expires_at, error_kind, claim_token, updated_at)
            SELECT c.id, cfg.id, 'loaded', '[{"componentText": {"text": "old"}}]'::jsonb,
                   '[]'::jsonb, 300,
                   now() - interval '2 days',
                   CASE WHEN c.public_id LIKE 'c\\_fresh\\_%%' THEN now() + interval '1 hour'
                        ELSE now() - interval '2 days' + interval '5 minutes' END,
                   '', '', now() - interval '2 days'
            FROM customers_customer c CROSS JOIN unnest(%s::bigint[]) AS cfg(id)
            """,
            [config_ids],
        )
        cursor.execute("ANALYZE customers_customer; ANALYZE cards_cardinstance;")
    return fresh_customers * len(config_ids)
