"""Leases, the sweeper, the atomic claim, the re-dispatcher and cancelling (institutions.jobs).

Every test holds two institutions: the sweeper and the dispatcher work across all of them, and
cancelling is an institution's own business (another's job is a 404).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, connections
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from institutions.db_roles import owner_session
from institutions.jobs import (
    JobCancelled,
    JobLeaseLost,
    job_cancel,
    job_claim,
    job_create,
    job_dispatch_pending,
    job_fail,
    job_mark_running,
    job_progress,
    job_record_cancelled,
    job_requeue_after_interruption,
    job_succeed,
    job_sweep,
)
from institutions.models import Job, JobKind, JobStatus
from institutions.tasks import sweep_expired_jobs, worker_health_check

pytestmark = pytest.mark.django_db


def _job(institution, pk) -> Job:
    return Job.objects.for_institution(institution).get(pk=pk)


def _running(institution, kind=JobKind.HEALTH_CHECK) -> Job:
    job, _ = job_create(institution=institution, kind=kind)
    claimed = job_claim(institution=institution, job_id=job.pk)
    assert claimed is not None
    return claimed


def _expire(job: Job, *, seconds: int = 5) -> None:
    Job.objects.for_institution(job.institution).filter(pk=job.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=seconds))


# --- the claim: a job runs once however often its message arrives ------------------------------

def test_claim_is_atomic_a_second_claim_of_the_same_job_gets_nothing(tenant_a):
    job, _ = job_create(institution=tenant_a.institution, kind=JobKind.HEALTH_CHECK)
    first = job_claim(institution=tenant_a.institution, job_id=job.pk)
    assert first.status == JobStatus.RUNNING and first.attempts == 1
    assert first.lease_expires_at > timezone.now()
    assert job_claim(institution=tenant_a.institution, job_id=job.pk) is None  # held under a live lease
    assert _job(tenant_a.institution, job.pk).attempts == 1


def test_a_message_arriving_twice_runs_the_job_once(tenants):
    a, b = tenants
    job, _ = job_create(institution=a.institution, kind=JobKind.HEALTH_CHECK)
    for _ in range(2):  # a re-send and the original both delivered
        worker_health_check.apply(kwargs={"institution_id": a.institution.pk, "job_id": job.pk})
    done = _job(a.institution, job.pk)
    assert done.status == JobStatus.SUCCEEDED and done.attempts == 1
    worker_health_check.apply(kwargs={"institution_id": b.institution.pk, "job_id": job.pk})
    assert _job(a.institution, job.pk).attempts == 1  # B's message naming A's job claims nothing


def test_a_redelivered_message_takes_over_a_job_whose_lease_ran_out(tenant_a):
    job = _running(tenant_a.institution)
    _expire(job)
    again = job_claim(institution=tenant_a.institution, job_id=job.pk)
    assert again is not None and again.attempts == 2


@override_settings(JOB_MAX_ATTEMPTS=2)
def test_no_takeover_once_the_attempts_are_used_up(tenant_a):
    job = _running(tenant_a.institution)
    _expire(job)
    assert job_claim(institution=tenant_a.institution, job_id=job.pk).attempts == 2
    _expire(job)
    assert job_claim(institution=tenant_a.institution, job_id=job.pk) is None


# --- leases: renewed by progress, lost to a takeover --------------------------------------------

def test_progress_renews_the_lease(tenant_a):
    job = _running(tenant_a.institution)
    _expire(job, seconds=60)
    job_progress(job, done=1, total=10, stage="working")
    renewed = _job(tenant_a.institution, job.pk)
    assert renewed.lease_expires_at > timezone.now() and renewed.progress_done == 1


def test_progress_of_an_attempt_that_was_taken_over_raises_lease_lost(tenant_a):
    job = _running(tenant_a.institution)
    _expire(job)
    assert job_claim(institution=tenant_a.institution, job_id=job.pk).attempts == 2
    with pytest.raises(JobLeaseLost):
        job_progress(job, done=5)  # the old attempt (1) must stop and write nothing more
    job_succeed(job)  # and its late "done" does not overwrite the new attempt's job
    assert _job(tenant_a.institution, job.pk).status == JobStatus.RUNNING


# --- the sweeper ---------------------------------------------------------------------------------

def test_sweeper_requeues_a_job_whose_lease_ran_out_and_leaves_live_ones_alone(tenants):
    a, b = tenants
    dead = _running(a.institution)
    alive = _running(b.institution)
    _expire(dead)
    outcome = sweep_expired_jobs.apply().get()
    assert outcome == {"requeued": 1, "failed": 0, "cancelled": 0}
    # Re-queued and sent again; in tests the task runs in-process, so the second attempt finished it.
    swept = _job(a.institution, dead.pk)
    assert swept.status == JobStatus.SUCCEEDED and swept.attempts == 2
    assert _job(b.institution, alive.pk).status == JobStatus.RUNNING


def test_sweeper_requeues_a_running_job_from_before_leases_by_its_last_update(tenant_a):
    job = _running(tenant_a.institution)
    Job.objects.for_institution(tenant_a.institution).filter(pk=job.pk).update(
        lease_expires_at=None, updated_at=timezone.now() - timedelta(hours=3))
    assert job_sweep()["requeued"] == 1


@override_settings(JOB_MAX_ATTEMPTS=2)
def test_sweeper_fails_a_job_after_its_attempts_with_a_visible_reason(tenants):
    a, b = tenants
    job = _running(a.institution)
    _expire(job)
    job_claim(institution=a.institution, job_id=job.pk)  # the second attempt, which dies too
    _expire(job)
    assert job_sweep() == {"requeued": 0, "failed": 1, "cancelled": 0}
    failed = _job(a.institution, job.pk)
    assert failed.status == JobStatus.FAILED and failed.finished_at is not None
    assert "stopped responding on each of its 2 attempts" in failed.error
    assert not Job.objects.for_institution(b.institution).exists()


def test_sweeper_records_a_cancel_asked_of_a_job_whose_worker_died(tenant_a):
    job = _running(tenant_a.institution)
    job_cancel(job=job, user=tenant_a.admin)
    _expire(job)
    assert job_sweep()["cancelled"] == 1
    cancelled = _job(tenant_a.institution, job.pk)
    assert cancelled.status == JobStatus.CANCELLED and "alpha-admin" in cancelled.error


# --- cancelling ----------------------------------------------------------------------------------

def test_cancelling_a_queued_job_cancels_it_at_once_and_records_who(tenant_a):
    job, _ = job_create(institution=tenant_a.institution, kind=JobKind.HEALTH_CHECK)
    cancelled = job_cancel(job=job, user=tenant_a.admin)
    assert cancelled.status == JobStatus.CANCELLED and cancelled.cancelled_by == tenant_a.admin
    assert "alpha-admin" in cancelled.error
    assert job_claim(institution=tenant_a.institution, job_id=job.pk) is None  # its message does nothing


def test_a_running_job_stops_at_its_next_progress_call_once_cancelled(tenant_a):
    job = _running(tenant_a.institution)
    job_cancel(job=job, user=tenant_a.admin)
    assert _job(tenant_a.institution, job.pk).status == JobStatus.RUNNING  # until its next step
    with pytest.raises(JobCancelled):
        job_progress(job, done=3, stage="chunk 2")
    job_record_cancelled(job)
    stopped = _job(tenant_a.institution, job.pk)
    assert stopped.status == JobStatus.CANCELLED and stopped.finished_at is not None
    assert "alpha-admin" in stopped.error


def test_a_finished_job_cannot_be_cancelled(tenant_a):
    from institutions.jobs import JobNotCancellable

    job, _ = job_create(institution=tenant_a.institution, kind=JobKind.HEALTH_CHECK)
    worker_health_check.apply(kwargs={"institution_id": tenant_a.institution.pk, "job_id": job.pk})
    with pytest.raises(JobNotCancellable):
        job_cancel(job=_job(tenant_a.institution, job.pk), user=tenant_a.admin)
    assert _job(tenant_a.institution, job.pk).status == JobStatus.SUCCEEDED


def test_a_run_started_by_hand_refuses_a_job_cancelled_before_it_began(tenant_a):
    job, _ = job_create(institution=tenant_a.institution, kind=JobKind.HEALTH_CHECK)
    job_cancel(job=job, user=tenant_a.admin)
    with pytest.raises(JobCancelled):
        job_mark_running(job, stage="starting")


# --- the dispatcher: orphans re-sent, follow-ups released ----------------------------------------

def test_dispatcher_resends_a_job_queued_long_after_it_was_sent_and_not_a_recent_one(tenants):
    a, b = tenants
    lost, _ = job_create(institution=a.institution, kind=JobKind.HEALTH_CHECK)
    recent, _ = job_create(institution=b.institution, kind=JobKind.HEALTH_CHECK)
    now = timezone.now()
    Job.objects.for_institution(a.institution).filter(pk=lost.pk).update(dispatched_at=now - timedelta(hours=1))
    Job.objects.for_institution(b.institution).filter(pk=recent.pk).update(dispatched_at=now)
    assert job_dispatch_pending() == 1
    assert _job(a.institution, lost.pk).status == JobStatus.SUCCEEDED  # the re-sent message ran it
    assert _job(b.institution, recent.pk).status == JobStatus.QUEUED


def test_dispatcher_holds_a_follow_up_until_the_job_before_it_finishes(tenant_a):
    running = _running(tenant_a.institution)
    follow_up = Job.objects.for_institution(tenant_a.institution).create(kind=JobKind.HEALTH_CHECK,
                                                                          waits_for=running)
    assert job_dispatch_pending() == 0
    # Even a stray message for it claims nothing while its predecessor runs.
    assert job_claim(institution=tenant_a.institution, job_id=follow_up.pk) is None
    job_succeed(running)  # finishing sends the follow-up (run in-process here)
    assert _job(tenant_a.institution, follow_up.pk).status == JobStatus.SUCCEEDED


# --- failures recorded on a fresh connection -----------------------------------------------------

def _kill_own_backend() -> None:
    """End this connection's server process from another connection, as a database restart does."""
    pid = connection.cursor().connection.info.backend_pid
    # As the owner (the login): the application role may not end a backend whose login is a superuser.
    with owner_session():
        other = connections.create_connection("default")
        try:
            with other.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        finally:
            other.close()


