"""A large rescore fanned out over two real worker processes (predictions.services.fanout): both
score chunks of the one job, every current student gets one prediction, the job ranks once; one
worker SIGKILLed mid-chunk, its chunk is claimed again once its lease runs out (by the other
worker, or by the job's next attempt after the sweeper re-queued it) and stored once."""

from __future__ import annotations

import os
import re
import signal

import pytest

from predictions.models import RescoreChunk
from students.selectors import current_students
from tests.servers import wait_for

from .conftest import CHUNK, CURRENT, assert_healed, heal, trained_with_a_queued_rescore
from .conftest import job_of as _job

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# Every run here is one of many chunks: fanned out from two; the chunk tasks a worker sends go
# through the broker (as in production), not run inside the sending task (the tests' default).
FAN_OUT = {"RESCORE_FANOUT_MIN_CHUNKS": "2", "DP_TEST_TASKS_IN_PROCESS": "0"}


def _chunks(institution) -> int:
    return -(-current_students(institution=institution).count() // CHUNK)


def _ranked_lines(log, job) -> int:
    return len(re.findall(rf"rescore job {job.pk}: \d+ current students ranked", log.read_text()))


def test_two_workers_share_the_chunks_of_one_rescore_and_it_is_ranked_once(workers, tenant_a, tenant_b):
    institution = tenant_a.institution
    job = trained_with_a_queued_rescore(tenant_a, current=CURRENT, chunk=CHUNK)
    workers.start(env=FAN_OUT)
    workers.start(env=FAN_OUT)

    finished = heal(institution, job.pk, log=workers.log)

    assert_healed(institution, finished, other=tenant_b.institution)
    by_worker = finished.result["chunks_by_worker"]
    assert len(by_worker) == 2, by_worker  # both processes stored chunks of this job
    assert sum(by_worker.values()) == _chunks(institution)
    assert finished.attempts == 1
    assert _ranked_lines(workers.log, finished) == 1
    assert not RescoreChunk.objects.for_institution(institution).exists()


def test_a_worker_killed_mid_chunk_leaves_its_chunk_to_be_scored_again_once(workers, tenant_a, tenant_b):
    institution = tenant_a.institution
    job = trained_with_a_queued_rescore(tenant_a, current=CURRENT, chunk=CHUNK)
    workers.start(env=FAN_OUT)
    victim = workers.start(env=FAN_OUT)
    # Both are scoring: the victim holds a claim (the chunk it scores, or the next it read ahead).
    wait_for(lambda: RescoreChunk.objects.for_institution(institution).filter(done_at__isnull=False)
             .values("worker").distinct().count() == 2, timeout=120, interval=0.02, log=workers.log)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=10)
    held = RescoreChunk.objects.for_institution(institution).filter(done_at__isnull=True, claims__gt=0)
    assert held.exists()

    # The job's lease (if the victim was running the job's own task) or the chunk's runs out; the
    # sweeper re-queues the job, or the surviving worker claims the chunk again.
    finished = heal(institution, job.pk, log=workers.log)

    assert_healed(institution, finished, other=tenant_b.institution)
    assert finished.attempts in (1, 2)
    assert "claimed again (its last claim's lease ran out)" in workers.log.read_text()
    assert sum(finished.result["chunks_by_worker"].values()) == _chunks(institution)
    assert _ranked_lines(workers.log, finished) == 1
    assert _job(institution, job.pk).status == "succeeded"
