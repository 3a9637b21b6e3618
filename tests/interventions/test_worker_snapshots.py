"""On a real worker, a finished rescore leaves a snapshot of the flagged workload (the dashboard's history)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from institutions.models import Job, JobStatus
from institutions.scoping import institution_scope
from interventions.models import RiskSnapshot
from predictions.models import LatestPrediction
from predictions.services.requests import rescore_request
from predictions.services.training import model_version_train
from tests.predictions.conftest import add_population, fast_settings

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_rescore_on_a_real_worker_records_a_risk_snapshot(celery_worker_process, tenant_a):
    institution = tenant_a.institution
    add_population(institution)
    fast_settings(institution)
    with institution_scope(institution):
        model_version_train(institution=institution)  # in-process; the rescore goes to the worker
        rescore_request(institution=institution, created_by=tenant_a.admin)
    deadline = time.monotonic() + 180
    snapshot = None
    while time.monotonic() < deadline:
        finished = Job.objects.for_institution(institution).filter(kind="rescore", status=JobStatus.SUCCEEDED)
        snapshot = RiskSnapshot.objects.for_institution(institution).filter(job__in=finished).first()
        if snapshot is not None:
            break
        time.sleep(0.3)
    assert snapshot is not None, Path(celery_worker_process["log"]).read_text()[-3000:]
    latest = LatestPrediction.objects.for_institution(institution)
    assert snapshot.scored == latest.count() > 0
    assert set(snapshot.flagged_student_ids) == set(latest.filter(flagged=True).values_list("student_id", flat=True))
