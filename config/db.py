"""Hand-written SELECTs read back as the models the ORM would have built.

Only for the reads of every customer page view: on those, the ORM spends more CPU
building and compiling a query than the database takes to answer it. The rows go through
the backend's converters (SQLite's datetimes come back aware, its booleans as bool) and
`Model.from_db`, as the ORM's own rows do, so the models are the same, deferred fields
included.
"""

from collections.abc import Iterable, Sequence
from functools import cached_property
from typing import Any

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper


class Columns:
    """Some concrete fields of a model (all by default), in model order: as a SELECT lists
    them and as `from_db` takes them back."""

    def __init__(self, model: type[models.Model], names: Iterable[str] | None = None) -> None:
        self.model = model
        self.names = None if names is None else frozenset(names)

    @cached_property
    def fields(self) -> list[models.Field]:
        # Resolved on first use: the app registry is not ready when modules are imported.
        fields = self.model._meta.concrete_fields
        return [f for f in fields if self.names is None or f.attname in self.names]

    @cached_property
    def attnames(self) -> frozenset[str]:
        return frozenset(f.attname for f in self.fields)

    @cached_property
    def pk_position(self) -> int:
        return self.fields.index(self.model._meta.pk)

    def select(self, alias: str, connection: BaseDatabaseWrapper) -> str:
        """`alias."column", ...` for a SELECT list."""
        quote = connection.ops.quote_name
        return ", ".join(f"{alias}.{quote(f.column)}" for f in self.fields)


def rows_as_models(
    connection: BaseDatabaseWrapper,
    sql: str,
    params: Sequence[Any],
    groups: Sequence[Columns],
) -> list[list[models.Model | None]]:
    """Run `sql`, whose SELECT lists each group's columns in turn, and read each row as
    one model per group; None for a group whose primary key is NULL (an outer join that
    found nothing)."""
    converters = []
    position = 0
    for group in groups:
        table = group.model._meta.db_table
        for field in group.fields:
            column = field.get_col(table)
            functions = connection.ops.get_db_converters(column)
            functions += column.get_db_converters(connection)
            if functions:
                converters.append((position, column, functions))
            position += 1
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    result = []
    for row in rows:
        if converters:
            row = list(row)
            for n, column, functions in converters:
                for function in functions:
                    row[n] = function(row[n], column, connection)
        start = 0
        read: list[models.Model | None] = []
        for group in groups:
            values = row[start : start + len(group.fields)]
            start += len(group.fields)
            if values[group.pk_position] is None:
                read.append(None)
            else:
                read.append(group.model.from_db(connection.alias, group.attnames, values))
        result.append(read)
    return result
