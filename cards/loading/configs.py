"""The enabled configs a load needs, with their headers; a worker keeps them while their
rows are unchanged (issue 7, B5)."""

from collections.abc import Sequence
from typing import Any

from django.db import connection

from cards.models import CardConfig


def card_configs_enabled(
    *, keys: Sequence[str] | None = None, ids: Sequence[int] | None = None
) -> list[CardConfig]:
    """Enabled configs in display order, headers prefetched (one query each).

    By `ids` (how every task asks, issue 7 B5) they come from this process's cache while
    their rows are unchanged: one small query instead of two and the headers' decryption.
    """
    if ids is not None and keys is None:
        return _configs_by_ids(ids)
    return _configs_read(keys=keys, ids=ids)


def _configs_read(
    *, keys: Sequence[str] | None = None, ids: Sequence[int] | None = None
) -> list[CardConfig]:
    configs = CardConfig.objects.filter(is_enabled=True).prefetch_related("headers")
    if keys is not None:
        configs = configs.filter(key__in=keys)
    if ids is not None:
        configs = configs.filter(pk__in=ids)
    return list(configs.order_by("order", "id"))


# Config id -> (its `updated_at` as the database returned it, the config with its headers).
# Every save of a config bumps `updated_at`, and so does a change to its headers alone
# (the admin saves the config with its inline; `cards.configuration.transfer` bumps it on
# import), so an entry is valid while the row's `updated_at` is the one read with it. Shared by a
# worker's threads: entries are replaced whole, never changed, and so are the configs.
_configs_cache: dict[int, tuple[Any, CardConfig]] = {}


def _configs_by_ids(ids: Sequence[int]) -> list[CardConfig]:
    """`card_configs_enabled(ids=ids)` from `_configs_cache`, reading only what changed."""
    if not ids:
        return []
    meta, quote = CardConfig._meta, connection.ops.quote_name
    enabled, updated_at = (quote(meta.get_field(n).column) for n in ("is_enabled", "updated_at"))
    # Only quoted names from the model are written into the statement; values are params.
    sql = (
        f"SELECT {quote(meta.pk.column)}, {updated_at} FROM {quote(meta.db_table)} "  # noqa: S608
        f"WHERE {enabled} = %s AND {quote(meta.pk.column)} IN ({', '.join(['%s'] * len(ids))})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [True, *ids])
        current = dict(cursor.fetchall())
    for pk in ids:
        if pk not in current:
            _configs_cache.pop(pk, None)  # gone or disabled
    stale = [pk for pk, version in current.items() if _configs_cache.get(pk, (None,))[0] != version]
    if stale:
        for pk in stale:
            _configs_cache.pop(pk, None)
        # Read after the versions: a config saved in between is read anew next time.
        for config in _configs_read(ids=stale):
            _configs_cache[config.pk] = (current[config.pk], config)
    configs = [entry[1] for pk in current if (entry := _configs_cache.get(pk))]
    return sorted(configs, key=lambda config: (config.order, config.pk))
