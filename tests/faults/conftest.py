"""The fault suite: real worker processes, a redis-server and a PostgreSQL cluster of each test's
own, killed, stopped and restarted mid-job. Every test here is marked ``faults`` (run them alone
with ``pytest -m faults``) and runs in the normal ``pytest`` run.

What every scenario checks, whatever the fault (:func:`assert_healed`): every current student is
scored exactly once by the job, no job is left running past its lease, and the other
institution's data is untouched.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from django.utils import timezone

from institutions.jobs import job_dispatch_pending, job_sweep
from institutions.models import Job, JobStatus
from institutions.scoping import institution_scope
from predictions.models import LatestPrediction, ModelStatus, Prediction
from predictions.services.requests import rescore_request
from predictions.services.training import model_version_train
from students.selectors import current_students
from tests.conftest import database_url_of_test_database
from tests.predictions.conftest import add_population, fast_settings
from tests.servers import OwnPostgres, Workers, postgres_bin_dir, running_redis, wait_for

FAULTS_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = FAULTS_DIR.parents[1]
LEASE_SECONDS = 3
# Rescores under test: chunks below the fast explainer's batch size (ml.explanation), so no worker
# process spends seconds compiling it, and enough of them that a fault lands mid-run.
CHUNK = 25
CURRENT = 2000


def pytest_collection_modifyitems(config, items):
    for item in items:
        if FAULTS_DIR in Path(item.path).parents:
            item.add_marker(pytest.mark.faults)


def job_of(institution, pk) -> Job:
    return Job.objects.for_institution(institution).get(pk=pk)


def assert_no_job_running_past_its_lease() -> None:
    now = timezone.now()
    stuck = Job.objects.unscoped().filter(status=JobStatus.RUNNING).exclude(lease_expires_at__gt=now)
    assert not stuck.exists(), [(job.pk, job.kind, job.lease_expires_at) for job in stuck]


def assert_every_student_scored_once(institution, job: Job) -> None:
    current = set(current_students(institution=institution).values_list("id", flat=True))
    scored = list(Prediction.objects.for_institution(institution).filter(job=job).values_list("student_id",
                                                                                              flat=True))
    assert len(scored) == len(set(scored)), "a student was stored twice for one run"
    assert set(scored) == current, f"{len(current - set(scored))} current students not scored"
    latest = LatestPrediction.objects.for_institution(institution)
    assert latest.count() == len(current)
    assert sorted(latest.values_list("rank", flat=True)) == list(range(1, len(current) + 1))


def assert_healed(institution, job: Job, *, other) -> None:
    """A rescore that went through a fault: it succeeded, scored everyone once, and nothing is
    stuck; the other institution has no prediction."""
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert_every_student_scored_once(institution, job)
    assert_no_job_running_past_its_lease()
    assert not Prediction.objects.for_institution(other).exists()


def trained_with_a_queued_rescore(tenant, *, current: int, chunk: int, full: bool = True) -> Job:
    institution = tenant.institution
    add_population(institution, known=240, current=current)
    fast_settings(institution, auto_promote=True)
    with institution_scope(institution):
        version = model_version_train(institution=institution)
        assert version.status == ModelStatus.LIVE
        job, _ = rescore_request(institution=institution, full=full)  # joins the one promotion queued
    Job.objects.for_institution(institution).filter(pk=job.pk).update(params={"full": full, "chunk_size": chunk})
    return job


def heal(institution, job_pk, *, log, timeout: float = 180):
    """Wait for the job to finish, running the sweeper every second as beat would."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = job_of(institution, job_pk)
        if job.is_finished:
            return job
        job_sweep()
        job_dispatch_pending()
        time.sleep(1)
    raise AssertionError(f"job {job_pk} not finished within {timeout} s\n{Path(log).read_text()[-4000:]}")


def sweep_after_lease(institution, job_pk):
    """Beat's part: once the dead attempt's lease ran out, the sweeper re-queues and re-sends it."""
    wait_for(lambda: job_of(institution, job_pk).lease_expires_at < timezone.now(), timeout=LEASE_SECONDS + 5)
    return job_sweep()


@pytest.fixture
def real_broker():
    """This test's tasks go to the broker (Redis with REDIS_URL, else the filesystem broker), not
    in-process; the workers fixture puts them on a queue of the test's own."""
    from dropout_platform.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = False
    try:
        yield app
    finally:
        app.conf.task_always_eager = previous


def worker_env(**overrides: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": database_url_of_test_database(),
            "DJANGO_SETTINGS_MODULE": "dropout_platform.settings_test", "PYTHONPATH": str(PROJECT_ROOT),
            "JOB_LEASE_SECONDS": str(LEASE_SECONDS), "JOB_HEARTBEAT_SECONDS": "1",
            # Long: the broker's own redelivery must not be what heals these faults.
            "CELERY_VISIBILITY_TIMEOUT": "3600", **overrides}


@pytest.fixture
def workers(real_broker):
    """Start workers on a queue of this test's own (``workers.start()``); every one, with its
    children, is killed at the end, pass or fail."""
    pool = Workers(env=worker_env(), log_path=PROJECT_ROOT / "var" / f"test-fault-worker-{os.getpid()}.log")
    previous = real_broker.conf.task_default_queue
    real_broker.conf.task_default_queue = pool.queue
    try:
        yield pool
    finally:
        real_broker.conf.task_default_queue = previous
        pool.stop_all()


@pytest.fixture
def own_redis():
    """A redis-server of this test's own on a free port, stopped at the end."""
    with running_redis() as server:
        yield server


@pytest.fixture
def own_broker(own_redis, workers, real_broker):
    """The test's own redis-server as the broker of this process and of the workers it starts."""
    saved = real_broker.conf.broker_url
    real_broker.conf.broker_url = own_redis.url
    workers.env["REDIS_URL"] = own_redis.url
    reconnect_broker()
    try:
        yield own_redis
    finally:
        real_broker.conf.broker_url = saved
        reconnect_broker()


def reconnect_broker() -> None:
    """Drop this process's broker connections (after the broker restarted: new ones are made)."""
    from dropout_platform.celery import app

    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def own_postgres(transactional_db):
    """A PostgreSQL cluster of this test's own holding a copy of the test database as it is when
    asked (``own_postgres.take_over()``): from then on this process and the workers it starts
    use it, so the test can stop and start the server. Destroyed at the end; this process's
    connection goes back to the test database before the test's tear-down."""
    from django.db import connection

    bin_dir = postgres_bin_dir(connection.pg_version // 10000)
    if bin_dir is None:
        pytest.skip("needs PostgreSQL's initdb and pg_ctl (the embedded server's wheel or the system's)")
    cluster = OwnPostgres(bin_dir)
    saved = dict(connection.settings_dict)
    cluster.start()

    def take_over(workers: Workers) -> str:
        source = database_url_of_test_database()
        connection.close()
        url = cluster.copy_database(source, "faults")
        connection.settings_dict.update(HOST="127.0.0.1", PORT=str(cluster.port), NAME="faults", USER="postgres",
                                        PASSWORD="")
        workers.env["DATABASE_URL"] = url
        return url

    cluster.take_over = take_over
    try:
        yield cluster
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)
        cluster.destroy()
