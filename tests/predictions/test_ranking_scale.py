"""The ranking step of a rescore stays linear when its lists outgrow ``work_mem`` (issue 23, item 0).

The stale-row delete used to be ``NOT IN (current students)``: once that list no longer fitted in
``work_mem`` PostgreSQL rescanned it for every latest row (10,000 students at ``work_mem = 64kB``:
5.8 s instead of 15 ms). The population is written with set-based SQL (10,000 students, their
predictions and latest rows in three statements), so the test spends its time on the ranking.
Timings are the best of several alternating runs (each rolled back, so each does the same work):
the minimum is what a loaded machine cannot inflate, and the old statement was 390 times slower,
not two. The plan is checked too: each latest row's student found by its key, no per-row subplan.
"""

from __future__ import annotations

import time

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from institutions.models import Job, JobKind
from institutions.scoping import institution_scope
from predictions.models import LatestPrediction, ModelVersion
from predictions.services.ranking import latest_predictions_prune, latest_predictions_rank
from students import sql as students_sql
from tests.predictions.conftest import fast_settings

STUDENTS = 10_000
STALE_EVERY = 10  # every tenth student has graduated since the last run: its latest row goes
RUNS = 5


def _population(institution, count: int, *, prefix: str) -> None:
    """``count`` students with a prediction and a latest row each, unranked; every STALE_EVERY-th
    student is no longer current."""
    version = ModelVersion.objects.for_institution(institution).create(number=1, artifact=b"{}", artifact_sha256="0")
    job = Job.objects.for_institution(institution).create(kind=JobKind.RESCORE)
    params = {"institution_id": institution.pk, "count": count, "prefix": prefix, "stale_every": STALE_EVERY,
              "version_id": version.pk, "job_id": job.pk}
    with institution_scope(institution), connection.cursor() as cursor:
        cursor.execute("""
            INSERT INTO students_student (institution_id, external_id, name, email, program, cohort, status,
                                          outcome, features, created_at, updated_at)
            SELECT %(institution_id)s, %(prefix)s || n, '', '', '', '2024', 'active',
                   CASE WHEN n %% %(stale_every)s = 0 THEN 'graduated' ELSE 'enrolled' END, '{}', now(), now()
            FROM generate_series(1, %(count)s) AS n""", params)
        cursor.execute("""
            INSERT INTO predictions_prediction (institution_id, student_id, model_version_id, job_id, risk, band,
                                                base_value, factors, input_fingerprint, created_at)
            SELECT %(institution_id)s, id, %(version_id)s, %(job_id)s, ((id * 7919) %% 1009) / 1009.0, 'low',
                   0, '[]', 'f', now()
            FROM students_student
            WHERE institution_id = %(institution_id)s AND external_id LIKE %(prefix)s || '%%'""", params)
        cursor.execute("""
            INSERT INTO predictions_latestprediction (institution_id, student_id, prediction_id, model_version_id,
                                                      risk, band, input_fingerprint, rank, percentile, flagged,
                                                      scored_at, updated_at)
            SELECT %(institution_id)s, student_id, id, model_version_id, risk, band, 'f', 0, 0, FALSE, now(), now()
            FROM predictions_prediction WHERE institution_id = %(institution_id)s""", params)
        # What an import of this size does after its load (students.importing: ANALYZE_AFTER_ROWS).
        cursor.execute(students_sql.STUDENTS_ANALYZE)


def _ranking(institution, settings, *, work_mem: str | None) -> tuple[float, int, int]:
    """One ranking step (prune, then rank) in a savepoint that is rolled back: seconds, pruned, flagged."""
    with institution_scope(institution), transaction.atomic():
        with connection.cursor() as cursor:
            if work_mem:
                cursor.execute("SELECT set_config('work_mem', %s, true)", [work_mem])
            cursor.execute("SHOW work_mem")
            assert cursor.fetchone()[0] == (work_mem or "4MB")
        started = time.perf_counter()
        pruned = latest_predictions_prune(institution=institution)
        flagged = latest_predictions_rank(institution=institution, settings=settings)
        elapsed = time.perf_counter() - started
        transaction.set_rollback(True)
    return elapsed, pruned, flagged


@pytest.mark.django_db(transaction=False)
def test_ranking_ten_thousand_students_at_64kb_work_mem_costs_at_most_twice_the_default(tenant_a, tenant_b):
    a, b = tenant_a.institution, tenant_b.institution
    _population(a, STUDENTS, prefix="A")
    _population(b, 300, prefix="B")
    settings = fast_settings(a, flag_rule="capacity", flag_capacity=50)
    default, small = [], []
    for _ in range(RUNS):
        default.append(_ranking(a, settings, work_mem=None))
        small.append(_ranking(a, settings, work_mem="64kB"))
    # The same work either way: the graduated tenth pruned, the top 50 flagged.
    assert {run[1:] for run in default} == {run[1:] for run in small} == {(STUDENTS // STALE_EVERY, 50)}
    best_default, best_small = min(run[0] for run in default), min(run[0] for run in small)
    print(f"ranking {STUDENTS} students: default {best_default * 1000:.1f} ms, 64kB {best_small * 1000:.1f} ms")
    assert best_small <= 2 * best_default, (best_default, best_small)

    # The delete's plan, at 64kB too: each latest row's own student found by its key (an index
    # lookup or a hash join), never a subplan run per row nor a join filter comparing every latest
    # row with every student (the quadratic shapes).
    with institution_scope(a), transaction.atomic():
        with CaptureQueriesContext(connection) as queries:
            latest_predictions_prune(institution=a)
        delete = next(query["sql"] for query in queries.captured_queries if query["sql"].startswith("DELETE"))
        transaction.set_rollback(True)
    with institution_scope(a), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('work_mem', '64kB', true)")
        cursor.execute("EXPLAIN " + delete)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        transaction.set_rollback(True)
    assert "SubPlan" not in plan and "Join Filter" not in plan, plan
    assert "Index Cond: (id = u0.student_id)" in plan or "Hash Join" in plan, plan

    # The ranks and percentiles are PostgreSQL's own ROW_NUMBER and PERCENT_RANK, ties included (about
    # ten students share each risk).
    with institution_scope(a):
        latest_predictions_prune(institution=a)
        latest_predictions_rank(institution=a, settings=settings)
        with connection.cursor() as cursor:
            cursor.execute("""
                SELECT count(*) FROM (
                    SELECT rank, percentile, ROW_NUMBER() OVER (ORDER BY risk DESC, student_id) AS expected_rank,
                           100.0 * PERCENT_RANK() OVER (ORDER BY risk) AS expected_percentile
                    FROM predictions_latestprediction WHERE institution_id = %s) AS ranked
                WHERE rank = expected_rank AND percentile = expected_percentile""", [a.pk])
            assert cursor.fetchone()[0] == STUDENTS - STUDENTS // STALE_EVERY

    # Institution B's rows were neither pruned nor ranked by A's runs.
    with institution_scope(b):
        assert LatestPrediction.objects.count() == 300
        assert not LatestPrediction.objects.exclude(rank=0).exists()
