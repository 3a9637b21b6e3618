"""Faults with real processes: workers SIGKILLed mid-job, cancels and imports during a rescore.

Each test starts its own worker processes on a private queue (``CELERY_TASK_DEFAULT_QUEUE``, so
what a worker queues itself, a follow-up or a re-queued job, stays on it) with a short lease, and
plays the beat's part by calling the sweeper and the dispatcher. They run on the filesystem broker
as on Redis: recovery comes from the lease and the sweeper, not from the broker's redelivery.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.test import override_settings
from django.utils import timezone

# The job runners register when their task modules load (as the web process's views load them).
import institutions.tasks  # noqa: F401
import students.tasks  # noqa: F401
from institutions.jobs import job_create, job_dispatch_pending, job_sweep
from institutions.models import Job, JobKind, JobStatus
from institutions.scoping import institution_scope
from predictions import frames
from predictions.models import LatestPrediction, ModelStatus, Prediction
from predictions.services.requests import rescore_request
from predictions.services.training import model_version_train
from students.importing.mapping import mapping_from_dict
from students.importing.uploads import (
    import_job_run,
    import_upload_create_from_path,
    import_upload_set_mapping,
    import_upload_start,
)
from students.models import Student
from students.selectors import current_students
from tests.conftest import database_url_of_test_database

from .conftest import add_population, fast_settings
from .test_worker_jobs import _wait_for

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LEASE_SECONDS = 3


def _job(institution, pk) -> Job:
    return Job.objects.for_institution(institution).get(pk=pk)


@pytest.fixture
def workers(celery_worker_process):
    """Start workers on a queue of this test's own; every one is stopped at the end."""
    from dropout_platform.celery import app

    queue = f"faults-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    log_path = PROJECT_ROOT / "var" / f"test-fault-worker-{os.getpid()}.log"
    log_path.write_text("")
    env = {**os.environ, "DATABASE_URL": database_url_of_test_database(),
           "DJANGO_SETTINGS_MODULE": "dropout_platform.settings_test", "PYTHONPATH": str(PROJECT_ROOT),
           "CELERY_TASK_DEFAULT_QUEUE": queue, "JOB_LEASE_SECONDS": str(LEASE_SECONDS),
           "JOB_HEARTBEAT_SECONDS": "1",
           # Long: the broker's own redelivery must not be what heals these faults.
           "CELERY_VISIBILITY_TIMEOUT": "3600"}
    processes: list[subprocess.Popen] = []
    previous = app.conf.task_default_queue
    app.conf.task_default_queue = queue

    def start() -> subprocess.Popen:
        log = open(log_path, "a")  # noqa: SIM115 - the process owns it until it exits
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "dropout_platform", "worker", "--loglevel=INFO", "--pool=solo",
             "--concurrency=1", "--without-gossip", "--without-mingle", "--without-heartbeat", "-Q", queue,
             "-n", f"{queue}-{uuid.uuid4().hex[:6]}@%h"],
            cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        processes.append(process)
        return process

    yield {"start": start, "log": str(log_path), "queue": queue}
    app.conf.task_default_queue = previous
    for process in processes:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def _trained_with_a_queued_rescore(tenant, *, current: int, chunk: int, full: bool = True) -> Job:
    institution = tenant.institution
    add_population(institution, known=240, current=current)
    fast_settings(institution, auto_promote=True)
    with institution_scope(institution):
        version = model_version_train(institution=institution)
        assert version.status == ModelStatus.LIVE
        job, _ = rescore_request(institution=institution, full=full)  # joins the one promotion queued
    Job.objects.for_institution(institution).filter(pk=job.pk).update(params={"full": full, "chunk_size": chunk})
    return job


def _sweep_after_lease(institution, job_pk):
    """Beat's part: once the dead attempt's lease ran out, the sweeper re-queues and re-sends it."""
    _wait_for(lambda: _job(institution, job_pk).lease_expires_at < timezone.now(), timeout=LEASE_SECONDS + 5)
    return job_sweep()


def test_worker_sigkilled_mid_rescore_is_recovered_by_the_sweeper_and_every_student_scored_once(
    workers, tenant_a, tenant_b
):
    institution = tenant_a.institution
    chunk = 100
    job = _trained_with_a_queued_rescore(tenant_a, current=2000, chunk=chunk)
    current = set(current_students(institution=institution).values_list("id", flat=True))

    first = workers["start"]()
    _wait_for(lambda: 2 * chunk <= _job(institution, job.pk).progress_done, timeout=120, log=workers["log"])
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    assert _job(institution, job.pk).status == JobStatus.RUNNING  # what the issue saw: "Running 23%"

    assert _sweep_after_lease(institution, job.pk)["requeued"] == 1
    requeued = _job(institution, job.pk)
    assert requeued.status == JobStatus.QUEUED and "stopped responding" in requeued.stage
    workers["start"]()
    finished = _wait_for(lambda: _job(institution, job.pk).is_finished and _job(institution, job.pk), timeout=180,
                         interval=0.2, log=workers["log"])
    assert finished.status == JobStatus.SUCCEEDED, finished.error
    assert finished.attempts == 2
    students = list(Prediction.objects.for_institution(institution).filter(job=job).values_list("student_id",
                                                                                               flat=True))
    assert len(students) == len(set(students)) == len(current) and set(students) == current
    assert not Prediction.objects.for_institution(tenant_b.institution).exists()


