"""Training and scoring through real Celery worker processes on Redis, with PostgreSQL.

The crash test starts its own worker (on a private queue, with a short Redis visibility timeout
so the broker hands an abandoned task on within seconds), kills it with SIGKILL in the middle of
a rescore, starts a second worker and checks what the database holds.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from institutions.models import Job, JobStatus
from institutions.scoping import institution_scope
from predictions.models import LatestPrediction, ModelStatus, ModelVersion, Prediction
from predictions.services.requests import rescore_request, retrain_request
from predictions.services.training import model_version_train
from students.selectors import current_students
from tests.conftest import database_url_of_test_database, needs_redis
from tests.servers import wait_for as _wait_for

from .conftest import add_population, fast_settings

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
VISIBILITY_TIMEOUT = 3


def _job(institution, pk) -> Job:
    return Job.objects.for_institution(institution).get(pk=pk)


def test_real_worker_trains_a_model_and_scores_every_current_student(celery_worker_process, tenant_a):
    institution = tenant_a.institution
    add_population(institution)
    fast_settings(institution)
    with institution_scope(institution):
        job, created = retrain_request(institution=institution, created_by=tenant_a.admin)
    assert created
    trained = _wait_for(lambda: _job(institution, job.pk).is_finished and _job(institution, job.pk), timeout=180,
                        interval=0.3, log=celery_worker_process["log"])
    assert trained.status == JobStatus.SUCCEEDED, trained.error
    version = ModelVersion.objects.for_institution(institution).get(pk=trained.result["model_version_id"])
    assert version.status == ModelStatus.LIVE and version.job_id == job.pk and version.created_by == tenant_a.admin

    # Promotion queued a rescore on the worker; wait for it too.
    rescore = _wait_for(
        lambda: Job.objects.for_institution(institution).filter(kind="rescore", status=JobStatus.SUCCEEDED).first(),
        timeout=120, interval=0.3, log=celery_worker_process["log"],
    )
    current = set(current_students(institution=institution).values_list("id", flat=True))
    stored = Prediction.objects.for_institution(institution).filter(job=rescore)
    assert set(stored.values_list("student_id", flat=True)) == current
    assert rescore.counts["scored"] == len(current)
    assert LatestPrediction.objects.for_institution(institution).count() == len(current)


def _start_worker(queue: str, log_path: Path) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": database_url_of_test_database(),
           "DJANGO_SETTINGS_MODULE": "dropout_platform.settings_test",
           "PYTHONPATH": str(PROJECT_ROOT), "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
           # The redelivered message takes the job over only once the dead attempt's lease ran out.
           "JOB_LEASE_SECONDS": str(VISIBILITY_TIMEOUT), "JOB_HEARTBEAT_SECONDS": "1"}
    log = open(log_path, "a")  # noqa: SIM115 - the process owns it until it exits
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "dropout_platform", "worker", "--loglevel=INFO", "--pool=solo",
         "--concurrency=1", "--without-gossip", "--without-mingle", "--without-heartbeat", "-Q", queue,
         "-n", f"{queue}-{uuid.uuid4().hex[:6]}@%h"],
        cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )


@pytest.fixture
def private_queue(celery_worker_process):
    """Route this test's tasks to a queue no other worker consumes; yields a worker starter."""
    from dropout_platform.celery import app

    queue = f"killable-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    log_path = PROJECT_ROOT / "var" / f"test-killable-worker-{os.getpid()}.log"
    log_path.write_text("")
    processes: list[subprocess.Popen] = []
    previous = app.conf.task_default_queue
    app.conf.task_default_queue = queue

    def start() -> subprocess.Popen:
        process = _start_worker(queue, log_path)
        processes.append(process)
        return process

    yield {"queue": queue, "start": start, "log": str(log_path)}
    app.conf.task_default_queue = previous
    for process in processes:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.mark.faults  # with the fault suite (tests/faults/): recovery by the broker's redelivery
@needs_redis  # the filesystem broker forgets a message once read: only Redis hands it on
def test_worker_killed_mid_rescore_leaves_whole_chunks_and_the_retry_finishes_exactly_once(
    private_queue, tenant_a
):
    institution = tenant_a.institution
    add_population(institution, known=240, current=3000)
    fast_settings(institution, auto_promote=True)
    with institution_scope(institution):
        version = model_version_train(institution=institution)
        assert version.status == ModelStatus.LIVE
        # Promotion queued a rescore that nothing consumed yet: this is the run under test.
        job, created = rescore_request(institution=institution, full=True)
    assert not created
    chunk = 100
    Job.objects.for_institution(institution).filter(pk=job.pk).update(params={"full": True, "chunk_size": chunk})
    current = set(current_students(institution=institution).values_list("id", flat=True))
    assert len(current) > 20 * chunk

    first = private_queue["start"]()
    # Kill it once some chunks are committed and most are not.
    _wait_for(lambda: 2 * chunk <= _job(institution, job.pk).progress_done, timeout=120,
              log=private_queue["log"])
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=10)

    stopped = _job(institution, job.pk)
    stored = Prediction.objects.for_institution(institution).filter(job=job)
    at_kill = stored.count()
    assert stopped.status == JobStatus.RUNNING
    assert 0 < at_kill < len(current), "the worker should have died in the middle of the run"
    # Whole chunks only, and the progress written in the same transactions agrees.
    assert at_kill % chunk == 0
    assert stopped.progress_done == at_kill

    time.sleep(VISIBILITY_TIMEOUT + 1)  # the broker hands the unacknowledged task on after this
    private_queue["start"]()
    finished = _wait_for(lambda: _job(institution, job.pk).is_finished and _job(institution, job.pk), timeout=180,
                         interval=0.2, log=private_queue["log"])
    assert finished.status == JobStatus.SUCCEEDED, finished.error
    assert finished.attempts == 2

    students = list(stored.values_list("student_id", flat=True))
    assert len(students) == len(set(students)) == len(current)
    assert set(students) == current
    assert finished.counts["current"] == len(current)
    latest = LatestPrediction.objects.for_institution(institution)
    assert latest.count() == len(current)
    assert sorted(latest.values_list("rank", flat=True)) == list(range(1, len(current) + 1))