@pytest.mark.django_db(transaction=True)
def test_a_failure_is_recorded_on_a_fresh_connection_when_the_tasks_own_one_died(tenant_a):
    job = _running(tenant_a.institution)
    _kill_own_backend()
    job_fail(job, error="Scoring failed: server closed the connection unexpectedly")
    connection.close()
    failed = _job(tenant_a.institution, job.pk)
    assert failed.status == JobStatus.FAILED and "server closed" in failed.error


@pytest.mark.django_db(transaction=True)
def test_a_job_interrupted_by_a_lost_database_is_requeued_then_failed_after_its_attempts(tenant_a):
    job = _running(tenant_a.institution)
    _kill_own_backend()
    job_requeue_after_interruption(job, reason="the database connection was lost")
    connection.close()
    requeued = _job(tenant_a.institution, job.pk)
    assert requeued.status == JobStatus.QUEUED and requeued.dispatched_at is None
    assert "re-queued after attempt 1" in requeued.stage
    with override_settings(JOB_MAX_ATTEMPTS=1):
        job_requeue_after_interruption(job, reason="the database connection was lost")
    failed = _job(tenant_a.institution, job.pk)
    assert failed.status == JobStatus.FAILED and "given up" in failed.error


# --- cancel from the API and from the page -------------------------------------------------------

