"""The operator/demo command trains and scores in-process, and refuses an unknown institution."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from institutions.models import Job, JobStatus
from interventions.models import RiskSnapshot
from predictions.models import LatestPrediction, ModelStatus, ModelVersion
from students.selectors import current_students

from .conftest import add_population

pytestmark = pytest.mark.django_db(transaction=True)


def test_command_trains_a_live_model_and_scores_every_current_student(tenants, capsys):
    a, b = tenants
    add_population(a.institution)
    call_command("train_and_score", "alpha", "--search-iterations", "1")
    version = ModelVersion.objects.for_institution(a.institution).get()
    assert version.status == ModelStatus.LIVE and version.trigger == "demo"
    assert LatestPrediction.objects.for_institution(a.institution).count() == current_students(
        institution=a.institution).count()
    assert not ModelVersion.objects.for_institution(b.institution).exists()
    out = capsys.readouterr().out
    assert "model v1: live" in out
    # Its jobs ran through the worker's lifecycle: finished on the jobs page, and the rescore's end
    # reached interventions (rescore_finished), which recorded the dashboard's snapshot.
    # (The promotion queues a rescore of its own, which tests run in-process before the command's.)
    jobs = Job.objects.for_institution(a.institution)
    assert set(jobs.values_list("kind", "status")) == {("retrain", JobStatus.SUCCEEDED),
                                                        ("rescore", JobStatus.SUCCEEDED)}
    rescores = set(jobs.filter(kind="rescore").values_list("pk", flat=True))
    assert set(RiskSnapshot.objects.for_institution(a.institution).values_list("job_id", flat=True)) == rescores

    # A second run keeps the version and only rescores what changed (nothing).
    call_command("train_and_score", "alpha")
    assert ModelVersion.objects.for_institution(a.institution).count() == 1
    current = current_students(institution=a.institution).count()
    assert f"{current} current students: 0 scored now, {current} unchanged since their last score" in (
        capsys.readouterr().out)


def test_command_reports_too_few_outcomes_and_unknown_slugs(tenant_a):
    with pytest.raises(CommandError, match="needs at least"):
        call_command("train_and_score", "alpha", "--search-iterations", "1")
    with pytest.raises(CommandError, match="no institution with slug 'nowhere'"):
        call_command("train_and_score", "nowhere")
