"""The three statements the ORM cannot say with the same atomic meaning, in SQL.

Each is one statement, in SQL that PostgreSQL and SQLite 3.35+ share:
- `claim`: `INSERT ... ON CONFLICT DO UPDATE ... WHERE ... RETURNING` (bulk_create's
  update_conflicts has no WHERE and returns nothing on SQLite);
- `take_over`: a conditional `UPDATE ... RETURNING` (QuerySet.update returns a count);
- `update_claimed`: the store, conditional on the claim, one `UPDATE ... FROM (VALUES ...)`
  for a whole batch (bulk_update has no per-row condition).
Only quoted names from the models' metadata are written into a statement; every value is
a parameter, sent through its field as the ORM sends it (JSON, datetimes), and the rows
read back become models through the ORM's own `raw()`. `cards.loading.services` decides
what to claim and store; this module only says it in SQL.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Model, Q
from django.db.models.fields import NOT_PROVIDED

from cards.models import CardInstance

State = CardInstance.State


def _table() -> str:
    return connection.ops.quote_name(CardInstance._meta.db_table)


def _column(name: str) -> str:
    """The quoted column of a CardInstance field."""
    return connection.ops.quote_name(CardInstance._meta.get_field(name).column)


def _db_value(name: str, python_value: Any) -> Any:
    """A value for a CardInstance field as the ORM sends it."""
    return CardInstance._meta.get_field(name).get_db_prep_save(python_value, connection)


def _returning() -> str:
    """`RETURNING` every column of the table, for `raw()` to read back as instances."""
    columns = ", ".join(f"{_table()}.{_column(f.name)}" for f in CardInstance._meta.concrete_fields)
    return f"RETURNING {columns}"


def _returned_instances(sql: str, params: list[Any]) -> list[CardInstance]:
    """Run a statement that ends with `_returning()`; its rows as instances."""
    return list(CardInstance.objects.raw(sql, params))


def _condition(q: Q) -> tuple[str, list[Any]]:
    """A Q on CardInstance as an SQL condition on its table (columns qualified by the
    table's name) and its params, compiled by the ORM: the model's own definitions
    (`CardInstance.claim_free_q`) are used here, not restated."""
    query = CardInstance.objects.filter(q).query
    sql, params = query.where.as_sql(query.get_compiler(connection=connection), connection)
    return f"({sql})", list(params)


def _claimable(*, now: datetime, stale_before: datetime | None) -> tuple[str, list]:
    """Which instance rows a claim may take, as an SQL condition and its params: rows
    nobody is loading (`CardInstance.claim_free_q`) that have no outcome yet or whose
    outcome expired by `stale_before` (any, without one)."""
    free = CardInstance.claim_free_q(now)
    if stale_before is None:
        return _condition(free)
    due = Q(state=State.LOADING) | Q(expires_at__isnull=True) | Q(expires_at__lte=stale_before)
    return _condition(free & due)


def claim(
    *,
    customer_id: int,
    config_ids: Sequence[int],
    token: str,
    now: datetime,
    stale_before: datetime | None,
) -> list[CardInstance]:
    """Claim the customer's instances of `config_ids` with `token`; the rows it took.

    `INSERT ... ON CONFLICT DO UPDATE ... WHERE <claimable> RETURNING`: missing rows are
    inserted already claimed (state `loading`: no outcome yet), existing ones taken where
    `_claimable`; a claim sets only the claim columns. The database locks each row while
    it decides, so two claimers never both take one.
    """
    missing = [
        CardInstance(
            customer_id=customer_id,
            config_id=pk,
            state=State.LOADING,
            claimed_at=now,
            claim_token=token,
        )
        for pk in dict.fromkeys(config_ids)  # once each
    ]
    insert, params = _insert_sql(missing)
    claimable, claimable_params = _claimable(now=now, stale_before=stale_before)
    taken = ", ".join(
        f"{_column(name)} = excluded.{_column(name)}" for name in ("claimed_at", "claim_token")
    )
    sql = (
        f"{insert} ON CONFLICT ({_column('customer')}, {_column('config')}) "
        f"DO UPDATE SET {taken} WHERE {claimable} "
        f"{_returning()}"
    )
    return _returned_instances(sql, [*params, *claimable_params])


def take_over(
    *,
    customer_id: int,
    config_ids: Sequence[int],
    token: str,
    new_token: str,
    now: datetime,
) -> list[CardInstance]:
    """Move the claims held with `token` to `new_token`, in one conditional
    `UPDATE ... RETURNING`; the rows it moved (none the second time)."""
    if not config_ids:
        return []
    table = _table()
    sql = (
        f"UPDATE {table} SET {_column('claim_token')} = %s, {_column('claimed_at')} = %s "  # noqa: S608
        f"WHERE {_column('customer')} = %s "
        f"AND {_column('config')} IN ({', '.join(['%s'] * len(config_ids))}) "
        f"AND {_column('claim_token')} = %s "
        f"{_returning()}"
    )
    params = [
        _db_value("claim_token", new_token),
        _db_value("claimed_at", now),
        customer_id,
        *config_ids,
        _db_value("claim_token", token),
    ]
    return _returned_instances(sql, params)


def update_claimed(rows: dict[int, dict[str, Any]], *, token: str) -> set[int]:
    """Write each row's changes (pk -> {field name: value}, the same fields for every row)
    where the row still holds the claim `token`, in one statement; the pks written.

    Values shared by every row are sent once, the others as a VALUES list joined on the pk.
    """
    meta, quote = CardInstance._meta, connection.ops.quote_name
    first = next(iter(rows.values()))
    shared = [name for name in first if all(row[name] == first[name] for row in rows.values())]
    varying = [name for name in first if name not in shared]

    def from_values(name: str, number: int) -> str:
        # PostgreSQL types a VALUES column by its contents: one of NULLs only would be text.
        if connection.features.requires_casted_case_in_updates:
            return f"CAST(v.column{number} AS {meta.get_field(name).cast_db_type(connection)})"
        return f"v.column{number}"

    assignments = [f"{_column(name)} = %s" for name in shared] + [
        f"{_column(name)} = {from_values(name, number)}"
        for number, name in enumerate(varying, start=2)  # column1 is the pk
    ]
    params = [_db_value(name, first[name]) for name in shared]
    for pk, row in rows.items():
        params += [pk, *(_db_value(name, row[name]) for name in varying)]
    row_placeholders = f"({', '.join(['%s'] * (1 + len(varying)))})"
    table, id_ = _table(), quote(meta.pk.column)
    sql = (
        f"UPDATE {table} SET {', '.join(assignments)} "  # noqa: S608
        f"FROM (VALUES {', '.join([row_placeholders] * len(rows))}) AS v "
        f"WHERE {table}.{id_} = v.column1 AND {table}.{_column('claim_token')} = %s "
        f"RETURNING {table}.{id_}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, token])
        return {pk for (pk,) in cursor.fetchall()}


def _insert_sql(objs: Sequence[Model]) -> tuple[str, list[Any]]:
    """`INSERT INTO table (columns) VALUES (...), ...` for new `objs` of one model, every
    column but the primary key, and its params: each value through its field as
    bulk_create sends it (defaults, auto_now, JSON, datetimes)."""
    meta, quote = objs[0]._meta, connection.ops.quote_name
    fields = [field for field in meta.concrete_fields if not field.primary_key]
    values = [
        [field.get_db_prep_save(field.pre_save(obj, add=True), connection) for field in fields]
        for obj in objs
    ]
    # A column every row leaves NULL is left out: the database fills it in. Fewer params
    # keep more statements in psycopg's cache of parsed queries (at most 50 params).
    kept = [
        n
        for n, field in enumerate(fields)
        if field.db_default is not NOT_PROVIDED or any(row[n] is not None for row in values)
    ]
    columns = ", ".join(quote(fields[n].column) for n in kept)
    rows = ", ".join([f"({', '.join(['%s'] * len(kept))})"] * len(objs))
    params = [row[n] for row in values for n in kept]
    return f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES {rows}", params  # noqa: S608
