"""Stored predictions for the workspace's tests.

Most page tests need students with a risk, a band, a rank and factors, not a model: ``record_run``
stores one scoring run the way the predictions app does (Prediction history rows plus the ranked
LatestPrediction table, through its own ranking service). Tests of the what-if use a real trained
model (see ``trained_a`` in tests/predictions/conftest.py).
"""

from __future__ import annotations

import datetime
import hashlib

import pytest
from django.utils import timezone

from institutions.models import Job, JobKind, JobStatus
from interventions.services import risk_snapshot_record
from predictions.models import LatestPrediction, ModelStatus, ModelVersion, Prediction
from predictions.selectors import prediction_settings_get
from predictions.services.ranking import latest_predictions_rank
from tests.predictions.conftest import add_population, fast_settings, trained_a

from .alerts_fixtures import alert_world

FACTORS = [
    {"feature": "units_approved", "label": "Units approved", "value": 2.0, "display_value": "2",
     "contribution": 0.9, "direction": "raises", "actionable": True, "text": "2 units approved: raises risk"},
    {"feature": "tuition_up_to_date", "label": "Tuition up to date", "value": True, "display_value": "yes",
     "contribution": -0.4, "direction": "lowers", "actionable": True, "text": "Tuition up to date: lowers risk"},
]


def live_version(institution) -> ModelVersion:
    version = ModelVersion.objects.for_institution(institution).filter(status=ModelStatus.LIVE).first()
    if version is None:
        artifact = b"{}"
        version = ModelVersion.objects.for_institution(institution).create(
            number=1, status=ModelStatus.LIVE, artifact=artifact, artifact_sha256=hashlib.sha256(artifact).hexdigest(),
            training_size=240, metrics={"roc_auc": 0.81, "pr_auc": 0.62, "brier": 0.14},
            promoted_at=timezone.now(),
        )
    return version


def record_run(institution, risks: dict, *, when: datetime.datetime | None = None, snapshot: bool = True) -> Job:
    """Store a scoring run giving each student (object or pk) the risk in ``risks``; rank and flag them."""
    when = when or timezone.now()
    version = live_version(institution)
    job = Job.objects.for_institution(institution).create(
        kind=JobKind.RESCORE, status=JobStatus.SUCCEEDED, finished_at=when
    )
    settings = prediction_settings_get(institution=institution)
    for student, risk in risks.items():
        student_id = getattr(student, "pk", student)
        prediction = Prediction.objects.for_institution(institution).create(
            student_id=student_id, model_version=version, job=job, risk=risk, band="low", base_value=-1.0,
            factors=FACTORS, input_fingerprint=f"{student_id}-{risk}",
        )
        Prediction.objects.for_institution(institution).filter(pk=prediction.pk).update(created_at=when)
        LatestPrediction.objects.for_institution(institution).update_or_create(
            student_id=student_id,
            defaults={"prediction": prediction, "model_version": version, "risk": risk, "band": "low",
                      "input_fingerprint": prediction.input_fingerprint, "scored_at": when},
        )
    latest_predictions_rank(institution=institution, settings=settings)
    if snapshot:
        risk_snapshot_record(institution=institution, job=job)
    return job


@pytest.fixture
def scored(tenants):
    """Both tenants scored once. Only current students are scored (students[2] and [5] dropped out):
    students[0] and [1] at high risk (flagged by the default 0.5 threshold), [3] and [4] at low risk."""
    for tenant in tenants:
        s = tenant.students
        tenant.run = record_run(tenant.institution, {s[0]: 0.91, s[1]: 0.75, s[3]: 0.2, s[4]: 0.1})
    return tenants


__all__ = ["add_population", "alert_world", "fast_settings", "live_version", "record_run", "trained_a"]
