"""Reads whose SQL is built once per process from the models' metadata, for the hottest paths.

The ORM compiles a queryset into SQL every time it runs; for a statement that never changes
(authenticating an API key, reading one student by id) that compilation cost more CPU than the
rest of the request. These helpers build the statement once, from the models' concrete fields,
and turn a row into model instances exactly as the ORM does: the same columns in the same order,
the same database converters (JSON, SQLite's date-times), ``Model.from_db``.

On PostgreSQL, :func:`execute_prepared` also has the server parse and plan each such statement once
per connection (``PREPARE``, then ``EXECUTE``): planning the API key lookup's three-table join
cost the server more CPU than running it. ``DATABASE_PREPARED_STATEMENTS=0`` turns that off, for
a pooler that does not keep a session's prepared statements (PgBouncer in transaction mode).
"""

from __future__ import annotations

import collections
import functools
import hashlib
from dataclasses import dataclass

from django.conf import settings
from django.db import NotSupportedError, connections, router


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
        values = _converted(row[start:start + len(plan.attnames)], plan, connection)
        start += len(plan.attnames)
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


def execute_prepared(cursor, sql: str, params) -> None:
    """``cursor.execute(sql, params)``; on PostgreSQL through a statement prepared once per connection.

    ``sql`` must be a fixed statement (identifiers only, values as ``%s`` parameters) built once
    per process: it is named by its hash. A prepared statement outlives the transaction that
    created it, so it is prepared once per database session; a new connection prepares it anew.
    """
    wrapper = cursor.db
    if wrapper.vendor != "postgresql" or not getattr(settings, "DATABASE_PREPARED_STATEMENTS", True):
        cursor.execute(sql, params)
        return
    name, prepare = _prepared_form(sql)
    raw = wrapper.connection
    known = wrapper.__dict__.get("_prepared_statements")
    if known is None or known[0] is not raw:
        known = wrapper.__dict__["_prepared_statements"] = (raw, {})
    statements = known[1]
    execute = f"EXECUTE {name}({', '.join(['%s'] * len(params))})" if params else f"EXECUTE {name}"
    for attempt in (1, 2):
        if statements.get(name) == "stale":
            cursor.execute(f"DEALLOCATE {name}")
            del statements[name]
        if name not in statements:
            cursor.execute(prepare)
            statements[name] = "ready"
        try:
            cursor.execute(execute, params)
            return
        except NotSupportedError as exc:
            # A migration changed the type of a column the statement returns ("cached plan must
            # not change result type"): prepare it again. Outside a transaction at once; inside
            # one, which the error has aborted, on the connection's next use.
            if getattr(exc.__cause__, "pgcode", None) != "0A000":
                raise
            statements[name] = "stale"
            if wrapper.in_atomic_block or attempt == 2:
                raise


@functools.cache
def _prepared_form(sql: str) -> tuple[str, str]:
    name = "dp_" + hashlib.sha256(sql.encode()).hexdigest()[:20]
    parts = sql.split("%s")
    numbered = parts[0] + "".join(f"${index}{part}" for index, part in enumerate(parts[1:], start=1))
    return name, f"PREPARE {name} AS {numbered}"


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
        execute_prepared(cursor, sql, [institution.pk, number])
        row = cursor.fetchone()
    return None if row is None else instances_from_row(row, [plan], alias)[0]


class TenantRows:
    """One institution's rows of ``model`` in primary-key order, read the way Django's
    ``Paginator`` reads a list: ``count()`` and one slice.

    The same rows as ``model.objects.for_institution(institution).order_by("pk")``, through two
    statements built once per process (and prepared once per connection) instead of compiling
    the ORM's count and page queries on every request. Each row is a named tuple of the model's
    attribute names (``id``, ``institution_id``, ...) with the ORM's database converters applied,
    not a model instance: for reads that only render fields. On PostgreSQL a page first finds
    its ids, then reads only those rows, so the rows an ``OFFSET`` skips are not also built
    into full result rows.
    """

    def __init__(self, model, institution):
        if institution is None or institution.pk is None:
            raise ValueError("TenantRows needs a saved Institution")
        self.model = model
        self.institution_id = institution.pk
        self._alias = router.db_for_read(model)

    def count(self) -> int:
        count_sql, _page_sql, _plan, _row = _tenant_rows_plan(self.model, self._alias)
        with connections[self._alias].cursor() as cursor:
            execute_prepared(cursor, count_sql, [self.institution_id])
            return cursor.fetchone()[0]

    def __getitem__(self, index):
        if not isinstance(index, slice) or index.step is not None:
            raise TypeError("TenantRows supports only slices without a step")
        start, stop = index.start or 0, index.stop
        if start < 0 or stop is None or stop < 0:
            raise ValueError("TenantRows needs a non-negative start and stop")
        if stop <= start:
            return []
        _count_sql, page_sql, plan, row_type = _tenant_rows_plan(self.model, self._alias)
        connection = connections[self._alias]
        params = [self.institution_id, stop - start, start]
        if connection.vendor == "postgresql":
            params.append(self.institution_id)
        with connection.cursor() as cursor:
            execute_prepared(cursor, page_sql, params)
            rows = cursor.fetchall()
        if plan.converters:
            rows = [_converted(row, plan, connection) for row in rows]
        return [row_type._make(row) for row in rows]


def _converted(row, plan: ModelColumns, connection) -> list:
    values = list(row)
    for index, functions, expression in plan.converters:
        for convert in functions:
            values[index] = convert(values[index], expression, connection)
    return values


@functools.cache
def _tenant_rows_plan(model, alias: str):
    connection = connections[alias]
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    institution = quote(model._meta.get_field("institution").column)
    pk = quote(model._meta.pk.column)
    plan = model_columns(model, "s", alias)
    # Identifiers only (quoted, from the model); the values are query parameters.
    count_sql = f"SELECT COUNT(*) FROM {table} t WHERE t.{institution} = %s"  # noqa: S608
    if connection.vendor == "postgresql":
        # The ids come from an array, which the planner sizes small, so that a plan made once for
        # every page size and offset (a prepared statement's generic plan) still looks the rows
        # up by key instead of scanning the institution's table.
        page_sql = (
            f"SELECT {', '.join(plan.columns)} FROM unnest(ARRAY("  # noqa: S608
            f"SELECT t.{pk} FROM {table} t WHERE t.{institution} = %s ORDER BY t.{pk} LIMIT %s OFFSET %s"
            f")) AS p(id) JOIN {table} s ON s.{pk} = p.id AND s.{institution} = %s ORDER BY s.{pk}"
        )
    else:
        page_sql = (
            f"SELECT {', '.join(plan.columns)} FROM {table} s"  # noqa: S608
            f" WHERE s.{institution} = %s ORDER BY s.{pk} LIMIT %s OFFSET %s"
        )
    row_type = collections.namedtuple(f"{model.__name__}Row", plan.attnames)
    row_type.pk = property(lambda row: getattr(row, model._meta.pk.attname))
    return count_sql, page_sql, plan, row_type
