"""PostgreSQL restarted under a running rescore: a real server of the test's own (a temporary
cluster on a free port, holding a copy of the test database) is stopped with every connection
ended, stays down for a few seconds and starts again, as a restart or a failover looks to a
worker. The shared PostgreSQL is never touched.

Before issue 17 the job stayed "running" forever (recording the failure failed on the same dead
connection); now the worker records the interruption on a fresh connection, retrying while the
server comes back, and the next attempt continues after the last committed chunk.
"""

from __future__ import annotations

import time

import pytest
from django.db import connection

import institutions.tasks  # noqa: F401 - registers the job runners, as the web process does
from institutions.models import JobStatus
from predictions.models import Prediction
from tests.servers import wait_for

from .conftest import CHUNK, CURRENT, assert_healed, heal, trained_with_a_queued_rescore
from .conftest import job_of as _job

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_postgresql_restarting_mid_rescore_neither_strands_the_job_nor_scores_anyone_twice(
    own_postgres, workers, tenant_a, tenant_b
):
    institution = tenant_a.institution
    chunk = CHUNK
    job = trained_with_a_queued_rescore(tenant_a, current=CURRENT, chunk=chunk)  # its message waits in the queue
    own_postgres.take_over(workers)  # from here on, this process and the worker use the test's own server
    workers.start(pool="prefork")
    wait_for(lambda: 2 * chunk <= _job(institution, job.pk).progress_done, timeout=120, log=workers.log)

    connection.close()
    own_postgres.stop(mode="fast")  # every connection ended; new ones refused
    time.sleep(3)
    own_postgres.start()

    # The attempt recorded its interruption once the server was back: queued again, not running.
    interrupted = wait_for(lambda: _job(institution, job.pk).status != JobStatus.RUNNING and _job(institution, job.pk),
                           timeout=60, log=workers.log)
    assert interrupted.status == JobStatus.QUEUED and "database connection was lost" in interrupted.stage
    kept = Prediction.objects.for_institution(institution).filter(job=job).count()
    assert kept % chunk == 0 and 0 < kept < CURRENT  # the chunks committed before the restart are kept
    finished = heal(institution, job.pk, log=workers.log)  # the dispatcher sends it again
    assert finished.attempts == 2
    assert_healed(institution, finished, other=tenant_b.institution)
    assert "lost its database connection" in workers.log.read_text()