def _api_cancel(client, tenant, job):
    return client.post(f"/api/v1/institutions/{tenant.institution.slug}/jobs/{job.pk}/cancel/")


def test_api_admin_cancels_a_queued_job_and_another_institution_gets_404(tenants, api_client):
    a, b = tenants
    job_a, _ = job_create(institution=a.institution, kind=JobKind.RESCORE)
    job_b, _ = job_create(institution=b.institution, kind=JobKind.RESCORE)
    api_client.force_authenticate(a.admin)
    response = _api_cancel(api_client, a, job_a)
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "cancelled"
    # A's admin naming B's job, through A's URL and through B's: both a 404, B's job untouched.
    assert api_client.post(f"/api/v1/institutions/{a.institution.slug}/jobs/{job_b.pk}/cancel/").status_code == 404
    assert _api_cancel(api_client, b, job_b).status_code == 404
    assert _job(b.institution, job_b.pk).status == JobStatus.QUEUED


def test_api_cancel_of_a_finished_job_is_a_409_with_a_code(tenant_a, api_client):
    job, _ = job_create(institution=tenant_a.institution, kind=JobKind.HEALTH_CHECK)
    worker_health_check.apply(kwargs={"institution_id": tenant_a.institution.pk, "job_id": job.pk})
    api_client.force_authenticate(tenant_a.admin)
    response = _api_cancel(api_client, tenant_a, job)
    assert response.status_code == 409 and response.json()["code"] == "job_finished"


def test_api_cancel_needs_the_right_role_or_key_scope(tenants, api_client):
    from rest_framework.test import APIClient

    from institutions.api_keys import api_key_create

    a, _ = tenants
    rescore, _ = job_create(institution=a.institution, kind=JobKind.RESCORE)
    importing, _ = job_create(institution=a.institution, kind=JobKind.IMPORT)
    api_client.force_authenticate(a.viewer)
    assert _api_cancel(api_client, a, rescore).status_code == 403
    _, imports_only = api_key_create(institution=a.institution, name="SIS", scopes=["imports:write"],
                                     created_by=a.admin)
    keyed = APIClient()
    keyed.credentials(HTTP_AUTHORIZATION=f"Bearer {imports_only}")
    assert _api_cancel(keyed, a, rescore).status_code == 403  # a model job needs predictions:write
    assert _job(a.institution, rescore.pk).status == JobStatus.QUEUED
    assert _api_cancel(keyed, a, importing).status_code == 200
    assert _job(a.institution, importing.pk).status == JobStatus.CANCELLED


