"""Faults with real processes: the pool child running a rescore SIGKILLed, cancels and imports during
a rescore, a replayed import, a queued message lost with a Redis restart.

Each test starts its own worker processes on a private queue with a short lease, and plays the
beat's part by calling the sweeper and the dispatcher. They run on the filesystem broker as on
Redis: recovery comes from the lease and the sweeper, not from the broker's redelivery.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from django.test import override_settings

# The job runners register when their task modules load (as the web process's views load them).
import institutions.tasks  # noqa: F401
import students.tasks  # noqa: F401
from institutions.jobs import job_create, job_dispatch_pending
from institutions.models import Job, JobKind, JobStatus
from institutions.scoping import institution_scope
from predictions import frames
from predictions.models import LatestPrediction, Prediction
from students.importing.mapping import mapping_from_dict
from students.importing.uploads import (
    import_job_run,
    import_upload_create_from_path,
    import_upload_set_mapping,
    import_upload_start,
)
from students.models import Student
from students.selectors import current_students
from tests.servers import children_of, wait_for

from .conftest import (
    CHUNK,
    CURRENT,
    assert_healed,
    assert_no_job_running_past_its_lease,
    heal,
    reconnect_broker,
    sweep_after_lease,
    trained_with_a_queued_rescore,
)
from .conftest import job_of as _job

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_the_pool_child_sigkilled_mid_rescore_is_replaced_and_every_student_is_scored_once(workers, tenant_a, tenant_b):
    """The whole worker SIGKILLed (main process and child) is tests/faults/test_worker_restarts.py."""
    institution = tenant_a.institution
    chunk = CHUNK
    job = trained_with_a_queued_rescore(tenant_a, current=CURRENT, chunk=chunk)

    # prefork, as deployed: the worker's main process holds the broker connection and runs the
    # task in a child. The child SIGKILLed (the OOM killer picks the biggest process) is noticed
    # by the main process, which starts a new one and, acks_late with reject-on-worker-lost,
    # hands the message on at once: dropped by the claim while the dead attempt's lease runs.
    first = workers.start(pool="prefork")
    wait_for(lambda: 2 * chunk <= _job(institution, job.pk).progress_done, timeout=120, log=workers.log)
    (child,) = children_of(first.pid)
    os.kill(child, signal.SIGKILL)
    wait_for(lambda: children_of(first.pid) and children_of(first.pid) != [child], timeout=30, log=workers.log)
    assert _job(institution, job.pk).status == JobStatus.RUNNING  # what the issue saw: "Running 23%"
    at_kill = Prediction.objects.for_institution(institution).filter(job=job).count()
    assert at_kill % chunk == 0 and 0 < at_kill < CURRENT  # whole chunks only

    # Beat's part, every second here (every minute in production): either the sweeper re-queues
    # the job once the lease ran out, or the message handed on arrives after that and takes the
    # job over (job_claim); never both.
    finished = heal(institution, job.pk, log=workers.log)
    assert finished.attempts == 2 and first.poll() is None  # the same worker, a new child
    assert_healed(institution, finished, other=tenant_b.institution)


def test_cancel_through_the_api_stops_a_running_rescore_at_its_next_chunk(workers, tenant_a, tenant_b, api_client):
    institution = tenant_a.institution
    chunk = CHUNK
    job = trained_with_a_queued_rescore(tenant_a, current=CURRENT, chunk=chunk)
    workers.start()
    wait_for(lambda: chunk <= _job(institution, job.pk).progress_done, timeout=120, log=workers.log)
    api_client.force_authenticate(tenant_b.admin)
    assert api_client.post(f"/api/v1/institutions/{institution.slug}/jobs/{job.pk}/cancel/").status_code == 404
    api_client.force_authenticate(tenant_a.admin)
    response = api_client.post(f"/api/v1/institutions/{institution.slug}/jobs/{job.pk}/cancel/")
    assert response.status_code == 200 and response.json()["cancel_requested_at"]
    stopped = wait_for(lambda: _job(institution, job.pk).is_finished and _job(institution, job.pk), timeout=60,
                        log=workers.log)
    assert stopped.status == JobStatus.CANCELLED and "alpha-admin" in stopped.error
    stored = Prediction.objects.for_institution(institution).filter(job=job).count()
    assert stored % chunk == 0 and stored < CURRENT  # whole chunks kept, the rest never scored
    assert stopped.lease_expires_at is None


def _write_csv(path: Path, rows: list[tuple[str, float]]) -> Path:
    path.write_text("student_id,units_approved\n" + "".join(f"{sid},{units:g}\n" for sid, units in rows))
    return path


MAPPING = mapping_from_dict({"columns": {"student_id": "external_id",
                                          "units_approved": {"target": "feature", "feature": "units_approved"}}})


def _commit_in_this_process(tenant, path: Path):
    institution = tenant.institution
    with institution_scope(institution):
        upload = import_upload_create_from_path(institution=institution, path=path, user=tenant.admin)
        import_upload_set_mapping(upload=upload, spec=MAPPING)
        job = import_upload_start(upload=upload, commit=True, user=tenant.admin, dispatch=False)
        report = import_job_run(institution=institution, job=job)
    return job, report


def test_an_import_that_commits_mid_rescore_ends_with_every_changed_student_rescored(
    workers, tenant_a, tenant_b, tmp_path
):
    institution = tenant_a.institution
    chunk = CHUNK
    job = trained_with_a_queued_rescore(tenant_a, current=CURRENT, chunk=chunk, full=False)
    workers.start()
    # The rescore has chosen its students and is scoring them when the import commits.
    wait_for(lambda: chunk <= _job(institution, job.pk).progress_done, timeout=120, log=workers.log)
    changed = list(current_students(institution=institution).order_by("-id")[:300])  # scored last, if at all
    _, report = _commit_in_this_process(tenant_a, _write_csv(
        tmp_path / "newer.csv", [(student.external_id, (student.features["units_approved"] + 7) % 31)
                                 for student in changed]))
    assert report.committed and report.updated == len(changed)
    follow_up = Job.objects.for_institution(institution).filter(kind=JobKind.RESCORE, waits_for=job).get()
    assert follow_up.triggered_by == "import"

    done = wait_for(lambda: _job(institution, follow_up.pk).is_finished and _job(institution, follow_up.pk),
                     timeout=240, interval=0.3, log=workers.log)
    assert _job(institution, job.pk).status == JobStatus.SUCCEEDED
    assert done.status == JobStatus.SUCCEEDED, done.error
    # Every changed student's latest risk was computed from the values the import wrote.
    with institution_scope(institution):
        keys = list(_live_model_keys(institution))
        fingerprints = dict(frames.current_student_fingerprints(institution=institution, keys=keys))
    latest = dict(LatestPrediction.objects.for_institution(institution).values_list("student_id",
                                                                                     "input_fingerprint"))
    stale = [student.pk for student in changed if latest.get(student.pk) != fingerprints[student.pk]]
    assert stale == []
    assert not LatestPrediction.objects.for_institution(tenant_b.institution).exists()


def _live_model_keys(institution):
    from predictions.model_store import load_model
    from predictions.selectors import model_version_live

    return load_model(model_version_live(institution=institution)).feature_keys


def test_import_killed_then_newer_upload_commits_then_redelivered_is_refused_not_replayed(
    workers, tenant_a, tenant_b, tmp_path
):
    institution = tenant_a.institution
    # An older file, large enough that its worker can be killed while it runs.
    older = _write_csv(tmp_path / "older.csv", [(f"S{i:03d}", 1) for i in range(1, 7)]
                       + [(f"N{i:06d}", i % 30) for i in range(60_000)])
    with institution_scope(institution):
        upload = import_upload_create_from_path(institution=institution, path=older, user=tenant_a.admin)
        import_upload_set_mapping(upload=upload, spec=MAPPING)
        job = import_upload_start(upload=upload, commit=True, user=tenant_a.admin)
    first = workers.start()
    wait_for(lambda: "expected_students" in _job(institution, job.pk).params
              and _job(institution, job.pk).progress_done > 0, timeout=120, log=workers.log)
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    assert _job(institution, job.pk).status == JobStatus.RUNNING

    newer_job, report = _commit_in_this_process(tenant_a, _write_csv(tmp_path / "newer.csv",
                                                                     [(f"S{i:03d}", 20) for i in range(1, 7)]))
    assert report.committed and _job(institution, newer_job.pk).status == JobStatus.SUCCEEDED

    assert sweep_after_lease(institution, job.pk)["requeued"] == 1
    workers.start()
    refused = wait_for(lambda: _job(institution, job.pk).is_finished and _job(institution, job.pk), timeout=120,
                        log=workers.log)
    assert refused.status == JobStatus.FAILED and refused.attempts == 2
    assert refused.result["file_error"]["code"] == "students_changed"
    assert "overwrite newer data" in refused.error
    students = Student.objects.for_institution(institution)
    assert sorted(students.filter(external_id__startswith="S").values_list("features__units_approved", flat=True)) \
        == [20] * 6
    assert not students.filter(external_id__startswith="N").exists()
    assert Student.objects.for_institution(tenant_b.institution).filter(features__units_approved=20).count() == 0


@override_settings(JOB_REDISPATCH_SECONDS=0)
def test_redis_restarting_empty_loses_the_queued_message_and_the_dispatcher_sends_the_job_again(
    own_broker, workers, tenant_a, tenant_b
):
    from institutions.jobs import job_dispatch

    institution = tenant_a.institution
    job, _ = job_create(institution=institution, kind=JobKind.HEALTH_CHECK)
    assert job_dispatch(job) and _job(institution, job.pk).dispatched_at is not None
    own_broker.stop()
    own_broker.start()  # no persistence: the queue is gone
    reconnect_broker()
    workers.start()
    wait_for(lambda: "ready" in workers.log.read_text(), timeout=60, log=workers.log)
    time.sleep(1)
    assert _job(institution, job.pk).status == JobStatus.QUEUED  # "queued forever", until now
    assert job_dispatch_pending() == 1
    wait_for(lambda: _job(institution, job.pk).is_finished, timeout=60, log=workers.log)
    job_dispatch_pending()  # a late second re-send finds nothing queued, or is dropped by the claim
    time.sleep(1)
    done = _job(institution, job.pk)
    assert done.status == JobStatus.SUCCEEDED and done.attempts == 1
    assert not Job.objects.for_institution(tenant_b.institution).exists()
    assert_no_job_running_past_its_lease()
