"""Rank, percentile, band and flag of every current student, recomputed after each run."""

from __future__ import annotations

from django.db import connection
from django.utils import timezone

from institutions.models import Institution
from students.selectors import current_student_condition

from .. import sql
from ..models import FlagRule, LatestPrediction, PredictionSettings
from ..selectors import flag_capacity_effective


def latest_predictions_rank(*, institution: Institution, settings: PredictionSettings) -> int:
    """Recompute rank, percentile, band and flag of every current student in one statement.

    Returns how many students are flagged. Set-based SQL (window functions), so ranking 100,000
    students is one statement, not 100,000 updates from Python; rows whose standing did not
    change are not rewritten.
    """
    params = {"institution_id": institution.pk, "updated_at": timezone.now(),
              "band_high_from": settings.band_high_from, "band_medium_from": settings.band_medium_from}
    if settings.flag_rule == FlagRule.CAPACITY:
        # The term's capacity (or advisors x per advisor), only students at or above the minimum risk.
        capacity = flag_capacity_effective(institution=institution, settings=settings)["k"]
        statement, params["flag_capacity"] = sql.LATEST_RANK_BY_CAPACITY, capacity
    else:
        statement, params["flag_threshold"] = sql.LATEST_RANK_BY_THRESHOLD, settings.flag_threshold
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
    return LatestPrediction.objects.for_institution(institution).filter(flagged=True).count()


def latest_predictions_prune(*, institution: Institution) -> int:
    """Drop the latest rows of students who graduated, left or went inactive; returns how many.

    Written as a join of each latest row to its own student (by primary key) with the current
    condition negated, so PostgreSQL looks each student up once whatever its estimates. The
    ``NOT IN (current students)`` of before became a per-row rescan of the whole list once the list
    no longer fitted in ``work_mem`` (5.8 s instead of 15 ms for 10,000 students at ``work_mem =
    64kB``); the ``NOT EXISTS`` after it was planned, when the students' statistics estimated one
    current student, as a nested loop comparing every latest row with every current student:
    80-117 s for 50,000 students in ``bench/rescore.py`` (docs/benchmarks.md, "Fan-out").
    """
    deleted, _ = LatestPrediction.objects.for_institution(institution).exclude(
        current_student_condition("student__")).delete()
    return deleted
