"""Workers that come back (issue 17, item 6): a worker under ``python -m dropout_platform.supervisor``
(what ``make run`` does for its own worker, and what systemd's ``Restart=always`` or a
container's restart policy do in production) is killed while Redis drops mid-rescore; the
supervisor starts it again, Redis comes back without its data, and the job finishes with every
student scored once.

The Redis is a redis-server of the test's own on a free port, the worker its own process on a
queue of its own; the test plays beat's part (the sweeper and the dispatcher) every second.
"""

from __future__ import annotations

import contextlib
import os
import signal

import pytest

import institutions.tasks  # noqa: F401 - registers the job runners, as the web process does
from institutions.models import JobStatus
from predictions.models import Prediction
from tests.servers import alive, wait_for

from .conftest import (
    CHUNK,
    CURRENT,
    assert_healed,
    heal,
    reconnect_broker,
    sweep_after_lease,
    trained_with_a_queued_rescore,
)
from .conftest import job_of as _job

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_worker_killed_while_redis_drops_mid_rescore_is_restarted_and_the_job_finishes(
    own_broker, workers, tenant_a, tenant_b, tmp_path
):
    institution = tenant_a.institution
    chunk = CHUNK
    job = trained_with_a_queued_rescore(tenant_a, current=CURRENT, chunk=chunk)  # its message waits in Redis
    pid_file = tmp_path / "worker.pid"
    supervisor = workers.start_supervised(pid_file=pid_file)
    wait_for(lambda: 2 * chunk <= _job(institution, job.pk).progress_done, timeout=120, log=workers.log)
    first = int(pid_file.read_text())

    own_broker.stop()  # Redis drops while the task runs...
    # ...and the worker is killed at once (or has exited by itself): on a quiet machine the 80
    # chunks take about two seconds, so a pause here would let the run finish first.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(first, signal.SIGKILL)
    wait_for(lambda: not alive(first), timeout=10)
    running = _job(institution, job.pk)
    assert running.status == JobStatus.RUNNING
    at_kill = Prediction.objects.for_institution(institution).filter(job=job).count()
    assert at_kill % chunk == 0 and 0 < at_kill < CURRENT  # whole chunks only

    # Beat's sweeper, once the lease ran out: queued again, not left running; with Redis still
    # down it cannot be sent yet, and says so on the job.
    assert sweep_after_lease(institution, job.pk)["requeued"] == 1
    requeued = _job(institution, job.pk)
    assert requeued.status == JobStatus.QUEUED and "stopped responding" in requeued.stage
    assert "Could not reach the task queue" in requeued.dispatch_error

    # The supervisor starts it again, without anyone asking.
    restarted = wait_for(lambda: pid_file.exists() and int(pid_file.read_text()) != first
                         and int(pid_file.read_text()), timeout=30, log=workers.log)
    assert alive(restarted) and supervisor.poll() is None
    own_broker.start()  # back, empty: the task's message is gone with it
    reconnect_broker()

    finished = heal(institution, job.pk, log=workers.log)  # the dispatcher sends it to the new Redis
    assert finished.attempts == 2
    assert_healed(institution, finished, other=tenant_b.institution)
    log = workers.log.read_text()
    assert "exited on SIGKILL" in log and "worker started again" in log
