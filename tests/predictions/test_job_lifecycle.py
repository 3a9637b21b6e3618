"""The job lifecycle shared by the worker and the command: running, succeeded or failed, rescore_finished."""

from __future__ import annotations

import pytest
from celery.exceptions import SoftTimeLimitExceeded

from institutions.jobs import job_create
from institutions.models import Job, JobKind, JobStatus
from institutions.scoping import institution_scope
from predictions.services import jobs
from predictions.signals import rescore_finished

pytestmark = pytest.mark.django_db


@pytest.fixture
def finished_rescores():
    """What every rescore_finished receiver would hear: (institution, job status at that moment, scored)."""
    heard = []

    def receiver(sender, *, institution, job, outcome, **kwargs):
        status = Job.objects.for_institution(institution).get(pk=job.pk).status
        heard.append((institution, status, outcome.scored))

    rescore_finished.connect(receiver, dispatch_uid="test-finished-rescores")
    yield heard
    rescore_finished.disconnect(dispatch_uid="test-finished-rescores")


def _run_rescore(institution):
    job, _ = job_create(institution=institution, kind=JobKind.RESCORE, params={"full": True})
    with institution_scope(institution):
        outcome = jobs.rescore_job_run(institution=institution, job=job)
    return Job.objects.for_institution(institution).get(pk=job.pk), outcome


def test_rescore_job_succeeds_then_sends_rescore_finished_once(trained_a, tenant_b, finished_rescores):
    job, outcome = _run_rescore(trained_a.institution)
    assert job.status == JobStatus.SUCCEEDED and job.attempts == 1
    assert job.counts["scored"] == outcome.scored > 0
    assert finished_rescores == [(trained_a.institution, JobStatus.SUCCEEDED, outcome.scored)]


def test_rescore_stopped_by_the_time_limit_fails_the_job_and_sends_nothing(trained_a, finished_rescores,
                                                                           monkeypatch):
    def too_slow(**kwargs):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(jobs, "predictions_rescore", too_slow)
    job, outcome = _run_rescore(trained_a.institution)
    assert outcome is None
    assert job.status == JobStatus.FAILED and "time limit" in job.error
    assert finished_rescores == []


def test_a_failing_reaction_does_not_fail_the_finished_rescore(trained_a):
    def broken(sender, **kwargs):
        raise RuntimeError("reaction failed")

    rescore_finished.connect(broken, dispatch_uid="test-broken-reaction")
    try:
        job, outcome = _run_rescore(trained_a.institution)
    finally:
        rescore_finished.disconnect(dispatch_uid="test-broken-reaction")
    assert outcome is not None and job.status == JobStatus.SUCCEEDED


def test_retrain_with_too_few_outcomes_fails_the_job_with_the_reason(tenant_a):
    job, _ = job_create(institution=tenant_a.institution, kind=JobKind.RETRAIN)
    with institution_scope(tenant_a.institution):
        version = jobs.retrain_job_run(institution=tenant_a.institution, job=job)
    job = Job.objects.for_institution(tenant_a.institution).get(pk=job.pk)
    assert version is None
    assert job.status == JobStatus.FAILED and "needs at least" in job.error and job.finished_at is not None
