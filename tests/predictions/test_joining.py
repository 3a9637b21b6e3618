"""Joining never loses work: a request joins a job of its kind only if that job will cover it.

A queued job reads its data when it starts, so it covers any request (a ``full`` one makes it
full); a running one has already read its data, so a request arriving then gets a follow-up job
that waits for it and is sent when it finishes.
"""

from __future__ import annotations

import pytest

from institutions.jobs import job_claim, job_succeed
from institutions.models import Job, JobKind, JobStatus
from institutions.scoping import institution_scope
from predictions.services.requests import rescore_request, retrain_request

pytestmark = pytest.mark.django_db


def _job(institution, pk) -> Job:
    return Job.objects.for_institution(institution).get(pk=pk)


def _start(institution, job) -> Job:
    claimed = job_claim(institution=institution, job_id=job.pk)
    assert claimed is not None and claimed.status == JobStatus.RUNNING
    return claimed


def test_a_request_joins_the_queued_rescore_and_a_full_one_makes_it_full(tenant_a):
    institution = tenant_a.institution
    with institution_scope(institution):
        first, created = rescore_request(institution=institution, triggered_by="import")
        assert created and first.params == {"full": False}
        joined, created = rescore_request(institution=institution)
        assert not created and joined.pk == first.pk
        full, created = rescore_request(institution=institution, full=True)
    assert not created and full.pk == first.pk
    assert _job(institution, first.pk).params["full"] is True


def test_a_request_during_a_running_rescore_queues_a_follow_up_after_it(tenants):
    a, b = tenants
    institution = a.institution
    with institution_scope(institution):
        first, _ = rescore_request(institution=institution)
        running = _start(institution, first)
        # An import committed after the running rescore chose its students: it asks again.
        follow_up, created = rescore_request(institution=institution, triggered_by="import")
        assert created and follow_up.pk != running.pk and follow_up.waits_for_id == running.pk
        assert follow_up.status == JobStatus.QUEUED and follow_up.dispatched_at is None  # not sent yet
        # Later requests join the waiting follow-up (and a full one makes it full): one runs, one waits.
        again, created = rescore_request(institution=institution, full=True)
        assert not created and again.pk == follow_up.pk
        assert _job(institution, follow_up.pk).params["full"] is True
    with institution_scope(b.institution):
        other, created = rescore_request(institution=b.institution)
    assert created and other.waits_for_id is None  # B's request never waits for A's job


def test_a_full_request_during_an_incremental_rescore_is_not_turned_into_it(tenant_a):
    institution = tenant_a.institution
    with institution_scope(institution):
        first, _ = rescore_request(institution=institution)
        running = _start(institution, first)
        full, created = rescore_request(institution=institution, full=True)
    assert created and full.params == {"full": True} and full.waits_for_id == running.pk
    assert _job(institution, running.pk).params == {"full": False}


def test_the_follow_up_is_sent_when_the_running_job_finishes(tenant_a, django_capture_on_commit_callbacks):
    institution = tenant_a.institution
    with institution_scope(institution):
        first, _ = rescore_request(institution=institution)
        running = _start(institution, first)
        with django_capture_on_commit_callbacks(execute=True):
            follow_up, _ = rescore_request(institution=institution)
        assert _job(institution, follow_up.pk).status == JobStatus.QUEUED  # waits while the first runs
        job_succeed(running)  # tasks run in-process here: the follow-up ran now
    done = _job(institution, follow_up.pk)
    assert done.status == JobStatus.SUCCEEDED and done.attempts == 1


def test_a_retrain_requested_during_a_running_one_waits_for_it(tenant_a):
    institution = tenant_a.institution
    with institution_scope(institution):
        first, _ = retrain_request(institution=institution)
        running = _start(institution, first)
        follow_up, created = retrain_request(institution=institution, triggered_by="schedule")
        joined, joined_created = retrain_request(institution=institution)
    assert created and follow_up.waits_for_id == running.pk and follow_up.kind == JobKind.RETRAIN
    assert not joined_created and joined.pk == follow_up.pk
