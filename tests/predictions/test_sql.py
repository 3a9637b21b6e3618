"""The hand-written SQL of predictions (predictions/sql.py) keeps to one institution.

tests/test_sql_modules.py checks every sql module's statements bind the institution; these
tests check what the statements do with two institutions' rows.
"""

from __future__ import annotations

import pytest
from django.db import connection
from psycopg2 import sql as psycopg2_sql

from institutions.jobs import job_create
from institutions.models import JobKind
from institutions.scoping import institution_scope
from predictions import sql
from predictions.models import LatestPrediction, Prediction, PredictionSettings
from predictions.services.chunk_store import prediction_chunk_store
from predictions.services.ranking import latest_predictions_rank

from .conftest import registry_row, rescore

pytestmark = pytest.mark.django_db


def _statements() -> dict[str, str]:
    connection.ensure_connection()
    return {
        name: value.as_string(connection.connection)
        for name, value in vars(sql).items()
        if isinstance(value, psycopg2_sql.Composed)
    }


def test_no_statement_takes_a_value_from_its_text():
    # Values are parameters or COPY data: the text holds identifiers, keywords and named
    # placeholders only (no literal quoted with ' except the fixed band names of the re-rank).
    for name, text in _statements().items():
        literals = set(text.split("'")[1::2])
        assert literals <= {"high", "medium", "low"}, name


def _store_for(tenant, *, risk: float):
    """Store one chunk of the tenant's students through predictions.sql, as a rescore would."""
    institution = tenant.institution
    version = registry_row(institution, number=1, status="live")
    settings, _ = PredictionSettings.objects.for_institution(institution).get_or_create(institution=institution)
    job, _ = job_create(institution=institution, kind=JobKind.RESCORE)
    chunk = [(student.pk, f"fp{student.pk}") for student in tenant.students]
    explanations = [{"risk": risk, "base_value": -1.0, "factors": []} for _ in chunk]
    with institution_scope(institution):
        prediction_chunk_store(institution=institution, job=job, version=version, settings=settings, chunk=chunk,
                               explanations=explanations, done_after=len(chunk))
        latest_predictions_rank(institution=institution, settings=settings)
    return job


def _standing(institution):
    return sorted(LatestPrediction.objects.for_institution(institution).values_list(
        "student_id", "risk", "rank", "band", "flagged", "updated_at"))


def test_a_stored_chunk_lands_in_the_callers_institution_only(trained_a, tenant_b):
    rescore(trained_a, full=True)
    before_a = _standing(trained_a.institution)
    job = _store_for(tenant_b, risk=0.9)

    assert _standing(trained_a.institution) == before_a
    stored = Prediction.objects.for_institution(tenant_b.institution).filter(job=job)
    assert sorted(stored.values_list("student_id", flat=True)) == sorted(s.pk for s in tenant_b.students)
    assert sorted(row[0] for row in _standing(tenant_b.institution)) == sorted(s.pk for s in tenant_b.students)
    assert not Prediction.objects.for_institution(trained_a.institution).filter(job=job).exists()


def test_ranking_one_institution_leaves_the_others_standing_alone(trained_a, tenant_b):
    rescore(trained_a, full=True)
    _store_for(tenant_b, risk=0.9)
    before_b = _standing(tenant_b.institution)
    settings = PredictionSettings.objects.for_institution(trained_a.institution).get()
    settings.band_medium_from = settings.band_high_from = 0.0  # every student high: A's rows are rewritten
    with institution_scope(trained_a.institution):
        latest_predictions_rank(institution=trained_a.institution, settings=settings)

    standing_a = _standing(trained_a.institution)
    assert {row[3] for row in standing_a} == {"high"}
    assert sorted(row[2] for row in standing_a) == list(range(1, len(standing_a) + 1))  # B's students not counted
    assert _standing(tenant_b.institution) == before_b