def test_cancel_through_the_api_stops_a_running_rescore_at_its_next_chunk(workers, tenant_a, tenant_b, api_client):
    institution = tenant_a.institution
    chunk = 100
    job = _trained_with_a_queued_rescore(tenant_a, current=2000, chunk=chunk)
    workers["start"]()
    _wait_for(lambda: chunk <= _job(institution, job.pk).progress_done, timeout=120, log=workers["log"])
    api_client.force_authenticate(tenant_b.admin)
    assert api_client.post(f"/api/v1/institutions/{institution.slug}/jobs/{job.pk}/cancel/").status_code == 404
    api_client.force_authenticate(tenant_a.admin)
    response = api_client.post(f"/api/v1/institutions/{institution.slug}/jobs/{job.pk}/cancel/")
    assert response.status_code == 200 and response.json()["cancel_requested_at"]
    stopped = _wait_for(lambda: _job(institution, job.pk).is_finished and _job(institution, job.pk), timeout=60,
                        log=workers["log"])
    assert stopped.status == JobStatus.CANCELLED and "alpha-admin" in stopped.error
    stored = Prediction.objects.for_institution(institution).filter(job=job).count()
    assert stored % chunk == 0 and stored < 2000  # whole chunks kept, the rest never scored
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
    chunk = 100
    job = _trained_with_a_queued_rescore(tenant_a, current=2000, chunk=chunk, full=False)
    workers["start"]()
    # The rescore has chosen its students and is scoring them when the import commits.
    _wait_for(lambda: chunk <= _job(institution, job.pk).progress_done, timeout=120, log=workers["log"])
    changed = list(current_students(institution=institution).order_by("-id")[:300])  # scored last, if at all
    _, report = _commit_in_this_process(tenant_a, _write_csv(
        tmp_path / "newer.csv", [(student.external_id, (student.features["units_approved"] + 7) % 31)
                                 for student in changed]))
    assert report.committed and report.updated == len(changed)
    follow_up = Job.objects.for_institution(institution).filter(kind=JobKind.RESCORE, waits_for=job).get()
    assert follow_up.triggered_by == "import"

    done = _wait_for(lambda: _job(institution, follow_up.pk).is_finished and _job(institution, follow_up.pk),
                     timeout=240, interval=0.3, log=workers["log"])
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
    first = workers["start"]()
    _wait_for(lambda: "expected_students" in _job(institution, job.pk).params
              and _job(institution, job.pk).progress_done > 0, timeout=120, log=workers["log"])
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    assert _job(institution, job.pk).status == JobStatus.RUNNING

    newer_job, report = _commit_in_this_process(tenant_a, _write_csv(tmp_path / "newer.csv",
                                                                     [(f"S{i:03d}", 20) for i in range(1, 7)]))
    assert report.committed and _job(institution, newer_job.pk).status == JobStatus.SUCCEEDED

    assert _sweep_after_lease(institution, job.pk)["requeued"] == 1
    workers["start"]()
    refused = _wait_for(lambda: _job(institution, job.pk).is_finished and _job(institution, job.pk), timeout=120,
                        log=workers["log"])
    assert refused.status == JobStatus.FAILED and refused.attempts == 2
    assert refused.result["file_error"]["code"] == "students_changed"
    assert "overwrite newer data" in refused.error
    students = Student.objects.for_institution(institution)
    assert sorted(students.filter(external_id__startswith="S").values_list("features__units_approved", flat=True)) \
        == [20] * 6
    assert not students.filter(external_id__startswith="N").exists()
    assert Student.objects.for_institution(tenant_b.institution).filter(features__units_approved=20).count() == 0


@override_settings(JOB_REDISPATCH_SECONDS=0)
def test_a_job_whose_message_was_lost_is_resent_by_the_dispatcher_and_runs_once(workers, tenant_a):
    institution = tenant_a.institution
    job, _ = job_create(institution=institution, kind=JobKind.HEALTH_CHECK)
    # Sent, but the message went nowhere (as when Redis restarts without its data).
    Job.objects.for_institution(institution).filter(pk=job.pk).update(dispatched_at=timezone.now())
    workers["start"]()
    assert job_dispatch_pending() == 1
    assert job_dispatch_pending() in (0, 1)  # a second re-send (if still queued) is harmless
    _wait_for(lambda: _job(institution, job.pk).is_finished, timeout=60, log=workers["log"])
    time.sleep(1)  # the duplicate message, if one was sent, has been taken and dropped by now
    done = _job(institution, job.pk)
    assert done.status == JobStatus.SUCCEEDED and done.attempts == 1


