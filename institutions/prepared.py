"""Reads whose SQL is built once per process from the models' metadata, for the hottest paths.

The ORM compiles a queryset into SQL every time it runs; for a statement that never changes
(authenticating an API key, reading one student by id) that compilation cost more CPU than the
rest of the request. These helpers build the statement once, from the models' concrete fields,
and turn a row into model instances exactly as the ORM does: the same columns in the same order,
the same database converters (JSON, SQLite's date-times), ``Model.from_db``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from django.db import connections, router


@dataclass(frozen=True)
class ModelColumns:
    model: type
    columns: list[str]  # "<table alias>.<quoted column>", one per concrete field, in field order
    attnames: list[str]
    converters: list[tuple]  # (field index, converter functions, column expression)


def model_columns(model, table: str, alias: str) -> ModelColumns:
    """The concrete fields of ``model`` read from the table aliased ``table``."""
    connection = connections[alias]
    quote = connection.ops.quote_name
    fields = model._meta.concrete_fields
    converters = []
    for index, field in enumerate(fields):
        expression = field.get_col(table)
        functions = connection.ops.get_db_converters(expression) + expression.get_db_converters(connection)
        if functions:
            converters.append((index, functions, expression))
    return ModelColumns(model=model, columns=[f"{table}.{quote(field.column)}" for field in fields],
                        attnames=[field.attname for field in fields], converters=converters)


def instances_from_row(row, plans: list[ModelColumns], alias: str) -> list:
    """One model instance per plan from a row holding each plan's columns in turn."""
    connection = connections[alias]
    instances, start = [], 0
    for plan in plans:
        values = list(row[start:start + len(plan.attnames)])
        start += len(plan.attnames)
        for index, functions, expression in plan.converters:
            for convert in functions:
                values[index] = convert(values[index], expression, connection)
        instances.append(plan.model.from_db(alias, plan.attnames, values))
    return instances


def integer_in_range(value, field, alias: str) -> int | None:
    """``value`` as the integer the ORM would look ``field`` up with, or None where the ORM would
    find no row (not a number, or outside the column's range)."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    low, high = connections[alias].ops.integer_field_range(field.get_internal_type())
    if (low is not None and number < low) or (high is not None and number > high):
        return None
    return number


@functools.cache
def _tenant_row_plan(model, alias: str) -> tuple[str, ModelColumns]:
    quote = connections[alias].ops.quote_name
    plan = model_columns(model, "t", alias)
    sql = (
        f"SELECT {', '.join(plan.columns)} FROM {quote(model._meta.db_table)} t"  # noqa: S608 - identifiers only
        f" WHERE t.{quote(model._meta.get_field('institution').column)} = %s"
        f" AND t.{quote(model._meta.pk.column)} = %s"
    )
    return sql, plan


def tenant_row(model, *, institution, pk):
    """``model.objects.for_institution(institution).get(pk=pk)``, or None where that finds no row
    (including a ``pk`` that is not a number or is out of range, as the ORM answers)."""
    alias = router.db_for_read(model)
    number = integer_in_range(pk, model._meta.pk, alias)
    if number is None:
        return None
    sql, plan = _tenant_row_plan(model, alias)
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, [institution.pk, number])
        row = cursor.fetchone()
    return None if row is None else instances_from_row(row, [plan], alias)[0]