def test_page_admin_cancels_a_job_other_institutions_admin_gets_404(tenants, client):
    a, b = tenants
    job, _ = job_create(institution=a.institution, kind=JobKind.RESCORE)
    client.force_login(b.admin)
    assert client.post(reverse("job-cancel", args=[a.institution.slug, job.pk])).status_code == 404
    assert client.post(reverse("job-cancel", args=[b.institution.slug, job.pk])).status_code == 404
    client.force_login(a.advisor)
    assert client.post(reverse("job-cancel", args=[a.institution.slug, job.pk])).status_code == 403
    assert _job(a.institution, job.pk).status == JobStatus.QUEUED
    client.force_login(a.admin)
    page = client.get(reverse("prediction-job-list", args=[a.institution.slug]))
    assert f"Cancel job #{job.pk}" in page.content.decode()
    response = client.post(reverse("job-cancel", args=[a.institution.slug, job.pk]))
    assert response.status_code == 302
    assert _job(a.institution, job.pk).status == JobStatus.CANCELLED


# --- an import stopped outside its task opens its upload again ----------------------------------

def _committing_upload(tenant):
    from students.models import ImportUpload, ImportUploadStatus

    upload = ImportUpload.objects.for_institution(tenant.institution).create(
        original_name="students.csv", stored_name=f"imports/{tenant.institution.pk}/x.csv", size=10,
        status=ImportUploadStatus.COMMITTING)
    job, _ = job_create(institution=tenant.institution, kind=JobKind.IMPORT, params={"upload_id": upload.pk,
                                                                                      "commit": True})
    upload.commit_job = job
    upload.save(update_fields=["commit_job"])
    return upload, job


def test_cancelling_a_queued_import_opens_its_upload_again_and_not_another_institutions(tenants):
    from students.models import ImportUpload, ImportUploadStatus

    a, b = tenants
    upload_a, job_a = _committing_upload(a)
    upload_b, _ = _committing_upload(b)
    job_cancel(job=job_a, user=a.admin)
    assert ImportUpload.objects.for_institution(a.institution).get(pk=upload_a.pk).status == \
        ImportUploadStatus.UPLOADED
    assert ImportUpload.objects.for_institution(b.institution).get(pk=upload_b.pk).status == \
        ImportUploadStatus.COMMITTING


@override_settings(JOB_MAX_ATTEMPTS=1)
def test_an_import_the_sweeper_gives_up_opens_its_upload_again(tenant_a, client):
    from students.models import ImportUpload, ImportUploadStatus

    upload, job = _committing_upload(tenant_a)
    job_claim(institution=tenant_a.institution, job_id=job.pk)
    _expire(job)
    assert job_sweep()["failed"] == 1
    assert ImportUpload.objects.for_institution(tenant_a.institution).get(pk=upload.pk).status == \
        ImportUploadStatus.UPLOADED
    client.force_login(tenant_a.admin)
    page = client.get(reverse("import-detail", args=[tenant_a.institution.slug, upload.pk])).content.decode()
    assert "stopped responding" in page and "Nothing was written" in page


def test_staff_cancel_jobs_from_the_admin_and_who_did_it_is_recorded(tenants, client):
    from tests.factories import UserFactory

    a, b = tenants
    queued, _ = job_create(institution=a.institution, kind=JobKind.RESCORE)
    running = _running(b.institution)
    staff = UserFactory(username="staff", is_staff=True, is_superuser=True)
    client.force_login(staff)
    assert client.get("/admin/institutions/job/").status_code == 200
    response = client.post("/admin/institutions/job/", {"action": "cancel_jobs",
                                                        "_selected_action": [queued.pk, running.pk]})
    assert response.status_code == 302
    assert _job(a.institution, queued.pk).status == JobStatus.CANCELLED
    asked = _job(b.institution, running.pk)
    assert asked.status == JobStatus.RUNNING and asked.cancel_requested_at and asked.cancelled_by == staff


@pytest.mark.django_db(transaction=True)
@override_settings(JOB_LEASE_SECONDS=2, JOB_HEARTBEAT_SECONDS=1)
def test_the_heartbeat_keeps_a_silent_running_job_from_the_sweeper_and_stops_with_it(tenant_a):
    import time

    job, _ = job_create(institution=tenant_a.institution, kind=JobKind.HEALTH_CHECK)
    job_mark_running(job, total=1, stage="a long step without progress calls")
    time.sleep(3.5)  # longer than the lease: only the heartbeat renewed it
    assert _job(tenant_a.institution, job.pk).lease_expires_at > timezone.now()
    assert job_sweep() == {"requeued": 0, "failed": 0, "cancelled": 0}
    job_succeed(job)
    done = _job(tenant_a.institution, job.pk)
    assert done.status == JobStatus.SUCCEEDED and done.lease_expires_at is None
    time.sleep(1.5)  # a stopped heartbeat writes no lease again
    assert _job(tenant_a.institution, job.pk).lease_expires_at is None