def test_database_connections_cut_mid_rescore_requeue_the_job_and_the_next_attempt_finishes(workers, tenant_a):
    """As a PostgreSQL restart looks to a worker: every connection it holds is ended by the server."""
    from django.db import connection

    institution = tenant_a.institution
    chunk = 100
    job = _trained_with_a_queued_rescore(tenant_a, current=2000, chunk=chunk)
    current = set(current_students(institution=institution).values_list("id", flat=True))
    workers["start"]()
    _wait_for(lambda: 2 * chunk <= _job(institution, job.pk).progress_done, timeout=120, log=workers["log"])
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    # The task records the interruption on a fresh connection: re-queued, never left running.
    requeued = _wait_for(lambda: _job(institution, job.pk).status == JobStatus.QUEUED and _job(institution, job.pk),
                         timeout=60, log=workers["log"])
    assert "database connection was lost" in requeued.stage and requeued.attempts == 1
    assert job_dispatch_pending() == 1  # beat's dispatcher sends it again
    finished = _wait_for(lambda: _job(institution, job.pk).is_finished and _job(institution, job.pk), timeout=180,
                         interval=0.2, log=workers["log"])
    assert finished.status == JobStatus.SUCCEEDED and finished.attempts == 2, finished.error
    students = list(Prediction.objects.for_institution(institution).filter(job=job).values_list("student_id",
                                                                                               flat=True))
    assert len(students) == len(set(students)) == len(current)


@pytest.fixture
def own_broker():
    """A redis-server of this test's own as the broker of this process (the shared one is never touched)."""
    from dropout_platform.celery import app
    from tests.api.test_resilience import OwnRedis

    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server on PATH")
    server = OwnRedis()
    server.start()
    saved = (app.conf.task_always_eager, app.conf.broker_url, app.conf.task_default_queue, app._pool)
    queue = f"lost-queue-{server.port}"
    app.conf.task_always_eager, app.conf.broker_url, app.conf.task_default_queue = False, server.url, queue
    app._pool = None
    app.amqp._producer_pool = None

    def reconnect() -> None:
        app._pool = None
        app.amqp._producer_pool = None

    try:
        yield {"server": server, "queue": queue, "reconnect": reconnect}
    finally:
        (app.conf.task_always_eager, app.conf.broker_url, app.conf.task_default_queue, app._pool) = saved
        app.amqp._producer_pool = None
        server.stop()


@override_settings(JOB_REDISPATCH_SECONDS=0)
def test_redis_restarting_empty_loses_the_queued_message_and_the_dispatcher_sends_the_job_again(
    own_broker, tenant_a, tenant_b
):
    from institutions.jobs import job_dispatch

    server, queue = own_broker["server"], own_broker["queue"]
    institution = tenant_a.institution
    job, _ = job_create(institution=institution, kind=JobKind.HEALTH_CHECK)
    assert job_dispatch(job) and _job(institution, job.pk).dispatched_at is not None
    server.stop()
    server.start()  # no persistence: the queue is gone
    own_broker["reconnect"]()
    log_path = PROJECT_ROOT / "var" / f"test-lost-queue-worker-{os.getpid()}.log"
    env = {**os.environ, "DATABASE_URL": database_url_of_test_database(), "REDIS_URL": server.url,
           "DJANGO_SETTINGS_MODULE": "dropout_platform.settings_test", "PYTHONPATH": str(PROJECT_ROOT),
           "CELERY_TASK_DEFAULT_QUEUE": queue}
    with open(log_path, "w") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "dropout_platform", "worker", "--loglevel=INFO", "--pool=solo",
             "--concurrency=1", "--without-gossip", "--without-mingle", "--without-heartbeat", "-Q", queue,
             "-n", f"{queue}@%h"], cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for(lambda: "ready" in log_path.read_text(), timeout=60, log=str(log_path))
        time.sleep(1)
        assert _job(institution, job.pk).status == JobStatus.QUEUED  # "queued forever", until now
        assert job_dispatch_pending() == 1
        _wait_for(lambda: _job(institution, job.pk).is_finished, timeout=60, log=str(log_path))
        job_dispatch_pending()  # a late second re-send finds nothing queued, or is dropped by the claim
        time.sleep(1)
        done = _job(institution, job.pk)
        assert done.status == JobStatus.SUCCEEDED and done.attempts == 1
        assert not Job.objects.for_institution(tenant_b.institution).exists()
    finally:
        worker.terminate()
        worker.wait(timeout=20)
