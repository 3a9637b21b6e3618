"""The history's monthly partitions: created ahead by the daily job, a month's rows moved out of
the default partition when its partition is made, guarded like the parent, and a past month's
partition dropped only once no institution keeps a row in it."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection

from institutions.scoping import institution_scope
from predictions import sql
from predictions.models import Prediction
from predictions.services.history_partitions import prediction_partitions, prediction_partitions_maintain

from .test_history_retention import NOW, History, _clean, _set

pytestmark = pytest.mark.django_db

TABLE = Prediction._meta.db_table


def _rows_in(partition: str) -> list[tuple[int, int]]:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT institution_id, count(*) FROM "{partition}" GROUP BY 1 ORDER BY 1')
        return cursor.fetchall()


def _ensure(month: datetime.date) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(sql.PARTITION_ENSURE, {"month": month})
        return cursor.fetchone()[0]


def test_the_daily_job_creates_the_coming_months_partitions_ahead(db):
    later = datetime.datetime(2031, 5, 10, tzinfo=datetime.UTC)
    outcome = prediction_partitions_maintain(now=later)
    assert outcome["created"] == [f"{TABLE}_y2031m05", f"{TABLE}_y2031m06", f"{TABLE}_y2031m07"]
    assert set(outcome["created"]) <= set(prediction_partitions())
    assert prediction_partitions_maintain(now=later)["created"] == []  # already there: nothing new
    # Each new partition is guarded like the parent (row-level security with the tenant policy).
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname FROM pg_class WHERE relname = ANY(%s) AND relrowsecurity",
                       [outcome["created"]])
        assert sorted(row[0] for row in cursor.fetchall()) == outcome["created"]
        cursor.execute("SELECT tablename FROM pg_policies WHERE tablename = ANY(%s) "
                       "AND policyname = 'tenant_isolation'", [outcome["created"]])
        assert sorted(row[0] for row in cursor.fetchall()) == outcome["created"]


def test_a_months_rows_move_out_of_the_default_partition_into_its_own(tenants):
    a, b = tenants
    history_a, history_b = History(a), History(b)  # runs back to 2025, before any monthly partition
    august = [history.rows(days).count() for history in (history_a, history_b) for days in (100, 105)]
    assert _ensure(datetime.date(2026, 8, 1)) is True
    assert _rows_in(f"{TABLE}_y2026m08") == [(a.institution.pk, sum(august[:2])), (b.institution.pk, sum(august[2:]))]
    # Left in the default partition: each institution's October and November runs and 2025's.
    assert _rows_in(f"{TABLE}_default") == [(a.institution.pk, 4 * 5 + 6), (b.institution.pk, 4 * 5 + 6)]
    assert _ensure(datetime.date(2026, 8, 1)) is False


def test_a_partition_read_directly_inside_a_scope_shows_only_that_institutions_rows(tenants):
    a, b = tenants
    History(a), History(b)
    _ensure(datetime.date(2026, 8, 1))
    with institution_scope(a.institution):
        assert _rows_in(f"{TABLE}_y2026m08") == [(a.institution.pk, 10)]
        assert _rows_in(f"{TABLE}_default") == [(a.institution.pk, 26)]


def test_a_past_month_is_dropped_only_once_no_institution_keeps_a_row_in_it(
        tenants, django_capture_on_commit_callbacks):
    a, b = tenants
    History(a), History(b)
    for month in (datetime.date(2026, 8, 1), datetime.date(2026, 9, 1), datetime.date(2025, 10, 1)):
        _ensure(month)
    august, september, october_2025 = f"{TABLE}_y2026m08", f"{TABLE}_y2026m09", f"{TABLE}_y2025m10"
    _set(a, history_keep_all_days=30, history_keep_monthly_months=3)
    with connection.cursor() as cursor:
        # In production each step is its own transaction; here the test's one transaction still
        # holds the moved rows' deferred key checks, which would keep PostgreSQL from dropping a table.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")

    # September has no run at all: dropped. August still holds both institutions' runs: kept.
    dropped = prediction_partitions_maintain(now=NOW)["dropped"]
    assert september in dropped and august not in dropped

    # A's setting expires both its August runs; B keeps its last August run: August stays.
    _clean(a, django_capture_on_commit_callbacks)
    _clean(b, django_capture_on_commit_callbacks)
    assert _rows_in(august) == [(b.institution.pk, 5)]
    assert august not in prediction_partitions_maintain(now=NOW)["dropped"]
    assert august in prediction_partitions()

    # Once B's setting expires August too, nobody keeps anything there: the partition goes whole.
    _set(b, history_keep_all_days=30, history_keep_monthly_months=2)
    _clean(b, django_capture_on_commit_callbacks)
    assert _rows_in(august) == []
    assert august in prediction_partitions_maintain(now=NOW)["dropped"]
    assert august not in prediction_partitions()
    # October 2025 keeps each institution's first student's latest prediction: never dropped.
    assert october_2025 in prediction_partitions()
    assert sorted(_rows_in(october_2025)) == [(a.institution.pk, 1), (b.institution.pk, 1)]


def test_current_and_future_months_are_never_dropped_even_when_empty(db):
    outcome = prediction_partitions_maintain(now=NOW)
    kept = {f"{TABLE}_y2026m12", f"{TABLE}_y2027m01", f"{TABLE}_y2027m02", f"{TABLE}_default"}
    assert kept <= set(prediction_partitions()) and not kept & set(outcome["dropped"])
